"""Why pods do not start, from their container statuses: a table of the statuses the kubelet
writes (shapes as seen on the local real node) and the problem each becomes."""

from __future__ import annotations

import pytest

from herd.pod_troubles import problems
from herd.status import Problem


def pod(name="web-1", init=(), containers=()):
    return {
        "metadata": {"name": name},
        "status": {"initContainerStatuses": list(init), "containerStatuses": list(containers)},
    }


def terminated(name, code, reason="Error", message="", last=False, waiting=None):
    ended = {"exitCode": code, "reason": reason, "message": message}
    status = {"name": name, "state": {"waiting": waiting} if waiting else {}}
    if last:
        status["lastState"] = {"terminated": ended}
    else:
        status["state"] = {"terminated": ended}
    return status


def waiting(name, reason, message=""):
    return {"name": name, "state": {"waiting": {"reason": reason, "message": message}}}


OLD = "the image's Python is CPython 3.9.2 (/usr/bin/python3); herd-runtime needs 3.11 or newer"
NO_PYTHON = (
    'failed to create containerd task: ... exec: "python3": executable file not found in $PATH'
)


@pytest.mark.parametrize(
    ("pods", "expected"),
    [
        ([pod()], []),
        (
            [
                pod(
                    init=[
                        terminated("herd-runtime", 0),
                        terminated("herd-runtime-check", 1, message=OLD),
                    ]
                )
            ],
            [Problem("RuntimeIncompatible", f"spec.runtime inject: {OLD} (web-1)")],
        ),
        (  # backing off: the failure is the last state, the current one waits
            [
                pod(
                    init=[
                        terminated(
                            "herd-runtime-check",
                            1,
                            message=OLD,
                            last=True,
                            waiting={"reason": "CrashLoopBackOff"},
                        )
                    ]
                )
            ],
            [Problem("RuntimeIncompatible", f"spec.runtime inject: {OLD} (web-1)")],
        ),
        (
            [pod(init=[terminated("herd-runtime-check", 128, "StartError", NO_PYTHON)])],
            [
                Problem(
                    "RuntimeIncompatible",
                    "spec.runtime inject: the image has no python3 on its PATH; herd-runtime "
                    "needs CPython 3.11 or newer (web-1)",
                )
            ],
        ),
        (
            [pod(init=[waiting("herd-runtime", "ImagePullBackOff", "pull access denied")])],
            [
                Problem(
                    "RuntimeImageUnavailable",
                    "container herd-runtime of pod web-1: pull access denied",
                )
            ],
        ),
        (
            [pod(containers=[waiting("app", "ErrImagePull", "not found")])],
            [Problem("ImagePullFailed", "container app of pod web-1: not found")],
        ),
        (
            [pod(containers=[terminated("app", 137, "OOMKilled", last=True)])],
            [
                Problem(
                    "OOMKilled",
                    "container app of pod web-1 went over its memory limit and was killed: "
                    "lower spec.server.workers or raise resources.limits.memory",
                )
            ],
        ),
        (
            [
                pod(
                    containers=[
                        terminated(
                            "app",
                            2,
                            message="Traceback (most recent call last):\n  ...\nImportError: x\n",
                            last=True,
                            waiting={"reason": "CrashLoopBackOff"},
                        )
                    ]
                )
            ],
            [
                Problem(
                    "CrashLoopBackOff",
                    "container app of pod web-1 keeps exiting (exit code 2: Traceback (most "
                    "recent call last): ... ImportError: x)",
                )
            ],
        ),
        (  # a container that exited once and is running again is no trouble
            [pod(containers=[terminated("app", 1, last=True)])],
            [],
        ),
    ],
)
def test_each_status_becomes_its_problem(pods, expected):
    assert problems(pods) == expected


def test_one_problem_per_reason_and_the_most_telling_first():
    crash = terminated("app", 1, last=True, waiting={"reason": "CrashLoopBackOff"})
    old = terminated("herd-runtime-check", 1, message=OLD)
    found = problems([pod("a", containers=[crash]), pod("b", init=[old]), pod("c", init=[old])])
    assert [p.reason for p in found] == ["RuntimeIncompatible", "CrashLoopBackOff"]
    assert found[0].message.endswith("(b)")


def test_a_long_message_keeps_its_end():
    said = "x" * 1000 + " ImportError: the end"
    found = problems([pod(init=[terminated("herd-runtime-check", 1, message=said)])])
    assert found[0].message.endswith("ImportError: the end (web-1)")
    assert len(found[0].message) < 400


MIB = 2**20


def oom_killed(report: str, limit: str | None = "256Mi") -> dict:
    status = terminated("app", 137, "OOMKilled", message=report, last=True)
    status["lastState"]["terminated"]["finishedAt"] = "2026-12-03T07:00:02Z"
    resources = {"limits": {"memory": limit}} if limit else {}
    return {
        **pod(containers=[status]),
        "spec": {"containers": [{"name": "app", "resources": resources}]},
    }


def report(server_mib: int, *workers_mib: int, at: str = "1796281200") -> str:
    # 1796281200 is 2026-12-03T07:00:00Z: two seconds before the kill.
    workers = ",".join(str(w * MIB) for w in workers_mib)
    return f'herd-memory {{"at":{at},"server":{server_mib * MIB},"workers":[{workers}]}}'


KILLED = "container app of pod web-1 went over its memory limit (256Mi) and was killed."


@pytest.mark.parametrize(
    ("killed", "words"),
    [
        pytest.param(
            oom_killed(report(30, 55, 61, 58, 60)),
            f"{KILLED} 2 s before, its 4 workers held 55-61 MiB each and the arbiter 30 MiB "
            "(PSS): set spec.server.workers to 2, or raise resources.limits.memory to 352Mi "
            "for 4; a worker that keeps growing is a leak spec.server.maxRequests bounds",
            id="fewer-workers-fit",
        ),
        pytest.param(
            oom_killed(report(30, 80, 80)),
            f"{KILLED} 2 s before, its 2 workers held 80 MiB each and the arbiter 30 MiB (PSS): "
            "raise resources.limits.memory to 240Mi for 2; a worker that keeps growing is a "
            "leak spec.server.maxRequests bounds",
            id="the-count-fits-a-burst-did-not",
        ),
        pytest.param(
            oom_killed(report(30, 200)),
            f"{KILLED} 2 s before, its 1 worker held 200 MiB and the arbiter 30 MiB (PSS): "
            "not one worker of that size fits: raise resources.limits.memory to 288Mi",
            id="not-one-fits",
        ),
        pytest.param(
            oom_killed(report(240)),
            f"{KILLED} 2 s before, the server process held 240 MiB (PSS): raise "
            "resources.limits.memory to 304Mi",
            id="single-process",
        ),
        pytest.param(
            oom_killed("herd-memory {not json"),
            "container app of pod web-1 went over its memory limit (256Mi) and was killed: "
            "lower spec.server.workers or raise resources.limits.memory",
            id="a-garbled-report-gives-no-numbers",
        ),
        pytest.param(
            oom_killed(report(30, 60), limit=None),
            "container app of pod web-1 went over its memory limit and was killed: "
            "lower spec.server.workers or raise resources.limits.memory",
            id="no-limit-in-the-spec",
        ),
    ],
)
def test_an_oom_kill_names_what_the_runtime_last_measured_and_what_fits(killed, words):
    assert problems([killed]) == [Problem("OOMKilled", words)]
