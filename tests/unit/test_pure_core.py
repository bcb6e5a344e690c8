"""The pure core runs where no I/O library is installed: offline rendering and every decision
need neither an HTTP client, nor kopf, nor the Kubernetes client."""

import subprocess
import sys
import textwrap

#: The modules the import contract in pyproject.toml calls pure (packages by one module each).
PURE = (
    "herd.api",
    "herd.apidocs",
    "herd.crd",
    "herd.desired",
    "herd.status",
    "herd.metric_sources",
    "herd.service_metrics",
    "herd.essence",
    "herd.autoscaling.decide",
    "herd.autoscaling.keda",
    "herd.rollout.analysis",
    "herd.rollout.machine",
    "herd.rollout.views",
    "herd.routing",
    "herd.serving.workload",
    "herd.serving.pod_monitor",
    "herd.validation",
    "herd.dashboard.views",
    "herd.dashboard.analysis",
    "herd.election",
)
ABSENT = (
    "aiohttp",
    "kopf",
    "kubernetes",
    "urllib3",
    "prometheus_client",
    "fastapi",
    "starlette",
    "uvicorn",
    "jinja2",
)


def run_without_io(code: str) -> subprocess.CompletedProcess[str]:
    """`code` in a fresh interpreter where importing any of ABSENT fails, as if uninstalled."""
    guard = textwrap.dedent(
        f"""
        import sys

        class Absent:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {ABSENT!r}:
                    raise ModuleNotFoundError(f"No module named {{name!r}} (absent here)")
                return None

        sys.meta_path.insert(0, Absent())
        """
    )
    script = guard + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)


def test_the_pure_core_imports_and_renders_with_the_io_libraries_absent():
    done = run_without_io(
        f"""
        import importlib
        for module in {PURE!r}:
            importlib.import_module(module)
        from herd import desired, model
        body = {{"metadata": {{"name": "web", "namespace": "ns"}},
                 "spec": {{"image": "web:1", "app": "app:app",
                          "route": {{"ingress": {{"host": "web.example.com"}}}}}}}}
        print(len(desired.desired(model.parse(body)).objects))
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "3"  # Deployment, Service, Ingress


def test_the_guard_hides_the_libraries():
    """Else the test above proves nothing."""
    done = run_without_io("import herd.kube")
    assert done.returncode != 0 and "absent here" in done.stderr
