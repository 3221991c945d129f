"""`chat` and `asker` (the LLM judges' calls) against scripted servers on 127.0.0.1."""

import asyncio
import gc
import logging

import pytest

from deepvision.errors import EndpointError
from deepvision.llm import Endpoint, asker, chat
from deepvision.llm.fake_server import FakeServer, Scripted

MSGS = [{"role": "user", "content": "Is 2 = 2?"}]


@pytest.fixture
def scripted():
    servers = []

    def start(*replies):
        replies = list(replies)
        bodies = []

        def respond(body):
            bodies.append(body)
            return replies.pop(0) if len(replies) > 1 else replies[0]

        s = FakeServer(responder=respond).start()
        s.bodies = bodies
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()


def _ep(*urls, **kw):
    return Endpoint(tuple(urls), "judge", **{"backoff": 0.01, **kw})


def test_chat_retries_what_may_pass_and_sends_the_settings(scripted):
    s = scripted(Scripted(status=503), Scripted(status=500), "Correct")
    assert asyncio.run(chat(_ep(s.url), MSGS, max_tokens=4)) == "Correct"
    assert len(s.bodies) == 3
    assert s.bodies[0] == {"model": "judge", "messages": MSGS, "max_tokens": 4, "temperature": 0.0}


def test_chat_fails_at_once_on_a_client_error_and_gives_up_after_its_attempts(scripted):
    s = scripted(Scripted(status=400), "never")
    with pytest.raises(EndpointError, match="HTTP 400") as err:
        asyncio.run(chat(_ep(s.url), MSGS))
    assert not err.value.retryable and len(s.bodies) == 1
    s = scripted(Scripted(status=500))
    with pytest.raises(EndpointError, match="gave up after 3 attempt") as err:
        asyncio.run(chat(_ep(s.url, attempts=3), MSGS))
    assert len(s.bodies) == 3


def test_chat_rotates_over_the_endpoint_urls(scripted):
    s = scripted("Incorrect")
    ep = _ep("http://127.0.0.1:9/v1", s.url)  # the first one is down
    assert asyncio.run(chat(ep, MSGS)) == "Incorrect"


def test_asker_works_across_event_loops_and_closes_its_pools(scripted, caplog):
    s = scripted("Correct")
    ask = asker(_ep(s.url), max_tokens=2)

    async def many():
        return await asyncio.gather(*(ask(MSGS) for _ in range(10)))

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        assert asyncio.run(many()) == ["Correct"] * 10
        assert asyncio.run(ask(MSGS)) == "Correct"  # a second asyncio.run, as judge does
        gc.collect()
    assert "Unclosed" not in caplog.text
    assert s.bodies[0]["max_tokens"] == 2
