"""The `herd` rollout commands against the local cluster: a contract test.

No operator runs here. The test plays the canary controller's part of the contract: it writes
`status.canary` by server-side apply as field manager `herd-canary`, as the controller does, and
a background thread (`FakeController`) acts on each new `status.intent` once by recording its id
in `status.canary.handledIntent`. What is tested is what both sides rely on: the CLI reads
status.canary, writes intents to the status subresource only, and waits for handledIntent.

The WebServices live in `cli-*` namespaces, not the `t-*` ones the test operator serves: a real
canary controller acting on them would race the fake one.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench.harness.cluster import KUBECONFIG, REPO, Kubectl, eventually, pins
from herd.kube import Kube
from tests.support.canary_status import PAUSED
from tests.support.cli import BIN, HERD, KUBECTL_HERD, herd, run

MANIFEST = """
apiVersion: herd.dev/v1alpha1
kind: WebService
metadata: {name: web}
spec:
  image: web:2
  app: shop.main:app
  replicas: 3
  canary:
    steps: [{setWeight: 10}, {pause: {duration: 60}}, {pause: {}}, {setWeight: 50}]
    analysis: {maxP99LatencyMs: 500}
"""

PROGRESSING = {"phase": "Progressing", "stepIndex": 0, "steps": 4, "weight": 10}


def herd_waiting(*args: str) -> subprocess.Popen[str]:
    """`herd` in the background, its output read as it comes."""
    return subprocess.Popen(
        [str(HERD), *args],
        env={**os.environ, "KUBECONFIG": str(KUBECONFIG)},
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def create(ns: Kubectl, kube: Kube, canary: dict[str, Any] | None) -> dict[str, Any]:
    """The WebService, with the status the operator and its canary controller would write."""
    ns.apply(MANIFEST)
    ws = ns.get("webservice", "web")
    kube.apply_status(
        ns.namespace,
        "web",
        {
            "observedGeneration": ws["metadata"]["generation"],
            "readyReplicas": 3,
            "url": "http://web.example.com/",
            "server": {"workers": 4},
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "Available", "message": "3 ready"}
            ],
        },
    )
    if canary is not None:
        write_canary(ns, kube, canary)
    return ns.get("webservice", "web")


def write_canary(ns: Kubectl, kube: Kube, canary: dict[str, Any], observed: int = 1) -> None:
    """status.canary as the canary controller writes it (its own field manager)."""
    kube.apply_status(
        ns.namespace,
        "web",
        {"observedGeneration": observed, "canary": canary},
        manager="herd-canary",
    )


class FakeController(threading.Thread):
    """The controller's side of the intent contract: act once on each new intent, then record
    its id in status.canary.handledIntent. `react` gives the canary status after an action."""

    def __init__(self, kube: Kube, namespace: str, react: Callable[[str], dict[str, Any]]):
        super().__init__(daemon=True)
        self.kube, self.namespace, self.react = kube, namespace, react
        self.seen: list[dict[str, Any]] = []
        self.error: Exception | None = None
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopping.wait(0.2):
                self.tick()
        except Exception as error:  # reported by the test, not lost in the thread
            self.error = error

    def tick(self) -> None:
        status = (self.kube.get_webservice(self.namespace, "web") or {}).get("status", {})
        intent = status.get("intent") or {}
        if intent.get("id") and intent["id"] != status.get("canary", {}).get("handledIntent"):
            self.seen.append(intent)
            canary = {**self.react(intent["action"]), "handledIntent": intent["id"]}
            self.kube.apply_status(self.namespace, "web", {"canary": canary}, manager="herd-canary")

    def __enter__(self) -> FakeController:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        self.join(timeout=10)
        assert self.error is None, f"the fake controller failed: {self.error!r}"


def context_kubeconfig(tmp_path: Path, namespace: str, token: str | None = None) -> Path:
    """The local cluster's kubeconfig with `namespace` as the context's, and optionally a
    ServiceAccount token as the user."""
    config = yaml.safe_load(KUBECONFIG.read_text())
    context = config["contexts"][0]["context"]
    context["namespace"] = namespace
    if token is not None:
        config["users"] = [{"name": "sa", "user": {"token": token}}]
        context["user"] = "sa"
    path = tmp_path / f"kubeconfig-{uuid.uuid4().hex[:6]}"
    path.write_text(yaml.safe_dump(config))
    return path


def test_list_and_status_show_the_canary(ns, kube, tmp_path):
    create(ns, kube, PAUSED)
    url = "http://web.example.com/"

    listed = herd("list", "-n", ns.namespace)
    assert listed.returncode == 0, listed.stderr
    assert [line.split() for line in listed.stdout.splitlines()] == [
        ["NAME", "READY", "REPLICAS", "WORKERS", "PHASE", "STEP", "WEIGHT", "URL"],
        ["web", "True", "3/3", "4", "Paused", "3/4", "10%", url],
    ]
    everywhere = herd("list", "-A")
    assert everywhere.returncode == 0, everywhere.stderr
    assert [ns.namespace, "web", "True", "3/3", "4", "Paused", "3/4", "10%", url] in [
        line.split() for line in everywhere.stdout.splitlines()
    ]

    # No -n: the namespace of the kubeconfig's context, as kubectl does.
    shown = herd("status", "web", kubeconfig=context_kubeconfig(tmp_path, ns.namespace))
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    for line in [
        f"Name:          {ns.namespace}/web",
        "Phase:         Paused (waiting for herd promote)",
        "Revisions:     stable ab12cd34ef, canary 9f8e7d6c5b",
        "Step:          3/4 pause until promote",
        "Weight:        10% of traffic on the canary",
        "Checks:        1 failed (rolls back at 2), 0 inconclusive",  # failureLimit defaulted
        "               requests     120 (inconclusive below 50)",
        "               error rate   0.40% (max 1.00%)",
        "               p99 latency  85 ms (max 500 ms)",
        "Message:       step 3/4: pause until promoted",
    ]:
        assert line in lines, f"{line!r} not in\n{shown.stdout}"

    as_json = herd("status", "web", "-n", ns.namespace, "-o", "json")
    assert json.loads(as_json.stdout)["status"]["canary"]["phase"] == "Paused"


@pytest.mark.parametrize("command", ["status", "promote"])
def test_a_missing_webservice_is_one_line_and_exit_1(ns, command):
    done = herd(command, "nope", "-n", ns.namespace)
    assert (done.returncode, done.stderr) == (
        1,
        f"herd: webservice {ns.namespace}/nope not found\n",
    )


@pytest.mark.parametrize(
    ("start", "then", "code", "says"),
    [
        (PROGRESSING, {"phase": "Succeeded"}, 0, "reached Succeeded"),
        (PROGRESSING, {"phase": "RolledBack", "message": "2 failed checks"}, 1, "ended RolledBack"),
        (PROGRESSING, None, 1, "was deleted"),
    ],
    ids=["succeeded", "rolled-back", "deleted"],
)
def test_wait_for_a_phase(ns, kube, start, then, code, says):
    create(ns, kube, start)
    waiting = herd_waiting("status", "web", "-n", ns.namespace, "--wait", "Succeeded")
    try:
        # Its first progress line: it is waiting, on the rollout as it was.
        assert waiting.stdout is not None
        assert "Progressing, step 1/4, weight 10%" in waiting.stdout.readline()
        if then is None:
            ns.run("delete", "webservice", "web", "--wait=false")
        else:
            write_canary(ns, kube, then)
        out, err = waiting.communicate(timeout=30)
    finally:
        waiting.kill()
    assert waiting.returncode == code, (out, err)
    assert says in (out if code == 0 else err)


def test_wait_ignores_a_phase_from_before_the_latest_spec(ns, kube):
    """Yesterday's Succeeded does not end today's wait: the phase counts once the operator has
    observed the current generation."""
    create(ns, kube, None)
    write_canary(ns, kube, {"phase": "Succeeded"}, observed=0)
    waiting = herd_waiting("status", "web", "-n", ns.namespace, "--wait", "Succeeded")
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            waiting.wait(timeout=5)
        write_canary(ns, kube, {"phase": "Succeeded"}, observed=1)
        out, err = waiting.communicate(timeout=30)
    finally:
        waiting.kill()
    assert waiting.returncode == 0, (out, err)


def test_wait_times_out_with_exit_2_and_says_where_it_is(ns, kube):
    create(ns, kube, PAUSED)
    done = herd("status", "web", "-n", ns.namespace, "--wait", "Succeeded", "--timeout", "3s")
    assert done.returncode == 2, done
    assert done.stderr == (
        f"herd: {ns.namespace}/web: timed out after 3s waiting for Succeeded: Paused, step 3/4, "
        "weight 10%: step 3/4: pause until promoted\n"
    )


def test_promote_writes_the_intent_to_the_status_and_waits_for_the_controller(ns, kube):
    before = create(ns, kube, PAUSED)
    after_promote = {**PAUSED, "phase": "Progressing", "stepIndex": 3, "weight": 50}
    after_promote.update(pausedReason="", message="step 4/4: setWeight 50")
    with FakeController(kube, ns.namespace, lambda action: after_promote) as controller:
        done = herd("promote", "web", "-n", ns.namespace)
    assert done.returncode == 0, done.stderr
    requested, accepted = done.stdout.splitlines()
    intent_id = re.fullmatch(rf"{ns.namespace}/web: promote requested \(intent (\S+)\)", requested)
    assert intent_id, requested
    assert accepted == (
        f"{ns.namespace}/web: Progressing, step 4/4, weight 50%: step 4/4: setWeight 50"
    )

    ws = json.loads(
        ns.run("get", "webservice", "web", "-o", "json", "--show-managed-fields").stdout
    )
    intent = ws["status"]["intent"]
    assert [i["id"] for i in controller.seen] == [intent["id"]] == [intent_id.group(1)]
    assert intent["action"] == "promote"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", intent["requestedAt"])
    assert "@" in intent["by"]
    # The status subresource only: the spec, and so its generation, did not change.
    assert ws["metadata"]["generation"] == before["metadata"]["generation"]
    assert ws["spec"] == before["spec"]
    writers = {
        (m["manager"], m.get("subresource"), m["operation"])
        for m in ws["metadata"]["managedFields"]
    }
    assert ("herd-cli", "status", "Apply") in writers
    assert not any(manager == "herd-cli" and sub != "status" for manager, sub, _ in writers)


@pytest.mark.parametrize(
    ("args", "phase", "action"),
    [
        (["promote", "--full"], "Progressing", "promote-full"),
        (["abort"], "Promoting", "abort"),
        (["pause"], "Progressing", "pause"),
        (["resume"], "Paused", "resume"),
        (["retry"], "RolledBack", "retry"),
    ],
)
def test_each_command_writes_its_action(ns, kube, args, phase, action):
    create(ns, kube, {**PAUSED, "phase": phase})
    done = herd(args[0], "web", *args[1:], "-n", ns.namespace, "--no-wait")
    assert done.returncode == 0, done.stderr
    assert f"web: {action} requested" in done.stdout
    assert ns.get("webservice", "web")["status"]["intent"]["action"] == action


@pytest.mark.parametrize(
    ("command", "phase", "says"),
    [
        ("promote", "Succeeded", "cannot promote: no canary rollout in progress: the last one is"),
        ("resume", "Progressing", "cannot resume: the rollout is not paused but Progressing"),
        ("retry", "Paused", "cannot retry: retry restarts a rolled back or aborted rollout"),
        ("abort", None, "cannot abort: no canary rollout in progress: none has started"),
    ],
)
def test_requests_that_make_no_sense_are_refused_and_not_written(ns, kube, command, phase, says):
    create(ns, kube, None if phase is None else {"phase": phase})
    done = herd(command, "web", "-n", ns.namespace)
    assert done.returncode == 1
    assert done.stderr.startswith(f"herd: {ns.namespace}/web: {says}"), done.stderr
    assert "intent" not in ns.get("webservice", "web")["status"]


def test_a_request_the_operator_does_not_act_on_times_out_with_exit_2(ns, kube):
    create(ns, kube, PROGRESSING)
    done = herd("abort", "web", "-n", ns.namespace, "--timeout", "2s")
    assert done.returncode == 2, done
    assert "has not acted on the abort request within 2s" in done.stderr
    shown = herd("status", "web", "-n", ns.namespace).stdout
    assert re.search(r"^Last request:  abort by \S+ at \S+: pending$", shown, re.M), shown


def test_runs_as_a_kubectl_plugin(ns, kube, kubectl_binary):
    create(ns, kube, PAUSED)
    path = {"PATH": f"{BIN}:{kubectl_binary.parent}:{os.environ['PATH']}"}

    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        return run([str(kubectl_binary), *args], env=path)

    plugins = kubectl("plugin", "list")
    assert str(KUBECTL_HERD) in plugins.stdout, plugins
    shown = kubectl("herd", "status", "web", "-n", ns.namespace)
    assert shown.returncode == 0, shown.stderr
    assert "Phase:         Paused (waiting for herd promote)" in shown.stdout
    with FakeController(kube, ns.namespace, lambda action: {**PAUSED, "phase": "Progressing"}):
        promoted = kubectl("herd", "promote", "web", "-n", ns.namespace)
    assert promoted.returncode == 0, promoted.stderr
    usage = kubectl("herd", "promote", "--help")
    assert usage.stdout.startswith("usage: kubectl herd promote"), usage.stdout


def _chart_role(name: str, helm: Path) -> dict[str, Any]:
    rendered = subprocess.run(
        [str(helm), "template", "herd", str(REPO / "charts" / "herd")]
        + ["--show-only", "templates/user-roles.yaml"]
        # Offline, helm assumes an old Kubernetes the chart refuses.
        + ["--kube-version", pins()["KUBERNETES_VERSION"]],
        text=True,
        capture_output=True,
        timeout=60,
    )
    assert rendered.returncode == 0, rendered.stderr
    roles = {d["metadata"]["name"]: d for d in yaml.safe_load_all(rendered.stdout) if d}
    return roles[name]


def _user(ns: Kubectl, tmp_path: Path, account: str, role: dict[str, Any] | None) -> Path:
    """A ServiceAccount bound to a namespaced copy of `role` (the chart's ClusterRole rules: the
    same permissions here, and no cluster-wide object that a concurrent `helm install` of the
    chart would collide with); its kubeconfig."""
    ns.run("create", "serviceaccount", account)
    if role is not None:
        copy = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": role["metadata"]["name"]},
            "rules": role["rules"],
        }
        ns.apply(json.dumps(copy))
        ns.run(
            "create",
            "rolebinding",
            f"{account}-{copy['metadata']['name']}",
            f"--role={copy['metadata']['name']}",
            f"--serviceaccount={ns.namespace}:{account}",
        )
    token = ns.run("create", "token", account, "--duration", "1h").stdout.strip()
    return context_kubeconfig(tmp_path, ns.namespace, token)


def test_a_herd_promoter_can_promote_but_not_edit_the_spec(ns, kube, kubectl_binary, tmp_path):
    helm = kubectl_binary.parent / "helm"
    create(ns, kube, PAUSED)
    promoter = _user(ns, tmp_path, "release-manager", _chart_role("herd-promoter", helm))

    def as_promoter() -> subprocess.CompletedProcess[str]:
        return herd("status", "web", kubeconfig=promoter)

    eventually(lambda: as_promoter().returncode == 0, timeout=30, what="the RoleBinding in force")
    assert herd("list", kubeconfig=promoter).returncode == 0
    with FakeController(kube, ns.namespace, lambda action: {**PAUSED, "phase": "Progressing"}):
        promoted = herd("promote", "web", kubeconfig=promoter)
    assert promoted.returncode == 0, promoted.stderr
    assert ns.get("webservice", "web")["status"]["intent"]["action"] == "promote"

    edit = ns.run(
        "--kubeconfig",
        str(promoter),
        "patch",
        "webservice",
        "web",
        "--type=merge",
        "-p",
        '{"spec": {"replicas": 5}}',
        check=False,
    )
    assert edit.returncode != 0 and "forbidden" in edit.stderr.lower(), edit
    assert ns.get("webservice", "web")["spec"]["replicas"] == 3


@pytest.mark.parametrize(
    ("role", "says"),
    [
        (None, 'cannot get resource "webservices"'),
        ("herd-view", 'cannot patch resource "webservices/status"'),
    ],
    ids=["no-role", "viewer"],
)
def test_a_missing_permission_is_named(ns, kube, kubectl_binary, tmp_path, role, says):
    create(ns, kube, PAUSED)
    chart_role = _chart_role(role, kubectl_binary.parent / "helm") if role else None
    user = _user(ns, tmp_path, "someone", chart_role)

    def promote() -> subprocess.CompletedProcess[str] | None:
        done = herd("promote", "web", kubeconfig=user)
        return done if says in done.stderr else None  # once the RoleBinding is in force

    done = eventually(promote, timeout=30, what=f"{says!r}")
    assert done.returncode == 1
    assert done.stderr.startswith("herd: forbidden: ")
    assert says in done.stderr and done.stderr.count("\n") == 1, done.stderr
    needs = "herd-promoter ClusterRole" if role else "herd-view or herd-promoter ClusterRole"
    assert needs in done.stderr
