"""Column-wise reading of DeepVision-layout Arrow batches, for the commands whose speed
matters at 100K rows (`data stats`, `data export --to verl`).

A batch is read column by column only when its columns have our exact types and all its text
is UTF-8 (`column_wise`). Every
condition under which `problem_from_row` would report an issue is evaluated per row
(structure here, string columns through the very decoders a Problem uses); rows that meet
any of them are left to the Problem path, which names the issues.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from deepvision.data.sources import RowBatch, compact_lists
from deepvision.records import (
    IMAGES,
    OPTIONS,
    PROBLEM_SCHEMA,
    PROMPT,
    QUESTION,
    REWARD_MODEL,
)

_EXACT_TYPES = {f.name: f.type for f in PROBLEM_SCHEMA}


def exact_layout(schema: pa.Schema) -> bool:
    """Whether every known column of `schema` has exactly the type we write."""
    return all(
        schema.field(name).type.equals(_EXACT_TYPES[name])
        for name in schema.names
        if name in _EXACT_TYPES
    )


def column_wise(rb: RowBatch) -> bool:
    """Whether a batch can be read column by column: Arrow rows in our exact layout whose
    text is all UTF-8 (a row with bad text goes the Problem way, which rejects it)."""
    return rb.arrow is not None and exact_layout(rb.arrow.schema) and not rb.text_faults


def mask(arr: pa.Array) -> np.ndarray:
    """Null positions of an array as a numpy bool array."""
    if not arr.null_count:
        return np.zeros(len(arr), dtype=bool)
    return np.array(arr.is_null().to_pylist(), dtype=bool)


def item_rows(lists: pa.ListArray) -> tuple[np.ndarray, np.ndarray]:
    """(number of items per row, row of each item) of a list column (null lists: 0 items),
    aligned with `items(lists)`."""
    lists = compact_lists(lists)
    offsets = np.frombuffer(lists.buffers()[1], dtype=np.int32)
    offsets = offsets[lists.offset : lists.offset + len(lists) + 1]
    counts = np.diff(offsets)
    return counts, np.repeat(np.arange(len(lists)), counts)


def items(lists: pa.Array) -> pa.Array:
    """The items of a list column, row after row, aligned with `item_rows(lists)`."""
    return compact_lists(lists).flatten()


def field(structs: pa.Array, name: str) -> pa.Array:
    """A child of a struct array, with the parent's nulls and slice applied."""
    return structs.flatten()[structs.type.get_field_index(name)]


def _flag_null_items(lists: pa.ListArray, unusual: np.ndarray) -> pa.Array:
    values = items(lists)
    if values.null_count:
        unusual[item_rows(lists)[1][mask(values)]] = True
    return values


def unusual_rows(col: dict[str, pa.Array]) -> np.ndarray:
    """Rows (of a batch in the exact layout) with a null question, image, image bytes (an
    image given by path only), reward model, answer, equivalent answer, chat message, role
    or option: the Problem path decides what they are."""
    unusual = mask(col[QUESTION])
    data = field(_flag_null_items(col[IMAGES], unusual), "bytes")
    unusual[item_rows(col[IMAGES])[1][mask(data)]] = True
    unusual |= mask(field(col[REWARD_MODEL], "ground_truth"))
    _flag_null_items(field(col[REWARD_MODEL], "equivalent_answers"), unusual)
    if PROMPT in col:
        roles = field(_flag_null_items(col[PROMPT], unusual), "role")
        unusual[item_rows(col[PROMPT])[1][mask(roles)]] = True
    if OPTIONS in col:
        _flag_null_items(col[OPTIONS], unusual)
    return unusual


def decoded(column: pa.Array, decode: Callable[[str], Any], unusual: np.ndarray) -> list[Any]:
    """`decode` of each row's value (None for null), computed once per distinct value in the
    batch; rows whose value does not decode are flagged unusual."""
    memo: dict[str, Any] = {}
    out: list[Any] = []
    for i, raw in enumerate(column.to_pylist()):
        if raw is None:
            out.append(None)
            continue
        if raw not in memo:
            try:
                memo[raw] = decode(raw)
            except ValueError:
                memo[raw] = None
        if memo[raw] is None:
            unusual[i] = True
        out.append(memo[raw])
    return out
