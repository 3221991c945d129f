"""RL rewards built on `check`: verl 0.9 custom reward functions and TRL reward callables.

verl (config):
    reward.custom_reward_function.path=<site-packages>/deepvision/verify/rewards.py
    reward.custom_reward_function.name=compute_score
(verl 0.9.1's reward loop calls it per sample; `compute_score_batch` is for callers that batch.)
TRL:
    GRPOTrainer(..., reward_funcs=[deepvision.verify.rewards.accuracy_reward])

Both read the equivalent answers and options that `deepvision data export` writes.

A check left undecided (its symbolic comparison found no free worker in time) is tried once
more with a fresh wait (`verify_batch` retries on its own); if it is still undecided the reward
is the rules' result (0: the rules did not find the answer right), with a logged warning, and
`undecided_count()` counts it: an overloaded verifier never scores right answers 0 unseen.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from deepvision.records import Verdict
from deepvision.verify.check import Item, check, verify_batch

_CHARS_PER_TOKEN = 3.5  # used only when the caller gives no token count

log = logging.getLogger(__name__)
_undecided_lock = threading.Lock()
_undecided = 0


def undecided_count() -> int:
    """How many rewards this process gave from the rules alone because the symbolic check
    stayed undecided (no free verifier worker in time, even on retry)."""
    return _undecided


def _note_undecided(verdicts: Sequence[Verdict]) -> None:
    """Count and log the verdicts still undecided after their retry (one warning per call)."""
    global _undecided
    n = sum(v.undecided for v in verdicts)
    if not n:
        return
    with _undecided_lock:
        _undecided += n
        total = _undecided
    example = next(v for v in verdicts if v.undecided)
    log.warning(
        "%d reward(s) undecided (%s): scored by the rules alone, as not correct; %d so far "
        "in this process (give the verifier more workers or a longer wait)",
        n,
        example.reason,
        total,
    )


def _answers(extra_info: Mapping[str, Any] | None) -> tuple[tuple[str, ...], Any]:
    info = extra_info or {}
    equivalents = info.get("equivalent_answers") or ()
    if not equivalents and isinstance(info.get("reward_model"), Mapping):
        equivalents = info["reward_model"].get("equivalent_answers") or ()
    return tuple(str(e) for e in equivalents), info.get("options") or None


def format_ok(solution_str: str) -> bool:
    """One final `\\boxed{}` after the reasoning, and a closed think block if one was opened."""
    if "<think>" in solution_str and "</think>" not in solution_str:
        return False
    return len(re.findall(r"\\boxed\s*\{", solution_str)) >= 1


def overlong_penalty(length: float, max_len: int, buffer_len: int, factor: float) -> float:
    """DAPO's soft overlong punishment: 0 up to max_len - buffer_len, then linear to -factor."""
    if buffer_len <= 0:
        return 0.0
    expected = max_len - buffer_len
    if length <= expected:
        return 0.0
    return -min(1.0, (length - expected) / buffer_len) * factor


@dataclass(frozen=True)
class Shaping:
    """What turns a verdict into a reward: `format_weight` w gives (1 - w) * acc + w * format;
    with `max_response_len` and `overlong_buffer_len` (tokens) DAPO's overlong penalty is
    added. The same for verl, batch and EasyR1 scoring."""

    format_weight: float = 0.0
    max_response_len: int | None = None
    overlong_buffer_len: int = 0
    overlong_penalty_factor: float = 1.0

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> Shaping:
        """The shaping a trainer's reward kwargs name (the others are not ours)."""
        return cls(**{f.name: kwargs[f.name] for f in fields(cls) if f.name in kwargs})

    def score(self, solution: str, v: Verdict, length: float | None = None) -> dict[str, Any]:
        """{"score", "acc", "pred"} (+ "format", "overlong_penalty" when on); `length` in
        tokens, estimated from characters when the trainer gives none."""
        score = 1.0 if v.correct else 0.0
        out: dict[str, Any] = {"score": score, "acc": v.correct, "pred": v.extracted or ""}
        if self.format_weight:
            fmt = format_ok(solution)
            out["format"] = fmt
            score = (1 - self.format_weight) * score + self.format_weight * (1.0 if fmt else 0.0)
        if self.max_response_len and self.overlong_buffer_len:
            if length is None:
                length = len(solution) / _CHARS_PER_TOKEN
            pen = overlong_penalty(
                length,
                self.max_response_len,
                self.overlong_buffer_len,
                self.overlong_penalty_factor,
            )
            out["overlong_penalty"] = pen
            score += pen
        out["score"] = score
        return out


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: str,
    extra_info: Mapping[str, Any] | None = None,
    *,
    format_weight: float = 0.0,
    max_response_len: int | None = None,
    overlong_buffer_len: int = 0,
    overlong_penalty_factor: float = 1.0,
    response_length: int | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """verl custom reward: {"score", "acc", "pred"} (+ "format", "overlong_penalty" when on).

    score is 1.0 for a right final answer, else 0.0; with `format_weight` w it becomes
    (1 - w) * acc + w * format; with `max_response_len` and `overlong_buffer_len` (tokens;
    estimated from characters when verl gives no length) DAPO's overlong penalty is added.
    Safe in verl's naive, dapo and batch managers and in remote (Ray) reward workers. A check
    left undecided is tried once more, then scored by the rules alone with a warning (see
    `undecided_count`)."""
    equivalents, options = _answers(extra_info)

    def verdict() -> Verdict:
        return check(
            solution_str, str(ground_truth), equivalents=equivalents, options=options, extract=True
        )

    v = verdict()
    if v.undecided:  # once more, with a fresh wait for a worker
        v = verdict()
    _note_undecided([v])
    if response_length is None:
        response_length = (extra_info or {}).get("response_length")
    shaping = Shaping(format_weight, max_response_len, overlong_buffer_len, overlong_penalty_factor)
    return shaping.score(solution_str, v, response_length)


def compute_score_batch(
    data_sources: Sequence[str],
    solution_strs: Sequence[str],
    ground_truths: Sequence[str],
    extra_infos: Sequence[Mapping[str, Any] | None] | None = None,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """verl BatchRewardManager variant: all items at once (repeated answers decided once,
    symbolic work spread over every core)."""
    infos = list(extra_infos) if extra_infos is not None else [None] * len(solution_strs)
    items = []
    for sol, gt, info in zip(solution_strs, ground_truths, infos, strict=True):
        eq, opts = _answers(info)
        opts = tuple(opts) if isinstance(opts, list) else opts
        items.append(Item(sol or "", str(gt), eq, opts, extract=True))
    verdicts = verify_batch(items)
    _note_undecided(verdicts)
    shaping = Shaping.from_kwargs(kwargs)
    return [
        shaping.score(sol or "", v, (info or {}).get("response_length"))
        for sol, info, v in zip(solution_strs, infos, verdicts, strict=True)
    ]


def _completion_text(c: Any) -> str:
    if isinstance(c, str):
        return c
    if isinstance(c, Sequence) and c and isinstance(c[-1], Mapping):
        content = c[-1].get("content", "")
        if isinstance(content, list):  # multimodal content parts
            return "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
        return str(content or "")
    return str(c or "")


def accuracy_reward(
    prompts: Sequence[Any],
    completions: Sequence[Any],
    answer: Sequence[str],
    equivalent_answers: Sequence[Sequence[str] | None] | None = None,
    options: Sequence[Sequence[str] | None] | None = None,
    **kwargs: Any,
) -> list[float]:
    """TRL reward: 1.0 per completion whose final boxed answer is right, else 0.0.

    Dataset columns arrive as keyword arguments (`answer`, `equivalent_answers`, `options`,
    as written by `deepvision data export --to trl`)."""
    n = len(completions)
    eqs = equivalent_answers or [None] * n
    opts = options or [None] * n
    items = [
        Item(_completion_text(c), str(a), tuple(e or ()), tuple(o) if o else None, extract=True)
        for c, a, e, o in zip(completions, answer, eqs, opts, strict=True)
    ]
    verdicts = verify_batch(items)
    _note_undecided(verdicts)
    return [1.0 if v.correct else 0.0 for v in verdicts]


def format_reward(completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """TRL reward: 1.0 when the completion ends in a boxed answer (and closes its thinking)."""
    return [1.0 if format_ok(_completion_text(c)) else 0.0 for c in completions]


# EasyR1 loads this file by path and reads these two names: how to call the function chosen
# (`batch`: the whole list at once) and what to call the reward in its logs.
REWARD_TYPE = "batch"
REWARD_NAME = "deepvision"


def _easyr1_item(reward_input: Mapping[str, Any]) -> Item:
    """The check of one EasyR1 reward input. Its `ground_truth` is the `answer` column as
    `deepvision data export --to easyr1` writes it ({ground_truth, equivalent_answers,
    options}), or a plain reference answer (any other EasyR1 dataset)."""
    truth = reward_input["ground_truth"]
    if not isinstance(truth, Mapping):
        return Item(reward_input.get("response") or "", str(truth), (), None, extract=True)
    equivalents = tuple(str(e) for e in truth.get("equivalent_answers") or ())
    options = truth.get("options")
    return Item(
        reward_input.get("response") or "",
        str(truth.get("ground_truth") or ""),
        equivalents,
        tuple(options) if options else None,
        extract=True,
    )


def easyr1_compute_score(
    reward_inputs: list[dict[str, Any]],
    format_weight: float = 0.0,
    max_response_len: int | None = None,
    overlong_buffer_len: int = 0,
    overlong_penalty_factor: float = 1.0,
) -> list[dict[str, float]]:
    """EasyR1 batch reward (`worker.reward.reward_function=<this file>:easyr1_compute_score`):
    one {"overall", "accuracy", "format"} (+ "overlong_penalty" when on) of floats per input.

    Each input is what EasyR1's reward manager builds: `response`, `response_length` (tokens),
    `ground_truth`. `accuracy` is `check`'s verdict (all inputs through `verify_batch`);
    `overall` is (1 - w) * accuracy + w * format with `format_weight` w, plus DAPO's overlong
    penalty with `max_response_len` and `overlong_buffer_len`, as `compute_score` scores it.
    The keyword arguments come from `worker.reward.reward_function_kwargs`."""
    shaping = Shaping(format_weight, max_response_len, overlong_buffer_len, overlong_penalty_factor)
    items = [_easyr1_item(x) for x in reward_inputs]
    verdicts = verify_batch(items)
    _note_undecided(verdicts)
    out = []
    for x, item, v in zip(reward_inputs, items, verdicts, strict=True):
        scored = shaping.score(item.pred, v, x.get("response_length"))
        row = {
            "overall": float(scored["score"]),
            "accuracy": 1.0 if v.correct else 0.0,
            "format": 1.0 if format_ok(item.pred) else 0.0,
        }
        if "overlong_penalty" in scored:
            row["overlong_penalty"] = float(scored["overlong_penalty"])
        out.append(row)
    return out
