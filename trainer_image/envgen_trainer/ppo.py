"""PPO in the style of CleanRL's ``ppo_atari.py``: rollout, GAE, clipped policy/value loss, entropy bonus.

The settings are :class:`PPOArgs`, under CleanRL's names; :meth:`PPOArgs.from_spec` maps the run spec's ``agent``
onto them. Each update reports what CleanRL logs (``losses/*``). The agent keeps its step counters across tasks
(they are checkpointed). On CPU, torch uses one thread while the env workers run the rollout and all threads for
the update; on CUDA, frames reach the GPU through pinned memory and non-blocking copies. With ``overlap`` a
background thread collects the next rollout, with a copy of the policy from before the update, while the update
runs.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Literal

import numpy as np
import torch
from torch import nn, optim

from envgen.cores import torch_threads
from envgen.models import as_float
from envgen.spec import AgentSpec

from .networks import ActorCritic
from .vecenv import Episode, VecEnv


def pick_device(wanted: str) -> torch.device:
    """``auto`` means CUDA when available."""
    if wanted == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(wanted)


def pinned_copies(device: torch.device) -> bool:
    """Whether host frames reach ``device`` through pinned memory and non-blocking copies: on CUDA only."""
    return device.type == "cuda"


class ToDevice:
    """Host arrays of one shape onto the agent's device. On CUDA through a pinned staging buffer and a
    non-blocking copy (the buffer is rewritten only once that copy has finished); elsewhere a plain conversion."""

    def __init__(self, device: torch.device, shape: tuple[int, ...], dtype: torch.dtype) -> None:
        self.device = device
        self.pinned = pinned_copies(device)
        self._staging = torch.empty(shape, dtype=dtype, pin_memory=True) if self.pinned else None
        self._copied: torch.cuda.Event | None = None

    def __call__(self, array: np.ndarray) -> torch.Tensor:
        if self._staging is None:
            return torch.as_tensor(array, device=self.device)
        if self._copied is not None:
            self._copied.synchronize()
        self._staging.copy_(torch.from_numpy(array))
        moved = self._staging.to(self.device, non_blocking=True)
        self._copied = torch.cuda.Event()
        self._copied.record()
        return moved


@dataclass(frozen=True)
class PPOArgs:
    """The trainer's PPO settings, named as in CleanRL's ``ppo_atari.py`` ``Args`` (plus ``network``, ``device``,
    ``precision``, ``env_groups`` and ``overlap``). Not configurable, as in CleanRL's defaults unless noted: advantages
    normalised per minibatch (``norm_adv``), Adam with eps 1e-5, no ``target_kl``; the learning rate is constant
    (CleanRL anneals it)."""

    network: Literal["nature", "impala"]
    """the policy network: nature (the CNN of Mnih et al.) or impala (the residual CNN of Espeholt et al.)"""
    device: Literal["auto", "cpu", "cuda"]
    """where the agent trains: auto (a GPU when there is one), cpu or cuda"""
    env_groups: int
    """1: every env steps on one action batch; 2: two groups of env workers alternate, one stepping while the
    other's actions are inferred"""
    precision: Literal["float32", "bfloat16"]
    """the forward passes' precision: float32, or bfloat16 autocast (losses, gradients and weights stay float32)"""
    overlap: bool
    """collect the next rollout while the update runs, with the policy from before that update (one update of
    policy lag, bounded by the clipping); off: every rollout uses the newest policy, as in CleanRL"""
    learning_rate: float
    """the learning rate of the optimizer"""
    num_envs: int
    """the number of parallel game environments"""
    num_steps: int
    """the number of steps to run in each environment per policy rollout"""
    update_epochs: int
    """the K epochs to update the policy"""
    num_minibatches: int
    """the number of mini-batches"""
    gamma: float
    """the discount factor gamma"""
    gae_lambda: float
    """the lambda for the general advantage estimation"""
    clip_coef: float
    """the surrogate clipping coefficient"""
    clip_vloss: bool
    """whether to use a clipped loss for the value function, as per the paper (false: stable-baselines3's plain
    squared error)"""
    ent_coef: float
    """coefficient of the entropy"""
    vf_coef: float
    """coefficient of the value function"""
    max_grad_norm: float
    """the maximum norm for the gradient clipping"""

    @classmethod
    def from_spec(cls, spec: AgentSpec) -> PPOArgs:
        """The run spec's ``agent`` (camelCase, decimals as strings) as the trainer's settings: the one mapping
        (README: "PPO settings")."""
        return cls(
            network=spec.network,
            device=spec.device,
            precision=spec.precision,
            env_groups=spec.env_groups,
            overlap=spec.overlap,
            learning_rate=as_float(spec.learning_rate),
            num_envs=spec.num_envs,
            num_steps=spec.rollout_steps,
            update_epochs=spec.epochs,
            num_minibatches=spec.minibatches,
            gamma=as_float(spec.gamma),
            gae_lambda=as_float(spec.gae_lambda),
            clip_coef=as_float(spec.clip_coef),
            clip_vloss=spec.clip_value_loss,
            ent_coef=as_float(spec.entropy_coef),
            vf_coef=as_float(spec.value_coef),
            max_grad_norm=as_float(spec.max_grad_norm),
        )


@dataclass
class Counters:
    """Agent-lifetime counters (continue across tasks)."""

    global_step: int = 0
    iterations: int = 0
    episodes: int = 0


@dataclass
class IterationStats:
    """What one PPO iteration reports (``losses`` also holds ``rollout_seconds``: the time the iteration spent
    collecting its rollout, or with ``overlap`` waiting for the background collection)."""

    steps: int
    steps_per_second: float
    losses: dict[str, float] = field(default_factory=dict)


@dataclass
class _Start:
    """Where a rollout starts (and the previous one ends): each env group's frames and done flags."""

    obs: list[torch.Tensor]
    done: list[torch.Tensor]


@dataclass
class _Rollout:
    """One rollout's buffers (steps x envs), where it ends, and the episodes it finished that were not reported at
    once (those of a background rollout)."""

    obs: torch.Tensor
    actions: torch.Tensor
    logp: torch.Tensor
    rewards: torch.Tensor
    dones: torch.Tensor
    values: torch.Tensor
    end: _Start
    episodes: list[Episode]


class _Background:
    """A rollout collected in a thread (torch releases the GIL in its ops, the env pipes in their waits)."""

    def __init__(self, collect: Callable[[_Background], _Rollout | None]) -> None:
        self.cancel = threading.Event()
        self._rollout: _Rollout | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(collect,), name="ppo-rollout", daemon=True)
        self._thread.start()

    def _run(self, collect: Callable[[_Background], _Rollout | None]) -> None:
        try:
            self._rollout = collect(self)
        except BaseException as exc:  # re-raised by result() in the caller's thread
            self._error = exc

    def result(self) -> _Rollout:
        """Wait for the rollout; raise what the collection raised."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._rollout is not None
        return self._rollout

    def stop(self) -> None:
        """Cancel the collection and wait for the thread (what it raised is dropped: the caller is raising)."""
        self.cancel.set()
        self._thread.join()


class _Collector:
    """Rollouts of a vector env's envs, all in lockstep (every env steps on one action batch) or, with
    ``env_groups`` 2 and two worker groups, as two alternating groups (one group steps while the other's actions
    are inferred; each env's transitions are the same consecutive ones, under the rollout's one policy)."""

    def __init__(
        self,
        vec: VecEnv,
        device: torch.device,
        obs_shape: tuple[int, ...],
        env_groups: int,
        forward: Callable[[], torch.autocast],
    ) -> None:
        self.vec, self.device, self.obs_shape, self._forward = vec, device, obs_shape, forward
        self.grouped = env_groups == 2 and len(vec.groups) == 2
        self.parts = vec.groups if self.grouped else [range(vec.num_envs)]
        self._to_device = [ToDevice(device, (len(envs), *obs_shape), torch.uint8) for envs in self.parts]
        self._actions: np.ndarray | None = None  # lockstep: the batch sent, stepped on receive

    def start(self, obs: np.ndarray) -> _Start:
        """Where the first rollout starts: the frames of ``vec.reset()``, no env done."""
        return _Start(
            [move(obs[envs.start : envs.stop]) for move, envs in zip(self._to_device, self.parts, strict=True)],
            [torch.zeros(len(envs), device=self.device) for envs in self.parts],
        )

    def length(self, steps_left: int, horizon: int) -> int:
        """The next rollout's length: ``horizon`` steps, or the whole env batches that cover ``steps_left``."""
        return min(horizon, -(-steps_left // self.vec.num_envs))

    def collect(
        self,
        net: ActorCritic,
        length: int,
        start: _Start,
        background: _Background | None = None,
        report: Callable[[Episode], None] | None = None,
    ) -> _Rollout | None:
        """``length`` steps of every env with ``net`` from ``start``. Finished episodes go to ``report`` at once,
        or without it into the rollout's ``episodes``; a ``background`` cancel ends the collection after the
        steps under way (None)."""
        num_envs, device = self.vec.num_envs, self.device
        ro = _Rollout(
            obs=torch.zeros((length, num_envs, *self.obs_shape), dtype=torch.uint8, device=device),
            actions=torch.zeros((length, num_envs), dtype=torch.long, device=device),
            logp=torch.zeros((length, num_envs), device=device),
            rewards=torch.zeros((length, num_envs), device=device),
            dones=torch.zeros((length, num_envs), device=device),
            values=torch.zeros((length, num_envs), device=device),
            end=_Start(list(start.obs), list(start.done)),  # each group's latest frames while collecting
            episodes=[],
        )
        finished = report if report is not None else ro.episodes.append
        for t in range(length):
            if background is not None and background.cancel.is_set():
                for group in range(len(self.parts) if t > 0 else 0):
                    self._receive(ro, t - 1, group, finished)
                return None
            for group, envs in enumerate(self.parts):
                if t > 0:
                    self._receive(ro, t - 1, group, finished)
                cols = slice(envs.start, envs.stop)
                ro.obs[t, cols], ro.dones[t, cols] = ro.end.obs[group], ro.end.done[group]
                with torch.no_grad(), self._forward():
                    action, logp, _, value = net.act(ro.end.obs[group])
                ro.actions[t, cols], ro.logp[t, cols], ro.values[t, cols] = action, logp, value
                self._send(group, action.cpu().numpy())
        for group in range(len(self.parts)):
            self._receive(ro, length - 1, group, finished)
        return ro

    def _send(self, group: int, actions: np.ndarray) -> None:
        if self.grouped:
            self.vec.send(group, actions)
        else:
            self._actions = actions

    def _receive(self, ro: _Rollout, t: int, group: int, finished: Callable[[Episode], None]) -> None:
        """Record step ``t`` of a group that ``_send`` started: its rewards, next frames and done flags."""
        envs = self.parts[group]
        if self.grouped:
            obs, reward, done, episodes = self.vec.receive(group)
        else:
            assert self._actions is not None
            obs, reward, done, episodes = self.vec.step(self._actions)
        ro.rewards[t, envs.start : envs.stop] = torch.as_tensor(reward, device=self.device)
        ro.end.obs[group] = self._to_device[group](obs)
        ro.end.done[group] = torch.as_tensor(done, dtype=torch.float32, device=self.device)
        for ep in episodes:
            finished(ep)


class PPO:
    """An actor-critic agent with its optimizer and counters."""

    def __init__(self, args: PPOArgs, num_actions: int, device: torch.device | None = None) -> None:
        self.args = args
        self.device = device or pick_device(args.device)
        self.net = ActorCritic(args.network, num_actions).to(self.device)
        self.optimizer = optim.Adam(self.net.parameters(), lr=args.learning_rate, eps=1e-5)
        self.counters = Counters()
        self._update_threads = torch_threads()

    def _forward(self) -> torch.autocast:
        """The context of the network's forward passes: bfloat16 autocast when the agent asks for it."""
        return torch.autocast(self.device.type, torch.bfloat16, enabled=self.args.precision == "bfloat16")

    def act(
        self, obs: torch.Tensor, action: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The network's ``act`` in the agent's precision (outputs in float32)."""
        with self._forward():
            return self.net.act(obs, action)

    def _threads(self, n: int) -> None:
        if self.device.type == "cpu":
            torch.set_num_threads(n)

    @torch.no_grad()
    def policy(self, obs: np.ndarray) -> np.ndarray:
        """Sample actions for a batch of frames (one torch thread: the env workers need the cores)."""
        self._threads(1)
        action, _, _, _ = self.act(torch.as_tensor(obs, device=self.device))
        return action.cpu().numpy()

    def train(
        self,
        vec: VecEnv,
        steps: int,
        on_episode: Callable[[Episode], None],
        on_iteration: Callable[[IterationStats], None],
    ) -> int:
        """Run PPO for about ``steps`` env steps (whole env batches); returns the steps done.

        With ``overlap``, rollout k+1 is collected in a background thread, by a copy of the policy from before
        update k, while update k runs (none after the last rollout). Its episodes are reported when the main
        thread takes the rollout (a checkpoint in ``on_iteration`` counts no episode whose steps it does not),
        its exceptions are raised there, and no thread outlives the call. Overlapped runs are not
        bit-reproducible: both threads draw from torch's RNG in whichever order they run."""

        def report(ep: Episode) -> None:
            self.counters.episodes += 1
            on_episode(ep)

        frames = vec.reset()
        collector = _Collector(vec, self.device, frames.shape[1:], self.args.env_groups, self._forward)
        start = collector.start(frames)
        done_steps = 0
        pending: _Background | None = None
        try:
            while done_steps < steps:
                length = collector.length(steps - done_steps, self.args.num_steps)
                started = time.perf_counter()
                if pending is None:
                    self._threads(1)
                    ro = collector.collect(self.net, length, start, report=report)
                else:
                    ro, pending = pending.result(), None
                    for ep in ro.episodes:
                        report(ep)
                assert ro is not None and ro.rewards.shape[0] == length
                rollout_s = time.perf_counter() - started
                self._threads(self._update_threads)
                with torch.no_grad(), self._forward():
                    next_value = torch.cat([self.net.value(obs) for obs in ro.end.obs])
                advantages = self._gae(ro.rewards, ro.values, ro.dones, next_value, torch.cat(ro.end.done))
                batch = length * vec.num_envs
                start = ro.end
                if self.args.overlap and done_steps + batch < steps:
                    # the next rollout, with the policy from before this update; torch.set_num_threads is
                    # process-wide, so its inference keeps the update's threads while the two overlap
                    snapshot = copy.deepcopy(self.net).eval().requires_grad_(False)
                    next_length = collector.length(steps - done_steps - batch, self.args.num_steps)
                    pending = _Background(partial(collector.collect, snapshot, next_length, start))
                losses = self._update(
                    ro.obs.reshape(-1, *collector.obs_shape),
                    ro.actions.reshape(-1),
                    ro.logp.reshape(-1),
                    advantages.reshape(-1),
                    (advantages + ro.values).reshape(-1),
                    ro.values.reshape(-1),
                )
                done_steps += batch
                self.counters.global_step += batch
                self.counters.iterations += 1
                elapsed = time.perf_counter() - started
                losses["rollout_seconds"] = rollout_s
                on_iteration(IterationStats(done_steps, batch / max(elapsed, 1e-9), losses))
        finally:
            if pending is not None:
                pending.stop()
        return done_steps

    def _gae(
        self,
        rewards: torch.Tensor,
        values: torch.Tensor,
        dones: torch.Tensor,
        next_value: torch.Tensor,
        next_done: torch.Tensor,
    ) -> torch.Tensor:
        advantages = torch.zeros_like(rewards)
        last = torch.zeros_like(next_value)
        for t in reversed(range(rewards.shape[0])):
            if t == rewards.shape[0] - 1:
                nonterminal, nxt = 1.0 - next_done, next_value
            else:
                nonterminal, nxt = 1.0 - dones[t + 1], values[t + 1]
            delta = rewards[t] + self.args.gamma * nxt * nonterminal - values[t]
            last = delta + self.args.gamma * self.args.gae_lambda * nonterminal * last
            advantages[t] = last
        return advantages

    def _update(
        self,
        obs: torch.Tensor,
        actions: torch.Tensor,
        old_logp: torch.Tensor,
        advantages: torch.Tensor,
        returns: torch.Tensor,
        old_values: torch.Tensor,
    ) -> dict[str, float]:
        """One PPO update on a rollout; returns CleanRL's ``losses/*`` statistics (means over the minibatches):
        policy_loss, value_loss, entropy, old_approx_kl, approx_kl, clipfrac (the share of ratios clipped) and
        explained_variance (of the returns by the rollout's values; absent when the returns do not vary)."""
        args, clip = self.args, self.args.clip_coef
        batch = obs.shape[0]
        names = ("policy_loss", "value_loss", "entropy", "old_approx_kl", "approx_kl", "clipfrac")
        stats: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(args.update_epochs):
            order = torch.randperm(batch, device=self.device)
            for idx in torch.tensor_split(order, min(args.num_minibatches, batch)):
                _, logp, entropy, value = self.act(obs[idx], actions[idx])
                log_ratio = logp - old_logp[idx]
                ratio = log_ratio.exp()
                adv = advantages[idx]
                if adv.numel() > 1:
                    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                pg_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - clip, 1 + clip)).mean()
                v_loss = 0.5 * (value - returns[idx]) ** 2
                if args.clip_vloss:
                    clipped = old_values[idx] + (value - old_values[idx]).clamp(-clip, clip)
                    v_loss = torch.max(v_loss, 0.5 * (clipped - returns[idx]) ** 2)
                v_loss = v_loss.mean()
                ent = entropy.mean()
                loss = pg_loss - args.ent_coef * ent + args.vf_coef * v_loss
                self.optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.net.parameters(), args.max_grad_norm)
                self.optimizer.step()
                with torch.no_grad():
                    stats["old_approx_kl"].append(float((-log_ratio).mean()))
                    stats["approx_kl"].append(float(((ratio - 1) - log_ratio).mean()))
                    stats["clipfrac"].append(float(((ratio - 1).abs() > clip).float().mean()))
                stats["policy_loss"].append(pg_loss.item())
                stats["value_loss"].append(v_loss.item())
                stats["entropy"].append(ent.item())
        result = {k: float(np.mean(v)) for k, v in stats.items()}
        variance = float(returns.var(unbiased=False))
        if variance > 0:
            result["explained_variance"] = 1.0 - float((returns - old_values).var(unbiased=False)) / variance
        return result
