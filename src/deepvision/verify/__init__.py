"""Decide whether an answer is right: extraction, rule comparison, math-verify in a killable
worker pool, LLM re-judging, and RL rewards for verl and TRL."""

from deepvision.records import Verdict
from deepvision.verify.check import Item, check, compare_answers, final_answer, verify_batch
from deepvision.verify.extract import answer_after_last_marker, extract_answer, extract_choice
from deepvision.verify.pool import SymbolicPool

__all__ = [
    "Item",
    "SymbolicPool",
    "Verdict",
    "answer_after_last_marker",
    "check",
    "compare_answers",
    "extract_answer",
    "extract_choice",
    "final_answer",
    "verify_batch",
]
