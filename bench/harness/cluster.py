"""Access to the local control plane for integration tests and benches: start it, kubectl, wait."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

REPO = pathlib.Path(__file__).resolve().parents[2]
STATE = REPO / ".cluster"
KUBECONFIG = STATE / "kubeconfig"


def pins() -> dict[str, str]:
    """The pinned tool versions of hack/versions.env."""
    lines = (REPO / "hack" / "versions.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


class ClusterUnavailable(RuntimeError):
    """The local control plane could not be started; the message says why."""


def _run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=REPO, text=True, capture_output=True, **kwargs)


def tools_bin() -> pathlib.Path:
    built = _run([str(REPO / "hack" / "build-tools.sh")])
    if built.returncode != 0:
        raise ClusterUnavailable(
            f"building the control-plane tools failed:\n{built.stderr[-4000:]}"
        )
    return pathlib.Path(built.stdout.strip())


def cluster_running() -> bool:
    return _run([str(REPO / "hack" / "cluster.sh"), "status"]).returncode == 0


def cluster_up() -> None:
    started = _run([str(REPO / "hack" / "cluster.sh"), "up"])
    if started.returncode != 0:
        raise ClusterUnavailable(f"hack/cluster.sh up failed:\n{started.stderr[-4000:]}")


def cluster_down() -> None:
    _run([str(REPO / "hack" / "cluster.sh"), "down"])


@dataclass
class Kubectl:
    """kubectl against the local cluster, in one namespace unless told otherwise."""

    binary: pathlib.Path
    namespace: str = "default"

    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(KUBECONFIG)}

    def run(
        self, *args: str, stdin: str | None = None, check: bool = True, namespaced: bool = True
    ) -> subprocess.CompletedProcess[str]:
        command = [str(self.binary), *(["-n", self.namespace] if namespaced else []), *args]
        done = subprocess.run(
            command, input=stdin, text=True, capture_output=True, env=self.env(), timeout=120
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
        return done

    def create_namespace(self, name: str) -> None:
        """A namespace whose pods the API server holds to the restricted Pod Security
        profile: a pod Herd renders that breaks it is refused, and the test sees it."""
        self.run("create", "namespace", name, namespaced=False)
        self.run(
            "label",
            "namespace",
            name,
            "pod-security.kubernetes.io/enforce=restricted",
            "pod-security.kubernetes.io/enforce-version=latest",
            namespaced=False,
        )

    def apply(self, manifest: str) -> None:
        self.run("apply", "-f", "-", stdin=manifest)

    def get(self, kind: str, name: str | None = None, *, namespaced: bool = True) -> dict[str, Any]:
        args = ["get", kind, *([name] if name else []), "-o", "json"]
        return json.loads(self.run(*args, namespaced=namespaced).stdout)

    def exists(self, kind: str, name: str) -> bool:
        return self.run("get", kind, name, check=False).returncode == 0

    def items(self, kind: str, selector: str | None = None) -> list[dict[str, Any]]:
        args = ["get", kind, "-o", "json", *(["-l", selector] if selector else [])]
        return json.loads(self.run(*args).stdout)["items"]


def eventually(
    check: Callable[[], Any], *, timeout: float = 60, interval: float = 0.5, what: str = "condition"
) -> Any:
    """Poll `check` until it returns a truthy value; fail with the last value or error."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except AssertionError as error:  # kubectl failed: the object may not exist yet
            last = error
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout}s; last: {last!r}")


def install_crds(kubectl: Kubectl, path: str, *crd_names: str) -> None:
    """Apply CRD manifests and wait until each is Established. (`kubectl wait` fails outright,
    rather than waiting, while a new CRD has no status conditions yet.)"""
    kubectl.run(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager",
        "herd-tests",
        "-f",
        path,
        namespaced=False,
    )
    query = '{.status.conditions[?(@.type=="Established")].status}'
    for name in crd_names:
        eventually(
            lambda n=name: (
                kubectl.run("get", "crd", n, "-o", f"jsonpath={query}", namespaced=False).stdout
                == "True"
            ),
            timeout=60,
            what=f"CRD {name} established",
        )
