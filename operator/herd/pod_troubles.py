"""Why a WebService's pods do not start or keep dying, read from their container statuses: the
Deployment's status counts unavailable pods but never says why. Pure.

Each trouble is a `status.Problem`, surfaced as the Degraded condition's reason:
- `RuntimeIncompatible`: the image cannot run the injected runtime (herd_runtime.check_python
  said why, or the image has no python3 at all);
- `RuntimeImageUnavailable`: the operator's runtime image cannot be pulled;
- `ImagePullFailed`: the app image cannot be pulled;
- `OOMKilled`: a container went over its memory limit, with what herd-runtime last measured
  of its processes and the worker count or limit that fits;
- `CrashLoopBackOff`: the app container keeps exiting, with its last words.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from herd.model import InvalidSpec, quantity
from herd.serving.runtime import MEMORY_REPORT_PREFIX, MINIMUM_PYTHON
from herd.serving.tuning import AUTO_MEMORY_BUDGET, MIB
from herd.serving.workload import CHECK_CONTAINER, INJECT_CONTAINER
from herd.status import Problem
from herd.timestamps import seconds

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
    limits = {
        c.get("name"): ((c.get("resources") or {}).get("limits") or {}).get("memory")
        for c in (pod.get("spec") or {}).get("containers") or ()
    }
    for container in status.get("initContainerStatuses") or ():
        yield from _container_problems(name, container, init=True)
    for container in status.get("containerStatuses") or ():
        yield from _container_problems(
            name, container, init=False, memory_limit=limits.get(container.get("name"))
        )


def _container_problems(
    pod: str, container: dict[str, Any], init: bool, memory_limit: str | None = None
) -> Iterator[Problem]:
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
        yield Problem("OOMKilled", _oom_words(where, ended, memory_limit))
        return
    if not init and waiting.get("reason") == "CrashLoopBackOff" and ended:
        said = ended.get("message") or ended.get("reason") or ""
        code = ended.get("exitCode")
        yield Problem(
            "CrashLoopBackOff",
            f"{where} keeps exiting (exit code {code}{': ' + _words(said) if said else ''})",
        )


@dataclass(frozen=True)
class MemoryReport:
    """herd-runtime's last measurement before the container ended (herd_runtime.memory), in
    bytes of PSS: the server process (gunicorn's arbiter) and each worker."""

    at: float
    server: int
    workers: tuple[int, ...]


def memory_report(message: str) -> MemoryReport | None:
    """The report a termination message holds, if it is one."""
    if not message.startswith(MEMORY_REPORT_PREFIX):
        return None
    try:
        raw = json.loads(message[len(MEMORY_REPORT_PREFIX) :])
        return MemoryReport(
            float(raw["at"]), int(raw["server"]), tuple(int(w) for w in raw["workers"])
        )
    except (ValueError, KeyError, TypeError):
        return None  # an older or foreign writer: no numbers rather than wrong ones


def _oom_words(where: str, ended: dict[str, Any], memory_limit: str | None) -> str:
    limit = _bytes(memory_limit)
    words = f"{where} went over its memory limit{f' ({memory_limit})' if memory_limit else ''}"
    report = memory_report(ended.get("message") or "")
    if report is None or limit is None:
        return f"{words} and was killed: lower spec.server.workers or raise resources.limits.memory"
    return f"{words} and was killed. {_measured(report, ended)}: {_advice(report, limit)}"


def _measured(report: MemoryReport, ended: dict[str, Any]) -> str:
    finished = ended.get("finishedAt")
    when = f"{max(0, round(seconds(finished) - report.at))} s before" if finished else "Before"
    server = f"{_mib(report.server)} MiB"
    if not report.workers:
        return f"{when}, the server process held {server} (PSS)"
    low, high = _mib(min(report.workers)), _mib(max(report.workers))
    n = len(report.workers)
    held = (
        f"{high} MiB" if n == 1 else f"{high} MiB each" if low == high else f"{low}-{high} MiB each"
    )
    return (
        f"{when}, its {n} worker{'s' if n > 1 else ''} held {held} and the arbiter {server} (PSS)"
    )


def _advice(report: MemoryReport, limit: int) -> str:
    """How many workers of the largest one's size fit the limit with the headroom Herd's
    auto-sizing keeps, and what limit the present count needs."""
    count, largest = len(report.workers), max(report.workers, default=0)
    needed = _limit_for(report.server + count * largest)
    if not count:
        return f"raise resources.limits.memory to {needed}"
    fit = int((limit * AUTO_MEMORY_BUDGET - report.server) // largest)
    if fit < 1:
        return f"not one worker of that size fits: raise resources.limits.memory to {needed}"
    fewer = f"set spec.server.workers to {fit}, or " if fit < count else ""
    return (
        f"{fewer}raise resources.limits.memory to {needed} for {count}; a worker that keeps "
        "growing is a leak spec.server.maxRequests bounds"
    )


def _limit_for(used: int) -> str:
    """A memory limit holding `used` within the auto-sizing budget, in whole 16 Mi steps."""
    steps = math.ceil(used / AUTO_MEMORY_BUDGET / (16 * MIB))
    return f"{steps * 16}Mi"


def _bytes(limit: str | None) -> int | None:
    try:
        return int(quantity(limit)) if limit else None
    except InvalidSpec:
        return None


def _mib(value: int) -> int:
    return round(value / MIB)


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
