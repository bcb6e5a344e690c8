"""Parsing app references the way each server does, and telling WSGI from ASGI."""

from __future__ import annotations

import re
from typing import Any

import pytest

from herd_runtime import gunicorn_config
from herd_runtime.appload import (
    AppRef,
    detect_interface,
    load_app,
    parse_gunicorn_ref,
    parse_uvicorn_ref,
    speaks_asgi3,
)
from herd_runtime.errors import StartupError
from herd_runtime.gunicorn_command import REQUIRED_HOOKS


def test_gunicorn_refs() -> None:
    assert parse_gunicorn_ref("shop.main:app") == AppRef("shop.main:app", "shop.main", ("app",))
    factory = parse_gunicorn_ref("shop:create_app('prod', debug=False)")
    assert factory.attributes == ("create_app",)
    assert factory.factory_call == (("prod",), {"debug": False})


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("shop", "expected 'module:callable'"),
        ("shop:", "expected 'module:callable'"),
        (":app", "expected 'module:callable'"),
        ("my-shop:app", "expected 'module:callable'"),
        ("shop:api.app", "gunicorn takes 'module:name' or 'module:factory(...)'"),
        ("shop:create_app(config)", "literal arguments only"),
    ],
)
def test_malformed_gunicorn_refs(text: str, reason: str) -> None:
    with pytest.raises(
        StartupError, match=re.escape(f"malformed app {text!r}: ") + ".*" + re.escape(reason)
    ):
        parse_gunicorn_ref(text)


def test_uvicorn_refs_take_dotted_attributes() -> None:
    assert parse_uvicorn_ref("shop:api.app").attributes == ("api", "app")
    with pytest.raises(StartupError, match="malformed app"):
        parse_uvicorn_ref("shop:create_app()")


def test_load_app_follows_attributes_and_calls_factories() -> None:
    assert load_app(parse_uvicorn_ref("herd_runtime:gunicorn_config.when_ready")) is (
        gunicorn_config.when_ready
    )
    assert load_app(parse_gunicorn_ref("operator:itemgetter(1)"))("ab") == "b"


def test_load_app_errors_are_one_line() -> None:
    with pytest.raises(StartupError) as missing:
        load_app(parse_uvicorn_ref("herd_runtime:gunicorn_config.nope"))
    assert str(missing.value) == (
        "'herd_runtime:gunicorn_config' has no attribute 'nope' "
        "(from app 'herd_runtime:gunicorn_config.nope')"
    )
    with pytest.raises(StartupError, match=r"^app factory 'json:loads\(\)' failed: TypeError: "):
        load_app(parse_gunicorn_ref("json:loads()"))


def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    return []


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    return None


def asgi2_app(scope: dict[str, Any]) -> Any:
    return asgi_app


class AsgiCallable:
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        return None


class WsgiCallable:
    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        return []


@pytest.mark.parametrize(
    ("app", "interface"),
    [
        (wsgi_app, "wsgi"),
        (WsgiCallable(), "wsgi"),
        (asgi_app, "asgi"),
        (AsgiCallable(), "asgi"),
        (asgi2_app, "asgi"),
        (AsgiCallable, "asgi"),
        (lambda *args: None, None),
    ],
)
def test_detect_interface(app: Any, interface: str | None) -> None:
    assert detect_interface(app) == interface


def test_speaks_asgi3() -> None:
    assert speaks_asgi3(asgi_app) and speaks_asgi3(AsgiCallable())
    assert not speaks_asgi3(asgi2_app)


def test_gunicorn_config_defines_no_setting_by_accident() -> None:
    """gunicorn applies every module-level name that is one of its settings."""
    from gunicorn.config import Config

    applied = set(vars(gunicorn_config)) & set(Config().settings)
    # The hooks herd-serve requires, and the two it does not (on_exit only tidies the memory
    # report; the control socket setting is no hook).
    assert applied == {*REQUIRED_HOOKS, "on_exit", "control_socket_disable"}
