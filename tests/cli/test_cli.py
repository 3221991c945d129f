"""The command line as a user meets it: help, default data, errors, exit codes."""

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "deepvision"


def test_top_level_help_lists_every_group(cli):
    res = cli("--help")
    assert res.code == 0
    for group in ("data", "verify", "judge", "infer", "serve", "eval", "curate", "train"):
        assert group in res.out


def test_data_help_lists_commands_with_examples(cli):
    res = cli("data", "--help")
    for cmd in ("validate", "stats", "filter", "sample", "split", "dedup", "export", "synth"):
        assert cmd in res.out
    assert "Example:" in cli("data", "export", "--help").out


def test_usage_errors_exit_2_with_one_line(cli, tmp_path):
    res = cli("data", "export", "--to", "nope", "--out", tmp_path / "x.parquet")
    assert res.code == 2 and "--to must be one of" in res.err
    assert "Traceback" not in res.text


def test_data_errors_exit_1_without_traceback_and_debug_shows_it(tmp_path):
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 garbage")
    cmd = [sys.executable, "-m", "deepvision.cli.main", "data", "validate", str(bad)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 1
    assert res.stderr.count("\n") <= 2 and str(bad) in res.stderr and "Traceback" not in res.stderr
    debug = subprocess.run([*cmd[:3], "--debug", *cmd[3:]], capture_output=True, text=True)
    assert "Traceback" in debug.stderr


def test_quiet_pipeline_on_the_embedded_sample(tmp_path):
    """The README's main job, as a user runs it (console script, piped output)."""
    exe = Path(sys.executable).parent / "deepvision"
    run = lambda *a: subprocess.run([str(exe), "-q", *map(str, a)], capture_output=True, text=True)  # noqa: E731
    assert run("data", "stats", "--out", tmp_path / "stats").returncode == 0
    res = run("data", "export", "--to", "verl", "--out", tmp_path / "train.parquet")
    assert res.returncode == 0, res.stderr
    assert "rows in: 240 = 240 written" in res.stderr
    assert (tmp_path / "stats" / "topics.png").stat().st_size > 10_000


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_house_rules_hold_below_the_cli():
    """Arrows point one way; no printing, exiting or typer below the CLI."""
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith("cli/"):
            continue
        imports = _imports(path)
        assert not any(m.startswith("deepvision.cli") for m in imports), rel
        assert "typer" not in imports, rel
        text = path.read_text()
        assert "sys.exit" not in text and "print(" not in text, rel
        if rel == "records.py":
            assert not any(
                m.startswith("deepvision.") and m != "deepvision.errors" for m in imports
            )


def test_data_commands_read_absolute_paths_only_when_asked_and_never_write_over_an_input(
    cli, tmp_path
):
    """Every data command that reads inputs offers --allow-absolute-paths; through the console
    script, an output that is an input is one usage line (exit 2) and the input is untouched."""
    for cmd in ("validate", "stats", "filter", "sample", "split", "dedup", "export"):
        assert "--allow-absolute-paths" in cli("data", cmd, "--help").out, cmd
    src = tmp_path / "in.jsonl"
    src.write_text('{"question": "Q", "answer": "1"}\n')
    exe = Path(sys.executable).parent / "deepvision"
    res = subprocess.run(
        [str(exe), "data", "validate", str(src), "--rejects", str(src), "--overwrite"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip().count("\n") == 0 and "--rejects" in res.stderr
    assert src.read_text() == '{"question": "Q", "answer": "1"}\n'
