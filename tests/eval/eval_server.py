"""A scripted OpenAI-compatible server for the evaluation tests: it recognises an item by the
base64 of its first image and answers what the test's script says for (item, sample), through
the fault server's responder hook (faults such as `fail_rate` or `slow_rate` still apply)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from deepvision.llm.fake_server import FakeServer, Faults, Scripted

# script(item_key, sample) -> (text, finish_reason)
Script = Callable[[str, int], tuple[str, str]]


def first_image_b64(body: dict[str, Any]) -> str | None:
    """The base64 of the first image part of a chat completion request, if any."""
    for m in body["messages"]:
        if isinstance(m.get("content"), list):
            for part in m["content"]:
                if part.get("type") == "image_url":
                    return part["image_url"]["url"].partition(",")[2]
    return None


class ScriptedServer(FakeServer):
    def __init__(self, keys: dict[str, str], script: Script, tokens: int = 7, **faults):
        super().__init__(Faults(**faults), responder=self.respond)
        self.keys, self.script, self.tokens = keys, script, tokens
        self.unknown = 0

    def respond(self, body: dict[str, Any]) -> Scripted:
        key = self.keys.get(first_image_b64(body) or "")
        if key is None:
            self.unknown += 1
        n = int(body.get("n") or 1)
        replies = [self.script(key, i) if key else ("no idea", "stop") for i in range(n)]
        return Scripted(
            [text for text, _ in replies],
            finish_reasons=[finish for _, finish in replies],
            usage={"prompt_tokens": 10, "completion_tokens": self.tokens * n},
        )
