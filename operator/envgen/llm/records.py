"""Record/replay of LLM answers, content-addressed by the canonical request.

The key is the sha256 of the request as the model sees it (model, messages, response_format, temperature,
max_tokens). The endpoint URL and the API key are not part of it, and no record ever holds a credential.
A re-run with the same store replays answers instead of calling the endpoint. A record holds either the
``response`` (:func:`response_record`) or the ``rejected`` response format (:func:`rejection_record`), so a
replay also steps down the ladder without asking.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Protocol

from .. import atomic

KEY_FIELDS = ("model", "messages", "response_format", "temperature", "max_tokens")


def canonical_request(request: dict[str, Any]) -> dict[str, Any]:
    """The part of a chat request that decides the answer."""
    return {k: request.get(k) for k in KEY_FIELDS}


def request_key(request: dict[str, Any]) -> str:
    """sha256 of the canonical request (sorted keys, compact separators)."""
    text = json.dumps(canonical_request(request), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def response_record(
    request: dict[str, Any],
    *,
    content: str,
    finish_reason: str | None,
    prompt_tokens: int,
    completion_tokens: int,
    latency_seconds: float,
) -> dict[str, Any]:
    """The record of an answer to ``request``."""
    response = {
        "content": content,
        "finishReason": finish_reason,
        "promptTokens": prompt_tokens,
        "completionTokens": completion_tokens,
        "latencySeconds": latency_seconds,
    }
    return {"request": canonical_request(request), "response": response}


def rejection_record(request: dict[str, Any], *, status: int, error: str) -> dict[str, Any]:
    """The record of an endpoint rejecting ``request``'s response format."""
    return {"request": canonical_request(request), "rejected": {"status": status, "error": error}}


class RecordStore(Protocol):
    """Where recorded answers live."""

    def get(self, key: str) -> dict[str, Any] | None: ...

    def put(self, key: str, record: dict[str, Any]) -> None: ...


class MemoryRecordStore:
    """Records kept in a dict (tests, one process)."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}

    def get(self, key: str) -> dict[str, Any] | None:
        return self.records.get(key)

    def put(self, key: str, record: dict[str, Any]) -> None:
        self.records[key] = json.loads(json.dumps(record))


class DirectoryRecordStore:
    """One ``<key>.json`` file per record, written atomically (temp file + rename)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def _file(self, key: str) -> Path:
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise ValueError(f"not a record key: {key!r}")
        return self.path / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            doc = json.loads(self._file(key).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return doc if isinstance(doc, dict) else None

    def put(self, key: str, record: dict[str, Any]) -> None:
        atomic.write_json(self._file(key), record, indent=1, sort_keys=True)
