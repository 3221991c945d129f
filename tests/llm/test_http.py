"""The HTTP layer against real servers on 127.0.0.1: whole-attempt timeouts, reply
classification, Retry-After, the size cap, the pre-flight check, the Endpoint's API key."""

import asyncio
import email.utils
import json
import time

import pytest

from deepvision.errors import EndpointError, ReplyError, UsageError
from deepvision.llm.endpoint import Endpoint, redact_text
from deepvision.llm.fake_server import FakeServer, Faults, Scripted
from deepvision.llm.http import (
    ModelSession,
    check_completion,
    check_endpoint,
    classify_reply,
    parse_retry_after,
    retry_delay,
)

BODY = {"model": "m", "messages": [{"role": "user", "content": "q"}]}


def _ep(url="http://127.0.0.1:9/v1", **kw):
    return Endpoint((url,), "m", **kw)


async def _complete(ep, **session_kw):
    async with ModelSession(ep, **session_kw) as s:
        return await s.complete(ep.urls[0], BODY)


@pytest.fixture
def fake():
    servers = []

    def start(faults=None, **kw):
        s = FakeServer(faults or Faults(), **kw).start()
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()


def test_the_timeout_bounds_the_whole_attempt_even_when_bytes_keep_coming(fake):
    s = fake(Faults(trickle_rate=1.0, trickle_s=0.1))  # ~300 bytes: 30 s to the last byte
    t0 = time.monotonic()
    with pytest.raises(EndpointError, match="within 1 s") as err:
        asyncio.run(_complete(_ep(s.url, timeout=1.0)))
    # the trickle takes 30 s to its last byte: anything well under that proves the bound (the
    # margin is wide for a loaded CI machine)
    assert err.value.retryable and time.monotonic() - t0 < 20


def test_a_reply_over_the_size_cap_is_a_reply_error(fake):
    s = fake(Faults(reply="x" * 5000))
    with pytest.raises(ReplyError, match="over the"):
        asyncio.run(_complete(_ep(s.url), max_reply_bytes=1000))
    assert asyncio.run(_complete(_ep(s.url)))["choices"][0]["message"]["content"] == "x" * 5000


@pytest.mark.parametrize(
    ("faults", "match"),
    [
        (Faults(malformed_rate=1.0), "not JSON"),
        (Faults(null_content_rate=1.0), "null content"),
        (Faults(bad_usage_rate=1.0), "usage is a str"),
    ],
)
def test_unusable_200_replies_are_retryable_reply_errors(fake, faults, match):
    s = fake(faults)
    with pytest.raises(ReplyError, match=match) as err:
        asyncio.run(_complete(_ep(s.url)))
    assert err.value.retryable


def test_reply_bodies_are_checked_field_by_field():
    ok = {"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": 3}}
    assert check_completion(ok) is ok
    assert check_completion({"choices": [{"message": {"content": ""}}]})  # no usage: fine
    for bad, why in [
        ([], "not a JSON object"),
        ({"choices": []}, "no choices"),
        ({"choices": [{"message": None}]}, "no message"),
        ({"choices": [{"message": {"content": ["a"]}}]}, "content is a list"),
        ({"choices": [{"message": {"content": "x"}}], "usage": [1]}, "usage is a list"),
        (
            {"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": "9"}},
            "prompt_tokens is not",
        ),
    ]:
        with pytest.raises(ReplyError, match=why):
            check_completion(bad)


def test_statuses_are_classified_once_with_the_servers_message():
    ep = _ep(retry_after_cap=60)
    for status in (408, 409, 425, 429, 500, 503, 599):
        with pytest.raises(EndpointError) as err:
            classify_reply(status, b"busy", {"Retry-After": "7"}, ep)
        assert err.value.retryable and err.value.retry_after == 7.0
    long = b'{"error": {"message": "This model\'s maximum context length is 32768"}}' + b"x" * 900
    for status in (400, 401, 404, 301):
        with pytest.raises(EndpointError) as err:
            classify_reply(status, long, {}, ep)
        assert not err.value.retryable and err.value.retry_after is None
        assert err.value.reason.startswith(f"HTTP {status}: ") and len(err.value.reason) < 520
    assert "maximum context length" in err.value.reason


def test_retry_after_in_seconds_or_as_an_http_date_is_capped():
    now = 1_800_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(date, 60, now=now) == pytest.approx(30)
    assert parse_retry_after(date, 10, now=now) == 10
    assert parse_retry_after(email.utils.formatdate(now - 5, usegmt=True), 60, now=now) == 0
    assert parse_retry_after("2.5", 60) == 2.5 and parse_retry_after("600", 60) == 60
    assert parse_retry_after("-3", 60) == 0
    for junk in (None, "", "soon", "nan"):
        assert parse_retry_after(junk, 60) is None
    later = email.utils.formatdate(time.time() + 20, usegmt=True)
    with pytest.raises(EndpointError) as err:
        classify_reply(503, b"", {"Retry-After": later}, _ep())
    assert 15 < err.value.retry_after <= 20


def test_retry_delay_doubles_with_jitter_and_honours_the_server():
    ep = _ep(backoff=1.0, retry_after_cap=60)
    for attempt, base in ((1, 1.0), (2, 2.0), (3, 4.0)):
        for _ in range(50):
            assert 0.5 * base <= retry_delay(attempt, ep) < 1.5 * base
    assert retry_delay(1, ep, retry_after=0.0) == 0.0
    assert retry_delay(1, ep, retry_after=12.0) == 12.0
    assert retry_delay(40, ep) <= 60  # never longer than the cap


def test_a_session_goes_on_after_a_failed_attempt(fake):
    seen = []

    def respond(body):
        seen.append(time.monotonic())
        return Scripted(status=429) if len(seen) == 1 else "fine"

    s = fake(responder=respond)
    ep = _ep(s.url, backoff=0.001)

    async def go():
        async with ModelSession(ep) as session:
            with pytest.raises(EndpointError) as err:
                await session.complete(s.url, BODY)
            assert err.value.retryable
            return await session.complete(s.url, BODY)

    assert asyncio.run(go())["choices"][0]["message"]["content"] == "fine"


def test_check_endpoint_fails_fast_on_a_wrong_port_or_model(fake):
    t0 = time.monotonic()
    with pytest.raises(EndpointError, match=r"http://127\.0\.0\.1:9/v1 is unreachable"):
        asyncio.run(check_endpoint(_ep("http://127.0.0.1:9/v1"), timeout=2.0))
    assert time.monotonic() - t0 < 20  # not minutes of retries (wide margin: loaded CI)
    s = fake(models=["qwen3-vl-8b", "other"])
    with pytest.raises(UsageError, match="serves: qwen3-vl-8b, other") as err:
        asyncio.run(check_endpoint(Endpoint((s.url,), "qwen3-vl-80b")))
    assert err.value.param == "model"
    asyncio.run(check_endpoint(Endpoint((s.url,), "qwen3-vl-8b")))
    asyncio.run(check_endpoint(Endpoint((fake().url,), "anything")))  # lists no model


def test_check_endpoint_accepts_servers_without_a_model_list_but_not_a_refused_key(fake, tmp_path):
    for status in (404, 500):
        asyncio.run(check_endpoint(Endpoint((fake(models_status=status).url,), "m")))
    locked = fake(models=["m"], api_key="sk-right")
    with pytest.raises(UsageError, match="refused the API key") as err:
        asyncio.run(check_endpoint(Endpoint((locked.url,), "m")))
    assert err.value.param == "api_key_env"
    # a local folder served on request (transformers serve) is not listed, and is fine
    asyncio.run(check_endpoint(Endpoint((fake().url,), str(tmp_path))))


def test_check_endpoint_rejects_a_foreign_server_for_a_local_model_folder(fake, tmp_path):
    # vLLM lists a folder it serves by its path: a server listing other models is not ours
    asyncio.run(check_endpoint(Endpoint((fake(models=[str(tmp_path)]).url,), str(tmp_path))))
    foreign = fake(models=["Qwen/Qwen3-VL-8B-Instruct"])
    with pytest.raises(UsageError, match="serves: Qwen/Qwen3-VL-8B-Instruct") as err:
        asyncio.run(check_endpoint(Endpoint((foreign.url,), str(tmp_path))))
    assert err.value.param == "model"


def test_the_api_key_is_read_once_and_an_explicit_unset_variable_is_an_error(fake, monkeypatch):
    monkeypatch.delenv("DV_TEST_KEY", raising=False)
    with pytest.raises(UsageError, match="DV_TEST_KEY") as err:
        _ep(api_key_env="DV_TEST_KEY")
    assert err.value.param == "api_key_env"
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert _ep().headers == {}
    monkeypatch.setenv("DV_TEST_KEY", "sk-secret")
    ep = _ep(api_key_env="DV_TEST_KEY")
    monkeypatch.delenv("DV_TEST_KEY")
    assert ep.headers == {"Authorization": "Bearer sk-secret"}
    assert "sk-secret" not in repr(ep) and "sk-secret" not in json.dumps(ep.public())
    s = fake(api_key="sk-secret")
    reply = asyncio.run(_complete(ep.with_(urls=(s.url,))))
    assert reply["choices"][0]["message"]["content"]
    with pytest.raises(EndpointError, match="HTTP 401"):  # the server does check the key
        asyncio.run(_complete(_ep(s.url)))


def test_credentials_in_a_url_never_show_and_do_not_mix_with_an_api_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-default")
    ep = _ep("http://alice:s3cret@127.0.0.1:9/v1")
    assert ep.headers == {}  # the URL's credentials are the authentication: no default key
    assert "s3cret" not in repr(ep) and "s3cret" not in json.dumps(ep.public())
    assert "127.0.0.1:9/v1" in repr(ep)
    quoted = "InvalidURL: http://alice:p@ss@host:99999/v1/models failed"
    assert redact_text(quoted) == "InvalidURL: http://host:99999/v1/models failed"
    monkeypatch.setenv("DV_TEST_KEY", "sk-x")
    with pytest.raises(UsageError, match="credentials and an API key") as err:
        _ep("http://alice:s3cret@127.0.0.1:9/v1", api_key_env="DV_TEST_KEY")
    assert err.value.param == "endpoint" and "s3cret" not in str(err.value)


def test_an_html_error_page_is_one_line_with_its_title():
    page = b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>nginx</body></html>"
    with pytest.raises(EndpointError) as err:
        classify_reply(502, page, {}, _ep())
    assert err.value.reason == "HTTP 502: HTML page: 502 Bad Gateway" and err.value.retryable
    with pytest.raises(EndpointError) as err:
        classify_reply(503, b"<p>busy,\n  try   later</p>", {}, _ep())
    assert err.value.reason == "HTTP 503: HTML page: busy, try later"
