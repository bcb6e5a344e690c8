"""skaffold.yaml and the examples chart, checked with the real tools against the local cluster.
(The Dockerfiles are linted by hadolint in `make lint`; no image can be built here.)"""

from __future__ import annotations

import os
import subprocess

import pytest
import yaml

from bench.harness.cluster import KUBECONFIG, REPO, Kubectl
from bench.harness.operator import install_crd

IMAGES = {
    "ghcr.io/herd-dev/herd-operator": "ghcr.io/herd-dev/herd-operator:ci",
    "ghcr.io/herd-dev/example-flask": "ghcr.io/herd-dev/example-flask:ci",
    "ghcr.io/herd-dev/example-fastapi": "ghcr.io/herd-dev/example-fastapi:ci",
}


@pytest.fixture(scope="module")
def tool(kubectl_binary):
    def run(name: str, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "KUBECONFIG": str(KUBECONFIG),
            "SKAFFOLD_UPDATE_CHECK": "false",
            "PATH": f"{kubectl_binary.parent}:{os.environ['PATH']}",
        }
        done = subprocess.run(
            [str(kubectl_binary.parent / name), *args],
            cwd=REPO,
            text=True,
            capture_output=True,
            env=env,
            timeout=300,
        )
        assert done.returncode == 0, f"{name} {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done

    return run


def test_skaffold_accepts_the_config(tool):
    done = tool("skaffold", "diagnose", "--yaml-only", "--update-check=false")
    config = yaml.safe_load(done.stdout)
    assert config["apiVersion"] == "skaffold/v4beta13"
    assert {a["image"] for a in config["build"]["artifacts"]} == set(IMAGES)
    releases = [r["name"] for r in config["manifests"]["helm"]["releases"]]
    assert releases == ["herd", "herd-examples"]  # the operator and its CRDs first
    kind = yaml.safe_load(
        tool(
            "skaffold", "diagnose", "--yaml-only", "--update-check=false", "--profile", "kind"
        ).stdout
    )
    assert kind["build"]["local"]["push"] is False  # images are loaded into kind, not pushed


def test_skaffold_render_is_accepted_by_the_cluster(tool, kubectl_binary):
    rendered = tool(
        "skaffold",
        "render",
        "--offline=true",
        "--digest-source=tag",
        "--update-check=false",
        "--images",
        ",".join(IMAGES.values()),
    ).stdout
    objects = [o for o in yaml.safe_load_all(rendered) if o]
    images = {
        c["image"]
        for o in objects
        if o["kind"] == "Deployment"
        for c in o["spec"]["template"]["spec"]["containers"]
    }
    assert images == {IMAGES["ghcr.io/herd-dev/herd-operator"]}
    webservice_images = {o["spec"]["image"] for o in objects if o["kind"] == "WebService"}
    assert webservice_images == {
        IMAGES["ghcr.io/herd-dev/example-flask"],
        IMAGES["ghcr.io/herd-dev/example-fastapi"],
    }
    admin = Kubectl(kubectl_binary)
    install_crd(admin)
    admin.run("create", "namespace", "herd-system", namespaced=False, check=False)
    admin.run("apply", "--dry-run=server", "-f", "-", stdin=rendered, namespaced=False)


def test_examples_chart_deploys_exactly_manifests_examples(tool):
    rendered = tool(
        "helm",
        "template",
        "examples",
        "charts/herd-examples",
        "--set",
        "images.shop=x/flask:1",
        "--set",
        "images.catalog=x/fastapi:1",
    ).stdout
    charted = {o["metadata"]["name"]: o for o in yaml.safe_load_all(rendered) if o}
    for path in (REPO / "manifests" / "examples").glob("*.yaml"):
        example = yaml.safe_load(path.read_text())
        from_chart = charted.pop(example["metadata"]["name"])
        assert from_chart["spec"].pop("imagePullPolicy") == "IfNotPresent"
        assert from_chart["spec"].pop("image").startswith("x/")
        example["spec"].pop("image")
        assert from_chart == example
    assert charted == {}
