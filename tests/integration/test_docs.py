"""Every command in the docs works: blocks marked `<!-- doctest: local -->` or
`<!-- doctest: local-cluster -->` run here (the latter against the local cluster, in the
test's namespace); every other shell block must at least name files that exist."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass

import pytest
import yaml

from bench.harness.cluster import KUBECONFIG, REPO, Kubectl

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BLOCK = re.compile(r"(?:<!-- doctest: (?P<mode>[a-z-]+) -->\n)?```sh\n(?P<body>.*?)```", re.S)
REPO_PATH = re.compile(
    r"(?<![\w./-])((?:hack|charts|manifests|docs|apps|bench|operator)/[\w./-]*\w)"
)


@dataclass(frozen=True)
class Block:
    doc: str
    line: int
    mode: str | None
    body: str


def blocks() -> list[Block]:
    found = []
    for doc in DOCS:
        text = doc.read_text()
        for match in BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append(Block(doc.name, line, match.group("mode"), match.group("body")))
    return found


ALL = blocks()
RUNNABLE = [b for b in ALL if b.mode]


def test_the_docs_have_runnable_examples():
    assert {b.mode for b in RUNNABLE} == {"local", "local-cluster"}


@pytest.mark.parametrize("block", ALL, ids=[f"{b.doc}:{b.line}" for b in ALL])
def test_files_named_in_commands_exist(block: Block):
    for path in REPO_PATH.findall(block.body):
        assert (REPO / path).exists(), f"{block.doc}:{block.line} names {path}"


@pytest.mark.parametrize("block", RUNNABLE, ids=[f"{b.doc}:{b.line}" for b in RUNNABLE])
def test_runnable_blocks_run(block: Block, kubectl: Kubectl, herd_operator, tmp_path):
    # The cluster blocks run in this test's namespace, which the test operator serves.
    config = yaml.safe_load(KUBECONFIG.read_text())
    config["contexts"][0]["context"]["namespace"] = kubectl.namespace
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block.body],
        cwd=REPO,
        env=env,
        text=True,
        capture_output=True,
        timeout=300,
    )
    assert done.returncode == 0, f"{block.doc}:{block.line}\n{done.stdout}\n{done.stderr}"
