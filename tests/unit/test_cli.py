"""The `herd` rollout commands' pure parts: views, durations, checks, exit codes; as tables."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta, timezone

import kubernetes
import pytest
import yaml

from herd import cli
from herd.api import PHASES
from herd.kube import ApiError, Kube, context_namespace
from herd.rollout import cli as rollout_cli
from herd.rollout.machine import APPLIES_IN as ALLOWED
from herd.rollout.machine import TERMINAL
from herd.rollout.views import (
    EXIT_FAILED,
    EXIT_OK,
    Outcome,
    api_error_message,
    describe_step,
    format_duration,
    format_list,
    format_status,
    format_table,
    intent_handled,
    intent_text,
    new_intent,
    parse_duration,
    refusal,
    step_position,
    summary,
    timeout_message,
    view,
    wait_outcome,
)
from tests.support.canary_status import PAUSED as CONTROLLER_PAUSED

STEPS = [
    {"setWeight": 10},
    {"pause": {"duration": 60}},
    {"pause": {}},
    {"setWeight": 50},
]
ANALYSIS = {
    "intervalSeconds": 30,
    "maxErrorRate": 0.01,
    "maxP99LatencyMs": 500,
    "minRequests": 50,
    "failureLimit": 2,
}
PAUSED = {**CONTROLLER_PAUSED, "handledIntent": "i-1"}


def webservice(
    canary: dict | None = None,
    *,
    name: str = "web",
    namespace: str = "shop",
    with_spec_canary: bool = True,
    generation: int = 3,
    observed: int = 3,
    intent: dict | None = None,
) -> dict:
    spec: dict = {"image": "web:2", "app": "a:app", "replicas": 3}
    if with_spec_canary:
        spec["canary"] = {"steps": STEPS, "analysis": ANALYSIS, "progressDeadlineSeconds": 600}
    status: dict = {
        "observedGeneration": observed,
        "readyReplicas": 3,
        "url": "http://web.example.com/",
        "server": {"workers": 4},
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "Available", "message": "3 of 3 ready"},
            {"type": "Degraded", "status": "False", "reason": "AsExpected", "message": "none"},
        ],
    }
    if canary is not None:
        status["canary"] = canary
    if intent is not None:
        status["intent"] = intent
    return {
        "apiVersion": "herd.dev/v1alpha1",
        "kind": "WebService",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "generation": generation,
            "managedFields": [{"manager": "kubectl"}],
        },
        "spec": spec,
        "status": status,
    }


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("30s", 30), ("10m", 600), ("1h", 3600), ("1h30m", 5400), ("0", 0)],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "ten", "10 m", "1.5m", "-1s", "10d"])
def test_parse_duration_rejects(text):
    with pytest.raises(argparse.ArgumentTypeError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (30, "30s"), (600, "10m"), (90, "1m30s"), (3600, "1h"), (3661, "1h1m1s")],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("step", "text"),
    [
        ({"setWeight": 10}, "setWeight 10"),
        ({"setWeight": 0}, "setWeight 0"),
        ({"pause": {"duration": 60}}, "pause 60s"),
        ({"pause": {"duration": "60"}}, "pause 60s"),
        ({"pause": {"duration": "5m"}}, "pause 5m"),
        ({"pause": {}}, "pause until promote"),
        ({"pause": None}, "pause until promote"),
        ({"setHeaderRoute": {"name": "X-Canary"}}, "setHeaderRoute X-Canary: always"),
        ({"setHeaderRoute": {"name": "X-Canary", "value": "on"}}, "setHeaderRoute X-Canary: on"),
        ({"setCookieRoute": {"name": "canary"}}, "setCookieRoute canary"),
        ({"analyses": 3}, "wait for 3 passing analyses"),  # an A/B test's (herd.model.plan)
    ],
)
def test_describe_step(step, text):
    assert describe_step(step) == text


@pytest.mark.parametrize(
    ("canary", "text"),
    [
        ({}, "-"),
        ({"stepIndex": 0, "steps": 4}, "1/4"),
        ({"stepIndex": 3, "steps": 4}, "4/4"),
        ({"stepIndex": 4, "steps": 4}, "4/4"),  # past the last step: done
        ({"stepIndex": 1}, "-"),
    ],
)
def test_step_position(canary, text):
    assert step_position(canary) == text


@pytest.mark.parametrize(
    ("canary", "text"),
    [
        (None, "no canary rollout yet"),
        (PAUSED, "Paused, step 3/4, weight 10%: step 3/4: pause until promoted"),
        (
            {"phase": "Paused", "pausedReason": "InconclusiveAnalysis: 3 in a row"},
            "Paused: InconclusiveAnalysis: 3 in a row",
        ),
        (
            {"phase": "Succeeded", "stepIndex": 4, "steps": 4, "weight": 0},
            "Succeeded, step 4/4, weight 0%",
        ),
        (
            {"phase": "Paused", "weight": 10, "match": {"kind": "header", "name": "X-Canary"}},
            "Paused, weight 10%, pinned header X-Canary: always",
        ),
        (
            {"phase": "Progressing", "weight": 0, "match": {"kind": "cookie", "name": "c"}},
            "Progressing, weight 0%, pinned cookie c=always",
        ),
    ],
)
def test_summary(canary, text):
    assert summary(webservice(canary)) == text


def test_format_table_aligns_like_kubectl():
    assert format_table(("NAME", "URL"), [["web", "-"], ["catalog-api", "http://c/"]]) == (
        "NAME          URL\nweb           -\ncatalog-api   http://c/\n"
    )


def test_format_list():
    items = [
        webservice(PAUSED, name="web"),
        webservice(None, name="api", with_spec_canary=False),
    ]
    assert format_list(items, all_namespaces=False).splitlines() == [
        "NAME   READY   REPLICAS   WORKERS   PHASE    STEP   WEIGHT   URL",
        "api    True    3/3        4         -        -      -        http://web.example.com/",
        "web    True    3/3        4         Paused   3/4    10%      http://web.example.com/",
    ]


def test_format_list_of_all_namespaces_has_the_namespace_first():
    fresh = {"metadata": {"name": "new", "namespace": "a"}, "spec": {"replicas": 1}}
    lines = format_list([webservice(PAUSED), fresh], all_namespaces=True).splitlines()
    assert lines[0].split() == (
        ["NAMESPACE", "NAME", "READY", "REPLICAS", "WORKERS", "PHASE", "STEP", "WEIGHT", "URL"]
    )
    assert lines[1].split() == ["a", "new", "-", "0/1", "-", "-", "-", "-", "-"]
    assert lines[2].split()[:2] == ["shop", "web"]


def test_status_view_of_a_paused_canary():
    text = format_status(webservice(PAUSED))
    for line in [
        "Name:          shop/web",
        "Ready:         True  3 of 3 ready",
        "Phase:         Paused (waiting for herd promote)",
        "Revisions:     stable ab12cd34ef, canary 9f8e7d6c5b",
        "Step:          3/4 pause until promote",
        "Weight:        10% of traffic on the canary",
        "Checks:        1 failed (rolls back at 2), 0 inconclusive",
        "Analysis:      pass at 2026-11-21T09:10:00Z",
        "               requests     120 (inconclusive below 50)",
        "               error rate   0.40% (max 1.00%)",
        "               p99 latency  85 ms (max 500 ms)",
        "               within thresholds",
        "Message:       step 3/4: pause until promoted",
        "Conditions:",
        "  TYPE       STATUS   REASON       MESSAGE",
        "  Ready      True     Available    3 of 3 ready",
    ]:
        assert line in text.splitlines(), f"{line!r} not in\n{text}"


@pytest.mark.parametrize(
    ("ws", "lines"),
    [
        (
            webservice(None, with_spec_canary=False),
            ["Canary:        none: changes roll out as plain rolling updates (no spec.canary)"],
        ),
        (
            webservice(None),
            [
                "Canary:        no rollout yet",
                "Steps:         setWeight 10, pause 60s, pause until promote, setWeight 50",
            ],
        ),
    ],
)
def test_status_view_without_a_rollout(ws, lines):
    text = format_status(ws).splitlines()
    assert all(line in text for line in lines), text


def test_status_view_shows_the_pinned_requests_and_an_ab_tests_steps():
    ws = webservice(
        {**PAUSED, "stepIndex": 1, "steps": 2, "match": {"kind": "cookie", "name": "b"}}
    )
    ws["spec"]["canary"] = {"abTest": {"match": {"cookie": {"name": "b"}}}, "analysis": ANALYSIS}
    text = format_status(ws).splitlines()
    assert "Pinned:        requests with cookie b=always, whatever the weight" in text, text
    assert "Step:          2/2 wait for 3 passing analyses" in text, text


def test_status_view_says_when_latency_is_not_checked():
    ws = webservice(PAUSED)
    ws["spec"]["canary"]["analysis"] = {**ANALYSIS, "maxP99LatencyMs": 0}
    assert "p99 latency  85 ms (not checked)" in format_status(ws)


@pytest.mark.parametrize(
    ("handled", "state"), [("i-1", "done"), ("i-0", "pending")], ids=["done", "pending"]
)
def test_status_view_shows_the_last_request(handled, state):
    intent = {"action": "promote", "id": "i-1", "requestedAt": "T", "by": "ann@laptop"}
    ws = webservice({**PAUSED, "handledIntent": handled}, intent=intent)
    assert intent_text(ws) == f"promote by ann@laptop at T: {state}"
    assert f"Last request:  promote by ann@laptop at T: {state}" in format_status(ws)
    assert intent_handled(ws, "i-1") is (state == "done")


@pytest.mark.parametrize("output", ["json", "yaml"])
def test_machine_output_is_the_object_without_managed_fields(output):
    ws = webservice(PAUSED)
    text = view(ws, output)
    parsed = json.loads(text) if output == "json" else yaml.safe_load(text)
    assert parsed["status"]["canary"]["phase"] == "Paused"
    assert "managedFields" not in parsed["metadata"]
    assert "managedFields" in ws["metadata"]  # the caller's object is left alone


def _refusals() -> list[tuple[str, str | None, str | None]]:
    """Every action in every phase: None where it is let through, else a word of the reason."""
    expected_words = {
        None: "none has started",
        "Succeeded": "the last one is Succeeded",
        "RolledBack": "the last one is RolledBack",
        "Aborted": "the last one is Aborted",
    }
    cases = []
    for action in ALLOWED:
        for phase in (None, *PHASES, "SomeFuturePhase"):
            if phase in ALLOWED[action] or phase == "SomeFuturePhase":
                word = None
            elif action == "retry":
                word = "no canary rollout has run" if phase is None else f"this one is {phase}"
            elif phase is None or phase in TERMINAL:
                word = expected_words[phase]
            elif action == "resume":
                word = f"not paused but {phase}"
            elif phase == "Paused":
                word = "already paused"
            else:
                word = "already Promoting: past its steps"
            cases.append((action, phase, word))
    return cases


@pytest.mark.parametrize(("action", "phase", "word"), _refusals())
def test_refusal(action, phase, word):
    reason = refusal(action, phase)
    if word is None:
        assert reason is None
    else:
        assert reason is not None and word in reason


@pytest.mark.parametrize(
    ("action", "allowed"),
    [
        ("promote", {"Progressing", "Paused"}),
        ("promote-full", {"Progressing", "Paused"}),
        ("abort", {"Progressing", "Paused", "Promoting"}),
        ("pause", {"Progressing"}),
        ("resume", {"Paused"}),
        ("retry", {"RolledBack", "Aborted"}),
    ],
)
def test_each_action_is_allowed_in_these_phases_only(action, allowed):
    assert {p for p in PHASES if refusal(action, p) is None} == allowed
    assert refusal(action, None) is not None  # no rollout has ever run


@pytest.mark.parametrize(
    ("ws", "want", "outcome"),
    [
        (None, "Succeeded", Outcome(EXIT_FAILED, "was deleted")),
        (webservice(None), "Succeeded", None),
        (webservice({"phase": "Progressing"}), "Succeeded", None),
        (webservice({"phase": "Paused"}), "Paused", Outcome(EXIT_OK, "reached Paused: Paused")),
        (
            webservice({"phase": "Succeeded"}),
            "Succeeded",
            Outcome(EXIT_OK, "reached Succeeded: Succeeded"),
        ),
        (
            webservice({"phase": "RolledBack", "message": "2 failed checks"}),
            "Succeeded",
            Outcome(EXIT_FAILED, "ended RolledBack, not Succeeded: RolledBack: 2 failed checks"),
        ),
        (
            webservice({"phase": "Aborted"}),
            "Paused",
            Outcome(EXIT_FAILED, "ended Aborted, not Paused: Aborted"),
        ),
        (
            webservice({"phase": "Succeeded"}),
            "Paused",
            Outcome(EXIT_FAILED, "ended Succeeded, not Paused: Succeeded"),
        ),
        # The spec changed and the operator has not seen it: yesterday's phase says nothing.
        (webservice({"phase": "Succeeded"}, generation=4, observed=3), "Succeeded", None),
        (webservice({"phase": "RolledBack"}, generation=4, observed=3), "Succeeded", None),
        # The canary controller's own record wins: the reconciler saw generation 4, the canary
        # controller has not judged it yet.
        (
            webservice({"phase": "Succeeded", "observedGeneration": 3}, generation=4, observed=4),
            "Succeeded",
            None,
        ),
        (
            webservice({"phase": "Succeeded", "observedGeneration": 4}, generation=4, observed=3),
            "Succeeded",
            Outcome(EXIT_OK, "reached Succeeded: Succeeded"),
        ),
        (
            webservice(None, with_spec_canary=False),
            "Succeeded",
            Outcome(EXIT_FAILED, "has no spec.canary: its changes roll out without phases"),
        ),
    ],
)
def test_wait_outcome(ws, want, outcome):
    assert wait_outcome(ws, want) == outcome


@pytest.mark.parametrize(
    ("ws", "message"),
    [
        (None, "timed out after 10m waiting for Succeeded"),
        (
            webservice(PAUSED),
            "timed out after 10m waiting for Succeeded: Paused, step 3/4, weight 10%: "
            "step 3/4: pause until promoted",
        ),
        (
            webservice(PAUSED, generation=5, observed=4),
            "timed out after 10m waiting for Succeeded: the operator has not observed "
            "generation 5 yet",
        ),
    ],
)
def test_timeout_message_says_where_the_rollout_is(ws, message):
    assert timeout_message(ws, "Succeeded", 600) == message


@pytest.mark.parametrize(
    "now",
    [
        datetime(2026, 11, 21, 9, 10, 0, 123456, tzinfo=UTC),
        datetime(2026, 11, 21, 10, 10, 0, tzinfo=timezone(timedelta(hours=1))),
    ],
)
def test_new_intent_is_stamped_in_utc(now):
    assert new_intent("promote-full", "id-1", now, "ann@laptop") == {
        "action": "promote-full",
        "id": "id-1",
        "requestedAt": "2026-11-21T09:10:00Z",
        "by": "ann@laptop",
    }


SERVER = "https://127.0.0.1:16443"


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (
            ApiError(
                0,
                "Unreachable",
                "HTTPSConnectionPool(host='127.0.0.1', port=16443): Max retries exceeded "
                '(Caused by NewConnectionError("...: Failed to establish a new connection: '
                '[Errno 111] Connection refused"))',
            ),
            f"cannot reach the Kubernetes API at {SERVER}: Connection refused",
        ),
        (
            ApiError(0, "Unreachable", "something else"),
            f"cannot reach the Kubernetes API at {SERVER}: something else",
        ),
        (
            ApiError(401, "Unauthorized", "Unauthorized"),
            f"the Kubernetes API at {SERVER} refused the credentials (401 Unauthorized)",
        ),
        (
            ApiError(403, "Forbidden", 'User "bob" cannot patch resource "webservices/status"'),
            'forbidden: User "bob" cannot patch resource "webservices/status" (needs patch)',
        ),
        (
            ApiError(404, "NotFound", "the server could not find the requested resource"),
            "not found: the server could not find the requested resource (is Herd's WebService "
            "CRD installed?)",
        ),
        (
            ApiError(422, "Invalid", "status.intent.id: Too long"),
            "the Kubernetes API answered 422 Invalid: status.intent.id: Too long",
        ),
        (
            ApiError(0, "", "(0)\nReason: SSLError(certificate verify failed)\n"),
            f"cannot reach the Kubernetes API at {SERVER}: (0) Reason: SSLError(certificate "
            "verify failed)",
        ),
    ],
)
def test_api_error_message(error, message):
    assert api_error_message(error, SERVER, "patch") == message


def test_the_kubectl_plugin_has_the_rollout_commands_alone(capsys):
    """`kubectl herd operator` or `kubectl herd crd` would make no sense: the plugin is its own
    program, named as kubectl shows it."""
    with pytest.raises(SystemExit):
        rollout_cli.main(["operator"])
    err = capsys.readouterr().err
    assert err.startswith("usage: kubectl herd"), err
    assert "invalid choice: 'operator'" in err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["promote", "web"], {"action": "promote", "full": False, "timeout": 30, "no_wait": False}),
        (["promote", "web", "--full", "-n", "shop"], {"full": True, "namespace": "shop"}),
        (["abort", "web", "--no-wait", "--timeout", "2m"], {"action": "abort", "timeout": 120}),
        (["status", "web"], {"wait": None, "timeout": 600, "output": "table", "watch": False}),
        (
            ["status", "web", "--wait", "Succeeded", "--timeout", "1h", "-o", "json", "-w"],
            {"wait": "Succeeded", "timeout": 3600, "output": "json", "watch": True},
        ),
        (["list", "-A", "--context", "prod"], {"all_namespaces": True, "context": "prod"}),
        (["list", "--kubeconfig", "/k"], {"kubeconfig": "/k", "namespace": None}),
    ],
)
def test_command_line(argv, expected):
    args = cli.parser().parse_args(argv)
    assert {key: getattr(args, key) for key in expected} == expected


@pytest.mark.parametrize(
    "argv",
    [
        ["status", "web", "--wait", "Done"],  # not a phase
        ["status", "web", "--timeout", "soon"],
        ["abort", "web", "--full"],  # only promote has --full
        ["promote"],
    ],
)
def test_command_line_rejects(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.parser().parse_args(argv)
    assert exit_.value.code == 2


def kubeconfig(tmp_path, namespace: str | None = "shop") -> str:
    context: dict = {"cluster": "c", "user": "u"}
    if namespace:
        context["namespace"] = namespace
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [
            {"name": "main", "context": context},
            {"name": "other", "context": {"cluster": "c", "user": "u", "namespace": "prod"}},
        ],
        "current-context": "main",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return str(path)


@pytest.mark.parametrize(
    ("namespace", "context", "expected"),
    [("shop", None, "shop"), (None, None, "default"), ("shop", "other", "prod")],
)
def test_context_namespace(tmp_path, namespace, context, expected):
    assert context_namespace(kubeconfig(tmp_path, namespace), context) == expected


def test_context_namespace_reads_kubeconfig_from_the_environment_now(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", kubeconfig(tmp_path, "from-env"))
    assert context_namespace() == "from-env"


def test_an_unknown_context_is_a_config_error(tmp_path):
    with pytest.raises(kubernetes.config.ConfigException, match="nope"):
        context_namespace(kubeconfig(tmp_path), "nope")


def test_from_kubeconfig_leaves_the_global_configuration_alone(tmp_path):
    before = kubernetes.client.Configuration.get_default_copy().host
    kube = Kube.from_kubeconfig(kubeconfig(tmp_path), "other")
    assert kube.client.configuration.host == "https://127.0.0.1:1"
    assert kubernetes.client.Configuration.get_default_copy().host == before


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["status", "web"], "herd: kubeconfig: Invalid kube-config file. No configuration found."),
        (
            ["list", "--context", "nope"],
            "herd: kubeconfig: Invalid kube-config file. Expected object with name nope",
        ),
    ],
)
def test_kubeconfig_problems_are_one_line_and_exit_1(tmp_path, capsys, argv, message):
    config = str(tmp_path / "missing") if argv[0] == "status" else kubeconfig(tmp_path)
    assert cli.main([*argv, "--kubeconfig", config]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err


def test_an_unreachable_cluster_is_one_line_and_exit_1(tmp_path, capsys):
    assert cli.main(["list", "--kubeconfig", kubeconfig(tmp_path)]) == EXIT_FAILED
    assert capsys.readouterr().err == (
        "herd: cannot reach the Kubernetes API at https://127.0.0.1:1: Connection refused\n"
    )


def render(tmp_path, spec: dict, *flags: str) -> int:
    """`herd render -f` of a WebService named web with `spec` (over a minimal one)."""
    manifest = tmp_path / "web.yaml"
    document = {
        "apiVersion": "herd.dev/v1alpha1",
        "kind": "WebService",
        "metadata": {"name": "web"},
        "spec": {"image": "web:1", "app": "app:app", **spec},
    }
    manifest.write_text(yaml.safe_dump(document))
    return cli.main(["render", "-f", str(manifest), *flags])


@pytest.mark.parametrize(
    ("flags", "labels"),
    [
        ((), None),
        (("--pod-monitors",), {}),
        (("--pod-monitors", "--pod-monitor-label", "release=kps"), {"release": "kps"}),
    ],
)
def test_render_shows_the_pod_monitor_the_operators_flags_would_make(
    tmp_path, capsys, flags, labels
):
    assert render(tmp_path, {}, *flags) == 0
    monitors = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d["kind"] == "PodMonitor"]
    if labels is None:
        assert monitors == []
        return
    [monitor] = monitors
    assert labels.items() <= monitor["metadata"]["labels"].items()


@pytest.mark.parametrize(
    ("limits", "code", "stderr"),
    [
        ({"memory": "1Ei"}, 0, ""),
        ({"cpu": "1e400"}, 1, "herd render: web: '1e400' is beyond any amount Kubernetes stores\n"),
    ],
)
def test_render_takes_every_quantity_and_refuses_in_one_line(
    tmp_path, capsys, limits, code, stderr
):
    assert render(tmp_path, {"resources": {"limits": limits}}) == code
    captured = capsys.readouterr()
    assert captured.err == stderr
    assert ("kind: Deployment" in captured.out) is (code == 0)


def test_render_refuses_what_the_api_server_would_with_its_words(tmp_path, capsys):
    env = [{"name": "X", "value": "1"}, {"name": "X", "value": "2"}]
    assert render(tmp_path, {"port": 9102, "env": env}) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        'herd render: web: spec.env[1]: Duplicate value: {"name":"X"}'
    ]


def test_tune_shows_the_concurrency_capacity_utilization_is_a_fraction_of(capsys):
    args = cli.parser().parse_args(
        ["tune", "--interface", "wsgi", "--workload", "io", "--cpu", "2", "--output", "json"]
    )
    assert cli.cmd_tune(args) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["concurrencyCapacity"] == shown["server"]["workers"] * shown["server"]["threads"]
