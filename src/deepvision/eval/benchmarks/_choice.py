"""Shared pieces of the multiple-choice benchmarks: option lines and `<image k>` markers."""

from __future__ import annotations

import re
from typing import Any

from deepvision.data.prompts import format_options
from deepvision.records import IMAGE_MARKER, IMAGE_PLACEHOLDER, ProblemImage, place_images


def with_options(text: str, options: list[str] | None) -> str:
    return f"{text}\n{format_options(options)}" if options else text


def resolve_markers(
    text: str, images_by_number: dict[int, Any], resolve
) -> tuple[str, list[ProblemImage]]:
    """`<image k>` markers -> `<image>` placeholders, images in marker order (an image named
    twice is sent twice); images no marker names go first, in number order (the placeholder
    rule of `records.place_images`)."""
    named = {int(k) for k in IMAGE_MARKER.findall(text)}
    unnamed = [k for k in sorted(images_by_number) if images_by_number[k] is not None]
    unnamed = [k for k in unnamed if k not in named]
    text = place_images(text, len(unnamed))
    order: list[int] = []

    def sub(m: re.Match[str]) -> str:
        k = int(m.group(1))
        if images_by_number.get(k) is None:
            return m.group(0)
        order.append(k)
        return IMAGE_PLACEHOLDER

    text = IMAGE_MARKER.sub(sub, text)
    return text, [resolve(images_by_number[k]) for k in unnamed + order]
