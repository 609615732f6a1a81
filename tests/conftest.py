"""Shared fixtures: the real embedded LLM (session-wide) and a scriptable stub endpoint."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from llm.stub import StubLLM

from envgen.llm.embedded import EmbeddedLLM, EmbeddedLLMError, model_file, server_binary


@pytest.fixture(scope="session")
def llm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of the real embedded llama-server with SmolLM2 (skips only when set-up has not built it)."""
    try:
        server_binary()
        model_file()
    except EmbeddedLLMError as exc:
        pytest.skip(f"embedded LLM unavailable: {exc}")
    with EmbeddedLLM(state_dir=tmp_path_factory.mktemp("llama-server")) as llm:
        yield llm.base_url


@pytest.fixture
def stub_llm() -> Iterator[StubLLM]:
    """A local OpenAI-compatible stub that answers from a script (fault injection)."""
    stub = StubLLM()
    yield stub
    stub.close()
