"""Metrics of one benchmark run from its outputs and verdicts: accuracy as the mean over n
samples (avg@n) with a 95% confidence interval, unbiased pass@k, majority vote (maj@n),
completion tokens (mean, median), truncation and unparsed shares, per-category breakdowns.

The set is every item of the evaluation: the answered ones, the ones inference gave up on or
never reached (`missing`, n samples each) and the records the loader could not use. A sample
without a verdict (no answer, a failed judge call, an undecided check) is undecided, and every
proportion is a `records.Share`: the value over the whole set, or bounds labelled partial
(`value` null) while any sample is undecided; never the share of the decided ones alone.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from deepvision.errors import DataError
from deepvision.eval.benchmark import Benchmark
from deepvision.records import Completion, Share, Verdict, iter_jsonl
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
    judged (a decided verdict: not missing, not undecided), extracted answer, method, response
    tokens, finish reason."""
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
            if v is not None and v.undecided:
                v = None
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
    the evaluation set (id, categories, bench fields): the ones without an answer are in the
    set with n undecided samples each; so are the `skipped` records the loader could not use.
    Answers to items not in `loaded` are ignored. Proportions are `Share.to_json()` objects."""
    if loaded is not None:
        answered = {it["id"]: it for it in items}
        items = [answered.get(x["id"]) or {**x, "tokens": None, "samples": []} for x in loaded]
    missing = sum(1 for it in items if not it["samples"]) + skipped
    items_answered = [it for it in items if it["samples"]]
    total = len(items_answered) + missing
    rows_all = [r for it in items_answered for r in it["samples"]]
    samples = len(rows_all)
    set_samples = samples + missing * n
    judged = sum(r["judged"] for r in rows_all)
    decided_items = [it for it in items_answered if all(r["judged"] for r in it["samples"])]
    tokens = [it["tokens"] for it in items_answered for _ in it["samples"]]
    tokens = [t for t in tokens if t is not None]
    accuracy = Share(sum(r["correct"] for r in rows_all), judged, set_samples)
    out: dict[str, Any] = {
        "title": bench.title,
        "items": len(items_answered),
        "expected": total,
        "missing": missing,
        "skipped_records": skipped,
        "n": n,
        "samples": samples,
        "unjudged": samples - judged,
        "undecided_samples": set_samples - judged,
        "accuracy": accuracy.to_json(),
        "ci95": None if accuracy.partial else _ci95(items),
        "pass_at_k": {
            str(k): _item_share(decided_items, total, lambda rows, k=k: _pass(rows, k)).to_json()
            for k in ks_for(n)
        },
        "maj_at_n": _item_share(decided_items, total, majority_correct).to_json(),
        "mean_tokens": statistics.fmean(tokens) if tokens else None,
        "median_tokens": statistics.median(tokens) if tokens else None,
        "truncated": Share(
            sum(r["finish"] == "length" for r in rows_all), samples, set_samples
        ).to_json(),
        "unparsed": sum(r["judged"] and r["extracted"] is None for r in rows_all),
        "rule_accuracy": Share(
            sum(r["rule_correct"] for r in rows_all), judged, set_samples
        ).to_json(),
        "tokens_note": "per sample, over the answered items: each item's completion tokens / "
        "n; median over samples",
        "overturned_by_judge": sum(r["method"] == "llm" for r in rows_all),
        "breakdowns": breakdowns(bench, items, n),
    }
    by_id = {it["id"]: it for it in items}

    def correct(item: dict[str, Any], k: int) -> bool | None:
        """Sample k of `item`: right, wrong, or None while undecided."""
        rows = by_id.get(item["id"], item)["samples"]
        if k >= len(rows) or not rows[k]["judged"]:
            return None
        return bool(rows[k]["correct"])

    out.update(bench.extra_metrics(items, correct, n))
    return out


def _pass(rows: list[dict[str, Any]], k: int) -> float:
    """Unbiased pass@k of one item's samples (any right, when it has fewer than k)."""
    c = sum(r["correct"] for r in rows)
    return pass_at_k(len(rows), c, k) if len(rows) >= k else float(c > 0)


def _item_share(
    decided: list[dict[str, Any]], total: int, score: Callable[[list[dict[str, Any]]], float]
) -> Share:
    """A per-item figure (pass@k, maj@n): items are decided when all their samples are; the
    hits are the decided items' scores (fractions for pass@k)."""
    return Share(sum(float(score(it["samples"])) for it in decided), len(decided), total)


def _ci95(items: list[dict[str, Any]]) -> list[float] | None:
    """Normal 95% interval over the per-item means of a whole set (1.96 standard errors)."""
    means = [sum(r["correct"] for r in it["samples"]) / len(it["samples"]) for it in items]
    if not means:
        return None
    acc = sum(means) / len(means)
    sd = statistics.pstdev(means) if len(means) > 1 else 0.0
    half = 1.96 * sd / math.sqrt(len(means))
    return [max(0.0, acc - half), min(1.0, acc + half)]


def breakdowns(bench: Benchmark, items: list[dict[str, Any]], n: int) -> dict[str, dict[str, Any]]:
    """category key -> value -> items and avg@n accuracy (a `Share.to_json()` over the
    samples of those items; an item without an answer has n undecided ones), keys in the
    benchmark's order."""
    groups: dict[str, dict[str, list[int]]] = defaultdict(
        lambda: defaultdict(lambda: [0, 0, 0, 0])  # items, right, judged, samples
    )
    for it in items:
        rows = it["samples"]
        for key, value in (it["categories"] or {}).items():
            g = groups[key][str(value)]
            g[0] += 1
            g[1] += sum(r["correct"] for r in rows)
            g[2] += sum(r["judged"] for r in rows)
            g[3] += len(rows) if rows else n
    order = [k for k in bench.category_keys if k in groups] + sorted(
        k for k in groups if k not in bench.category_keys
    )
    return {
        key: {
            value: {"items": g[0], "accuracy": Share(g[1], g[2], g[3]).to_json()}
            for value, g in sorted(groups[key].items())
        }
        for key in order
    }


def mean_share(figures: list[dict[str, Any]]) -> Share:
    """The unweighted mean of several `Share.to_json()` figures (one per benchmark), as a Share
    whose value and bounds are the means of theirs: each figure weighs 1, so each of its items
    weighs 1 / its total. Whole only when every figure is."""
    sets = [f for f in figures if f["total"]]
    return Share(
        sum(f["hits"] / f["total"] for f in sets),
        sum(f["decided"] / f["total"] for f in sets),
        len(sets),
    )
