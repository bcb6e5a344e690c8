"""The sample service as a FastAPI (ASGI) app: `herd_examples.fastapi_app:app`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import FastAPI, Query, Request, Response
from fastapi.responses import PlainTextResponse

from herd_examples.workloads import (
    FAILURE_CODES,
    MAX_MS,
    burn_cpu,
    injected_failure_rate,
    should_fail,
)

app = FastAPI(title="herd example")
FAILURE_RATE = injected_failure_rate()


@app.middleware("http")
async def broken_release(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    if FAILURE_RATE and should_fail(FAILURE_RATE):
        return PlainTextResponse("injected failure (EXAMPLE_FAILURE_RATE)\n", status_code=500)
    return await call_next(request)


Milliseconds = Annotated[float, Query(ge=0, le=MAX_MS)]


@app.get("/")
async def hello() -> dict[str, str]:
    return {"message": "hello from fastapi"}


@app.api_route("/io", methods=["GET", "POST"])
async def io_bound(ms: Milliseconds = 50) -> dict[str, float]:
    await asyncio.sleep(ms / 1000)  # stands in for a database or HTTP call
    return {"waited_ms": ms}


@app.get("/cpu")
def cpu_bound(ms: Milliseconds = 20) -> dict[str, float]:
    # A plain def runs in FastAPI's thread pool: the event loop keeps accepting meanwhile,
    # though the burn still holds the GIL.
    return {"burned_ms": ms, "iterations": burn_cpu(ms)}


@app.get("/fail", response_model=None)
async def fail(
    rate: Annotated[float, Query(ge=0, le=1)] = 0.5,
    code: int = 500,
) -> PlainTextResponse | dict[str, bool]:
    if code not in FAILURE_CODES:
        return PlainTextResponse(f"code must be one of {FAILURE_CODES}\n", status_code=400)
    if should_fail(rate):
        return PlainTextResponse("injected failure\n", status_code=code)
    return {"failed": False}


@app.get("/items/{item_id}")
async def item(item_id: int) -> dict[str, int]:
    return {"item_id": item_id}


@app.get("/healthz", response_class=PlainTextResponse)
async def healthz() -> str:
    # Under herd-serve the middleware answers this path before FastAPI sees it.
    return "ok"
