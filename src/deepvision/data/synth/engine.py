"""Turn family Drafts into Problems: free-form or multiple choice, fully annotated, seeded.

The same seed gives the same bytes, and the first n problems of a larger run equal a run of n.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

from deepvision.data.prompts import build_messages, format_options, option_letter
from deepvision.data.synth.families import FAMILIES, Draft
from deepvision.errors import UsageError
from deepvision.records import Problem, ProblemImage, content_hash

DATA_SOURCE = "deepvision-synth"
_MAX_ATTEMPTS = 50


def _to_problem(draft: Draft, family: str, index: int, seed: int, rng: random.Random, mc: bool):
    question, answer, equivalents, options = draft.question, draft.answer, draft.equivalents, None
    if mc:
        options = [draft.answer, *draft.distractors[:3]]
        rng.shuffle(options)
        question = f"{draft.question}\nChoices:\n{format_options(options)}"
        answer, equivalents = option_letter(options.index(draft.answer)), []
    images = [ProblemImage(bytes=draft.image, path=f"{family}_{seed}_{index}.png")]
    problem = Problem(
        id="",
        question=question,
        images=images,
        answer=answer,
        equivalent_answers=list(equivalents),
        options=options,
        data_source=DATA_SOURCE,
        ability="math",
        topic=list(draft.topic),
        knowledge_points=list(draft.knowledge),
        visual_elements={k: list(v) for k, v in draft.visual_elements.items()},
        image_necessity="required",
        extra={},
    )
    problem.id = f"synth-{family}-{content_hash(question, images)[:12]}"
    problem.messages = build_messages(problem)
    return problem


def generate(
    n: int,
    seed: int = 0,
    families: Sequence[str] | None = None,
    mc_share: float = 0.3,
    start: int = 0,
) -> Iterator[Problem]:
    """Problems `start` .. `start + n - 1` of the stream for `seed`, all distinct.

    Distinctness is checked against every earlier problem of the stream, so a run that
    starts later still draws (and skips) the ones before it."""
    names = list(families) if families else list(FAMILIES)
    unknown = [f for f in names if f not in FAMILIES]
    if unknown:
        raise UsageError(
            f"unknown synth families {unknown}; known: {', '.join(FAMILIES)}", param="families"
        )
    if not 0.0 <= mc_share <= 1.0:
        raise UsageError(f"must be within [0, 1], got {mc_share}", param="mc_share")
    seen: set[str] = set()
    index = 0
    while index < start + n:
        # Re-draw on an exact repeat of an earlier problem (small families repeat otherwise).
        for attempt in range(_MAX_ATTEMPTS):
            rng = random.Random(f"deepvision-synth:{seed}:{index}:{attempt}")
            family = names[rng.randrange(len(names))]
            mc = rng.random() < mc_share
            problem = _to_problem(FAMILIES[family](rng), family, index, seed, rng, mc)
            if problem.id not in seen:
                break
        else:
            raise UsageError(
                f"could not draw a new distinct problem at index {index} after {_MAX_ATTEMPTS} "
                "tries; use more families or fewer problems"
            )
        seen.add(problem.id)
        if index >= start:
            yield problem
        index += 1
