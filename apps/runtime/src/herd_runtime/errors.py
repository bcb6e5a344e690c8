"""The one error type herd-serve reports: its message is the whole diagnosis, on one line."""


class StartupError(Exception):
    """The server cannot start as configured; `str(error)` says why and what to fix."""
