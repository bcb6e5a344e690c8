"""The local control plane behaves like a cluster: the properties Herd's own tests rely on."""

from __future__ import annotations

import json

from bench.harness.cluster import Kubectl, eventually

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      # The tests' namespaces enforce the restricted Pod Security profile.
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
        seccompProfile: {type: RuntimeDefault}
      containers:
      - name: web
        image: registry.example/web:1
        ports: [{containerPort: 8000}]
        securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
"""

WIDGET_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.test.herd.dev}
spec:
  group: test.herd.dev
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale:
        specReplicasPath: .spec.replicas
        statusReplicasPath: .status.replicas
        labelSelectorPath: .status.selector
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-validations:
            - rule: self.replicas <= self.maxReplicas
              message: replicas must not exceed maxReplicas
            properties:
              replicas: {type: integer, minimum: 0}
              maxReplicas: {type: integer, default: 10}
          status:
            type: object
            properties:
              replicas: {type: integer}
              selector: {type: string}
"""


def ready_pods(kubectl: Kubectl, selector: str) -> list[dict]:
    pods = kubectl.items("pods", selector)
    return [
        pod
        for pod in pods
        if pod["status"].get("phase") == "Running"
        and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in pod["status"].get("conditions", [])
        )
    ]


def test_nodes_are_ready_kwok_nodes_and_the_tainted_real_node(kubectl: Kubectl) -> None:
    nodes = kubectl.get("nodes", namespaced=False)["items"]
    kwok = [n for n in nodes if n["metadata"]["annotations"].get("kwok.x-k8s.io/node") == "fake"]
    real = [n for n in nodes if n not in kwok]
    assert len(kwok) >= 3
    assert [n["metadata"]["name"] for n in real] == ["herd-node"]
    # Tainted: nothing lands there unless its namespace is placed on it.
    assert {"key": "herd.dev/real-node", "value": "true", "effect": "NoSchedule"} in real[0][
        "spec"
    ]["taints"]
    assert real[0]["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")
    for node in nodes:
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True", node["metadata"]["name"]


def test_server_reports_the_pinned_kubernetes_version(kubectl: Kubectl) -> None:
    from bench.harness.cluster import pins

    version = json.loads(kubectl.run("version", "-o", "json", namespaced=False).stdout)
    assert version["serverVersion"]["gitVersion"] == pins()["KUBERNETES_VERSION"]
    assert version["clientVersion"]["gitVersion"] == pins()["KUBERNETES_VERSION"]


def test_deployment_pods_become_ready_on_kwok_nodes(kubectl: Kubectl) -> None:
    kubectl.apply(DEPLOYMENT)
    pods = eventually(
        lambda: len(ready_pods(kubectl, "app=web")) == 3 and ready_pods(kubectl, "app=web"),
        what="3 Ready pods",
    )
    assert {pod["spec"]["nodeName"] for pod in pods} <= {
        node["metadata"]["name"] for node in kubectl.get("nodes", namespaced=False)["items"]
    }
    assert all(pod["status"].get("podIP") for pod in pods)
    replica_sets = kubectl.items("replicasets", "app=web")
    assert len(replica_sets) == 1
    assert replica_sets[0]["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    eventually(
        lambda: kubectl.get("deployment", "web")["status"].get("availableReplicas") == 3,
        what="Deployment available",
    )


def test_deleting_an_owner_garbage_collects_its_children(kubectl: Kubectl) -> None:
    kubectl.apply(DEPLOYMENT)
    eventually(lambda: len(kubectl.items("pods", "app=web")) == 3, what="3 pods")
    kubectl.run("delete", "deployment", "web", "--wait=false")
    eventually(lambda: not kubectl.items("replicasets", "app=web"), what="ReplicaSets collected")
    eventually(lambda: not kubectl.items("pods", "app=web"), what="Pods collected")


def test_deleting_an_owner_collects_objects_it_owns_by_reference(kubectl: Kubectl) -> None:
    kubectl.run("create", "configmap", "owner")
    uid = kubectl.get("configmap", "owner")["metadata"]["uid"]
    kubectl.apply(f"""
apiVersion: v1
kind: ConfigMap
metadata:
  name: owned
  ownerReferences:
  - {{apiVersion: v1, kind: ConfigMap, name: owner, uid: {uid}}}
""")
    kubectl.run("delete", "configmap", "owner")
    eventually(lambda: not kubectl.exists("configmap", "owned"), what="owned ConfigMap collected")


def test_crd_with_scale_subresource_accepts_kubectl_scale(kubectl: Kubectl) -> None:
    kubectl.run("apply", "-f", "-", stdin=WIDGET_CRD, namespaced=False)
    eventually(
        lambda: kubectl.run("get", "widgets", check=False).returncode == 0, what="Widget CRD served"
    )
    kubectl.apply(
        "apiVersion: test.herd.dev/v1\nkind: Widget\nmetadata: {name: w}\nspec: {replicas: 1}\n"
    )
    kubectl.run("scale", "widget/w", "--replicas", "3")
    widget = kubectl.get("widget", "w")
    assert widget["spec"] == {"replicas": 3, "maxReplicas": 10}

    kubectl.run(
        "patch",
        "widget",
        "w",
        "--subresource",
        "status",
        "--type",
        "merge",
        "-p",
        '{"status": {"replicas": 3, "selector": "app=w"}}',
    )
    scale = json.loads(
        kubectl.run(
            "get",
            "--raw",
            f"/apis/test.herd.dev/v1/namespaces/{kubectl.namespace}/widgets/w/scale",
            namespaced=False,
        ).stdout
    )
    assert scale["status"] == {"replicas": 3, "selector": "app=w"}
    # A spec write cannot change status: the status subresource owns it.
    kubectl.run("patch", "widget", "w", "--type", "merge", "-p", '{"status": {"replicas": 9}}')
    assert kubectl.get("widget", "w")["status"]["replicas"] == 3


def test_crd_cel_rules_reject_bad_objects(kubectl: Kubectl) -> None:
    kubectl.run("apply", "-f", "-", stdin=WIDGET_CRD, namespaced=False)
    eventually(
        lambda: kubectl.run("get", "widgets", check=False).returncode == 0, what="Widget CRD served"
    )
    rejected = kubectl.run(
        "apply",
        "-f",
        "-",
        check=False,
        stdin=(
            "apiVersion: test.herd.dev/v1\nkind: Widget\nmetadata: {name: bad}\n"
            "spec: {replicas: 11, maxReplicas: 10}\n"
        ),
    )
    assert rejected.returncode != 0
    assert "replicas must not exceed maxReplicas" in rejected.stderr
