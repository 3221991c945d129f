"""RL rewards: verl's compute_score (single and batched) and TRL reward callables; an
undecided check is retried, then logged and counted, never a silent 0."""

import importlib
import logging
import pickle
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

from deepvision.verify import SymbolicPool, rewards


def test_verl_compute_score_reads_equivalents_and_options_from_extra_info():
    info = {"equivalent_answers": ["37/2"], "options": ["18", "18.5", "19"]}
    out = rewards.compute_score("deepvision", r"so \boxed{\frac{37}{2}}", "18.5", info)
    assert out == {"score": 1.0, "acc": True, "pred": r"\frac{37}{2}"}
    assert rewards.compute_score("d", r"\boxed{B}", "B", {"options": ["1", "2"]})["acc"]
    assert rewards.compute_score("d", r"\boxed{2}", "B", {"options": ["1", "2"]})["acc"]
    miss = rewards.compute_score("d", "I think 18.5 but no box", "18.5", None)
    assert (miss["score"], miss["pred"]) == (0.0, "")


def test_format_and_overlong_terms_are_off_by_default_and_work_when_on():
    plain = rewards.compute_score("d", r"\boxed{1}", "1")
    assert set(plain) == {"score", "acc", "pred"}
    fmt = rewards.compute_score("d", r"<think>...", "1", format_weight=0.1)
    assert fmt["format"] is False and fmt["score"] == 0.0
    long = rewards.compute_score(
        "d",
        r"\boxed{1}",
        "1",
        max_response_len=100,
        overlong_buffer_len=20,
        response_length=95,
    )
    assert long["overlong_penalty"] == -0.75 and long["score"] == 0.25


def test_batched_variant_matches_single_calls():
    sols = [r"\boxed{0.5}", r"\boxed{1/2}", r"\boxed{2}", "no answer"] * 8
    gts = ["\\frac{1}{2}"] * len(sols)
    batch = rewards.compute_score_batch(["d"] * len(sols), sols, gts, [None] * len(sols))
    single = [rewards.compute_score("d", s, g) for s, g in zip(sols, gts, strict=True)]
    assert [b["score"] for b in batch] == [s["score"] for s in single] == [1, 1, 0, 0] * 8


def _score_in_worker(sol):
    return rewards.compute_score("d", sol, "x^2-1")["score"]


def test_works_in_threads_and_processes_like_verl_reward_managers():
    sols = [r"\boxed{(x-1)(x+1)}", r"\boxed{x^2+1}"] * 4
    with ThreadPoolExecutor(4) as ex:
        assert list(ex.map(_score_in_worker, sols)) == [1.0, 0.0] * 4
    with ProcessPoolExecutor(2) as ex:
        assert list(ex.map(_score_in_worker, sols)) == [1.0, 0.0] * 4
    pickle.dumps(rewards.compute_score)  # Ray ships the function by reference


def test_trl_reward_signature_and_conversational_completions():
    completions = [
        [{"role": "assistant", "content": r"... \boxed{C}"}],
        [{"role": "assistant", "content": r"... \boxed{A}"}],
        r"plain text \boxed{12}",
    ]
    got = rewards.accuracy_reward(
        prompts=[None] * 3,
        completions=completions,
        answer=["C", "B", "B"],
        options=[None, None, ["10", "12"]],
        equivalent_answers=[[], [], []],
        image=None,  # other dataset columns arrive too and are ignored
    )
    assert got == [1.0, 0.0, 1.0]
    assert rewards.format_reward(completions=completions) == [1.0, 1.0, 1.0]


def _busy_default_pool(monkeypatch):
    """A one-worker default pool whose worker is held by a comparison that overruns, so that
    every reward check finds no worker within its 0.2 s wait."""
    check_module = importlib.import_module("deepvision.verify.check")  # the module, not check()
    pool = SymbolicPool(workers=1, timeout=3.0, wait=0.2).start()
    monkeypatch.setattr(check_module, "default_pool", lambda: pool)
    holder = threading.Thread(target=pool.compare, args=("9999999999!", "1"))
    holder.start()
    deadline = time.monotonic() + 30
    while pool._idle and time.monotonic() < deadline:
        time.sleep(0.01)
    return pool, holder


def test_an_undecided_reward_is_retried_then_scored_by_the_rules_with_a_warning(
    monkeypatch, caplog
):
    """A reward whose check found no verifier worker is not a silent 0: it is tried again with
    a fresh wait, then scored by the rules, logged and counted."""
    pool, holder = _busy_default_pool(monkeypatch)
    before = rewards.undecided_count()
    try:
        with caplog.at_level(logging.WARNING, logger="deepvision.verify.rewards"):
            t = time.perf_counter()
            # answers no rule decides (a trigonometric identity): they need a worker
            single = rewards.compute_score("d", r"\boxed{2\sin(x)\cos(x)}", r"\sin(2x)")
            took = time.perf_counter() - t
            batch = rewards.accuracy_reward(
                prompts=[None] * 2,
                completions=[r"\boxed{2\sin(x)\cos(x)}", r"\boxed{2\sin(x)}"],
                answer=[r"\sin(2x)", r"\sin(2x)"],
            )
    finally:
        pool.close()
        holder.join()
    assert single == {"score": 0.0, "acc": False, "pred": r"2\sin(x)\cos(x)"}
    assert took >= 2 * 0.2  # two full waits: the check was tried again before giving up
    assert batch == [0.0, 0.0]
    assert rewards.undecided_count() == before + 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and all("undecided" in w for w in warnings)
    assert "no symbolic worker free within 0.2 s" in warnings[0]


def test_a_decided_reward_is_neither_logged_nor_counted(caplog):
    before = rewards.undecided_count()
    with caplog.at_level(logging.WARNING, logger="deepvision.verify.rewards"):
        assert rewards.compute_score("d", r"\boxed{(x+1)^2}", "x^2+2x+1")["score"] == 1.0
    assert rewards.undecided_count() == before
    assert not caplog.records
