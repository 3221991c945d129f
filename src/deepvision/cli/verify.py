"""`deepvision verify ...` and `deepvision judge`: thin commands over deepvision.verify."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from deepvision.cli.common import console, info
from deepvision.cli.options import (
    AttemptsOpt,
    ConcurrencyOpt,
    JudgeApiKeyEnvOpt,
    JudgeEndpointOpt,
    JudgeModelOpt,
    TimeoutOpt,
    build_endpoint,
    check_now,
)
from deepvision.errors import UsageError
from deepvision.llm import asker
from deepvision.progress import progress_bar
from deepvision.records import InferFiles, JudgeFiles
from deepvision.verify import check
from deepvision.verify.judge import JudgeSummary, judge_outputs

app = typer.Typer(
    help="Answer verification: is a model's final answer the reference?", no_args_is_help=True
)


@app.command("check")
def check_cmd(
    response: str = typer.Argument(..., help="A response (last \\boxed{} is used) or an answer."),
    gold: str = typer.Option(..., "--gold", help="The reference answer."),
    equivalent: list[str] = typer.Option(None, "--equivalent", help="Other accepted answers."),
    option: list[str] = typer.Option(None, "--option", help="Options in order (A, B, ...)."),
    timeout: float = typer.Option(3.0, "--timeout", help="Symbolic time limit (seconds)."),
) -> None:
    """Check one answer; prints the verdict as JSON, exit 0 if correct, 1 if not.

    Example: deepvision verify check 'so \\boxed{\\frac{1}{2}}' --gold 0.5
    """
    v = check(response, gold, equivalents=equivalent or (), options=option or None, timeout=timeout)
    console.print_json(json.dumps(v.to_json()))
    raise typer.Exit(0 if v.correct else 1)


def judge_cmd(
    outputs: Path = typer.Argument(..., help="Inference outputs (JSONL)."),
    out_prefix: Path = typer.Option(
        None, "--out", help="Output prefix: PREFIX.verdicts.jsonl, … (default: beside the input)."
    ),
    rejudge: bool = typer.Option(False, "--rejudge", help="Send rule-negatives to an LLM judge."),
    judge_endpoint: JudgeEndpointOpt = None,
    judge_model: JudgeModelOpt = None,
    judge_api_key_env: JudgeApiKeyEnvOpt = None,
    concurrency: ConcurrencyOpt = None,
    attempts: AttemptsOpt = None,
    timeout: TimeoutOpt = None,
) -> None:
    """Score inference outputs: rule verdicts, optionally re-judged by an LLM. Resumable.

    Example: deepvision judge runs/mathvision.jsonl --rejudge --judge-endpoint
    http://127.0.0.1:8000/v1 --judge-model gpt-5-mini
    """
    if not outputs.is_file():
        raise UsageError(f"{outputs}: no such file")
    ask = None
    judge_requests = 16  # LLM-judge calls in flight (none without --rejudge)
    if rejudge:
        judge = build_endpoint(
            judge_endpoint,
            judge_model,
            judge_api_key_env,
            concurrency,
            timeout,
            attempts,
            prefix="judge_",
        )
        check_now(judge, prefix="judge_")  # fails in seconds, before any verdict
        ask = asker(judge)
        judge_requests = judge.concurrency * len(judge.urls)

    with progress_bar("judge", None) as bar:
        s = judge_outputs(
            outputs,
            out_prefix=out_prefix,
            ask=ask,
            concurrency=judge_requests,
            progress=bar.advance,
        )
    for line in [*s.bad_line_examples, *s.undecided_examples]:
        info(f"  [yellow]{line}[/]")
    files = JudgeFiles.for_responses(outputs, out_prefix)
    _print_judge_summary(s)
    failed = f", {files.judge_errors}" if files.judge_errors.exists() else ""
    console.print(f"wrote {files.verdicts}, {files.wrong}{failed}, {files.summary}")
    if s.partial:
        info(f"[yellow]partial[/]: {_how_to_finish(s, outputs)}")
    if s.bad_lines or s.partial:
        raise typer.Exit(1)


def _print_judge_summary(s: JudgeSummary) -> None:
    """Counts over the whole set, then each figure as its `Share` text (bounds, labelled
    partial, while any sample is undecided)."""
    why = [
        f"{label} {count}"
        for label, count in (
            ("judge calls failed", s.errors),
            ("checks undecided", s.undecided_checks),
            ("samples of items failed in inference", s.failed_samples),
        )
        if count
    ]
    lines = [
        f"problems {s.problems}, samples {s.samples} (n={s.n}): correct {s.correct}, "
        f"wrong {s.wrong}, undecided {s.undecided}"
        + (f" ({', '.join(why)})" if why else "")
        + f"; bad lines {s.bad_lines}"
        + (f"; resumed past {s.skipped_done} done" if s.skipped_done else ""),
        f"accuracy {s.accuracy.text()}",
        f"rules alone {s.rule_accuracy.text()}; judge overturned {s.overturned}",
        f"pass@1 {s.pass_at_1.text()}; pass@{s.n} {s.pass_at_n.text()}",
    ]
    for line in lines:  # one line each, unwrapped: logs are searched for them
        console.print(line, soft_wrap=True, highlight=False)


def _how_to_finish(s: JudgeSummary, outputs: Path) -> str:
    """What turns a partial figure into the result: a re-run decides only what is undecided."""
    steps = []
    if s.unjudged:
        steps.append(
            f"{s.unjudged} sample(s) have no verdict yet: run the same command again "
            "(it decides only those; verdicts already written are kept)"
        )
    if s.failed_items:
        steps.append(
            f"{s.failed_items} item(s) failed in inference ({InferFiles(outputs).errors}): run "
            "`deepvision infer` again with the same --out, then judge again"
        )
    return "; ".join(steps)
