"""`herd-serve`: checks an app-server command line, then runs it.

    herd-serve gunicorn [gunicorn options] module:callable
    herd-serve uvicorn [uvicorn options] module:callable

gunicorn is exec-ed with the arguments given, so the pod spec shows what runs, with one
substitution: `uvicorn_worker.UvicornWorker` runs as herd-runtime's subclass that recycles at
`--max-requests` without dropping connections (herd_runtime.recycling). The checks before the
exec turn mistakes that would surface as a crash loop (or as silently missing metrics) into
one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import os
import sys

from herd_runtime import gunicorn_command, multiproc, uvicorn_command
from herd_runtime.errors import StartupError
from herd_runtime.settings import RuntimeSettings
from herd_runtime.workers import with_recycling_worker

PROG = "herd-serve"
USAGE = f"usage: {PROG} gunicorn|uvicorn [server options] module:callable"
#: Exit status for a configuration herd-serve refuses (gunicorn uses 1 to 4 for its own).
EXIT_INVALID = 2


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    try:
        _serve(args)
    except StartupError as error:
        print(f"{PROG}: {error}", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_INVALID) from None


def _serve(args: list[str]) -> None:
    if not args or args[0] not in ("gunicorn", "uvicorn"):
        raise StartupError(f"expected 'gunicorn' or 'uvicorn' first ({USAGE})")
    server, server_args = args[0], args[1:]
    settings = RuntimeSettings.from_env()
    if server == "uvicorn":
        uvicorn_command.run(server_args, settings)
        return
    # The arguments as written, so a refusal names what the pod spec says.
    multiprocess_dir = gunicorn_command.check(server_args, settings)
    # After the check: importing the app may have created metric files in this process.
    multiproc.reset_directory(multiprocess_dir)
    sys.stdout.flush()
    sys.stderr.flush()
    # This interpreter's gunicorn, the one checked against: an injected runtime has no
    # gunicorn script on PATH, only the package on PYTHONPATH.
    os.execv(
        sys.executable, [sys.executable, "-m", "gunicorn", *with_recycling_worker(server_args)]
    )
