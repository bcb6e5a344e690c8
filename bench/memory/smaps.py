"""A process's memory from /proc/PID/smaps_rollup, and the processes of one gunicorn."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
