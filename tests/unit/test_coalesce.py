"""Per-key serialisation and coalescing of reconciliations."""

from __future__ import annotations

import threading
import time

from herd.coalesce import Coalescer


def test_runs_for_one_key_never_overlap_and_bursts_fold():
    coalescer = Coalescer()
    running, overlaps, runs = [0], [0], []
    gate = threading.Event()

    def work():
        running[0] += 1
        overlaps[0] = max(overlaps[0], running[0])
        gate.wait(2)
        runs.append(1)
        running[0] -= 1
        return "done"

    first = threading.Thread(target=coalescer.run, args=("a", work))
    first.start()
    time.sleep(0.05)  # the first run holds the key
    results = []
    burst = [
        threading.Thread(target=lambda: results.append(coalescer.run("a", work))) for _ in range(5)
    ]
    for t in burst:
        t.start()
    time.sleep(0.05)
    gate.set()
    for t in [first, *burst]:
        t.join(5)
    assert overlaps[0] == 1
    assert len(runs) == 2  # the first, and one run standing in for the whole burst
    assert results.count("done") == 1 and results.count(None) == 4


def test_different_keys_run_side_by_side():
    coalescer = Coalescer()
    both = threading.Barrier(2, timeout=2)
    done = []
    threads = [
        threading.Thread(target=coalescer.run, args=(k, lambda: done.append(both.wait())))
        for k in ("a", "b")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert len(done) == 2


def test_forget_drops_idle_keys_only():
    coalescer = Coalescer()
    coalescer.run("a", lambda: None)
    coalescer.forget("a")
    assert coalescer.run("a", lambda: 1) == 1
