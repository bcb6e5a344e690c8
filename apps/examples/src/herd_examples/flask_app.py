"""The sample service as a Flask (WSGI) app: `herd_examples.flask_app:app`."""

from __future__ import annotations

import time

from flask import Flask, Response, abort, request

from herd_examples.workloads import (
    FAILURE_CODES,
    MAX_MS,
    burn_cpu,
    injected_failure_rate,
    should_fail,
)

app = Flask(__name__)
FAILURE_RATE = injected_failure_rate()


@app.before_request
def broken_release() -> Response | None:
    if FAILURE_RATE and should_fail(FAILURE_RATE):
        return Response("injected failure (EXAMPLE_FAILURE_RATE)\n", status=500)
    return None


def _number(name: str, default: float, high: float) -> float:
    raw = request.args.get(name)
    try:
        value = default if raw is None else float(raw)
    except ValueError:
        abort(400, f"{name} must be a number")
    if not 0 <= value <= high:
        abort(400, f"{name} must be between 0 and {high:g}")
    return value


@app.get("/")
def hello() -> dict[str, str]:
    return {"message": "hello from flask"}


@app.route("/io", methods=["GET", "POST"])
def io_bound() -> dict[str, float]:
    ms = _number("ms", 50, MAX_MS)
    time.sleep(ms / 1000)  # stands in for a database or HTTP call
    return {"waited_ms": ms}


@app.get("/cpu")
def cpu_bound() -> dict[str, float]:
    ms = _number("ms", 20, MAX_MS)
    return {"burned_ms": ms, "iterations": burn_cpu(ms)}


@app.get("/fail")
def fail() -> Response | dict[str, bool]:
    rate = _number("rate", 0.5, 1)
    code = request.args.get("code", "500")
    if code not in {str(c) for c in FAILURE_CODES}:
        abort(400, f"code must be one of {FAILURE_CODES}")
    if should_fail(rate):
        return Response("injected failure\n", status=int(code), mimetype="text/plain")
    return {"failed": False}


@app.get("/items/<int:item_id>")
def item(item_id: int) -> dict[str, int]:
    return {"item_id": item_id}


@app.get("/healthz")
def healthz() -> Response:
    # Under herd-serve the middleware answers this path before Flask sees it.
    return Response("ok", mimetype="text/plain")
