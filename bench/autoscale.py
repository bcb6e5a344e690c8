"""bench/autoscale: how fast and how steadily Herd's built-in autoscaler follows load, at the
operator's default decision interval (15 s).

- Reaction: a WebService at 1 replica under a steady low load (0.8 of a replica's worth) gets a
  step to 5 replicas' worth. Measured from the step: Prometheus's 1m-rate RPM (the operator's
  own query) crossing target × 1.1, the decision (the WebService's spec.replicas, written
  through its scale subresource), and the Deployment's spec.replicas. Each trial has its own
  app server and a fresh WebService, so none waits for the previous one to scale back in.
- Stability: a constant load of 3.1 replicas' worth, just past the 3-replica boundary and
  inside 3 replicas' 10 % tolerance band; replica changes after the first settle are
  oscillations (target: none).

    .venv/bin/python -m bench.autoscale [--quick] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench import markdown, rig
from herd.metric_sources import SOURCES, Target

TARGET_RPM = 600
#: Above this, one replica is outside the 10 % tolerance band: the first scale-out is possible.
THRESHOLD = TARGET_RPM * 1.1
#: (hey workers, requests/s each). LOW is 480 RPM (0.8 replica), LOW + STEP 3000 (5 replicas).
#: STEADY is 1860 RPM, 3.1 replicas' worth: ceil() alone would want 4, but it is 3.3 % above
#: what 3 replicas are sized for, inside the 10 % tolerance band, so 3 should hold.
LOW = (1, 8)
STEP = (3, 14)
STEADY = (1, 31)
#: The operator's default --autoscale-interval; the bench starts the operator without it.
INTERVAL = 15.0
#: Seconds of load before a step or a settle: the 1m rate window then holds only that load.
WARMUP = 65.0
#: How long a trial waits for the reaction before it reports what it did not see.
REACTION_TIMEOUT = 60.0

MANIFEST = """
apiVersion: herd.dev/v1alpha1
kind: WebService
metadata: {{name: {name}}}
spec:
  image: bench/app:1
  app: {app}
  replicas: 1
  metrics: {{prometheusURL: "{url}"}}
  autoscaling:
    enabled: true
    minReplicas: 1
    maxReplicas: 10
    targetRPMPerReplica: {target}
"""


@dataclass
class Reaction:
    name: str
    #: Seconds since the autoscaler's previous decision when the step came (its loop phase).
    phase: float | None = None
    rpm_crossed: float | None = None
    decided: float | None = None
    deployment: float | None = None
    replicas: int | None = None  # what the first decision chose
    decision_rpm: float | None = None  # the RPM that decision saw (status.autoscaling)


@dataclass
class Stability:
    seconds: float
    settled_at: float | None = None
    settled_replicas: int | None = None
    #: (seconds since the load began, replicas, the autoscaler's reason) up to the settle...
    ramp: list[tuple[float, int, str]] = field(default_factory=list)
    #: ...and after it: the oscillations.
    changes: list[tuple[float, int, str]] = field(default_factory=list)
    replicas: list[int] = field(default_factory=list)
    prometheus_rpm: list[float] = field(default_factory=list)
    decision_rpm: list[float] = field(default_factory=list)
    decision_times: list[float] = field(default_factory=list)
    #: Decisions the bench's own operator made from the settle on (its metrics): fewer than the
    #: status showed means another autoscaler wrote this WebService too, and the run is void.
    own_decisions: float | None = None

    @property
    def foreign(self) -> bool:
        """Decisions showed up in the status that the bench's operator did not make."""
        return self.own_decisions is not None and len(self.decision_times) > self.own_decisions

    @property
    def mean_interval(self) -> float | None:
        times = self.decision_times
        return (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else None


def apply_webservice(bench: rig.Bench, name: str, prometheus_url: str) -> None:
    bench.kubectl.apply(
        MANIFEST.format(name=name, app=rig.APP, url=prometheus_url, target=TARGET_RPM)
    )


def rpm_query(namespace: str, name: str) -> str:
    """The operator's own query: 60 × the 1m rate of the stable track's requests."""
    return SOURCES["app"].requests_per_minute(Target(namespace, name))


def autoscaling(ws: dict[str, Any]) -> dict[str, Any]:
    return (ws.get("status") or {}).get("autoscaling") or {}


def last_decision(ws: dict[str, Any]) -> int | None:
    """When the autoscaler last decided (epoch seconds): every decision records a
    recommendation, and the newest one is always kept."""
    kept = autoscaling(ws).get("recommendations") or []
    return max((int(r["time"]) for r in kept), default=None)


def own_decisions(bench: rig.Bench) -> float:
    """The bench operator's decisions so far, all WebServices together."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in bench.operator.metrics().splitlines()
        if line.startswith("herd_autoscale_decisions_total")
    )


def reaction_trial(bench: rig.Bench, serving: rig.Serving, name: str) -> Reaction:
    port = serving.servers[name].port
    apply_webservice(bench, name, serving.prometheus.url)
    low = rig.Load.start(port, "/", *LOW, seconds=WARMUP + 2 * INTERVAL + REACTION_TIMEOUT + 30)
    began = time.monotonic()
    try:
        rig.until(
            lambda: last_decision(bench.webservice(name)) is not None,
            timeout=WARMUP,
            what=f"{name}: a first decision under the low load",
        )
        # Step at a random phase of the 15 s loop: a fixed delay after the WebService's creation
        # would always land at the same phase, and the reaction depends on it.
        time.sleep(max(0.0, began + WARMUP - time.monotonic()) + random.uniform(0, INTERVAL))
        before = bench.webservice(name)
        if before["spec"]["replicas"] != 1:
            raise RuntimeError(f"{name}: {before['spec']['replicas']} replicas before the step")
        step = rig.Load.start(port, "/", *STEP, seconds=REACTION_TIMEOUT + 10)
        try:
            return observe_reaction(bench, serving, name, before)
        finally:
            step.stop()
    finally:
        low.stop()
        bench.delete_webservice(name)


def observe_reaction(
    bench: rig.Bench, serving: rig.Serving, name: str, before: dict[str, Any]
) -> Reaction:
    """Polls Prometheus, the WebService and the Deployment until each has moved."""
    started, wall = time.monotonic(), time.time()
    previous = last_decision(before)
    reaction = Reaction(name, phase=wall - previous if previous is not None else None)
    scaled_before = autoscaling(before).get("lastScaleTime")
    query = rpm_query(bench.namespace, name)
    status_seen = False
    while time.monotonic() - started < REACTION_TIMEOUT:
        if reaction.rpm_crossed is None and (serving.value(query) or 0.0) > THRESHOLD:
            reaction.rpm_crossed = time.monotonic() - started
        ws = bench.webservice(name)
        if reaction.decided is None and ws["spec"]["replicas"] > 1:
            reaction.decided = time.monotonic() - started
            reaction.replicas = ws["spec"]["replicas"]
        # The status follows the scale in the same decision: read what that decision saw.
        if not status_seen and autoscaling(ws).get("lastScaleTime") != scaled_before:
            status_seen = True
            reaction.decision_rpm = autoscaling(ws).get("currentRPM")
        deployment = bench.get("Deployment", name)
        if reaction.deployment is None and deployment and deployment["spec"]["replicas"] > 1:
            reaction.deployment = time.monotonic() - started
        if None not in (reaction.rpm_crossed, reaction.decided, reaction.deployment) and (
            status_seen
        ):
            break
        time.sleep(rig.POLL)
    return reaction


def stability(bench: rig.Bench, serving: rig.Serving, seconds: float) -> Stability:
    """A constant load for `seconds`; the settle is the first decision once the 1m window holds
    only this load, and every replica change after it counts."""
    name = "steady"
    apply_webservice(bench, name, serving.prometheus.url)
    load = rig.Load.start(serving.servers[name].port, "/", *STEADY, seconds=seconds + 5)
    started = time.monotonic()
    result = Stability(seconds)
    query = rpm_query(bench.namespace, name)
    seen_decision: int | None = None
    counted = 0.0
    decided: int | None = None  # the replicas of the previous decision
    try:
        while (now := time.monotonic() - started) < seconds:
            ws = bench.webservice(name)
            decision, current = last_decision(ws), ws["spec"]["replicas"]
            # Act on decisions, not on spec changes: the status (and its reason) is written
            # after the scale, so once a new decision shows, the spec is that decision's.
            if decision is not None and decision != seen_decision:
                seen_decision = decision
                if decided is not None and current != decided:
                    change = (now, current, autoscaling(ws).get("reason", ""))
                    (result.ramp if result.settled_at is None else result.changes).append(change)
                decided = current
                if result.settled_at is None and now >= WARMUP:
                    result.settled_at, result.settled_replicas = now, current
                    counted = own_decisions(bench) - 1  # the settle's own decision counts
                if result.settled_at is not None:
                    result.decision_times.append(now)
                    if (rpm := autoscaling(ws).get("currentRPM")) is not None:
                        result.decision_rpm.append(float(rpm))
            if result.settled_at is not None:
                result.replicas.append(current)
                if (rpm := serving.value(query)) is not None:
                    result.prometheus_rpm.append(rpm)
            time.sleep(rig.POLL)
        if result.settled_at is not None:
            result.own_decisions = own_decisions(bench) - counted
    finally:
        load.stop()
        bench.delete_webservice(name)
    return result


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _range(values: Sequence[float], digits: int = 0) -> str:
    return f"{min(values):.{digits}f}–{max(values):.{digits}f}" if values else "–"


def reaction_table(reactions: Sequence[Reaction]) -> list[str]:
    rows = [
        [
            r.name,
            markdown.seconds(r.phase),
            markdown.seconds(r.rpm_crossed),
            markdown.seconds(r.decided),
            markdown.seconds(r.deployment),
            "–" if r.replicas is None else f"1 → {r.replicas}",
            "–" if r.decision_rpm is None else f"{r.decision_rpm:.0f}",
        ]
        for r in reactions
    ]
    if len(reactions) > 1:
        rows.append(
            [
                "**median**",
                "",
                *(
                    f"**{markdown.seconds(_median([getattr(r, key) for r in reactions]))}**"
                    for key in ("rpm_crossed", "decided", "deployment")
                ),
                "",
                "",
            ]
        )
    return markdown.table(
        [
            "trial",
            "step came after the previous decision (s, ±1)",
            f"step → Prometheus 1m RPM > {THRESHOLD:.0f} (s)",
            "step → decision: WebService spec.replicas (s)",
            "step → Deployment spec.replicas (s)",
            "first decision",
            "RPM that decision saw",
        ],
        rows,
        "lrrrrlr",
    )


def stability_lines(result: Stability) -> list[str]:
    settled = (
        "never (no decision after the warm-up)"
        if result.settled_at is None
        else f"{result.settled_replicas} replicas at {result.settled_at:.0f} s"
    )
    row = [
        f"{STEADY[0] * STEADY[1] * 60} RPM ({STEADY[0] * STEADY[1] * 60 / TARGET_RPM:.1f}× target)",
        f"{result.seconds / 60:.0f} min",
        settled,
        str(len(result.decision_times)),
        markdown.seconds(result.mean_interval),
        f"**{len(result.changes)}**",
        _range([float(r) for r in result.replicas]),
        _range(result.prometheus_rpm),
        _range(result.decision_rpm),
    ]
    lines = markdown.table(
        [
            "constant load",
            "load for",
            "settled (first decision ≥ 65 s in)",
            "decisions from the settle on",
            "mean s between decisions",
            "replica changes after the settle",
            "replicas seen",
            "RPM in Prometheus (1m rate, polled)",
            "RPM the decisions saw",
        ],
        [row],
        "llllrrlll",
    )
    if result.foreign:
        lines += [
            "",
            "**Void: the status showed decisions the bench's operator did not make: another "
            "autoscaler (a second Herd operator watching all namespaces?) wrote this WebService.**",
        ]
    ramp = ", ".join(f"{replicas} at {at:.0f} s" for at, replicas, _ in result.ramp)
    lines += ["", f"Replicas on the way up (1 at the start): {ramp or 'none'}."]
    for at, replicas, reason in result.changes:
        lines.append(f"- after the settle, at {at:.0f} s: {replicas} replicas (reason {reason})")
    return lines


def reference_lines(result: Stability) -> list[str]:
    measured = markdown.seconds(result.mean_interval)
    return markdown.table(
        ["autoscaler", "decision period", "scale-down stabilization", "tolerance", "source"],
        [
            [
                "Herd built-in",
                f"15 s (`--autoscale-interval`); {measured} s between decisions here",
                "300 s (`scaleDownStabilizationSeconds`)",
                "10 %",
                "this run, operator defaults",
            ],
            [
                "Kubernetes HPA",
                "15 s (`--horizontal-pod-autoscaler-sync-period`)",
                "300 s (`--horizontal-pod-autoscaler-downscale-stabilization`)",
                "10 % (`--horizontal-pod-autoscaler-tolerance`)",
                "documented default, not measured",
            ],
            [
                "KEDA",
                "30 s `pollingInterval` (checks each trigger; drives 0 ↔ 1), then 1 ↔ N by "
                "the HPA it creates, at the HPA's 15 s",
                "the HPA's 300 s (`cooldownPeriod` 300 s is for N → 0)",
                "the HPA's",
                "documented default, not measured",
            ],
        ],
    )


def render(
    reactions: Sequence[Reaction], steady: Stability, argv: Sequence[str], minutes: float
) -> str:
    low, step = LOW[0] * LOW[1] * 60, STEP[0] * STEP[1] * 60
    lines = [
        "## Autoscaling: reaction and stability (bench/autoscale)",
        "",
        *markdown.run_lines("bench.autoscale", argv),
        f"- Run time: {minutes:.1f} min",
        "- Rig: the local control plane (kwok nodes), the operator started with `--namespace` "
        "only (every interval at its default: a decision every 15 s), one herd-runtime gunicorn "
        "server per WebService standing in for its pods, Debian's Prometheus scraping them every "
        "1 s with the pods' labels, load from `hey` on loopback. `targetRPMPerReplica` "
        f"{TARGET_RPM}, replicas 1–10, the rest of `autoscaling` at its defaults; polled every "
        f"{rig.POLL} s.",
        "",
        "### Reaction to a load step",
        "",
        f"Steady {low} RPM (1 replica), then a step to {low + step} RPM (5 replicas' worth) at a "
        f"random moment after {WARMUP:.0f} s of the low load. The first scale-out needs the 1m "
        f"rate above {THRESHOLD:.0f}: the tolerance band keeps 1 replica up to there. Expected: "
        "the metrics lag, then up to one decision period.",
        "",
        *reaction_table(reactions),
        "",
        "### Stability under a constant load",
        "",
        "A fresh WebService at 1 replica under a constant load of 3.1 replicas' worth: past the "
        "3-replica boundary (ceil alone would want 4), inside 3 replicas' 10 % tolerance band "
        "(3 should hold). The settle is the first decision once the 1m window holds only this load "
        f"({WARMUP:.0f} s in); every change of spec.replicas after it is an oscillation.",
        "",
        *stability_lines(steady),
        "",
        "### References",
        "",
        "The HPA and KEDA rows are their documented defaults, not measurements: neither runs in "
        "this bench.",
        "",
        *reference_lines(steady),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args, arguments, trials = rig.parse_args(__doc__, "1 trial, 2 minutes of stability", argv)
    steady_seconds = 120.0 if args.quick else 600.0

    began = time.monotonic()
    with (
        rig.cluster() as admin,
        rig.operator(
            admin, "bench-autoscale", 18680, 18690, "operator-bench-autoscale.log"
        ) as bench,
        rig.workdir("bench-autoscale-") as workdir,
    ):
        roles = [*trials, "steady"]
        scrapes = [(role, rig.pod_labels(bench.namespace, role)) for role in roles]
        with rig.serving(workdir, roles, scrapes) as serving:
            reactions = [reaction_trial(bench, serving, name) for name in trials]
            steady = stability(bench, serving, steady_seconds)

    report = render(reactions, steady, arguments, (time.monotonic() - began) / 60)
    print(report)
    if args.write:
        markdown.replace_section(args.write, "autoscale", report)
    missed = any(None in (r.rpm_crossed, r.decided, r.deployment) for r in reactions)
    failed = missed or steady.settled_at is None or steady.changes or steady.foreign
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
