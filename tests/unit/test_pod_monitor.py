"""The optional PodMonitor per WebService: what it selects and scrapes, when it is rendered,
the settings that turn it on, discovery of its CRD (and the word at start without it), and one
reconcile either way."""

from __future__ import annotations

import json

import kopf
import pytest
from kubernetes.client import ApiClient, Configuration

from herd import cli, handlers, kinds
from herd.desired import Tracks, desired, owned
from herd.kinds import Ref
from herd.kube import DISCOVERY_SECONDS, Kube
from herd.model import parse
from herd.objectmeta import TRACK_LABEL, canary_name
from herd.reconcile import reconcile
from herd.serving import workload
from herd.serving.pod_monitor import pod_monitor
from herd.settings import Settings
from tests.support.fake_kube import FakeKube, FakePrometheus
from tests.support.http_stub import serving

NOW = 1_700_000_000.0
MONITOR = Ref(kinds.POD_MONITOR.kind, "ns", "shop")
BODY = {
    "apiVersion": "herd.dev/v1alpha1",
    "kind": "WebService",
    "metadata": {"name": "shop", "namespace": "ns", "uid": "u1", "generation": 1},
    "spec": {"image": "shop:1", "app": "shop.main:app"},
}


def ws(**spec):
    return parse({**BODY, "spec": {**BODY["spec"], **spec}})


def by_kind(objects):
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


# --- The PodMonitor. ---


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param({}, id="defaults"),
        pytest.param({"metricsPort": 9200, "runtime": "inject"}, id="own-port-injected"),
        pytest.param({"interface": "asgi", "replicas": 3}, id="asgi"),
    ],
)
def test_it_selects_the_pods_of_both_tracks_on_their_metrics_port(spec):
    stable, canary = ws(**spec), ws(**{**spec, "image": "shop:2"})
    state = desired(stable, Tracks(stable, canary, weight=20), pod_monitor_labels=())
    objects = by_kind(state.objects)
    monitor = objects[("PodMonitor", "shop")]
    selector = monitor["spec"]["selector"]["matchLabels"]
    for name in ("shop", canary_name(stable)):
        template = objects[("Deployment", name)]["spec"]["template"]
        assert selector.items() <= template["metadata"]["labels"].items(), name
        [endpoint] = monitor["spec"]["podMetricsEndpoints"]
        [container] = template["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        # The same port and path the scrape annotations name.
        annotations = template["metadata"]["annotations"]
        assert str(ports[endpoint["port"]]) == annotations["prometheus.io/port"]
        assert endpoint["path"] == annotations["prometheus.io/path"]
    assert TRACK_LABEL not in selector


def test_its_series_carry_the_labels_the_app_metric_source_selects_tracks_by():
    labels = pod_monitor(ws(), ())["spec"]["podTargetLabels"]
    # prometheus-operator copies each as its sanitised name, as the annotation scrape does.
    sanitised = {label.replace(".", "_").replace("/", "_").replace("-", "_") for label in labels}
    assert sanitised == {"app_kubernetes_io_instance", "herd_dev_track"}


@pytest.mark.parametrize(
    ("admin", "expected"),
    [
        ((), {}),
        ((("release", "kps"),), {"release": "kps"}),
        # Herd's own labels stay Herd's: the selector of other tools and the pruning read them.
        (
            (("app.kubernetes.io/managed-by", "helm"), (TRACK_LABEL, "x"), ("team", "a")),
            {"team": "a"},
        ),
    ],
)
def test_admin_labels_are_added_under_herds(admin, expected):
    meta = pod_monitor(ws(), admin)["metadata"]
    herds = workload.service(ws())["metadata"]["labels"]
    assert meta["labels"] == {**expected, **herds}


def test_it_is_owned_like_every_child():
    meta = pod_monitor(ws(), ())["metadata"]
    service = workload.service(ws())["metadata"]
    assert (meta["name"], meta["namespace"]) == ("shop", "ns")
    assert meta["ownerReferences"] == service["ownerReferences"]
    assert meta["ownerReferences"][0]["uid"] == "u1"


@pytest.mark.parametrize(
    ("labels", "rendered"), [(None, False), ((), True), ((("release", "kps"),), True)]
)
def test_desired_renders_it_only_with_labels_and_always_may_prune_it(labels, rendered):
    state = desired(ws(), pod_monitor_labels=labels)
    assert (("PodMonitor", "shop") in by_kind(state.objects)) is rendered
    assert (MONITOR in state.absent) is not rendered
    assert MONITOR in owned(ws())


# --- The settings. ---


@pytest.mark.parametrize(
    ("environment", "on", "labels"),
    [
        ({}, False, ()),
        ({"HERD_POD_MONITORS": "true"}, True, ()),
        ({"HERD_POD_MONITORS": "1"}, True, ()),
        ({"HERD_POD_MONITORS": "no"}, False, ()),
        (
            {"HERD_POD_MONITORS": "True", "HERD_POD_MONITOR_LABELS": "release=kps,team=a"},
            True,
            (("release", "kps"), ("team", "a")),
        ),
    ],
)
def test_settings_from_the_environment(monkeypatch, environment, on, labels):
    for name in ("HERD_POD_MONITORS", "HERD_POD_MONITOR_LABELS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_environment()
    assert (settings.pod_monitors, settings.pod_monitor_labels) == (on, labels)


def test_a_label_without_a_value_is_refused(monkeypatch):
    monkeypatch.setenv("HERD_POD_MONITOR_LABELS", "release")
    with pytest.raises(ValueError, match="key=value"):
        Settings.from_environment()


@pytest.mark.parametrize(
    ("argv", "on", "labels"),
    [
        ([], False, ()),
        (["--pod-monitors"], True, ()),
        (
            ["--pod-monitors", "--pod-monitor-label", "release=kps", "--pod-monitor-label=a=b"],
            True,
            (("release", "kps"), ("a", "b")),
        ),
    ],
)
def test_the_operators_flags(argv, on, labels):
    settings = cli.operator_settings(cli.parser().parse_args(["operator", *argv]))
    assert (settings.pod_monitors, settings.pod_monitor_labels) == (on, labels)


def test_a_flag_label_without_a_value_is_refused(capsys):
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["operator", "--pod-monitor-label", "release"])
    assert "--pod-monitor-label" in capsys.readouterr().err


# --- Discovery: is the CRD served? ---


def discovery(*plurals: str) -> bytes:
    resources = [{"name": p, "namespaced": True, "kind": "X"} for p in plurals]
    return json.dumps({"kind": "APIResourceList", "resources": resources}).encode()


@pytest.mark.parametrize(
    ("status", "body", "answer"),
    [
        (200, discovery("podmonitors", "servicemonitors"), True),
        (200, discovery("servicemonitors"), False),  # the group, without PodMonitors
        (404, b"404 page not found", False),  # no monitoring.coreos.com/v1 at all
    ],
    ids=["listed", "group-without-it", "no-group"],
)
def test_served_asks_discovery_once_per_interval(status, body, answer):
    clock = [100.0]
    with serving([(status, body)]) as (url, seen):
        kube = Kube(ApiClient(Configuration(host=url)), monotonic=lambda: clock[0])
        assert kube.served(kinds.POD_MONITOR) is answer
        clock[0] += DISCOVERY_SECONDS - 1
        assert kube.served(kinds.POD_MONITOR) is answer
        assert seen == ["/apis/monitoring.coreos.com/v1"]
        clock[0] += 1
        assert kube.served(kinds.POD_MONITOR) is answer
        assert len(seen) == 2


@pytest.mark.parametrize(
    ("settings", "unserved", "warned"),
    [
        (Settings(pod_monitors=True), {kinds.POD_MONITOR.kind}, True),
        (Settings(pod_monitors=True), set(), False),
        (Settings(), {kinds.POD_MONITOR.kind}, False),  # off: nothing to say, nothing asked
    ],
)
def test_the_operator_says_at_start_when_it_can_make_no_pod_monitors(
    caplog, settings, unserved, warned
):
    kube = FakeKube()
    kube.unserved = unserved
    handlers._warn_if_pod_monitors_unavailable(kopf.Memo(settings=settings, kube=kube))
    said = [r for r in caplog.records if "podmonitors.monitoring.coreos.com" in r.getMessage()]
    assert bool(said) is warned
    assert kube.count("served") == (1 if settings.pod_monitors else 0)


# --- One reconcile. ---


def reconciled(kube: FakeKube, settings: Settings):
    kube.put(BODY)
    return reconcile(kube, FakePrometheus(), settings, "ns", "shop", NOW)


def test_on_and_served_applies_the_pod_monitor():
    kube = FakeKube()
    outcome = reconciled(kube, Settings(pod_monitors=True, pod_monitor_labels=(("release", "k"),)))
    assert MONITOR in kube.written("apply")
    assert kube.objects[MONITOR]["metadata"]["labels"]["release"] == "k"
    assert ("Normal", "Created", "created PodMonitor shop") in outcome.events


def test_on_but_not_served_warns_and_serves_on():
    kube = FakeKube()
    kube.unserved.add(kinds.POD_MONITOR.kind)
    outcome = reconciled(kube, Settings(pod_monitors=True))
    assert MONITOR not in kube.written("apply") and MONITOR not in kube.objects
    [warning] = [e for e in outcome.events if e[1] == "PodMonitorUnavailable"]
    assert warning[0] == "Warning" and "podmonitors.monitoring.coreos.com" in warning[2]
    conditions = {c["type"]: c for c in kube.objects[Ref.of(BODY)]["status"]["conditions"]}
    assert conditions["Degraded"]["status"] == "False"

    # Once per generation: the next pass of the same spec says nothing again.
    again = reconcile(kube, FakePrometheus(), Settings(pod_monitors=True), "ns", "shop", NOW)
    assert "PodMonitorUnavailable" not in [reason for _, reason, _ in again.events]


def test_off_asks_no_discovery_and_prunes_a_pod_monitor_it_made():
    kube = FakeKube()
    reconciled(kube, Settings(pod_monitors=True))
    assert MONITOR in kube.objects
    kube.reset_calls()

    outcome = reconcile(kube, FakePrometheus(), Settings(), "ns", "shop", NOW)
    assert kube.count("served") == 0
    assert kube.written("delete") == [MONITOR] and MONITOR not in kube.objects
    assert ("Normal", "Deleted", "deleted PodMonitor shop") in outcome.events


def test_off_without_the_crd_prunes_nothing():
    kube = FakeKube()
    kube.unserved.add(kinds.POD_MONITOR.kind)
    reconciled(kube, Settings())
    assert kube.count("delete") == 0
