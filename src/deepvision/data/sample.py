"""The small generated sample shipped with the package: every data command's default input."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from deepvision.errors import DataError

SAMPLE_N = 240
SAMPLE_SEED = 0
SAMPLE_FILE = "deepvision-sample.parquet"


def sample_path() -> Path:
    """Path of the embedded sample (`deepvision data synth --n 240 --seed 0` output)."""
    path = Path(str(resources.files("deepvision.data") / "sample" / SAMPLE_FILE))
    if not path.exists():
        raise DataError(
            "the embedded sample is missing from this install; reinstall deepvision or run "
            f"'deepvision data synth --n {SAMPLE_N} --seed {SAMPLE_SEED} --out FILE'",
            file=str(path),
        )
    return path
