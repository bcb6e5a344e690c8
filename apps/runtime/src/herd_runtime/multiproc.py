"""The prometheus_client multiprocess directory: checked and wiped at start, and kept to a
bounded number of files while workers come and go.

Every worker writes its own `<type>_<pid>.db` files. A worker that exits leaves its counter,
histogram and summary files behind, and they must stay: their counts are part of the totals.
With `max_requests` restarts the directory would grow by one set of files per restart and every
scrape reads them all (prometheus/client_python#367: 40 s scrapes at ~6,800 files). So when a
worker dies, its additive files are summed into one `<type>_archive.db` per type and removed:
totals never go down and the directory holds O(workers) files, not O(restarts).
"""

from __future__ import annotations

import errno
import os
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import mark_process_dead

from herd_runtime.errors import StartupError

#: Types whose samples add up across processes, so a dead process's values can be merged.
ADDITIVE_TYPES = ("counter", "histogram", "summary")
ARCHIVE_ID = "archive"

#: Held while files are read for a scrape and while dead processes' files are merged: a scrape
#: must never see a merged archive next to the files it was merged from, or miss both.
#: Both happen in the same process (gunicorn's arbiter), so a thread lock suffices.
DIRECTORY_LOCK = threading.Lock()


def check_writable(directory: Path) -> None:
    """Fails with a clear reason unless the server can create and remove files there."""
    variable = f"PROMETHEUS_MULTIPROC_DIR {str(directory)!r}"
    if not directory.is_dir():
        state = "is not a directory" if directory.exists() else "does not exist"
        raise StartupError(f"{variable} {state}: mount a writable emptyDir there")
    try:
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".herd-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise StartupError(
            f"{variable} is not writable by uid {os.getuid()}: {error.strerror}"
        ) from None


def reset_directory(directory: Path) -> None:
    """Removes every file left by a previous run: stale files would be counted again."""
    for entry in directory.iterdir():
        if not entry.is_dir():
            entry.unlink(missing_ok=True)


def retire_process(directory: Path, pid: int) -> None:
    """Bookkeeping for a worker that exited: drops its live gauges and archives its counts,
    together with those of any other process that is gone."""
    with DIRECTORY_LOCK:
        mark_process_dead(pid, str(directory))
        compact_dead_processes(directory)


def compact_dead_processes(directory: Path, is_alive: Callable[[int], bool] | None = None) -> None:
    """Merges the additive files of processes that no longer run into the archive files.
    The caller holds DIRECTORY_LOCK."""
    alive = is_alive or process_is_alive
    for metric_type in ADDITIVE_TYPES:
        dead = [
            path
            for path in directory.glob(f"{metric_type}_*.db")
            if (pid := _pid_of(path)) is not None and not alive(pid)
        ]
        if not dead:
            continue
        archive = directory / f"{metric_type}_{ARCHIVE_ID}.db"
        sources = [archive, *dead] if archive.exists() else dead
        _write_atomically(archive, merged_values(sources))
        for path in dead:
            path.unlink()


def merged_values(paths: Iterable[Path]) -> dict[str, tuple[float, float]]:
    """Sums each sample over the files; keys carry the labels (and `le` of a bucket)."""
    totals: dict[str, tuple[float, float]] = {}
    for path in paths:
        for key, value, timestamp, _ in MmapedDict.read_all_values_from_file(str(path)):
            total, latest = totals.get(key, (0.0, 0.0))
            totals[key] = (total + value, max(latest, timestamp))
    return totals


def process_is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as error:
        return error.errno != errno.ESRCH
    return True


def _pid_of(path: Path) -> int | None:
    """`counter_1234.db` -> 1234; the archive and custom process identifiers are not pids."""
    identifier = path.stem.partition("_")[2]
    return int(identifier) if identifier.isdigit() else None


def _write_atomically(target: Path, values: dict[str, tuple[float, float]]) -> None:
    # The temporary name does not end in .db, so no scrape globs it while it is written.
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    store = MmapedDict(str(partial))
    try:
        for key, (value, timestamp) in values.items():
            store.write_value(key, value, timestamp)
    finally:
        store.close()
    os.replace(partial, target)
