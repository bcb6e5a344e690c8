"""herd_runtime.memory: readings of /proc (smaps_rollup, parents) and the memory report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from herd_runtime.memory import (
    REPORT_PREFIX,
    Memory,
    MemoryReport,
    children,
    memory,
    parent_of,
    parse_rollup,
)

ROLLUP = """\
55d0c0a8b000-7ffd6b5fe000 ---p 00000000 00:00 0                          [rollup]
Rss:               20480 kB
Pss:               12288 kB
Pss_Dirty:          8192 kB
Pss_Anon:           8192 kB
Shared_Clean:       6144 kB
Shared_Dirty:       4096 kB
Private_Clean:      2048 kB
Private_Dirty:      8192 kB
Swap:                  0 kB
"""


def test_rollup_in_bytes_private_being_clean_plus_dirty():
    assert parse_rollup(ROLLUP) == Memory(
        rss=20480 * 1024, pss=12288 * 1024, private=(2048 + 8192) * 1024
    )


@pytest.mark.parametrize(
    ("stat", "parent"),
    [
        ("4242 (gunicorn) S 4200 4242 4242 0 -1", 4200),
        ("4243 (a b) c) R 1 4243 4243 0 -1", 1),  # the name may hold spaces and ')'
    ],
)
def test_the_parent_follows_the_last_parenthesis(stat, parent):
    assert parent_of(stat) == parent


def test_this_process_is_its_parents_child():
    assert os.getpid() in children(os.getppid())
    assert parent_of(Path(f"/proc/{os.getpid()}/stat").read_text()) == os.getppid()


def test_the_report_holds_the_server_and_each_child(tmp_path):
    started = "import time; print('started', flush=True); time.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", started], stdout=subprocess.PIPE, text=True)
    try:
        # Measured once it runs Python: just after the fork it holds well under a MiB of its own.
        assert child.stdout.readline() == "started\n"
        path = tmp_path / "termination-log"
        report = MemoryReport(path)
        report.maybe_write()
        text = path.read_text()
        assert text.startswith(REPORT_PREFIX)
        read = json.loads(text.removeprefix(REPORT_PREFIX))
        # A moment apart, so near rather than equal: this process allocates meanwhile.
        assert 0.5 < read["server"] / memory(os.getpid()).pss < 2
        assert len(read["workers"]) >= 1  # the sleeping child, beside any other of pytest's
        assert all(w > 2**20 for w in read["workers"])  # a Python holds more than a MiB
        assert abs(read["at"] - time.time()) < 5

        path.write_text("kept")
        report.maybe_write()  # within REPORT_SECONDS of the last: not measured again
        assert path.read_text() == "kept"
        report.clear()
        assert path.read_text() == ""
    finally:
        child.kill()
        child.communicate()


def test_a_report_that_cannot_be_written_is_no_failure(tmp_path):
    MemoryReport(tmp_path / "missing" / "termination-log").maybe_write()
