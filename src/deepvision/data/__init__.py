"""Read, validate, describe, filter, export and synthesize Problems.

The public names below load their module on first use, so `import deepvision.data.reader`
(what each `deepvision data` command does) pulls in nothing else: stats, plots and the
synthetic engine cost start-up time only for the commands that use them. The functions
named like their module (`export.export`, `validate.validate`) are reached through the module.
"""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {
    "iter_problems": "reader",
    "iter_problem_batches": "reader",
    "open_sources": "reader",
    "Reject": "reader",
    "ProblemBatch": "reader",
    "ValidationReport": "validate",
    "collect_stats": "stats",
    "write_stats": "stats",
    "DatasetStats": "stats",
    "Filter": "select",
    "filter_problems": "select",
    "sample_problems": "select",
    "split_problems": "select",
    "dedup_problems": "select",
    "SelectionReport": "select",
    "ExportOptions": "export",
    "ExportReport": "export",
    "ExportFormat": "export",
    "FORMATS": "export",
    "get_format": "export",
    "ProblemWriter": "writer",
    "generate": "synth",
    "sample_path": "sample",
    "DEFAULT_SYSTEM_PROMPT": "prompts",
    "build_messages": "prompts",
    "user_text": "prompts",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'deepvision.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"deepvision.data.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
