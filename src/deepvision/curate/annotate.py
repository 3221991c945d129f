"""Stage `annotate`: topic path (4 levels), knowledge points and visual elements from a VLM,
constrained to a taxonomy file (default: `taxonomy.json`, the reference categories).

A label outside the taxonomy is not accepted: the reply is refused with the offending labels
named and the model is asked again; after `retries` the problem is recorded as unparsed (raw
text kept) and `on_unparsed` decides (default keep: the problem keeps what it had).
The column `annotation_status` says `ok`, `unparsed` or `model_error`."""

from __future__ import annotations

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
from deepvision.curate.stage import ChunkResult, Outcome
from deepvision.errors import UsageError
from deepvision.records import DOMAIN_ANNO, VISION_ANNO, Problem

STATUS = "annotation_status"
DEFAULT_TAXONOMY = Path(__file__).with_name("taxonomy.json")


@dataclass
class Taxonomy:
    paths: set[tuple[str, ...]]  # every full topic path
    knowledge_points: set[str]
    visual_elements: dict[str, set[str]]
    text: str  # the taxonomy as shown to the model

    @classmethod
    def load(cls, path: str | Path | None = None) -> Taxonomy:
        path = Path(path) if path else DEFAULT_TAXONOMY
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UsageError(f"taxonomy file {path} cannot be read: {exc}") from None
        try:
            paths: set[tuple[str, ...]] = set()

            def walk(node: Any, prefix: tuple[str, ...]) -> None:
                if isinstance(node, dict):
                    for k, v in node.items():
                        walk(v, (*prefix, str(k)))
                else:
                    for leaf in node:
                        paths.add((*prefix, str(leaf)))

            walk(data["topics"], ())
            kps = {str(k) for k in data["knowledge_points"]}
            ves = {str(c): {str(t) for t in ts} for c, ts in data["visual_elements"].items()}
        except (KeyError, TypeError, AttributeError) as exc:
            raise UsageError(
                f"taxonomy file {path}: expected topics (nested levels), knowledge_points "
                f"(list) and visual_elements (category -> list): {exc}"
            ) from None
        lines = ["Topic paths (Level_1 > Level_2 > Level_3 > Level_4):"]
        lines += [" > ".join(p) for p in sorted(paths)]
        lines += ["", "Knowledge points:", "; ".join(sorted(kps)), "", "Visual elements:"]
        lines += [f"{c}: {', '.join(sorted(ts))}" for c, ts in ves.items()]
        return cls(paths, kps, ves, "\n".join(lines))

    def parse(self, text: str) -> tuple[list[str], list[str], dict[str, list[str]]]:
        obj = parse_json_object(text)
        topic, kps, ves = (
            obj.get("topic"),
            obj.get("knowledge_points"),
            obj.get("visual_elements", {}),
        )
        if not isinstance(topic, list) or not all(isinstance(t, str) for t in topic):
            raise ReplyParseError("'topic' must be a list of 4 level names")
        if tuple(topic) not in self.paths:
            raise ReplyParseError(f"topic path {' > '.join(topic)!r} is not in the taxonomy")
        if not isinstance(kps, list) or not kps or not all(isinstance(k, str) for k in kps):
            raise ReplyParseError("'knowledge_points' must be a non-empty list of names")
        unknown = [k for k in kps if k not in self.knowledge_points]
        if unknown:
            raise ReplyParseError(f"knowledge points not in the taxonomy: {unknown}")
        if not isinstance(ves, dict):
            raise ReplyParseError("'visual_elements' must map categories to lists")
        clean: dict[str, list[str]] = {}
        for cat, types in ves.items():
            if cat not in self.visual_elements:
                raise ReplyParseError(f"visual element category {cat!r} is not in the taxonomy")
            if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
                raise ReplyParseError(f"visual_elements.{cat} must be a list of names")
            bad = [t for t in types if t not in self.visual_elements[cat]]
            if bad:
                raise ReplyParseError(f"visual elements not in category {cat!r}: {bad}")
            if types:
                clean[cat] = list(types)
        return list(topic), list(kps), clean


class AnnotateStage(PromptedStage):
    name = "annotate"
    prompt_name = "annotate"
    uses_model = "required"
    columns = (
        pa.field(DOMAIN_ANNO, pa.string()),
        pa.field(VISION_ANNO, pa.string()),
        pa.field(STATUS, pa.string()),
    )

    def __init__(
        self,
        model: ModelConfig,
        *,
        taxonomy: str | Path | None = None,
        prompt: str | Path | None = None,
        user_prompt: str | Path | None = None,
        retries: int = 2,
        on_unparsed: str = "keep",
    ) -> None:
        self.setup_prompts(model, prompt, user_prompt, retries, on_unparsed)
        self.taxonomy_path = str(taxonomy) if taxonomy else None
        self.taxonomy = Taxonomy.load(taxonomy)
        self.system = self.system.replace("{taxonomy}", self.taxonomy.text)

    def config(self) -> dict[str, Any]:
        return self.prompt_config()

    def process(self, problems: list[Problem], work: Path) -> ChunkResult:
        reqs = [
            judge_request(p, self.system, fill(self.user, p), request_key(i, p))
            for i, p in enumerate(problems)
        ]
        answers, usage = ask(reqs, work, self.model, self.taxonomy.parse, self.retries)
        out = []
        for i, p in enumerate(problems):
            a = answers[request_key(i, p)]
            if a.value is None:
                p.extra[STATUS] = a.kind
                drop = a.kind if self.on_unparsed == "drop" else None
                out.append(Outcome(p, drop, a.error or "", note=a.kind, raw=a.raw))
                continue
            p.topic, p.knowledge_points, p.visual_elements = a.value
            p.extra[STATUS] = "ok"
            out.append(Outcome(p))
        return ChunkResult(out, usage)
