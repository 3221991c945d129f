"""Synthetic, verifiable visual math problems in the DeepVision layout."""

from deepvision.data.synth.engine import DATA_SOURCE, generate
from deepvision.data.synth.families import FAMILIES

__all__ = ["DATA_SOURCE", "FAMILIES", "generate"]
