"""--preload: the app imported in the arbiter, its objects frozen before the workers fork."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.harness.appservers import GTHREAD, free_port, get, gunicorn_args, herd_server

FROZEN_APP = "tests.dataplane.sample_apps:frozen_objects_wsgi"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("preload", [False, True], ids=["imported-per-worker", "preloaded"])
def test_a_preloaded_apps_objects_are_frozen_in_every_worker(tmp_path: Path, preload: bool):
    port = free_port()
    args = gunicorn_args(FROZEN_APP, port, GTHREAD, 2)
    if preload:
        args.insert(-1, "--preload")
    with herd_server(args, tmp_path, port):
        frozen = {int(get(port, "/").body) for _ in range(20)}
    print(f"objects frozen per worker: {sorted(frozen)}")
    if preload:
        assert min(frozen) > 10_000, "the arbiter's heap, app and gunicorn included"
    else:
        assert frozen == {0}
