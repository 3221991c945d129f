"""Compact signatures for near-duplicate search: MinHash of normalized question text
(character shingles, so Chinese and English behave alike) and a 64-bit difference hash
(dHash) of each image. Both are deterministic across processes and machines."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from deepvision.records import normalize_question

SHINGLE = 5
NUM_PERM = 128
_MASK32 = np.uint64(0xFFFFFFFF)
_SHIFT = np.uint64(32)
_rng = np.random.default_rng(20261125)
# Multiply-shift hashing: odd 64-bit multipliers, arithmetic mod 2^64, the high 32 bits.
_A = _rng.integers(0, 1 << 63, size=NUM_PERM, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
_B = _rng.integers(0, 1 << 63, size=NUM_PERM, dtype=np.uint64)
_BLOCK = 8192  # shingles hashed at once in `minhash`: 8 MiB of 128 x uint64
_POW = np.array([pow(1_000_003, SHINGLE - 1 - j, 1 << 32) for j in range(SHINGLE)], np.uint64)


def shingle_hashes(text: str, k: int = SHINGLE) -> np.ndarray:
    """Distinct 32-bit hashes of the character k-grams of the normalized text."""
    norm = normalize_question(text)
    codes = np.frombuffer(norm.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    if len(codes) < k:
        codes = np.concatenate([codes, np.zeros(k - len(codes), np.uint64)])
    windows = np.lib.stride_tricks.sliding_window_view(codes, k)
    pows = (
        _POW
        if k == SHINGLE
        else np.array([pow(1_000_003, k - 1 - j, 1 << 32) for j in range(k)], np.uint64)
    )
    return np.unique((windows * pows).sum(axis=1) & _MASK32)


def minhash(text: str, block: int = _BLOCK) -> np.ndarray:
    """NUM_PERM minimum hashes (uint32) of the text's shingles. Shingles are hashed `block` at
    a time with running minima, so memory stays bounded however long the question is."""
    x = shingle_hashes(text)
    out = np.full(NUM_PERM, np.iinfo(np.uint64).max, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for start in range(0, len(x), block):
            h = (np.outer(x[start : start + block], _A) + _B) >> _SHIFT
            np.minimum(out, h.min(axis=0), out=out)
    return out.astype(np.uint32)


def jaccard_estimate(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.count_nonzero(a == b)) / len(a)


def dhash(data: bytes, size: int = 8) -> int | None:
    """64-bit difference hash of an image (None if it cannot be decoded)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.draft("L", (size * 4, size * 4))  # JPEG: decode at reduced size
            gray = im.convert("L").resize((size + 1, size), Image.Resampling.BOX)
    except Exception:  # any decoder error: the image has no hash
        return None
    px = np.asarray(gray, dtype=np.int16)
    bits = (px[:, 1:] > px[:, :-1]).flatten()
    return int(np.packbits(bits).view(">u8")[0])


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def popcount64(x: np.ndarray) -> np.ndarray:
    """Bits set in each uint64."""
    return np.unpackbits(x.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)
