"""Agent checkpoints: weights, optimizer, counters and RNG states, written atomically.

A resumable (in-task) checkpoint is an agent checkpoint plus the task's progress (:class:`TaskProgress`).
"""

from __future__ import annotations

import os
import random
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from envgen.atomic import atomic_file
from envgen.contracts import UpdateStats

from .ppo import PPO, Counters
from .vecenv import Episode

FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, unreadable or does not fit the agent."""


@dataclass
class TaskProgress:
    """Where a training task stands: what a resumed task continues from.

    ``phase`` indexes the task's training phases (designed envs, then the real game; past the last: training
    done); ``phase_steps`` are the env steps done in it, ``steps`` those of the whole task. ``episodes`` holds each
    phase's finished episodes (one list per phase), so a resumed task counts every episode once; episodes cut by
    an interruption were never finished and are not in it.
    """

    task: str  # the task's fingerprint: a checkpoint of another task is not resumed
    phase: int = 0
    phase_steps: int = 0
    steps: int = 0
    episodes: list[list[Episode]] = field(default_factory=lambda: [[], []])
    wall_seconds: float = 0.0  # wall time of earlier attempts, up to their last checkpoint
    update_sums: dict[str, float] = field(default_factory=dict)  # per-update statistics, summed over the task
    update_counts: dict[str, int] = field(default_factory=dict)  # and how many updates reported each

    def add_update(self, stats: dict[str, float]) -> None:
        """Count one PPO update's statistics (those of :class:`UpdateStats`)."""
        for name, value in stats.items():
            if name in UpdateStats.model_fields:
                self.update_sums[name] = self.update_sums.get(name, 0.0) + value
                self.update_counts[name] = self.update_counts.get(name, 0) + 1

    def update_means(self) -> UpdateStats | None:
        """The task's update statistics so far, means over its updates; None before its first update."""
        if not self.update_counts:
            return None
        return UpdateStats(**{name: self.update_sums[name] / n for name, n in self.update_counts.items()})

    def to_doc(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["episodes"] = [
            [[e.slot, e.label, e.ret, e.length, list(e.achievements)] for e in eps] for eps in self.episodes
        ]
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> TaskProgress:
        episodes = [[Episode(s, lbl, r, n, tuple(a)) for s, lbl, r, n, a in eps] for eps in doc["episodes"]]
        return cls(**{**doc, "episodes": episodes})


def _rng_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "name": name,
            "keys": torch.from_numpy(np.asarray(keys, np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    np_state = state["numpy"]
    np.random.set_state(
        (
            np_state["name"],
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["gauss"],
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(agent: PPO, path: str | os.PathLike[str], progress: TaskProgress | None = None) -> None:
    """Write the agent (and a task's ``progress``) to ``path`` atomically (temp file in the same directory, fsync,
    rename): after a kill at any moment ``path`` holds the previous checkpoint or this one, whole."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {
        "version": FORMAT_VERSION,
        "network": agent.net.network,
        "num_actions": agent.net.num_actions,
        "model": agent.net.state_dict(),
        "optimizer": agent.optimizer.state_dict(),
        "counters": asdict(agent.counters),
        "rng": _rng_state(),
    }
    if progress is not None:
        doc["progress"] = progress.to_doc()
    with atomic_file(target) as fh:
        torch.save(doc, fh)


def _read(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checkpoint's document with every tensor on the CPU: the RNG states must be CPU tensors, and loading the
    weights and the optimizer state moves them to the agent's device."""
    try:
        doc = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist") from None
    except Exception as exc:
        raise CheckpointError(f"checkpoint {path} is unreadable ({type(exc).__name__})") from None
    if not isinstance(doc, dict):
        raise CheckpointError(f"checkpoint {path} is not an envgen agent checkpoint")
    return doc


def load(agent: PPO, path: str | os.PathLike[str]) -> None:
    """Restore weights, optimizer, counters and RNG states into ``agent``; raise CheckpointError if unusable."""
    _restore(agent, _read(path), path)


def load_progress(agent: PPO, path: str | os.PathLike[str], task: str) -> TaskProgress | None:
    """Restore ``agent`` from the resumable checkpoint of task fingerprint ``task`` and return the task's progress.

    None (``agent`` untouched) when there is none; one that cannot be used (unreadable, another task's) is
    reported on stderr and ignored: the task then starts from its beginning.
    """
    if not Path(path).exists():
        return None
    try:
        doc = _read(path)
        progress = TaskProgress.from_doc(doc["progress"])
    except (CheckpointError, KeyError, TypeError, ValueError) as exc:
        print(f"envgen-train: ignoring resumable checkpoint {path}: {exc}", file=sys.stderr)
        return None
    if progress.task != task:
        print(f"envgen-train: ignoring resumable checkpoint {path}: it belongs to another task", file=sys.stderr)
        return None
    _restore(agent, doc, path)
    return progress


def _restore(agent: PPO, doc: dict[str, Any], path: str | os.PathLike[str]) -> None:
    if doc.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path} is not an envgen agent checkpoint")
    if doc["network"] != agent.net.network or doc["num_actions"] != agent.net.num_actions:
        raise CheckpointError(
            f"checkpoint {path} holds a {doc['network']} network with {doc['num_actions']} actions, "
            f"the task wants {agent.net.network} with {agent.net.num_actions}"
        )
    try:
        agent.net.load_state_dict(doc["model"])
        agent.optimizer.load_state_dict(doc["optimizer"])
        agent.counters = Counters(**doc["counters"])
        _set_rng_state(doc["rng"])
    except (KeyError, RuntimeError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} does not fit the agent ({type(exc).__name__})") from None
