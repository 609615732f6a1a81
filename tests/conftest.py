"""Shared fixtures (the real embedded LLM, session-wide; a scriptable stub endpoint) and the test tiers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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


TESTS = Path(__file__).parent
# The tiers: each test gets a marker for the real component it needs beyond Python, so `make test-fast` can leave
# those tests out. By fixture (a new test that asks for the component falls in its tier by itself) ...
FIXTURE_TIERS = {
    "llm_server": "llm",
    "real_server": "real_server",
    "real_cluster": "real_server",
    "prometheus": "prometheus",
}
# ... and by directory: the trainer's and the science benchmark's tests train agents or step the real games.
DIRECTORY_TIERS = {TESTS / "trainer": "training", TESTS / "science": "training"}


def _tiers(item: pytest.Item) -> set[str]:
    """The tier markers a test gets from its fixtures and its directory."""
    fixtures = getattr(item, "fixturenames", ())
    tiers = {tier for fixture, tier in FIXTURE_TIERS.items() if fixture in fixtures}
    return tiers | {tier for folder, tier in DIRECTORY_TIERS.items() if item.path.is_relative_to(folder)}


def _minutes(item: pytest.Item) -> float:
    """A test's expected length for scheduling: ``slow(minutes=N)`` (a loaded 2-core machine), else 0.5 for a
    real-LLM test, else 0."""
    slow = item.get_closest_marker("slow")
    if slow is not None:
        return float(slow.kwargs.get("minutes", 1))
    return 0.5 if item.get_closest_marker("llm") is not None else 0.0


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test's tiers, then put the longest tests first: under ``-n 2`` (one test at a time per worker,
    ``--maxschedchunk 1``) they start on both workers at once and overlap the many short ones instead of queueing
    on one or ending last."""
    for item in items:
        for tier in sorted(_tiers(item)):
            item.add_marker(tier)
    items.sort(key=_minutes, reverse=True)
