"""A WebService on the local cluster: its objects, its status, drift, scaling, deletion."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import yaml

from bench.harness.cluster import REPO, Kubectl, eventually

EXAMPLES = sorted((REPO / "manifests" / "examples").glob("*.yaml"))


def condition(ws: dict, kind: str) -> dict:
    return next((c for c in ws.get("status", {}).get("conditions", []) if c["type"] == kind), {})


def wait_ready(kubectl: Kubectl, name: str, timeout: int = 90) -> dict:
    kubectl.run("wait", "--for", "condition=Ready", f"webservice/{name}", f"--timeout={timeout}s")
    return kubectl.get("webservice", name)


def running_pods(kubectl: Kubectl, name: str) -> list[dict]:
    pods = kubectl.items("pods", f"app.kubernetes.io/instance={name}")
    return [
        p
        for p in pods
        if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
    ]


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.stem for e in EXAMPLES])
def test_example_gets_every_object_and_becomes_ready(herd_operator, kubectl: Kubectl, example):
    manifest = yaml.safe_load(example.read_text())
    name = manifest["metadata"]["name"]
    kubectl.run("apply", "-f", str(example))
    ws = wait_ready(kubectl, name)

    deployment = kubectl.get("deployment", name)
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    server = ws["status"]["server"]
    args = container["args"]
    assert args[args.index("--workers") + 1] == str(server["workers"])
    assert args[-1] == manifest["spec"]["app"]
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert deployment["metadata"]["ownerReferences"][0]["uid"] == ws["metadata"]["uid"]

    service = kubectl.get("service", name)
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    ingress = kubectl.get("ingress", name)
    assert ingress["spec"]["rules"][0]["host"] == manifest["spec"]["route"]["ingress"]["host"]
    timeout = int(
        ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-read-timeout"]
    )
    assert timeout > server["timeoutSeconds"]
    pdb = kubectl.get("poddisruptionbudget", name)
    assert pdb["spec"]["maxUnavailable"] == 1

    assert len(running_pods(kubectl, name)) == manifest["spec"]["replicas"]
    status = ws["status"]
    assert status["readyReplicas"] == manifest["spec"]["replicas"]
    assert status["observedGeneration"] == ws["metadata"]["generation"]
    assert status["url"] == f"http://{manifest['spec']['route']['ingress']['host']}/"
    expected_class = "uvicorn" if manifest["spec"]["interface"] == "asgi" else "gthread"
    assert server["workerClass"] == expected_class
    assert condition(ws, "Degraded")["status"] == "False"
    assert condition(ws, "Progressing")["reason"] == "RolloutComplete"


SIMPLE = """
apiVersion: herd.dev/v1alpha1
kind: WebService
metadata: {{name: {name}}}
spec:
  image: {image}
  app: app.main:app
  replicas: {replicas}
"""


def apply_simple(kubectl: Kubectl, name: str = "web", image: str = "web:1", replicas: int = 1):
    kubectl.apply(SIMPLE.format(name=name, image=image, replicas=replicas))


def test_image_change_rolls_the_deployment(herd_operator, kubectl: Kubectl):
    apply_simple(kubectl, replicas=2)
    first = wait_ready(kubectl, "web")["status"]["revision"]
    apply_simple(kubectl, image="web:2", replicas=2)

    def rolled():
        ws = kubectl.get("webservice", "web")
        done = (
            ws["status"].get("revision") != first
            and condition(ws, "Progressing").get("reason") == "RolloutComplete"
            and condition(ws, "Ready").get("status") == "True"
        )
        return done and ws

    eventually(rolled, timeout=90, what="rollout of web:2")
    images = {p["spec"]["containers"][0]["image"] for p in running_pods(kubectl, "web")}
    assert images == {"web:2"}
    assert len(kubectl.items("replicasets", "app.kubernetes.io/instance=web")) == 2


def test_kubectl_scale_through_the_scale_subresource(herd_operator, kubectl: Kubectl):
    apply_simple(kubectl)
    wait_ready(kubectl, "web")
    kubectl.run("scale", "webservice/web", "--replicas", "3")
    eventually(lambda: len(running_pods(kubectl, "web")) == 3, timeout=60, what="3 pods")
    ws = eventually(
        lambda: (w := kubectl.get("webservice", "web"))["status"].get("readyReplicas") == 3 and w,
        what="status.readyReplicas 3",
    )
    assert ws["status"]["selector"] == "app.kubernetes.io/instance=web,herd.dev/track=stable"
    assert kubectl.exists("poddisruptionbudget", "web")  # now there is a second pod to protect


def test_deleting_the_webservice_removes_its_children(herd_operator, kubectl: Kubectl):
    apply_simple(kubectl, replicas=2)
    wait_ready(kubectl, "web")
    kubectl.run("delete", "webservice", "web")
    for kind in ("deployment", "service", "poddisruptionbudget"):
        eventually(lambda k=kind: not kubectl.exists(k, "web"), what=f"{kind} collected")
    eventually(lambda: not running_pods(kubectl, "web"), what="pods collected")


@pytest.mark.parametrize("kind", ["deployment", "service"])
def test_a_child_deleted_by_hand_is_restored(herd_operator, kubectl: Kubectl, kind):
    apply_simple(kubectl)
    wait_ready(kubectl, "web")
    uid = kubectl.get(kind, "web")["metadata"]["uid"]
    kubectl.run("delete", kind, "web")
    eventually(
        lambda: kubectl.exists(kind, "web") and kubectl.get(kind, "web")["metadata"]["uid"] != uid,
        timeout=20,
        what=f"{kind} re-created",
    )


def test_a_child_edited_by_hand_is_restored(herd_operator, kubectl: Kubectl):
    apply_simple(kubectl)
    wait_ready(kubectl, "web")
    kubectl.run("set", "image", "deployment/web", "app=hacked:1")
    eventually(
        lambda: (
            kubectl.get("deployment", "web")["spec"]["template"]["spec"]["containers"][0]["image"]
            == "web:1"
        ),
        timeout=20,
        what="image restored",
    )


def test_removing_the_ingress_spec_deletes_the_ingress(herd_operator, kubectl: Kubectl):
    kubectl.apply(
        SIMPLE.format(name="web", image="web:1", replicas=1)
        + "  route: {ingress: {host: web.example.com}}\n"
    )
    wait_ready(kubectl, "web")
    assert kubectl.exists("ingress", "web")
    apply_simple(kubectl)
    eventually(lambda: not kubectl.exists("ingress", "web"), timeout=20, what="Ingress deleted")
    ws = kubectl.get("webservice", "web")
    assert ws["status"]["url"] == f"http://web.{kubectl.namespace}.svc.cluster.local:8000"


def test_risky_annotations_are_refused_and_removed_ones_go(herd_operator, kubectl: Kubectl):
    """The ingress-nginx snippet family is refused under the chart's defaults (Degraded, named);
    an annotation or TLS removed from the spec leaves the live Ingress too."""
    route = (
        "  route: {ingress: {host: web.example.com, tlsSecretName: web-tls, annotations: "
        "{team: a, nginx.ingress.kubernetes.io/server-snippet: 'return 200;'}}}\n"
    )
    kubectl.apply(SIMPLE.format(name="web", image="web:1", replicas=1) + route)
    ws = wait_ready(kubectl, "web")
    degraded = condition(ws, "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "AnnotationNotAllowed")
    assert "nginx.ingress.kubernetes.io/server-snippet" in degraded["message"]
    notes = kubectl.get("ingress", "web")["metadata"]["annotations"]
    assert notes["team"] == "a" and "nginx.ingress.kubernetes.io/server-snippet" not in notes
    assert kubectl.get("ingress", "web")["spec"]["tls"]

    kubectl.apply(
        SIMPLE.format(name="web", image="web:1", replicas=1)
        + "  route: {ingress: {host: web.example.com}}\n"
    )

    def gone() -> bool:
        ingress = kubectl.get("ingress", "web")
        return "team" not in ingress["metadata"].get("annotations", {}) and not ingress["spec"].get(
            "tls"
        )

    eventually(gone, timeout=20, what="the removed annotation and TLS gone from the Ingress")
    eventually(
        lambda: condition(kubectl.get("webservice", "web"), "Degraded")["status"] == "False",
        timeout=20,
        what="no longer Degraded",
    )


def test_pod_fields_added_by_hand_are_removed(herd_operator, kubectl: Kubectl):
    """Server-side apply leaves other managers' fields alone; Herd removes the ones in the pod
    spec it does not render: here a hostNetwork and a sidecar added with kubectl patch."""
    apply_simple(kubectl)
    wait_ready(kubectl, "web")
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "hostNetwork": True,
                    "containers": [{"name": "sidecar", "image": "evil:1"}],
                }
            }
        }
    }
    kubectl.run("patch", "deployment", "web", "--type", "strategic", "-p", json.dumps(patch))

    def clean() -> bool:
        pod = kubectl.get("deployment", "web")["spec"]["template"]["spec"]
        return not pod.get("hostNetwork") and [c["name"] for c in pod["containers"]] == ["app"]

    eventually(clean, timeout=20, what="the hand-added pod fields removed")
    events = kubectl.items("events")
    assert any(e.get("reason") == "ForeignFieldsRemoved" for e in events), events


def test_idle_operator_makes_no_writes(kubectl_binary):
    """An operator of its own, serving one namespace, so its write counter sees only this
    WebService (other tests' rollouts and autoscalers write on purpose)."""
    from bench.harness import operator

    namespace = f"idle-{uuid.uuid4().hex[:6]}"
    admin = Kubectl(kubectl_binary)
    operator.install_crd(admin)
    admin.create_namespace(namespace)
    kubectl = Kubectl(kubectl_binary, namespace)
    running = operator.start(
        liveness_port=18480,
        metrics_port=18490,
        extra_args=["--namespace", namespace],
        log_name="operator-idle.log",
    )
    try:
        apply_simple(kubectl, replicas=2)
        wait_ready(kubectl, "web")
        eventually(
            lambda: (
                condition(kubectl.get("webservice", "web"), "Progressing").get("reason")
                == "RolloutComplete"
            ),
            what="rollout complete",
        )
        time.sleep(3)  # let the last status events settle

        def versions() -> dict[str, str]:
            return {
                kind: kubectl.get(kind, "web")["metadata"]["resourceVersion"]
                for kind in ("webservice", "deployment", "service", "poddisruptionbudget")
            }

        before_writes, before_versions = running.writes(), versions()
        time.sleep(15)  # idle: late status events, kopf's watches, nothing to write
        assert running.writes() == before_writes, running.log_tail()
        assert versions() == before_versions
    finally:
        admin.run("delete", "namespace", namespace, "--wait=false", namespaced=False)
        operator.stop(running)


def test_events_tell_the_user_what_happened(herd_operator, kubectl: Kubectl):
    apply_simple(kubectl)
    wait_ready(kubectl, "web")

    def reasons():
        events = json.loads(
            kubectl.run(
                "get", "events", "-o", "json", "--field-selector", "involvedObject.kind=WebService"
            ).stdout
        )["items"]
        return {e["reason"] for e in events}

    eventually(
        lambda: {"Created", "Ready"} <= reasons(), timeout=30, what="Created and Ready events"
    )


def _chart_role_rules(name: str) -> list[dict]:
    """The rules of one of the chart's user ClusterRoles, as the chart ships them."""
    text = (REPO / "charts/herd/templates/user-roles.yaml").read_text()
    plain = "\n".join(line for line in text.splitlines() if "{{" not in line)
    documents = yaml.safe_load_all(plain)
    return next(d for d in documents if d and d["metadata"]["name"] == name)["rules"]


def test_what_a_promoter_writes_to_status_reaches_no_deployment(herd_operator, kubectl: Kubectl):
    """herd-promoter may patch webservices/status, for status.intent. A forged phase and stable
    image written there, with the API server's own authorization, reach no Deployment, and the
    operator rewrites its report."""
    promoter = "promoter@example.com"
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "herd-promoter"},
        "rules": _chart_role_rules("herd-promoter"),
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "herd-promoter"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "herd-promoter",
        },
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": promoter}],
    }
    kubectl.apply(yaml.safe_dump_all([role, binding]))
    plan = "  canary: {steps: [{setWeight: 20}, {pause: {}}]}\n"
    kubectl.apply(SIMPLE.format(name="web", image="web:1", replicas=2) + plan)
    eventually(
        lambda: kubectl.get("webservice", "web").get("status", {}).get("stableSpec"),
        timeout=60,
        what="the stable version kept",
    )
    kubectl.apply(SIMPLE.format(name="web", image="web:2", replicas=2) + plan)
    eventually(
        lambda: (
            kubectl.get("webservice", "web")["status"].get("canary", {}).get("phase") == "Paused"
        ),
        timeout=60,
        what="the canary paused for herd promote",
    )
    forged = {
        "status": {
            "canary": {"phase": "Promoting", "stepIndex": 2},
            "stableSpec": {"image": "evil:1", "app": "app.main:app"},
        }
    }
    as_promoter = ["--as", promoter, "--type", "merge", "-p", json.dumps(forged)]
    kubectl.run("patch", "webservice", "web", "--subresource", "status", *as_promoter)
    refused = kubectl.run("patch", "webservice", "web", *as_promoter, check=False)
    assert refused.returncode != 0 and "forbidden" in refused.stderr.lower()

    eventually(
        lambda: kubectl.get("webservice", "web")["status"]["canary"]["phase"] == "Paused",
        timeout=20,
        what="the forged phase rewritten",
    )
    time.sleep(3)
    image = kubectl.get("deployment", "web")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "web:1"
    assert kubectl.exists("deployment", "web-canary")

    # Before any rollout nothing would rewrite a forged report: it is removed instead, the
    # promoter's intent stays.
    apply_simple(kubectl, name="api")
    wait_ready(kubectl, "api")
    intent = {"action": "retry", "id": "i-1"}
    forged = {"status": {"canary": {"phase": "RolledBack"}, "intent": intent}}
    as_promoter[-1] = json.dumps(forged)
    kubectl.run("patch", "webservice", "api", "--subresource", "status", *as_promoter)
    eventually(
        lambda: "canary" not in kubectl.get("webservice", "api")["status"],
        timeout=20,
        what="the forged report removed",
    )
    assert kubectl.get("webservice", "api")["status"]["intent"] == intent
    events = json.loads(kubectl.run("get", "events", "-o", "json").stdout)["items"]
    assert any(e["reason"] == "StatusRemoved" for e in events)
