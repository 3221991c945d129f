"""Stage `dedup`: exact and near-duplicate problems, one representative per group.

Two problems are duplicates when, for the pair itself, all of these hold:

- their questions match: the same normalized text, or near-duplicates (MinHash estimate of
  the Jaccard similarity of character 5-gram sets >= `text_threshold`);
- their images match one to one: the same bytes, or dHashes within `image_distance` (equal
  bytes also for bytes that cannot be decoded);
- at most one of the two is only near: a reworded question needs the same image bytes, a
  near image the same question. Two fuzzy matches at once are what templated problems look
  like ("What is the minimum value ..." and "... maximum value ..." over two parabolas);
- their reference answers are equivalent by `deepvision.verify`, with the same options (a
  letter means its option). Templated figures with the same text and a similar drawing but
  other numbers are other problems: "axis of symmetry x=3" is not a copy of "x=-3".

A question alone is not enough: "Find x." with another figure is another problem. Questions
are not chained: A~B and B~C with A's image on C does not join A and C; a group is the rows
connected by such pairs. The exact part is the key of `deepvision data dedup` (`content_hash`:
normalized question + image bytes), with the options and the answer test on top.

The same question, image bytes and options with answers that are not equivalent are a
*conflict*: every version is kept (one per answer) and the groups file lists them, for a person
to settle which answer is right.

Memory holds compact signatures only (512 bytes of MinHash per distinct question, 8 bytes per
image, each distinct answer once), never images: the chunks are hashed in worker processes
(which die with the stage's process) and the groups are found on those signatures. Answers are
compared only for pairs whose questions and images match, each pair of distinct answers once,
all in one `verify_batch` (rules first, math-verify only where no rule decides; a pair that
cannot be decided keeps both problems). The first problem of a group in input order is kept;
the others are dropped (`duplicate`, detail naming the representative) and every group and
conflict is written to `<stem>.groups.jsonl`."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepvision.curate.hashing import NUM_PERM, dhash, minhash
from deepvision.curate.stage import ChunkResult, Outcome, Stage, side_paths
from deepvision.records import Problem, content_hash, normalize_question
from deepvision.verify import Item, verify_batch
from deepvision.workers import process_pool

BANDS = 32  # LSH bands of NUM_PERM // BANDS rows: pairs above ~0.5 similarity become candidates
_BIG_BUCKET = 400  # members of larger LSH buckets are compared with the bucket's first only
ANSWER_RULE = "verify+options"  # in the config: earlier runs (other rules) start over


def _signature(question: str, images: list[bytes | None]) -> list[Any]:
    norm = normalize_question(question)
    text_key = hashlib.blake2b(norm.encode(), digest_size=8).hexdigest()
    sig = base64.b64encode(minhash(question).tobytes()).decode()
    hashes = [
        (dhash(b) if b else None, hashlib.blake2b(b or b"", digest_size=8).hexdigest())
        for b in images
    ]
    return [text_key, sig, hashes]


_NO_BYTES = hashlib.blake2b(b"", digest_size=8).hexdigest()  # an image without bytes


def _same_bytes(a: tuple[int | None, str], b: tuple[int | None, str]) -> bool:
    return a[1] == b[1] and a[1] != _NO_BYTES


def _same_image(a: tuple[int | None, str], b: tuple[int | None, str], d: int) -> bool:
    """Equal bytes, or both decodable with dHashes within `d`."""
    if _same_bytes(a, b):
        return True
    (ha, _), (hb, _) = a, b
    return ha is not None and hb is not None and (ha ^ hb).bit_count() <= d


def _signatures(items: list[tuple[str, list[bytes | None]]]) -> list[list[Any]]:
    return [_signature(q, imgs) for q, imgs in items]


def exact_key(problem: Problem) -> str:
    """The same normalized question and image bytes (`content_hash`, the key of `data
    dedup`) and the same options."""
    key = content_hash(problem.question, problem.images)
    if problem.options:
        options = json.dumps(list(problem.options), ensure_ascii=False).encode()
        key += ":" + hashlib.blake2b(options, digest_size=8).hexdigest()
    return key


def answer_of(problem: Problem) -> list[Any]:
    """[answer, equivalents, options]: what dedup compares. The options belong to the answer:
    a letter means its option, so "B" of other options (or of the same ones in another order)
    is another answer."""
    options = [str(o) for o in problem.options] if problem.options else None
    return [str(problem.answer or ""), [str(e) for e in problem.equivalent_answers], options]


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:  # the smaller index stays root: the first row represents the group
            self.parent[max(ra, rb)] = min(ra, rb)


_Answer = tuple[str, tuple[str, ...], tuple[str, ...] | None]  # answer, equivalents, options


class _Answers:
    """The reference answers of the rows, each distinct one held once, and which pairs of them
    are equivalent. `equal` is asked while candidate pairs are found: it answers at once for
    the same answer, for other options and for pairs already decided, and notes the others;
    `decide` settles every noted pair in one `verify_batch`."""

    def __init__(self) -> None:
        self.values: list[_Answer] = []
        self._ids: dict[_Answer, int] = {}
        self._known: dict[tuple[int, int], bool] = {}
        self._asked: set[tuple[int, int]] = set()

    def add(self, answer: list[Any]) -> int:
        text, equivalents, options = answer
        key = (text, tuple(equivalents), tuple(options) if options else None)
        k = self._ids.setdefault(key, len(self.values))
        if k == len(self.values):
            self.values.append(key)
        return k

    def equal(self, a: int, b: int) -> bool | None:
        """Whether answers `a` and `b` are equivalent; None while that is not decided yet."""
        if a == b:
            return True
        if self.values[a][2] != self.values[b][2]:
            return False
        pair = (min(a, b), max(a, b))
        known = self._known.get(pair)
        if known is None:
            self._asked.add(pair)
        return known

    def decide(self) -> None:
        """Settle the noted pairs at once (the earlier answer is the reference)."""
        pairs = sorted(self._asked)
        self._asked.clear()
        items = [
            Item(self.values[hi][0], self.values[lo][0], *self.values[lo][1:], False)
            for lo, hi in pairs
        ]
        for pair, verdict in zip(pairs, verify_batch(items) if items else [], strict=True):
            self._known[pair] = verdict.correct


@dataclass
class _Rows:
    """What `select` holds per kept row: id, question (index of its distinct text), image
    hashes, exact key, answer (index into `answers`); per distinct question, its MinHash; and
    the pairs of distinct questions that pass the text threshold (`text_pairs`)."""

    ids: list[str] = field(default_factory=list)
    text: list[int] = field(default_factory=list)
    images: list[list[tuple[int | None, str]]] = field(default_factory=list)
    exact: list[str] = field(default_factory=list)
    answer: list[int] = field(default_factory=list)
    sigs: list[bytes] = field(default_factory=list)
    answers: _Answers = field(default_factory=_Answers)
    text_pairs: set[tuple[int, int]] = field(default_factory=set)

    @classmethod
    def read(cls, summaries: Iterator[tuple[str, Any]]) -> _Rows:
        rows = cls()
        text_index: dict[str, int] = {}
        for pid, (text_key, sig, hashes, exact, answer) in summaries:
            rows.ids.append(pid)
            t = text_index.setdefault(text_key, len(text_index))
            if t == len(rows.sigs):
                rows.sigs.append(base64.b64decode(sig))
            rows.text.append(t)
            rows.images.append([(h, b) for h, b in hashes])
            rows.exact.append(exact)
            rows.answer.append(rows.answers.add(answer))
        return rows

    def same_question(self, a: int, b: int) -> bool:
        ta, tb = self.text[a], self.text[b]
        return ta == tb or (min(ta, tb), max(ta, tb)) in self.text_pairs

    def same_answer(self, a: int, b: int) -> bool:
        """Equivalent answers; False while not decided (`_Answers.equal` notes the pair)."""
        return bool(self.answers.equal(self.answer[a], self.answer[b]))


def _join_exact_copies(rows: _Rows, uf: _UnionFind) -> dict[str, list[int]]:
    """Join the rows of one exact key and one answer; return, for each key that comes with
    several answers, the first row of each answer (their pairs are left to the answer test)."""
    first: dict[tuple[str, int], int] = {}
    key_first: dict[str, int] = {}
    heads: dict[str, list[int]] = {}
    for i, key in enumerate(rows.exact):
        j = first.setdefault((key, rows.answer[i]), i)
        if j != i:
            uf.union(j, i)
            continue
        k = key_first.setdefault(key, i)
        if k != i:
            heads.setdefault(key, [k]).append(i)
    return heads


def _join_answer_heads(heads: list[int], rows: _Rows, uf: _UnionFind) -> None:
    """Join the pairs of `heads` (one exact key, other answers) whose answers agree."""
    for k, a in enumerate(heads):
        for b in heads[k + 1 :]:
            if uf.find(a) != uf.find(b) and rows.same_answer(a, b):
                uf.union(a, b)


class DedupStage(Stage):
    name = "dedup"
    selects = True

    def __init__(
        self, text_threshold: float = 0.8, image_distance: int = 4, workers: int | None = None
    ) -> None:
        self.text_threshold = text_threshold
        self.image_distance = image_distance
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._groups: list[dict[str, Any]] = []

    def __getstate__(self):
        d = dict(self.__dict__)
        d["_pool"] = None
        return d

    def config(self) -> dict[str, Any]:
        return {
            "text_threshold": self.text_threshold,
            "image_distance": self.image_distance,
            "answers": ANSWER_RULE,
        }

    def process(self, problems: list[Problem], work: Path) -> ChunkResult:
        items = [(p.question, [im.bytes for im in p.images]) for p in problems]
        workers = self.workers or os.cpu_count() or 1
        if workers > 1 and len(items) > 64:
            if self._pool is None:
                self._pool = process_pool(workers)
            step = -(-len(items) // workers)
            parts = [items[i : i + step] for i in range(0, len(items), step)]
            sigs = [s for part in self._pool.map(_signatures, parts) for s in part]
        else:
            sigs = _signatures(items)
        for p, s in zip(problems, sigs, strict=True):
            p.extra["_dedup_sig"] = s
        return ChunkResult([Outcome(p) for p in problems])

    def summary(self, problem: Problem) -> Any:
        return [
            *problem.extra.pop("_dedup_sig"),
            exact_key(problem),
            answer_of(problem),
        ]

    def select(self, summaries: Iterator[tuple[str, Any]]) -> dict[int, tuple[str, str]]:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        rows = _Rows.read(summaries)
        text_groups, rows.text_pairs = self._text_clusters(rows.sigs)
        # Rows that share a text cluster (transitive, so only a place to look) are candidates.
        by_cluster: dict[int, list[int]] = defaultdict(list)
        for i, t in enumerate(rows.text):
            by_cluster[text_groups.find(t)].append(i)
        clusters = [members for members in by_cluster.values() if len(members) > 1]
        uf = _UnionFind(len(rows.ids))
        answer_heads = _join_exact_copies(rows, uf)
        # The candidate pairs are walked twice: the first walk joins the pairs of one answer
        # and notes the others, which are then decided together; the second joins those
        # found equivalent.
        for walk in range(2):
            if walk:
                rows.answers.decide()
            for heads in answer_heads.values():
                _join_answer_heads(heads, rows, uf)
            for members in clusters:
                self._match_images(members, rows, uf)
        return self._groups_and_drops(rows, uf, answer_heads)

    def _groups_and_drops(
        self, rows: _Rows, uf: _UnionFind, answer_heads: dict[str, list[int]]
    ) -> dict[int, tuple[str, str]]:
        """The drops (all but the first of each group) and the groups file's records: every
        group, and every exact key whose rows stayed apart because their answers differ."""
        groups: dict[int, list[int]] = defaultdict(list)
        for i in range(len(rows.ids)):
            groups[uf.find(i)].append(i)
        drops: dict[int, tuple[str, str]] = {}
        self._groups = []
        for rep, members in groups.items():
            if len(members) == 1:
                continue
            exact = all(rows.exact[m] == rows.exact[rep] for m in members)
            for m in members[1:]:
                how = "exact" if rows.exact[m] == rows.exact[rep] else "near"
                drops[m] = ("duplicate", f"{how} duplicate of {rows.ids[rep]}")
            self._groups.append(
                {
                    "kept": rows.ids[rep],
                    "dropped": [rows.ids[m] for m in members[1:]],
                    "size": len(members),
                    "kind": "exact" if exact else "near",
                }
            )
        for heads in answer_heads.values():
            kept = sorted({uf.find(h) for h in heads})
            if len(kept) > 1:
                self._groups.append(
                    {
                        "kept": [rows.ids[k] for k in kept],
                        "answers": [rows.answers.values[rows.answer[k]][0] for k in kept],
                        "size": len(kept),
                        "kind": "conflict",
                    }
                )
        return drops

    def _text_clusters(self, sigs: list[bytes]) -> tuple[_UnionFind, set[tuple[int, int]]]:
        """Clusters of distinct questions (candidates) and the pairs that pass the threshold."""
        uf = _UnionFind(len(sigs))
        pairs: set[tuple[int, int]] = set()
        if len(sigs) < 2:
            return uf, pairs
        mat = np.frombuffer(b"".join(sigs), dtype=np.uint32).reshape(len(sigs), NUM_PERM)
        rows = NUM_PERM // BANDS
        need = int(np.ceil(self.text_threshold * NUM_PERM))
        for b in range(BANDS):
            band = np.ascontiguousarray(mat[:, b * rows : (b + 1) * rows])
            keys = band.view(np.dtype((np.void, band.dtype.itemsize * rows))).ravel()
            _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
            if counts.max() < 2:
                continue
            order = np.argsort(inverse, kind="stable")
            bounds = np.cumsum(counts)[:-1]
            for members in np.split(order, bounds):
                if len(members) < 2:
                    continue
                heads = members[:1] if len(members) > _BIG_BUCKET else members[:-1]
                for k, h in enumerate(heads):
                    rest = members[k + 1 :]
                    same = np.count_nonzero(mat[rest] == mat[h], axis=1) >= need
                    for r in rest[same]:
                        uf.union(int(h), int(r))
                        pairs.add((min(int(h), int(r)), max(int(h), int(r))))
        return uf, pairs

    def _match_images(self, members: list[int], rows: _Rows, uf: _UnionFind) -> None:
        """Join the pairs of `members` (one text cluster) whose own questions pass the
        threshold, whose images match and whose answers are equivalent."""
        d = self.image_distance
        images = rows.images
        by_count: dict[int, list[int]] = defaultdict(list)
        for r in members:
            by_count[len(images[r])].append(r)
        for same_n in by_count.values():
            if len(same_n) < 2:
                continue
            if not images[same_n[0]]:  # no images: the question (and the answer) decides
                first: dict[tuple[int, int], int] = {}  # (question, answer) -> its first row
                for r in same_n:
                    j = first.setdefault((rows.text[r], rows.answer[r]), r)
                    if j != r:
                        uf.union(j, r)
                heads = list(first.values())
                for k, a in enumerate(heads):
                    for b in heads[k + 1 :]:
                        if (
                            uf.find(a) != uf.find(b)
                            and rows.same_question(a, b)
                            and rows.same_answer(a, b)
                        ):
                            uf.union(a, b)
                continue
            # Pigeonhole: hashes within distance d <= 7 agree on one of d + 1 bands of the
            # first image's hash; a larger d compares all pairs.
            nb = d + 1 if d <= 7 else 1
            width = 64 // nb if d <= 7 else 0
            mask = (1 << width) - 1
            buckets: dict[tuple[int, int], list[int]] = defaultdict(list)
            # Equal bytes are distance 0 even when they cannot be decoded (no dHash): such
            # rows also meet in a bucket of the first image's bytes.
            for r in same_n:
                h0, b0 = images[r][0]
                if b0 != _NO_BYTES:
                    buckets[(-1, b0)].append(r)
                if h0 is None:
                    continue
                for band in range(nb):
                    buckets[(band, (h0 >> (width * band)) & mask)].append(r)
            for bucket in buckets.values():
                for k, a in enumerate(bucket):
                    for b in bucket[k + 1 :]:
                        if uf.find(a) == uf.find(b) or not rows.same_question(a, b):
                            continue
                        reworded = rows.text[a] != rows.text[b]  # needs the very same images
                        if all(
                            _same_bytes(ia, ib) if reworded else _same_image(ia, ib, d)
                            for ia, ib in zip(images[a], images[b], strict=True)
                        ) and rows.same_answer(a, b):
                            uf.union(a, b)

    def finish(self, out: Path) -> dict[str, Any]:
        stem = side_paths(out)["drops"]
        path = stem.with_name(stem.name.replace(".drops.", ".groups."))
        with path.open("w", encoding="utf-8") as fh:
            for g in self._groups:
                fh.write(json.dumps(g, ensure_ascii=False) + "\n")
        return {
            "groups": sum(g["kind"] != "conflict" for g in self._groups),
            "groups_file": str(path),
            "exact_groups": sum(g["kind"] == "exact" for g in self._groups),
            "conflicts": sum(g["kind"] == "conflict" for g in self._groups),
        }
