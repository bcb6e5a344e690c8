"""The dashboard's web server: FastAPI pages rendered from `herd.dashboard.views`, live
updates from one Kubernetes watch pushed as server-sent events, and the rollout actions
through `herd.rollout.cli.request_intent`, the commands' own code path.

Every request to the API server is made with the caller's kubeconfig identity (`UserApi`):
the dashboard can do nothing its user could not do with `herd` or kubectl.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sys
import threading
import time
import webbrowser
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qs

import jinja2
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.staticfiles import StaticFiles

from herd.api_errors import ApiError
from herd.dashboard import analysis, views
from herd.kube import UserApi
from herd.observation import Series
from herd.prometheus import Prometheus, ThroughApiServer
from herd.rollout.cli import CliError, request_intent, requester
from herd.rollout.views import READ_NEEDS, api_error_message, canary_spec

CSRF_COOKIE = "herd_csrf"
#: The server ends each watch after this long, and the dashboard watches again from where it
#: was: a connection that died silently is noticed within it.
WATCH_SECONDS = 60
RETRY_SECONDS = 3.0
#: A comment this often keeps proxies and the browser from closing an idle event stream.
KEEPALIVE_SECONDS = 15.0
#: Pages are this server's alone: no other origin's script, frame, or form target. The
#: referrer stays same-origin (with `no-referrer`, Chromium sends its forms with `Origin: null`).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
#: A page waits this long at most for each range query; an unreachable Prometheus is not
#: asked again for the same page.
PROMETHEUS_TIMEOUT = 3.0

_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("herd.dashboard", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


class Live:
    """One watch of the dashboard's WebServices, shared by every open page: each change goes
    to every subscriber as a server-sent event, and into the history the WebService page shows
    (status keeps only the current weight and the last analysis)."""

    def __init__(self, api: UserApi, namespace: str | None, clock: Callable[[], float]):
        self.api, self.namespace, self.clock = api, namespace, clock
        self.problem: str | None = None
        self._histories: dict[str, views.History] = {}
        self._subscribers: dict[asyncio.Queue[str], asyncio.AbstractEventLoop] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="herd-dashboard-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """The thread ends at its next event or when the server ends the watch; it is a daemon,
        so it does not hold the process."""
        self._stopping.set()

    def history(self, key: str) -> views.History:
        with self._lock:
            return self._histories.get(key, views.History())

    def subscribe(self) -> asyncio.Queue[str]:
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=1000)
        with self._lock:
            self._subscribers[queue] = asyncio.get_running_loop()
            if self.problem is not None:
                queue.put_nowait(views.problem_message(self.problem))
        return queue

    def unsubscribe(self, queue: asyncio.Queue[str]) -> None:
        with self._lock:
            self._subscribers.pop(queue, None)

    def _publish(self, message: str) -> None:
        with self._lock:
            subscribers = list(self._subscribers.items())
        for queue, loop in subscribers:
            loop.call_soon_threadsafe(_offer, queue, message)

    def _set_problem(self, problem: str | None) -> None:
        if problem != self.problem:
            self.problem = problem
            self._publish(views.problem_message(problem))

    def _run(self) -> None:
        version: str | None = None
        while not self._stopping.is_set():
            try:
                for change, ws in self.api.watch_webservices(
                    self.namespace, version, WATCH_SECONDS
                ):
                    version = ws.get("metadata", {}).get("resourceVersion") or version
                    self._set_problem(None)
                    if change in ("ADDED", "MODIFIED", "DELETED"):
                        self._changed(change, ws)
                    if self._stopping.is_set():
                        return
                self._set_problem(None)  # the server ended a working watch: none is wrong
            except ApiError as error:
                if error.status == 410:  # the version expired: start again from a full list
                    version = None
                    continue
                self._set_problem(
                    "live updates stopped: " + api_error_message(error, self.api.server, READ_NEEDS)
                )
                self._stopping.wait(RETRY_SECONDS)

    def _changed(self, change: str, ws: dict[str, Any]) -> None:
        key = views.key_of(ws)
        with self._lock:
            if change == "DELETED":
                self._histories.pop(key, None)
            else:
                before = self._histories.get(key, views.History())
                self._histories[key] = views.observe(before, ws, self.clock())
        self._publish(views.change_message(change, ws))


def _offer(queue: asyncio.Queue[str], message: str) -> None:
    """A page that stopped reading loses messages rather than growing the server."""
    with contextlib.suppress(asyncio.QueueFull):
        queue.put_nowait(message)


def create_app(
    api: UserApi,
    namespace: str | None,
    allowed_hosts: frozenset[str],
    by: str,
    clock: Callable[[], float] = time.time,
    prometheus: str | None = None,
) -> FastAPI:
    """The dashboard for one namespace, or all (None). `allowed_hosts`: the Host headers it
    answers (`views.allowed_hosts`); `by`: who asks, for status.intent.by; `prometheus`: the
    Prometheus every chart reads (None: each WebService's, see `analysis.prometheus_url`)."""
    token = secrets.token_urlsafe(32)  # per process: a restart invalidates open forms
    live = Live(api, namespace, clock)
    direct = Prometheus(timeout=PROMETHEUS_TIMEOUT, retries=0)
    proxied = ThroughApiServer(api.proxy_get, timeout=PROMETHEUS_TIMEOUT)

    def analysis_charts(ws: dict[str, Any]) -> analysis.Charts | None:
        if not canary_spec(ws):
            return None
        url = analysis.prometheus_url(ws, prometheus)
        window = analysis.rollout_window(ws, clock())
        if window is None:
            return analysis.no_rollout(url)
        client = proxied if analysis.proxy_needs(url) else direct
        answers: dict[tuple[analysis.Metric, analysis.Track], Series] = {}
        for query in analysis.range_queries(ws, window):
            answer = client.query_range(url, query.promql, window.start, window.end, window.step)
            answers[(query.metric, query.track)] = answer
            if answer.kind == "unreachable":
                break
        return analysis.charts(ws, url, window, answers)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        live.start()
        yield
        live.stop()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(packages=[("herd.dashboard", "static")]), name="static")

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Any]) -> Response:
        refused = views.host_refusal(request.headers.get("host"), allowed_hosts)
        if refused:
            response: Response = HTMLResponse(refused, status_code=403)
        else:
            response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    def page(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        html = _templates.get_template(template).render(
            scope=namespace or "all namespaces", token=token, **context
        )
        response = HTMLResponse(html, status_code=status_code)
        response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict", path="/")
        return response

    def error_page(title: str, message: str, status_code: int) -> HTMLResponse:
        return page("error.html", status_code, title=title, message=message)

    def api_error_page(error: ApiError) -> HTMLResponse:
        title = "Cluster unreachable" if error.status == 0 else "The Kubernetes API refused"
        message = api_error_message(error, api.server, READ_NEEDS)
        return error_page(title, message, views.http_status(error.status))

    def out_of_scope(ns: str) -> HTMLResponse | None:
        if namespace is None or ns == namespace:
            return None
        return error_page(
            "Not here", f"this dashboard shows namespace {namespace} only, not {ns}", 404
        )

    @app.get("/", response_class=HTMLResponse)
    def listing() -> HTMLResponse:
        try:
            items = api.list_webservices(namespace)
        except ApiError as error:
            return api_error_page(error)
        columns = [c for c in views.COLUMNS if namespace is None or c[0] != "namespace"]
        return page("list.html", rows=views.rows(items), columns=columns)

    def webservice_page(
        ns: str,
        name: str,
        fragment: bool = False,
        notice: str | None = None,
        problem: str | None = None,
        status_code: int = 200,
    ) -> HTMLResponse:
        refused = out_of_scope(ns)
        if refused is not None:
            return refused
        try:
            ws = api.get_webservice(ns, name)
        except ApiError as error:
            return api_error_page(error)
        if ws is None:
            return error_page("Not found", f"webservice {ns}/{name} not found", 404)
        try:
            permission = views.write_permission(
                *api.can_i("patch", "webservices", "status", ns, name), ns
            )
        except ApiError as error:
            reason = api_error_message(error, api.server, "create on selfsubjectaccessreviews")
            permission = views.Permission(False, f"cannot check your permissions: {reason}")
        events_problem = None
        try:
            events = views.event_rows(api.list_events(ns, name))
        except ApiError as error:
            events = []
            events_problem = api_error_message(error, api.server, "list on events")
        history = live.history(views.key_of(ws))
        return page(
            "webservice_content.html" if fragment else "webservice.html",
            status_code,
            ws=ws,
            key=views.key_of(ws),
            href=views.href(ns, name),
            notice=notice,
            problem=problem,
            overview=views.overview(ws),
            actions=views.actions(ws, permission),
            permission=permission,
            timeline=views.timeline(ws),
            chart=views.weight_chart(history.weights, clock()),
            prometheus_charts=analysis_charts(ws),
            analyses=views.analysis_rows(history, ws),
            autoscaling=views.autoscaling(ws),
            conditions=views.conditions(ws),
            events=events,
            events_problem=events_problem,
        )

    @app.get("/webservices/{ns}/{name}", response_class=HTMLResponse)
    def webservice(ns: str, name: str, fragment: bool = False, requested: str = "") -> HTMLResponse:
        # Only an action's name: a crafted link cannot put words of its own on the page.
        known = requested in dict(views.ACTIONS)
        notice = f"{requested} requested: the operator acts on it shortly" if known else None
        return webservice_page(ns, name, fragment=fragment, notice=notice)

    @app.post("/webservices/{ns}/{name}/intent", response_class=HTMLResponse)
    async def intent(request: Request, ns: str, name: str) -> Response:
        form = parse_qs((await request.body()).decode(errors="replace"))
        refused = views.action_refusal(
            request.headers.get("origin"),
            request.headers.get("host", ""),
            form.get("csrf", [None])[0],
            request.cookies.get(CSRF_COOKIE),
            token,
        )
        if refused:
            return error_page("Request refused", refused, 403)
        action = form.get("action", [""])[0]
        if action not in dict(views.ACTIONS):
            return error_page("Request refused", f"unknown action {action!r}", 400)
        scoped = out_of_scope(ns)
        if scoped is not None:
            return scoped
        try:
            await run_in_threadpool(request_intent, api, ns, name, action, by)
        except CliError as error:
            return await run_in_threadpool(
                webservice_page,
                ns,
                name,
                problem=str(error),
                status_code=views.http_status(error.api_status),
            )
        return RedirectResponse(f"{views.href(ns, name)}?requested={action}", status_code=303)

    @app.get("/events")
    async def events() -> StreamingResponse:
        async def stream() -> AsyncIterator[str]:
            queue = live.subscribe()
            try:
                yield "retry: 2000\n\n"
                while True:
                    try:
                        yield await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                    except TimeoutError:
                        yield ": keep-alive\n\n"
            finally:
                live.unsubscribe(queue)

        return StreamingResponse(stream(), media_type="text/event-stream")

    return app


def serve(
    api: UserApi,
    namespace: str | None,
    address: str,
    port: int,
    open_browser: bool,
    prometheus: str | None = None,
) -> None:
    """Run the dashboard until Ctrl-C."""
    hosts = views.allowed_hosts(address, port)
    app = create_app(api, namespace, hosts, requester(), prometheus=prometheus)
    url = f"http://{min(hosts)}/"
    if address not in views.LOOPBACK:
        print(
            f"herd dashboard: listening on {address}: whoever reaches it acts as you",
            file=sys.stderr,
        )
    print(f"herd dashboard: {url} ({namespace or 'all namespaces'}); Ctrl-C stops it")
    if open_browser:
        # uvicorn binds only after this returns; the browser takes longer than that to start.
        threading.Timer(1.0, webbrowser.open, (url,)).start()
    uvicorn.run(
        app,
        host=address,
        port=port,
        log_level="warning",
        # Open event streams never end by themselves: Ctrl-C would otherwise wait for them.
        timeout_graceful_shutdown=1,
    )
