"""What a router sends to the canary during a rollout. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from herd.model import RequestMatch


@dataclass(frozen=True)
class CanaryTraffic:
    """A weighted share of the requests, and those a match pins to the canary whatever the
    weight (ingress-nginx evaluates the header, then the cookie, then the weight)."""

    weight: int
    match: RequestMatch | None = None
