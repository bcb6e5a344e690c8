"""Which route template served a request. Frameworks know it only after routing, inside the
app, so the middleware reads it after the app returns:

- WSGI: from `environ["herd.route"]`, which a framework adapter sets. The Flask adapter is
  installed automatically; any other framework (or the app itself) may set the key.
- ASGI: from `scope["herd.route"]` if set, else from `scope["route"].path`, where Starlette
  and FastAPI put the matched route.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

ROUTE_KEY = "herd.route"


def wsgi_route(environ: Mapping[str, Any]) -> str | None:
    route = environ.get(ROUTE_KEY)
    return route if isinstance(route, str) else None


def asgi_route(scope: Mapping[str, Any]) -> str | None:
    route = scope.get(ROUTE_KEY)
    if route is None:
        route = getattr(scope.get("route"), "path", None)
    return route if isinstance(route, str) else None


def install_adapters(app: Any) -> None:
    """Teaches a framework app to report its route template; a no-op for unknown apps."""
    flask = sys.modules.get("flask")  # only an app built on Flask has imported it
    if flask is not None and isinstance(app, flask.Flask):
        # Right after routing, so a request that runs past its deadline is counted under its
        # route while the view still runs; teardown again for requests that never got there.
        app.url_value_preprocessor(lambda _endpoint, _values: _record_flask_route(None))
        app.teardown_request(_record_flask_route)


def _record_flask_route(_error: BaseException | None) -> None:
    # Teardown runs for every request, also failed and unmatched ones, after routing.
    from flask import request

    rule = request.url_rule
    request.environ[ROUTE_KEY] = rule.rule if rule is not None else None
