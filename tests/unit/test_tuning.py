"""Worker-type tuning: every rule as a table of cases."""

from __future__ import annotations

import pytest

from herd.model import Resources, ServerSpec
from herd.serving.tuning import (
    AUTO_KEEPALIVE_SECONDS,
    EVENT_LOOP_CONCURRENCY,
    INGRESS_UPSTREAM_KEEPALIVE_SECONDS,
    pod_cpu,
    resolve,
)


def res(cpu_limit=None, cpu_request=None, memory_limit=None) -> Resources:
    limits = {k: v for k, v in (("cpu", cpu_limit), ("memory", memory_limit)) if v}
    requests = {"cpu": cpu_request} if cpu_request else {}
    return Resources(requests=requests, limits=limits)


@pytest.mark.parametrize(
    ("resources", "cpu"),
    [
        (res(), 1.0),  # nothing set: 1 CPU, never the node's cores
        (res(cpu_request="250m"), 0.25),  # request when there is no limit
        (res(cpu_limit="2", cpu_request="500m"), 2.0),  # the limit wins
        (res(cpu_limit="1500m"), 1.5),
    ],
)
def test_cpu_comes_from_the_pod_never_the_node(resources, cpu):
    assert pod_cpu(resources) == cpu


@pytest.mark.parametrize(
    ("interface", "workload", "cpu", "klass", "workers", "threads"),
    [
        ("asgi", "mixed", "1", "uvicorn", 1, 1),
        ("asgi", "io", "2", "uvicorn", 2, 1),
        ("asgi", "cpu", "4", "uvicorn", 4, 1),
        ("wsgi", "io", "1", "gthread", 3, 64),
        ("wsgi", "io", "2", "gthread", 5, 64),
        ("wsgi", "mixed", "1", "gthread", 2, 16),
        ("wsgi", "mixed", "2", "gthread", 3, 16),
        ("wsgi", "cpu", "1", "sync", 1, 1),
        ("wsgi", "cpu", "500m", "sync", 1, 1),
        ("wsgi", "cpu", "1500m", "sync", 2, 1),
        ("wsgi", "cpu", "3", "sync", 3, 1),
    ],
)
def test_auto_worker_class_and_counts(interface, workload, cpu, klass, workers, threads):
    config = resolve(interface, ServerSpec(workload=workload), res(cpu_limit=cpu))
    assert (config.worker_class, config.workers, config.threads) == (klass, workers, threads)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (ServerSpec(worker_class="sync", workload="io"), ("sync", 3, 1)),  # 2 x cores + 1 for waits
        (ServerSpec(worker_class="gevent"), ("gevent", 1, 1)),
        (ServerSpec(worker_class="gthread", workers=3, threads=16), ("gthread", 3, 16)),
        (ServerSpec(workers=7), ("gthread", 7, 16)),
    ],
)
def test_explicit_values_win(spec, expected):
    config = resolve("wsgi", spec, res(cpu_limit="1"))
    assert (config.worker_class, config.workers, config.threads) == expected


@pytest.mark.parametrize(
    ("memory", "cpu", "workers"),
    [
        ("128Mi", "4", 1),  # 0.8 x 128 - 30 = 72Mi: one 60Mi gthread worker
        ("256Mi", "4", 2),  # 0.8 x 256 - 30 = 174Mi: two
        ("320Mi", "4", 3),  # 226Mi: three
        ("4Gi", "4", 5),  # memory is no bound: 4 cores + 1 for a mixed workload
    ],
)
def test_auto_workers_fit_the_memory_limit(memory, cpu, workers):
    config = resolve("wsgi", ServerSpec(), res(cpu_limit=cpu, memory_limit=memory))
    assert config.workers == workers
    assert config.advice == ()


def test_explicit_workers_beyond_memory_are_reported():
    config = resolve("wsgi", ServerSpec(workers=16), res(cpu_limit="1", memory_limit="256Mi"))
    assert [a.reason for a in config.advice] == ["MemoryOvercommit"]
    assert "16 gthread workers need about 990Mi" in config.advice[0].message
    assert "256Mi" in config.advice[0].message


@pytest.mark.parametrize(
    ("keep_alive", "behind_ingress", "klass", "advised"),
    [
        (0, True, "auto", False),  # auto: 75 s, longer than the ingress's 60 s
        (5, True, "auto", True),  # the classic 502 race
        (60, True, "auto", True),  # equal is not longer
        (61, True, "auto", False),
        (5, False, "auto", False),  # no ingress in front: nothing to race with
        (5, True, "sync", False),  # sync workers never keep connections alive
    ],
)
def test_keep_alive_must_outlive_the_ingress(keep_alive, behind_ingress, klass, advised):
    spec = ServerSpec(keep_alive_seconds=keep_alive, worker_class=klass)
    config = resolve("wsgi", spec, res(), behind_ingress=behind_ingress)
    assert ("KeepAliveTooShort" in [a.reason for a in config.advice]) is advised
    if keep_alive == 0:
        assert (
            config.keep_alive_seconds == AUTO_KEEPALIVE_SECONDS > INGRESS_UPSTREAM_KEEPALIVE_SECONDS
        )


def test_timeouts_nest_inside_the_ingress_and_the_grace_period():
    config = resolve("wsgi", ServerSpec(timeout_seconds=45, graceful_timeout_seconds=20), res())
    assert config.ingress_read_timeout_seconds > config.timeout_seconds
    # preStop sleep (5) + graceful drain (20) + margin (5)
    assert config.termination_grace_period_seconds == 30


@pytest.mark.parametrize(
    ("interface", "worker_class"),
    [
        ("wsgi", "sync"),
        ("wsgi", "gthread"),
        ("wsgi", "gevent"),
        ("asgi", "uvicorn"),
        ("asgi", "auto"),
    ],
)
@pytest.mark.parametrize(("max_requests", "expected"), [(0, (5000, 500)), (1000, (1000, 100))])
def test_every_worker_class_is_recycled_with_jitter(
    interface, worker_class, max_requests, expected
):
    # uvicorn too, with the injected runtime: herd_runtime.recycling's draining worker.
    spec = ServerSpec(worker_class=worker_class, max_requests=max_requests)
    config = resolve(interface, spec, res(), recycling_runtime=True)
    assert (config.max_requests, config.max_requests_jitter) == expected


@pytest.mark.parametrize(
    ("interface", "max_requests", "recycling_runtime", "expected"),
    [
        ("asgi", 0, False, (0, 0)),  # an image's own runtime may drop connections at the limit
        ("asgi", 0, True, (5000, 500)),
        ("asgi", 800, False, (800, 80)),  # asked for explicitly: the user rebuilt the image
        ("wsgi", 0, False, (5000, 500)),  # gunicorn's own workers recycle gracefully
    ],
)
def test_the_automatic_uvicorn_limit_needs_a_runtime_that_drains(
    interface, max_requests, recycling_runtime, expected
):
    spec = ServerSpec(max_requests=max_requests)
    config = resolve(interface, spec, res(), recycling_runtime=recycling_runtime)
    assert (config.max_requests, config.max_requests_jitter) == expected


@pytest.mark.parametrize("preload", [False, True])
def test_preload_is_the_users_choice(preload):
    assert resolve("asgi", ServerSpec(preload=preload), res()).preload is preload


def test_derived_workers_stop_at_the_schemas_maximum():
    """A CPU limit of 1e6 is a valid quantity; 2,000,001 gunicorn workers are no answer."""
    config = resolve("wsgi", ServerSpec(workload="io"), res(cpu_limit="1e6"))
    assert config.workers == 64
    assert [a.reason for a in config.advice] == ["WorkersCapped"]
    assert resolve("wsgi", ServerSpec(workers=64), res(cpu_limit="1e6")).advice == ()


@pytest.mark.parametrize(
    ("interface", "spec", "capacity"),
    [
        ("wsgi", ServerSpec(workload="io"), 3 * 64),  # a thread per request
        ("wsgi", ServerSpec(worker_class="gthread", workers=2, threads=4), 8),
        ("wsgi", ServerSpec(workload="cpu"), 1),  # sync: one request per process
        ("wsgi", ServerSpec(worker_class="sync", workers=5), 5),
        ("wsgi", ServerSpec(worker_class="gevent", workers=2), 2 * EVENT_LOOP_CONCURRENCY),
        ("asgi", ServerSpec(), EVENT_LOOP_CONCURRENCY),  # an event loop: a target, not a cap
    ],
)
def test_concurrency_capacity(interface, spec, capacity):
    assert resolve(interface, spec, res(cpu_limit="1")).concurrency_capacity == capacity
