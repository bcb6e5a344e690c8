"""`herd`: canary rollouts from a shell, the operator, and offline tools (the CRD, tuning,
rendering). The kubectl plugin, `kubectl herd`, has the rollout commands alone
(`herd.rollout.cli.main`)."""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Sequence
from typing import Any

import yaml

from herd import api, model
from herd.election import Timing
from herd.rollout import cli as rollout_cli
from herd.serving import tuning
from herd.settings import Settings, label_pair
from herd.status import server_status


def _dump(objects: Sequence[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(objects, sort_keys=False, default_flow_style=False)


def operator_settings(args: argparse.Namespace) -> Settings:
    """The settings `herd operator`'s flags say."""
    return Settings(
        ingress_class=args.ingress_class,
        prometheus_url=args.prometheus_url,
        prometheus_allowed=tuple(args.prometheus_allow),
        prometheus_credentials=args.prometheus_credentials,
        runtime_image=args.runtime_image,
        allowed_ingress_annotations=tuple(args.allow_ingress_annotation),
        autoscale_interval=args.autoscale_interval,
        canary_interval=args.canary_interval,
        retry_interval=args.retry_interval,
        pod_monitors=args.pod_monitors,
        pod_monitor_labels=tuple(args.pod_monitor_label),
        leader_election=Timing(args.lease_duration, args.renew_deadline, args.retry_period),
    )


def cmd_operator(args: argparse.Namespace) -> int:
    import asyncio

    import kopf
    from prometheus_client import start_http_server

    from herd import handlers

    settings = operator_settings(args)
    registry = kopf.OperatorRegistry()
    handlers.register(settings, registry)
    kopf.configure(
        verbose=args.verbose,
        log_format=kopf.LogFormat.JSON if args.log_format == "json" else kopf.LogFormat.FULL,
    )
    if args.metrics_port:
        start_http_server(args.metrics_port, addr=args.metrics_address)

    def run(memo: kopf.Memo, stop: asyncio.Event | None = None, leased: bool = False) -> Any:
        return kopf.operator(
            clusterwide=not args.namespace,
            namespaces=args.namespace or (),
            # The Lease elects the leader: kopf's peering would only pause it again.
            standalone=args.standalone or leased,
            # Naming a peering makes it mandatory: replicas wait for the KopfPeering CRD.
            peering_name=None if args.standalone or leased else args.peering,
            priority=args.priority,
            liveness_endpoint=args.liveness or None,
            memo=memo,
            registry=registry,
            stop_flag=stop,
        )

    if not args.lease or args.standalone:
        asyncio.run(run(kopf.Memo(settings=settings)))
        return 0
    return asyncio.run(_lead(args, settings, run))


async def _lead(args: argparse.Namespace, settings: Settings, run: Any) -> int:
    """The operator once this replica holds the Lease, until SIGTERM (then the Lease is released
    at once) or until it can no longer renew (then it stops, exit code 1, and restarts as a
    standby: controller-runtime's way)."""
    import asyncio
    import os
    import signal
    import socket
    import uuid

    import kopf

    from herd.kube import Kube, context_namespace
    from herd.leadership import Elector, Gate

    gate = Gate(settings.leader_election)
    identity = f"{os.environ.get('POD_ID') or socket.gethostname()}_{uuid.uuid4().hex[:12]}"
    namespace = args.lease_namespace or _own_namespace() or context_namespace()
    elector = Elector(Kube.from_environment(connections=1), namespace, args.lease, identity, gate)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):  # kopf takes these over once it runs
        loop.add_signal_handler(signum, stop.set)
    acquiring = asyncio.create_task(elector.acquire())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait((acquiring, stopping), return_when=asyncio.FIRST_COMPLETED)
    if not acquiring.done():
        acquiring.cancel()
        return 0
    stopping.cancel()
    # Created before kopf starts, so kopf leaves it running while it shuts down.
    renewing = asyncio.create_task(elector.keep())
    renewing.add_done_callback(lambda _: stop.set())
    try:
        await run(kopf.Memo(settings=settings, gate=gate), stop, leased=True)
    finally:
        lost = renewing.done()
        renewing.cancel()
        await elector.release()
    return 1 if lost else 0


def _own_namespace() -> str:
    """The pod's namespace, in a cluster."""
    try:
        with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace") as found:
            return found.read().strip()
    except OSError:
        return ""


def cmd_crd(args: argparse.Namespace) -> int:
    from herd.crd import kopf_peering_crds, webservice_crd

    sys.stdout.write(_dump(kopf_peering_crds() if args.peering else [webservice_crd()]))
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    requests = {k: v for k, v in (("cpu", args.cpu_request), ("memory", args.memory_request)) if v}
    limits = {k: v for k, v in (("cpu", args.cpu), ("memory", args.memory)) if v}
    spec = model.ServerSpec(workload=args.workload, worker_class=args.worker_class)
    config = tuning.resolve(
        args.interface, spec, model.Resources(requests, limits), behind_ingress=args.ingress
    )
    out = {
        "server": server_status(config),
        # What autoscaling.targetUtilization is a fraction of.
        "concurrencyCapacity": config.concurrency_capacity,
        "ingressReadTimeoutSeconds": config.ingress_read_timeout_seconds,
        "terminationGracePeriodSeconds": config.termination_grace_period_seconds,
        "advice": [{"reason": a.reason, "message": a.message} for a in config.advice],
    }
    sys.stdout.write(
        json.dumps(out, indent=2) + "\n"
        if args.output == "json"
        else yaml.safe_dump(out, sort_keys=False)
    )
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    # The CEL rules compile on import (over half a second): only the commands that check load them.
    from herd import desired, validation

    with open(args.file) if args.file != "-" else sys.stdin as stream:
        documents = [d for d in yaml.safe_load_all(stream) if d]
    objects = []
    for document in documents:
        if document.get("kind") != "WebService":
            continue
        document.setdefault("metadata", {}).setdefault("namespace", args.namespace)
        document["metadata"].setdefault("uid", "00000000-0000-0000-0000-000000000000")
        refused = validation.errors(document)
        if refused:
            for line in refused:
                print(f"herd render: {document['metadata'].get('name')}: {line}", file=sys.stderr)
            return 1
        try:
            ws = model.parse(
                document,
                Settings(
                    ingress_class=args.ingress_class,
                    prometheus_url=args.prometheus_url,
                    runtime_image=args.runtime_image,
                ),
            )
        except model.InvalidSpec as error:
            print(f"herd render: {document['metadata'].get('name')}: {error}", file=sys.stderr)
            return 1
        # Offline, nothing says whether a cluster serves the CRD: the flag alone decides.
        labels = tuple(args.pod_monitor_label) if args.pod_monitors else None
        objects.extend(desired.desired(ws, pod_monitor_labels=labels).objects)
    sys.stdout.write(_dump(objects))
    return 0


def _add_pod_monitor_flags(command: argparse.ArgumentParser, defaults: Settings) -> None:
    command.add_argument(
        "--pod-monitors",
        action="store_true",
        default=defaults.pod_monitors,
        help="a prometheus-operator PodMonitor per WebService, where the cluster serves its "
        "CRD (env HERD_POD_MONITORS=true)",
    )
    command.add_argument(
        "--pod-monitor-label",
        action="append",
        metavar="KEY=VALUE",
        type=label_pair,
        default=list(defaults.pod_monitor_labels),
        help="a label on every PodMonitor, e.g. release=NAME for kube-prometheus-stack's "
        "podMonitorSelector (repeatable; env HERD_POD_MONITOR_LABELS, comma-separated)",
    )


def parser(prog: str = "herd") -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog=prog, description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)
    rollout_cli.add_commands(commands)

    run = commands.add_parser("operator", help="run the operator")
    run.add_argument(
        "-n",
        "--namespace",
        action="append",
        help="watch only this namespace (repeatable); default: all namespaces",
    )
    run.add_argument(
        "--standalone",
        action="store_true",
        help="no peering: run even if another operator is active",
    )
    run.add_argument(
        "--peering",
        default="herd",
        help="KopfPeering object shared by replicas, so one of them is active",
    )
    run.add_argument(
        "--priority",
        type=int,
        # kopf pauses every replica when two share the highest priority, so each draws its own.
        default=random.SystemRandom().randrange(1, 2**31),
        help="peering priority; the live replica with the highest is active (default: random)",
    )
    run.add_argument(
        "--lease",
        default="",
        metavar="NAME",
        help="elect one active replica with this coordination.k8s.io Lease instead of kopf's "
        "peering (controller-runtime's leader election)",
    )
    run.add_argument(
        "--lease-namespace",
        default="",
        help="the Lease's namespace (default: the pod's own, else the kubeconfig context's)",
    )
    defaults = Settings.from_environment()
    timing = defaults.leader_election
    run.add_argument(
        "--lease-duration",
        type=float,
        default=timing.lease_duration,
        help="seconds a standby waits after the leader's last renew (env HERD_LEASE_DURATION)",
    )
    run.add_argument(
        "--renew-deadline",
        type=float,
        default=timing.renew_deadline,
        help="seconds the leader writes on after its last successful renew; then it stops "
        "(env HERD_RENEW_DEADLINE)",
    )
    run.add_argument(
        "--retry-period",
        type=float,
        default=timing.retry_period,
        help="seconds between two renews or looks at the Lease (env HERD_RETRY_PERIOD)",
    )
    run.add_argument(
        "--liveness",
        default="http://0.0.0.0:8080/healthz",
        help="liveness endpoint URL (empty to disable)",
    )
    run.add_argument("--metrics-port", type=int, default=9090, help="Prometheus metrics port")
    run.add_argument("--metrics-address", default="0.0.0.0")
    run.add_argument(
        "--ingress-class",
        default=defaults.ingress_class,
        help="IngressClass for WebServices that name none; '' for the cluster's "
        "default (env HERD_INGRESS_CLASS)",
    )
    run.add_argument(
        "--prometheus-url",
        default=defaults.prometheus_url,
        help="Prometheus for autoscaling and canary analysis (env HERD_PROMETHEUS_URL)",
    )
    run.add_argument(
        "--prometheus-allow",
        action="append",
        metavar="ORIGIN",
        default=list(defaults.prometheus_allowed),
        help="an origin (http://host, any port; or http://host:port) a WebService's "
        "metrics.prometheusURL may name besides the default's (repeatable; env "
        "HERD_PROMETHEUS_ALLOWED, comma-separated)",
    )
    run.add_argument(
        "--prometheus-credentials",
        metavar="DIR",
        default=defaults.prometheus_credentials,
        help="a directory (a mounted Secret) with the default Prometheus's `token`, or "
        "`username` and `password`; sent to its origin only (env HERD_PROMETHEUS_CREDENTIALS)",
    )
    run.add_argument(
        "--allow-ingress-annotation",
        action="append",
        metavar="KEY",
        default=list(defaults.allowed_ingress_annotations),
        help="an Ingress annotation (or glob) WebServices may set although the policy refuses "
        "it, such as nginx.ingress.kubernetes.io/auth-url (repeatable; env "
        "HERD_ALLOWED_INGRESS_ANNOTATIONS, comma-separated)",
    )
    run.add_argument(
        "--runtime-image",
        default=defaults.runtime_image,
        help="the image WebServices with runtime: inject copy herd-runtime from "
        "(env HERD_RUNTIME_IMAGE)",
    )
    run.add_argument(
        "--canary-interval",
        type=float,
        default=defaults.canary_interval,
        help="seconds between two ticks of a canary rollout (env HERD_CANARY_INTERVAL)",
    )
    run.add_argument(
        "--autoscale-interval",
        type=float,
        default=defaults.autoscale_interval,
        help="seconds between autoscaling decisions (env HERD_AUTOSCALE_INTERVAL)",
    )
    run.add_argument(
        "--retry-interval",
        type=float,
        default=defaults.retry_interval,
        help="seconds between retries of a WebService the API server refused to let the "
        "operator serve (RBAC, a rejected apply) (env HERD_RETRY_INTERVAL)",
    )
    _add_pod_monitor_flags(run, defaults)
    run.add_argument("--log-format", choices=("text", "json"), default="text")
    run.add_argument("-v", "--verbose", action="store_true")
    run.set_defaults(func=cmd_operator)

    crd = commands.add_parser("crd", help="print the WebService CRD")
    crd.add_argument("--peering", action="store_true", help="print kopf's peering CRDs instead")
    crd.set_defaults(func=cmd_crd)

    tune = commands.add_parser("tune", help="print the server configuration Herd would choose")
    for flag, schema in (
        ("--interface", api.SPEC.properties["interface"]),
        ("--workload", api.SERVER.properties["workload"]),
        ("--worker-class", api.SERVER.properties["workerClass"]),
    ):
        tune.add_argument(flag, choices=schema.enum, default=schema.default)
    tune.add_argument("--cpu", help="CPU limit, e.g. 500m or 2")
    tune.add_argument("--memory", help="memory limit, e.g. 512Mi")
    tune.add_argument("--cpu-request")
    tune.add_argument("--memory-request")
    tune.add_argument("--ingress", action="store_true", help="behind an ingress")
    tune.add_argument("-o", "--output", choices=("yaml", "json"), default="yaml")
    tune.set_defaults(func=cmd_tune)

    rend = commands.add_parser("render", help="print the objects Herd would create (offline)")
    rend.add_argument("-f", "--file", required=True, help="WebService manifest ('-': stdin)")
    rend.add_argument("-n", "--namespace", default="default")
    rend.add_argument("--ingress-class", default=Settings.from_environment().ingress_class)
    rend.add_argument("--prometheus-url", default=Settings.from_environment().prometheus_url)
    rend.add_argument("--runtime-image", default=Settings.from_environment().runtime_image)
    _add_pod_monitor_flags(rend, defaults)
    rend.set_defaults(func=cmd_render)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return rollout_cli.run(args)
    except model.InvalidSpec as error:
        print(f"herd: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
