"""envgen-train end to end: a 2-task run through the CLI and the Python API, and bad inputs."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from envgen.achievements import ACHIEVEMENTS, crafter_score
from envgen.contracts import EXIT_CHECKPOINT_ERROR, EXIT_INVALID_TASK, TrainingTask
from envgen_trainer.checkpoint import CheckpointError
from envgen_trainer.metrics import env_results, success_rates
from envgen_trainer.runner import run_task
from envgen_trainer.vecenv import Episode

from .tasks import cycle_task

AGENT = {"numEnvs": 2, "rolloutSteps": 32, "minibatches": 2, "epochs": 1}


GRASS = {
    "name": "grass",
    "weight": 1,
    "config": {
        "game": "crafter",
        "environment_settings": {"target_biome": "grassland", "place_table": True},
        "inventory_settings": {"wood": 2},
        "world_settings": {"length": 40},
    },
}


def _task(tmp: Path, name: str, **extra: Any) -> dict[str, Any]:
    budget = {"designedEnvSteps": 128, "gameSteps": 64, "evalEpisodes": 2, "evalRuns": 2, "agent": AGENT}
    return cycle_task(tmp, "t", name, [GRASS], **{**budget, **extra})


def _cli(tmp: Path, task: dict[str, Any] | str) -> subprocess.CompletedProcess[str]:
    path = tmp / "task.json"
    path.write_text(task if isinstance(task, str) else json.dumps(task))
    env = {**os.environ, "ENVGEN_TRAINER_WORKERS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "envgen_trainer", "--task", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_two_tasks_continue_from_checkpoint(tmp_path: Path) -> None:
    first = _task(tmp_path, "c1")
    proc = _cli(tmp_path, first)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / "c1" / "metrics.json").read_text())
    assert set(metrics["success"]) == set(ACHIEVEMENTS)
    means = {k: v["mean"] for k, v in metrics["success"].items()}
    assert math.isclose(metrics["score"], crafter_score(means), rel_tol=1e-9)
    assert metrics["globalStep"] == metrics["steps"] == 192 and metrics["evalEpisodes"] == 4
    assert metrics["perEnv"][0]["name"] == "grass" and set(metrics["perEnv"][0]["success"]) == set(ACHIEVEMENTS)
    compact = json.loads((tmp_path / "c1.term").read_text())
    assert compact["globalStep"] == 192 and "error" not in compact
    progress = json.loads((tmp_path / "c1" / "progress.json").read_text())
    assert progress["phase"] == "eval" and progress["totalSteps"] == 192
    # what CleanRL logs: per update in TensorBoard, the task's means in its metrics
    updates = metrics["updates"]
    assert {"approxKl", "clipfrac", "explainedVariance", "policyLoss", "valueLoss", "entropy"} <= set(updates)
    assert 0.0 <= updates["clipfrac"] <= 1.0
    tags = EventAccumulator(str(tmp_path / "c1" / "tb")).Reload().Tags()["scalars"]
    assert {"losses/clipfrac", "losses/approx_kl", "losses/explained_variance", "charts/SPS"} <= set(tags)

    second = TrainingTask.model_validate(
        _task(
            tmp_path,
            "c2",
            cycle=2,
            checkpointIn=str(tmp_path / "c1.pt"),
            designedEnvSteps=0,
            evalEpisodes=1,
            evalRuns=1,
        )
    )
    result = run_task(second)
    assert result.global_step == 192 + 64 and result.steps == 64 and result.eval_episodes == 1
    before = torch.load(tmp_path / "c1.pt", weights_only=True)
    after = torch.load(tmp_path / "c2.pt", weights_only=True)
    assert after["counters"]["global_step"] == 256 and after["counters"]["iterations"] == 3 + 1
    assert any(not torch.equal(before["model"][k], after["model"][k]) for k in before["model"])


def test_success_rates_and_per_env_results() -> None:
    eps = [
        Episode(0, "a", 2.0, 10, ("collect_wood", "place_table")),
        Episode(1, "a", 1.0, 5, ("collect_wood",)),
        Episode(2, "b", 0.0, 7, ()),
    ]
    rates = success_rates(eps, "crafter")
    assert set(rates) == set(ACHIEVEMENTS)
    assert rates["collect_wood"] == pytest.approx(200 / 3) and rates["place_table"] == pytest.approx(100 / 3)
    per_env = {r.name: r for r in env_results(eps, ["a", "b", "c"], "crafter")}
    assert per_env["a"].episodes == 2 and per_env["a"].success["collect_wood"] == 100.0
    assert per_env["a"].score == pytest.approx(crafter_score(per_env["a"].success))
    assert per_env["a"].reward_mean == 1.5 and per_env["c"].episodes == 0 and per_env["c"].score is None
    assert success_rates([Episode(0, "h", 10.0, 3, ("heist_success",))], "heist") == {"heist_success": 100.0}


def test_missing_checkpoint_is_a_checkpoint_error(tmp_path: Path) -> None:
    task = TrainingTask.model_validate(_task(tmp_path, "m", checkpointIn=str(tmp_path / "none.pt")))
    with pytest.raises(CheckpointError):
        run_task(task)


def _assert_failure(proc: subprocess.CompletedProcess[str], term: Path, code: int, words: str) -> None:
    assert proc.returncode == code
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], proc.stderr
    doc = json.loads(term.read_text())
    assert doc["exitCode"] == code and words in doc["error"]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"bogusKey": 1}, "unknown field"),
        ({"agent": {**AGENT, "numEnvs": 0}}, "agent.numEnvs"),
        ({"game": "heist"}, "crafter config"),
    ],
)
def test_invalid_tasks_exit_2(tmp_path: Path, change: dict[str, Any], words: str) -> None:
    proc = _cli(tmp_path, _task(tmp_path, "bad", **change))
    _assert_failure(proc, tmp_path / "bad.term", EXIT_INVALID_TASK, words)


def test_invalid_json_exit_2_with_flag_path(tmp_path: Path) -> None:
    term = tmp_path / "flag.term"
    path = tmp_path / "task.json"
    path.write_text("{not json")
    proc = subprocess.run(
        [sys.executable, "-m", "envgen_trainer", "--task", str(path), "--termination-log", str(term)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    _assert_failure(proc, term, EXIT_INVALID_TASK, "not valid JSON")


@pytest.mark.parametrize("content", [None, b"garbage, not a checkpoint"])
def test_bad_checkpoint_exit_3(tmp_path: Path, content: bytes | None) -> None:
    ckpt = tmp_path / "in.pt"
    if content is not None:
        ckpt.write_bytes(content)
    proc = _cli(tmp_path, _task(tmp_path, "ck", checkpointIn=str(ckpt)))
    _assert_failure(proc, tmp_path / "ck.term", EXIT_CHECKPOINT_ERROR, "checkpoint")
