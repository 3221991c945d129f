"""`deepvision verify ...` and `deepvision judge`: thin commands over deepvision.verify."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from deepvision.cli.common import console, info
from deepvision.errors import UsageError
from deepvision.llm import asker
from deepvision.progress import progress_bar
from deepvision.verify import check
from deepvision.verify.judge import judge_outputs, output_paths

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
    out_prefix: Path = typer.Option(None, "--out-prefix", help="Outputs: PREFIX.verdicts.jsonl…"),
    rejudge: bool = typer.Option(False, "--rejudge", help="Send rule-negatives to an LLM judge."),
    judge_base_url: str = typer.Option(None, "--judge-base-url", help="OpenAI-compatible /v1."),
    judge_model: str = typer.Option(None, "--judge-model", help="Judge model name."),
    api_key_env: str = typer.Option(
        "OPENAI_API_KEY", "--api-key-env", help="Environment variable that holds the API key."
    ),
    concurrency: int = typer.Option(16, "--concurrency", help="Judge requests in flight."),
    max_attempts: int = typer.Option(4, "--max-attempts", help="Tries per judge request."),
    request_timeout: float = typer.Option(60.0, "--request-timeout", help="Seconds per request."),
) -> None:
    """Score inference outputs: rule verdicts, optionally re-judged by an LLM. Resumable.

    Example: deepvision judge runs/mathvision.jsonl --rejudge --judge-base-url
    http://127.0.0.1:8000/v1 --judge-model gpt-5-mini
    """
    if not outputs.is_file():
        raise UsageError(f"{outputs}: no such file")
    ask = None
    if rejudge:
        if not judge_base_url or not judge_model:
            raise UsageError("--rejudge needs --judge-base-url and --judge-model")
        ask = asker(judge_base_url, judge_model, api_key=os.environ.get(api_key_env),
                    concurrency=concurrency, timeout=request_timeout,
                    max_attempts=max_attempts)  # fmt: skip

    with progress_bar("judge", None) as bar:
        s = judge_outputs(
            outputs, out_prefix=out_prefix, ask=ask, concurrency=concurrency, progress=bar.advance
        )
    for line in s.bad_line_examples:
        info(f"  [yellow]{line}[/]")
    paths = output_paths(outputs, out_prefix)
    console.print(
        f"problems {s.problems}, samples {s.samples} (n={s.n}): correct {s.correct}, "
        f"wrong {s.wrong}, errors {s.errors}; bad lines {s.bad_lines}"
        + (f"; resumed past {s.skipped_done} done" if s.skipped_done else "")
    )
    console.print(
        f"accuracy {100 * s.accuracy:.2f}% (rules alone {100 * s.rule_accuracy:.2f}%, "
        f"judge overturned {s.overturned}); pass@1 {100 * s.pass_at_1:.2f}%, "
        f"pass@{s.n} {100 * s.pass_at_n:.2f}%"
    )
    console.print(f"wrote {paths['verdicts']}, {paths['errors']}, {paths['summary']}")
    if s.bad_lines or s.errors:
        raise typer.Exit(1)
