"""Preemption-safe training: a trainer killed inside a task (SIGKILL) continues from its resumable checkpoint with
the bookkeeping of an uninterrupted run: the same steps and updates, each finished episode counted once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from envgen.contracts import EXIT_RUNTIME_ERROR, RESUME_CHECKPOINT, TrainingMetrics, TrainingTask
from envgen.engine import Observed, build_task
from envgen.local.backend import LocalBackend
from envgen.local.rundir import RunDir
from envgen.spec import AgentSpec, parse_run
from envgen_trainer import checkpoint
from envgen_trainer.checkpoint import TaskProgress
from envgen_trainer.ppo import PPO, PPOArgs
from envgen_trainer.runner import run_task
from envgen_trainer.vecenv import Episode

from .tasks import cycle_task

EPISODE = 16  # designed episodes last exactly one rollout: every update ends on episode boundaries
UPDATES = 6  # designed-env updates of 2 envs x 16 steps; then one real-game update
UPDATE = 2 * EPISODE
TOTAL = (UPDATES + 1) * UPDATE


def _task(tmp: Path, name: str, **agent: Any) -> dict[str, Any]:
    meadow = {
        "name": "meadow",
        "config": {
            "game": "crafter",
            "environment_settings": {"target_biome": "grassland", "peaceful_mode": True},
            "world_settings": {"length": EPISODE},
        },
    }
    return cycle_task(
        tmp,
        "r",
        name,
        [meadow],
        designedEnvSteps=UPDATES * UPDATE,
        gameSteps=UPDATE,
        evalEpisodes=0,
        agent={"numEnvs": 2, "rolloutSteps": EPISODE, "minibatches": 2, "epochs": 1, "device": "cpu", **agent},
        resumeEverySeconds=0,
        resumeEveryUpdates=1,
    )


def _start(tmp: Path, task: dict[str, Any]) -> subprocess.Popen[str]:
    path = tmp / f"{task['name']}.json"
    path.write_text(json.dumps(task))
    return subprocess.Popen(
        [sys.executable, "-m", "envgen_trainer", "--task", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "ENVGEN_TRAINER_WORKERS": "1", "ENVGEN_TORCH_THREADS": "1"},
        start_new_session=True,  # its env workers share its process group: one SIGKILL ends them all
    )


def _kill_after_first_checkpoint(proc: subprocess.Popen[str], resume: Path) -> None:
    deadline = time.monotonic() + 120
    while not resume.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def _counters(path: Path) -> dict[str, int]:
    counters: dict[str, int] = torch.load(path, weights_only=True)["counters"]
    return counters


@pytest.mark.slow(minutes=2)
def test_a_killed_task_resumes_with_the_bookkeeping_of_an_uninterrupted_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved_at: list[int] = []
    save = checkpoint.save

    def recording_save(agent: PPO, path: str, progress: TaskProgress | None = None) -> None:
        if progress is not None:
            saved_at.append(progress.steps)
        save(agent, path, progress)

    monkeypatch.setattr(checkpoint, "save", recording_save)
    whole = run_task(TrainingTask.model_validate(_task(tmp_path, "whole")))
    assert whole.resumed_from_step is None and not (tmp_path / "whole" / RESUME_CHECKPOINT).exists()
    # after every update (resumeEveryUpdates 1) and at the end of each phase
    assert saved_at == [k * UPDATE for k in range(1, UPDATES + 1)] + [UPDATES * UPDATE] + [TOTAL] * 2

    killed = _start(tmp_path, _task(tmp_path, "cut"))
    resume = tmp_path / "cut" / RESUME_CHECKPOINT
    _kill_after_first_checkpoint(killed, resume)
    output = killed.stdout.read() if killed.stdout else ""
    assert killed.returncode == -signal.SIGKILL, output
    assert resume.exists() and not (tmp_path / "cut" / "metrics.json").exists(), output  # killed inside the task
    at = torch.load(resume, weights_only=True)["progress"]["steps"]
    assert 0 < at < TOTAL

    again = _start(tmp_path, _task(tmp_path, "cut"))
    output, _ = again.communicate(timeout=300)
    assert again.returncode == 0, output
    assert f"resumes at step {at}" in output
    cut = TrainingMetrics.model_validate_json((tmp_path / "cut" / "metrics.json").read_text())
    assert cut.resumed_from_step == at and not resume.exists()

    assert cut.steps == whole.steps == TOTAL and cut.global_step == whole.global_step == TOTAL
    # 2 envs x 6 episodes of 16 steps: the episodes cut by the kill are not counted, none is counted twice
    assert [e.episodes for e in cut.per_env] == [e.episodes for e in whole.per_env] == [UPDATES * 2]
    assert _counters(tmp_path / "cut.pt") == _counters(tmp_path / "whole.pt")
    assert _counters(tmp_path / "cut.pt")["iterations"] == UPDATES + 1


@pytest.mark.slow(minutes=1)
def test_sigterm_saves_at_the_end_of_the_update_and_the_task_resumes_there(tmp_path: Path) -> None:
    """SIGTERM (an evicted Pod, the local runner stopping) to the trainer alone: with no cadence set, the
    checkpoint it leaves is the one written at the end of the update under way."""
    doc = {**_task(tmp_path, "term"), "resumeEveryUpdates": 0, "designedEnvSteps": 3 * UPDATE, "gameSteps": 0}
    stopped = _start(tmp_path, doc)
    progress = tmp_path / "term" / "progress.json"
    deadline = time.monotonic() + 120
    while stopped.poll() is None and time.monotonic() < deadline:
        if progress.exists() and json.loads(progress.read_text())["steps"] > 0:
            break
        time.sleep(0.01)
    stopped.send_signal(signal.SIGTERM)
    output, _ = stopped.communicate(timeout=120)
    assert stopped.returncode == EXIT_RUNTIME_ERROR and "stopped by SIGTERM" in output, output
    at = torch.load(tmp_path / "term" / RESUME_CHECKPOINT, weights_only=True)["progress"]["steps"]
    assert at in (UPDATE, 2 * UPDATE)
    metrics = run_task(TrainingTask.model_validate(doc))
    assert metrics.resumed_from_step == at and metrics.steps == metrics.global_step == 3 * UPDATE


def test_only_the_task_that_wrote_a_checkpoint_resumes_it(tmp_path: Path) -> None:
    """Another task (another fingerprint) starts from its beginning; the writer gets agent and progress back."""
    args = PPOArgs.from_spec(AgentSpec(device="cpu"))
    writer = PPO(args, 17)
    writer.counters.global_step = 96
    episode = Episode(1, "meadow", 1.5, 16, ("collect_wood",))
    checkpoint.save(
        writer, tmp_path / RESUME_CHECKPOINT, TaskProgress("a", phase=1, steps=96, episodes=[[episode], []])
    )
    other = PPO(args, 17)
    assert checkpoint.load_progress(other, tmp_path / RESUME_CHECKPOINT, "b") is None
    assert other.counters.global_step == 0
    progress = checkpoint.load_progress(other, tmp_path / RESUME_CHECKPOINT, "a")
    assert progress == TaskProgress("a", phase=1, steps=96, episodes=[[episode], []])
    assert other.counters.global_step == 96
    assert all(torch.equal(a, b) for a, b in zip(writer.net.parameters(), other.net.parameters(), strict=True))
    (tmp_path / RESUME_CHECKPOINT).write_bytes(b"torn")
    assert checkpoint.load_progress(other, tmp_path / RESUME_CHECKPOINT, "a") is None


def test_the_local_runner_keeps_an_interrupted_tasks_resumable_checkpoint(tmp_path: Path) -> None:
    run = parse_run({"apiVersion": "envgen.dev/v1alpha1", "kind": "EnvGenRun", "metadata": {"name": "b"}, "spec": {}})
    task = build_task("b", run.spec, Observed(), "final", 2, 0, 1)
    backend = LocalBackend(RunDir(tmp_path), [sys.executable, "-c", "import time; time.sleep(60)"])
    backend.launch(task, 1)
    folder = tmp_path / "tasks" / task.name
    (folder / RESUME_CHECKPOINT).write_bytes(b"agent")
    (folder / "progress.json").write_text("{}")
    backend.stop_all()
    assert LocalBackend(RunDir(tmp_path)).discard_interrupted() == [task.name]
    assert sorted(p.name for p in folder.iterdir()) == [RESUME_CHECKPOINT, "train.log"]
    relaunched = LocalBackend(RunDir(tmp_path), [sys.executable, "-c", "pass"])
    assert relaunched.resumable(task.name)
    relaunched.launch(task, 1)
    assert (folder / "task.json").exists() and (folder / RESUME_CHECKPOINT).read_bytes() == b"agent"
    relaunched.stop_all()
