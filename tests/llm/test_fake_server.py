"""The fault server itself: every mode reachable by rate, by script and from the command line;
scripted choices, finish reasons and usage; a stop that cuts what is in flight."""

import asyncio
import json
import time
from dataclasses import fields

import aiohttp
import pytest

from deepvision.cli.fake_server import parser
from deepvision.llm.fake_server import MODES, FakeServer, Faults, Scripted

BODY = {"model": "m", "messages": [{"role": "user", "content": "q"}], "n": 2}


async def _post(url, body=BODY, timeout=5.0):
    """(status, headers, parsed body or raw text) of one chat completion request."""
    limit = aiohttp.ClientTimeout(total=timeout)
    async with (
        aiohttp.ClientSession(timeout=limit) as s,
        s.post(url + "/chat/completions", json=body) as resp,
    ):
        raw = await resp.read()
    try:
        return resp.status, resp.headers, json.loads(raw)
    except ValueError:
        return resp.status, resp.headers, raw.decode()


@pytest.fixture
def fake():
    servers = []

    def start(*args, **kw):
        s = FakeServer(*args, **kw).start()
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()


def test_every_faults_field_is_a_command_line_flag():
    ns = parser().parse_args(["--hang-rate", "0.5", "--ignore-n", "--huge-bytes", "7"])
    assert ns.hang_rate == 0.5 and ns.ignore_n and ns.huge_bytes == 7
    flags = set(vars(parser().parse_args([])))
    assert {f.name for f in fields(Faults)} <= flags
    assert set(MODES.values()) <= {f.name for f in fields(Faults)}


@pytest.mark.parametrize(
    ("mode", "status", "check"),
    [
        ("500", 500, lambda h, b: "injected" in b["error"]["message"]),
        ("429", 429, lambda h, b: h["Retry-After"] == "7"),
        ("429_date", 429, lambda h, b: h["Retry-After"].endswith(" GMT")),
        ("429_huge", 429, lambda h, b: h["Retry-After"] == str(10**9)),
        ("html", 502, lambda h, b: h["Content-Type"].startswith("text/html") and "<title>" in b),
        ("400", 400, lambda h, b: "maximum context length" in b["error"]["message"]),
        ("malformed", 200, lambda h, b: b.startswith('{"choices"')),
        ("usage_str", 200, lambda h, b: b["usage"] == "lots"),
        ("usage_list", 200, lambda h, b: isinstance(b["usage"], list)),
        ("usage_fields", 200, lambda h, b: b["usage"]["prompt_tokens"] == "ten"),
        ("null_message", 200, lambda h, b: [c["message"] for c in b["choices"]] == [None] * 2),
        ("null_content", 200, lambda h, b: b["choices"][1]["message"]["content"] is None),
        ("huge", 200, lambda h, b: len(b["choices"][0]["message"]["content"]) == 1000),
        ("slow", 200, lambda h, b: len(b["choices"]) == 2),
    ],
)
def test_each_mode_by_rate_and_by_script(fake, mode, status, check):
    settings = dict(retry_after=7, huge_bytes=1000, slow_s=0.1)
    by_rate = fake(Faults(**{MODES[mode]: 1.0}, **settings))
    by_script = fake(Faults(**settings), responder=lambda body: Scripted(mode=mode))
    for s in (by_rate, by_script):
        got, headers, body = asyncio.run(_post(s.url))
        assert got == status and check(headers, body)
        assert s.stats.by_outcome == {mode: 1}


def test_reset_hang_and_trickle_are_what_they_say(fake):
    reset = fake(Faults(reset_rate=1.0))
    with pytest.raises(aiohttp.ClientConnectionError):
        asyncio.run(_post(reset.url))
    for faults in (Faults(hang_rate=1.0), Faults(trickle_rate=1.0, trickle_s=0.5)):
        with pytest.raises(TimeoutError):
            asyncio.run(_post(fake(faults).url, timeout=1.0))


def test_a_script_sets_choices_finish_reasons_and_usage(fake):
    usage = {"prompt_tokens": 3, "completion_tokens": 4}
    s = fake(
        responder=lambda b: Scripted(["a", "b"], finish_reasons=["stop", "length"], usage=usage)
    )
    _, _, body = asyncio.run(_post(s.url))
    assert [c["message"]["content"] for c in body["choices"]] == ["a", "b"]
    assert [c["finish_reason"] for c in body["choices"]] == ["stop", "length"]
    assert body["usage"] == usage
    with pytest.raises(ValueError, match="unknown mode"):
        Scripted(mode="teapot")


def test_a_drawn_error_comes_before_the_responder_is_asked(fake):
    asked = []
    s = fake(Faults(fail_rate=1.0), responder=lambda b: asked.append(b) or "never")
    assert asyncio.run(_post(s.url))[0] == 500 and asked == []


def test_stop_cuts_hanging_requests_and_frees_the_port(fake):
    s = FakeServer(Faults(hang_rate=1.0)).start()

    async def hang_then_stop():
        pending = asyncio.ensure_future(_post(s.url, timeout=30))
        await asyncio.sleep(0.3)
        t0 = time.monotonic()
        await asyncio.to_thread(s.stop)
        with pytest.raises(aiohttp.ClientError):
            await pending
        return time.monotonic() - t0

    assert asyncio.run(hang_then_stop()) < 10
    again = fake(port=s.port)  # the same port, at once
    assert asyncio.run(_post(again.url))[0] == 200
