"""Stage `decontam`: drop problems whose question or image matches a benchmark item.

References are `(benchmark name, Problem)` pairs (the CLI loads them from the evaluation
registry; this module does not know where they come from). A problem is contaminated by an
item when
- text: they share at least `text_threshold` of the n-grams (`ngram` word tokens, a CJK
  character is a token) of the shorter of the two normalized questions (texts shorter than
  n tokens count as one n-gram), or
- image: one of its images is within `image_distance` (dHash Hamming) of one of the item's.
  Blank or flat images (hash 0 or all ones) never match.
Dropped problems carry `contaminated:<benchmark>` and a detail naming the item and the
evidence; the report counts matches per benchmark and kind."""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from deepvision.curate.hashing import dhash
from deepvision.curate.modelcall import ModelConfig
from deepvision.curate.stage import ChunkResult, Outcome, References, Stage
from deepvision.errors import UsageError
from deepvision.records import Problem, normalize_question

_TOKEN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|\w+")
_FLAT = {0, (1 << 64) - 1}


def ngram_hashes(text: str, n: int) -> set[int]:
    tokens = _TOKEN.findall(normalize_question(text))
    if not tokens:
        return set()
    grams = [tokens] if len(tokens) < n else [tokens[i : i + n] for i in range(len(tokens) - n + 1)]
    return {
        int.from_bytes(hashlib.blake2b(" ".join(g).encode(), digest_size=8).digest(), "little")
        for g in grams
    }


class DecontamStage(Stage):
    name = "decontam"

    def __init__(
        self,
        references: Iterable[tuple[str, Problem]],
        *,
        ngram: int = 8,
        text_threshold: float = 0.5,
        image_distance: int = 3,
    ) -> None:
        self.ngram = ngram
        self.text_threshold = text_threshold
        self.image_distance = image_distance
        self.items: list[tuple[str, str]] = []  # (benchmark, item id)
        self.item_grams: list[int] = []
        self.gram_index: dict[int, list[int]] = defaultdict(list)
        self.image_hashes: list[tuple[int, int]] = []  # (hash, item)
        self.bench_sizes: Counter = Counter()
        for bench, p in references:
            k = len(self.items)
            self.items.append((bench, p.id))
            self.bench_sizes[bench] += 1
            grams = ngram_hashes(p.question, ngram)
            self.item_grams.append(len(grams))
            for g in grams:
                self.gram_index[g].append(k)
            for im in p.images:
                h = dhash(im.bytes) if im.bytes else None
                if h is not None and h not in _FLAT:
                    self.image_hashes.append((h, k))
        self.gram_index = dict(self.gram_index)
        self._bands = self._band_index()

    @classmethod
    def from_pipeline(
        cls,
        model: ModelConfig | None,
        references: References | None,
        *,
        benchmarks: tuple[str, ...] = ("all",),
        data_dir: Path | None = None,
        **options: Any,
    ) -> DecontamStage:
        """`benchmarks` (names, or `all`) found in `data_dir`, through `references`."""
        if references is None:
            raise UsageError("decontam needs a loader of benchmark references")
        return cls(references(list(benchmarks), data_dir), **options)

    def _band_index(self) -> dict[tuple[int, int], list[int]]:
        d = self.image_distance
        # Pigeonhole: hashes within distance d <= 7 agree on one of d + 1 bands; a larger d
        # puts every reference in one bucket (compared with each image).
        nb = d + 1 if d <= 7 else 1
        self._nb, self._width = nb, 64 // nb if d <= 7 else 0
        bands: dict[tuple[int, int], list[int]] = defaultdict(list)
        mask = (1 << self._width) - 1
        for j, (h, _) in enumerate(self.image_hashes):
            for b in range(nb):
                bands[(b, (h >> (self._width * b)) & mask)].append(j)
        return dict(bands)

    def config(self) -> dict[str, Any]:
        return {
            "ngram": self.ngram,
            "text_threshold": self.text_threshold,
            "image_distance": self.image_distance,
            "benchmarks": dict(sorted(self.bench_sizes.items())),
        }

    def _text_match(self, p: Problem) -> tuple[int, float] | None:
        grams = ngram_hashes(p.question, self.ngram)
        if not grams:
            return None
        hits: Counter = Counter()
        for g in grams:
            for k in self.gram_index.get(g, ()):
                hits[k] += 1
        best = None
        for k, shared in hits.items():
            score = shared / min(len(grams), self.item_grams[k])
            if score >= self.text_threshold and (best is None or score > best[1]):
                best = (k, score)
        return best

    def _image_match(self, p: Problem) -> tuple[int, int] | None:
        mask = (1 << self._width) - 1
        best = None
        for im in p.images:
            h = dhash(im.bytes) if im.bytes else None
            if h is None or h in _FLAT:
                continue
            seen: set[int] = set()
            for b in range(self._nb):
                for j in self._bands.get((b, (h >> (self._width * b)) & mask), ()):
                    if j in seen:
                        continue
                    seen.add(j)
                    ref, k = self.image_hashes[j]
                    dist = (h ^ ref).bit_count()
                    if dist <= self.image_distance and (best is None or dist < best[1]):
                        best = (k, dist)
        return best

    def process(self, problems: list[Problem], work: Path) -> ChunkResult:
        out = []
        for p in problems:
            text = self._text_match(p)
            if text is not None:
                bench, item = self.items[text[0]]
                out.append(
                    Outcome(
                        p,
                        f"contaminated:{bench}",
                        f"text: {text[1]:.2f} of n-grams shared with {item}",
                    )
                )
                continue
            image = self._image_match(p) if self.image_hashes else None
            if image is not None:
                bench, item = self.items[image[0]]
                out.append(
                    Outcome(
                        p, f"contaminated:{bench}", f"image: dHash distance {image[1]} to {item}"
                    )
                )
                continue
            out.append(Outcome(p))
        return ChunkResult(out)
