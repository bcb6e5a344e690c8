"""Small apps the data-plane tests serve besides the examples."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

#: Not an app: herd-serve must refuse it.
not_callable = 42


def counting_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """A WSGI app that appends a line to $COUNTING_APP_FILE on every call it gets."""
    with Path(os.environ["COUNTING_APP_FILE"]).open("a") as calls:
        calls.write(environ["PATH_INFO"] + "\n")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"counted"]
