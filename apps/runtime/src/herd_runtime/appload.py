"""Finding the application object from its `module:callable` reference, the way the servers do,
and telling WSGI from ASGI the way uvicorn does."""

from __future__ import annotations

import ast
import importlib
import inspect
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from herd_runtime.errors import StartupError

Interface = Literal["wsgi", "asgi"]

_EXPECTED = "expected 'module:callable', e.g. 'shop.main:app'"


@dataclass(frozen=True)
class AppRef:
    text: str
    module: str
    #: The attribute path inside the module: one name for gunicorn, dotted for uvicorn.
    attributes: tuple[str, ...]
    #: Literal (args, kwargs) of a gunicorn factory call such as `shop:create_app("prod")`.
    factory_call: tuple[tuple[Any, ...], dict[str, Any]] | None = None


def parse_gunicorn_ref(text: str) -> AppRef:
    """gunicorn takes `module:name` or `module:factory(literal arguments)`, no dotted path."""
    module, expression = _split(text)
    try:
        node: ast.expr | None = ast.parse(expression, mode="eval").body
    except SyntaxError:
        node = None
    if isinstance(node, ast.Name):
        return AppRef(text, module, (node.id,))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        try:
            args = tuple(ast.literal_eval(arg) for arg in node.args)
            kwargs = {str(kw.arg): ast.literal_eval(kw.value) for kw in node.keywords}
        except (ValueError, TypeError, SyntaxError):
            raise StartupError(
                f"malformed app {text!r}: a factory call takes literal arguments only"
            ) from None
        return AppRef(text, module, (node.func.id,), (args, kwargs))
    raise StartupError(
        f"malformed app {text!r}: gunicorn takes 'module:name' or 'module:factory(...)'"
    )


def parse_uvicorn_ref(text: str) -> AppRef:
    """uvicorn takes `module:attribute`, where the attribute may be a dotted path."""
    module, expression = _split(text)
    if not _is_dotted_name(expression):
        raise StartupError(f"malformed app {text!r}: {_EXPECTED}")
    return AppRef(text, module, tuple(expression.split(".")))


def load_app(ref: AppRef, call_factory: bool = False) -> Callable[..., Any]:
    """Imports the module and returns the callable; `call_factory` is uvicorn's `--factory`."""
    try:
        obj: Any = importlib.import_module(ref.module)
    except Exception as error:
        raise StartupError(
            f"cannot import module {ref.module!r} (from app {ref.text!r}): {_describe(error)}"
        ) from error
    for depth, name in enumerate(ref.attributes):
        try:
            obj = getattr(obj, name)
        except AttributeError:
            owner = ".".join(ref.attributes[:depth])
            owner_text = repr(f"{ref.module}:{owner}") if owner else f"module {ref.module!r}"
            raise StartupError(
                f"{owner_text} has no attribute {name!r} (from app {ref.text!r})"
            ) from None
    if ref.factory_call is not None or call_factory:
        args, kwargs = ref.factory_call or ((), {})
        try:
            obj = obj(*args, **kwargs)
        except Exception as error:
            raise StartupError(f"app factory {ref.text!r} failed: {_describe(error)}") from error
    if not callable(obj):
        raise StartupError(f"app {ref.text!r} is not callable: it is a {type(obj).__name__}")
    return obj


def detect_interface(app: Callable[..., Any]) -> Interface | None:
    """ASGI if the callable is a coroutine function or takes (scope) or (scope, receive, send);
    WSGI if it takes (environ, start_response); None when its signature does not tell."""
    if inspect.isclass(app):
        return "asgi"  # uvicorn treats a class as an ASGI application
    call = app if inspect.isroutine(app) else app.__call__
    if inspect.iscoroutinefunction(call):
        return "asgi"
    arity = _required_positional_arity(call)
    if arity == 2:
        return "wsgi"
    if arity in (1, 3):
        return "asgi"
    return None


def speaks_asgi3(app: Callable[..., Any]) -> bool:
    """uvicorn's rule: ASGI 3 is a coroutine function (or an object whose __call__ is one);
    any other ASGI app speaks ASGI 2, `app(scope)` returning the coroutine's owner."""
    if inspect.isclass(app):
        return hasattr(app, "__await__")
    call = app if inspect.isfunction(app) else app.__call__
    return inspect.iscoroutinefunction(call)


def _split(text: str) -> tuple[str, str]:
    module, colon, expression = text.partition(":")
    if not colon or not expression or not _is_dotted_name(module):
        raise StartupError(f"malformed app {text!r}: {_EXPECTED}")
    return module, expression


def _is_dotted_name(text: str) -> bool:
    return all(part.isidentifier() for part in text.split("."))


def _required_positional_arity(call: Any) -> int | None:
    try:
        parameters = inspect.signature(call).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters):
        return None
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(1 for p in parameters if p.kind in positional and p.default is p.empty)


def _describe(error: BaseException) -> str:
    """One line: the error and, for an error in the app's own code, where it was raised."""
    text = str(error) if isinstance(error, ImportError) else f"{type(error).__name__}: {error}"
    machinery = (__file__, importlib.__file__)
    frames = [
        frame
        for frame in traceback.extract_tb(error.__traceback__)
        if not frame.filename.startswith("<frozen") and frame.filename not in machinery
    ]
    where = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return " ".join(text.split()) + where
