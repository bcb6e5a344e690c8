"""Bad WebServices: rejected at admission with a clear message, or reported Degraded with a
reason, while a good WebService beside them keeps being served."""

from __future__ import annotations

import time

import pytest
import yaml

from bench.harness.cluster import Kubectl, eventually
from tests.support.http_stub import serving

BASE = {"image": "web:1", "app": "app.main:app"}


def manifest(name: str, spec: dict) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "herd.dev/v1alpha1",
            "kind": "WebService",
            "metadata": {"name": name},
            "spec": spec,
        }
    )


def degraded(kubectl: Kubectl, name: str) -> dict | None:
    """The WebService's Degraded condition once it is True."""
    ws = kubectl.get("webservice", name)
    found = [c for c in ws.get("status", {}).get("conditions", []) if c["type"] == "Degraded"]
    return found[0] if found and found[0]["status"] == "True" else None


def without(key: str) -> dict:
    return {k: v for k, v in BASE.items() if k != key}


REJECTED = [
    ("no-image", without("image"), "spec.image: Required value"),
    ("no-app", without("app"), "spec.app: Required value"),
    ("image-with-space", {**BASE, "image": " web:1"}, "spec.image: Invalid value"),
    ("app-no-callable", {**BASE, "app": "shop.main"}, "app must be module:callable"),
    ("app-bad-chars", {**BASE, "app": "shop-main:app"}, "app must be module:callable"),
    # gunicorn resolves a name or a call after the colon, not an attribute path.
    ("app-attribute-path", {**BASE, "app": "shop.main:api.app"}, "app must be module:callable"),
    ("bad-interface", {**BASE, "interface": "cgi"}, 'Unsupported value: "cgi"'),
    ("low-port", {**BASE, "port": 80}, "should be greater than or equal to 1024"),
    ("same-ports", {**BASE, "port": 9102}, "port and metricsPort must differ"),
    ("negative-replicas", {**BASE, "replicas": -1}, "should be greater than or equal to 0"),
    ("bad-workload", {**BASE, "server": {"workload": "gpu"}}, 'Unsupported value: "gpu"'),
    (
        "uvicorn-on-wsgi",
        {**BASE, "server": {"workerClass": "uvicorn"}},
        "workerClass uvicorn serves asgi apps",
    ),
    (
        "sync-on-asgi",
        {**BASE, "interface": "asgi", "server": {"workerClass": "sync"}},
        "an asgi app needs workerClass uvicorn",
    ),
    (
        "threads-on-sync",
        {**BASE, "server": {"workerClass": "sync", "threads": 4}},
        "threads > 1 needs workerClass gthread",
    ),
    (
        "too-many-workers",
        {**BASE, "server": {"workers": 500}},
        "should be less than or equal to 64",
    ),
    (
        "cpu-not-quantity",
        {**BASE, "resources": {"limits": {"cpu": "lots"}}},
        "must be a Kubernetes quantity",
    ),
    ("health-no-slash", {**BASE, "healthPath": "healthz"}, "spec.healthPath: Invalid value"),
    (
        "ingress-no-host",
        {**BASE, "route": {"ingress": {"path": "/"}}},
        "spec.route.ingress.host: Required value",
    ),
    (
        "ingress-bad-host",
        {**BASE, "route": {"ingress": {"host": "Shop_Example"}}},
        "spec.route.ingress.host: Invalid value",
    ),
    (
        "two-routers",
        {
            **BASE,
            "route": {
                "ingress": {"host": "a.example.com"},
                "httpRoute": {"host": "a.example.com", "gateway": {"name": "web"}},
            },
        },
        "route names exactly one router",
    ),
    ("no-router", {**BASE, "route": {}}, "route names exactly one router"),
    (
        "gateway-fields-on-an-ingress",
        {**BASE, "route": {"ingress": {"host": "a.example.com", "gateway": {"name": "web"}}}},
        'unknown field "spec.route.ingress.gateway"',
    ),
    (
        "nginx-metrics-without-an-ingress",
        {
            **BASE,
            "route": {"httpRoute": {"host": "a.example.com", "gateway": {"name": "web"}}},
            "metrics": {"source": "ingress-nginx"},
        },
        "reads the metrics of the Ingress: it needs spec.route.ingress",
    ),
    (
        "herd-env",
        {**BASE, "env": [{"name": "HERD_METRICS_PORT", "value": "1"}]},
        "are set by Herd for its runtime",
    ),
    (
        "workers-env",
        {**BASE, "env": [{"name": "WEB_CONCURRENCY", "value": "9"}]},
        "are set by Herd for its runtime",
    ),
    (
        "min-over-max",
        {**BASE, "autoscaling": {"minReplicas": 5, "maxReplicas": 2}},
        "minReplicas must not exceed maxReplicas",
    ),
    (
        "error-rate-over-1",
        {**BASE, "autoscaling": {"maxErrorRate": 1.5}},
        "should be less than or equal to 1",
    ),
    (
        "utilization-zero",
        {**BASE, "autoscaling": {"targetUtilization": 0}},
        "targetUtilization must be above 0",
    ),
    (
        "utilization-over-1",
        {**BASE, "autoscaling": {"targetUtilization": 1.5}},
        "should be less than or equal to 1",
    ),
    (
        "utilization-from-traefik",
        {
            **BASE,
            "route": {"ingress": {"host": "a.example.com"}},
            "metrics": {"source": "traefik"},
            "autoscaling": {"targetUtilization": 0.7},
        },
        "it needs metrics.source app",
    ),
    (
        "utilization-with-keda",
        {**BASE, "autoscaling": {"engine": "keda", "targetUtilization": 0.7}},
        "the keda engine scales on RPM only",
    ),
    (
        "weight-over-100",
        {**BASE, "canary": {"steps": [{"setWeight": 150}]}},
        "should be less than or equal to 100",
    ),
    (
        "step-both",
        {**BASE, "canary": {"steps": [{"setWeight": 10, "pause": {}}]}},
        "each step sets exactly one of setWeight, pause, setHeaderRoute or setCookieRoute",
    ),
    (
        "step-neither",
        {**BASE, "canary": {"steps": [{}]}},
        "each step sets exactly one of setWeight, pause, setHeaderRoute or setCookieRoute",
    ),
    (
        "step-weight-and-header",
        {**BASE, "canary": {"steps": [{"setWeight": 10, "setHeaderRoute": {"name": "X-Canary"}}]}},
        "each step sets exactly one of setWeight, pause, setHeaderRoute or setCookieRoute",
    ),
    (
        "header-name-not-a-token",
        {
            **BASE,
            "canary": {"steps": [{"setHeaderRoute": {"name": "X Canary"}}, {"setWeight": 10}]},
        },
        "spec.canary.steps[0].setHeaderRoute.name: Invalid value",
    ),
    (
        "header-without-name",
        {**BASE, "canary": {"steps": [{"setHeaderRoute": {"value": "on"}}, {"setWeight": 10}]}},
        "spec.canary.steps[0].setHeaderRoute.name: Required value",
    ),
    (
        "header-value-padded",
        {
            **BASE,
            "canary": {
                "steps": [
                    {"setHeaderRoute": {"name": "X-Canary", "value": " on"}},
                    {"setWeight": 10},
                ]
            },
        },
        "spec.canary.steps[0].setHeaderRoute.value: Invalid value",
    ),
    (
        "header-name-too-long",
        {
            **BASE,
            "canary": {"steps": [{"setHeaderRoute": {"name": "X" * 257}}, {"setWeight": 10}]},
        },
        "may not be more than 256",
    ),
    (
        "cookie-name-not-a-token",
        {**BASE, "canary": {"steps": [{"setCookieRoute": {"name": "a=b"}}, {"setWeight": 10}]}},
        "spec.canary.steps[0].setCookieRoute.name: Invalid value",
    ),
    (
        "two-match-routes",
        {
            **BASE,
            "canary": {
                "steps": [
                    {"setHeaderRoute": {"name": "X-Canary"}},
                    {"setWeight": 10},
                    {"setCookieRoute": {"name": "canary"}},
                ]
            },
        },
        "at most one step sets a header or cookie route",
    ),
    (
        "steps-and-ab-test",
        {
            **BASE,
            "canary": {
                "steps": [{"setWeight": 10}],
                "abTest": {"match": {"header": {"name": "X-Canary"}}},
            },
        },
        "canary sets exactly one of steps (weighted steps) or abTest (an A/B test)",
    ),
    (
        "neither-steps-nor-ab-test",
        {**BASE, "canary": {"analysis": {"intervalSeconds": 10}}},
        "canary sets exactly one of steps (weighted steps) or abTest (an A/B test)",
    ),
    (
        "ab-test-header-and-cookie",
        {
            **BASE,
            "canary": {"abTest": {"match": {"header": {"name": "X-A"}, "cookie": {"name": "b"}}}},
        },
        "abTest.match sets exactly one of header or cookie",
    ),
    (
        "ab-test-no-analyses",
        {
            **BASE,
            "canary": {"abTest": {"match": {"cookie": {"name": "b"}}, "analyses": 0}},
        },
        "should be greater than or equal to 1",
    ),
    ("no-steps", {**BASE, "canary": {"steps": []}}, "should have at least 1 items"),
    (
        "no-canary-traffic",
        {**BASE, "canary": {"steps": [{"setWeight": 0}, {"pause": {"duration": 60}}]}},
        "at least one setWeight above 0",
    ),
    (
        "bad-duration",
        {**BASE, "canary": {"steps": [{"pause": {"duration": "ten"}}]}},
        "duration must be seconds",
    ),
    (
        "metric-two-thresholds",
        {
            **BASE,
            "canary": {
                "steps": [{"setWeight": 10}],
                "analysis": {
                    "metrics": [{"name": "orders", "query": "sum(x)", "max": 1, "min": 0}]
                },
            },
        },
        "each metric check sets exactly one of max, min or maxIncreaseOverStable",
    ),
    (
        "metric-unknown-variable",
        {
            **BASE,
            "canary": {
                "steps": [{"setWeight": 10}],
                "analysis": {
                    "metrics": [{"name": "orders", "query": 'sum(x{pod="{{ pod }}"})', "max": 1}]
                },
            },
        },
        "the query may use only {{ name }}, {{ namespace }}, {{ track }} and {{ interval }}",
    ),
    ("Upper-Name", BASE, "a lowercase RFC 1123 subdomain"),
    ("9starts-with-digit", BASE, "metadata.name must be a DNS-1035 label"),
    ("a" * 57, BASE, "metadata.name must be a DNS-1035 label of at most 56"),
]


@pytest.mark.parametrize(("name", "spec", "message"), REJECTED, ids=[r[0][:30] for r in REJECTED])
def test_rejected_at_admission(herd_operator, kubectl: Kubectl, name, spec, message):
    result = kubectl.run("apply", "-f", "-", stdin=manifest(name, spec), check=False)
    assert result.returncode != 0, f"{name} was accepted"
    assert message in result.stderr


DEGRADED = [
    # The API server rejects the Deployment Herd renders from it.
    (
        "bad-env-source",
        {**BASE, "env": [{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.bogus"}}}]},
        "ApplyFailed",
        "Deployment bad-env-source",
    ),
    (
        "request-over-limit",
        {**BASE, "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}},
        "ApplyFailed",
        "must be less than or equal to cpu limit",
    ),
    # Served, but the configuration is risky: workers will not fit in memory.
    (
        "memory-overcommit",
        {**BASE, "server": {"workers": 16}, "resources": {"limits": {"memory": "128Mi"}}},
        "MemoryOvercommit",
        "expect OOM kills",
    ),
    (
        "short-keepalive",
        {
            **BASE,
            "server": {"keepAliveSeconds": 5},
            "route": {"ingress": {"host": "ka.example.com"}},
        },
        "KeepAliveTooShort",
        "clients will see 502s",
    ),
]


def test_degraded_with_a_reason_while_a_good_one_is_served(herd_operator, kubectl: Kubectl):
    for name, spec, _, _ in DEGRADED:
        kubectl.apply(manifest(name, spec))
    kubectl.apply(manifest("good", {**BASE, "replicas": 2}))

    for name, _, reason, message in DEGRADED:
        found = eventually(lambda n=name: degraded(kubectl, n), timeout=30, what=f"{name} Degraded")
        assert found["reason"] == reason
        assert message in found["message"]
    kubectl.run("wait", "--for", "condition=Ready", "webservice/good", "--timeout=60s")
    # The operator is alive and still reacts to changes.
    kubectl.run("scale", "webservice/good", "--replicas", "3")
    eventually(
        lambda: kubectl.get("deployment", "good")["spec"]["replicas"] == 3,
        timeout=20,
        what="good scaled to 3",
    )


def test_a_prometheus_the_admin_did_not_allow_is_never_called(herd_operator, kubectl: Kubectl):
    """The operator's settings allow the default Prometheus and loopback 127.0.0.1; a server
    on 127.0.0.2 stands for anything else a namespace user could name (metadata endpoints)."""
    with serving([(200, b"{}")], host="127.0.0.2") as (url, seen):
        spec = {**BASE, "autoscaling": {"enabled": True}, "metrics": {"prometheusURL": url}}
        kubectl.apply(manifest("elsewhere", spec))
        condition = eventually(
            lambda: degraded(kubectl, "elsewhere"), timeout=30, what="Degraded PrometheusNotAllowed"
        )
        assert condition["reason"] == "PrometheusNotAllowed"
        assert "127.0.0.2" in condition["message"]
        time.sleep(7)  # more than two autoscaler intervals (3 s) of the tests' operator
        assert seen == []
        assert not kubectl.exists("deployment", "elsewhere")
