"""Stage `correctness`: a strong VLM sees image, question and reference answer and returns
one label; only CONSISTENT is kept. The label and the model's reason become the columns
`correctness_label` and `correctness_reason` (and `correctness_correction` for CORRECTION).

Precedence (the prompt asks the model to check in this order and stop at the first that
applies; a reply naming several labels gets the first of them in this order):

1. ERR_IMG_MISSING   the image is missing, unreadable or not the one the question refers to:
                     nothing else can be judged without it.
2. ERR_TEXT_MISSING  the text lacks information needed to solve the problem.
3. ERR_MISMATCH      image and text contradict each other.
4. CORRECTION        well posed, but the reference answer is wrong.
5. CONSISTENT        well posed and the reference answer is right (the reference's "1").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from deepvision.curate.modelcall import (
    ModelConfig,
    ReplyParseError,
    ask,
    judge_request,
    parse_json_object,
    request_key,
)
from deepvision.curate.prompted import PromptedStage
from deepvision.curate.prompts import fill
from deepvision.curate.stage import ChunkResult, Outcome
from deepvision.records import Problem

LABELS = ("ERR_IMG_MISSING", "ERR_TEXT_MISSING", "ERR_MISMATCH", "CORRECTION", "CONSISTENT")
LABEL, REASON, CORRECTION = "correctness_label", "correctness_reason", "correctness_correction"


def parse_label(text: str) -> tuple[str, str, str | None]:
    """(label, reason, corrected answer) from a reply; ReplyParseError if no known label."""
    obj = parse_json_object(text)
    raw = obj.get("label")
    given = raw if isinstance(raw, list) else [raw]
    names = []
    for g in given:
        if g in (1, "1"):  # the reference pipeline's spelling of CONSISTENT
            g = "CONSISTENT"
        if not isinstance(g, str) or g.strip().upper() not in LABELS:
            raise ReplyParseError(f"label {g!r} is not one of {', '.join(LABELS)}")
        names.append(g.strip().upper())
    if not names:
        raise ReplyParseError("no label given")
    label = min(names, key=LABELS.index)
    corrected = obj.get("corrected_answer")
    if label == "CORRECTION" and corrected in (None, ""):
        corrected = None
    return label, str(obj.get("reason", "")), None if corrected is None else str(corrected)


class CorrectnessStage(PromptedStage):
    name = "correctness"
    prompt_name = "correctness"
    uses_model = "required"
    columns = (
        pa.field(LABEL, pa.string()),
        pa.field(REASON, pa.string()),
        pa.field(CORRECTION, pa.string()),
    )

    def __init__(
        self,
        model: ModelConfig,
        *,
        prompt: str | Path | None = None,
        user_prompt: str | Path | None = None,
        retries: int = 2,
        on_unparsed: str = "drop",
    ) -> None:
        self.setup_prompts(model, prompt, user_prompt, retries, on_unparsed)

    def config(self) -> dict[str, Any]:
        return self.prompt_config()

    def process(self, problems: list[Problem], work: Path) -> ChunkResult:
        reqs = [
            judge_request(p, self.system, fill(self.user, p), request_key(i, p))
            for i, p in enumerate(problems)
        ]
        answers, usage = ask(reqs, work, self.model, parse_label, self.retries)
        out = []
        for i, p in enumerate(problems):
            a = answers[request_key(i, p)]
            if a.value is None:
                p.extra[LABEL], p.extra[REASON] = a.kind, a.error
                drop = a.kind if self.on_unparsed == "drop" else None
                out.append(Outcome(p, drop, a.error or "", note=a.kind, raw=a.raw))
                continue
            label, reason, corrected = a.value
            p.extra[LABEL], p.extra[REASON], p.extra[CORRECTION] = label, reason, corrected
            drop = None if label == "CONSISTENT" else label
            out.append(Outcome(p, drop, reason if drop else ""))
        return ChunkResult(out, usage)
