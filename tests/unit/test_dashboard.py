"""`herd dashboard`'s decisions, as tables: the list's rows, the step timeline, which actions are
allowed and why, the history it keeps, the events it pushes, the checks against other sites;
the watch it reads and the intent path it shares with the CLI."""

from __future__ import annotations

import json

import pytest
from kubernetes.client import ApiClient, Configuration

from herd import cli
from herd.api_errors import ApiError
from herd.dashboard import views
from herd.dashboard.app import Live
from herd.kube import Kube, _watch_events
from herd.rollout import cli as rollout_cli
from tests.support.fake_user_kube import FakeUserKube
from tests.support.http_stub import serving
from tests.support.webservices import STEPS, paused, webservice

NOW = 1_764_000_000.0
ALLOWED = views.Permission(True)

# --- Rows --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ws", "expected"),
    [
        (
            webservice(canary=paused()),
            {"ready": "True", "replicas": "3/3", "workers": "uvicorn × 4", "phase": "Paused"}
            | {"step": "3/4", "weight": "10%", "verdict": "pass"},
        ),
        (
            webservice(),
            {"phase": "-", "step": "-", "weight": "-", "verdict": "-"},
        ),
        (
            {"metadata": {"name": "new", "namespace": "shop"}, "spec": {"replicas": 2}},
            {"ready": "-", "replicas": "0/2", "workers": "-", "phase": "-"},
        ),
        (
            webservice(server={"workers": 2}),
            {"workers": "2"},
        ),
    ],
    ids=["paused", "no-canary", "no-status-yet", "workers-only"],
)
def test_row(ws, expected):
    row = views.row(ws)
    assert {field: getattr(row, field) for field in expected} == expected


def test_rows_are_in_order_and_link_to_their_page():
    rows = views.rows([webservice("b"), webservice("a", namespace="z"), webservice("a")])
    assert [r.key for r in rows] == ["shop/a", "shop/b", "z/a"]
    assert rows[0].href == "/webservices/shop/a"


def test_a_name_is_quoted_in_links():
    assert views.href("a b", "c/d") == "/webservices/a%20b/c%2Fd"


# --- The timeline ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("canary", "states"),
    [
        (None, ["pending"] * 4),
        ({"phase": "Progressing", "stepIndex": 0}, ["current", "pending", "pending", "pending"]),
        (paused(), ["done", "done", "current", "pending"]),
        ({"phase": "Promoting", "stepIndex": 3}, ["done"] * 4),
        ({"phase": "Succeeded", "stepIndex": 4}, ["done"] * 4),
        ({"phase": "RolledBack", "stepIndex": 1}, ["done", "stopped", "pending", "pending"]),
        ({"phase": "Aborted", "stepIndex": 0}, ["stopped", "pending", "pending", "pending"]),
    ],
    ids=["no-rollout", "first", "paused", "promoting", "succeeded", "rolled-back", "aborted"],
)
def test_timeline(canary, states):
    steps = views.timeline(webservice(canary=canary, steps=STEPS))
    assert [s.state for s in steps] == states
    assert [s.text for s in steps] == [
        "setWeight 10",
        "pause 60s",
        "pause until promote",
        "setWeight 50",
    ]


def test_no_canary_plan_no_timeline():
    assert views.timeline(webservice()) == []


# --- Actions -----------------------------------------------------------------------------------


def enabled(ws, permission=ALLOWED) -> dict[str, str]:
    return {a.action: "yes" if a.enabled else a.reason for a in views.actions(ws, permission)}


@pytest.mark.parametrize(
    ("phase", "allowed"),
    [
        ("Paused", {"promote", "promote-full", "abort", "resume"}),
        ("Progressing", {"promote", "promote-full", "abort", "pause"}),
        ("Promoting", {"abort"}),
        ("Succeeded", set()),
        ("RolledBack", {"retry"}),
        ("Aborted", {"retry"}),
        (None, set()),
    ],
)
def test_actions_follow_the_clis_refusals(phase, allowed):
    ws = webservice(canary=None if phase is None else paused(phase=phase), steps=STEPS)
    shown = enabled(ws)
    assert {action for action, state in shown.items() if state == "yes"} == allowed
    for action, state in shown.items():
        if state != "yes":  # the very words `herd ACTION` prints
            assert state == views.rollout.refusal(action, phase)


def test_without_the_right_every_action_is_disabled_with_the_reason():
    permission = views.write_permission(False, "RBAC: no rule", "shop")
    assert permission == views.Permission(
        False,
        "your identity may not patch webservices/status in shop (needs patch on "
        "webservices.herd.dev/status: the herd-promoter ClusterRole): RBAC: no rule",
    )
    assert set(enabled(webservice(canary=paused()), permission).values()) == {permission.reason}
    assert views.write_permission(True, "allowed by a RoleBinding", "shop") == ALLOWED
    assert views.write_permission(False, "", "shop").reason.endswith("ClusterRole)")


def test_the_actions_are_the_apis():
    assert {a for a, _ in views.ACTIONS} == set(views.rollout.APPLIES_IN)


# --- History -----------------------------------------------------------------------------------


def test_observe_keeps_weight_changes_and_new_analyses():
    history = views.History()
    first = paused(weight=10)
    history = views.observe(history, webservice(canary=first), NOW)
    history = views.observe(history, webservice(canary=first), NOW + 1)  # nothing new
    later = {**first["lastAnalysis"], "time": "2026-11-21T09:11:00Z", "verdict": "fail"}
    history = views.observe(
        history, webservice(canary=paused(weight=50, lastAnalysis=later)), NOW + 2
    )
    assert history.weights == ((NOW, 10), (NOW + 2, 50))
    assert [a["verdict"] for a in history.analyses] == ["pass", "fail"]
    assert views.observe(history, webservice(), NOW + 3) == history


def test_observe_is_bounded():
    history = views.History()
    for i in range(views.MAX_WEIGHT_SAMPLES + 10):
        history = views.observe(history, webservice(canary={"weight": i % 2}), NOW + i)
    assert len(history.weights) == views.MAX_WEIGHT_SAMPLES
    assert history.weights[-1] == (NOW + views.MAX_WEIGHT_SAMPLES + 9, 1)


@pytest.mark.parametrize(
    ("weights", "now", "points"),
    [
        ([], NOW, None),
        ([(NOW, 50)], NOW, "0.0,50.0 100.0,50.0"),
        ([(NOW, 0), (NOW + 5, 100)], NOW + 10, "0.0,100.0 50.0,100.0 50.0,0.0 100.0,0.0"),
    ],
    ids=["none", "one", "a-step"],
)
def test_weight_chart(weights, now, points):
    chart = views.weight_chart(weights, now, width=100, height=100)
    assert (chart and chart.points) == points


def test_analysis_rows_are_newest_first_against_the_thresholds():
    first = paused()["lastAnalysis"]
    failed = {"time": "t2", "verdict": "fail", "errorRate": 0.03, "message": "too many 5xx"}
    ws = webservice(canary=paused())
    ws["spec"]["canary"]["analysis"] = {"maxErrorRate": 0.01, "maxP99LatencyMs": 0}
    rows = views.analysis_rows(views.History(analyses=(first, failed)), ws)
    assert rows == [
        views.AnalysisRow("t2", "fail", "-", "3.00% (max 1.00%)", "-", "too many 5xx"),
        views.AnalysisRow(
            first["time"], "pass", "120", "0.40% (max 1.00%)", "85 ms", "within thresholds"
        ),
    ]


def test_autoscaling_shows_the_last_decision_and_recent_recommendations():
    status = {
        "desiredReplicas": 5,
        "reason": "Load",
        "currentRPM": 1200.0,
        "errorRate": 0.002,
        "utilization": 0.734,
        "lastPanicTime": "2026-01-01T00:00:00Z",
        "recommendations": [{"time": int(NOW) + i, "replicas": i} for i in range(12)],
    }
    shown = views.autoscaling(webservice(autoscaling=status))
    assert shown is not None
    assert shown.fields == [
        ("Desired replicas", "5"),
        ("Reason", "Load"),
        ("Requests/min", "1200"),
        ("Error rate", "0.20%"),
        ("Utilization", "73%"),
        ("Last panic", "2026-01-01T00:00:00Z"),
    ]
    assert [r for _, r in shown.recommendations] == list(range(11, 1, -1))
    assert views.autoscaling(webservice()) is None


def test_event_rows_are_newest_first_whoever_wrote_them():
    events = [
        {"type": "Normal", "reason": "Old", "lastTimestamp": "2026-01-01T00:00:00Z", "count": 3},
        {"type": "Warning", "reason": "New", "eventTime": "2026-01-02T00:00:00.000000Z"},
        {"reason": "Bare", "metadata": {"creationTimestamp": "2026-01-01T12:00:00Z"}},
    ]
    assert [(e.reason, e.count) for e in views.event_rows(events)] == [
        ("New", 1),
        ("Bare", 1),
        ("Old", 3),
    ]
    assert len(views.event_rows(events * 10)) == views.MAX_EVENTS


def test_overview_without_a_canary_says_so():
    assert ("Canary", "none: changes roll out as plain rolling updates") in views.overview(
        webservice()
    )


# --- Live updates ------------------------------------------------------------------------------


def parse(message: str) -> tuple[str, dict]:
    event, data, end = message.split("\n", 2)
    assert end == "\n"
    return event.removeprefix("event: "), json.loads(data.removeprefix("data: "))


@pytest.mark.parametrize(
    ("change", "kind"), [("ADDED", "changed"), ("MODIFIED", "changed"), ("DELETED", "deleted")]
)
def test_change_message(change, kind):
    event, data = parse(views.change_message(change, webservice(canary=paused())))
    assert event == "webservice"
    assert (data["type"], data["key"], data["row"]["weight"]) == (kind, "shop/web", "10%")


def test_a_message_with_newlines_stays_one_data_line():
    event, data = parse(views.problem_message("line one\nline two"))
    assert (event, data) == ("problem", {"message": "line one\nline two"})
    assert parse(views.problem_message(None))[1] == {"message": None}


# --- Requests from other sites -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "hosts"),
    [
        ("127.0.0.1", {"127.0.0.1:8080", "localhost:8080"}),
        ("::1", {"[::1]:8080", "localhost:8080"}),
        ("192.0.2.10", {"192.0.2.10:8080"}),
    ],
)
def test_allowed_hosts(address, hosts):
    assert views.allowed_hosts(address, 8080) == hosts


@pytest.mark.parametrize(
    ("host", "refused"),
    [
        ("127.0.0.1:8080", False),
        ("LOCALHOST:8080", False),
        ("localhost", True),  # another port's origin
        ("rebound.attacker.test:8080", True),
        (None, True),
    ],
)
def test_host_refusal(host, refused):
    hosts = views.allowed_hosts("127.0.0.1", 8080)
    assert (views.host_refusal(host, hosts) is not None) == refused


TOKEN = "t0ken"
HOST = "127.0.0.1:8080"


@pytest.mark.parametrize(
    ("origin", "form", "cookie", "says"),
    [
        ("http://127.0.0.1:8080", TOKEN, TOKEN, None),
        (None, TOKEN, TOKEN, "no Origin header"),
        ("null", TOKEN, TOKEN, "another origin"),
        ("http://evil.test", TOKEN, TOKEN, "another origin"),
        ("https://127.0.0.1:8080", TOKEN, TOKEN, "another origin"),
        ("http://127.0.0.1:8080", None, TOKEN, "lacks the dashboard's token"),
        ("http://127.0.0.1:8080", TOKEN, "", "lacks the dashboard's token"),
        ("http://127.0.0.1:8080", "other", TOKEN, "not this dashboard's"),
        ("http://127.0.0.1:8080", TOKEN, "other", "not this dashboard's"),
    ],
)
def test_action_refusal(origin, form, cookie, says):
    refused = views.action_refusal(origin, HOST, form, cookie, TOKEN)
    assert (refused is None) if says is None else (says in refused)


@pytest.mark.parametrize(
    ("api_status", "status"),
    [(None, 409), (0, 502), (401, 401), (403, 403), (404, 404), (500, 502)],
)
def test_http_status(api_status, status):
    assert views.http_status(api_status) == status


# --- The intent path the CLI and the dashboard share --------------------------------------------


def test_request_intent_writes_the_intent_as_the_cli_does():
    fake = FakeUserKube()
    fake.put(webservice(canary=paused()))
    intent = rollout_cli.request_intent(fake, "shop", "web", "promote", "me@here")
    assert (intent["action"], intent["by"]) == ("promote", "me@here")
    assert fake.get_webservice("shop", "web")["status"]["intent"] == intent
    assert fake.status_writes == [("herd-cli", {"intent": intent})]


@pytest.mark.parametrize(
    ("setup", "says", "api_status"),
    [
        (lambda f: f.put(webservice(canary=paused(phase="Succeeded"))), "cannot promote", None),
        (lambda f: None, "webservice shop/web not found", 404),
        (
            lambda f: (
                f.put(webservice(canary=paused())),
                f.fail("write_intent", "WebService", ApiError(403, "Forbidden", "nope")),
            ),
            "forbidden: nope (needs patch on webservices.herd.dev/status",
            403,
        ),
    ],
    ids=["refused", "missing", "forbidden"],
)
def test_request_intent_refusals(setup, says, api_status):
    fake = FakeUserKube()
    setup(fake)
    with pytest.raises(rollout_cli.CliError) as refused:
        rollout_cli.request_intent(fake, "shop", "web", "promote", "me@here")
    assert says in str(refused.value)
    assert refused.value.api_status == api_status


# --- The watch ---------------------------------------------------------------------------------


def watch_of(body: bytes, status: int = 200) -> list:
    with serving([(status, body)]) as (url, seen):
        kube = Kube(ApiClient(Configuration(host=url)))
        events = list(kube.watch_webservices("shop", "41", 5))
    assert seen[0].startswith("/apis/herd.dev/v1alpha1/namespaces/shop/webservices?watch=true")
    assert "resourceVersion=41" in seen[0]
    return events


def test_the_watch_yields_each_event():
    lines = [
        {"type": "ADDED", "object": webservice("a")},
        {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "50"}}},
        {"type": "DELETED", "object": webservice("b")},
    ]
    body = b"\n".join(json.dumps(line).encode() for line in lines) + b"\n"
    events = watch_of(body)
    assert [(kind, obj["metadata"].get("name")) for kind, obj in events] == [
        ("ADDED", "a"),
        ("BOOKMARK", None),
        ("DELETED", "b"),
    ]


def test_events_split_across_chunks_are_whole():
    line = json.dumps({"type": "MODIFIED", "object": webservice("a")}).encode() + b"\n"
    chunks = [line[:10], line[10:] + line[:5], line[5:]]
    assert [k for k, _ in _watch_events(iter(chunks))] == ["MODIFIED", "MODIFIED"]


def test_an_expired_version_is_a_410():
    gone = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}}
    with pytest.raises(ApiError) as expired:
        watch_of(json.dumps(gone).encode() + b"\n")
    assert expired.value.status == 410


def test_a_refused_watch_is_an_api_error():
    refusal = {"kind": "Status", "reason": "Forbidden", "message": "cannot watch"}
    with pytest.raises(ApiError) as refused:
        watch_of(json.dumps(refusal).encode(), status=403)
    assert (refused.value.status, refused.value.message) == (403, "cannot watch")


# --- The command -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["dashboard"], {"address": "127.0.0.1", "port": 8080, "all_namespaces": False}),
        (["dashboard", "-A", "--port", "9000", "--open"], {"all_namespaces": True, "open": True}),
        (["dashboard", "-n", "shop", "--address", "::1"], {"namespace": "shop", "address": "::1"}),
        (["dashboard"], {"prometheus": None}),
        (
            ["dashboard", "--prometheus", "http://127.0.0.1:19090"],
            {"prometheus": "http://127.0.0.1:19090"},
        ),
    ],
)
def test_the_dashboard_command_line(argv, expected):
    args = cli.parser().parse_args(argv)
    assert {key: getattr(args, key) for key in expected} == expected


@pytest.mark.parametrize("port", ["0", "65536", "http"])
def test_the_dashboard_needs_a_port_it_can_name(port, capsys):
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["dashboard", "--port", port])
    assert "is not a port" in capsys.readouterr().err


@pytest.mark.parametrize("address", ["0.0.0.0", "::"])
def test_the_dashboard_listens_on_one_address(address, capsys):
    assert cli.main(["dashboard", "--address", address]) == 1
    assert "name one address to listen on" in capsys.readouterr().err


def test_kubectl_herd_dashboard(capsys):
    with pytest.raises(SystemExit):
        rollout_cli.main(["dashboard", "--help"])
    assert capsys.readouterr().out.startswith("usage: kubectl herd dashboard")


def test_a_watch_that_is_no_json_is_an_api_error():
    with pytest.raises(ApiError) as unreadable:
        watch_of(b"<html>proxy error</html>\n")
    assert unreadable.value.reason == "Unreadable"


# --- The shared watch --------------------------------------------------------------------------


class ScriptedWatches:
    """Each watch_webservices call plays the next scripted watch: events, then maybe an error;
    the last call stops the dashboard's watch loop."""

    server = "https://apiserver.invalid"

    def __init__(self, script):
        self.script = script
        self.versions: list[str | None] = []
        self.live = None

    def watch_webservices(self, namespace, resource_version, timeout_seconds):
        self.versions.append(resource_version)
        events, error = self.script.pop(0)
        if not self.script:
            self.live.stop()
        yield from events
        if error is not None:
            raise error


def with_version(ws, version):
    ws["metadata"]["resourceVersion"] = version
    return ws


def test_the_watch_resumes_from_its_version_lists_again_when_expired_and_reports_failures():
    api = ScriptedWatches(
        [
            ([("ADDED", with_version(webservice(canary=paused(weight=10)), "5"))], None),
            ([], ApiError(410, "Expired", "too old")),
            ([("MODIFIED", with_version(webservice(canary=paused(weight=50)), "7"))], None),
            ([], ApiError(0, "Unreachable", "[Errno 111] Connection refused")),
        ]
    )
    clock = iter([NOW, NOW + 1])
    live = api.live = Live(api, "shop", lambda: next(clock))
    live._run()
    assert api.versions == [None, "5", None, "7"]
    assert live.history("shop/web").weights == ((NOW, 10), (NOW + 1, 50))
    assert live.problem == (
        "live updates stopped: cannot reach the Kubernetes API at https://apiserver.invalid: "
        "Connection refused"
    )
