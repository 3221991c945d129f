"""MinHash signatures: unchanged by how the shingles are processed, bounded memory."""

from __future__ import annotations

import random
import tracemalloc

import numpy as np

from deepvision.curate.hashing import _A, _B, _SHIFT, minhash, shingle_hashes


def _text(n: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz 0123456789") for _ in range(n))


def _all_at_once(text: str) -> np.ndarray:
    """The signature as defined: minimum over every shingle of each permutation's hash."""
    x = shingle_hashes(text)
    with np.errstate(over="ignore"):
        return ((np.outer(x, _A) + _B) >> _SHIFT).min(axis=0).astype(np.uint32)


def test_minhash_in_blocks_equals_the_whole_signature():
    for text in ["Find x.", "如图，求阴影部分的面积。", _text(30_000, seed=1)]:
        assert np.array_equal(minhash(text), _all_at_once(text))
        assert np.array_equal(minhash(text, block=7), _all_at_once(text))
    assert len(shingle_hashes(_text(30_000, seed=1))) > 8192  # more than one block


def test_minhash_memory_stays_bounded_for_a_huge_question():
    text = _text(400_000)
    minhash(text)  # warm up
    tracemalloc.start()
    try:
        sig = minhash(text)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sig.shape == (128,)
    # all shingles at once would hold 400k x 128 x 8 bytes (> 400 MB) per temporary array
    assert peak < 64 * 2**20, f"peak {peak / 2**20:.0f} MiB"
