"""Column-level checks of a tabular source against the DeepVision layout."""

from __future__ import annotations

import pyarrow as pa

from deepvision import records as r

# Accepted types of known columns. Image lists may also hold plain paths or plain bytes.
_STRING = pa.string()
EXPECTED_TYPES: dict[str, tuple[pa.DataType, ...]] = {
    r.ID: (_STRING,),
    r.QUESTION: (_STRING,),
    r.IMAGES: (r.IMAGE_TYPE, pa.list_(pa.string()), pa.list_(pa.binary())),
    r.DATA_SOURCE: (_STRING,),
    r.ABILITY: (_STRING,),
    r.DOMAIN_ANNO: (_STRING,),
    r.PROMPT: (r.MESSAGES_TYPE,),
    # Only ground_truth is required; equivalent_answers and style may be absent.
    r.REWARD_MODEL: (pa.struct([("ground_truth", _STRING)]),),
    r.PASS_RATE: (_STRING,),
    r.VISION_ANNO: (_STRING,),
    r.NECESSITY_ANNO: (_STRING,),
    r.OPTIONS: (pa.list_(pa.string()),),
}


def _canonical(t: pa.DataType) -> tuple:
    """A comparable shape of a type: large/view variants equal their plain forms, struct
    fields compared as a set (writers order them differently)."""
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return ("string",)
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return ("binary",)
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t):
        return ("list", _canonical(t.value_type))
    if pa.types.is_struct(t):
        return ("struct", frozenset((f.name, _canonical(f.type)) for f in t))
    return (str(t),)


def _struct_fits(actual: tuple, expected: tuple) -> bool:
    """A struct fits if it has every expected field with a fitting type (extra fields allowed)."""
    if actual[0] != expected[0]:
        return False
    if actual[0] == "list":
        return _struct_fits(actual[1], expected[1])
    if actual[0] == "struct":
        have = dict(actual[1])
        return all(n in have and _struct_fits(have[n], t) for n, t in expected[1])
    return actual == expected


def type_name(t: pa.DataType) -> str:
    return str(t).replace("large_", "")


def check_schema(schema: pa.Schema) -> list[tuple[str, str]]:
    """(column, reason) for each column name used twice, each required column missing and
    each known column of wrong type."""
    problems = []
    for col in dict.fromkeys(schema.names):
        if schema.names.count(col) > 1:
            problems.append((col, f"{schema.names.count(col)} columns have this name"))
    if problems:  # a column cannot be told from its twin, so its type cannot be checked
        return problems
    for col in r.REQUIRED_COLUMNS:
        if col not in schema.names:
            problems.append((col, "required column is missing"))
    for col in schema.names:
        expected = EXPECTED_TYPES.get(col)
        if expected is None:
            continue
        actual = _canonical(schema.field(col).type)
        if not any(_struct_fits(actual, _canonical(e)) for e in expected):
            want = " or ".join(type_name(e) for e in expected)
            got = type_name(schema.field(col).type)
            problems.append((col, f"has type {got}, expected {want}"))
    return problems
