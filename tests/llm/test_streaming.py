"""Streamed answers: progress while the model writes, and the fall-back for endpoints that do not stream."""

from __future__ import annotations

import logging

import pytest

from envgen.contracts import ChatMessage
from envgen.llm import CallLog, LLMClient, LLMSettings
from envgen.llm.progress import ProgressLog, StreamProgress

from .stub import StubLLM, completion, error, streamed

SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
HELLO = ["{", '"name"', ": ", '"maze"', "}"]


def client(stub: StubLLM, seen: list[StreamProgress]) -> LLMClient:
    settings = LLMSettings(base_url=stub.base_url, model="stub-model", max_retries=0, timeout_seconds=5)
    return LLMClient(settings, on_progress=seen.append)


def ask(c: LLMClient, log: CallLog | None = None) -> tuple[str, str | None, int, int]:
    answer = c.chat([ChatMessage(role="user", content="a maze")], SCHEMA, "maze", log or CallLog())
    return answer.text, answer.finish_reason, answer.prompt_tokens, answer.completion_tokens


def test_streamed_answer_is_assembled_and_reported(stub_llm: StubLLM) -> None:
    seen: list[StreamProgress] = []
    stub_llm.add(streamed(HELLO))
    assert ask(client(stub_llm, seen)) == ('{"name": "maze"}', "stop", 11, 5)
    sent = stub_llm.requests[0]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["response_format"]["type"] == "json_schema"  # same structured output as without streaming
    assert seen[-1].done and seen[-1].tokens == 5 and all(not p.done for p in seen[:-1])


def test_tokens_are_counted_when_the_server_sends_no_usage(stub_llm: StubLLM) -> None:
    seen: list[StreamProgress] = []
    stub_llm.add(streamed(HELLO, finish_reason="length", usage=False))
    assert ask(client(stub_llm, seen)) == ('{"name": "maze"}', "length", 0, 5)
    assert seen[-1].tokens == 5


def test_answer_in_one_body_is_accepted_and_streaming_is_not_asked_again(stub_llm: StubLLM) -> None:
    seen: list[StreamProgress] = []
    c = client(stub_llm, seen)
    stub_llm.add(completion('{"name": "a"}'), completion('{"name": "b"}'))
    log = CallLog()
    assert ask(c, log)[0] == '{"name": "a"}' and ask(c, log)[0] == '{"name": "b"}'
    assert stub_llm.requests[0]["stream"] is True and "stream" not in stub_llm.requests[1]
    assert any("does not stream" in note for note in log.notes)


def test_rejected_streaming_is_retried_without_it_on_the_same_rung(stub_llm: StubLLM) -> None:
    seen: list[StreamProgress] = []
    c = client(stub_llm, seen)
    stub_llm.add(error(400, "stream mode is not supported"), completion('{"name": "a"}'))
    log = CallLog()
    assert ask(c, log)[0] == '{"name": "a"}'
    assert [r.get("stream") for r in stub_llm.requests] == [True, None]
    assert [a["rung"] for a in log.attempts] == ["json_schema", "json_schema"] and c.rung == "json_schema"
    assert seen == []  # nothing streamed, nothing to report


def test_progress_is_logged_periodically_not_per_token(caplog: pytest.LogCaptureFixture) -> None:
    log = ProgressLog(logging.getLogger("envgen.test"), "default/run cycle 1", every_seconds=15)
    with caplog.at_level(logging.INFO, logger="envgen.test"):
        for i in range(121):  # a minute of tokens, two a second
            log(StreamProgress(tokens=i, seconds=i / 2, decode_seconds=max(0.0, i / 2 - 1)))
        log(StreamProgress(tokens=120, seconds=60.5, decode_seconds=59.5, done=True))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 5, lines
    assert lines[0] == "default/run cycle 1: LLM answering, 30 tokens, 2.1 tokens/s"
    assert lines[-1] == "default/run cycle 1: LLM answer of 120 tokens, 2.0 tokens/s in 60.5 s"


def test_progress_before_the_first_token_says_so() -> None:
    assert StreamProgress(tokens=0, seconds=12.4, decode_seconds=0).describe() == "reading the prompt, 12 s"
    assert StreamProgress(tokens=0, seconds=1, decode_seconds=0).tokens_per_second == 0.0
