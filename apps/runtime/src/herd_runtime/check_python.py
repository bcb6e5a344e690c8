"""Run by the app image's own Python before the app starts, when herd-runtime is injected
(spec.runtime: inject): can this Python run the runtime copied beside it? If not, one line
saying why, in the container's termination message, which the operator reports as Degraded
with reason RuntimeIncompatible, instead of a crash-looping app.

Passing also compiles the runtime's packages with this Python, so the app container (which
mounts them read-only) starts from bytecode.

Written for whatever Python an image holds, 2.7 included: no f-strings, no annotations.
"""

from __future__ import print_function

import os
import platform
import sys

#: herd-runtime's requires-python (apps/runtime/pyproject.toml; a unit test holds them equal).
MINIMUM = (3, 11)
TERMINATION_LOG = "/dev/termination-log"
#: What the app container imports first: each must import under this Python.
ENTRY_MODULES = ("gunicorn.app.wsgiapp", "uvicorn", "prometheus_client", "herd_runtime.serve")


def problem(library):
    """Why this Python cannot run the runtime in `library`, or None."""
    found = "%d.%d.%d" % tuple(sys.version_info[:3])
    where = "%s %s (%s)" % (platform.python_implementation(), found, sys.executable)
    if platform.python_implementation() != "CPython":
        return "the image's Python is %s; herd-runtime runs on CPython" % where
    if tuple(sys.version_info[:2]) < MINIMUM:
        return "the image's Python is %s; herd-runtime needs Python %d.%d or newer" % (
            where,
            MINIMUM[0],
            MINIMUM[1],
        )
    import compileall

    if not compileall.compile_dir(library, quiet=1):
        return "herd-runtime's packages do not compile under the image's Python %s" % where
    for module in ENTRY_MODULES:
        try:
            __import__(module)
        except Exception as error:  # whatever breaks, the user needs its words
            return "herd-runtime does not import under the image's Python %s: %s: %s" % (
                where,
                type(error).__name__,
                error,
            )
    return None


def main():
    library = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # Run as a script, this file's own directory comes first on sys.path: the library instead.
    sys.path[0] = library
    found = problem(library)
    if found is None:
        return 0
    print(found, file=sys.stderr)
    try:
        with open(TERMINATION_LOG, "w") as log:
            log.write(found)
    except (IOError, OSError):
        pass  # outside a pod: stderr said it
    return 1


if __name__ == "__main__":
    sys.exit(main())
