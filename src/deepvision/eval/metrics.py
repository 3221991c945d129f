"""Metrics of one benchmark run from its outputs and verdicts: accuracy as the mean over n
samples (avg@n) with a 95% confidence interval, unbiased pass@k, majority vote (maj@n),
completion tokens (mean, median), truncation and unparsed shares, per-category breakdowns.

Items the run has no output for, and samples without a verdict, count as wrong and are
reported (`missing`, `unjudged`): a number is never computed over a silently smaller set.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from deepvision.errors import DataError
from deepvision.eval.benchmark import Benchmark
from deepvision.records import Completion, Verdict, iter_jsonl
from deepvision.verify.judge import iter_verdicts, pass_at_k, rule_correct
from deepvision.verify.normalize import vote_key


def read_outputs(path: Path) -> Iterator[tuple[dict[str, Any], list[Completion]]]:
    """(output line, its samples) of each line of an inference output file, in order. A line
    that is not an output line raises DataError naming file:line (the inference client cuts a
    torn last line before it writes, so a bad line here is damage, never skipped)."""
    for no, line in iter_jsonl(path):
        try:
            samples = Completion.from_output_line(line)
        except (TypeError, ValueError) as exc:
            raise DataError(f"not an output line: {exc}", file=str(path), line=no) from None
        if not samples:
            raise DataError("output line without a response", file=str(path), line=no)
        yield line, samples


def _vote_key(answer: str | None) -> str | None:
    return None if answer is None else vote_key(answer)


def collect_items(responses: Path, verdicts: Path) -> list[dict[str, Any]]:
    """One dict per answered item: id, categories, bench fields, and per sample: correct,
    extracted answer, method, response tokens, finish reason."""
    judged: dict[tuple[str, int | None], Verdict] = {
        (str(v.problem_id), v.sample): v for v in iter_verdicts(verdicts)
    }
    items = []
    for line, samples in read_outputs(responses):
        n = len(samples)
        tokens = samples[0].usage.get("completion_tokens")
        per_sample = tokens / n if isinstance(tokens, int | float) and n else None
        rows = []
        for c in samples:
            v = judged.get((c.problem_id, c.sample))
            rows.append(
                {
                    "correct": bool(v and v.correct),
                    "judged": v is not None,
                    "extracted": v.extracted if v else None,
                    "method": v.method if v else "unjudged",
                    "rule_correct": bool(v and rule_correct(v)),
                    "finish": c.finish_reason,
                }
            )
        items.append(
            {
                "id": samples[0].problem_id,
                "categories": line.get("categories") or {},
                "bench": line.get("bench") or {},
                "tokens": per_sample,
                "samples": rows,
            }
        )
    return items


def majority_correct(samples: list[dict[str, Any]]) -> bool:
    """Majority vote over the extracted answers (unparsed ones do not vote; ties go to the
    answer seen first); right if that answer's verdict is right."""
    keys = [_vote_key(s["extracted"]) for s in samples]
    votes = Counter(k for k in keys if k is not None)
    if not votes:
        return False
    top = max(votes.values())
    winner = next(k for k in keys if k is not None and votes[k] == top)
    return any(s["correct"] for s, k in zip(samples, keys, strict=True) if k == winner)


def ks_for(n: int) -> list[int]:
    ks = [k for k in (1, 2, 4, 8, 16, 32, 64, 128) if k <= n]
    return ks + ([n] if n not in ks else [])


def compute_metrics(
    bench: Benchmark,
    items: list[dict[str, Any]],
    n: int,
    *,
    loaded: list[dict[str, Any]] | None = None,
    skipped: int = 0,
) -> dict[str, Any]:
    """The metrics of one benchmark, `n` samples asked per item. `loaded` lists every item of
    the evaluation set (id, categories, bench fields): the ones without an answer count as
    wrong everywhere (accuracy, breakdowns, WeMath's groups); so do `skipped` records the
    loader could not use. Answers to items not in `loaded` are ignored."""
    if loaded is not None:
        answered = {it["id"]: it for it in items}
        items = [answered.get(x["id"]) or {**x, "tokens": None, "samples": []} for x in loaded]
    missing = sum(1 for it in items if not it["samples"]) + skipped
    items_answered = [it for it in items if it["samples"]]
    total = len(items_answered) + missing
    means, passes, maj = [], defaultdict(float), 0
    tokens: list[float] = []
    samples = truncated = unparsed = unjudged = judged_llm = rule_right = 0
    for it in items_answered:
        rows = it["samples"]
        c = sum(r["correct"] for r in rows)
        means.append(c / len(rows) if rows else 0.0)
        for k in ks_for(n):
            passes[k] += pass_at_k(len(rows), c, k) if len(rows) >= k else float(c > 0)
        maj += majority_correct(rows)
        if it["tokens"] is not None:
            tokens.extend([it["tokens"]] * len(rows))
        samples += len(rows)
        truncated += sum(r["finish"] == "length" for r in rows)
        unparsed += sum(r["judged"] and r["extracted"] is None for r in rows)
        unjudged += sum(not r["judged"] for r in rows)
        judged_llm += sum(r["method"] == "llm" for r in rows)
        rule_right += sum(r["rule_correct"] for r in rows)
    means += [0.0] * missing
    acc = sum(means) / total if total else 0.0
    sd = statistics.pstdev(means) if len(means) > 1 else 0.0
    half = 1.96 * sd / math.sqrt(total) if total else 0.0
    out: dict[str, Any] = {
        "title": bench.title,
        "items": len(items_answered),
        "expected": len(items) + skipped,
        "missing": missing,
        "skipped_records": skipped,
        "n": n,
        "samples": samples,
        "accuracy": acc,
        "ci95": [max(0.0, acc - half), min(1.0, acc + half)],
        "pass_at_k": {str(k): v / total for k, v in passes.items()} if total else {},
        "maj_at_n": maj / total if total else 0.0,
        "mean_tokens": statistics.fmean(tokens) if tokens else None,
        "median_tokens": statistics.median(tokens) if tokens else None,
        "truncated": truncated / samples if samples else 0.0,
        "unparsed": unparsed,
        "unjudged": unjudged,
        "rule_accuracy": rule_right / (samples + missing * n) if samples + missing else 0.0,
        "tokens_note": "per sample: each item's completion tokens / n; median over samples",
        "overturned_by_judge": judged_llm,
        "breakdowns": breakdowns(bench, items),
    }
    by_id = {it["id"]: it for it in items}

    def correct(item: dict[str, Any], k: int) -> bool:
        rows = by_id.get(item["id"], item)["samples"]
        return k < len(rows) and rows[k]["correct"]

    out.update(bench.extra_metrics(items, correct, n))
    return out


def breakdowns(bench: Benchmark, items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """category key -> value -> items and avg@n accuracy, keys in the benchmark's order."""
    groups: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for it in items:
        rows = it["samples"]
        mean = sum(r["correct"] for r in rows) / len(rows) if rows else 0.0
        for key, value in (it["categories"] or {}).items():
            groups[key][str(value)].append(mean)
    order = [k for k in bench.category_keys if k in groups] + sorted(
        k for k in groups if k not in bench.category_keys
    )
    return {
        key: {
            value: {"items": len(v), "accuracy": sum(v) / len(v)}
            for value, v in sorted(groups[key].items())
        }
        for key in order
    }
