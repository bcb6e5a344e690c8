"""Why a WebService's pods do not start or keep dying, read from their container statuses: the
Deployment's status counts unavailable pods but never says why. Pure.

Each trouble is a `status.Problem`, surfaced as the Degraded condition's reason:
- `RuntimeIncompatible`: the image cannot run the injected runtime (herd_runtime.check_python
  said why, or the image has no python3 at all);
- `RuntimeImageUnavailable`: the operator's runtime image cannot be pulled;
- `ImagePullFailed`: the app image cannot be pulled;
- `OOMKilled`: a container went over its memory limit;
- `CrashLoopBackOff`: the app container keeps exiting, with its last words.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from herd.serving.runtime import MINIMUM_PYTHON
from herd.serving.workload import CHECK_CONTAINER, INJECT_CONTAINER
from herd.status import Problem

#: Waiting reasons of a container whose image the kubelet cannot get.
PULL_FAILURES = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName"})
#: How much of a container's own message a condition carries.
MESSAGE_LIMIT = 300
#: The reasons, most telling first: the first is the Degraded condition's reason.
_ORDER = (
    "RuntimeIncompatible",
    "RuntimeImageUnavailable",
    "ImagePullFailed",
    "OOMKilled",
    "CrashLoopBackOff",
)


def problems(pods: Iterable[dict[str, Any]]) -> list[Problem]:
    """One problem per reason across `pods` (the first pod's words), most telling first."""
    found: dict[str, Problem] = {}
    for pod in pods:
        for problem in _pod_problems(pod):
            found.setdefault(problem.reason, problem)
    return sorted(found.values(), key=lambda p: _ORDER.index(p.reason))


def _pod_problems(pod: dict[str, Any]) -> Iterator[Problem]:
    name = pod.get("metadata", {}).get("name", "")
    status = pod.get("status") or {}
    for container in status.get("initContainerStatuses") or ():
        yield from _container_problems(name, container, init=True)
    for container in status.get("containerStatuses") or ():
        yield from _container_problems(name, container, init=False)


def _container_problems(pod: str, container: dict[str, Any], init: bool) -> Iterator[Problem]:
    cname = container.get("name", "")
    state = container.get("state") or {}
    waiting = state.get("waiting") or {}
    # The current run's end, else the last one's (while the kubelet backs off restarting it).
    ended = state.get("terminated") or (container.get("lastState") or {}).get("terminated") or {}
    where = f"container {cname} of pod {pod}"

    if waiting.get("reason") in PULL_FAILURES:
        reason = "RuntimeImageUnavailable" if cname == INJECT_CONTAINER else "ImagePullFailed"
        yield Problem(reason, f"{where}: {_words(waiting.get('message') or waiting['reason'])}")
        return
    if cname == CHECK_CONTAINER and ended and ended.get("exitCode", 0) != 0:
        yield Problem("RuntimeIncompatible", f"spec.runtime inject: {_check_words(ended)} ({pod})")
        return
    if ended.get("reason") == "OOMKilled":
        yield Problem(
            "OOMKilled",
            f"{where} went over its memory limit and was killed: lower spec.server.workers "
            "or raise resources.limits.memory",
        )
        return
    if not init and waiting.get("reason") == "CrashLoopBackOff" and ended:
        said = ended.get("message") or ended.get("reason") or ""
        code = ended.get("exitCode")
        yield Problem(
            "CrashLoopBackOff",
            f"{where} keeps exiting (exit code {code}{': ' + _words(said) if said else ''})",
        )


def _check_words(ended: dict[str, Any]) -> str:
    """What herd_runtime.check_python said, or what stopped it from running at all."""
    message = ended.get("message") or ""
    if ended.get("reason") == "StartError" or "executable file not found" in message:
        return (
            "the image has no python3 on its PATH; herd-runtime needs CPython "
            f"{MINIMUM_PYTHON} or newer"
        )
    return _words(message) or f"the check exited with code {ended.get('exitCode')}"


def _words(message: str) -> str:
    """A container's own message on one line, its last lines when it is long (a traceback
    ends with what went wrong)."""
    flat = " ".join(line.strip() for line in message.strip().splitlines() if line.strip())
    return flat if len(flat) <= MESSAGE_LIMIT else "..." + flat[-MESSAGE_LIMIT:]
