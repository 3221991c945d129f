"""DeepVision: RLVR toolkit for multimodal math (data, verification, inference, evaluation,
curation, training)."""

from deepvision.errors import DataError, DeepVisionError, UsageError
from deepvision.records import PassRate, Problem, ProblemImage

__version__ = "0.1.0"

__all__ = [
    "DataError",
    "DeepVisionError",
    "PassRate",
    "Problem",
    "ProblemImage",
    "UsageError",
    "__version__",
]
