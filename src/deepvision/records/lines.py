"""Completions and Verdicts as their JSONL lines: one codec each, used to write and to read.

`deepvision infer` writes one line per problem holding its samples (`Completion.to_output_line`);
`deepvision judge` writes one line per sample (`Verdict.to_json`). Every reader of those files
goes through `from_output_line` / `from_json`, so which fields a line carries is decided here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass
class Completion:
    """One model output for one problem, keyed by (problem id, sample index).

    On disk, `deepvision infer` writes one JSONL line per problem holding all its samples:
    the input fields plus `model_response` / `finish_reason` (n = 1) or `model_responses` /
    `finish_reasons` (n > 1), and the request facts shared by the samples (`usage` summed,
    `latency_s`, `endpoint`, `model`, `sampling`). `to_output_line` and `from_output_line`
    are that mapping, in one place."""

    problem_id: str
    sample: int
    text: str
    finish_reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    latency_s: float = 0.0
    endpoint: str = ""
    model: str = ""
    sampling: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def to_output_line(fields: Mapping[str, Any], completions: list[Completion]) -> dict[str, Any]:
        """The output line of one problem from its input fields and its samples (in order)."""
        first = completions[0]
        line = dict(fields)
        line["id"] = first.problem_id
        if len(completions) == 1:
            line["model_response"], line["finish_reason"] = first.text, first.finish_reason
        else:
            line["model_responses"] = [c.text for c in completions]
            line["finish_reasons"] = [c.finish_reason for c in completions]
        line.update(
            usage=first.usage,
            latency_s=first.latency_s,
            endpoint=first.endpoint,
            model=first.model,
            sampling=first.sampling,
        )
        return line

    @staticmethod
    def from_output_line(line: Mapping[str, Any]) -> list[Completion]:
        """The samples of one output line (inverse of `to_output_line`)."""
        pid = str(line.get("id"))
        if "model_responses" in line:
            texts = list(line["model_responses"])
            finishes = list(line.get("finish_reasons") or [None] * len(texts))
        else:
            texts, finishes = [line.get("model_response") or ""], [line.get("finish_reason")]
        return [
            Completion(
                pid,
                k,
                str(t or ""),
                f,
                dict(line.get("usage") or {}),
                float(line.get("latency_s") or 0.0),
                str(line.get("endpoint") or ""),
                str(line.get("model") or ""),
                dict(line.get("sampling") or {}),
            )
            for k, (t, f) in enumerate(zip(texts, finishes, strict=False))
        ]


@dataclass
class Verdict:
    """The decision on one answer: correct or not, the answer extracted from the response,
    how it was decided (`rule` methods such as `choice`, `number`, `exact`, `symbolic`, or
    `llm`) and why, in a few words. On disk (JSONL) it is keyed like the completion it judges.

    An answer the verifier could not decide (its symbolic comparison never got a worker in
    time) has the method `undecided` (`Verdict.UNDECIDED`): `undecided` is True and `correct`
    False, which here means "not established", not "wrong". Count such verdicts apart and
    check them again later; `reason` says why. Older files, written before this method
    existed, read as they always did (every verdict in them is decided)."""

    UNDECIDED: ClassVar[str] = "undecided"

    correct: bool
    extracted: str | None
    method: str
    reason: str = ""
    problem_id: str | None = None
    sample: int | None = None

    def __post_init__(self) -> None:
        if self.correct and self.undecided:
            raise ValueError("a verdict cannot be both correct and undecided")

    @property
    def undecided(self) -> bool:
        """The verifier could not decide this answer (see the class docstring)."""
        return self.method == self.UNDECIDED

    def to_json(self) -> dict[str, Any]:
        return {
            "problem_id": self.problem_id,
            "sample": self.sample,
            "correct": self.correct,
            "extracted": self.extracted,
            "method": self.method,
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Verdict:
        return cls(
            correct=bool(obj["correct"]),
            extracted=obj.get("extracted"),
            method=str(obj.get("method", "")),
            reason=str(obj.get("reason", "")),
            problem_id=obj.get("problem_id"),
            sample=obj.get("sample"),
        )
