"""The options every model-facing command shares: one name, one default, one help text each,
and the Endpoint they build."""

import pytest

from deepvision.cli.options import build_endpoint
from deepvision.errors import UsageError
from deepvision.llm import Endpoint


def test_options_left_out_take_the_endpoints_defaults(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    ep = build_endpoint(["http://a:1/v1,http://b:2/v1", "http://c:3/v1/"], "m")
    assert ep.urls == ("http://a:1/v1", "http://b:2/v1", "http://c:3/v1")
    default = Endpoint(("http://a:1/v1",), "m")
    assert (
        (ep.concurrency, ep.timeout, ep.attempts)
        == (
            default.concurrency,
            default.timeout,
            default.attempts,
        )
        == (32, 600.0, 4)
    )
    ep = build_endpoint(["http://a:1/v1"], "m", None, 3, 2.5, 7)
    assert (ep.concurrency, ep.timeout, ep.attempts) == (3, 2.5, 7)


def test_errors_name_the_option_at_fault_judge_options_included(monkeypatch):
    monkeypatch.delenv("DV_UNSET", raising=False)
    with pytest.raises(UsageError) as err:
        build_endpoint(None, "m")
    assert err.value.for_cli().startswith("--endpoint:")
    with pytest.raises(UsageError) as err:
        build_endpoint(["http://a/v1"], "m", "DV_UNSET", prefix="judge_")
    assert err.value.for_cli().startswith("--judge-api-key-env:") and "DV_UNSET" in str(err.value)
    with pytest.raises(UsageError) as err:
        build_endpoint(["http://a/v1"], "m", attempts=0)
    assert err.value.for_cli().startswith("--attempts:")


@pytest.mark.parametrize(
    "command",
    [("infer",), ("eval", "run"), ("judge",), ("curate", "validity"), ("curate", "difficulty")],
)
def test_every_model_command_has_the_same_options(cli, command):
    res = cli(*command, "--help")
    assert res.code == 0
    text = " ".join(res.out.replace("│", " ").split())  # rich draws boxes around help
    for flag in ("--concurrency", "--timeout", "--attempts"):
        assert flag in text
    assert "Seconds for one whole attempt, connect to last byte (default 600)" in text
    for old in ("--max-attempts", "--request-timeout", "--judge-base-url"):
        assert old not in text


def test_judge_without_a_judge_endpoint_is_a_usage_error(cli, tmp_path):
    src = tmp_path / "run.jsonl"
    src.write_text('{"id": "p", "answer": "1", "model_response": "\\\\boxed{2}"}\n')
    res = cli("judge", src, "--rejudge", "--judge-model", "j")
    assert res.code == 2 and "--judge-endpoint" in res.err


def _all_options():
    """(command, flag, default) of every option of every command."""
    import importlib

    import typer

    from deepvision.cli.main import _COMMANDS

    rows = []

    def walk(cmd, path):
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                walk(sub, [*path, name])
            return
        for p in cmd.params:
            if p.param_type_name == "option":
                for flag in p.opts:
                    rows.append((" ".join(path), flag, repr(p.default)))

    for name, (module, attr, kind) in _COMMANDS.items():
        target = getattr(importlib.import_module(module), attr)
        if kind == "group":
            walk(typer.main.get_group(target), [name])
        else:
            app = typer.Typer()
            app.command(name)(target)
            app.command("-")(lambda: None)  # a group, so the command keeps its name
            walk(typer.main.get_group(app).commands[name], [name])
    return rows


# Options whose defaults differ on purpose, listed in docs/cli.md with the reason.
DIFFERENT_JOBS = {
    "--n",
    "--max-tokens",
    "--on-unparsed",
    "--text-threshold",
    "--image-distance",
    "--timeout",
    "--temperature",
    "--out",
    "--gpus",
    "--engine",
    "--benchmarks",
}


def test_one_default_per_option_across_commands():
    defaults: dict[str, set[str]] = {}
    for _, flag, default in _all_options():
        defaults.setdefault(flag, set()).add(default)
    drift = {f: d for f, d in defaults.items() if len(d) > 1 and f not in DIFFERENT_JOBS}
    assert drift == {}
    # the model-facing options have no default of their own: the Endpoint's applies
    for command, flag, default in _all_options():
        if flag in ("--concurrency", "--attempts", "--api-key-env", "--judge-api-key-env"):
            assert default == "None", (command, flag)


def test_same_concept_same_name():
    flags = {flag for _, flag, _ in _all_options()}
    for old in ("--out-prefix", "--max-attempts", "--request-timeout", "--judge-base-url"):
        assert old not in flags
    commands = {c for c, _, _ in _all_options()}
    for command in ("infer", "eval run", "data export"):
        assert command in commands
        own = {f for c, f, _ in _all_options() if c == command}
        assert {"--system-prompt", "--system-prompt-file", "--no-system-prompt"} <= own


def test_a_missing_system_prompt_file_is_a_clean_usage_error(cli, tmp_path):
    missing = tmp_path / "nope.txt"
    for command in (
        (
            "infer",
            "--endpoint",
            "http://127.0.0.1:9/v1",
            "--model",
            "m",
            "--out",
            tmp_path / "o.jsonl",
        ),
        (
            "eval",
            "run",
            "--endpoint",
            "http://127.0.0.1:9/v1",
            "--model",
            "m",
            "--out",
            tmp_path / "r",
        ),
        ("data", "export", "--to", "jsonl", "--out", tmp_path / "x.jsonl"),
    ):
        res = cli(*command, "--system-prompt-file", missing)
        assert res.code == 2, (command, res.err)
        assert "--system-prompt-file" in res.err and "nope.txt" in res.err
        assert "Traceback" not in res.err
    res = cli(
        "data",
        "export",
        "--to",
        "jsonl",
        "--out",
        tmp_path / "y.jsonl",
        "--system-prompt",
        "a",
        "--no-system-prompt",
    )
    assert res.code == 2 and "at most one" in res.err
