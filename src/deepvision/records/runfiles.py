"""The names of the files each verb writes, one helper per verb, so no step ever writes over
another step's output (inference failures and wrong answers once shared `X.errors.jsonl`).

    infer  OUT.jsonl            completions, one line per problem
           OUT.errors.jsonl     problems inference gave up on, with the reason
    judge  PREFIX.verdicts.jsonl one verdict per sample
           PREFIX.wrong.jsonl   the samples the rules judged wrong (the LLM judge's input)
           PREFIX.judge-errors.jsonl LLM-judge calls that failed (retried on the next run)
           PREFIX.summary.json  judge counts and accuracies
    eval   RUN/run.json, RUN/results.json, RUN/report.{md,html};
           RUN/<bench>/responses.jsonl + the infer and judge files of that stem
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["EvalFiles", "InferFiles", "JudgeFiles"]


def _beside(base: Path, suffix: str) -> Path:
    return base.with_name(base.name + suffix)


@dataclass(frozen=True)
class InferFiles:
    """`deepvision infer --out OUT`: the completions and the failures."""

    out: Path

    @property
    def errors(self) -> Path:
        return _beside(self.out.with_suffix(""), ".errors.jsonl")


@dataclass(frozen=True)
class JudgeFiles:
    """`deepvision judge RESPONSES [--out PREFIX]`; PREFIX defaults to RESPONSES
    without its suffix."""

    prefix: Path

    @classmethod
    def for_responses(cls, responses: Path, prefix: Path | None = None) -> JudgeFiles:
        return cls(Path(prefix) if prefix is not None else Path(responses).with_suffix(""))

    @property
    def verdicts(self) -> Path:
        return _beside(self.prefix, ".verdicts.jsonl")

    @property
    def wrong(self) -> Path:
        return _beside(self.prefix, ".wrong.jsonl")

    @property
    def judge_errors(self) -> Path:
        return _beside(self.prefix, ".judge-errors.jsonl")

    @property
    def summary(self) -> Path:
        return _beside(self.prefix, ".summary.json")

    def all(self) -> dict[str, Path]:
        return {
            "verdicts": self.verdicts,
            "wrong": self.wrong,
            "judge_errors": self.judge_errors,
            "summary": self.summary,
        }


@dataclass(frozen=True)
class EvalFiles:
    """`deepvision eval run --out RUN`: the run's files and each benchmark's."""

    run: Path

    @property
    def settings(self) -> Path:
        return self.run / "run.json"

    @property
    def results(self) -> Path:
        return self.run / "results.json"

    @property
    def report_md(self) -> Path:
        return self.run / "report.md"

    @property
    def report_html(self) -> Path:
        return self.run / "report.html"

    def bench_dir(self, bench: str) -> Path:
        return self.run / bench

    def responses(self, bench: str) -> Path:
        return self.bench_dir(bench) / "responses.jsonl"

    def infer(self, bench: str) -> InferFiles:
        return InferFiles(self.responses(bench))

    def judge(self, bench: str) -> JudgeFiles:
        return JudgeFiles.for_responses(self.responses(bench))
