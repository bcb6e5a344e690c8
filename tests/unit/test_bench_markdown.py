"""The benchmarks share docs/benchmarks.md: each --write replaces its own section only."""

from bench.markdown import begin_marker, end_marker, replace_section


def section(name: str, body: str) -> str:
    return f"{begin_marker(name)}\n\n{body}\n\n{end_marker(name)}"


def test_a_new_file_gets_a_title_and_the_section(tmp_path):
    path = tmp_path / "benchmarks.md"
    replace_section(path, "canary", "## Canary")
    assert path.read_text() == "# Benchmarks\n\n" + section("canary", "## Canary") + "\n"


def test_a_run_replaces_its_own_section_and_keeps_the_rest(tmp_path):
    path = tmp_path / "benchmarks.md"
    other = section("b", "old b")
    path.write_text(f"# B\n\nprose\n\n{section('a', 'old a')}\n\n{other}\nend\n")
    replace_section(path, "a", "new a")
    assert path.read_text() == f"# B\n\nprose\n\n{section('a', 'new a')}\n\n{other}\nend\n"


def test_a_section_not_there_yet_is_appended(tmp_path):
    path = tmp_path / "benchmarks.md"
    path.write_text(f"# B\n\n{section('a', 'a')}\n")
    replace_section(path, "b", "b")
    assert path.read_text() == f"# B\n\n{section('a', 'a')}\n\n{section('b', 'b')}\n"
