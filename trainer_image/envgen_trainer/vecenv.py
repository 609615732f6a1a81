"""A pipe-based vector env: worker processes each step several envs (possibly of different configs).

Envs reset automatically at the end of an episode; each finished episode is reported as an ``Episode``
(return, length, achievements unlocked). Workers ignore SIGINT and exit when their pipe closes, and
``close()`` (also called by the context manager and on errors) joins or terminates them, so no process is
left behind.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import signal
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from envgen.games import ConfigModel

from .games import trainer_game

Obs = npt.NDArray[np.uint8]
JOIN_TIMEOUT_S = 5.0


class GymLikeEnv(Protocol):
    """The old gym interface Crafter has."""

    def reset(self) -> Obs: ...

    def step(self, action: int) -> tuple[Obs, float, bool, dict[str, Any]]: ...


@dataclass(frozen=True)
class EnvSpec:
    """What a worker needs to build one env: game, seed, a label for the statistics, config, and whether it is the
    unmodified game of evaluation (``stock``)."""

    game: str
    seed: int
    label: str = "game"
    config: ConfigModel | None = None
    stock: bool = False


@dataclass(frozen=True)
class Episode:
    """One finished episode."""

    slot: int
    label: str
    ret: float
    length: int
    achievements: tuple[str, ...]


def make_env(spec: EnvSpec) -> GymLikeEnv:
    """Build the env a spec describes (``stock``: the game's evaluation env, e.g. unmodified ``crafter.Env``)."""
    game = trainer_game(spec.game)
    return (game.make_eval_env if spec.stock else game.make_env)(spec.config, spec.seed)


class _Slot:
    """An env with its running episode statistics."""

    def __init__(self, index: int, spec: EnvSpec) -> None:
        self.index, self.label = index, spec.label
        self.env = make_env(spec)
        self.ret, self.length = 0.0, 0

    def reset(self) -> Obs:
        self.ret, self.length = 0.0, 0
        return np.asarray(self.env.reset())

    def step(self, action: int) -> tuple[Obs, float, bool, Episode | None]:
        obs, reward, done, info = self.env.step(action)
        self.ret += reward
        self.length += 1
        if not done:
            return np.asarray(obs), reward, False, None
        unlocked = tuple(sorted(k for k, v in info.get("achievements", {}).items() if v > 0))
        episode = Episode(self.index, self.label, self.ret, self.length, unlocked)
        return self.reset(), reward, True, episode


def _worker(conn: Connection, specs: list[tuple[int, EnvSpec]]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        slots = [_Slot(i, s) for i, s in specs]
        conn.send(("ok", None))
        while True:
            cmd, data = conn.recv()
            if cmd == "reset":
                conn.send(("ok", np.stack([s.reset() for s in slots])))
            elif cmd == "step":
                results = [s.step(int(a)) for s, a in zip(slots, data, strict=True)]
                conn.send(
                    (
                        "ok",
                        (
                            np.stack([r[0] for r in results]),
                            np.array([r[1] for r in results], np.float32),
                            np.array([r[2] for r in results], bool),
                            [r[3] for r in results if r[3] is not None],
                        ),
                    )
                )
            else:
                break
    except (EOFError, KeyboardInterrupt, BrokenPipeError):
        return
    except Exception as exc:
        with contextlib.suppress(BrokenPipeError, OSError):
            conn.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
    finally:
        conn.close()


class VecEnvError(RuntimeError):
    """An env raised inside a worker."""


class VecEnv:
    """``len(specs)`` envs spread over ``num_workers`` processes (envs in contiguous blocks)."""

    def __init__(self, specs: Sequence[EnvSpec], num_workers: int = 2) -> None:
        self.num_envs = len(specs)
        num_workers = max(1, min(num_workers, self.num_envs))
        blocks = np.array_split(np.arange(self.num_envs), num_workers)
        self._sizes = [len(b) for b in blocks]
        ctx = mp.get_context("spawn")
        self._conns: list[Connection] = []
        self._procs: list[Any] = []
        try:
            for block in blocks:
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=_worker, args=(child, [(int(i), specs[i]) for i in block]), daemon=True)
                proc.start()
                child.close()
                self._conns.append(parent)
                self._procs.append(proc)
            for conn in self._conns:
                self._receive(conn)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _receive(conn: Connection) -> Any:
        try:
            status, payload = conn.recv()
        except EOFError:
            raise VecEnvError("an env worker exited unexpectedly") from None
        if status == "error":
            raise VecEnvError(payload)
        return payload

    def reset(self) -> Obs:
        """Reset every env; observations stacked as (N, H, W, C)."""
        for conn in self._conns:
            conn.send(("reset", None))
        return np.concatenate([self._receive(c) for c in self._conns])

    def step(
        self, actions: npt.NDArray[np.integer]
    ) -> tuple[Obs, npt.NDArray[np.float32], npt.NDArray[np.bool_], list[Episode]]:
        """Step every env; finished envs are already reset. Returns obs, rewards, dones, finished episodes."""
        start = 0
        for conn, block in zip(self._conns, self._sizes, strict=True):
            conn.send(("step", actions[start : start + block].tolist()))
            start += block
        parts = [self._receive(c) for c in self._conns]
        episodes = [ep for p in parts for ep in p[3]]
        return (
            np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]),
            episodes,
        )

    def close(self) -> None:
        """Stop the workers (terminating any that do not exit in time)."""
        for conn in self._conns:
            with contextlib.suppress(BrokenPipeError, OSError):
                conn.send(("close", None))
        for proc in self._procs:
            proc.join(JOIN_TIMEOUT_S)
            if proc.is_alive():
                proc.terminate()
                proc.join(JOIN_TIMEOUT_S)
        for conn in self._conns:
            conn.close()
        self._conns, self._procs = [], []

    def __enter__(self) -> VecEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
