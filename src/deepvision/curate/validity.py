"""Stage `validity`: keyword rules, then a VLM's structured answer (how many final answers,
is the image needed, is the answer objectively checkable). Keeps single-answer,
image-dependent, checkable problems.

Drop reasons: `keyword:<category>` (detail: the matched text), `multiple_answers`,
`image_not_required`, `not_checkable`, and for replies that could not be used `unparsed` /
`model_error` (or kept, with `on_unparsed: keep`)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
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
from deepvision.curate.rules import KeywordRules
from deepvision.curate.stage import ChunkResult, Outcome
from deepvision.errors import UsageError
from deepvision.records import NECESSITY_ANNO, Problem

VALIDITY = "validity"


@dataclass(frozen=True)
class ValidityAnswer:
    answers: int
    image_required: bool
    checkable: bool
    reason: str


def parse_validity(text: str) -> ValidityAnswer:
    obj = parse_json_object(text)
    n = obj.get("answers")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ReplyParseError(f"'answers' must be a non-negative integer, got {n!r}")
    for key in ("image_required", "checkable"):
        if not isinstance(obj.get(key), bool):
            raise ReplyParseError(f"'{key}' must be true or false, got {obj.get(key)!r}")
    return ValidityAnswer(n, obj["image_required"], obj["checkable"], str(obj.get("reason", "")))


class ValidityStage(PromptedStage):
    name = "validity"
    prompt_name = "validity"
    uses_model = "optional"
    columns = (pa.field(VALIDITY, pa.string()), pa.field(NECESSITY_ANNO, pa.string()))

    def __init__(
        self,
        model: ModelConfig | None = None,
        *,
        keywords: str | Path | None = None,
        rules_only: bool = False,
        prompt: str | Path | None = None,
        user_prompt: str | Path | None = None,
        retries: int = 2,
        on_unparsed: str = "drop",
    ) -> None:
        if model is None and not rules_only:
            raise UsageError("needed unless rules_only is set", param="model")
        self.setup_prompts(model, prompt, user_prompt, retries, on_unparsed)
        self.keywords_path = str(keywords) if keywords else None
        self.rules = KeywordRules.load(keywords)
        # the file's content, not only its name, decides whether an earlier run still counts
        self.keywords_sha256 = (
            hashlib.sha256(Path(keywords).read_bytes()).hexdigest() if keywords else None
        )
        self.rules_only = rules_only

    def config(self) -> dict[str, Any]:
        return {
            **self.prompt_config(),
            "keywords": self.keywords_path,
            "keywords_sha256": self.keywords_sha256,
            "rules_only": self.rules_only,
        }

    def process(self, problems: list[Problem], work: Path) -> ChunkResult:
        outcomes: list[Outcome | None] = [None] * len(problems)
        to_ask: list[int] = []
        for i, p in enumerate(problems):
            hit = self.rules.match(p.question)
            if hit:
                outcomes[i] = Outcome(p, f"keyword:{hit[0]}", hit[1])
            elif self.rules_only:
                outcomes[i] = Outcome(p)
            else:
                to_ask.append(i)
        usage: dict[str, int] = {}
        if to_ask:
            assert self.model is not None
            reqs = [
                judge_request(
                    problems[i],
                    self.system,
                    fill(self.user, problems[i]),
                    request_key(i, problems[i]),
                )
                for i in to_ask
            ]
            answers, usage = ask(reqs, work, self.model, parse_validity, self.retries)
            for i in to_ask:
                p = problems[i]
                a = answers[request_key(i, p)]
                if a.value is None:
                    drop = a.kind if self.on_unparsed == "drop" else None
                    p.extra[VALIDITY] = json.dumps({"status": a.kind, "error": a.error})
                    outcomes[i] = Outcome(p, drop, a.error or "", note=a.kind, raw=a.raw)
                    continue
                v = a.value
                p.extra[VALIDITY] = json.dumps(
                    {
                        "answers": v.answers,
                        "image_required": v.image_required,
                        "checkable": v.checkable,
                        "reason": v.reason,
                    },
                    ensure_ascii=False,
                )
                p.image_necessity = "required" if v.image_required else "not_required"
                drop, detail = None, ""
                if v.answers != 1:
                    drop = "multiple_answers" if v.answers > 1 else "no_answer"
                    detail = f"asks for {v.answers} answers"
                elif not v.image_required:
                    drop, detail = "image_not_required", v.reason
                elif not v.checkable:
                    drop, detail = "not_checkable", v.reason
                outcomes[i] = Outcome(p, drop, detail)
        return ChunkResult([o for o in outcomes if o is not None], usage)
