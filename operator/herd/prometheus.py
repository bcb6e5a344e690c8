"""The one module that talks to Prometheus: instant and range queries over its HTTP API.

Synchronous, like every loop of the operator (see docs/development.md): one urllib3 pool
manager serves every Prometheus URL a WebService names, with a connection pool per host.
"""

from __future__ import annotations

import base64
import json
import math
import pathlib
import time
from collections.abc import Callable
from typing import Any

import urllib3

from herd.api_errors import ApiError
from herd.endpoints import redacted, same_origin
from herd.observation import Observation, Series


class Unreachable(Exception):
    """A request got no HTTP answer; the message names the failure, never an answer's body."""


def read_credentials(directory: str) -> str | None:
    """The Authorization header a mounted Secret gives: `token` (bearer), or `username` and
    `password` (basic); None without a directory."""
    if not directory:
        return None
    folder = pathlib.Path(directory)
    if (folder / "token").is_file():
        return f"Bearer {(folder / 'token').read_text().strip()}"
    user, password = folder / "username", folder / "password"
    if user.is_file() and password.is_file():
        pair = f"{user.read_text().strip()}:{password.read_text().strip()}"
        return f"Basic {base64.b64encode(pair.encode()).decode()}"
    raise ValueError(f"{directory} holds neither token nor username and password")


class Prometheus:
    def __init__(
        self,
        timeout: float = 5.0,
        retries: int = 2,
        backoff: float = 0.5,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        """`credentials`: (URL, Authorization header), sent to that URL's origin only, never to
        another a WebService names."""
        self._http = urllib3.PoolManager(timeout=urllib3.Timeout(total=timeout), retries=False)
        self.retries = retries
        self.backoff = backoff
        self._credentials = credentials

    def query(self, url: str, promql: str) -> Observation:
        """The answer of the Prometheus at `url` to one instant query; retried with backoff
        while it is unreachable or answers 5xx. Redirects are not followed, and nothing of an
        answer's body reaches a message: the URL comes from a namespace user's spec."""
        body = self._get(url, "/api/v1/query", {"query": promql})
        return body if isinstance(body, Observation) else parse_response(body)

    def query_range(self, url: str, promql: str, start: float, end: float, step: float) -> Series:
        """The answer of the Prometheus at `url` to one range query (/api/v1/query_range), with
        the rules of `query`."""
        fields = {"query": promql, "start": f"{start:.0f}", "end": f"{end:.0f}"}
        body = self._get(url, "/api/v1/query_range", {**fields, "step": f"{step:.0f}"})
        if isinstance(body, Observation):
            return Series(body.kind, detail=body.detail)
        return parse_range_response(body)

    def _get(self, url: str, path: str, fields: dict[str, str]) -> Any:
        """The JSON an endpoint of `url` answered, or the failure as an Observation."""
        where = redacted(url)
        headers = {}
        if self._credentials and same_origin(url, self._credentials[0]):
            headers["Authorization"] = self._credentials[1]
        failure = Observation("unreachable", detail="no attempt made")
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                status, data = self._send(f"{url.rstrip('/')}{path}", fields, headers)
            except Unreachable as error:
                failure = Observation("unreachable", detail=f"{where}: {error}")
                continue
            if status >= 500:
                failure = Observation("unreachable", detail=f"{where}: HTTP {status}")
                continue
            if status >= 300:
                return Observation("invalid", detail=f"{where}: HTTP {status}")
            try:
                return json.loads(data)
            except ValueError:
                return Observation("invalid", detail=f"{where}: the answer is not JSON")
        return failure

    def _send(
        self, endpoint: str, fields: dict[str, str], headers: dict[str, str]
    ) -> tuple[int, bytes]:
        """One GET: its status and body; Unreachable when no HTTP answer came."""
        try:
            response = self._http.request(
                "GET", endpoint, fields=fields, redirect=False, headers=headers
            )
        except urllib3.exceptions.HTTPError as error:
            raise Unreachable(type(error).__name__) from error
        return response.status, response.data

    def close(self) -> None:
        self._http.clear()


#: GET an in-cluster URL through the API server: (url, query fields, timeout) -> status, body.
ServiceProxy = Callable[[str, dict[str, str], float], tuple[int, bytes]]


class ThroughApiServer(Prometheus):
    """A Prometheus behind an in-cluster Service (`*.svc`), which a laptop cannot reach:
    reached through the Kubernetes API server's service proxy (`herd.kube.Kube.proxy_get`)
    with the caller's own identity, so no Prometheus credentials are sent at all."""

    def __init__(self, proxy: ServiceProxy, timeout: float = 5.0, retries: int = 0) -> None:
        super().__init__(timeout=timeout, retries=retries)
        self._proxy, self._timeout = proxy, timeout

    def _send(
        self, endpoint: str, fields: dict[str, str], headers: dict[str, str]
    ) -> tuple[int, bytes]:
        try:
            return self._proxy(endpoint, fields, self._timeout)
        except ApiError as error:
            raise Unreachable(f"the Kubernetes API server's proxy: {error.message}") from error


def parse_response(body: Any) -> Observation:
    """An Observation from the JSON of /api/v1/query; anything else is `invalid`."""
    if not isinstance(body, dict):
        return Observation("invalid", detail="the answer is not a Prometheus query result")
    if body.get("status") != "success":
        return Observation(
            "invalid", detail=f"Prometheus refused the query: {body.get('errorType')}"
        )
    data = body.get("data")
    result = data.get("result") if isinstance(data, dict) else None
    kind = data.get("resultType") if isinstance(data, dict) else None
    try:
        if kind == "scalar":
            samples = [result]
        elif kind == "vector" and isinstance(result, list):
            samples = [series["value"] for series in result]
        else:
            return Observation("invalid", detail=f"unexpected result type {str(kind)[:20]}")
        if not samples:
            return Observation("empty", detail="no series matched")
        if len(samples) > 1:
            return Observation("invalid", detail=f"{len(samples)} series where one was expected")
        value = float(samples[0][1])
    except (TypeError, KeyError, IndexError, ValueError):
        return Observation("invalid", detail="the answer is not a Prometheus query result")
    if math.isnan(value) or math.isinf(value):
        return Observation("nan", detail=f"the query evaluated to {samples[0][1]}")
    return Observation("value", value)


def parse_range_response(body: Any) -> Series:
    """A Series from the JSON of /api/v1/query_range: one series of a matrix, its NaN samples
    kept (a gap in a chart); anything else is `invalid`."""
    if not isinstance(body, dict):
        return Series("invalid", detail="the answer is not a Prometheus query result")
    if body.get("status") != "success":
        return Series("invalid", detail=f"Prometheus refused the query: {body.get('errorType')}")
    data = body.get("data")
    result = data.get("result") if isinstance(data, dict) else None
    kind = data.get("resultType") if isinstance(data, dict) else None
    if kind != "matrix" or not isinstance(result, list):
        return Series("invalid", detail=f"unexpected result type {str(kind)[:20]}")
    if not result:
        return Series("empty", detail="no series matched")
    if len(result) > 1:
        return Series("invalid", detail=f"{len(result)} series where one was expected")
    try:
        points = tuple((float(t), float(v)) for t, v in result[0]["values"])
    except (TypeError, KeyError, ValueError):
        return Series("invalid", detail="the answer is not a Prometheus query result")
    if not points:
        return Series("empty", detail="the series has no samples")
    if all(math.isnan(v) or math.isinf(v) for _, v in points):
        return Series("nan", points, detail="every sample is NaN")
    return Series("value", points)
