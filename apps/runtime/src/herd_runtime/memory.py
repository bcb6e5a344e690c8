"""A process's memory from /proc/PID/smaps_rollup, the processes of one gunicorn, and the
memory report the server keeps in the container's termination log: when the kernel kills the
container for going over its memory limit, nothing in it can say anything any more, so what
it last measured is already there for the kubelet to hand on (the operator reads it from the
container status, herd.pod_troubles)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from herd_runtime.settings import RuntimeSettings

KIB = 1024


@dataclass(frozen=True)
class Memory:
    """Bytes. pss: the private pages plus an even share of each shared one, so the PSS of every
    process of a pod adds up to what they hold together; private: pages no other process maps."""

    rss: int
    pss: int
    private: int


def parse_rollup(text: str) -> Memory:
    """smaps_rollup's `Name:   1234 kB` lines."""
    fields: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        value = rest.split()
        if len(value) == 2 and value[1] == "kB":
            fields[name.strip()] = int(value[0]) * KIB
    return Memory(
        rss=fields["Rss"],
        pss=fields["Pss"],
        private=fields["Private_Clean"] + fields["Private_Dirty"],
    )


def memory(pid: int) -> Memory:
    return parse_rollup(Path(f"/proc/{pid}/smaps_rollup").read_text())


def parent_of(stat: str) -> int:
    """The ppid field of /proc/PID/stat; the command name before it may hold spaces and ')'."""
    return int(stat.rpartition(")")[2].split()[1])


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid`: gunicorn's workers, for its arbiter."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # it exited meanwhile
            continue
        if parent_of(stat) == pid:
            found.append(int(entry.name))
    return sorted(found)


#: What starts the report's line; the operator's side: herd.serving.runtime.MEMORY_REPORT_PREFIX.
REPORT_PREFIX = "herd-memory "
#: Seconds between two reports: the last one before a kill is at most this old.
REPORT_SECONDS = 2.0


def report_line(server_pid: int, now: float) -> str:
    """The PSS of the server process and of each of its workers (gunicorn's arbiter and its
    children; a single-process server has none), in bytes, measured now."""
    workers = []
    for pid in children(server_pid):
        try:
            workers.append(memory(pid).pss)
        except OSError:  # it exited since it was listed
            continue
    report = {"at": round(now), "server": memory(server_pid).pss, "workers": sorted(workers)}
    return REPORT_PREFIX + json.dumps(report, separators=(",", ":"))


def memory_report(settings: RuntimeSettings) -> MemoryReport | None:
    """This server's report, where the operator asked for one."""
    return MemoryReport(settings.memory_report) if settings.memory_report else None


class MemoryReport:
    """Rewrites `path` (the container's terminationMessagePath) with a fresh report at most
    every REPORT_SECONDS; `clear` empties it on an orderly exit, so the log tail the kubelet
    falls back to explains a crash instead."""

    def __init__(self, path: Path, server_pid: int | None = None) -> None:
        self.path = path
        self.server_pid = server_pid or os.getpid()
        self._next = 0.0

    def maybe_write(self) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + REPORT_SECONDS
        try:
            line = report_line(self.server_pid, time.time())
            # In place, not by rename: the kubelet reads the file it bind-mounted.
            with open(self.path, "w") as out:
                out.write(line)
        except OSError:
            return  # a report is a courtesy: never a reason for the server to fail

    def clear(self) -> None:
        try:
            with open(self.path, "w"):
                pass
        except OSError:
            return
