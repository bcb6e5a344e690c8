"""Metric sources behind one small interface: the PromQL that answers "how many requests, how
many failed, how slow" for one track of one WebService. Pure: queries are tested as text.

- `app`: herd-runtime's `http_requests_total{method, code, route}` and
  `http_request_duration_seconds`, scraped from the pods. Prometheus's usual pod discovery
  (the prometheus chart's `kubernetes-pods` job) copies pod labels onto the series, sanitised:
  `app.kubernetes.io/instance` becomes `app_kubernetes_io_instance`, `herd.dev/track`
  becomes `herd_dev_track`, and adds `namespace`.
- `ingress-nginx`: `nginx_ingress_controller_requests{namespace, ingress, status, canary}`
  and `nginx_ingress_controller_request_duration_seconds`. Requests the controller sent to a
  canary upstream carry a non-empty `canary` label; Herd tells the tracks apart by it
  (Flagger's nginx queries do not).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from herd.serving import runtime

Track = Literal["stable", "canary"]

#: 5xx responses that more replicas can fix: the proxy found no healthy or free upstream.
SATURATION_CODES = "502|503|504"


@dataclass(frozen=True)
class Target:
    namespace: str
    name: str
    track: Track = "stable"
    window: str = "1m"


def _selector(labels: dict[str, str], extra: str = "") -> str:
    parts = [f'{key}="{_escape(value)}"' for key, value in labels.items()]
    if extra:
        parts.append(extra)
    return "{" + ", ".join(parts) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


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


SOURCES: dict[str, MetricSource] = {s.name: s for s in (AppSource(), IngressNginxSource())}
