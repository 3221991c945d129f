"""A scripted OpenAI-compatible server on 127.0.0.1 for the curation tests: each problem's
question carries a tag `[tag]`; the script maps a tag to its replies, one per attempt
(the last repeats), and records what was asked."""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from collections.abc import Callable

from deepvision.llm.fake_server import FakeServer, Scripted

_TAG = re.compile(r"\[([\w-]+)\]")


def user_text(body: dict) -> str:
    parts = []
    for m in body.get("messages", []):
        if m.get("role") != "user":
            continue
        c = m.get("content")
        if isinstance(c, str):
            parts.append(c)
        else:
            parts += [p.get("text", "") for p in c if p.get("type") == "text"]
    return "\n".join(parts)


class ScriptedServer:
    """`with ScriptedServer({"good": ['{"a": 1}'], ...}) as s:` then `s.url`, `s.asked`."""

    def __init__(self, script: dict[str, list] | Callable[[str, int, dict], object]) -> None:
        self.script = script
        self.asked: dict[str, int] = defaultdict(int)  # tag -> requests seen
        self.bodies: list[dict] = []
        self._lock = threading.Lock()
        self.server = FakeServer(responder=self._respond)

    def _respond(self, body: dict):
        text = user_text(body)
        m = _TAG.search(text)
        tag = m.group(1) if m else ""
        with self._lock:
            attempt = self.asked[tag]
            self.asked[tag] += 1
            self.bodies.append(body)
        if callable(self.script):
            return self.script(tag, attempt, body)
        replies = self.script.get(tag, ["(no script)"])
        return replies[min(attempt, len(replies) - 1)]

    def __enter__(self) -> ScriptedServer:
        self.server.start()
        self.url = self.server.url
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop()


__all__ = ["Scripted", "ScriptedServer", "user_text"]
