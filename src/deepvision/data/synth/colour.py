"""The colour task: a learnable visual problem for a tiny model on a CPU.

Each problem shows one coloured square (red, green, blue or yellow; side 36-52 px at a random
place on a 56x56 canvas) and asks "What colour is the square?" with the four colours as
options A-D. Only the image tells the answer, so a model that learns it reads the pixels; four
balanced options put an untrained model at chance (0.25). The quickstart trains on it and
`benchmarks/learning_gspo.py` measures learning with it.
"""

from __future__ import annotations

import io
import itertools
import random
from collections.abc import Iterator

from deepvision.records import Problem, ProblemImage

COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 170, 60),
    "blue": (30, 60, 220),
    "yellow": (235, 210, 20),
}
LETTERS = "ABCD"
# The four answers as a model writes them; a tiny model gets each as one whole token.
ANSWER_FORMS = tuple(f"\\boxed{{{x}}}" for x in LETTERS)
QUESTION = "<image>What colour is the square?"
DATA_SOURCE = "deepvision-synth-colour"
CANVAS, BACKGROUND = 56, (245, 245, 245)


def _square_png(rng: random.Random, fill: tuple[int, int, int]) -> bytes:
    """A PNG of one filled square of random side and place."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (CANVAS, CANVAS), BACKGROUND)
    side = rng.randint(36, 52)
    x, y = rng.randint(0, CANVAS - side), rng.randint(0, CANVAS - side)
    ImageDraw.Draw(img).rectangle([x, y, x + side, y + side], fill=fill)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _iter_colour_problems(seed: int) -> Iterator[Problem]:
    """Colour problems without end, the same for the same seed; ids `synth-colour-<seed>-<i>`."""
    rng = random.Random(seed)
    names = list(COLOURS)
    for i in itertools.count():
        colour = rng.choice(names)
        yield Problem(
            id=f"synth-colour-{seed}-{i}",
            question=QUESTION,
            images=[ProblemImage(bytes=_square_png(rng, COLOURS[colour]))],
            answer=LETTERS[names.index(colour)],
            options=list(names),
            data_source=DATA_SOURCE,
            ability="perception",
            topic=["Perception", "Colour"],
            image_necessity="required",
        )


def colour_problems(n: int, seed: int) -> list[Problem]:
    """The first `n` colour problems of `seed`."""
    return list(itertools.islice(_iter_colour_problems(seed), n))


def colour_split(train: int, heldout: int, seed: int) -> tuple[list[Problem], list[Problem]]:
    """`train` training problems and `heldout` held-out ones whose images all differ from
    every training image (squares repeat by chance: a repeated one is skipped), drawn from
    two seeds derived from `seed`."""
    train_set = colour_problems(train, seed=2 * seed + 1)
    seen = {p.images[0].sha1() for p in train_set}
    fresh = (p for p in _iter_colour_problems(2 * seed + 2) if p.images[0].sha1() not in seen)
    return train_set, list(itertools.islice(fresh, heldout))
