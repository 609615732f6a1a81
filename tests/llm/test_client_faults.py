"""Fault injection against a stub endpoint: every fault ends in a retry, a fallback, a repair or a DesignError."""

from __future__ import annotations

import email.utils
import json
import time

import pytest

from envgen.contracts import DesignRequest
from envgen.designers import DesignError, DesignUnavailable, LLMDesigner
from envgen.envconfig import CrafterEnvConfig
from envgen.llm import CallLog, LLMClient, LLMError, LLMSettings
from envgen.llm.errors import retry_after_seconds
from envgen.llm.ladder import RUNGS

from .stub import StubLLM, completion, crafter_answer, crafter_env, error, free_port

SECRET = "sk-test-secret-0123456789"
N = 2


def designer(stub: StubLLM, *, max_retries: int = 1, timeout: float = 2.0, critic: bool = False) -> LLMDesigner:
    settings = LLMSettings(
        base_url=stub.base_url,
        model="stub-model",
        api_key=SECRET,
        timeout_seconds=timeout,
        max_retries=max_retries,
        max_tokens=512,
    )
    return LLMDesigner(LLMClient(settings), critic=critic)


def request() -> DesignRequest:
    return DesignRequest(game="crafter", cycle=1, num_envs=N)


def rf_type(body: dict) -> str | None:
    rf = body.get("response_format")
    if rf is None:
        return None
    return "json_object+schema" if rf["type"] == "json_object" and "schema" in rf else rf["type"]


def test_valid_first_answer_is_accepted_and_accounted(stub_llm: StubLLM) -> None:
    stub_llm.add(completion(crafter_answer(N), prompt_tokens=123))
    design = designer(stub_llm).design(request())

    assert [e.name for e in design.envs] == ["Stone tools 0", "Stone tools 1"]
    config = design.envs[0].config
    assert isinstance(config, CrafterEnvConfig) and config.inventory_settings.wood_pickaxe == 1
    assert config.world_settings.length == 10_000  # left at its default for the engine
    sent = stub_llm.requests[0]
    assert rf_type(sent) == "json_schema"
    schema = sent["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["environments"]["minItems"] == N
    assert stub_llm.headers[0]["authorization"] == f"Bearer {SECRET}"
    assert design.chat[-1].role == "assistant" and json.loads(design.chat[-1].content)["environments"]
    assert [m.role for m in design.chat] == ["system", "user", "assistant"]
    (attempt,) = design.attempts
    assert attempt["rung"] == "json_schema" and attempt["status"] == 200 and attempt["promptTokens"] == 123
    assert len(attempt["key"]) == 64
    assert design.usage.calls == 1 and design.usage.prompt_tokens == 123 and design.usage.cached_calls == 0
    assert SECRET not in json.dumps(design.dump())


def test_429_is_retried_after_retry_after(stub_llm: StubLLM) -> None:
    stub_llm.add(error(429, "slow down", {"retry-after": "0.3"}), completion(crafter_answer(N)))
    started = time.monotonic()
    design = designer(stub_llm).design(request())

    assert time.monotonic() - started >= 0.3
    assert [a["status"] for a in design.attempts] == [429, 200]
    assert design.attempts[0]["retryAfter"] == "0.3"
    assert len(design.envs) == N


def test_500_is_retried_by_the_sdk(stub_llm: StubLLM) -> None:
    stub_llm.add(error(500, "overloaded"), completion(crafter_answer(N)))
    design = designer(stub_llm).design(request())

    assert [a["status"] for a in design.attempts] == [500, 200]
    assert {rf_type(r) for r in stub_llm.requests} == {"json_schema"}


def test_500_after_retries_is_a_design_error(stub_llm: StubLLM) -> None:
    stub_llm.add(error(503, "down"), error(503, "down"))
    with pytest.raises(DesignError, match="no answer after 2 tries") as info:
        designer(stub_llm).design(request())
    assert info.value.design is not None
    attempts = info.value.design.attempts
    assert [(a["status"], a["error"]) for a in attempts] == [(503, "HTTP 503"), (503, "InternalServerError")]


def test_400_on_response_format_falls_back_and_is_remembered(stub_llm: StubLLM) -> None:
    stub_llm.add(
        error(400, "response_format type json_schema is not supported"),
        completion(crafter_answer(N)),
        completion(crafter_answer(N)),
    )
    d = designer(stub_llm)
    first = d.design(request())
    second = d.design(request())

    assert [rf_type(r) for r in stub_llm.requests] == ["json_schema", "json_object+schema", "json_object+schema"]
    assert [a["rung"] for a in first.attempts] == ["json_schema", "json_object+schema"]
    assert any("rejected response_format json_schema" in n for n in first.notes)
    assert len(second.attempts) == 1 and second.attempts[0]["rung"] == "json_object+schema"


def test_500_naming_response_format_moves_on_without_burning_retries(stub_llm: StubLLM) -> None:
    stub_llm.add(
        error(500, "1 validation error: response_format.type Input should be 'text' or 'json_object'"),
        completion(crafter_answer(N)),
    )
    design = designer(stub_llm, max_retries=3).design(request())

    assert len(stub_llm.requests) == 2
    assert [(a["rung"], a["status"]) for a in design.attempts] == [("json_schema", 500), ("json_object+schema", 200)]


def test_ladder_ends_without_response_format_and_code_fences(stub_llm: StubLLM) -> None:
    stub_llm.add(
        error(400, "unknown field response_format"),
        error(422, "schema not allowed"),
        error(400, "json_object not supported"),
        completion("Here you go:\n```json\n" + crafter_answer(N) + "\n```\nEnjoy!"),
    )
    design = designer(stub_llm).design(request())

    assert [rf_type(r) for r in stub_llm.requests] == [*list(RUNGS[:3]), None]
    assert len(design.envs) == N


def test_400_without_a_rung_left_is_an_error(stub_llm: StubLLM) -> None:
    client = LLMClient(LLMSettings(base_url=stub_llm.base_url, model="m", max_retries=0))
    stub_llm.add(*(error(400, "bad request") for _ in RUNGS))
    log = CallLog()
    with pytest.raises(LLMError, match="HTTP 400"):
        client.chat([], {"type": "object"}, "x", log)
    assert len(log.attempts) == len(RUNGS)


def test_context_overflow_is_not_a_format_problem(stub_llm: StubLLM) -> None:
    stub_llm.add(error(400, "the request exceeds the available context size"))
    with pytest.raises(DesignError, match="context size"):
        designer(stub_llm).design(request())
    assert len(stub_llm.requests) == 1


def test_unauthorised_is_not_retried(stub_llm: StubLLM) -> None:
    stub_llm.add(error(401, "invalid api key"))
    with pytest.raises(DesignError, match="HTTP 401"):
        designer(stub_llm, max_retries=3).design(request())
    assert len(stub_llm.requests) == 1


def test_timeouts_are_retried_then_reported(stub_llm: StubLLM) -> None:
    stub_llm.add(completion(crafter_answer(N)), completion(crafter_answer(N)))
    stub_llm.script[0].delay = stub_llm.script[1].delay = 1.0
    with pytest.raises(DesignError, match="no answer after 2 tries: APITimeoutError") as info:
        designer(stub_llm, timeout=0.3).design(request())
    assert info.value.design is not None
    attempts = info.value.design.attempts
    assert len(attempts) == 2 and all(a["status"] is None and "Timeout" in a["error"] for a in attempts)


def test_timeout_then_answer_succeeds(stub_llm: StubLLM) -> None:
    stub_llm.add(completion(crafter_answer(N)), completion(crafter_answer(N)))
    stub_llm.script[0].delay = 1.0
    design = designer(stub_llm, timeout=0.3).design(request())
    assert [a["status"] for a in design.attempts] == [None, 200]


OUT_OF_RANGE = crafter_env(0, inventory_settings={**crafter_env()["inventory_settings"], "wood": 25})
UNKNOWN_KEY = {**crafter_env(0), "difficulty": "hard"}
GRASSLAND_DIAMONDS = crafter_env(
    0,
    environment_settings={
        **crafter_env()["environment_settings"],
        "target_biome": "grassland",
        "diamond_rarity": "common",
        "coal_rarity": None,
    },
)


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        pytest.param(completion(crafter_answer(N)[:-30]), "no parsable JSON", id="truncated-json"),
        pytest.param(completion(json.dumps({"envs": []})), "'environments' is a required property", id="wrong-shape"),
        pytest.param(completion("Sure! Environment 1 teaches wood."), "no parsable JSON", id="prose"),
        pytest.param(completion(""), "empty", id="empty-content"),
        pytest.param(completion(None), "empty", id="null-content"),
        pytest.param(completion(crafter_answer(N, [UNKNOWN_KEY, crafter_env(1)])), "difficulty", id="unknown-key"),
        pytest.param(completion(crafter_answer(N, [OUT_OF_RANGE, crafter_env(1)])), "25", id="out-of-range"),
        pytest.param(completion(crafter_answer(N, [crafter_env(0)])), "too short", id="too-few-envs"),
        pytest.param(completion(crafter_answer(N), finish_reason="length"), "cut off", id="finish-length"),
        pytest.param(
            completion(crafter_answer(N, [GRASSLAND_DIAMONDS, crafter_env(1)])),
            "diamonds never spawn",
            id="check-error",
        ),
    ],
)
def test_invalid_answer_gets_one_repair(stub_llm: StubLLM, bad: object, problem: str) -> None:
    stub_llm.add(bad, completion(crafter_answer(N)))  # type: ignore[arg-type]
    design = designer(stub_llm).design(request())

    assert len(design.envs) == N
    repair = stub_llm.requests[1]["messages"]
    assert [m["role"] for m in repair][-2:] == ["assistant", "user"]
    assert problem in repair[-1]["content"] and "could not be used" in repair[-1]["content"]
    assert any("asked for one repair" in n and problem in n for n in design.notes)
    assert [m.role for m in design.chat] == ["system", "user", "assistant"]  # the clean conversation
    assert len(design.attempts) == 2


def test_still_invalid_after_repair_is_a_design_error(stub_llm: StubLLM) -> None:
    stub_llm.add(completion("no idea"), completion(json.dumps({"environments": []})))
    with pytest.raises(DesignError, match="still invalid after one repair") as info:
        designer(stub_llm).design(request())
    design = info.value.design
    assert design is not None and design.envs == [] and len(design.attempts) == 2
    assert design.usage.calls == 2


def test_garbage_body_is_a_design_error(stub_llm: StubLLM) -> None:
    from .stub import Reply

    stub_llm.add(Reply(status=200, body="<html>proxy error</html>"))
    with pytest.raises(DesignError):
        designer(stub_llm, max_retries=0).design(request())


def test_availability_failures_are_outages_content_failures_are_not(stub_llm: StubLLM) -> None:
    stub_llm.add(error(429, "slow down", {"retry-after": "7"}), error(429, "slow down", {"retry-after": "7"}))
    with pytest.raises(DesignUnavailable, match="HTTP 429") as info:
        designer(stub_llm).design(request())
    assert info.value.retry_after == 7.0 and info.value.design is not None
    stub_llm.add(error(503, "down"), error(503, "down"))
    with pytest.raises(DesignUnavailable) as down:
        designer(stub_llm).design(request())
    assert down.value.retry_after is None
    stub_llm.add(error(401, "invalid api key"))
    with pytest.raises(DesignError, match="HTTP 401") as refused:
        designer(stub_llm).design(request())
    assert not isinstance(refused.value, DesignUnavailable)
    stub_llm.add(completion("not json"), completion("still not json"))
    with pytest.raises(DesignError, match="still invalid") as invalid:
        designer(stub_llm).design(request())
    assert not isinstance(invalid.value, DesignUnavailable)


def test_connection_refused_is_an_outage() -> None:
    settings = LLMSettings(base_url=f"http://127.0.0.1:{free_port()}/v1", model="stub", max_retries=0)
    with pytest.raises(DesignUnavailable, match="APIConnectionError"):
        LLMDesigner(LLMClient(settings), critic=False).design(request())


def test_retry_after_forms() -> None:
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"retry-after": "-1"}) == 0.0
    assert retry_after_seconds({}) is None and retry_after_seconds({"retry-after": "soon"}) is None
    later = email.utils.formatdate(time.time() + 60, usegmt=True)
    assert 50 < (retry_after_seconds({"retry-after": later}) or 0) <= 60
