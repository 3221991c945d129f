"""The exception tree: one root, parameters named for Python and shown as flags by the CLI,
places kept across process boundaries."""

from __future__ import annotations

import pickle
import subprocess
import sys

from deepvision.errors import ConfigError, DataError, EndpointError, UsageError


def test_usage_error_names_the_parameter_and_the_cli_shows_the_flag():
    err = UsageError("must be >= 1", param="chunk_size")
    assert str(err) == "chunk_size: must be >= 1"
    assert err.for_cli() == "--chunk-size: must be >= 1"
    assert err.exit_code == 2


def test_config_error_names_file_and_key_path():
    err = ConfigError("expected a number", key="algorithm.clip_ratio_low", file="r.yaml")
    assert str(err) == "r.yaml: algorithm.clip_ratio_low: expected a number"
    assert isinstance(err, UsageError)


def test_errors_survive_pickling_with_their_fields():
    for err in (
        DataError("bad", file="f.jsonl", line=3),
        UsageError("no", param="n"),
        EndpointError("HTTP 429", retryable=True, retry_after=2.0),
        ConfigError("x", key="a.b"),
    ):
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err) and str(back) == str(err)
        assert back.__dict__ == err.__dict__
    assert str(DataError("bad", file="f.jsonl", line=3)) == "f.jsonl:3: bad"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "deepvision.cli.main", *args], capture_output=True, text=True
    )


def test_quiet_and_debug_work_after_the_subcommand():
    after = _cli("data", "validate", "/no/such/file", "--debug")
    assert after.returncode == 1
    assert "Traceback" in after.stderr and "no such file" in after.stderr
    plain = _cli("data", "validate", "/no/such/file")
    assert "Traceback" not in plain.stderr
    assert plain.stderr.startswith("error: /no/such/file: no such file")
    loud = _cli("data", "validate")
    quiet = _cli("data", "validate", "-q")
    assert loud.returncode == quiet.returncode == 0
    assert "no input given" in loud.stderr
    assert "no input given" not in quiet.stderr
    assert quiet.stdout == loud.stdout  # results still shown
