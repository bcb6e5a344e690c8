"""The one module that talks to Prometheus: instant queries over its HTTP API.

Synchronous, like every loop of the operator (see docs/development.md): one urllib3 pool
manager serves every Prometheus URL a WebService names, with a connection pool per host.
"""

from __future__ import annotations

import base64
import json
import math
import pathlib
import time
from typing import Any

import urllib3

from herd.endpoints import redacted, same_origin
from herd.observation import Observation


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
        endpoint = f"{url.rstrip('/')}/api/v1/query"
        where = redacted(url)
        headers = {}
        if self._credentials and same_origin(url, self._credentials[0]):
            headers["Authorization"] = self._credentials[1]
        failure = Observation("unreachable", detail="no attempt made")
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = self._http.request(
                    "GET", endpoint, fields={"query": promql}, redirect=False, headers=headers
                )
            except urllib3.exceptions.HTTPError as error:
                failure = Observation("unreachable", detail=f"{where}: {type(error).__name__}")
                continue
            if response.status >= 500:
                failure = Observation("unreachable", detail=f"{where}: HTTP {response.status}")
                continue
            if response.status >= 300:
                return Observation("invalid", detail=f"{where}: HTTP {response.status}")
            try:
                body = json.loads(response.data)
            except ValueError:
                return Observation("invalid", detail=f"{where}: the answer is not JSON")
            return parse_response(body)
        return failure

    def close(self) -> None:
        self._http.clear()


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
