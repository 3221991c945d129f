"""Fixtures of the training tests: tiny offline models and exported trainer parquet."""

from __future__ import annotations

import pytest

from deepvision.data.export import export
from deepvision.train.tiny import build_tiny_vlm


@pytest.fixture(scope="session")
def tiny_qwen2_5_vl(tmp_path_factory):
    return build_tiny_vlm(tmp_path_factory.mktemp("tiny-qwen2_5_vl"), family="qwen2_5_vl")


@pytest.fixture
def verl_parquet(tmp_path, deepvision_file):
    """12 problems (1 or 2 images each) exported for verl by `deepvision data export`."""
    out = tmp_path / "verl.parquet"
    report = export([deepvision_file], out, "verl", workers=1)
    assert report.written == 12
    return out
