"""Stage `dedup`: exact and near-duplicate problems, one representative per group.

Two problems are duplicates when their questions are near-duplicates (MinHash estimate of the
Jaccard similarity of character 5-gram sets >= `text_threshold`; equal normalized text is
exact) and their images match one to one (dHash Hamming distance <= `image_distance`; equal
bytes is exact and distance 0, also for bytes that cannot be decoded). A question alone is
not enough: "Find x." with another figure is another problem. The exact part is the key of
`deepvision data dedup` (`content_hash`: normalized question + image bytes), so both commands
agree on exact duplicates. Both tests hold for each
joined pair itself (questions are not chained: A~B and B~C with A's image on C does not join
A and C); a group is the rows connected by such pairs.

Memory holds compact signatures only (512 bytes of MinHash per distinct question, 8 bytes per
image), never images: the chunks are hashed in worker processes and the groups are found on
those signatures. The first problem of a group in input order is kept; the others are dropped
(`duplicate`, detail naming the representative) and every group is written to
`<stem>.groups.jsonl`."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from deepvision.curate.hashing import NUM_PERM, dhash, minhash
from deepvision.curate.stage import ChunkResult, Outcome, Stage, side_paths
from deepvision.records import Problem, content_hash, normalize_question

BANDS = 32  # LSH bands of NUM_PERM // BANDS rows: pairs above ~0.5 similarity become candidates
_BIG_BUCKET = 400  # members of larger LSH buckets are compared with the bucket's first only


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


def _same_image(a: tuple[int | None, str], b: tuple[int | None, str], d: int) -> bool:
    """Equal bytes, or both decodable with dHashes within `d`."""
    (ha, ba), (hb, bb) = a, b
    if ba == bb and ba != _NO_BYTES:
        return True
    return ha is not None and hb is not None and (ha ^ hb).bit_count() <= d


def _signatures(items: list[tuple[str, list[bytes | None]]]) -> list[list[Any]]:
    return [_signature(q, imgs) for q, imgs in items]


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
        return {"text_threshold": self.text_threshold, "image_distance": self.image_distance}

    def process(self, problems: list[Problem], work: Path) -> ChunkResult:
        items = [(p.question, [im.bytes for im in p.images]) for p in problems]
        workers = self.workers or os.cpu_count() or 1
        if workers > 1 and len(items) > 64:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(workers)
            step = -(-len(items) // workers)
            parts = [items[i : i + step] for i in range(0, len(items), step)]
            sigs = [s for part in self._pool.map(_signatures, parts) for s in part]
        else:
            sigs = _signatures(items)
        for p, s in zip(problems, sigs, strict=True):
            p.extra["_dedup_sig"] = s
        return ChunkResult([Outcome(p) for p in problems])

    def summary(self, problem: Problem) -> Any:
        return [*problem.extra.pop("_dedup_sig"), content_hash(problem.question, problem.images)]

    def select(self, summaries: Iterator[tuple[str, Any]]) -> dict[int, tuple[str, str]]:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        ids: list[str] = []
        row_text: list[int] = []
        row_images: list[list[tuple[int | None, str]]] = []
        row_exact: list[str] = []
        text_index: dict[str, int] = {}
        sigs: list[bytes] = []
        for pid, (text_key, sig, hashes, exact) in summaries:
            ids.append(pid)
            t = text_index.setdefault(text_key, len(text_index))
            if t == len(sigs):
                sigs.append(base64.b64decode(sig))
            row_text.append(t)
            row_images.append([(h, b) for h, b in hashes])
            row_exact.append(exact)
        n = len(ids)
        text_groups, text_pairs = self._text_clusters(sigs)
        uf = _UnionFind(n)
        # Exact duplicates first (same key as `data dedup`).
        first_exact: dict[str, int] = {}
        for i, key in enumerate(row_exact):
            j = first_exact.setdefault(key, i)
            if j != i:
                uf.union(j, i)
        # Near duplicates: candidate rows share a text cluster (transitive, so only a place to
        # look); two rows join only when their own questions pass the threshold and their own
        # images match, so A~B and B~C never make A a duplicate of C by themselves.
        by_cluster: dict[int, list[int]] = defaultdict(list)
        for i, t in enumerate(row_text):
            by_cluster[text_groups.find(t)].append(i)

        def text_ok(a: int, b: int) -> bool:
            ta, tb = row_text[a], row_text[b]
            return ta == tb or (min(ta, tb), max(ta, tb)) in text_pairs

        for rows in by_cluster.values():
            if len(rows) > 1:
                self._match_images(rows, row_images, uf, text_ok, row_text)
        groups: dict[int, list[int]] = defaultdict(list)
        for i in range(n):
            groups[uf.find(i)].append(i)
        drops: dict[int, tuple[str, str]] = {}
        self._groups = []
        for rep, members in groups.items():
            if len(members) == 1:
                continue
            exact = all(row_exact[m] == row_exact[rep] for m in members)
            kind = "exact" if exact else "near"
            for m in members[1:]:
                how = "exact" if row_exact[m] == row_exact[rep] else "near"
                drops[m] = ("duplicate", f"{how} duplicate of {ids[rep]}")
            self._groups.append(
                {
                    "kept": ids[rep],
                    "dropped": [ids[m] for m in members[1:]],
                    "size": len(members),
                    "kind": kind,
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

    def _match_images(
        self,
        rows: list[int],
        images: list[list],
        uf: _UnionFind,
        text_ok: Callable[[int, int], bool],
        row_text: list[int],
    ) -> None:
        """Join the pairs of `rows` whose questions pass (`text_ok`) and whose images match."""
        d = self.image_distance
        by_count: dict[int, list[int]] = defaultdict(list)
        for r in rows:
            by_count[len(images[r])].append(r)
        for same_n in by_count.values():
            if len(same_n) < 2:
                continue
            if not images[same_n[0]]:  # no images: the question decides
                first: dict[int, int] = {}  # question -> its first row here
                for r in same_n:
                    if row_text[r] in first:
                        uf.union(first[row_text[r]], r)
                    else:
                        first[row_text[r]] = r
                heads = list(first.values())
                for k, a in enumerate(heads):
                    for b in heads[k + 1 :]:
                        if text_ok(a, b):
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
            for members in buckets.values():
                for k, a in enumerate(members):
                    for b in members[k + 1 :]:
                        if uf.find(a) == uf.find(b) or not text_ok(a, b):
                            continue
                        if all(
                            _same_image(ia, ib, d)
                            for ia, ib in zip(images[a], images[b], strict=True)
                        ):
                            uf.union(a, b)

    def finish(self, out: Path) -> dict[str, Any]:
        stem = side_paths(out)["drops"]
        path = stem.with_name(stem.name.replace(".drops.", ".groups."))
        with path.open("w", encoding="utf-8") as fh:
            for g in self._groups:
                fh.write(json.dumps(g, ensure_ascii=False) + "\n")
        return {
            "groups": len(self._groups),
            "groups_file": str(path),
            "exact_groups": sum(g["kind"] == "exact" for g in self._groups),
        }
