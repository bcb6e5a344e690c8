"""The Helm chart: lint, schema, server-side dry-run, install/test/upgrade/uninstall, and the
operator running with exactly the RBAC the chart grants."""

from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def _operator_as_the_charts_account(
    helm, release_namespace: Kubectl, mode: str, port: int, extra_args: tuple[str, ...] = ()
) -> Iterator[tuple[Kubectl, herd_operator.Operator]]:
    """The chart installed (cluster-wide, or watching one namespace), and the operator running
    authenticated as its ServiceAccount; the namespace for WebServices, and the operator."""
    ns = release_namespace.namespace
    admin = Kubectl(release_namespace.binary)
    # `auth can-i` answers "no" for a resource the API server does not know.
    install_crds(admin, str(admin.binary.parent / "keda-crds.yaml"), "scaledobjects.keda.sh")
    workload_ns = f"rbac-{mode}-{uuid.uuid4().hex[:6]}"
    admin.create_namespace(workload_ns)
    values = ["--set", f"watchNamespaces={{{workload_ns}}}"] if mode == "namespaced" else []
    helm("install", "herd", str(CHART), "--namespace", ns, *values)
    try:
        kubeconfig = _service_account_kubeconfig(admin, ns, "herd")
        scope = ["--namespace", workload_ns] if mode == "namespaced" else []
        running = herd_operator.start(
            liveness_port=port,
            metrics_port=port + 10,
            kubeconfig=kubeconfig,
            extra_args=[*scope, *extra_args],
            log_name=f"operator-rbac-{mode}-{port}.log",
        )
        try:
            yield Kubectl(release_namespace.binary, workload_ns), running
        finally:
            herd_operator.stop(running)
    finally:
        helm("uninstall", "herd", "--namespace", ns, "--wait", "--timeout", "120s")
        admin.run("delete", "namespace", workload_ns, "--wait=false", namespaced=False, check=False)


@pytest.mark.parametrize("mode", ["cluster", "namespaced"])
def test_operator_runs_with_exactly_the_charts_rbac(helm, release_namespace, mode):
    """The operator, authenticated as the chart's ServiceAccount, serves a WebService: the
    granted rules suffice. Secrets stay out of reach."""
    admin = Kubectl(release_namespace.binary)
    account = f"system:serviceaccount:{release_namespace.namespace}:herd"
    with _operator_as_the_charts_account(helm, release_namespace, mode, 18380) as (
        workload,
        running,
    ):
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
                workload.namespace,
                "--as",
                account,
                namespaced=False,
                check=False,
            ).stdout.strip()
            assert answer == allowed, (verb, resource, answer)

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
        # kopf: APIForbiddenError; Herd: 403 Forbidden. A cluster-wide operator also serves
        # other tests' namespaces, and an Event into one being deleted is refused with
        # Forbidden (NamespaceTerminating): that is no RBAC the chart lacks.
        refused = [
            line
            for line in running.log_tail(400).splitlines()
            if "Forbidden" in line and "NamespaceTerminating" not in line
        ]
        assert refused == []

        # kopf's timers would put a finalizer on it, and in namespaced mode the namespace's
        # deletion takes the operator's RoleBinding first: the namespace would hang.
        assert not workload.get("webservice", "web")["metadata"].get("finalizers")
        admin.run("delete", "namespace", workload.namespace, "--wait=false", namespaced=False)
        eventually(
            lambda: not admin.exists("namespace", workload.namespace),
            timeout=90,
            what=f"namespace {workload.namespace} deleted",
        )


def _degraded(workload: Kubectl, name: str) -> dict:
    conditions = workload.get("webservice", name).get("status", {}).get("conditions", [])
    return next((c for c in conditions if c["type"] == "Degraded"), {})


def test_rbac_lost_for_one_kind_mid_run_degrades_that_kind_only(helm, release_namespace):
    """The cluster admin takes the Ingress rule from the operator's Role while it runs: each
    WebService is Degraded naming the Ingress, its Deployment and Service are still served, and
    once the rule is back the next retry heals it with nobody touching the WebService."""
    web = (
        "apiVersion: herd.dev/v1alpha1\nkind: WebService\nmetadata: {{name: {name}}}\n"
        "spec: {{image: 'web:1', app: 'a.b:app', replicas: {replicas},"
        " route: {{ingress: {{host: {name}.example.com}}}}}}\n"
    )
    retry = ("--retry-interval", "2")
    with _operator_as_the_charts_account(helm, release_namespace, "namespaced", 18780, retry) as (
        workload,
        running,
    ):
        workload.apply(web.format(name="web", replicas=1))
        workload.run("wait", "--for", "condition=Ready", "webservice/web", "--timeout=60s")
        role = workload.get("role", "herd")
        index = next(i for i, r in enumerate(role["rules"]) if "ingresses" in r["resources"])
        ingress_rule = role["rules"][index]
        workload.run(
            "patch", "role", "herd", "--type", "json",
            "-p", json.dumps([{"op": "remove", "path": f"/rules/{index}"}]),
        )  # fmt: skip

        workload.apply(web.format(name="web", replicas=2))
        workload.apply(web.format(name="api", replicas=1))
        for name in ("web", "api"):
            degraded = eventually(
                lambda name=name: (
                    (c := _degraded(workload, name)).get("reason") == "Forbidden" and c
                ),
                timeout=60,
                what=f"{name} Degraded for the Ingress",
            )
            assert degraded["status"] == "True"
            assert f"Ingress {name}" in degraded["message"], degraded
        assert workload.get("deployment", "web")["spec"]["replicas"] == 2
        assert workload.exists("deployment", "api") and workload.exists("service", "api")
        assert not workload.exists("ingress", "api")
        # Until their pods settle, the Deployments' own events reconcile them too.
        for name in ("web", "api"):
            workload.run("rollout", "status", f"deployment/{name}", "--timeout=60s")

        workload.run(
            "patch", "role", "herd", "--type", "json",
            "-p", json.dumps([{"op": "add", "path": f"/rules/{index}", "value": ingress_rule}]),
        )  # fmt: skip
        for name in ("web", "api"):
            eventually(
                lambda name=name: _degraded(workload, name).get("status") == "False",
                timeout=60,
                what=f"{name} healed by a retry",
            )
        assert workload.exists("ingress", "api")
        assert running.counter("herd_reconciles_total", only={"trigger": "retry"}) >= 2
