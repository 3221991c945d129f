"""Keyword rules of the validity stage: problems that ask for a proof, an explanation, a
description, a drawing or an open-ended answer cannot be checked against one reference.

Rules are lists of patterns per category, English and Chinese, configurable by a YAML/JSON
file of the same shape. English patterns match whole words, case-insensitively (`prove`
does not match `improve`; `draw the` does not match `drawn`); Chinese patterns match anywhere,
so they are whole instructions (`请描述`, `试说明理由`), never a lone word such as `描述` or
`为什么` that also occurs in checkable questions (`下列描述正确的是`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from deepvision.errors import UsageError

DEFAULT_KEYWORDS: dict[str, list[str]] = {
    "proof": [
        "prove",
        "proof",
        "show that",
        "demonstrate that",
        "verify that",
        "证明",
        "求证",
        "试证",
        "证实",
    ],
    "explanation": [
        "explain",
        "justify",
        "give reasons",
        "give a reason",
        "explain why",
        "说明理由",
        "请说明",
        "说出理由",
        "请解释",
        "试解释",
        "解释原因",
        "解释为什么",
        "说明为什么",
    ],
    "description": [
        "describe",
        "description of",
        "what do you notice",
        "请描述",
        "试描述",
        "描述一下",
        "请叙述",
        "写出你的发现",
    ],
    "drawing": [
        # instructions only: "the sketch shows", "the probability of a draw" are checkable
        "draw the",
        "draw a",
        "draw an",
        "sketch the",
        "sketch a",
        "sketch an",
        "construct",
        "plot the",
        "complete the figure",
        "complete the graph",
        "画出",
        "画图",
        "作图",
        "尺规作图",
        "补全",
        "请画",
        "在图中画",
    ],
    "open_ended": [
        "discuss",
        "what do you think",
        "in your opinion",
        "design a",
        "give an example",
        "谈谈",
        "你认为",
        "设计一个",
        "举例说明",
        "开放性",
    ],
}

_CJK = re.compile(r"[\u3000-\u9fff\uff00-\uffef]")


@dataclass(frozen=True)
class KeywordRules:
    categories: dict[str, tuple[re.Pattern[str], ...]]

    @classmethod
    def from_lists(cls, lists: dict[str, list[str]]) -> KeywordRules:
        compiled = {}
        for cat, words in lists.items():
            pats = []
            for w in words:
                if _CJK.search(w):
                    pats.append(re.compile(re.escape(w)))
                else:
                    body = r"\s+".join(re.escape(x) for x in w.split())
                    pats.append(re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE))
            compiled[cat] = tuple(pats)
        return cls(compiled)

    @classmethod
    def load(cls, path: str | Path | None) -> KeywordRules:
        if path is None:
            return cls.from_lists(DEFAULT_KEYWORDS)
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise UsageError(f"keyword file {path} cannot be read: {exc}") from None
        if not isinstance(data, dict) or not all(
            isinstance(v, list) and all(isinstance(x, str) for x in v) for v in data.values()
        ):
            raise UsageError(f"keyword file {path}: expected category -> list of patterns")
        return cls.from_lists(data)

    def match(self, text: str) -> tuple[str, str] | None:
        """(category, matched text) of the first rule that matches, else None."""
        for cat, pats in self.categories.items():
            for pat in pats:
                m = pat.search(text)
                if m:
                    return cat, m.group(0)
        return None
