"""One training task end to end: designed envs, then the real game, then evaluation (``run_task``).

A task keeps a resumable checkpoint in its output directory while it trains; run again after an interruption,
it continues from there with the same total steps and counts each finished episode once.
"""

from __future__ import annotations

import hashlib
import json
import random
import signal
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from envgen import atomic
from envgen.contracts import RESUME_CHECKPOINT, TrainingMetrics, TrainingTask, UpdateStats, WeightedEnv
from envgen.cores import env_workers
from envgen.games import SEED_MODULUS, game

from . import checkpoint
from .checkpoint import TaskProgress
from .evaluate import evaluate
from .games import trainer_game
from .metrics import env_results, score, success_rates
from .ppo import PPO, IterationStats, PPOArgs
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


def fingerprint(task: TrainingTask) -> str:
    """What identifies a task's training, paths and checkpoint cadence aside: a resumable checkpoint is resumed
    only by the task that wrote it."""
    doc = task.model_dump(
        mode="json",
        exclude={
            "checkpoint_in",
            "checkpoint_out",
            "output_dir",
            "termination_message_path",
            "resume_every_seconds",
            "resume_every_updates",
        },
    )
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


class Stopped(RuntimeError):
    """SIGTERM stopped the task; it saved its resumable checkpoint at the end of the update under way."""


class _Resume:
    """The task's progress and its resumable checkpoint: written every ``resumeEverySeconds`` and every
    ``resumeEveryUpdates`` updates (see ``TrainingTask``), when a phase ends, and when SIGTERM (a Pod's eviction,
    the local runner stopping) asks the task to stop: then at the end of the update under way."""

    def __init__(self, task: TrainingTask, agent: PPO, progress: TaskProgress) -> None:
        self.path = Path(task.output_dir) / RESUME_CHECKPOINT
        self.every_seconds, self.every_updates = task.resume_every_seconds, task.resume_every_updates
        self.agent, self.progress = agent, progress
        self.started = self.saved = time.monotonic()
        self.wall_before = progress.wall_seconds
        self.since_save = 0
        self.stop_requested = False

    def request_stop(self, signum: int, frame: object) -> None:
        """The SIGTERM handler while the task trains."""
        self.stop_requested = True

    def wall_seconds(self) -> float:
        """Wall time of this task: earlier attempts up to their last checkpoint, plus this one."""
        return self.wall_before + time.monotonic() - self.started

    def update_done(self) -> None:
        self.since_save += 1
        due_updates = self.every_updates and self.since_save >= self.every_updates
        due_time = self.every_seconds and time.monotonic() - self.saved >= self.every_seconds
        if due_updates or due_time or self.stop_requested:
            self.save()
        if self.stop_requested:
            raise Stopped(f"stopped by SIGTERM at step {self.progress.steps}; it resumes from {self.path}")

    def save(self) -> None:
        self.progress.wall_seconds = self.wall_seconds()
        checkpoint.save(self.agent, self.path, self.progress)
        self.saved, self.since_save = time.monotonic(), 0

    def discard(self) -> None:
        """The task is done: its resumable checkpoint is no longer needed."""
        self.path.unlink(missing_ok=True)


class _Progress:
    """progress.json (atomic, every iteration) and TensorBoard scalars."""

    def __init__(self, out: Path, total: int, agent: PPO, resumed: bool) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.path = out / "progress.json"
        self.total, self.agent = total, agent
        # a resumed task hides the scalars logged after its checkpoint by the interrupted attempt
        purge = agent.counters.global_step if resumed else None
        self.writer = SummaryWriter(str(out / "tb"), purge_step=purge)

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

    def iteration(self, phase: str, steps: int, stats: IterationStats) -> None:
        """One PPO iteration, under CleanRL's TensorBoard tags (``charts/SPS``, ``losses/approx_kl``, ...)."""
        step = self.agent.counters.global_step
        self.write(phase, steps, stats.steps_per_second)
        self.writer.add_scalar("charts/SPS", stats.steps_per_second, step)
        self.writer.add_scalar("charts/learning_rate", self.agent.optimizer.param_groups[0]["lr"], step)
        for key, value in stats.losses.items():
            self.writer.add_scalar(f"{'losses' if key in UpdateStats.model_fields else 'charts'}/{key}", value, step)

    def episode(self, phase: str, ep: Episode) -> None:
        step = self.agent.counters.global_step
        self.writer.add_scalar(f"{phase}/episodic_return", ep.ret, step)
        self.writer.add_scalar(f"{phase}/episodic_length", ep.length, step)


PHASES = ("designed", "game")  # a task's training phases, in order (TaskProgress.phase indexes them)


def _train_phase(agent: PPO, specs: list[EnvSpec], steps: int, progress: _Progress, resume: _Resume) -> None:
    """Train the current phase's remaining steps (all of them, unless resumed inside the phase)."""
    state = resume.progress
    phase, episodes = PHASES[state.phase], state.episodes[state.phase]
    phase_before, task_before = state.phase_steps, state.steps
    if steps - phase_before <= 0:
        return

    def on_episode(ep: Episode) -> None:
        episodes.append(ep)
        progress.episode(phase, ep)

    def on_iteration(stats: IterationStats) -> None:
        state.phase_steps, state.steps = phase_before + stats.steps, task_before + stats.steps
        state.add_update(stats.losses)
        progress.iteration(phase, state.steps, stats)
        resume.update_done()

    with VecEnv(specs, env_workers(len(specs))) as vec:
        agent.train(vec, steps - phase_before, on_episode, on_iteration)


def run_task(task: TrainingTask) -> TrainingMetrics:
    """Run a training task in this process; write checkpoint_out, metrics.json and progress.json.

    Continues from the task's resumable checkpoint when an earlier attempt left one (see ``TrainingTask``).
    Raises InvalidTask for an unrunnable task and ``checkpoint.CheckpointError`` for a bad checkpoint_in.
    """
    validate(task)
    out = Path(task.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    random.seed(_seed(task, 1))
    np.random.seed(_seed(task, 2))
    torch.manual_seed(_seed(task, 3))
    agent = PPO(PPOArgs.from_spec(task.agent), game(task.game).num_actions)
    state = checkpoint.load_progress(agent, out / RESUME_CHECKPOINT, fingerprint(task))
    resumed_from = None if state is None else state.steps
    if state is None:
        if task.checkpoint_in is not None:
            checkpoint.load(agent, task.checkpoint_in)
        state = TaskProgress(fingerprint(task))
    else:
        print(f"envgen-train: {task.name} resumes at step {state.steps} from {out / RESUME_CHECKPOINT}", flush=True)
    resume = _Resume(task, agent, state)
    real_game = trainer_game(task.game).game_config([env.config for env in task.envs])
    progress = _Progress(out, task.designed_env_steps + task.game_steps, agent, resumed_from is not None)
    progress.write(PHASES[min(state.phase, 1)] if task.designed_env_steps else "game", state.steps, 0.0)

    # a task resumed inside a phase gets new env seeds: its envs start afresh, not replaying the first episodes
    offset = 7919 * state.phase_steps
    designed: list[EnvSpec] = []
    for env, count in zip(task.envs, split_slots(task.envs, task.agent.num_envs), strict=True):
        designed += [
            EnvSpec(task.game, _seed(task, 1000 + len(designed) + offset), env.name, env.config) for _ in range(count)
        ]
    game_envs = [
        EnvSpec(task.game, _seed(task, 5000 + i + offset), "game", real_game) for i in range(task.agent.num_envs)
    ]
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, resume.request_stop) if main_thread else None
    try:
        for index, (specs, steps) in enumerate(((designed, task.designed_env_steps), (game_envs, task.game_steps))):
            if index < state.phase:
                continue
            _train_phase(agent, specs, steps, progress, resume)
            state.phase, state.phase_steps = index + 1, 0
            if steps > 0:
                resume.save()
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    designed_eps, game_eps = state.episodes
    train_steps = state.steps
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
        env_workers(task.agent.num_envs),
    )
    wall = resume.wall_seconds()
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
        updates=state.update_means(),
        resumed_from_step=resumed_from,
    )
    for key, stat in result.success.items():
        progress.writer.add_scalar(f"eval/{key}", stat.mean, agent.counters.global_step)
    if result.score is not None:
        progress.writer.add_scalar("eval/score", result.score, agent.counters.global_step)
    progress.writer.close()
    write_json_atomic(out / "metrics.json", metrics.dump())
    progress.write("eval", train_steps, metrics.steps_per_second)
    resume.discard()
    return metrics
