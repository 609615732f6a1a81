"""One training task end to end: designed envs, then the real game, then evaluation (``run_task``)."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from envgen import atomic
from envgen.contracts import TrainingMetrics, TrainingTask, WeightedEnv
from envgen.games import SEED_MODULUS, game

from . import checkpoint
from .evaluate import evaluate
from .games import trainer_game
from .metrics import env_results, score, success_rates
from .ppo import PPO, IterationStats
from .vecenv import EnvSpec, Episode, VecEnv


class InvalidTask(ValueError):
    """A task that is well-formed JSON but cannot be run as asked."""


def write_json_atomic(path: Path, doc: Any) -> None:
    """Write JSON via a temp file in the same directory and a rename."""
    atomic.write_json(path, doc, indent=1)


def validate(task: TrainingTask) -> None:
    """Cross-field checks the schema cannot express; raise InvalidTask."""
    for env in task.envs:
        if env.config.game != task.game:
            raise InvalidTask(f"env {env.name!r} is a {env.config.game} config but the task's game is {task.game}")
    if task.designed_env_steps > 0 and not task.envs:
        raise InvalidTask("designedEnvSteps > 0 needs at least one env in envs")
    names = [env.name for env in task.envs]
    if len(set(names)) != len(names):
        raise InvalidTask("env names must be unique")


def split_slots(envs: Sequence[WeightedEnv], num_envs: int) -> list[int]:
    """Parallel env slots per designed env, proportional to weight (largest remainder, at least one each)."""
    total = max(num_envs, len(envs))
    weights = np.array([e.weight for e in envs], float)
    exact = (total - len(envs)) * weights / weights.sum()
    slots = np.floor(exact).astype(int) + 1
    for i in np.argsort(-(exact - np.floor(exact)), kind="stable")[: total - int(slots.sum())]:
        slots[i] += 1
    return [int(s) for s in slots]


def _seed(task: TrainingTask, offset: int) -> int:
    return (task.seed * 1_000_003 + task.cycle * 10_007 + offset) % SEED_MODULUS


def num_workers(num_envs: int) -> int:
    """Worker processes: one per core (``ENVGEN_TRAINER_WORKERS`` overrides), never more than envs."""
    wanted = int(os.environ.get("ENVGEN_TRAINER_WORKERS", "0")) or (os.cpu_count() or 2)
    return max(1, min(wanted, num_envs))


class _Progress:
    """progress.json (atomic, every iteration) and TensorBoard scalars."""

    def __init__(self, out: Path, total: int, agent: PPO) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.path = out / "progress.json"
        self.total, self.agent = total, agent
        self.base = 0
        self.writer = SummaryWriter(str(out / "tb"))

    def write(self, phase: str, steps: int, sps: float) -> None:
        write_json_atomic(
            self.path,
            {
                "phase": phase,
                "steps": steps,
                "totalSteps": self.total,
                "globalStep": self.agent.counters.global_step,
                "stepsPerSecond": round(sps, 1),
            },
        )

    def iteration(self, phase: str, stats: IterationStats) -> None:
        step = self.agent.counters.global_step
        self.write(phase, self.base + stats.steps, stats.steps_per_second)
        self.writer.add_scalar("charts/steps_per_second", stats.steps_per_second, step)
        for key, value in stats.losses.items():
            self.writer.add_scalar(f"losses/{key}", value, step)

    def episode(self, phase: str, ep: Episode) -> None:
        step = self.agent.counters.global_step
        self.writer.add_scalar(f"{phase}/episodic_return", ep.ret, step)
        self.writer.add_scalar(f"{phase}/episodic_length", ep.length, step)


def _train_phase(agent: PPO, specs: list[EnvSpec], steps: int, phase: str, progress: _Progress) -> list[Episode]:
    episodes: list[Episode] = []
    if steps <= 0:
        return episodes

    def on_episode(ep: Episode) -> None:
        episodes.append(ep)
        progress.episode(phase, ep)

    with VecEnv(specs, num_workers(len(specs))) as vec:
        done = agent.train(vec, steps, on_episode, lambda s: progress.iteration(phase, s))
    progress.base += done
    return episodes


def run_task(task: TrainingTask) -> TrainingMetrics:
    """Run a training task in this process; write checkpoint_out, metrics.json and progress.json.

    Raises InvalidTask for an unrunnable task and ``checkpoint.CheckpointError`` for a bad checkpoint_in.
    """
    validate(task)
    started = time.perf_counter()
    out = Path(task.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    random.seed(_seed(task, 1))
    np.random.seed(_seed(task, 2))
    torch.manual_seed(_seed(task, 3))
    agent = PPO(task.agent, game(task.game).num_actions)
    if task.checkpoint_in is not None:
        checkpoint.load(agent, task.checkpoint_in)
    real_game = trainer_game(task.game).game_config([env.config for env in task.envs])
    progress = _Progress(out, task.designed_env_steps + task.game_steps, agent)
    progress.write("designed" if task.designed_env_steps else "game", 0, 0.0)

    designed: list[EnvSpec] = []
    for env, count in zip(task.envs, split_slots(task.envs, task.agent.num_envs), strict=True):
        designed += [EnvSpec(task.game, _seed(task, 1000 + len(designed)), env.name, env.config) for _ in range(count)]
    designed_eps = _train_phase(agent, designed, task.designed_env_steps, "designed", progress)

    game_envs = [EnvSpec(task.game, _seed(task, 5000 + i), "game", real_game) for i in range(task.agent.num_envs)]
    game_eps = _train_phase(agent, game_envs, task.game_steps, "game", progress)
    train_steps = progress.base
    checkpoint.save(agent, task.checkpoint_out)

    progress.write("eval", train_steps, 0.0)
    result = evaluate(
        agent,
        task.game,
        real_game,
        _seed(task, 900_000),
        task.eval_runs,
        task.eval_episodes,
        task.agent.num_envs,
        num_workers(task.agent.num_envs),
    )
    wall = time.perf_counter() - started
    train_success = success_rates(game_eps, task.game) if game_eps else {}
    metrics = TrainingMetrics.for_task(
        task,
        global_step=agent.counters.global_step,
        steps=train_steps,
        wall_time_seconds=wall,
        steps_per_second=train_steps / wall if wall > 0 else 0.0,
        success=result.success,
        score=result.score,
        score_std=result.score_std,
        reward_mean=result.reward_mean,
        reward_std=result.reward_std,
        episode_length_mean=result.length_mean,
        eval_episodes=result.episodes,
        train_success=train_success,
        train_score=score(train_success, task.game) if game_eps else None,
        per_env=env_results(designed_eps, [e.name for e in task.envs], task.game)
        if task.designed_env_steps > 0
        else [],
        device=str(agent.device),
    )
    for key, stat in result.success.items():
        progress.writer.add_scalar(f"eval/{key}", stat.mean, agent.counters.global_step)
    if result.score is not None:
        progress.writer.add_scalar("eval/score", result.score, agent.counters.global_step)
    progress.writer.close()
    write_json_atomic(out / "metrics.json", metrics.dump())
    progress.write("eval", train_steps, metrics.steps_per_second)
    return metrics
