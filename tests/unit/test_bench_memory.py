"""bench.memory's readings of /proc: smaps_rollup and a process's parent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.memory.smaps import Memory, children, parent_of, parse_rollup

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
