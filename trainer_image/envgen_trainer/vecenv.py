"""A shared-memory vector env: worker processes each step several envs (possibly of different configs).

Workers write observations, rewards, dones and the statistics of finished episodes in place into preallocated
shared memory (two alternating frame buffers, so the frames a step returns stay valid while the next step runs);
nothing is pickled. Commands travel through shared memory and semaphores with one wake-up each way per batch:
the caller wakes the first worker of a command, each woken worker wakes two more (a binary tree) before it steps,
and the last worker to finish wakes the caller (a pipe round trip per worker and step cost the caller an OS
wake-up per worker). ``step`` steps every env; ``send`` and ``receive`` step one of two worker groups on its own
(one group steps while the caller infers the other's actions). Envs reset automatically at the end of an
episode; each finished episode is reported as an ``Episode`` (return, length, achievements unlocked).

Envs that can prepare their next episode (``follow``, e.g. ``ConfigurableCrafter``) keep a spare instance of the
same spec that generates the next world while the worker would otherwise wait for actions, so resets are off
the critical path; the episodes are the same as with a plain reset.

Each worker keeps a pipe to the caller for its start and its errors. Workers ignore SIGINT and exit on
``close()`` or, within ``IDLE_POLL_S``, once their pipe closes (the caller is gone); ``close()`` (also called by
the context manager and on errors) joins or terminates them, so no process is left behind.
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

from envgen.games import ConfigModel, game

from .games import trainer_game

Obs = npt.NDArray[np.uint8]
JOIN_TIMEOUT_S = 5.0
IDLE_POLL_S = 1.0
_OK, _ERROR, _STEP, _RESET = 0, 1, 2, 3


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
    game_ = trainer_game(spec.game)
    return (game_.make_eval_env if spec.stock else game_.make_env)(spec.config, spec.seed)


class _Buffers:
    """The shared arrays of one vector env (``RawArray``s, so they travel to spawned workers) and numpy views.

    Per env and frame buffer (2): frame, reward, done, and for a finished episode its return, length and one byte
    per skill (unlocked or not). Per env: the action of the next step."""

    def __init__(self, ctx: Any, num_envs: int, obs_shape: tuple[int, ...], num_skills: int) -> None:
        self.shape = (num_envs, obs_shape, num_skills)
        self.raw = {
            "obs": ctx.RawArray("B", 2 * num_envs * int(np.prod(obs_shape))),
            "reward": ctx.RawArray("f", 2 * num_envs),
            "done": ctx.RawArray("B", 2 * num_envs),
            "ep_ret": ctx.RawArray("d", 2 * num_envs),
            "ep_len": ctx.RawArray("q", 2 * num_envs),
            "ep_skills": ctx.RawArray("B", 2 * num_envs * max(num_skills, 1)),
            "actions": ctx.RawArray("q", num_envs),
        }
        self._views()

    def _views(self) -> None:
        n, obs_shape, skills = self.shape
        raw = self.raw
        self.obs = np.frombuffer(raw["obs"], np.uint8).reshape(2, n, *obs_shape)
        self.reward = np.frombuffer(raw["reward"], np.float32).reshape(2, n)
        self.done = np.frombuffer(raw["done"], np.bool_).reshape(2, n)
        self.ep_ret = np.frombuffer(raw["ep_ret"], np.float64).reshape(2, n)
        self.ep_len = np.frombuffer(raw["ep_len"], np.int64).reshape(2, n)
        self.ep_skills = np.frombuffer(raw["ep_skills"], np.bool_).reshape(2, n, max(skills, 1))
        self.actions = np.frombuffer(raw["actions"], np.int64)

    def __getstate__(self) -> dict[str, Any]:
        return {"shape": self.shape, "raw": self.raw}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.shape, self.raw = state["shape"], state["raw"]
        self._views()


class _Slot:
    """An env with its running episode statistics (and a spare env preparing the next episode, if it can)."""

    def __init__(self, index: int, spec: EnvSpec, buffers: _Buffers) -> None:
        self.index, self.buffers = index, buffers
        self.skills = {name: i for i, name in enumerate(game(spec.game).skills)}
        self.env = make_env(spec)
        self.spare = make_env(spec) if callable(getattr(self.env, "follow", None)) else None
        self.spare_obs: Obs | None = None
        self.ret, self.length = 0.0, 0

    def reset(self, buf: int) -> None:
        """Start the next episode and write its first frame into frame buffer ``buf``."""
        self.ret, self.length = 0.0, 0
        if self.spare is not None and self.spare_obs is not None:
            self.env, self.spare = self.spare, self.env
            obs, self.spare_obs = self.spare_obs, None
        else:
            obs = self.env.reset()
        self.buffers.obs[buf, self.index] = obs

    @property
    def unprepared(self) -> bool:
        return self.spare is not None and self.spare_obs is None

    def prepare(self) -> None:
        """Generate the episode after the current one in the spare env (while the worker would wait)."""
        assert self.spare is not None
        self.spare.follow(self.env)  # type: ignore[attr-defined]
        self.spare_obs = self.spare.reset()

    def step(self, buf: int) -> None:
        """Step with this env's action; write frame, reward, done (and a finished episode) into ``buf``."""
        b, i = self.buffers, self.index
        obs, reward, done, info = self.env.step(int(b.actions[i]))
        self.ret += reward
        self.length += 1
        b.reward[buf, i], b.done[buf, i] = reward, done
        if not done:
            b.obs[buf, i] = obs
            return
        b.ep_ret[buf, i], b.ep_len[buf, i] = self.ret, self.length
        b.ep_skills[buf, i] = False
        for name, count in info.get("achievements", {}).items():
            if count > 0:
                b.ep_skills[buf, i, self.skills[name]] = True
        self.reset(buf)


class _Commands:
    """How the caller commands the workers: shared arrays and semaphores (they travel to spawned workers).

    A command runs on a contiguous range of workers as one of two records (record 0: every worker, or the first
    worker group; record 1: the second group). Per record: its workers ``lo``-``hi``, the command, the frame
    buffer to write, how many of its workers have yet to finish (under a lock) and a semaphore the last one
    releases. Per worker: a semaphore that wakes it, its ticket (the command's number and record; a new ticket
    tells a worker preparing worlds to stop) and whether it failed; and whether the caller is closing."""

    LO, HI, CMD, BUF, REMAINING = range(5)

    def __init__(self, ctx: Any, num_workers: int) -> None:
        self.go = [ctx.Semaphore(0) for _ in range(num_workers)]
        self.done = [ctx.Semaphore(0) for _ in range(2)]
        self.locks = [ctx.Lock() for _ in range(2)]
        self.raw = {"records": ctx.RawArray("q", 2 * 5), "workers": ctx.RawArray("q", 2 * num_workers + 2)}
        self._views()

    def _views(self) -> None:
        self.records = np.frombuffer(self.raw["records"], np.int64).reshape(2, 5)
        workers = np.frombuffer(self.raw["workers"], np.int64)
        self.ticket, self.failed = workers[:-2].reshape(2, -1)
        self.closing, self.any_failed = workers[-2:-1], workers[-1:]

    def __getstate__(self) -> dict[str, Any]:
        return {"go": self.go, "done": self.done, "locks": self.locks, "raw": self.raw}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._views()

    def start(self, ticket: int, cmd: int, buf: int, workers: range) -> None:
        """Give ``workers`` a command (``ticket``: a new number times 2 plus the record) and wake the first."""
        lo, hi = workers.start, workers.stop
        self.records[ticket & 1] = (lo, hi, cmd, buf, hi - lo)
        self.ticket[lo:hi] = ticket
        self.go[lo].release()

    def wake_next(self, worker: int, record: int) -> None:
        """Wake the (up to two) workers after ``worker`` in its record's binary tree."""
        lo, hi = int(self.records[record, self.LO]), int(self.records[record, self.HI])
        for child in (lo + 2 * (worker - lo) + 1, lo + 2 * (worker - lo) + 2):
            if child < hi:
                self.go[child].release()

    def finish(self, record: int) -> None:
        """A worker is done with ``record``'s command; the last one wakes the caller."""
        with self.locks[record]:
            self.records[record, self.REMAINING] -= 1
            last = self.records[record, self.REMAINING] == 0
        if last:
            self.done[record].release()

    def fail(self, worker: int) -> None:
        """Mark ``worker`` failed (its message follows on its pipe)."""
        self.failed[worker] = self.any_failed[0] = 1


def _worker(conn: Connection, index: int, specs: list[tuple[int, EnvSpec]], buffers: _Buffers, c: _Commands) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    active: int | None = None  # the record whose command this worker runs
    try:
        slots = [_Slot(i, s, buffers) for i, s in specs]
        conn.send_bytes(bytes((_OK,)))
        while True:
            if not c.go[index].acquire(timeout=IDLE_POLL_S):
                if conn.poll():  # the caller closed its end (EOFError) or is gone
                    conn.recv_bytes()
                continue
            if c.closing[0]:
                break
            ticket = int(c.ticket[index])
            active = ticket & 1
            c.wake_next(index, active)
            cmd, buf = int(c.records[active, c.CMD]), int(c.records[active, c.BUF])
            for slot in slots:
                if cmd == _STEP:
                    slot.step(buf)
                else:
                    slot.reset(buf)
            c.finish(active)
            active = None
            for slot in slots:  # next worlds, until the next command arrives
                if c.ticket[index] != ticket or c.closing[0]:
                    break
                if slot.unprepared:
                    slot.prepare()
    except (EOFError, KeyboardInterrupt, BrokenPipeError):
        return
    except Exception as exc:
        c.fail(index)
        with contextlib.suppress(BrokenPipeError, OSError):
            message = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
            conn.send_bytes(bytes((_ERROR,)) + message.encode())
        if active is not None:  # a failed command still finishes, so the caller hears at once
            c.finish(active)
    finally:
        conn.close()


class VecEnvError(RuntimeError):
    """An env raised inside a worker."""


class VecEnv:
    """``len(specs)`` envs spread over ``num_workers`` processes (envs in contiguous blocks).

    ``reset`` and ``step`` return frames as a view of shared memory that stays valid until the step after the
    next one (copy them to keep them longer); rewards and dones are copies."""

    def __init__(self, specs: Sequence[EnvSpec], num_workers: int = 2) -> None:
        self.num_envs = len(specs)
        num_workers = max(1, min(num_workers, self.num_envs))
        blocks = np.array_split(np.arange(self.num_envs), num_workers)
        games = {s.game for s in specs}
        if len(games) != 1:
            raise ValueError(f"a VecEnv runs one game, got {sorted(games)}")
        game_name = games.pop()
        self._skills = game(game_name).skills
        self._labels = [s.label for s in specs]
        ctx = mp.get_context("spawn")
        self._buffers = _Buffers(ctx, self.num_envs, trainer_game(game_name).obs_shape, len(self._skills))
        self._commands = _Commands(ctx, num_workers)
        self._ranges = [range(int(block[0]), int(block[-1]) + 1) for block in blocks]
        half = (num_workers + 1) // 2
        self._group_workers = [range(half), range(half, num_workers)] if num_workers > 1 else [range(1)]
        self.groups = [range(self._ranges[w[0]].start, self._ranges[w[-1]].stop) for w in self._group_workers]
        """The envs of each worker group ``send``/``receive`` step on their own: the first and the second half
        of the workers (one group with one worker)."""
        self._in_flight: list[range | None] = [None, None]  # per record: the workers of its running command
        self._bufs = [0] * num_workers  # each worker's current frame buffer
        b = self._buffers
        self._views = {  # per frame buffer and batch (all envs or a group): views of its frames, rewards, dones
            (buf, envs): (b.obs[buf, part], b.reward[buf, part], b.done[buf, part])
            for buf in (0, 1)
            for envs in [range(self.num_envs), *self.groups]
            for part in [slice(envs.start, envs.stop)]
        }
        self._tickets = 0
        self._conns: list[Connection] = []
        self._procs: list[Any] = []
        try:
            for w, block in enumerate(blocks):
                parent, child = ctx.Pipe()
                args = (child, w, [(int(i), specs[i]) for i in block], self._buffers, self._commands)
                proc = ctx.Process(target=_worker, args=args, daemon=True)
                proc.start()
                child.close()
                self._conns.append(parent)
                self._procs.append(proc)
            for conn in self._conns:
                self._answer(conn)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _answer(conn: Connection) -> None:
        """Read a worker's message on its pipe: its start, or its error (raised)."""
        try:
            answer = conn.recv_bytes()
        except EOFError:
            raise VecEnvError("an env worker exited unexpectedly") from None
        if answer[0] == _ERROR:
            raise VecEnvError(answer[1:].decode())

    def _start(self, cmd: int, record: int, workers: range) -> None:
        """Start a command on ``workers`` as ``record``; none of them may still run one."""
        if any(r is not None and r.start < workers.stop and workers.start < r.stop for r in self._in_flight):
            raise RuntimeError("a worker group is still stepping: receive it first")
        self._in_flight[record] = workers
        buf = self._bufs[workers.start] ^ 1
        self._bufs[workers.start : workers.stop] = [buf] * len(workers)
        self._tickets += 1
        self._commands.start(2 * self._tickets + record, cmd, buf, workers)

    def _wait(self, record: int) -> int:
        """Wait until every worker of ``record``'s command has finished; returns their frame buffer."""
        workers, c = self._in_flight[record], self._commands
        if workers is None:
            raise RuntimeError("nothing was sent to this worker group")
        lost = False
        while not c.done[record].acquire(timeout=IDLE_POLL_S):
            lost = not all(self._procs[w].is_alive() for w in workers)
            if lost:
                break
        self._in_flight[record] = None
        if lost or c.any_failed[0]:
            for w in workers:
                if c.failed[w] or not self._procs[w].is_alive():
                    self._answer(self._conns[w])
                    raise VecEnvError("an env worker exited unexpectedly")
        return self._bufs[workers.start]

    def reset(self) -> Obs:
        """Reset every env; observations stacked as (N, H, W, C)."""
        self._bufs = [self._bufs[0]] * len(self._bufs)
        self._start(_RESET, 0, range(len(self._procs)))
        return self._buffers.obs[self._wait(0)]

    def step(
        self, actions: npt.NDArray[np.integer]
    ) -> tuple[Obs, npt.NDArray[np.float32], npt.NDArray[np.bool_], list[Episode]]:
        """Step every env; finished envs are already reset. Returns obs, rewards, dones, finished episodes."""
        if self._bufs[0] != self._bufs[-1]:
            raise RuntimeError("the worker groups were stepped unevenly: receive each group as often first")
        self._buffers.actions[:] = actions
        self._start(_STEP, 0, range(len(self._procs)))
        return self._results(range(self.num_envs), self._wait(0))

    def send(self, group: int, actions: npt.NDArray[np.integer]) -> None:
        """Start stepping the envs of ``groups[group]`` with ``actions`` (one per env of the group)."""
        envs = self.groups[group]
        self._buffers.actions[envs.start : envs.stop] = actions
        self._start(_STEP, group, self._group_workers[group])

    def receive(self, group: int) -> tuple[Obs, npt.NDArray[np.float32], npt.NDArray[np.bool_], list[Episode]]:
        """Wait for the step ``send`` started on a group; returns what ``step`` does, for the group's envs (the
        episodes' slots count all envs)."""
        return self._results(self.groups[group], self._wait(group))

    def _results(
        self, envs: range, buf: int
    ) -> tuple[Obs, npt.NDArray[np.float32], npt.NDArray[np.bool_], list[Episode]]:
        b, lo = self._buffers, envs.start
        frames, rewards, dones = self._views[buf, envs]
        dones = dones.copy()
        episodes = [
            Episode(
                i,
                self._labels[i],
                float(b.ep_ret[buf, i]),
                int(b.ep_len[buf, i]),
                tuple(sorted(self._skills[k] for k in np.flatnonzero(b.ep_skills[buf, i]))),
            )
            for i in ((lo + np.flatnonzero(dones)).tolist() if 1 in dones.tobytes() else [])  # (the cheapest "any")
        ]
        return frames, rewards.copy(), dones, episodes

    def close(self) -> None:
        """Stop the workers (terminating any that do not exit in time)."""
        self._commands.closing[0] = 1
        for go in self._commands.go[: len(self._procs)]:
            go.release()
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
