"""Sampling presets of the reference evaluation protocol, plus overrides."""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    "qwen-instruct": {"temperature": 0.7, "top_p": 0.8, "top_k": 20, "presence_penalty": 1.5},
    "qwen-thinking": {"temperature": 1.0, "top_p": 0.95, "top_k": 20},
    "mimo": {"temperature": 0.3, "top_p": 0.95},
    "greedy": {"temperature": 0.0},
}


def sampling_params(preset: str | None, **overrides: Any) -> dict[str, Any]:
    """The preset's parameters with `overrides` (None values ignored) applied on top."""
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    params = dict(PRESETS.get(preset or "", {}))
    params.update({k: v for k, v in overrides.items() if v is not None})
    return params
