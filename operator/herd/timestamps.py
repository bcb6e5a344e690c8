"""Times as the Kubernetes API writes them: RFC 3339 in UTC, whole seconds. Pure."""

from __future__ import annotations

import datetime

_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def rfc3339(seconds: float) -> str:
    """`1700000000` -> `2023-11-14T22:13:20Z`."""
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime(_FORMAT)


def seconds(text: str | None) -> float:
    """The inverse of `rfc3339`; 0 for an unset time."""
    return datetime.datetime.fromisoformat(text).timestamp() if text else 0.0
