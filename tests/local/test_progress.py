"""The local progress display of a design: the LLM's answer (tokens so far, tokens/s) while it streams in."""

from __future__ import annotations

from pathlib import Path

import pytest
from llm.stub import StubLLM, crafter_answer, streamed

from envgen.contracts import DesignRequest
from envgen.llm.progress import StreamProgress
from envgen.local.progress import Progress
from envgen.local.rundir import RunDir
from envgen.local.runner import LocalDesigner
from envgen.spec import EnvGenRun, parse_run


def make_run(**spec: object) -> EnvGenRun:
    return parse_run(
        {"apiVersion": "envgen.dev/v1alpha1", "kind": "EnvGenRun", "metadata": {"name": "p"}, "spec": spec}
    )


def test_answer_line_shows_tokens_and_speed_and_goes_when_done(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    progress = Progress(make_run(cycles=1), RunDir(tmp_path))
    progress.llm(StreamProgress(tokens=0, seconds=3.2, decode_seconds=0))
    progress.llm(StreamProgress(tokens=30, seconds=15.0, decode_seconds=14.3))
    assert progress.answer is not None
    progress.llm(StreamProgress(tokens=60, seconds=29.0, decode_seconds=28.3, done=True))
    assert progress.answer is None
    progress.close()
    shown = capsys.readouterr().err
    assert "LLM: reading the prompt, 3 s" in shown and "LLM: 30 tokens, 2.1 tokens/s" in shown


def test_quiet_shows_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    progress = Progress(make_run(cycles=1), RunDir(tmp_path), quiet=True)
    progress.llm(StreamProgress(tokens=30, seconds=15.0, decode_seconds=14.3))
    progress.close()
    assert progress.answer is None and "LLM" not in capsys.readouterr().err


def test_local_design_streams_into_the_progress_line(
    tmp_path: Path, stub_llm: StubLLM, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = crafter_answer(2)
    pieces = [answer[i : i + 4] for i in range(0, len(answer), 4)]
    stub_llm.add(streamed(pieces))
    run = make_run(
        cycles=1,
        envsPerCycle=2,
        designer={"type": "llm", "critic": False},
        llm={"baseURL": stub_llm.base_url, "model": "stub-model", "maxRetries": 0},
    )
    progress = Progress(run, RunDir(tmp_path))
    design = LocalDesigner(run, RunDir(tmp_path), progress).design(DesignRequest(game="crafter", cycle=1, num_envs=2))
    assert progress.answer is None  # the answer line is gone once the answer is complete
    progress.close()
    assert len(design.envs) == 2 and stub_llm.requests[0]["stream"] is True
    assert design.usage.completion_tokens == len(pieces)
    assert f"LLM: {len(pieces)} tokens" in capsys.readouterr().err
