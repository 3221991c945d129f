"""The stages' prompt templates: packaged defaults, overridable by files.

Templates fill `{question}`, `{options}`, `{answer}` and `{taxonomy}` by plain replacement, so
JSON examples with braces in a template need no escaping."""

from __future__ import annotations

from pathlib import Path

from deepvision.data.prompts import format_options
from deepvision.errors import UsageError
from deepvision.records import IMAGE_PLACEHOLDER, Problem

_DIR = Path(__file__).with_name("prompts")


def load_prompt(name: str, override: str | Path | None = None) -> str:
    """The template `name` (e.g. `validity`, `validity_user`), or the text of `override`."""
    path = Path(override) if override else _DIR / f"{name}.txt"
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise UsageError(f"prompt file {path} cannot be read: {exc.strerror}") from None


def fill(template: str, problem: Problem, **values: str) -> str:
    question = problem.question.replace(IMAGE_PLACEHOLDER, "").strip()
    fields = {
        "question": question,
        "options": format_options(problem.options) if problem.options else "",
        "answer": problem.answer,
        **values,
    }
    for key, value in fields.items():
        template = template.replace("{" + key + "}", value)
    return template
