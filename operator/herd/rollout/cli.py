"""`herd list | status | promote | abort | retry | pause | resume | dashboard`: canary rollouts
from a shell, or from a browser.

The commands read WebServices and write a user's intent to the status subresource
(`status.intent`), never to the spec: GitOps tools comparing the spec see no drift, as with Argo
Rollouts. The canary controller acts on each intent once and records its id in
`status.canary.handledIntent`, which is how a command knows it was acted on.

The pure pieces (views, durations, checks, exit codes) are in `herd.rollout.views`.
"""

from __future__ import annotations

import argparse
import getpass
import math
import socket
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import kubernetes
import yaml

from herd import api
from herd.dashboard.views import WILDCARD
from herd.kube import ApiError, Kube, UserApi, context_namespace
from herd.rollout.views import (
    EXIT_FAILED,
    EXIT_OK,
    READ_NEEDS,
    WRITE_NEEDS,
    Outcome,
    api_error_message,
    format_duration,
    format_list,
    intent_handled,
    new_intent,
    parse_duration,
    phase_of,
    refusal,
    summary,
    timeout_message,
    view,
    wait_outcome,
)

EXIT_TIMEOUT = 2
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports a SIGINT
INTENT_COMMANDS = {
    "promote": "go on to the next step; --full: skip the remaining steps and promote now",
    "abort": "stop the rollout and send all traffic back to the stable version",
    "retry": "start a rolled back or aborted rollout again",
    "pause": "hold the rollout at its current step",
    "resume": "continue a paused rollout",
}

WATCH_INTERVAL = 2.0
INTENT_POLL_INTERVAL = 0.5
_CLEAR_SCREEN = "\x1b[H\x1b[2J"


class CliError(Exception):
    """Ends a command: the message goes to stderr as one line, the code is the exit status.
    `api_status` is the API server's HTTP status when it refused or failed the request (0:
    unreachable), None when Herd itself refused: the dashboard answers with it."""

    def __init__(self, message: str, code: int = EXIT_FAILED, api_status: int | None = None):
        super().__init__(message)
        self.code = code
        self.api_status = api_status


# --- Talking to the cluster --------------------------------------------------------------------


def connect(args: argparse.Namespace) -> tuple[Kube, str]:
    """A client for --kubeconfig/--context, and the namespace: -n, else the context's."""
    try:
        kube = Kube.from_kubeconfig(args.kubeconfig, args.context)
        namespace = args.namespace or context_namespace(args.kubeconfig, args.context)
    except (kubernetes.config.ConfigException, OSError, yaml.YAMLError) as error:
        raise CliError(" ".join(f"kubeconfig: {error}".split())) from error
    return kube, namespace


def _call(kube: UserApi, request: Callable[[], Any], needs: str = READ_NEEDS) -> Any:
    try:
        return request()
    except ApiError as error:
        message = api_error_message(error, kube.server, needs)
        raise CliError(message, api_status=error.status) from error


def fetch(kube: UserApi, namespace: str, name: str) -> dict[str, Any]:
    ws = _call(kube, lambda: kube.get_webservice(namespace, name))
    if ws is None:
        raise CliError(f"webservice {namespace}/{name} not found", api_status=404)
    return ws


def poll(
    kube: UserApi,
    namespace: str,
    name: str,
    check: Callable[[dict[str, Any] | None], Outcome | None],
    timeout: float,
    interval: float,
) -> tuple[Outcome | None, dict[str, Any] | None]:
    """Read the WebService every `interval` until `check` returns an outcome or time is up
    (outcome None). A passing API hiccup does not end a long wait in CI: it is retried."""
    deadline = time.monotonic() + timeout
    ws: dict[str, Any] | None = None
    while True:
        try:
            ws = kube.get_webservice(namespace, name)
        except ApiError as error:
            message = api_error_message(error, kube.server, READ_NEEDS)
            if not error.transient:
                raise CliError(message) from error
            print(f"herd: {message}; retrying", file=sys.stderr)
        else:
            outcome = check(ws)
            if outcome is not None:
                return outcome, ws
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None, ws
        time.sleep(min(interval, remaining))


class Screen:
    """Shows successive frames: redrawn in place (a view on a terminal), or appended when they
    change (progress lines, and any output to a log or a pipe)."""

    def __init__(self, separator: str = "", in_place: bool = False):
        self.separator = separator
        self.in_place = in_place
        self.previous: str | None = None

    def show(self, frame: str) -> None:
        if self.in_place:
            sys.stdout.write(_CLEAR_SCREEN + frame)
        elif frame != self.previous:
            sys.stdout.write(("" if self.previous is None else self.separator) + frame)
        self.previous = frame
        sys.stdout.flush()


# --- Commands ----------------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    kube, namespace = connect(args)
    scope = None if args.all_namespaces else namespace
    items = _call(kube, lambda: kube.list_webservices(scope))
    if not items:
        where = "" if scope is None else f" in {scope} namespace"
        print(f"No webservices found{where}.", file=sys.stderr)
        return EXIT_OK
    sys.stdout.write(format_list(items, all_namespaces=scope is None))
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    kube, namespace = connect(args)
    ws = fetch(kube, namespace, args.name)
    if args.wait:
        return _wait_for_phase(kube, namespace, args, ws)
    if not args.watch:
        sys.stdout.write(view(ws, args.output))
        return EXIT_OK
    screen = view_screen(args.output)

    def show(current: dict[str, Any] | None) -> Outcome | None:
        if current is None:
            return Outcome(EXIT_FAILED, "was deleted")
        screen.show(view(current, args.output))
        return None

    poll(kube, namespace, args.name, show, math.inf, WATCH_INTERVAL)  # ends when deleted
    raise CliError(f"webservice {namespace}/{args.name} was deleted")


def view_screen(output: str) -> Screen:
    return Screen("---\n" if output == "yaml" else "\n", in_place=sys.stdout.isatty())


def _wait_for_phase(
    kube: Kube, namespace: str, args: argparse.Namespace, first: dict[str, Any]
) -> int:
    """With --watch, the full view redrawn; else a line per change (readable in CI logs)."""
    screen = view_screen(args.output) if args.watch else Screen()
    name = f"{namespace}/{args.name}"

    def check(ws: dict[str, Any] | None) -> Outcome | None:
        if ws is not None:
            screen.show(view(ws, args.output) if args.watch else f"{name}: {summary(ws)}\n")
        return wait_outcome(ws, args.wait)

    outcome, last = poll(kube, namespace, args.name, check, args.timeout, WATCH_INTERVAL)
    if outcome is None:
        message = timeout_message(last or first, args.wait, args.timeout)
        raise CliError(f"{name}: {message}", EXIT_TIMEOUT)
    if outcome.code != EXIT_OK:
        raise CliError(f"webservice {name} {outcome.message}", outcome.code)
    print(f"{name}: {outcome.message}")
    return EXIT_OK


def requester() -> str:
    """Who asks, for status.intent.by (the API server's audit log has the authenticated user)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name, as in some containers
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def request_intent(
    kube: UserApi, namespace: str, name: str, action: str, by: str
) -> dict[str, str]:
    """Ask the canary controller for `action` by writing status.intent: the one way both the
    commands and `herd dashboard` ask. Refused (CliError) when it makes no sense in the
    rollout's phase, or when the API server did not keep it; the intent as written."""
    where = f"{namespace}/{name}"
    refused = refusal(action, phase_of(fetch(kube, namespace, name)))
    if refused:
        raise CliError(f"{where}: cannot {action}: {refused}")
    intent = new_intent(action, str(uuid.uuid4()), datetime.now(UTC), by)
    stored = _call(kube, lambda: kube.write_intent(namespace, name, intent), WRITE_NEEDS)
    if (stored.get("status", {}).get("intent") or {}).get("id") != intent["id"]:
        raise CliError(
            f"{where}: the API server dropped status.intent: the installed WebService CRD "
            "predates rollout intents; upgrade Herd's CRD"
        )
    return intent


def cmd_intent(args: argparse.Namespace) -> int:
    action = "promote-full" if getattr(args, "full", False) else args.action
    kube, namespace = connect(args)
    name = f"{namespace}/{args.name}"
    intent = request_intent(kube, namespace, args.name, action, requester())
    print(f"{name}: {action} requested (intent {intent['id']})")
    if args.no_wait:
        return EXIT_OK

    def check(ws: dict[str, Any] | None) -> Outcome | None:
        if ws is None:
            return Outcome(EXIT_FAILED, f"webservice {name} was deleted")
        return (
            Outcome(EXIT_OK, f"{name}: {summary(ws)}") if intent_handled(ws, intent["id"]) else None
        )

    outcome, _ = poll(kube, namespace, args.name, check, args.timeout, INTENT_POLL_INTERVAL)
    if outcome is None:
        raise CliError(
            f"{name}: the operator has not acted on the {action} request within "
            f"{format_duration(args.timeout)}; it stays pending (is the Herd operator running?)",
            EXIT_TIMEOUT,
        )
    if outcome.code != EXIT_OK:
        raise CliError(outcome.message, outcome.code)
    print(outcome.message)
    return EXIT_OK


def port_number(text: str) -> int:
    """A TCP port to listen on (an argparse `type`); not 0: the pages must know their own."""
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (1-65535)")
    return int(text)


def cmd_dashboard(args: argparse.Namespace) -> int:
    if args.address in WILDCARD:
        raise CliError(
            f"--address {args.address!r}: name one address to listen on; the dashboard answers "
            "only requests that name it (Host), which defeats DNS rebinding"
        )
    kube, namespace = connect(args)
    from herd.dashboard import app  # FastAPI and uvicorn load for this command alone

    scope = None if args.all_namespaces else namespace
    app.serve(kube, scope, args.address, args.port, args.open, args.prometheus)
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    """Run a parsed rollout command: its exit status, errors as one line on stderr."""
    try:
        return int(args.func(args))
    except CliError as error:
        print(f"herd: {error}", file=sys.stderr)
        return error.code
    except KeyboardInterrupt:  # Ctrl-C ends `status --watch`: no traceback
        return EXIT_INTERRUPTED


def main(argv: Sequence[str] | None = None) -> int:
    """`kubectl herd`, the kubectl plugin: the rollout commands alone."""
    top = argparse.ArgumentParser(prog="kubectl herd", description=__doc__.split("\n")[0])
    add_commands(top.add_subparsers(dest="command", required=True))
    return run(top.parse_args(argv))


def add_commands(commands: argparse._SubParsersAction) -> None:
    """The cluster commands, with kubectl's connection flags on each."""
    connection = argparse.ArgumentParser(add_help=False)
    connection.add_argument(
        "-n", "--namespace", help="namespace (default: the kubeconfig context's, else default)"
    )
    connection.add_argument(
        "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)"
    )
    connection.add_argument("--context", help="kubeconfig context (default: the current one)")

    listing = commands.add_parser(
        "list", parents=[connection], help="list WebServices and their canary rollouts"
    )
    listing.add_argument("-A", "--all-namespaces", action="store_true")
    listing.set_defaults(func=cmd_list)

    status = commands.add_parser(
        "status", parents=[connection], help="show a WebService and its canary rollout"
    )
    status.add_argument("name")
    status.add_argument(
        "-w", "--watch", action="store_true", help="redraw every 2 s until Ctrl-C (or --wait)"
    )
    status.add_argument(
        "--wait",
        metavar="PHASE",
        choices=api.PHASES,
        help=f"exit 0 once the rollout is PHASE ({', '.join(api.PHASES)}); 1 if it ends in another "
        "terminal phase or the WebService is deleted; 2 on timeout",
    )
    status.add_argument(
        "--timeout", type=parse_duration, default="10m", help="with --wait (default: 10m)"
    )
    status.add_argument("-o", "--output", choices=("table", "json", "yaml"), default="table")
    status.set_defaults(func=cmd_status)

    for action, help_text in INTENT_COMMANDS.items():
        command = commands.add_parser(action, parents=[connection], help=help_text)
        command.add_argument("name")
        if action == "promote":
            command.add_argument(
                "--full", action="store_true", help="skip the remaining steps and analysis"
            )
        command.add_argument(
            "--timeout",
            type=parse_duration,
            default="30s",
            help="how long to wait for the operator to act on it (default: 30s)",
        )
        command.add_argument(
            "--no-wait", action="store_true", help="return once the request is written"
        )
        command.set_defaults(func=cmd_intent, action=action)

    dashboard = commands.add_parser(
        "dashboard",
        parents=[connection],
        help="serve a local web dashboard of WebServices and their rollouts, as you",
    )
    dashboard.add_argument(
        "-A", "--all-namespaces", action="store_true", help="every namespace you may list"
    )
    dashboard.add_argument(
        "--address", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)"
    )
    dashboard.add_argument(
        "--port", type=port_number, default=8080, help="port to listen on (default: 8080)"
    )
    dashboard.add_argument("--open", action="store_true", help="open it in a browser")
    dashboard.add_argument(
        "--prometheus",
        metavar="URL",
        help="the Prometheus the analysis charts read (default: each WebService's "
        "spec.metrics.prometheusURL, else the chart's default); an in-cluster *.svc URL is "
        "read through the API server's service proxy, as you",
    )
    dashboard.set_defaults(func=cmd_dashboard)
