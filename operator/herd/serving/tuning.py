"""Worker-type tuning: the app-server configuration for a pod, from the pod's own resources.

Every rule lives here, each constant with its reason; docs/tuning.md explains them and
bench/dataplane measures them. CPU comes from the container's limit, else its request, else
1 CPU, never from the node: gunicorn's and uvicorn's own defaults read the node's cores
(`multiprocessing.cpu_count()`), which gave 129 workers in a 1-CPU pod (gunicorn #2028).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from herd import api
from herd.model import Interface, Resources, ServerSpec, quantity

#: The most workers a pod runs, derived or written: the schema's own maximum.
MAX_WORKERS = int(api.SERVER.properties["workers"].maximum or 0)
#: ingress-nginx keeps idle upstream connections this long (`upstream-keepalive-timeout`).
INGRESS_UPSTREAM_KEEPALIVE_SECONDS = 60
#: The app must keep idle connections open longer than the proxy, or the proxy reuses a
#: connection the app has just closed and the client gets a 502.
AUTO_KEEPALIVE_SECONDS = 75
#: The ingress waits this much longer than the app's request timeout, so the app (which knows
#: the request) times out first and the proxy never cuts a response the app is still sending.
INGRESS_READ_TIMEOUT_MARGIN_SECONDS = 10
#: Threads per gthread worker. A worker serves at most `threads` requests at once and keeps
#: every keep-alive connection it accepted, so its threads cap its share of the load. io: the
#: CPU saturates only with about rate x wait requests in flight (a 1-CPU Flask pod: ~2,500
#: req/s x 50 ms = 125); bench/dataplane measured 1x8 at 6 % of the best cell, 3x64 at 95 %.
#: mixed: compute holds the GIL, fewer suffice (2x16 at 95 %; the old 2x4 at 92 %).
#: docs/tuning.md has the numbers, and the cost: a database connection per thread.
THREADS_PER_WORKER = {"io": 64, "mixed": 16, "cpu": 1}
#: Recycling workers bounds slow memory leaks; the jitter keeps workers from restarting at once.
#: The uvicorn worker too, where herd-serve runs it as herd_runtime.recycling's, which drains at
#: the limit. uvicorn's own limit drops connections it accepted but had not read (gunicorn
#: #2567: 4-10 resets per 600 requests at max_requests 50, tests/dataplane), and an app image's
#: own herd-runtime may predate the recycling worker: so for uvicorn the limit is automatic only
#: with the injected runtime, whose version is the operator's (`recycling_runtime`).
AUTO_MAX_REQUESTS = {"sync": 5000, "gthread": 5000, "gevent": 5000, "uvicorn": 5000}
MAX_REQUESTS_JITTER_FRACTION = 0.1
#: Requests one event-loop worker (uvicorn, gevent) is sized for: it has no thread cap, so its
#: capacity is a concurrency target, not a limit: Knative's default per-container target
#: (container-concurrency-target-default). bench/dataplane's FastAPI worker saturated its CPU at
#: ~3,200 req/s x 50 ms, about 160 in flight: 100 leaves headroom for heavier requests.
EVENT_LOOP_CONCURRENCY = 100
#: Estimated resident memory of one worker of a small app and of the gunicorn arbiter (MiB).
#: Refined by bench/dataplane; used to keep auto-sized workers inside the memory limit.
WORKER_MEMORY_MIB = {"sync": 50, "gthread": 60, "gevent": 60, "uvicorn": 70}
ARBITER_MEMORY_MIB = 30
#: Auto-sized workers must fit this fraction of the memory limit (the rest is headroom for
#: request buffers and the tmpfs metrics directory, which counts against the limit).
AUTO_MEMORY_BUDGET = 0.8
#: Seconds a terminating pod keeps serving before SIGTERM: ingress-nginx learns of endpoint
#: removal asynchronously, and requests sent meanwhile must still succeed.
PRE_STOP_SLEEP_SECONDS = 5
#: Slack between the app's graceful drain and the kubelet's SIGKILL.
TERMINATION_MARGIN_SECONDS = 5

MIB = 2**20


@dataclass(frozen=True)
class Advice:
    """A configuration risk users should fix; surfaced as a Degraded reason and an Event."""

    reason: str
    message: str


@dataclass(frozen=True)
class ServerConfig:
    worker_class: str
    workers: int
    threads: int
    keep_alive_seconds: int
    timeout_seconds: int
    graceful_timeout_seconds: int
    max_requests: int
    max_requests_jitter: int
    preload: bool
    cpu: float
    memory_bytes: int | None
    advice: tuple[Advice, ...] = ()

    @property
    def ingress_read_timeout_seconds(self) -> int:
        return self.timeout_seconds + INGRESS_READ_TIMEOUT_MARGIN_SECONDS

    @property
    def termination_grace_period_seconds(self) -> int:
        return PRE_STOP_SLEEP_SECONDS + self.graceful_timeout_seconds + TERMINATION_MARGIN_SECONDS

    @property
    def concurrency_capacity(self) -> int:
        """Requests one pod serves at once: a thread each (gthread), one per process (sync), or
        the event-loop target per worker. What targetUtilization is a fraction of."""
        if self.worker_class == "gthread":
            return self.workers * self.threads
        if self.worker_class == "sync":
            return self.workers
        return self.workers * EVENT_LOOP_CONCURRENCY

    def estimated_memory_bytes(self) -> int:
        return (ARBITER_MEMORY_MIB + self.workers * WORKER_MEMORY_MIB[self.worker_class]) * MIB


def pod_cpu(resources: Resources) -> float:
    """CPUs the pod may use: the limit, else the request, else 1."""
    for source in (resources.limits, resources.requests):
        if "cpu" in source:
            return float(quantity(source["cpu"]))
    return 1.0


def pod_memory_bytes(resources: Resources) -> int | None:
    for source in (resources.limits, resources.requests):
        if "memory" in source:
            return int(quantity(source["memory"]))
    return None


def worker_class_for(interface: Interface, spec: ServerSpec) -> str:
    if spec.worker_class != "auto":
        return spec.worker_class
    if interface == "asgi":
        return "uvicorn"  # an event loop per process; ASGI apps need an async server
    return "sync" if spec.workload == "cpu" else "gthread"


def _auto_workers(worker_class: str, workload: str, cpu: float) -> int:
    # A process runs Python on one core at a time (the GIL): one per whole CPU of the limit.
    cores = max(1, math.ceil(cpu - 0.01))
    if worker_class == "sync" and workload != "cpu":
        return 2 * cores + 1  # sync workers block while waiting: extra ones overlap the waits
    if worker_class == "gthread" and workload == "io":
        # Threads in one process contend for the GIL: at 1 CPU, 64 threads in 1, 2, 3 and 4
        # workers served 1136, 1990, 2419 and 2124 req/s (bench/dataplane).
        return 2 * cores + 1
    if worker_class == "gthread" and workload == "mixed":
        return cores + 1  # a compute-heavy request must not stall the only process's threads
    return cores


def resolve(
    interface: Interface,
    spec: ServerSpec,
    resources: Resources,
    behind_ingress: bool = False,
    recycling_runtime: bool = False,
) -> ServerConfig:
    """The configuration Herd runs: explicit values win, `auto`/0 are derived.
    `recycling_runtime`: the pod's herd-runtime is known to drain uvicorn workers at their
    limit (it is the injected one)."""
    cpu = pod_cpu(resources)
    memory = pod_memory_bytes(resources)
    worker_class = worker_class_for(interface, spec)
    derived = _auto_workers(worker_class, spec.workload, cpu)
    # Derived, never past what the schema lets a user write (a CPU limit of 1e6 is valid).
    workers = spec.workers or min(derived, MAX_WORKERS)
    if not spec.workers and memory is not None:
        per_worker = WORKER_MEMORY_MIB[worker_class] * MIB
        budget = AUTO_MEMORY_BUDGET * memory - ARBITER_MEMORY_MIB * MIB
        workers = max(1, min(workers, int(budget // per_worker)))
    if worker_class == "gthread":
        threads = spec.threads or THREADS_PER_WORKER[spec.workload]
    else:
        threads = 1
    keep_alive = spec.keep_alive_seconds or AUTO_KEEPALIVE_SECONDS
    automatic = AUTO_MAX_REQUESTS[worker_class]
    if worker_class == "uvicorn" and not recycling_runtime:
        automatic = 0
    max_requests = spec.max_requests or automatic
    config = ServerConfig(
        worker_class=worker_class,
        workers=workers,
        threads=threads,
        keep_alive_seconds=keep_alive,
        timeout_seconds=spec.timeout_seconds,
        graceful_timeout_seconds=spec.graceful_timeout_seconds,
        max_requests=max_requests,
        max_requests_jitter=int(max_requests * MAX_REQUESTS_JITTER_FRACTION),
        preload=spec.preload,
        cpu=cpu,
        memory_bytes=memory,
    )
    return _with_advice(config, behind_ingress, capped=not spec.workers and derived > MAX_WORKERS)


def _with_advice(config: ServerConfig, behind_ingress: bool, capped: bool) -> ServerConfig:
    advice = []
    if capped:
        advice.append(
            Advice(
                "WorkersCapped",
                f"{config.cpu:g} CPUs would derive more than {MAX_WORKERS} workers: running "
                f"{MAX_WORKERS}, the most server.workers allows; check resources.limits.cpu",
            )
        )
    if config.memory_bytes is not None and config.estimated_memory_bytes() > config.memory_bytes:
        advice.append(
            Advice(
                "MemoryOvercommit",
                f"{config.workers} {config.worker_class} workers need about "
                f"{config.estimated_memory_bytes() // MIB}Mi but the memory limit is "
                f"{config.memory_bytes // MIB}Mi: expect OOM kills; lower server.workers or raise "
                "resources.limits.memory",
            )
        )
    keeps_alive = config.worker_class != "sync"  # gunicorn's sync worker closes every connection
    if (
        behind_ingress
        and keeps_alive
        and config.keep_alive_seconds <= INGRESS_UPSTREAM_KEEPALIVE_SECONDS
    ):
        advice.append(
            Advice(
                "KeepAliveTooShort",
                f"server.keepAliveSeconds {config.keep_alive_seconds} is not longer than the "
                f"ingress's upstream keep-alive ({INGRESS_UPSTREAM_KEEPALIVE_SECONDS}s): the proxy "
                "will reuse connections the app closed and clients will see 502s; set it above "
                f"{INGRESS_UPSTREAM_KEEPALIVE_SECONDS} or to 0",
            )
        )
    return replace(config, advice=tuple(advice))
