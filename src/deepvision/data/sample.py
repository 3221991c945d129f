"""The small generated sample shipped with the package: every data command's default input.

It is `data synth --n 240 --seed 0` plus a pass rate per problem, so that every statistic and
plot has data on first contact. Those pass rates come from *simulated* rollouts (a documented
random rule, see `simulated_pass_rate`), not from a model, and each row says so in its
`data_source` (`SAMPLE_SOURCE`). `build_sample` makes the file; `scripts/build_sample.py`
rewrites the shipped copy with it.
"""

from __future__ import annotations

import random
from importlib import resources
from pathlib import Path

from deepvision.errors import DataError
from deepvision.records import PassRate, Problem

SAMPLE_N = 240
SAMPLE_SEED = 0
SAMPLE_FILE = "deepvision-sample.parquet"
# The data_source of every sample row: synthetic problems whose pass rates are simulated.
SAMPLE_SOURCE = "deepvision-synth/simulated-pass-rate"
# Rollouts per problem, as in DeepVision-103K's difficulty filter ("k/8").
ROLLOUTS = 8
_WRITE_BATCH = 128  # rows per write: the sample's row groups


def sample_path() -> Path:
    """Path of the embedded sample (made by `build_sample`)."""
    path = Path(str(resources.files("deepvision.data") / "sample" / SAMPLE_FILE))
    if not path.exists():
        raise DataError(
            "the embedded sample is missing from this install; reinstall deepvision or run "
            "'python scripts/build_sample.py --out FILE' from a source checkout",
            file=str(path),
        )
    return path


def simulated_pass_rate(problem: Problem, rollouts: int = ROLLOUTS) -> PassRate:
    """Correct answers out of `rollouts` simulated attempts at `problem`.

    The rule: the simulated solver knows the answer with a chance `skill`, drawn uniformly
    from [0, 1] once per problem; when it does not, it guesses, which is right with chance
    1/len(options) for a multiple-choice problem and never for a free-form one. Each rollout
    is right with chance `skill + (1 - skill) * guess`. The draws are seeded by the problem id,
    so the same problem always gets the same pass rate; nothing here measures real difficulty.
    """
    rng = random.Random(f"deepvision-sample-rollouts:{problem.id}")
    skill = rng.random()
    guess = 1 / len(problem.options) if problem.options else 0.0
    chance = skill + (1 - skill) * guess
    return PassRate(sum(rng.random() < chance for _ in range(rollouts)), rollouts)


def sample_problems() -> list[Problem]:
    """The sample's problems: the synthetic stream for `SAMPLE_SEED`, with simulated pass
    rates and `SAMPLE_SOURCE` as their data source."""
    from deepvision.data.synth import generate

    problems = list(generate(SAMPLE_N, SAMPLE_SEED))
    for p in problems:
        p.pass_rate = simulated_pass_rate(p)
        p.data_source = SAMPLE_SOURCE
    return problems


def build_sample(out: Path) -> Path:
    """Write the sample to `out`, replacing it atomically (whole or not at all)."""
    from deepvision.data.writer import ProblemWriter

    problems = sample_problems()
    with ProblemWriter(out) as writer:
        for start in range(0, len(problems), _WRITE_BATCH):
            writer.write(problems[start : start + _WRITE_BATCH])
    return out
