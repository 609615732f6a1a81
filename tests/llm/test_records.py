"""Record/replay: content-addressed keys, atomic files, and re-runs that reuse answers at zero cost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envgen.contracts import DesignRequest
from envgen.designers import LLMDesigner
from envgen.llm import DirectoryRecordStore, LLMClient, LLMSettings, MemoryRecordStore, RecordStore, request_key

from .stub import StubLLM, completion, crafter_answer, error

SECRET = "sk-record-secret-42"
REQUEST = {
    "model": "m",
    "messages": [{"role": "user", "content": "hi"}],
    "response_format": {"type": "json_object"},
    "temperature": 0.0,
    "max_tokens": 100,
}


def test_key_covers_the_request_only() -> None:
    key = request_key(REQUEST)
    assert len(key) == 64
    assert request_key({**REQUEST, "base_url": "http://elsewhere", "api_key": SECRET}) == key
    assert request_key(dict(reversed(list(REQUEST.items())))) == key
    for field, value in [("model", "n"), ("temperature", 0.5), ("max_tokens", 101), ("response_format", None)]:
        assert request_key({**REQUEST, field: value}) != key
    assert request_key({**REQUEST, "messages": [{"role": "user", "content": "hi!"}]}) != key


def test_directory_store_round_trip_is_atomic(tmp_path: Path) -> None:
    store = DirectoryRecordStore(tmp_path / "records")
    key = request_key(REQUEST)
    assert store.get(key) is None
    store.put(key, {"response": {"content": "x"}})
    store.put(key, {"response": {"content": "y"}})
    assert store.get(key) == {"response": {"content": "y"}}
    assert [p.name for p in (tmp_path / "records").iterdir()] == [f"{key}.json"]
    (tmp_path / "records" / f"{key}.json").write_text("{broken")
    assert store.get(key) is None
    with pytest.raises(ValueError, match="not a record key"):
        store.get("../../etc/passwd")


def designer(stub: StubLLM, records: RecordStore, url: str | None = None) -> LLMDesigner:
    settings = LLMSettings(base_url=url or stub.base_url, model="stub", api_key=SECRET, max_retries=0)
    return LLMDesigner(LLMClient(settings, records=records), critic=False)


@pytest.mark.parametrize("kind", ["memory", "directory"])
def test_rerun_replays_every_answer(stub_llm: StubLLM, tmp_path: Path, kind: str) -> None:
    store: RecordStore = MemoryRecordStore() if kind == "memory" else DirectoryRecordStore(tmp_path)
    request = DesignRequest(game="crafter", cycle=1, num_envs=2)
    stub_llm.add(error(400, "json_schema unsupported"), completion("prose"), completion(crafter_answer(2)))
    live = designer(stub_llm, store).design(request)
    assert live.usage.calls == 2 and live.usage.cached_calls == 0
    sent = len(stub_llm.requests)

    replayed = designer(stub_llm, store, url="http://127.0.0.1:9/v1").design(request)  # unreachable: no HTTP

    assert len(stub_llm.requests) == sent
    assert replayed.envs == live.envs and replayed.chat == live.chat
    assert replayed.usage.calls == 0 and replayed.usage.cached_calls == 2
    assert replayed.usage.prompt_tokens == 0 and replayed.usage.latency_seconds == 0
    assert [a["cached"] for a in replayed.attempts] == [True, True, True]
    assert [a["key"] for a in replayed.attempts] == [a["key"] for a in live.attempts]
    if kind == "directory":
        files = list(tmp_path.glob("*.json"))
        assert len(files) == 3
        text = "".join(f.read_text() for f in files)
        assert SECRET not in text and stub_llm.base_url not in text
        assert all("request" in json.loads(f.read_text()) for f in files)
