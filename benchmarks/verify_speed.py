"""Benchmark: `deepvision judge` against the release's own judge (`mathverify_judge.py`, run as
it ships, as a subprocess) on the same responses file, and the RL reward batch through
`compute_score` the way verl 0.9.1 calls it.

1. Judging: one JSONL of n = 1 responses (`model_response`, `gdt`: what the release's judge
   reads), 200-600 tokens of reasoning ending in `\\boxed{...}`, about half of them right, over
   a K12 mix of answer kinds. At 500 and at 10,000 responses, on a quiet machine and with two
   busy-loop processes running (loaded); the two judges alternate, each run a fresh process
   (start-up included, as a user sees it).
2. Reward batch: 512 prompts x 16 rollouts through `compute_score`, as verl 0.9.1's reward
   loop calls it: `reward.num_workers` worker processes (Ray actors there) each take a
   contiguous chunk and run every sample's `compute_score` at once on the event loop's default
   thread pool (`NaiveRewardManager.run_single`). The first batch pays the workers' imports
   (and the symbolic verifiers' start, when an answer needs one); later batches are the
   steady state of a training run.
3. Worst-case latency over pathological answers with a 2 s limit.

    python benchmarks/verify_speed.py [--sizes 500,10000] [--skip-judge] [--skip-reward]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing as mp
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path

from _common import machine
from deepvision.verify import SymbolicPool, check

ROOT = Path(__file__).resolve().parent.parent
RELEASE_JUDGE = ROOT.parent / "shared" / "baselines" / "deepvision-103k" / "mathverify_judge.py"
DEEPVISION = Path(sys.executable).with_name("deepvision")


# ---- responses ------------------------------------------------------------------------------


def _kinds(r: random.Random) -> list[tuple[str, list[str], list[str]]]:
    """(gold, right answers, wrong answers) for each answer kind, with fresh random values."""
    n, m, k = r.randint(2, 999), r.randint(2, 97), r.randint(2, 12)
    a, b = r.randint(1, 40), r.randint(41, 90)
    letters = "ABCD"
    L = r.choice(letters)
    L2 = "".join(sorted(r.sample(letters, 2)))
    return [
        (L, [L, f"({L})", f"{L}."], [x for x in letters if x != L][:2]),
        (L2, [L2, ", ".join(L2)], [L2[0], "ABC" if L2 != "ABC" else "ABD"]),
        (str(n), [str(n), f"{n}.0"], [str(n + 1), str(-n)]),
        (str(n), [str(n)], [str(n + 1), str(n - 1)]),
        (f"{n}.25", [f"{n}.25", f"\\frac{{{4 * n + 1}}}{{4}}"], [f"{n}.2", f"{n}.52"]),
        (
            f"\\frac{{{m}}}{{{m + 1}}}",
            [f"\\frac{{{2 * m}}}{{{2 * m + 2}}}", f"{m}/{m + 1}"],
            [f"\\frac{{{m + 1}}}{{{m}}}", f"{m}/{m + 2}"],
        ),
        (
            f"{k}\\sqrt{{3}}",
            [f"{k}\\sqrt{{3}}", f"\\sqrt{{{3 * k * k}}}"],
            [f"{k}\\sqrt{{2}}", f"\\sqrt{{{3 * k}}}"],
        ),
        (f"{k}\\pi", [f"{k}\\pi", f"{k}π"], [f"{k + 1}\\pi", f"{3.14 * k:.2f}"]),
        (f"({a},{b})", [f"({a},{b})", f"({a}, {b})"], [f"({b},{a})", f"({a},{b + 1})"]),
        (f"({a},{b})", [f"{a}<x<{b}"], [f"[{a},{b}]", f"({a},{b - 1})"]),
        (f"[{a}, +\\infty)", [f"x \\geq {a}", f"[{a},+\\infty)"], [f"x > {a}", f"({a},+\\infty)"]),
        (f"\\pm {k}", [f"{k}, -{k}", f"-{k}, {k}"], [str(k), f"{k}, {k + 1}"]),
        (
            f"\\begin{{pmatrix}} {a} \\\\ {b} \\end{{pmatrix}}",
            [f"({a}, {b})", f"\\begin{{bmatrix}} {a} \\\\ {b} \\end{{bmatrix}}"],
            [f"({b}, {a})", f"\\begin{{pmatrix}} {a} \\\\ {b + 1} \\end{{pmatrix}}"],
        ),
        (f"y={k}x+{a}", [f"y={k}x+{a}", f"{k}x-y+{a}=0"], [f"y={k}x-{a}", f"y={k + 1}x+{a}"]),
        (f"{a}:{b}", [f"{a}:{b}", f"{2 * a}:{2 * b}"], [f"{b}:{a}", f"{a}:{b + 1}"]),
        (f"{n} \\text{{ cm}}^2", [str(n), f"{n} cm^2"], [f"{n + 10}", str(n + 1)]),
        (f"{a}^\\circ", [f"{a}°", str(a)], [f"{b}°", f"{a + 1}^\\circ"]),
        (f"{a}\\%", [f"{a}%", f"{a / 100}"], [f"{a + 5}%", f"{a / 10}"]),
        (f"x^2-{k * k}", [f"(x-{k})(x+{k})", f"x^2-{k * k}"], [f"x^2+{k * k}", f"(x-{k})^2"]),
        ("rectangle", ["Rectangle", "\\text{rectangle}"], ["square", "rhombus"]),
    ]


def reasoning(rng: random.Random, answer: str) -> str:
    """200-600 tokens (about 4 characters each) of step-by-step reasoning, then the box."""
    target = rng.randint(200, 600) * 4
    steps: list[str] = []
    while sum(map(len, steps)) < target:
        a, b = rng.randint(2, 99), rng.randint(2, 99)
        steps.append(
            f"Step {len(steps) + 1}: from the figure, the segment is {a} and the angle is "
            f"{b}^\\circ, so ${a} \\times {b} = {a * b}$; check it against the diagram again."
        )
    return "\n".join(steps) + f"\nTherefore the final answer is $\\boxed{{{answer}}}$."


def make_pairs(n: int, seed: int) -> list[tuple[str, str, bool]]:
    """(gold, answer, right) for n responses: half right, the kinds mixed evenly."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        kinds = _kinds(rng)
        gold, right, wrong = kinds[rng.randrange(len(kinds))]
        ok = rng.random() < 0.5
        out.append((gold, rng.choice(right if ok else wrong), ok))
    return out


def write_responses(path: Path, n: int, seed: int = 0) -> None:
    rng = random.Random(seed + 1)
    with path.open("w", encoding="utf-8") as f:
        for i, (gold, pred, _) in enumerate(make_pairs(n, seed)):
            line = {"id": f"p{i}", "model_response": reasoning(rng, pred), "gdt": gold}
            f.write(json.dumps(line, ensure_ascii=False) + "\n")


# ---- judging, side by side --------------------------------------------------------------------


@contextmanager
def busy_loops(count: int) -> Iterator[None]:
    """`count` processes spinning on a core each (the loaded machine)."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


def _timed(cmd: list[str], cwd: Path) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def run_release(responses: Path, work: Path) -> tuple[float, float]:
    """(seconds, accuracy) of the release's judge, as it ships."""
    out = work / "release.json"
    secs = _timed(
        [sys.executable, str(RELEASE_JUDGE), "-i", str(responses), "-o", str(out), "--no-samples"],
        work,
    )
    return secs, json.loads(out.read_text())["summary"]["accuracy"]


def run_ours(responses: Path, work: Path) -> tuple[float, float]:
    """(seconds, accuracy) of `deepvision judge`, from a fresh output prefix."""
    prefix = work / f"ours-{time.monotonic_ns()}"
    secs = _timed([str(DEEPVISION), "judge", str(responses), "--out", str(prefix), "--quiet"], work)
    summary = json.loads(prefix.with_name(prefix.name + ".summary.json").read_text())
    return secs, summary["accuracy"]["value"]


def judge_side_by_side(sizes: list[int], repeats: int) -> None:
    print("\n| responses | machine | release judge s | deepvision judge s | speed-up |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for n in sizes:
            responses = work / f"responses-{n}.jsonl"
            write_responses(responses, n)
            for load in ("quiet", "loaded"):
                base, ours = [], []
                with busy_loops(2 if load == "loaded" else 0):
                    for r in range(repeats):  # alternating, the order swapped each round
                        runs = [(base, run_release), (ours, run_ours)]
                        for times, fn in runs if r % 2 == 0 else runs[::-1]:
                            secs, acc = fn(responses, work)
                            times.append((secs, acc))
                b, o = min(s for s, _ in base), min(s for s, _ in ours)
                print(
                    f"| {n:,} | {load} | {b:.1f} | {o:.1f} | {b / o:.1f}x |"
                    f"  (accuracy: release {base[0][1]:.3f}, ours {ours[0][1]:.3f})",
                    flush=True,
                )


# ---- reward batch, as verl calls compute_score ------------------------------------------------


def reward_batch(seed: int) -> list[tuple[str, str]]:
    """512 prompts x 16 rollouts (solution, ground truth), a few distinct answers per group."""
    rng = random.Random(seed)
    out = []
    for _ in range(512):
        kinds = _kinds(rng)
        gold, right, wrong = kinds[rng.randrange(len(kinds))]
        texts = {a: reasoning(rng, a) for a in [rng.choice(right + wrong) for _ in range(3)]}
        out += [(texts[rng.choice(list(texts))], gold) for _ in range(16)]
    return out


def _reward_worker(conn: Connection) -> None:
    """One reward-loop worker (a Ray actor in verl): for each chunk it gets, every sample's
    compute_score runs at once on the event loop's default thread pool, as
    `NaiveRewardManager.run_single` does, and the scores go back."""
    logging.disable(logging.WARNING)
    from deepvision.verify.rewards import compute_score

    async def score(chunk: list[tuple[str, str]]) -> list[float]:
        loop = asyncio.get_running_loop()

        def one(sol: str, gt: str) -> float:
            info = {"num_turns": None, "rollout_reward_scores": {}}
            return compute_score(
                data_source="deepvision", solution_str=sol, ground_truth=gt, extra_info=info
            )["score"]

        return await asyncio.gather(*(loop.run_in_executor(None, one, s, g) for s, g in chunk))

    while (chunk := conn.recv()) is not None:
        conn.send(asyncio.run(score(chunk)))


def reward_side(batches: int, workers: int) -> None:
    ctx = mp.get_context("spawn")  # Ray actors are fresh processes
    pipes, procs = [], []
    for _ in range(workers):
        ours, theirs = ctx.Pipe()
        proc = ctx.Process(target=_reward_worker, args=(theirs,), daemon=True)
        proc.start()
        pipes.append(ours)
        procs.append(proc)
    print(f"\nreward batch, 512 x 16 through compute_score, {workers} reward workers:")
    try:
        for b in range(batches):
            batch = reward_batch(seed=100 + b)
            size = -(-len(batch) // workers)
            t = time.perf_counter()
            for k, conn in enumerate(pipes):
                conn.send(batch[k * size : (k + 1) * size])
            scores = [s for conn in pipes for s in conn.recv()]
            took = time.perf_counter() - t
            label = "first (cold reward workers)" if b == 0 else "steady state"
            print(
                f"  batch {b + 1}, {label}: {took:.2f} s for {len(scores)} responses "
                f"(mean score {sum(scores) / len(scores):.2f})",
                flush=True,
            )
    finally:
        for conn in pipes:
            conn.send(None)
        for proc in procs:
            proc.join(30)


# ---- pathological answers ------------------------------------------------------------------


def worst_case() -> None:
    bad = [
        "10^{10^{10}}",
        "{" * 1000 + "1" + "}" * 1000,
        "x" * 1_000_000,
        "\\frac{1}{",
        "2^{2^{2^{2^{2^{2^{2}}}}}}",
        "9999999999!",
        "a\x00b",
        "😀∑∫",
        "(" * 1000 + ")" * 1000,
    ]
    worst = 0.0
    slow = SymbolicPool(workers=2, timeout=2.0).start()
    try:
        for b in bad:
            for gold, pred in ((b, "1"), ("1", b), (b, b + "+1")):
                t = time.perf_counter()
                check(pred, gold, pool=slow)
                worst = max(worst, time.perf_counter() - t)
    finally:
        slow.close()
    print(
        f"\nworst-case latency over {3 * len(bad)} pathological checks, limit 2 s: {worst:.2f} s "
        f"({slow.replaced} workers replaced)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="500,10000", help="Responses per judging run.")
    ap.add_argument("--repeats", type=int, default=2, help="Runs of each judge (best counts).")
    ap.add_argument("--batches", type=int, default=3, help="Reward batches of 512 x 16.")
    ap.add_argument("--reward-workers", type=int, default=8, help="verl's reward.num_workers.")
    ap.add_argument("--skip-judge", action="store_true")
    ap.add_argument("--skip-reward", action="store_true")
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    print(f"machine: {machine()}")
    if not args.skip_judge:
        judge_side_by_side([int(s) for s in args.sizes.split(",")], args.repeats)
    if not args.skip_reward:
        reward_side(args.batches, args.reward_workers)
    worst_case()


if __name__ == "__main__":
    main()
