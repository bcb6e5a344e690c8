"""What one Prometheus query answered, as the decisions (autoscaling, canary analysis) see it.
Pure: the client in `herd.prometheus` makes these; nothing here does I/O.

A query answers with exactly one of: a value, an empty result (no such series: no traffic
yet, or a wrong selector), NaN (e.g. an error rate over zero requests), or a failure
(Prometheus unreachable, timed out, or refused the query). Callers must treat everything but
a value as "no data", never as zero: that mistake is behind canaries promoted on no traffic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

Kind = Literal["value", "empty", "nan", "unreachable", "invalid"]


@dataclass(frozen=True)
class Observation:
    kind: Kind
    value: float | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.kind == "value"


@dataclass(frozen=True)
class Series:
    """What one range query answered: (time, value) samples, oldest first, when `kind` is
    "value" (NaN samples kept: no requests at that time); "nan" when every sample is NaN;
    otherwise no samples, as for an Observation."""

    kind: Kind
    points: tuple[tuple[float, float], ...] = ()
    detail: str = ""


class MetricsReader(Protocol):
    """What the loops ask of Prometheus (`herd.prometheus.Prometheus`; a stand-in in tests)."""

    def query(self, url: str, promql: str) -> Observation: ...
