"""GSPO training on existing engines (verl 0.9.1, TRL >= 1.16) from one validated YAML recipe,
and tiny offline vision-language models for tests. Engines are imported only when used."""

from deepvision.train.recipe import Recipe, dump_recipe, load_recipe, recipe_from_dict
from deepvision.train.tiny import build_tiny_vlm
from deepvision.train.verl import cluster_commands, verl_command, verl_overrides
from deepvision.train.verl_check import VerlStart, check_verl_start

__all__ = [
    "Recipe",
    "VerlStart",
    "build_tiny_vlm",
    "check_verl_start",
    "cluster_commands",
    "dump_recipe",
    "load_recipe",
    "recipe_from_dict",
    "verl_command",
    "verl_overrides",
]
