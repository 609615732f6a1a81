"""The designer factory: whether a designer uses an LLM, the endpoint's fallback, the API key, the session's close."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
from llm.stub import StubLLM, completion, crafter_answer, error

from envgen.contracts import DesignRequest
from envgen.designers import ConstrainedLLMDesigner, FixedDesigner, LLMDesigner, NoDesigner
from envgen.designers.factory import (
    BASE_URL_ENV,
    DesignerSession,
    Embedded,
    LLMPlan,
    SetupError,
    cluster_plan,
    local_plan,
    open_session,
    uses_llm,
)
from envgen.spec import EnvGenRunSpec, SpecError

SECRET = "sk-factory-test-0123456789"


def spec(designer: str = "llm", *, mode: str = "free", **llm: Any) -> EnvGenRunSpec:
    return EnvGenRunSpec.model_validate(
        {"designer": {"type": designer, "mode": mode, "critic": False}, "llm": {"maxRetries": 0, **llm}}
    )


def secrets(store: dict[tuple[str, str], str]) -> Any:
    calls: list[tuple[str, str]] = []

    def read(name: str, key: str) -> str | None:
        calls.append((name, key))
        return store.get((name, key))

    read.calls = calls  # type: ignore[attr-defined]
    return read


@pytest.mark.parametrize(
    ("kind", "llm"),
    [
        ("llm", True),
        ("fixed", True),
        ("easy-to-hard", False),
        ("adversarial", False),
        ("heuristic", False),
        ("learning-progress", False),
        ("none", False),
    ],
)
def test_only_llm_and_fixed_use_an_llm(kind: str, llm: bool) -> None:
    s = spec(kind, baseURL="http://llm/v1", apiKey={"secretKeyRef": {"name": "llm", "key": "token"}})
    assert uses_llm(s.designer) is llm
    read = secrets({})  # the Secret is missing: that only matters to a designer that uses an LLM
    if llm:
        with pytest.raises(SetupError, match="has no key"):
            cluster_plan(s, read, "ns")
        with pytest.raises(SpecError, match="only in a cluster"):
            local_plan(s)
    else:
        assert cluster_plan(s, read, "ns").llm is None and local_plan(s).llm is None
    assert read.calls == ([("llm", "token")] if llm else [])


def test_local_endpoint_spec_then_default_then_embedded(tmp_path: Path) -> None:
    given = spec(baseURL="http://spec.example/v1")
    assert local_plan(given, base_url="http://default/v1", embedded=tmp_path).llm == LLMPlan(
        given.llm, "http://spec.example/v1"
    )
    unset = spec()
    plan = local_plan(unset, base_url="http://default/v1", embedded=tmp_path)
    assert plan.llm is not None and plan.llm.endpoint == "http://default/v1" and not plan.embedded
    plan = local_plan(unset, embedded=tmp_path)
    assert plan.llm is not None and plan.llm.endpoint == Embedded(tmp_path) and plan.embedded
    with pytest.raises(SetupError, match="no LLM endpoint") as exc:
        local_plan(unset)
    assert exc.value.reason == "NoEndpoint"


def test_cluster_endpoint_spec_then_the_operators_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BASE_URL_ENV, "http://operator-default/v1")
    read = secrets({})
    plan = cluster_plan(spec(baseURL="http://spec.example/v1"), read, "ns")
    assert plan.llm is not None and plan.llm.endpoint == "http://spec.example/v1"
    plan = cluster_plan(spec(), read, "ns")
    assert plan.llm is not None and plan.llm.endpoint == "http://operator-default/v1"
    monkeypatch.delenv(BASE_URL_ENV)
    with pytest.raises(SetupError, match=f"the operator's {BASE_URL_ENV}") as exc:
        cluster_plan(spec(), read, "ns")
    assert exc.value.reason == "NoEndpoint"


def test_local_key_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "http://llm/v1"
    monkeypatch.setenv("ENVGEN_FACTORY_KEY", SECRET)
    plan = local_plan(spec(baseURL=url, apiKey={"env": "ENVGEN_FACTORY_KEY"}))
    assert plan.llm is not None and plan.llm.api_key == SECRET and SECRET not in repr(plan)
    for source in (None, {}):
        no_key = local_plan(spec(baseURL=url, apiKey=source))
        assert no_key.llm is not None and no_key.llm.api_key is None
    monkeypatch.delenv("ENVGEN_FACTORY_KEY")
    with pytest.raises(SpecError, match="ENVGEN_FACTORY_KEY, but that environment variable is not set"):
        local_plan(spec(baseURL=url, apiKey={"env": "ENVGEN_FACTORY_KEY"}))
    with pytest.raises(SpecError, match="secretKeyRef works only in a cluster"):
        local_plan(spec(baseURL=url, apiKey={"secretKeyRef": {"name": "llm", "key": "token"}}))


def test_cluster_key_comes_from_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVGEN_FACTORY_KEY", SECRET)
    url = "http://llm/v1"
    read = secrets({("llm", "token"): SECRET})
    plan = cluster_plan(spec(baseURL=url, apiKey={"secretKeyRef": {"name": "llm", "key": "token"}}), read, "ns")
    assert plan.llm is not None and plan.llm.api_key == SECRET and SECRET not in repr(plan)
    env_only = cluster_plan(spec(baseURL=url, apiKey={"env": "ENVGEN_FACTORY_KEY"}), read, "ns")
    assert env_only.llm is not None and env_only.llm.api_key is None  # the operator's environment is not a source
    with pytest.raises(SetupError, match="Secret 'llm' has no key 'other' in namespace ns") as exc:
        cluster_plan(spec(baseURL=url, apiKey={"secretKeyRef": {"name": "llm", "key": "other"}}), read, "ns")
    assert exc.value.reason == "SecretUnavailable"


def test_plans_differ_exactly_when_the_designer_would() -> None:
    read = secrets({("llm", "token"): SECRET})
    base = {"baseURL": "http://llm/v1", "apiKey": {"secretKeyRef": {"name": "llm", "key": "token"}}}
    plan = cluster_plan(spec(**base), read, "ns")
    assert plan == cluster_plan(spec(**base), read, "ns")
    assert plan != cluster_plan(spec(**base, temperature="0.5"), read, "ns")
    assert plan != cluster_plan(spec(mode="constrained", **base), read, "ns")
    assert plan != cluster_plan(spec(**base), secrets({("llm", "token"): "sk-rotated"}), "ns")
    assert cluster_plan(spec("none"), read, "ns") == cluster_plan(spec("none", temperature="0.5"), read, "ns")


def test_session_builds_the_designer_from_the_plan() -> None:
    plan = local_plan(spec(baseURL="http://llm/v1", temperature="0.3", model="stub-model"))
    session = open_session(plan)
    assert isinstance(session.designer, LLMDesigner) and session.name == "llm"
    assert session.client is session.designer.client
    settings = session.designer.client.settings
    assert (settings.base_url, settings.model, settings.temperature) == ("http://llm/v1", "stub-model", 0.3)
    session.close()
    fixed = open_session(local_plan(spec("fixed", mode="constrained", baseURL="http://llm/v1")))
    assert isinstance(fixed.designer, FixedDesigner) and isinstance(fixed.designer.first, ConstrainedLLMDesigner)
    fixed.close()


def test_close_closes_the_llm_client(stub_llm: StubLLM) -> None:
    stub_llm.add(error(400, "response_format json_schema is not supported"), completion(crafter_answer(2)))
    session = open_session(local_plan(spec(baseURL=stub_llm.base_url)))
    assert session.client is not None
    sdk = session.client._sdk
    session.design(DesignRequest(game="crafter", cycle=1, num_envs=2))
    assert session.client.rung == "json_object+schema" and not sdk._client.is_closed
    session.close()
    assert sdk._client.is_closed and session.client is None
    session.close()  # idempotent


@pytest.mark.parametrize("mode", ["free", "constrained"])
@pytest.mark.parametrize("kind", ["llm", "fixed"])
def test_every_llm_designer_closes_its_client(kind: str, mode: str) -> None:
    session = open_session(local_plan(spec(kind, mode=mode, baseURL="http://llm/v1")))
    assert session.client is not None
    sdk = session.client._sdk
    session.designer.close()
    assert sdk._client.is_closed


class CountingDesigner(NoDesigner):
    def __init__(self) -> None:
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


def test_session_close_closes_its_designer_once() -> None:
    designer = CountingDesigner()
    session = DesignerSession(local_plan(spec("none")), designer, None, None)
    session.close()
    session.close()
    assert designer.closed == 1


class BrokenDesigner(NoDesigner):
    def close(self) -> None:
        raise RuntimeError("close failed")


def test_session_stops_the_embedded_model_when_its_designer_fails_to_close(tmp_path: Path) -> None:
    server = FakeEmbedded(tmp_path)
    session = DesignerSession(local_plan(spec("none")), BrokenDesigner(), None, server)
    with pytest.raises(RuntimeError, match="close failed"):
        session.close()
    assert server.stopped
    session.close()


@pytest.mark.parametrize("kind", ["easy-to-hard", "adversarial", "heuristic", "learning-progress", "none"])
def test_baseline_session_closes_without_resources(kind: str) -> None:
    session = open_session(local_plan(spec(kind)))
    assert session.name == kind and session.client is None
    session.close()
    session.close()
    assert len(session.design(DesignRequest(game="crafter", cycle=1, num_envs=2)).envs) == (0 if kind == "none" else 2)


class FakeEmbedded:
    started: ClassVar[list[FakeEmbedded]] = []

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.stopped = False

    def start(self) -> FakeEmbedded:
        FakeEmbedded.started.append(self)
        return self

    @property
    def base_url(self) -> str:
        return "http://127.0.0.1:1/v1"

    def stop(self) -> None:
        self.stopped = True


def test_embedded_endpoint_starts_with_the_session_and_stops_on_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import envgen.llm.shared

    monkeypatch.setattr(envgen.llm.shared, "SharedEmbeddedLLM", FakeEmbedded)
    session = open_session(local_plan(spec(), embedded=tmp_path / "llm-server"))
    (server,) = FakeEmbedded.started
    assert server.state_dir == tmp_path / "llm-server"
    assert session.client is not None and session.client.settings.base_url == server.base_url
    sdk = session.client._sdk
    session.close()
    assert server.stopped and sdk._client.is_closed
