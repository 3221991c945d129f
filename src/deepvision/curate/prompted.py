"""The shape shared by the stages that put one structured question per problem to a model
(validity, correctness, annotate): their two prompts (ours, or files given instead), how many
times a reply that cannot be parsed is asked again, and what happens to a problem whose replies
stay unparsed (`keep` or `drop`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from deepvision.curate.modelcall import ModelConfig
from deepvision.curate.prompts import load_prompt
from deepvision.curate.stage import Stage
from deepvision.errors import UsageError

__all__ = ["UNPARSED_POLICIES", "PromptedStage", "check_policy", "check_retries"]

UNPARSED_POLICIES = ("keep", "drop")


def check_retries(retries: int) -> int:
    """`retries` as given, if it is a count of re-asks (0 or more); UsageError else."""
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise UsageError(f"must be 0 or more re-asks, got {retries!r}", param="retries")
    return retries


def check_policy(value: str) -> str:
    """`on_unparsed` as given, if it is keep or drop; UsageError else."""
    if value not in UNPARSED_POLICIES:
        raise UsageError(f"must be keep or drop, got {value!r}", param="on_unparsed")
    return value


class PromptedStage(Stage):
    """A stage asking a model about each problem with a system and a user prompt.

    `prompt_name` names our prompts (`<name>.txt`, `<name>_user.txt` in curate/prompts/).
    Subclasses call `setup_prompts` from their `__init__` (whose keyword arguments stay
    explicit: they are the stage's options) and build `config()` on `prompt_config()`."""

    prompt_name: ClassVar[str]
    model: ModelConfig | None
    system: str
    user: str
    retries: int
    on_unparsed: str

    def setup_prompts(
        self,
        model: ModelConfig | None,
        prompt: str | Path | None,
        user_prompt: str | Path | None,
        retries: int,
        on_unparsed: str,
    ) -> None:
        self.model = model
        self.system = load_prompt(self.prompt_name, prompt)
        self.user = load_prompt(f"{self.prompt_name}_user", user_prompt)
        self.retries = check_retries(retries)
        self.on_unparsed = check_policy(on_unparsed)

    def prompt_config(self) -> dict[str, Any]:
        """The settings that decide the stage's answers (a re-run must match them)."""
        return {
            "model": self.model.public() if self.model else None,
            "system": self.system,
            "user": self.user,
            "retries": self.retries,
            "on_unparsed": self.on_unparsed,
        }
