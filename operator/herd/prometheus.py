"""The one module that talks to Prometheus: instant queries over its HTTP API, async.

A query answers with exactly one of: a value, an empty result (no such series: no traffic
yet, or a wrong selector), NaN (e.g. an error rate over zero requests), or a failure
(Prometheus unreachable, timed out, or refused the query). Callers must treat everything but
a value as "no data", never as zero: that mistake is behind canaries promoted on no traffic.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Literal

import aiohttp

Kind = Literal["value", "empty", "nan", "unreachable", "invalid"]


@dataclass(frozen=True)
class Observation:
    kind: Kind
    value: float | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.kind == "value"


class Prometheus:
    def __init__(
        self, url: str, timeout: float = 5.0, retries: int = 2, backoff: float = 0.5
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.retries = retries
        self.backoff = backoff
        self._session: aiohttp.ClientSession | None = None

    async def query(self, promql: str) -> Observation:
        failure = Observation("unreachable", detail="no attempt made")
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                return await self._query_once(promql)
            except (TimeoutError, aiohttp.ClientError, OSError) as error:
                failure = Observation(
                    "unreachable", detail=f"{self.url}: {type(error).__name__}: {error}"
                )
        return failure

    async def _query_once(self, promql: str) -> Observation:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        async with self._session.get(
            f"{self.url}/api/v1/query", params={"query": promql}
        ) as response:
            if response.status >= 500:
                raise aiohttp.ClientResponseError(
                    response.request_info, (), status=response.status, message=await response.text()
                )
            body = await response.json(content_type=None)
        return parse_response(body)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def parse_response(body: dict) -> Observation:
    """An Observation from the JSON of /api/v1/query (pure)."""
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
