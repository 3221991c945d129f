"""The chat prompt of a Problem: system prompt, and user text with one `<image>` per image."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from deepvision.records import IMAGE_PLACEHOLDER, count_placeholders, place_images

if TYPE_CHECKING:  # the record itself loads pyarrow: not needed to build a prompt
    from deepvision.records import Problem

DEFAULT_SYSTEM_PROMPT = (
    "You are solving a math problem that comes with one or more images. Reason step by step, "
    "and look at the image again to check every value you read from it before you conclude. "
    "Put only the final answer inside \\boxed{}, with no units or words around it. For a "
    "multiple-choice question, put only the letter of the correct option inside \\boxed{}."
)

_OPTION_LINE = re.compile(r"^\s*\(?[A-H][.):]\s", re.MULTILINE)


def option_letter(i: int) -> str:
    return chr(ord("A") + i)


def format_options(options: list[str]) -> str:
    return "\n".join(f"{option_letter(i)}. {text}" for i, text in enumerate(options))


def user_text(problem: Problem) -> str:
    """User text with exactly one `<image>` per image, options lettered if not in the text.

    A stored prompt keeps its own placeholder positions; a bare question gets its
    placeholders in front. A count that disagrees with the images raises ValueError.
    """
    return compose_user_text(problem.user_prompt, len(problem.images), problem.options)


def compose_user_text(text: str, images: int, options: list[str] | None) -> str:
    """`user_text` from a problem's user prompt, number of images and options (where the
    placeholders go is `records.place_images`'s rule)."""
    try:
        text = place_images(text, images)
    except ValueError:
        raise ValueError(
            f"user prompt has {count_placeholders(text)} {IMAGE_PLACEHOLDER} placeholder(s) "
            f"but the problem has {images} image(s)"
        ) from None
    if options and not _OPTION_LINE.search(text):
        text = f"{text}\n{format_options(options)}"
    return text


def stored_system_prompt(messages: list[dict[str, str]]) -> str | None:
    """The system message of a stored prompt (the DeepVision `prompt` column), None if it
    has none: a stored prompt is kept as it is, with or without one."""
    return next((m.get("content") for m in messages if m.get("role") == "system"), None)


def training_system_prompt(
    stored: list[dict[str, str]] | None, ours: str | None, replace_stored: bool
) -> str | None:
    """The system prompt a row is trained with. The release trains on the prompt as stored,
    so a row's stored prompt wins; `ours` is for rows without one, or for every row when the
    user chose a prompt (`replace_stored`: --system-prompt, --system-prompt-file,
    --no-system-prompt)."""
    if replace_stored or not stored:
        return ours
    return stored_system_prompt(stored)


def build_messages(problem: Problem, system_prompt: str | None = DEFAULT_SYSTEM_PROMPT):
    """System (if any) + user chat messages for training or inference."""
    msgs = [{"role": "system", "content": system_prompt}] if system_prompt else []
    msgs.append({"role": "user", "content": user_text(problem)})
    return msgs
