"""Agent checkpoints: weights, optimizer, counters and RNG states, written atomically."""

from __future__ import annotations

import os
import random
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from envgen.atomic import atomic_file

from .ppo import PPO, Counters

FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, unreadable or does not fit the agent."""


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


def save(agent: PPO, path: str | os.PathLike[str]) -> None:
    """Write the agent to ``path`` atomically (temp file in the same directory, fsync, rename)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "version": FORMAT_VERSION,
        "network": agent.net.network,
        "num_actions": agent.net.num_actions,
        "model": agent.net.state_dict(),
        "optimizer": agent.optimizer.state_dict(),
        "counters": asdict(agent.counters),
        "rng": _rng_state(),
    }
    with atomic_file(target) as fh:
        torch.save(doc, fh)


def load(agent: PPO, path: str | os.PathLike[str]) -> None:
    """Restore weights, optimizer, counters and RNG states into ``agent``; raise CheckpointError if unusable."""
    try:
        doc = torch.load(path, map_location=agent.device, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist") from None
    except Exception as exc:
        raise CheckpointError(f"checkpoint {path} is unreadable ({type(exc).__name__})") from None
    if not isinstance(doc, dict) or doc.get("version") != FORMAT_VERSION:
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
