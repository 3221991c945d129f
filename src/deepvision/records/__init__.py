"""The on-disk contract: the three records (`Problem`, `Completion`, `Verdict`) and their
codecs, the exactly-once `AppendLog`, image helpers and the file names each verb writes.

- `problem`: Problem and the DeepVision-103K row layout (lossless both ways), content ids;
- `lines`: Completion and Verdict as JSONL lines;
- `log`: `iter_jsonl` and `AppendLog` (torn-tail repair, keys, batched flush, fsync);
- `images`: sniffing, data URIs, placeholders, `<image k>` markers, paths inside a folder;
- `runfiles`: the run-folder names of infer, judge and eval;
- `share`: the rule for a figure over a partly undecided set (bounds, never a partial figure as
  the result).
"""

from typing import Any

from deepvision.records.images import (
    IMAGE_MARKER,
    IMAGE_PLACEHOLDER,
    PNG_SIGNATURE,
    count_placeholders,
    data_uri,
    decode_data_uri,
    place_images,
    resolve_inside,
    sniff_mime,
)
from deepvision.records.lines import Completion, Verdict
from deepvision.records.log import AppendLog, iter_jsonl, repair_tail
from deepvision.records.runfiles import EvalFiles, InferFiles, JudgeFiles
from deepvision.records.share import Share


def __getattr__(name: str) -> Any:
    if name in _LOADED_ON_FIRST_USE:
        from deepvision.records import problem

        value = getattr(problem, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'deepvision.records' has no attribute {name!r}")


__all__ = [
    "ABILITY",
    "DATA_SOURCE",
    "DOMAIN_ANNO",
    "EMPTY_SENTINEL",
    "ID",
    "IMAGES",
    "IMAGE_MARKER",
    "IMAGE_PLACEHOLDER",
    "IMAGE_TYPE",
    "MESSAGES_TYPE",
    "NECESSITY_ANNO",
    "OPTIONS",
    "PASS_RATE",
    "PNG_SIGNATURE",
    "PROBLEM_SCHEMA",
    "PROMPT",
    "QUESTION",
    "REQUIRED_COLUMNS",
    "REWARD_MODEL",
    "REWARD_MODEL_TYPE",
    "VISION_ANNO",
    "VISUAL_ELEMENT_CATEGORIES",
    "AppendLog",
    "Completion",
    "EvalFiles",
    "InferFiles",
    "JudgeFiles",
    "PassRate",
    "Problem",
    "ProblemImage",
    "RowIssue",
    "Share",
    "Verdict",
    "content_hash",
    "content_hash_of",
    "count_placeholders",
    "data_uri",
    "decode_column",
    "decode_data_uri",
    "iter_jsonl",
    "normalize_question",
    "place_images",
    "problem_from_row",
    "problem_to_row",
    "problems_to_batch",
    "repair_tail",
    "resolve_inside",
    "sniff_mime",
]

# The names of `__all__` not imported above: the Problem record and its parquet layout
# (`records.problem`) need pyarrow, the heaviest import of the toolkit (and numpy with it);
# they load on first use, so what only reads and writes JSONL lines (`infer` on JSONL, its
# sender processes, `judge`) starts without them.
_LOADED_ON_FIRST_USE = frozenset(__all__) - set(globals())
