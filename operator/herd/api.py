"""The WebService API, herd.dev/v1alpha1: declared once, here.

The CRD (`herd.crd`), defaulting for offline rendering (`herd.model`), and `docs/api.md` all
derive from these declarations; a test fails when the committed files drift from them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal, get_args

from herd.schema import (
    Rule,
    Schema,
    array,
    boolean,
    defaulted_object,
    integer,
    number,
    obj,
    string,
    string_map,
)
from herd.serving import runtime

GROUP = "herd.dev"
VERSION = "v1alpha1"
KIND = "WebService"
PLURAL = "webservices"
SINGULAR = "webservice"
SHORT_NAMES = ("ws",)

#: Phases of a canary rollout (status.canary.phase): Progressing walks the steps; Paused waits
#: (a pause step, `herd pause`, inconclusive analyses); Promoting hands the stable Deployment the
#: new template; then Succeeded, or RolledBack (failed checks, deadline) or Aborted (`herd abort`).
Phase = Literal["Progressing", "Paused", "Promoting", "Succeeded", "RolledBack", "Aborted"]
PHASES: tuple[Phase, ...] = get_args(Phase)
#: What a user can ask of a rollout (status.intent.action), through `herd promote` and friends.
IntentAction = Literal["promote", "promote-full", "abort", "retry", "pause", "resume"]
INTENT_ACTIONS: tuple[IntentAction, ...] = get_args(IntentAction)
#: Where request metrics come from (spec.metrics.source); see herd.metric_sources.
MetricSourceName = Literal["app", "ingress-nginx", "traefik"]
METRIC_SOURCES: tuple[MetricSourceName, ...] = get_args(MetricSourceName)

#: What changed in this version of the API, for docs/api.md (the alpha API may change shape).
CHANGES = (
    "`spec.ingress` became `spec.route.ingress`, and `spec.ingress.gateway` became "
    "`spec.route.httpRoute` (with its own `host` and `path`): a WebService names exactly one "
    "router, each with only the fields it honours (`tlsSecretName`, `maxBodySize` and "
    "`annotations` are the Ingress's). Move `spec.ingress` under `spec.route` in your "
    "manifests before upgrading the CRD: the API server drops a field its schema no longer "
    "has, and Herd deletes the Ingress of a WebService without a route.",
    "`spec.metrics.source` has no default of its own: unset, it is the router's default "
    "(`app` for both); `ingress-nginx` is accepted only with `spec.route.ingress`.",
    "`status.canary.phase` and `status.intent.action` are enums.",
    "`status.canary` and `status.stableSpec` are reports: the operator keeps the rollout state "
    "and the stable version on the stable Service, where the herd-promoter role (which may "
    "write `status.intent`) cannot write. What an earlier operator kept on the stable "
    "Deployment, or in `status.stableSpec` (taken over once, if the stable Deployment runs it), "
    "is moved there.",
    "`spec.metrics.prometheusURL` must be an origin the operator's admin allowed.",
    "env names `HERD_*`, `PROMETHEUS_MULTIPROC_DIR` and `WEB_CONCURRENCY` are refused; a canary "
    "plan needs a `setWeight` above 0.",
    "Canary steps `setHeaderRoute` and `setCookieRoute` (at most one per plan), reported in "
    "`status.canary.match`; `spec.canary.abTest` instead of `spec.canary.steps` (which is no "
    "longer required on its own).",
)

#: Longest WebService name: it names Services (DNS-1035 labels, 63 characters) and the
#: `NAME-canary` objects of a rollout.
MAX_NAME_LENGTH = 56

_QUANTITY = Schema(
    None,
    "A Kubernetes quantity, such as 500m, 2, 256Mi.",
    int_or_string=True,
    max_length=64,
    rules=(
        Rule(
            "isQuantity(string(self))",
            "must be a Kubernetes quantity such as 500m, 1, 256Mi or 1Gi",
        ),
    ),
)

_RESOURCE_LIST = Schema(
    "object",
    "Amounts by resource name (cpu, memory, ephemeral-storage).",
    values=_QUANTITY,
    max_properties=16,
)

RESOURCES = obj(
    "Compute resources of each app-server container. Herd sizes workers from the CPU limit "
    "(else the request, else 1 CPU) and checks the worker count against the memory limit.",
    {
        "requests": _RESOURCE_LIST,
        "limits": _RESOURCE_LIST,
    },
)

ENV_VAR = obj(
    "An environment variable (core/v1 EnvVar).",
    {
        "name": string("Name of the variable.", max_length=256),
        "value": string("Literal value."),
        "valueFrom": obj(
            "Source of the value (core/v1 EnvVarSource), passed through as written.",
            preserve_unknown=True,
        ),
    },
    required=("name",),
    rules=(
        Rule(
            f"!self.name.startsWith('{runtime.RESERVED_ENV_PREFIX}') && "
            f"!(self.name in {list(runtime.RESERVED_ENV)!r})",
            f"{runtime.RESERVED_ENV_PREFIX}*, {' and '.join(runtime.RESERVED_ENV)} are set by "
            "Herd for its runtime (metrics, health, tuning): choose another name",
            field_path=".name",
        ),
    ),
)

SERVER = obj(
    "How the app server runs. Every field is optional: `auto` and 0 mean Herd derives the value "
    "from the interface, the workload and the pod's resources (see docs/tuning.md).",
    {
        "workload": string(
            "What a request mostly does: `io` (waits on databases and APIs), "
            "`cpu` (computes), or `mixed`.",
            enum=("io", "cpu", "mixed"),
            default="mixed",
        ),
        "workerClass": string(
            "Worker type: `sync` and `gthread` (threads) and `gevent` serve "
            "WSGI apps, `uvicorn` serves ASGI apps; `auto` picks from the "
            "interface and workload.",
            enum=("auto", "sync", "gthread", "gevent", "uvicorn"),
            default="auto",
        ),
        "workers": integer(
            "Worker processes per pod; 0 derives them from the CPU limit.",
            minimum=0,
            maximum=64,
            default=0,
        ),
        "threads": integer(
            "Threads per gthread worker; 0 derives them from the workload.",
            minimum=0,
            maximum=256,
            default=0,
        ),
        "timeoutSeconds": integer(
            "Request deadline: past it the client gets a 504 (or, once the "
            "response has started, its connection closed), the request is counted "
            "in http_request_timeouts_total, and the app's code is interrupted "
            "where Python allows (asyncio cancellation; in threads, pure Python "
            "code only); the worker goes on serving. A thread still stuck "
            "gracefulTimeoutSeconds later has its worker replaced. Not enforced "
            "for gevent workers. See docs/runtime.md. The ingress read timeout is "
            "set above it.",
            minimum=1,
            maximum=3600,
            default=30,
        ),
        "gracefulTimeoutSeconds": integer(
            "Time in-flight requests get to finish after SIGTERM.",
            minimum=1,
            maximum=3600,
            default=30,
        ),
        "keepAliveSeconds": integer(
            "Idle keep-alive of client connections; 0 picks a value "
            "longer than the ingress's upstream keep-alive (60 s).",
            minimum=0,
            maximum=3600,
            default=0,
        ),
        "maxRequests": integer(
            "Requests after which a worker is replaced, bounding memory "
            "leaks (with 10% jitter); 0 picks a default: 5000, for uvicorn only with "
            "runtime inject (an image's own herd-runtime may predate the draining worker).",
            minimum=0,
            maximum=10_000_000,
            default=0,
        ),
        "preload": boolean(
            "Import the app once in the arbiter before forking the workers "
            "(gunicorn --preload), so they share its memory copy-on-write. "
            "Connections, threads and files opened at import are shared by "
            "every worker; see docs/runtime.md.",
            default=False,
        ),
    },
    rules=(
        Rule(
            "self.threads <= 1 || self.workerClass in ['auto', 'gthread']",
            "threads > 1 needs workerClass gthread (or auto)",
        ),
    ),
)


_HOST = string(
    "Host name the route serves.",
    max_length=253,
    pattern=r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
)
_PATH = string("Path prefix routed to the service.", default="/", pattern="^/", max_length=1024)

INGRESS_ROUTE = obj(
    "An Ingress with ingress-nginx annotations (ingress-nginx, and Traefik's ingress-nginx "
    "provider, honour them); during a rollout, a canary Ingress beside it.",
    {
        "host": _HOST,
        "path": _PATH,
        "className": string(
            "IngressClass of the controller; unset, the operator's default (--ingress-class, "
            "nginx unless configured).",
            max_length=253,
        ),
        "tlsSecretName": string(
            "Secret holding the TLS certificate for the host; enables HTTPS.", max_length=253
        ),
        "maxBodySize": Schema(
            None,
            "Largest request body the ingress accepts (ingress-nginx proxy-body-size).",
            default="1m",
            int_or_string=True,
            max_length=64,
            rules=(
                Rule(
                    "isQuantity(string(self)) || string(self).matches('^[0-9]+[kKmMgG]?$')",
                    "must be a size such as 1m, 512k or 10m",
                ),
            ),
        ),
        "annotations": string_map(
            "Extra Ingress annotations, merged over the ones Herd derives (yours win).",
            max_properties=64,
        ),
    },
    required=("host",),
)

HTTP_ROUTE = obj(
    "A Gateway API HTTPRoute attached to a Gateway, splitting traffic by backend weights during "
    "a rollout: the forward path, as ingress-nginx is retired upstream.",
    {
        "host": _HOST,
        "path": _PATH,
        "gateway": obj(
            "The parent Gateway.",
            {
                "name": string("Name of the Gateway.", max_length=253),
                "namespace": string("Its namespace; unset, the WebService's.", max_length=63),
                "sectionName": string("A listener of the Gateway to attach to.", max_length=253),
            },
            required=("name",),
        ),
    },
    required=("host", "gateway"),
)

#: The routers a WebService can name in spec.route, exactly one at a time.
ROUTERS = ("ingress", "httpRoute")

ROUTE = obj(
    "How traffic reaches the service from outside the cluster: exactly one router. Without "
    "spec.route, the service is reachable only inside the cluster, through its Service.",
    {"ingress": INGRESS_ROUTE, "httpRoute": HTTP_ROUTE},
    rules=(
        Rule(
            "[" + ", ".join(f"has(self.{r})" for r in ROUTERS) + "].exists_one(x, x)",
            "route names exactly one router: set spec.route.ingress or spec.route.httpRoute",
        ),
    ),
)

AUTOSCALING = obj(
    "Scale replicas on requests per minute and error rate read from Prometheus.",
    {
        "enabled": boolean(
            "Let Herd own `spec.replicas` through the scale subresource.", default=False
        ),
        "engine": string(
            "`builtin`: Herd's own loop (RPM, error-rate guard, stabilization); `keda`: render a "
            "KEDA ScaledObject with a Prometheus trigger on RPM instead.",
            enum=("builtin", "keda"),
            default="builtin",
        ),
        "minReplicas": integer("Fewest replicas.", minimum=1, maximum=1000, default=1),
        "maxReplicas": integer("Most replicas.", minimum=1, maximum=1000, default=10),
        "targetRPMPerReplica": integer(
            "Requests per minute one replica should serve.",
            minimum=1,
            maximum=10_000_000,
            default=600,
        ),
        "maxErrorRate": number(
            "Fraction of 5xx responses (0..1) above which Herd never scales in.",
            minimum=0,
            maximum=1,
            default=0.05,
        ),
        "scaleDownStabilizationSeconds": integer(
            "Scale in only to the highest recommendation of this window.",
            minimum=0,
            maximum=3600,
            default=300,
        ),
        "targetUtilization": number(
            "Fraction (0..1] of a pod's concurrency capacity it should be busy: a second signal "
            "beside RPM, the larger recommendation wins. Capacity is what the tuning resolved "
            "(workers x threads for gthread, workers for sync, 100 requests per uvicorn or "
            "gevent worker); busy is the mean number of requests in service over 60 s. Past 1.0 "
            "over 6 s (every thread busy) the autoscaler panics: it scales out at once and not "
            "in for 60 s. Needs metrics.source app and the builtin engine. Unset: RPM only.",
            maximum=1,
            rules=(Rule("self > 0.0", "targetUtilization must be above 0"),),
        ),
    },
    rules=(
        Rule("self.minReplicas <= self.maxReplicas", "minReplicas must not exceed maxReplicas"),
        Rule(
            "!has(self.targetUtilization) || self.engine == 'builtin'",
            "targetUtilization is the builtin engine's: the keda engine scales on RPM only",
            field_path=".targetUtilization",
        ),
    ),
)


_DURATION_RULE = Rule(
    "type(self) == int || string(self).matches('^([0-9]+(ms|s|m|h))+$')",
    "duration must be seconds (60) or a Go-style duration such as 30s, 5m or 1h30m",
)

METRICS = obj(
    "Where request metrics come from, for autoscaling and canary analysis.",
    {
        "source": string(
            "`app`: herd-runtime's http_requests_total scraped from the pods; `ingress-nginx`: "
            "the ingress controller's nginx_ingress_controller_requests (needs "
            "spec.route.ingress); `traefik`: Traefik's traefik_service_requests_total (needs a "
            "route, served by Traefik; set Traefik's metrics.prometheus.buckets, as its default "
            "latency buckets 0.1, 0.3, 1.2 and 5 s make p99 coarse). Unset, the router's "
            "default: `app` for every router.",
            enum=METRIC_SOURCES,
        ),
        "prometheusURL": string(
            "Prometheus to query; unset, the operator's --prometheus-url. Only origins the "
            "operator's admin allowed (--prometheus-allow), without credentials; any other is "
            "Degraded PrometheusNotAllowed and never called.",
            pattern="^https?://",
            max_length=2048,
        ),
    },
)

#: An HTTP field name (RFC 7230 token), as Gateway API's HTTPHeaderName pattern and length; a
#: cookie name (RFC 6265 cookie-name) is a token too. ` and | as escapes: docs/api.md's table
#: cells would break on them.
_TOKEN = r"^[A-Za-z0-9!#$%&'*+\-.^_\x60\x7c~]+$"
#: Visible ASCII, no surrounding whitespace: what both routers compare byte for byte.
_FIELD_VALUE = r"^[!-~]([ -~]*[!-~])?$"
#: What a request must carry to be pinned to the canary (status.canary.match.kind).
MatchKind = Literal["header", "cookie"]
MATCH_KINDS: tuple[MatchKind, ...] = get_args(MatchKind)
#: Canary steps, each doing exactly one of these.
STEP_KINDS = ("setWeight", "pause", "setHeaderRoute", "setCookieRoute")
#: Steps that pin matching requests to the canary until the rollout ends.
MATCH_STEPS = ("setHeaderRoute", "setCookieRoute")

HEADER_ROUTE = obj(
    "From this step until the rollout ends, send every request carrying this header to the "
    "canary, whatever the weight (ingress-nginx canary-by-header; an HTTPRoute rule matching "
    "the header). Without `value`, as ingress-nginx: the value `always` pins a request to the "
    "canary (and, on ingress-nginx, `never` keeps it off).",
    {
        "name": string("The header's name, e.g. X-Canary.", max_length=256, pattern=_TOKEN),
        "value": string(
            "The exact value that pins a request to the canary.",
            max_length=256,
            pattern=_FIELD_VALUE,
        ),
    },
    required=("name",),
)

COOKIE_ROUTE = obj(
    "From this step until the rollout ends, send every request whose cookie of this name is "
    "`always` to the canary, whatever the weight (ingress-nginx canary-by-cookie; on an "
    "HTTPRoute, a RegularExpression match on the Cookie header). On ingress-nginx, `never` "
    "keeps a request off the canary.",
    {"name": string("The cookie's name.", max_length=256, pattern=_TOKEN)},
    required=("name",),
)

CANARY_STEP = obj(
    "One step: set the canary's traffic weight, pause, or pin requests with a header or cookie "
    "to the canary.",
    {
        "setWeight": integer("Percent of traffic sent to the canary.", minimum=0, maximum=100),
        "pause": obj(
            "Wait: for `duration`, or without one until `herd promote`.",
            {
                "duration": Schema(
                    None,
                    "How long to wait: seconds, or a duration like 5m.",
                    int_or_string=True,
                    max_length=64,
                    rules=(_DURATION_RULE,),
                )
            },
        ),
        "setHeaderRoute": HEADER_ROUTE,
        "setCookieRoute": COOKIE_ROUTE,
    },
    rules=(
        Rule(
            "[" + ", ".join(f"has(self.{k})" for k in STEP_KINDS) + "].exists_one(x, x)",
            "each step sets exactly one of " + ", ".join(STEP_KINDS[:-1]) + f" or {STEP_KINDS[-1]}",
        ),
    ),
)

AB_TEST = obj(
    "An A/B test instead of weighted steps: only the requests that match reach the canary "
    "(no weight), until `analyses` analyses of the canary's own metrics have passed; then it "
    "is promoted. Fewer than minRequests is inconclusive, as for any analysis: three in a row "
    "pause the test rather than promote it.",
    {
        "match": obj(
            "The requests sent to the canary: a header or a cookie.",
            {
                "header": replace(
                    HEADER_ROUTE,
                    description="A header, exactly as a setHeaderRoute step pins it.",
                ),
                "cookie": replace(
                    COOKIE_ROUTE,
                    description="A cookie, exactly as a setCookieRoute step pins it.",
                ),
            },
            rules=(
                Rule(
                    "has(self.header) != has(self.cookie)",
                    "abTest.match sets exactly one of header or cookie",
                ),
            ),
        ),
        "analyses": integer(
            "Passing analyses of the matching traffic before the canary is promoted.",
            minimum=1,
            maximum=100,
            default=3,
        ),
    },
    required=("match",),
)

#: What a user metric check's query may name, each as `{{ NAME }}`: the WebService's name and
#: namespace, the track the query is run for (`canary`, or `stable` for maxIncreaseOverStable),
#: and the analysis interval as a PromQL duration (`30s`).
QUERY_VARIABLES = ("name", "namespace", "track", "interval")
#: A query all of whose `{{` open one of QUERY_VARIABLES (RE2 and Python alike).
QUERY_TEMPLATE = r"^(?:[^{]|\{[^{]|\{\{ *(?:" + "|".join(QUERY_VARIABLES) + r") *\}\})*\{?$"
#: A user metric check's thresholds, exactly one per check.
METRIC_THRESHOLDS = ("max", "min", "maxIncreaseOverStable")

METRIC_CHECK = obj(
    "A check of your own metric: a PromQL query that answers one number for the canary over "
    "the interval, and one threshold. The query may use `{{ name }}`, `{{ namespace }}`, "
    "`{{ track }}` and `{{ interval }}`, substituted with label-value escaping, so put them in "
    "double-quoted label matchers (or a range, for interval). It runs against the Prometheus "
    "of spec.metrics (one the operator's admin allowed), never another. Empty, NaN, more than "
    "one series, or a query Prometheus refuses is inconclusive, never a pass.",
    {
        "name": string(
            "Names the check in status and `herd status`: a DNS label.",
            max_length=63,
            pattern="^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        ),
        "query": string(
            "The PromQL; `{{ track }}` is `canary`, or `stable` for the stable's value.",
            max_length=4096,
        ),
        "max": number("Highest passing value of the canary."),
        "min": number("Lowest passing value of the canary."),
        "maxIncreaseOverStable": number(
            "The query is also run for the stable track over the same interval: the canary "
            "passes up to the stable's value times (1 + this), 0.2 allowing 20 % more. A stable "
            "value of 0 allows the canary no more than 0; a stable track without data is "
            "inconclusive.",
            minimum=0,
        ),
    },
    required=("name", "query"),
    rules=(
        Rule(
            "[" + ", ".join(f"has(self.{t})" for t in METRIC_THRESHOLDS) + "].exists_one(x, x)",
            "each metric check sets exactly one of max, min or maxIncreaseOverStable",
        ),
        Rule(
            f"self.query.matches('{QUERY_TEMPLATE.replace(chr(92), chr(92) * 2)}')",
            "the query may use only {{ name }}, {{ namespace }}, {{ track }} and {{ interval }}",
            field_path=".query",
        ),
    ),
)

COMPARE_WITH_STABLE = obj(
    "Judge the canary against the stable track over the same interval, beside the fixed "
    "thresholds: a canary much worse than the stable fails even under maxErrorRate and "
    "maxP99LatencyMs. The stable track needs minRequests too, or the analysis is "
    "inconclusive.",
    {
        "maxErrorRateIncrease": number(
            "The canary's error rate passes up to the stable's times (1 + this): 1 allows "
            "twice the stable's.",
            minimum=0,
            default=1,
        ),
        "errorRateTolerance": number(
            "An error rate at most this much above the stable's always passes: a stray 5xx "
            "beside a stable with none is no regression.",
            minimum=0,
            maximum=1,
            default=0.001,
        ),
        "maxP99LatencyIncrease": number(
            "The canary's p99 latency passes up to the stable's times (1 + this).",
            minimum=0,
            default=0.5,
        ),
        "p99LatencyToleranceMs": integer(
            "A p99 at most this many ms above the stable's always passes.",
            minimum=0,
            maximum=3_600_000,
            default=10,
        ),
    },
)

ANALYSIS = obj(
    "Automatic checks of the canary's metrics at every interval.",
    {
        "intervalSeconds": integer("Time between checks.", minimum=5, maximum=3600, default=30),
        "maxErrorRate": number(
            "Highest passing fraction of 5xx responses (0..1).", minimum=0, maximum=1, default=0.01
        ),
        "maxP99LatencyMs": integer(
            "Highest passing p99 latency in ms; 0 skips the check.",
            minimum=0,
            maximum=3_600_000,
            default=0,
        ),
        "minRequests": integer(
            "Fewer requests than this in an interval is inconclusive, never a pass.",
            minimum=0,
            maximum=10_000_000,
            default=50,
        ),
        "failureLimit": integer(
            "Failed checks that roll the canary back.", minimum=1, maximum=100, default=2
        ),
        "metrics": array(
            "Checks of your own metrics, judged with the built-in ones: any failing check fails "
            "the analysis.",
            METRIC_CHECK,
            list_map_keys=("name",),
            max_items=10,
        ),
        "compareWithStable": COMPARE_WITH_STABLE,
    },
)


CANARY = obj(
    "Roll out a changed pod template as a canary with weighted traffic steps, or as an A/B "
    "test. Without it, a change is a plain rolling update.",
    {
        "steps": array("The rollout plan, in order.", CANARY_STEP, min_items=1, max_items=50),
        "abTest": AB_TEST,
        "analysis": defaulted_object(ANALYSIS),
        "progressDeadlineSeconds": integer(
            "A rollout making no progress this long fails and rolls back.",
            minimum=30,
            maximum=86_400,
            default=600,
        ),
    },
    rules=(
        Rule(
            "!has(self.steps) || self.steps.exists(s, has(s.setWeight) && s.setWeight > 0)",
            "steps must send the canary traffic: at least one setWeight above 0, or nothing "
            "is ever analysed",
            field_path=".steps",
        ),
        Rule(
            "!has(self.steps) || self.steps.filter(s, "
            + " || ".join(f"has(s.{k})" for k in MATCH_STEPS)
            + ").size() <= 1",
            "at most one step sets a header or cookie route: it stays until the rollout ends",
            field_path=".steps",
        ),
        Rule(
            "has(self.steps) != has(self.abTest)",
            "canary sets exactly one of steps (weighted steps) or abTest (an A/B test)",
        ),
    ),
)

SPEC = obj(
    "The desired state of a Python web service.",
    {
        "image": string(
            "Container image holding the app (and herd-runtime, unless `runtime` is `inject`).",
            max_length=1024,
            pattern=r"^[^\s]+$",
        ),
        "imagePullPolicy": string(
            "When the kubelet pulls the image.", enum=("Always", "IfNotPresent", "Never")
        ),
        "app": string(
            "The application object as `module:callable`, e.g. `shop.main:app`.", max_length=512
        ),
        "runtime": string(
            "Where herd-runtime comes from. `image`: the image has it installed (docs/runtime.md). "
            "`inject`: the image has only Python 3.11 or newer and the app; an init container "
            "copies herd-runtime, gunicorn and uvicorn (pure Python) into the pod from the "
            "operator's runtime image.",
            enum=("image", "inject"),
            default="image",
        ),
        "interface": string(
            "`wsgi` (Flask, Django) or `asgi` (FastAPI, Starlette).",
            enum=("wsgi", "asgi"),
            default="wsgi",
        ),
        "port": integer(
            "Port the app server listens on.", minimum=1024, maximum=65535, default=8000
        ),
        "metricsPort": integer(
            "Port serving Prometheus metrics, apart from the app.",
            minimum=1024,
            maximum=65535,
            default=9102,
        ),
        "replicas": integer(
            "Desired pods. Owned by the autoscaler when autoscaling is enabled.",
            minimum=0,
            maximum=1000,
            default=1,
        ),
        "env": array(
            "Environment variables of the app container.",
            ENV_VAR,
            list_map_keys=("name",),
            max_items=256,
        ),
        "resources": RESOURCES,
        "healthPath": string(
            "HTTP path of the readiness, liveness and startup probes.",
            default="/healthz",
            pattern="^/",
            max_length=1024,
        ),
        "server": defaulted_object(SERVER),
        "route": ROUTE,
        "autoscaling": defaulted_object(AUTOSCALING),
        "canary": CANARY,
        "metrics": defaulted_object(METRICS),
    },
    required=("image", "app"),
    rules=(
        Rule(
            r"self.app.matches('^[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*)*"
            r":[A-Za-z_][A-Za-z0-9_]*(\\(.*\\))?$')",
            "app must be module:callable, for example shop.main:app",
            field_path=".app",
        ),
        Rule("self.port != self.metricsPort", "port and metricsPort must differ"),
        Rule(
            "!has(self.metrics.source) || self.metrics.source != 'ingress-nginx' || "
            "(has(self.route) && has(self.route.ingress))",
            "metrics.source ingress-nginx reads the metrics of the Ingress: it needs "
            "spec.route.ingress",
            field_path=".metrics.source",
        ),
        Rule(
            "!has(self.metrics.source) || self.metrics.source != 'traefik' || has(self.route)",
            "metrics.source traefik reads Traefik's metrics of the route: it needs spec.route",
            field_path=".metrics.source",
        ),
        Rule(
            "!has(self.autoscaling.targetUtilization) || !has(self.metrics.source) || "
            "self.metrics.source == 'app'",
            "autoscaling.targetUtilization reads herd-runtime's own metrics of the pods: it "
            "needs metrics.source app",
            field_path=".autoscaling.targetUtilization",
        ),
        Rule(
            "self.server.workerClass in ['auto', 'uvicorn'] || self.interface == 'wsgi'",
            "an asgi app needs workerClass uvicorn (or auto)",
        ),
        Rule(
            "self.server.workerClass != 'uvicorn' || self.interface == 'asgi'",
            "workerClass uvicorn serves asgi apps: set interface: asgi",
        ),
    ),
)

CONDITION = obj(
    "A condition in the Kubernetes convention.",
    {
        "type": string("Ready, Progressing, Degraded or ScalingActive."),
        "status": string("True, False or Unknown.", enum=("True", "False", "Unknown")),
        "reason": string("One CamelCase word for tools."),
        "message": string("What happened, for people."),
        "observedGeneration": integer("The generation this condition describes."),
        "lastTransitionTime": string("When status last changed."),
    },
    required=("type", "status"),
)

AUTOSCALING_STATUS = obj(
    "What the built-in autoscaler last saw and decided.",
    {
        "currentRPM": number("Requests per minute of the stable track."),
        "errorRate": number("Fraction of 5xx responses (0..1)."),
        "utilization": number(
            "Requests in service (mean over 60 s) per the stable track's concurrency capacity; "
            "with targetUtilization only."
        ),
        "lastPanicTime": string(
            "When utilization over 6 s last reached 1.0 (no scale-in for 60 s after it)."
        ),
        "desiredReplicas": integer("Replicas the autoscaler wants."),
        "lastScaleTime": string("When it last changed spec.replicas."),
        "reason": string(
            "Why: Load, Utilization, Panic, UtilizationUnknown, SaturationErrors, "
            "ErrorsBlockScaleIn, Stabilizing, NoData, PrometheusUnavailable, InvalidQuery."
        ),
        "message": string("The numbers behind the reason."),
        "recommendations": array(
            "Recent recommendations kept for the scale-down stabilization window.",
            obj(
                "One recommendation.",
                {
                    "time": integer("Seconds since the epoch."),
                    "replicas": integer("Replicas recommended."),
                },
            ),
            max_items=1000,
        ),
    },
)

SERVER_STATUS = obj(
    "The app-server configuration Herd resolved and runs.",
    {
        "workerClass": string("Resolved worker class."),
        "workers": integer("Worker processes per pod."),
        "threads": integer("Threads per worker."),
        "keepAliveSeconds": integer("Keep-alive of client connections."),
        "timeoutSeconds": integer("Request timeout."),
        "gracefulTimeoutSeconds": integer("Drain time after SIGTERM."),
        "maxRequests": integer("Requests before a worker is replaced (0: never)."),
        "maxRequestsJitter": integer("Random extra requests, so workers do not restart together."),
        "preload": boolean("The app is imported before the workers fork."),
        "cpu": number("CPUs the sizing assumed (limit, else request, else 1)."),
        "memoryBytes": integer("Memory the sizing checked against (limit, else request)."),
    },
)

#: The checks Herd makes itself, named apart from a metric check's (a DNS label, lowercase).
BUILTIN_CHECKS = (
    "requestCount",
    "errorRate",
    "p99Latency",
    "errorRateVsStable",
    "p99LatencyVsStable",
)

CHECK_RESULT = obj(
    "One check of an analysis.",
    {
        "name": string(f"A built-in check ({', '.join(BUILTIN_CHECKS)}) or a metric check's name."),
        "verdict": string("pass, fail or inconclusive."),
        "message": string("The value against its threshold, or why there is none."),
        "value": number("The canary's value."),
        "stable": number("The stable's value, for a comparison with it."),
    },
)

CANARY_STATUS = obj(
    "The canary rollout, as the operator keeps it on the stable Service (annotation "
    "herd.dev/rollout, where a restarted operator resumes from). A report, never read back.",
    {
        "phase": string("Where the rollout is.", enum=PHASES),
        "stepIndex": integer("0-based index of the current step."),
        "steps": integer("Number of steps."),
        "weight": integer("Percent of traffic on the canary."),
        "match": obj(
            "Requests pinned to the canary whatever the weight (a setHeaderRoute or "
            "setCookieRoute step), until the rollout ends.",
            {
                "kind": string("What the request carries.", enum=MATCH_KINDS),
                "name": string("The header's or cookie's name."),
                "value": string("The header's exact value; unset: `always`."),
            },
        ),
        "stableRevision": string("Revision (pod template hash) of the stable version."),
        "canaryRevision": string("Revision of the canary."),
        "failedChecks": integer("Failed analyses so far (rollback at failureLimit)."),
        "inconclusiveChecks": integer("Consecutive inconclusive analyses."),
        "passedInStep": boolean("An analysis passed during the current step."),
        "passedChecks": integer(
            "Passing analyses during the current step; an A/B test promotes at abTest.analyses."
        ),
        "pausedReason": string("Why it is paused."),
        "message": string("What is happening, for people."),
        "startTime": string("When the rollout started."),
        "stepStartTime": string("When the current step started."),
        "lastProgressTime": string("When it last moved (for progressDeadlineSeconds)."),
        "lastAnalysisTime": string("When the canary was last analysed."),
        "lastAnalysis": obj(
            "The last analysis and its numbers.",
            {
                "time": string("When."),
                "verdict": string("pass, fail or inconclusive."),
                "message": string("Why."),
                "requests": number("Canary requests in the interval."),
                "errorRate": number("Fraction of 5xx."),
                "p99LatencyMs": number("99th percentile latency."),
                "checks": array(
                    "Each check of the analysis and its result.",
                    CHECK_RESULT,
                    max_items=len(BUILTIN_CHECKS) + 10,
                ),
            },
        ),
        "handledIntent": string("Id of the last user intent acted on."),
        "observedGeneration": integer("The spec generation this canary status describes."),
    },
)

INTENT = obj(
    "A user's rollout intent (herd promote, abort, retry, pause, resume), written to the "
    "status subresource so GitOps tools comparing the spec see no drift.",
    {
        "action": string("What was asked.", enum=INTENT_ACTIONS),
        "id": string("Unique id: the operator acts on each intent once.", max_length=64),
        "requestedAt": string("When it was asked."),
        "by": string("Who asked."),
    },
    required=("action", "id"),
)

STATUS = obj(
    "What Herd observed and did.",
    {
        "observedGeneration": integer("The spec generation this status describes."),
        "conditions": array(
            "Ready, Progressing, Degraded, and ScalingActive with autoscaling.",
            CONDITION,
            list_map_keys=("type",),
        ),
        "replicas": integer("Pods of the stable Deployment."),
        "readyReplicas": integer("Ready pods of the stable Deployment."),
        "updatedReplicas": integer("Pods running the current revision."),
        "selector": string("Label selector of the pods (for the scale subresource)."),
        "url": string("Where the service is reachable."),
        "revision": string("Hash of the current pod template."),
        "server": SERVER_STATUS,
        "autoscaling": AUTOSCALING_STATUS,
        "canary": CANARY_STATUS,
        "intent": INTENT,
        "stableSpec": obj(
            "The pod-shaping spec fields of the version that serves. A report: the operator "
            "keeps them on the stable Service (annotation herd.dev/stable-spec) and never "
            "reads them from here.",
            preserve_unknown=True,
        ),
    },
)

ROOT = obj(
    "A Python web service run by Herd: tuned app servers, a Service, an optional route, "
    "autoscaling and canary rollouts.",
    # apiVersion, kind and metadata are implicit: a CRD may not describe them.
    {
        "spec": SPEC,
        "status": STATUS,
    },
    required=("spec",),
    rules=(
        Rule(
            f"self.metadata.name.size() <= {MAX_NAME_LENGTH} && "
            "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
            f"metadata.name must be a DNS-1035 label of at most {MAX_NAME_LENGTH} characters "
            "(lowercase letters, digits, '-', starting with a letter): it names Services and "
            "the NAME-canary objects",
        ),
    ),
)
