"""The one module that talks to Prometheus: instant queries over its HTTP API.

Synchronous, like every loop of the operator (see docs/development.md): one urllib3 pool
manager serves every Prometheus URL a WebService names, with a connection pool per host.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import urllib3

from herd.observation import Observation


class Prometheus:
    def __init__(self, timeout: float = 5.0, retries: int = 2, backoff: float = 0.5) -> None:
        self._http = urllib3.PoolManager(timeout=urllib3.Timeout(total=timeout), retries=False)
        self.retries = retries
        self.backoff = backoff

    def query(self, url: str, promql: str) -> Observation:
        """The answer of the Prometheus at `url` to one instant query; retried with backoff
        while it is unreachable or answers 5xx."""
        endpoint = f"{url.rstrip('/')}/api/v1/query"
        failure = Observation("unreachable", detail="no attempt made")
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = self._http.request("GET", endpoint, fields={"query": promql})
            except urllib3.exceptions.HTTPError as error:
                failure = Observation(
                    "unreachable", detail=f"{url}: {type(error).__name__}: {error}"
                )
                continue
            if response.status >= 500:
                failure = Observation(
                    "unreachable", detail=f"{url}: HTTP {response.status}: {response.data[:200]!r}"
                )
                continue
            try:
                return parse_response(json.loads(response.data))
            except ValueError:
                return Observation("invalid", detail=f"{url}: the answer is not JSON")
        return failure

    def close(self) -> None:
        self._http.clear()


def parse_response(body: dict[str, Any]) -> Observation:
    """An Observation from the JSON of /api/v1/query."""
    if body.get("status") != "success":
        return Observation("invalid", detail=f"{body.get('errorType')}: {body.get('error')}")
    data = body.get("data", {})
    if data.get("resultType") == "scalar":
        samples = [data["result"]]
    elif data.get("resultType") == "vector":
        samples = [series["value"] for series in data.get("result", [])]
    else:
        return Observation("invalid", detail=f"unexpected result type {data.get('resultType')}")
    if not samples:
        return Observation("empty", detail="no series matched")
    if len(samples) > 1:
        return Observation("invalid", detail=f"{len(samples)} series where one was expected")
    value = float(samples[0][1])
    if math.isnan(value) or math.isinf(value):
        return Observation("nan", detail=f"the query evaluated to {samples[0][1]}")
    return Observation("value", value)
