"""bench/canary: how fast a canary rollout takes its first step, and how fast a failing canary is
rolled back, with the operator's default canary interval (5 s).

- First step: from the `kubectl apply` of a new image (stable already serving, spec.canary
  set) to status.canary.weight > 0 and to the canary Ingress's `canary-weight` annotation.
- Rollback: the canary serves healthy traffic at a timed pause step (weight 20, analysis every
  intervalSeconds); its load then switches to 50 % 5xx. Measured from the switch: the canary's
  error share in Prometheus (the operator's own analysis query) crossing maxErrorRate, the first
  failed check, RolledBack with weight 0, and the Ingress sending nothing to the canary any
  more; compared with the documented bound intervalSeconds × failureLimit + one interval.

    .venv/bin/python -m bench.canary [--quick] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bench import markdown, rig
from herd.metric_sources import SOURCES, Target

INTERVAL_SECONDS = 10
FAILURE_LIMIT = 2
MAX_ERROR_RATE = 0.05
MIN_REQUESTS = 20
WEIGHT = 20
#: The documented bound: failureLimit failed checks one interval apart, and one interval for
#: the first check to see the failures.
BOUND = INTERVAL_SECONDS * FAILURE_LIMIT + INTERVAL_SECONDS
#: The operator's default --canary-interval; the bench starts the operator without it.
CANARY_INTERVAL = 5
#: (hey workers, requests/s each) on the canary's app server: 1200 requests/min.
LOAD = (2, 10)
FAILING = "/fail?rate=0.5"
#: A timed pause far longer than a trial: the rollout stays Progressing (analysing) at weight 20.
STEPS = f"[{{setWeight: {WEIGHT}}}, {{pause: {{duration: 3600}}}}]"
#: Every load stops by itself after this long, whatever happens to the bench.
LOAD_SECONDS = 240
PREFIX = "nginx.ingress.kubernetes.io/"

MANIFEST = """
apiVersion: herd.dev/v1alpha1
kind: WebService
metadata: {{name: {name}}}
spec:
  image: {image}
  app: {app}
  replicas: 4
  route: {{ingress: {{host: {name}.bench.local}}}}
  metrics: {{prometheusURL: "{url}"}}
  canary:
    steps: {steps}
    analysis:
      intervalSeconds: {interval}
      maxErrorRate: {max_error_rate}
      minRequests: {min_requests}
      failureLimit: {failure_limit}
"""


@dataclass
class Trial:
    name: str
    canary_created: float | None = None  # apply → the canary Deployment exists
    weighted: float | None = None  # apply → status.canary.weight > 0
    routed: float | None = None  # apply → the canary Ingress carries the weight
    #: Seconds since the controller's previous analysis when the load switched to failing.
    phase: float | None = None
    crossed: float | None = None  # switch → the error share in Prometheus > maxErrorRate
    first_failure: float | None = None  # switch → status.canary.failedChecks ≥ 1
    rolled_back: float | None = None  # switch → phase RolledBack, weight 0
    unrouted: float | None = None  # switch → the Ingress sends the canary nothing
    failed_checks: int | None = None


def manifest(name: str, image: str, prometheus_url: str) -> str:
    return MANIFEST.format(
        name=name,
        image=image,
        app=rig.APP,
        url=prometheus_url,
        steps=STEPS,
        interval=INTERVAL_SECONDS,
        max_error_rate=MAX_ERROR_RATE,
        min_requests=MIN_REQUESTS,
        failure_limit=FAILURE_LIMIT,
    )


def canary_status(bench: rig.Bench, name: str) -> dict[str, Any]:
    return (bench.webservice(name).get("status") or {}).get("canary") or {}


def canary_routed(bench: rig.Bench, name: str) -> bool:
    """The canary Ingress exists and sends the canary a share of the traffic."""
    ingress = bench.get("Ingress", f"{name}-canary")
    notes = (ingress or {}).get("metadata", {}).get("annotations") or {}
    weight = int(notes.get(PREFIX + "canary-weight", 0))
    return notes.get(PREFIX + "canary") == "true" and weight > 0


def error_share_query(namespace: str, name: str) -> str:
    """The operator's analysis query: the canary's 5xx share over the last intervalSeconds."""
    return SOURCES["app"].error_rate(Target(namespace, name, "canary", f"{INTERVAL_SECONDS}s"))


def deploy_stable(bench: rig.Bench, name: str, prometheus_url: str) -> None:
    bench.kubectl.apply(manifest(name, "bench/app:1", prometheus_url))
    bench.kubectl.run("wait", "--for", "condition=Ready", f"webservice/{name}", "--timeout=60s")
    rig.until(
        lambda: (bench.webservice(name).get("status") or {}).get("stableSpec"),
        timeout=30,
        what=f"{name}: the stable version recorded",
    )


def window_is_healthy(bench: rig.Bench, serving: rig.Serving, name: str) -> bool:
    """The analysis window holds enough of the canary's requests, none failing: the previous
    trial's failures are out of it."""
    source, target = SOURCES["app"], Target(bench.namespace, name, "canary", f"{INTERVAL_SECONDS}s")
    requests = serving.value(source.request_count(target))
    share = serving.value(source.error_rate(target))
    return requests is not None and requests >= MIN_REQUESTS and share == 0


def first_step(bench: rig.Bench, name: str, prometheus_url: str, trial: Trial) -> None:
    """Applies the new image and polls until the weight is in the status and in the Ingress."""
    bench.kubectl.apply(manifest(name, "bench/app:2", prometheus_url))
    started = time.monotonic()  # the API server has stored the change: the operator may act
    while time.monotonic() - started < 60 and None in (
        trial.canary_created,
        trial.weighted,
        trial.routed,
    ):
        if trial.canary_created is None and bench.get("Deployment", f"{name}-canary"):
            trial.canary_created = time.monotonic() - started
        if trial.weighted is None and canary_status(bench, name).get("weight", 0) > 0:
            trial.weighted = time.monotonic() - started
        if trial.routed is None and canary_routed(bench, name):
            trial.routed = time.monotonic() - started
        time.sleep(rig.POLL)


def passing_at_pause(bench: rig.Bench, name: str) -> bool:
    canary = canary_status(bench, name)
    return (
        canary.get("phase") == "Progressing"
        and canary.get("stepIndex") == 1
        and (canary.get("lastAnalysis") or {}).get("verdict") == "pass"
    )


def seconds_since(rfc3339: str | None) -> float | None:
    if not rfc3339:
        return None
    return time.time() - datetime.fromisoformat(rfc3339).timestamp()


def rollback(bench: rig.Bench, serving: rig.Serving, name: str, trial: Trial) -> None:
    """Polls from the switch to failing load until the canary has no traffic left."""
    started = time.monotonic()
    query = error_share_query(bench.namespace, name)
    while time.monotonic() - started < 3 * BOUND and None in (trial.rolled_back, trial.unrouted):
        share = serving.value(query)
        if trial.crossed is None and share is not None and share > MAX_ERROR_RATE:
            trial.crossed = time.monotonic() - started
        canary = canary_status(bench, name)
        if trial.first_failure is None and canary.get("failedChecks", 0) >= 1:
            trial.first_failure = time.monotonic() - started
        if (
            trial.rolled_back is None
            and canary.get("phase") == "RolledBack"
            and canary.get("weight") == 0
        ):
            trial.rolled_back = time.monotonic() - started
            trial.failed_checks = canary.get("failedChecks")
        if trial.unrouted is None and not canary_routed(bench, name):
            trial.unrouted = time.monotonic() - started
        time.sleep(rig.POLL)


def run_trial(bench: rig.Bench, serving: rig.Serving, name: str) -> Trial:
    port, url = serving.servers["canary"].port, serving.prometheus.url
    trial = Trial(name)
    loads = [rig.Load.start(port, "/", *LOAD, seconds=LOAD_SECONDS)]
    try:
        deploy_stable(bench, name, url)
        rig.until(
            lambda: window_is_healthy(bench, serving, name),
            timeout=60,
            what=f"{name}: healthy canary traffic in the analysis window",
        )
        first_step(bench, name, url, trial)
        rig.until(
            lambda: passing_at_pause(bench, name),
            timeout=60,
            what=f"{name}: a passing analysis at the pause step",
        )
        # Switch at a random phase of the analysis loop: the time to roll back depends on it.
        time.sleep(random.uniform(0, INTERVAL_SECONDS))
        trial.phase = seconds_since(canary_status(bench, name).get("lastAnalysisTime"))
        loads[0].stop()
        loads.append(rig.Load.start(port, FAILING, *LOAD, seconds=LOAD_SECONDS))
        rollback(bench, serving, name, trial)
        return trial
    finally:
        for load in loads:
            load.stop()
        bench.delete_webservice(name)


def _median_row(trials: Sequence[Trial], label: str, keys: Sequence[str]) -> list[str]:
    cells = []
    for key in keys:
        values = [v for t in trials if (v := getattr(t, key)) is not None]
        cells.append(f"**{markdown.seconds(statistics.median(values) if values else None)}**")
    return [label, *cells]


def first_step_table(trials: Sequence[Trial]) -> list[str]:
    keys = ("canary_created", "weighted", "routed")
    rows = [[t.name, *(markdown.seconds(getattr(t, k)) for k in keys)] for t in trials]
    if len(trials) > 1:
        rows.append(_median_row(trials, "**median**", keys))
    return markdown.table(
        [
            "trial",
            "apply → canary Deployment exists (s)",
            f"apply → status.canary.weight {WEIGHT} (s)",
            f"apply → Ingress `canary-weight: {WEIGHT}` (s)",
        ],
        rows,
        "lrrr",
    )


def rollback_table(trials: Sequence[Trial]) -> list[str]:
    keys = ("crossed", "first_failure", "rolled_back", "unrouted")
    rows = [
        [
            t.name,
            markdown.seconds(t.phase),
            *(markdown.seconds(getattr(t, k)) for k in keys),
            "–" if t.failed_checks is None else str(t.failed_checks),
            f"{BOUND}",
        ]
        for t in trials
    ]
    if len(trials) > 1:
        rows.append([*_median_row(trials, "**median**", ("phase", *keys)), "", ""])
    return markdown.table(
        [
            "trial",
            "switch came after the previous analysis (s, ±1)",
            f"switch → error share > {MAX_ERROR_RATE:.0%} in Prometheus (s)",
            "switch → first failed check (s)",
            "switch → RolledBack, weight 0 (s)",
            "switch → Ingress sends the canary nothing (s)",
            "failed checks",
            "documented bound (s)",
        ],
        rows,
        "lrrrrrrr",
    )


def render(trials: Sequence[Trial], argv: Sequence[str], minutes: float) -> str:
    rpm = LOAD[0] * LOAD[1] * 60
    lines = [
        "## Canary rollouts: first step and rollback (bench/canary)",
        "",
        *markdown.run_lines("bench.canary", argv),
        f"- Run time: {minutes:.1f} min",
        "- Rig: the local control plane (kwok nodes: a pod is Ready once scheduled), the operator "
        f"started with `--namespace` only (`--canary-interval` at its default, {CANARY_INTERVAL} "
        "s), two herd-runtime gunicorn servers standing in for the stable and the canary pods, "
        "Debian's Prometheus scraping them every 1 s with the pods' labels, load from `hey` on "
        f"loopback straight to the canary's server ({rpm} requests/min). A fresh WebService per "
        f"trial; polled every {rig.POLL} s.",
        f"- Canary: `steps: {STEPS}`, `analysis: {{intervalSeconds: {INTERVAL_SECONDS}, "
        f"failureLimit: {FAILURE_LIMIT}, maxErrorRate: {MAX_ERROR_RATE}, "
        f"minRequests: {MIN_REQUESTS}}}`, 4 stable replicas.",
        "",
        "### Image change to the first weight step",
        "",
        "From the return of `kubectl apply` with the new image, the stable version serving.",
        "",
        *first_step_table(trials),
        "",
        "### Failing canary to rollback",
        "",
        "The canary passes an analysis at the pause step (weight "
        f"{WEIGHT}); at a random moment after it, its load switches to `{FAILING}` (half of the "
        "requests answer 500). The error share is the operator's analysis query, the canary's "
        f"5xx share over the last `intervalSeconds` ({INTERVAL_SECONDS} s). Documented bound: "
        f"intervalSeconds × failureLimit + one interval = {INTERVAL_SECONDS} × {FAILURE_LIMIT} + "
        f"{INTERVAL_SECONDS} = {BOUND} s.",
        "",
        *rollback_table(trials),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args, arguments, names = rig.parse_args(__doc__, "1 trial instead of 3", argv)

    began = time.monotonic()
    with (
        rig.cluster() as admin,
        rig.operator(admin, "bench-canary", 18780, 18790, "operator-bench-canary.log") as bench,
        rig.workdir("bench-canary-") as workdir,
    ):
        # Both servers are scraped once per WebService name, under that name's pod labels.
        scrapes = [
            (track, rig.pod_labels(bench.namespace, name, track))
            for name in names
            for track in ("stable", "canary")
        ]
        with rig.serving(workdir, ("stable", "canary"), scrapes) as serving:
            trials = [run_trial(bench, serving, name) for name in names]

    report = render(trials, arguments, (time.monotonic() - began) / 60)
    print(report)
    if args.write:
        markdown.replace_section(args.write, "canary", report)
    missed = any(None in (t.weighted, t.routed, t.rolled_back) for t in trials)
    late = any(t.rolled_back is not None and t.rolled_back > BOUND for t in trials)
    return 1 if missed or late else 0


if __name__ == "__main__":
    sys.exit(main())
