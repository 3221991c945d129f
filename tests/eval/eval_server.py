"""A scripted OpenAI-compatible server for the evaluation tests: it recognises an item by the
base64 of its first image and answers what the test's script says for (item, sample)."""

from __future__ import annotations

import json
from collections.abc import Callable

from deepvision.llm.fake_server import FakeServer, Faults

# script(item_key, sample) -> (text, finish_reason)
Script = Callable[[str, int], tuple[str, str]]


class ScriptedServer(FakeServer):
    def __init__(self, keys: dict[str, str], script: Script, tokens: int = 7, **faults):
        super().__init__(Faults(**faults))
        self.keys, self.script, self.tokens = keys, script, tokens
        self.unknown = 0

    def handle_completion(self, h, raw: bytes) -> None:
        if self.faults.slow_rate or self.faults.fail_rate:
            outcome = self._draw()
            if outcome == "500":
                h._send(500, b'{"error": {"message": "injected"}}')
                return
            if outcome == "slow":
                import time

                time.sleep(self.faults.slow_s)
        self.stats.count("ok")
        body = json.loads(raw)
        key = None
        for m in body["messages"]:
            if isinstance(m.get("content"), list):
                for part in m["content"]:
                    if part.get("type") == "image_url":
                        b64 = part["image_url"]["url"].partition(",")[2]
                        key = key or self.keys.get(b64)
        if key is None:
            self.unknown += 1
        n = int(body.get("n") or 1)
        choices = []
        for i in range(n):
            text, finish = self.script(key or "?", i) if key else ("no idea", "stop")
            choices.append({"index": i, "finish_reason": finish,
                            "message": {"role": "assistant", "content": text}})  # fmt: skip
        usage = {"prompt_tokens": 10, "completion_tokens": self.tokens * n}
        payload = {"id": "x", "object": "chat.completion", "model": body.get("model"),
                   "choices": choices, "usage": usage}  # fmt: skip
        h._send(200, json.dumps(payload).encode())
