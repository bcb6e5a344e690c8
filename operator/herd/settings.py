"""Operator-wide settings: command-line flags, each with an environment variable fallback."""

from __future__ import annotations

import os
from dataclasses import dataclass

from herd.election import Timing


@dataclass(frozen=True)
class Settings:
    #: IngressClass for WebServices that name none ("" leaves it to the cluster's default).
    ingress_class: str = "nginx"
    #: Prometheus the autoscaler and canary analysis read, unless a WebService names its own.
    prometheus_url: str = "http://prometheus-server.monitoring.svc:80"
    #: Origins (scheme://host, or scheme://host:port) a WebService's metrics.prometheusURL may
    #: name besides the default's: the cluster admin decides which endpoints the operator calls.
    prometheus_allowed: tuple[str, ...] = ()
    #: A directory holding the default Prometheus's credentials (a mounted Secret: `token`, or
    #: `username` and `password`), sent to its origin only.
    prometheus_credentials: str = ""
    #: Ingress annotations (names or globs) a WebService may set although herd.annotation_policy
    #: calls them risky: the cluster admin's exceptions.
    allowed_ingress_annotations: tuple[str, ...] = ()
    #: The image `spec.runtime: inject` copies herd-runtime from (apps/runtime/Dockerfile), one
    #: per Herd release; the chart sets it to its own version's.
    runtime_image: str = "ghcr.io/herd-dev/herd-runtime:0.1.0"
    #: Seconds between two decisions of the built-in autoscaler (the HPA's sync period).
    autoscale_interval: float = 15.0
    #: Seconds between two ticks of a canary rollout (analysis runs every intervalSeconds).
    canary_interval: float = 5.0
    #: Seconds between two retries of a WebService the API server refused to let the operator
    #: serve (RBAC taken away, a rejected apply): nothing else would reconcile it once fixed.
    retry_interval: float = 30.0
    #: A prometheus-operator PodMonitor per WebService, where the cluster serves the CRD: for
    #: Prometheus servers that select PodMonitors rather than read the pods' scrape annotations.
    pod_monitors: bool = False
    #: Labels on every PodMonitor, e.g. what the Prometheus's podMonitorSelector matches
    #: (kube-prometheus-stack: release=NAME).
    pod_monitor_labels: tuple[tuple[str, str], ...] = ()
    #: The leader Lease's duration, renew deadline and retry period (controller-runtime's).
    leader_election: Timing = Timing()

    @classmethod
    def from_environment(cls) -> Settings:
        return cls(
            ingress_class=os.environ.get("HERD_INGRESS_CLASS", cls.ingress_class),
            prometheus_url=os.environ.get("HERD_PROMETHEUS_URL", cls.prometheus_url),
            prometheus_allowed=tuple(
                o for o in os.environ.get("HERD_PROMETHEUS_ALLOWED", "").split(",") if o
            ),
            prometheus_credentials=os.environ.get("HERD_PROMETHEUS_CREDENTIALS", ""),
            runtime_image=os.environ.get("HERD_RUNTIME_IMAGE", cls.runtime_image),
            allowed_ingress_annotations=tuple(
                a for a in os.environ.get("HERD_ALLOWED_INGRESS_ANNOTATIONS", "").split(",") if a
            ),
            autoscale_interval=float(
                os.environ.get("HERD_AUTOSCALE_INTERVAL", cls.autoscale_interval)
            ),
            canary_interval=float(os.environ.get("HERD_CANARY_INTERVAL", cls.canary_interval)),
            retry_interval=float(os.environ.get("HERD_RETRY_INTERVAL", cls.retry_interval)),
            pod_monitors=os.environ.get("HERD_POD_MONITORS", "").lower() in ("true", "1"),
            pod_monitor_labels=tuple(
                label_pair(p) for p in os.environ.get("HERD_POD_MONITOR_LABELS", "").split(",") if p
            ),
            leader_election=Timing(
                lease_duration=float(os.environ.get("HERD_LEASE_DURATION", Timing.lease_duration)),
                renew_deadline=float(os.environ.get("HERD_RENEW_DEADLINE", Timing.renew_deadline)),
                retry_period=float(os.environ.get("HERD_RETRY_PERIOD", Timing.retry_period)),
            ),
        )


def label_pair(text: str) -> tuple[str, str]:
    """`key=value` as (key, value)."""
    key, equals, value = text.partition("=")
    if not key or not equals:
        raise ValueError(f"{text!r} is not a label: key=value")
    return key, value
