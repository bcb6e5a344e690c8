"""herd_runtime.check_python, run as the injected runtime's init container runs it: a script,
by the image's Python, beside the copied packages."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys

import herd_runtime
from herd_runtime import check_python

PACKAGE = pathlib.Path(herd_runtime.__file__).parent


def run(library: pathlib.Path) -> subprocess.CompletedProcess[str]:
    script = library / "herd_runtime" / "check_python.py"
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)


def copied(tmp_path: pathlib.Path) -> pathlib.Path:
    shutil.copytree(
        PACKAGE, tmp_path / "herd_runtime", ignore=shutil.ignore_patterns("__pycache__")
    )
    return tmp_path


def test_a_python_that_can_run_the_runtime_passes_and_leaves_it_compiled(tmp_path):
    library = copied(tmp_path)
    done = run(library)
    assert done.returncode == 0, done.stderr
    assert list((library / "herd_runtime" / "__pycache__").glob("serve.*.pyc"))


def test_a_python_older_than_the_runtime_needs_is_named(tmp_path):
    library = copied(tmp_path)
    script = library / "herd_runtime" / "check_python.py"
    script.write_text(script.read_text().replace("MINIMUM = (3, 11)", "MINIMUM = (99, 0)"))
    done = run(library)
    found = ".".join(map(str, sys.version_info[:3]))
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"the image's Python is CPython {found} ({sys.executable}); "
        "herd-runtime needs Python 99.0 or newer"
    )


def test_a_runtime_that_does_not_import_says_why(tmp_path):
    library = copied(tmp_path)
    (library / "herd_runtime" / "serve.py").write_text("import no_such_module\n")
    done = run(library)
    assert done.returncode == 1
    assert "ModuleNotFoundError: No module named 'no_such_module'" in done.stderr


def test_the_check_parses_as_old_pythons_would():
    source = pathlib.Path(check_python.__file__).read_text()
    assert 'f"' not in source and "f'" not in source and "->" not in source
