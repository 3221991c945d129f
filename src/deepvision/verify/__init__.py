"""Decide whether an answer is right: extraction, rule comparison, math-verify in a killable
worker pool, LLM re-judging, and RL rewards for verl and TRL."""

from deepvision.records import Verdict
from deepvision.verify.check import Item, check, compare_answers, verify_batch
from deepvision.verify.extract import extract_answer
from deepvision.verify.pool import SymbolicPool

__all__ = [
    "Item",
    "SymbolicPool",
    "Verdict",
    "check",
    "compare_answers",
    "extract_answer",
    "verify_batch",
]
