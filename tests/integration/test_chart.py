"""The Helm chart: lint, schema, server-side dry-run, install/test/upgrade/uninstall, and the
operator running with exactly the RBAC the chart grants."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator

import pytest
import yaml

from bench.harness import operator as herd_operator
from bench.harness.cluster import KUBECONFIG, REPO, Kubectl, eventually, install_crds, pins

CHART = REPO / "charts" / "herd"


@pytest.fixture(scope="module")
def helm(kubectl_binary):
    binary = kubectl_binary.parent / "helm"

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(binary), *args],
            text=True,
            capture_output=True,
            env={**os.environ, "KUBECONFIG": str(KUBECONFIG)},
            timeout=300,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done

    return run


@pytest.fixture
def release_namespace(kubectl_binary) -> Iterator[Kubectl]:
    name = f"herd-chart-{uuid.uuid4().hex[:6]}"
    admin = Kubectl(kubectl_binary)
    admin.create_namespace(name)
    yield Kubectl(kubectl_binary, name)
    admin.run("delete", "namespace", name, "--wait=false", namespaced=False, check=False)


@pytest.mark.parametrize(
    "values",
    [
        [],
        ["--set", "replicaCount=2"],
        ["--set", "watchNamespaces={a,b}", "--set", "replicaCount=2"],
    ],
)
def test_lint(helm, values):
    helm("lint", "--strict", str(CHART), *values)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["--set", "replicaCount=0"], "replicaCount"),
        (["--set", "settings.logFormat=xml"], "logFormat"),
        (["--set", "settings.prometheusURL=prometheus:9090"], "prometheusURL"),
        (["--set", "surprise=1"], "surprise"),
    ],
)
def test_values_schema_rejects_bad_values(helm, values, message):
    done = helm("template", "t", str(CHART), *values, check=False)
    assert done.returncode != 0 and message in done.stderr


@pytest.mark.parametrize(
    "values", [[], ["--set", "watchNamespaces={default}", "--set", "replicaCount=2"]]
)
def test_rendered_chart_passes_server_side_dry_run(helm, release_namespace, values):
    install_crds(release_namespace, str(CHART / "crds"), "webservices.herd.dev")
    rendered = helm(
        "template",
        "dry",
        str(CHART),
        "--namespace",
        release_namespace.namespace,
        # Offline, helm assumes an old Kubernetes; render for the one the dry-run goes to.
        "--kube-version",
        pins()["KUBERNETES_VERSION"],
        *values,
    ).stdout
    done = release_namespace.run(
        "apply", "--dry-run=server", "-f", "-", stdin=rendered, namespaced=False
    )
    kinds = {line.split("/")[0] for line in done.stdout.split()}
    assert "deployment.apps" in kinds or any("deployment" in k for k in kinds), done.stdout


def test_install_test_upgrade_uninstall(helm, release_namespace):
    ns = release_namespace.namespace
    release = "herd"
    helm(
        "install",
        release,
        str(CHART),
        "--namespace",
        ns,
        "--wait",
        "--timeout",
        "120s",
        "--set",
        "image.repository=registry.local/herd-operator",
    )
    try:
        deployment = release_namespace.get("deployment", release)
        assert deployment["status"]["availableReplicas"] == 1
        args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        assert "--standalone" in args
        assert release_namespace.exists("service", f"{release}-metrics")
        helm("test", release, "--namespace", ns, "--timeout", "120s")

        helm(
            "upgrade",
            release,
            str(CHART),
            "--namespace",
            ns,
            "--wait",
            "--timeout",
            "120s",
            "--reuse-values",
            "--set",
            "replicaCount=2",
        )
        deployment = release_namespace.get("deployment", release)
        assert deployment["status"]["availableReplicas"] == 2
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert f"--peering={release}" in container["args"]
        # The replicas' names in the peering status (kopf's identity) are their pods' names.
        pod_id = next(env for env in container["env"] if env["name"] == "POD_ID")
        assert pod_id["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
        release_namespace.run("get", "clusterkopfpeering", release, namespaced=False)
    finally:
        helm("uninstall", release, "--namespace", ns, "--wait", "--timeout", "120s")
    eventually(lambda: not release_namespace.exists("deployment", release), what="uninstalled")
    assert (
        release_namespace.run(
            "get", "clusterrole", "herd-view", namespaced=False, check=False
        ).returncode
        != 0
    )


def _service_account_kubeconfig(admin: Kubectl, namespace: str, account: str) -> str:
    token = admin.run(
        "create", "token", account, "-n", namespace, "--duration", "1h", namespaced=False
    ).stdout.strip()
    config = yaml.safe_load(KUBECONFIG.read_text())
    config["users"] = [{"name": account, "user": {"token": token}}]
    config["contexts"][0]["context"]["user"] = account
    path = KUBECONFIG.parent / f"{namespace}-{account}.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return str(path)


@pytest.mark.parametrize("mode", ["cluster", "namespaced"])
def test_operator_runs_with_exactly_the_charts_rbac(helm, release_namespace, mode):
    """The operator, authenticated as the chart's ServiceAccount, serves a WebService: the
    granted rules suffice. Secrets stay out of reach."""
    ns = release_namespace.namespace
    admin = Kubectl(release_namespace.binary)
    # `auth can-i` answers "no" for a resource the API server does not know.
    install_crds(admin, str(admin.binary.parent / "keda-crds.yaml"), "scaledobjects.keda.sh")
    workload_ns = f"rbac-{mode}-{uuid.uuid4().hex[:6]}"
    admin.create_namespace(workload_ns)
    values = ["--set", f"watchNamespaces={{{workload_ns}}}"] if mode == "namespaced" else []
    helm("install", "herd", str(CHART), "--namespace", ns, *values)
    try:
        account = f"system:serviceaccount:{ns}:herd"
        for verb, resource, allowed in (
            ("get", "secrets", "no"),
            ("list", "secrets", "no"),
            ("patch", "deployments", "yes"),
            ("patch", "webservices.herd.dev/status", "yes"),
            ("patch", "webservices.herd.dev/scale", "yes"),
            ("create", "scaledobjects.keda.sh", "yes"),
            ("update", "webservices.herd.dev", "no"),
        ):
            answer = admin.run(
                "auth",
                "can-i",
                verb,
                resource,
                "-n",
                workload_ns,
                "--as",
                account,
                namespaced=False,
                check=False,
            ).stdout.strip()
            assert answer == allowed, (verb, resource, answer)

        kubeconfig = _service_account_kubeconfig(admin, ns, "herd")
        scope = ["--namespace", workload_ns] if mode == "namespaced" else []
        running = herd_operator.start(
            liveness_port=18380,
            metrics_port=18390,
            kubeconfig=kubeconfig,
            extra_args=scope,
            log_name=f"operator-rbac-{mode}.log",
        )
        try:
            workload = Kubectl(release_namespace.binary, workload_ns)
            # With a canary: the canary controller's timer serves it.
            workload.apply(
                "apiVersion: herd.dev/v1alpha1\nkind: WebService\n"
                "metadata: {name: web}\nspec: {image: 'web:1', app: 'a.b:app',"
                " replicas: 2, route: {ingress: {host: web.example.com}},"
                " canary: {steps: [{setWeight: 50}]}}\n"
            )
            workload.run("wait", "--for", "condition=Ready", "webservice/web", "--timeout=60s")
            for kind in ("deployment", "service", "ingress", "poddisruptionbudget"):
                assert workload.exists(kind, "web"), kind
            events = json.loads(workload.run("get", "events", "-o", "json").stdout)["items"]
            assert any(e["reason"] == "Created" for e in events)
            log = running.log_tail(400)
            assert "Forbidden" not in log, log  # kopf: APIForbiddenError; Herd: 403 Forbidden

            # kopf's timers would put a finalizer on it, and in namespaced mode the namespace's
            # deletion takes the operator's RoleBinding first: the namespace would hang.
            assert not workload.get("webservice", "web")["metadata"].get("finalizers")
            admin.run("delete", "namespace", workload_ns, "--wait=false", namespaced=False)
            eventually(
                lambda: not admin.exists("namespace", workload_ns),
                timeout=90,
                what=f"namespace {workload_ns} deleted",
            )
        finally:
            herd_operator.stop(running)
    finally:
        helm("uninstall", "herd", "--namespace", ns, "--wait", "--timeout", "120s")
        admin.run("delete", "namespace", workload_ns, "--wait=false", namespaced=False, check=False)
