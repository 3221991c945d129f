"""DeepVision: RLVR toolkit for multimodal math (data, verification, inference, evaluation,
curation, training).

The names most scripts need are here: `from deepvision import Problem, check`. The verifier
(`check`, `verify_batch`) is imported on first use, so `import deepvision` stays light.
"""

from typing import Any

from deepvision.errors import DataError, DeepVisionError, UsageError
from deepvision.records import Completion, Verdict

__version__ = "0.1.0"

__all__ = [
    "Completion",
    "DataError",
    "DeepVisionError",
    "PassRate",
    "Problem",
    "ProblemImage",
    "UsageError",
    "Verdict",
    "__version__",
    "check",
    "verify_batch",
]

# Imported on first use: the verifier, and the Problem record (pyarrow).
_LAZY = {
    "check": "deepvision.verify",
    "verify_batch": "deepvision.verify",
    "PassRate": "deepvision.records",
    "Problem": "deepvision.records",
    "ProblemImage": "deepvision.records",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'deepvision' has no attribute {name!r}")
