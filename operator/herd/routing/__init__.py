"""Traffic routers behind one small interface: each router owns the objects that route to the
stable and (weighted) canary Services, every object it may ever create for a WebService (so
switching routers prunes the other's), and the URL it serves. Pure."""

from __future__ import annotations

from typing import Any, Protocol

from herd.kinds import Ref
from herd.model import HttpRoute, IngressRoute, Route, WebService
from herd.routing.gateway import GatewayRouter
from herd.routing.nginx import NginxRouter
from herd.routing.traffic import CanaryTraffic
from herd.serving.tuning import ServerConfig


class Router(Protocol):
    def objects(
        self, ws: WebService, route: Any, config: ServerConfig, canary: CanaryTraffic | None
    ) -> list[dict[str, Any]]:
        """The route objects; `canary` None: no traffic to a canary."""
        ...

    def owned(self, ws: WebService) -> list[Ref]:
        """Every object this router may create for `ws`, whether it wants it now or not."""
        ...

    def url(self, route: Any) -> str: ...


ROUTERS: dict[type, Router] = {IngressRoute: NginxRouter(), HttpRoute: GatewayRouter()}


def router_for(route: Route) -> Router:
    return ROUTERS[type(route)]


def owned(ws: WebService) -> list[Ref]:
    """What every router may have created for `ws`: pruned unless its router wants it."""
    return [ref for router in ROUTERS.values() for ref in router.owned(ws)]
