"""`skaffold run -p local` on this machine, as `skaffold run -p kind` on a laptop: buildah builds
the images, the cluster's loopback registry takes them, the chart's operator and the examples
run on the real node, and the examples answer through the ingress."""

from __future__ import annotations

import json
import os
import subprocess

from bench.harness.cluster import KUBECONFIG, REPO, Kubectl, eventually
from tests.support import real_node


def skaffold(kubectl_binary, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(kubectl_binary.parent / "skaffold"), *args, "-p", "local", "--update-check=false"],
        cwd=REPO,
        env={
            **os.environ,
            "KUBECONFIG": str(KUBECONFIG),
            # skaffold calls helm; the tools' bin holds the pinned one.
            "PATH": f"{kubectl_binary.parent}:{os.environ['PATH']}",
        },
        text=True,
        capture_output=True,
        timeout=600,
    )
    assert done.returncode == 0, f"skaffold {' '.join(args)}:\n{done.stdout[-3000:]}{done.stderr}"
    return done


def test_skaffold_run_local_deploys_what_it_built_and_delete_removes_it(kubectl_binary):
    default = Kubectl(kubectl_binary, "default")
    skaffold(kubectl_binary, "run")
    try:
        (operator,) = Kubectl(kubectl_binary, "herd-system").items(
            "pods", "app.kubernetes.io/name=herd"
        )
        assert operator["spec"]["nodeName"] == real_node.NODE
        assert operator["spec"]["containers"][0]["image"].startswith("127.0.0.1:15000/")
        default.run("wait", "--for", "condition=Ready", "webservices", "--all", "--timeout=120s")
        for host, app in (("shop.localtest.me", "flask"), ("catalog.localtest.me", "fastapi")):
            eventually(lambda h=host: real_node.get(h) == 200, timeout=30, what=f"{host} answering")
            status, body = real_node.request(host)
            assert status == 200 and json.loads(body) == {"message": f"hello from {app}"}, body
        images = {ws["spec"]["image"] for ws in default.items("webservices")}
        assert all(image.startswith("127.0.0.1:15000/") for image in images), images
    finally:
        skaffold(kubectl_binary, "delete")
    eventually(
        lambda: (
            not default.items("webservices")
            and not Kubectl(kubectl_binary, "herd-system").items("deployments")
        ),
        timeout=60,
        what="the releases removed",
    )
