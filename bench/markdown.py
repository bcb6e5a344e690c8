"""Markdown for the benchmarks: one generated section per benchmark in a shared file, and the
lines every section starts with (date, machine, command).

A section sits between two markers, so a `--write` run replaces its own section and leaves the
prose and the other benchmarks' sections alone:

    <!-- bench.NAME: generated, replaced by each --write run -->
    ...
    <!-- bench.NAME: end of generated part -->
"""

from __future__ import annotations

import datetime
import os
import platform
import re
import shlex
from collections.abc import Sequence
from pathlib import Path


def begin_marker(name: str) -> str:
    return f"<!-- bench.{name}: generated, replaced by each --write run -->"


def end_marker(name: str) -> str:
    return f"<!-- bench.{name}: end of generated part -->"


def replace_section(path: Path, name: str, generated: str, title: str = "# Benchmarks") -> None:
    """Replaces the generated section `name` of `path`, keeping everything around it. Without
    the markers the section is appended; a new file gets `title` and the section."""
    begin, end = begin_marker(name), end_marker(name)
    block = f"{begin}\n\n{generated.rstrip()}\n\n{end}"
    text = path.read_text() if path.exists() else ""
    if begin in text and end in text:
        before, rest = text.split(begin, 1)
        after = rest.split(end, 1)[1]
        text = before + block + after
    elif text.strip():
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    else:
        text = f"{title}\n\n{block}\n"
    path.write_text(text)


def cpu_model() -> str:
    match = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
    return match.group(1).strip() if match else platform.processor() or "unknown CPU"


def run_lines(module: str, argv: Sequence[str]) -> list[str]:
    """The list items a section starts with: when, on what, and the command that wrote it."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = shlex.join([".venv/bin/python", "-m", module, *argv])
    return [
        f"- Date: {now}",
        f"- Machine: {os.cpu_count()} CPUs (`nproc`), {cpu_model()}, "
        f"{platform.system()} {platform.release()}",
        f"- Command: `{command}`",
    ]


def table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> list[str]:
    """A Markdown table; `align` has one character per column: `l` (default) or `r`."""
    rules = ["---:" if align[i : i + 1] == "r" else "---" for i in range(len(header))]
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(rules) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def seconds(value: float | None) -> str:
    """A duration for a table: one decimal, or a dash for "not observed"."""
    return "–" if value is None else f"{value:.1f}"
