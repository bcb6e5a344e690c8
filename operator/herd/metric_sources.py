"""Metric sources behind one small interface: the PromQL that answers "how many requests, how
many failed, how slow" for one track of one WebService. Pure: queries are tested as text.

- `app`: herd-runtime's `http_requests_total{method, code, route}` and
  `http_request_duration_seconds`, scraped from the pods. Prometheus's usual pod discovery
  (the prometheus chart's `kubernetes-pods` job) copies pod labels onto the series, sanitised:
  `app.kubernetes.io/instance` becomes `app_kubernetes_io_instance`, `herd.dev/track`
  becomes `herd_dev_track`, and adds `namespace`. The PodMonitor of `--pod-monitors`
  (herd.serving.pod_monitor) gives the series the same three.
- `ingress-nginx`: `nginx_ingress_controller_requests{namespace, ingress, status, canary}`
  and `nginx_ingress_controller_request_duration_seconds`. Requests the controller sent to a
  canary upstream carry a non-empty `canary` label; Herd tells the tracks apart by it
  (Flagger's nginx queries do not).
- `traefik`: `traefik_service_requests_total{code, method, protocol, service}` and
  `traefik_service_request_duration_seconds`. Only the `service` label tells WebServices
  and tracks apart, and its value is Traefik's name for the backend, which depends on the
  router (see `TraefikSource`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Protocol

from herd import api
from herd.model import HttpRoute, IngressRoute, Route, WebService
from herd.serving import runtime

Track = Literal["stable", "canary"]
RouteKind = Literal["ingress", "httpRoute"]

#: 5xx responses that more replicas can fix: the proxy found no healthy or free upstream.
SATURATION_CODES = "502|503|504"


@dataclass(frozen=True)
class Target:
    namespace: str
    name: str
    track: Track = "stable"
    window: str = "1m"
    #: The router in front, for sources whose series are named after it (Traefik's).
    route: RouteKind | None = None
    #: The HTTPRoute's Gateway as (namespace, name).
    gateway: tuple[str, str] | None = None


def target(ws: WebService, track: Track = "stable", window: str = "1m") -> Target:
    """What every query about `ws` selects."""
    return target_behind(ws.route, ws.namespace, ws.name, track, window)


def target_behind(
    route: Route | None, namespace: str, name: str, track: Track = "stable", window: str = "1m"
) -> Target:
    """What every query about the WebService `namespace/name` behind `route` selects: the one
    place a Target is built from a spec."""
    if isinstance(route, IngressRoute):
        return Target(namespace, name, track, window, "ingress")
    if isinstance(route, HttpRoute):
        gateway = (route.gateway.namespace or namespace, route.gateway.name)
        return Target(namespace, name, track, window, "httpRoute", gateway)
    return Target(namespace, name, track, window)


def _selector(labels: dict[str, str], extra: str = "") -> str:
    parts = [f'{key}="{_escape(value)}"' for key, value in labels.items()]
    if extra:
        parts.append(extra)
    return "{" + ", ".join(parts) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


_VARIABLE = re.compile(r"\{\{ *(" + "|".join(api.QUERY_VARIABLES) + r") *\}\}")


def render_query(template: str, target: Target) -> str:
    """A metric check's query for `target`: each `{{ variable }}` replaced by its value,
    escaped as a PromQL string's content, so no value can end a label matcher and write
    PromQL of its own (the API's rule admits no other variable)."""
    values = {
        "name": target.name,
        "namespace": target.namespace,
        "track": target.track,
        "interval": target.window,
    }
    return _VARIABLE.sub(lambda match: _escape(values[match.group(1)]), template)


class MetricSource(Protocol):
    name: str

    def requests_per_minute(self, target: Target) -> str: ...

    def error_rate(self, target: Target) -> str: ...

    def saturation_error_rate(self, target: Target) -> str: ...

    def p99_latency_seconds(self, target: Target) -> str: ...

    def request_count(self, target: Target) -> str: ...


@dataclass(frozen=True)
class _CounterSource:
    """A source whose requests are one counter with a status-code label and a latency
    histogram; subclasses say which series and labels select a track."""

    name: str
    requests: str
    duration_bucket: str
    code_label: str

    def labels(self, target: Target) -> tuple[dict[str, str], str]:
        raise NotImplementedError

    def _rate(self, target: Target, metric: str, extra: str = "") -> str:
        labels, track = self.labels(target)
        both = ", ".join(x for x in (track, extra) if x)
        return f"sum(rate({metric}{_selector(labels, both)}[{target.window}]))"

    def requests_per_minute(self, target: Target) -> str:
        return f"60 * {self._rate(target, self.requests)}"

    def error_rate(self, target: Target) -> str:
        return self._share(target, f'{self.code_label}=~"5.."')

    def saturation_error_rate(self, target: Target) -> str:
        return self._share(target, f'{self.code_label}=~"{SATURATION_CODES}"')

    def _share(self, target: Target, matcher: str) -> str:
        """The share of requests matching `matcher`. With no such request the numerator has no
        series at all: `or vector(0)` makes it 0, while no requests at all stay "no data"."""
        part = self._rate(target, self.requests, matcher)
        return f"({part} or vector(0)) / {self._rate(target, self.requests)}"

    def p99_latency_seconds(self, target: Target) -> str:
        labels, track = self.labels(target)
        selector = _selector(labels, track)
        return (
            f"histogram_quantile(0.99, sum by (le) "
            f"(rate({self.duration_bucket}{selector}[{target.window}])))"
        )

    def request_count(self, target: Target) -> str:
        labels, track = self.labels(target)
        return f"sum(increase({self.requests}{_selector(labels, track)}[{target.window}]))"


class AppSource(_CounterSource):
    def __init__(self) -> None:
        super().__init__(
            "app",
            runtime.REQUESTS_METRIC,
            f"{runtime.DURATION_METRIC}_bucket",
            runtime.STATUS_CODE_LABEL,
        )

    def labels(self, target: Target) -> tuple[dict[str, str], str]:
        return (
            {
                "namespace": target.namespace,
                "app_kubernetes_io_instance": target.name,
                "herd_dev_track": target.track,
            },
            "",
        )

    def concurrency(self, target: Target) -> str:
        """Mean requests in service over the window, by Little's law: the request-seconds
        finished per second. Exact over the window (no scrape sampling), and read from the
        counters every herd-runtime has exported, whose dead workers' shares are archived;
        a request still running counts once it ends."""
        return self._rate(target, f"{runtime.DURATION_METRIC}_sum")

    def in_flight(self, target: Target) -> str:
        """Requests in service now, the in-flight gauge averaged over the window: it sees
        requests that have not ended yet (what a saturating load of slow requests is), but
        only at each scrape, so the window must hold at least one."""
        labels, track = self.labels(target)
        selector = _selector(labels, track)
        return f"sum(avg_over_time({runtime.IN_FLIGHT_METRIC}{selector}[{target.window}]))"


class IngressNginxSource(_CounterSource):
    def __init__(self) -> None:
        super().__init__(
            "ingress-nginx",
            "nginx_ingress_controller_requests",
            "nginx_ingress_controller_request_duration_seconds_bucket",
            "status",
        )

    def labels(self, target: Target) -> tuple[dict[str, str], str]:
        track = 'canary=""' if target.track == "stable" else 'canary!=""'
        return {"namespace": target.namespace, "ingress": target.name}, track


def traefik_normalize(name: str) -> str:
    """Traefik's provider.Normalize: the runs of letters and digits, joined by "-"."""
    return "-".join(re.findall(r"[^\W_]+", name))


class TraefikSource(_CounterSource):
    """Traefik names a backend service after the router that made it (as of Traefik v3.7):

    - its ingress-nginx provider: `NS-INGRESS-SERVICE-PORT@kubernetesingressnginx`, and the
      canary's after the primary with `-canary`. The `-wrr` service that weighs the two is
      never selected: it would count every request twice.
    - its Gateway API provider: `httproute-NS-ROUTE-gw-GWNS-GW-ep-ENTRYPOINT-RULE-HASH-svc-NS-
      BACKEND-INDEX@kubernetesgateway` (seen on Traefik v3.7: `…-ep-web-0-78eb568e60c5b100b753-
      svc-…`). The entrypoint is Traefik's own configuration and the hash its own, hence a
      regex; the stable backend's name ends in digits right before `@`, so it cannot match the
      canary's `-canary-INDEX`.
    """

    def __init__(self) -> None:
        super().__init__(
            "traefik",
            "traefik_service_requests_total",
            "traefik_service_request_duration_seconds_bucket",
            "code",
        )

    def labels(self, target: Target) -> tuple[dict[str, str], str]:
        ns, name = target.namespace, target.name
        if target.route == "ingress":
            # Herd's Ingress and its backend Service are both named after the WebService,
            # and it refers to the port by name (herd.routing.nginx).
            service = traefik_normalize(f"{ns}-{name}-{name}-http")
            suffix = "-canary" if target.track == "canary" else ""
            return {"service": f"{service}{suffix}@kubernetesingressnginx"}, ""
        if target.route == "httpRoute" and target.gateway is not None:
            # The canary Service is named as herd.objectmeta.canary_name names it.
            backend = f"{name}-canary" if target.track == "canary" else name
            gw_ns, gw_name = target.gateway
            route = traefik_normalize(f"httproute-{ns}-{name}-gw-{gw_ns}-{gw_name}-ep")
            svc = traefik_normalize(f"svc-{ns}-{backend}")
            return {}, f'service=~"{route}-.+-{svc}-[0-9]+@kubernetesgateway"'
        raise ValueError(f"metrics.source traefik needs a route in front of {ns}/{name}")


#: The one source that knows the pods' own concurrency (autoscaling.targetUtilization).
APP = AppSource()

SOURCES: dict[str, MetricSource] = {s.name: s for s in (APP, IngressNginxSource(), TraefikSource())}
