"""Shared fixtures: the real embedded LLM (session-wide) and a scriptable stub endpoint."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from llm.stub import StubLLM

from envgen.llm.embedded import EmbeddedLLMError, SharedEmbeddedLLM, model_file, server_binary


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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The long end-to-end tests first: under ``-n 2`` they overlap the many short ones instead of ending last."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
