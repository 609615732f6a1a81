"""Shared fixtures: the real embedded LLM (session-wide) and a scriptable stub endpoint."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from llm.stub import StubLLM

from envgen.llm.embedded import EmbeddedLLMError, model_file, server_binary
from envgen.llm.shared import SharedEmbeddedLLM


@pytest.fixture(scope="session")
def llm_server() -> Iterator[str]:
    """Base URL of the real embedded llama-server with SmolLM2 (skips only when set-up has not built it).

    One server per machine and user, shared by concurrent test sessions; the last session to end stops it.
    """
    try:
        server_binary()
        model_file()
    except EmbeddedLLMError as exc:
        pytest.skip(f"embedded LLM unavailable: {exc}")
    with SharedEmbeddedLLM() as llm:
        assert llm.base_url is not None
        yield llm.base_url


@pytest.fixture
def stub_llm() -> Iterator[StubLLM]:
    """A local OpenAI-compatible stub that answers from a script (fault injection)."""
    stub = StubLLM()
    yield stub
    stub.close()


def _minutes(item: pytest.Item) -> float:
    """A test's expected length for scheduling: ``slow(minutes=N)`` (a loaded 2-core machine), else 0.5 for a
    real-LLM test, else 0."""
    slow = item.get_closest_marker("slow")
    if slow is not None:
        return float(slow.kwargs.get("minutes", 1))
    return 0.5 if item.get_closest_marker("llm") is not None else 0.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest tests first: under ``-n 2`` (one test at a time per worker, ``--maxschedchunk 1``) they start
    on both workers at once and overlap the many short ones instead of queueing on one or ending last."""
    items.sort(key=_minutes, reverse=True)
