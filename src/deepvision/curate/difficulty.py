"""Stage `difficulty`: n rollouts per problem from a policy model, each judged by
`deepvision.verify`; `pass_rate` = k/n; keep a band (default [1/8, 7/8]).

Optional knowledge-guided selection: problems in `upper_band` (e.g. [5/8, 7/8]) are not all
kept; `upper_target` of them are chosen, each time the one whose rarest knowledge point (or
topic, when it has none) is least represented among the problems kept so far (ties: a seeded
hash of the id), so under-represented knowledge points fill the band first.

Drop reasons: `too_hard` (below the band), `too_easy` (above), `model_error` (no rollouts),
`upper_band_not_selected`."""

from __future__ import annotations

import hashlib
import heapq
from collections import Counter
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import pyarrow as pa

from deepvision.curate.modelcall import ModelConfig, request_key, sample
from deepvision.curate.stage import ChunkResult, Outcome, Stage
from deepvision.data.prompts import DEFAULT_SYSTEM_PROMPT, build_messages
from deepvision.data.select import parse_range
from deepvision.errors import UsageError
from deepvision.llm.client import Request
from deepvision.llm.messages import problem_image_sources
from deepvision.records import PASS_RATE, PassRate, Problem
from deepvision.verify import Item, verify_batch


def _band(text: str, param: str) -> tuple[Fraction, Fraction]:
    try:
        lo, hi = parse_range(text)
    except UsageError as exc:
        raise UsageError(exc.reason, param=param) from None
    return (lo if lo is not None else Fraction(0), hi if hi is not None else Fraction(1))


class DifficultyStage(Stage):
    name = "difficulty"
    uses_model = "required"
    columns = (pa.field(PASS_RATE, pa.string()),)

    def __init__(
        self,
        model: ModelConfig,
        *,
        n: int = 8,
        band: str = "1/8..7/8",
        upper_band: str | None = None,
        upper_target: int | None = None,
        system_prompt: str | None = DEFAULT_SYSTEM_PROMPT,
        seed: int = 0,
    ) -> None:
        if n < 1:
            raise UsageError(f"must be at least 1, got {n}", param="n")
        self.model = model
        self.n = n
        self.band_text = band
        self.band = _band(band, "band")
        self.upper_text = upper_band
        self.upper = _band(upper_band, "upper_band") if upper_band else None
        if (self.upper is None) != (upper_target is None):
            raise UsageError(
                "knowledge-guided selection needs both upper_band and upper_target",
                param="upper_target" if upper_target is None else "upper_band",
            )
        if upper_target is not None and upper_target < 0:
            raise UsageError(
                f"must be 0 or more problems, got {upper_target}", param="upper_target"
            )
        self.upper_target = upper_target
        self.system_prompt = system_prompt
        self.seed = seed
        self.selects = self.upper is not None

    def config(self) -> dict[str, Any]:
        return {
            "model": self.model.public(),
            "n": self.n,
            "band": self.band_text,
            "upper_band": self.upper_text,
            "upper_target": self.upper_target,
            "system_prompt": self.system_prompt,
            "seed": self.seed,
        }

    def process(self, problems: list[Problem], work: Path) -> ChunkResult:
        reqs = [
            Request(
                request_key(i, p),
                {},
                build_messages(p, self.system_prompt),
                problem_image_sources(p),
            )
            for i, p in enumerate(problems)
        ]
        texts, errors, usage = sample(
            reqs, work.with_name(work.name + ".rollouts"), self.model, self.n
        )
        items, owners = [], []
        for i, p in enumerate(problems):
            for t in texts.get(request_key(i, p), [])[: self.n]:
                items.append(
                    Item(
                        t,
                        p.answer,
                        tuple(p.equivalent_answers),
                        tuple(p.options) if p.options else None,
                        True,
                    )
                )
                owners.append(i)
        verdicts = verify_batch(items) if items else []
        correct = Counter(i for i, v in zip(owners, verdicts, strict=True) if v.correct)
        got = Counter(owners)
        out = []
        lo, hi = self.band
        for i, p in enumerate(problems):
            if got[i] < self.n:
                reason = errors.get(request_key(i, p), f"{got[i]} of {self.n} rollouts returned")
                out.append(Outcome(p, "model_error", reason, note="model_error"))
                continue
            p.pass_rate = PassRate(correct[i], self.n)
            rate = p.pass_rate.value
            if rate < lo:
                out.append(Outcome(p, "too_hard", f"pass rate {p.pass_rate}"))
            elif rate > hi:
                out.append(Outcome(p, "too_easy", f"pass rate {p.pass_rate}"))
            else:
                out.append(Outcome(p))
        return ChunkResult(out, usage)

    def summary(self, problem: Problem) -> Any:
        assert problem.pass_rate is not None
        keys = problem.knowledge_points or ["/".join(problem.topic[:4])]
        return [str(problem.pass_rate), keys]

    def _rank(self, pid: str) -> int:
        h = hashlib.blake2b(f"{self.seed}:{pid}".encode(), digest_size=8).digest()
        return int.from_bytes(h, "big")

    def select(self, summaries: Iterator[tuple[str, Any]]) -> dict[int, tuple[str, str]]:
        assert self.upper is not None and self.upper_target is not None
        lo, hi = self.upper
        counts: Counter = Counter()
        upper: list[tuple[int, str, list[str]]] = []
        for pos, (pid, (rate, keys)) in enumerate(summaries):
            value = PassRate.parse(rate).value
            if lo <= value <= hi:
                upper.append((pos, pid, keys))
            else:
                counts.update(keys)
        # Greedy with lazy re-scoring: pop the candidate with the rarest knowledge point.
        heap = [
            (min(counts[k] for k in keys), self._rank(pid), pos, pid, keys)
            for pos, pid, keys in upper
        ]
        heapq.heapify(heap)
        chosen: set[int] = set()
        while heap and len(chosen) < self.upper_target:
            score, r, pos, pid, keys = heapq.heappop(heap)
            now = min(counts[k] for k in keys)
            if now != score:
                heapq.heappush(heap, (now, r, pos, pid, keys))
                continue
            chosen.add(pos)
            counts.update(keys)
        return {
            pos: (
                "upper_band_not_selected",
                f"upper band {self.upper_text} full ({self.upper_target} chosen)",
            )
            for pos, _, _ in upper
            if pos not in chosen
        }
