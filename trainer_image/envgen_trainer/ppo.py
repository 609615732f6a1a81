"""PPO in the style of CleanRL's ``ppo_atari.py``: rollout, GAE, clipped policy/value loss, entropy bonus.

The agent keeps its step counters across tasks (they are checkpointed). On CPU, torch uses one thread while
the env workers run the rollout and all threads for the update.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

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


@dataclass
class Counters:
    """Agent-lifetime counters (continue across tasks)."""

    global_step: int = 0
    iterations: int = 0
    episodes: int = 0


@dataclass
class IterationStats:
    """What one PPO iteration reports."""

    steps: int
    steps_per_second: float
    losses: dict[str, float] = field(default_factory=dict)


class PPO:
    """An actor-critic agent with its optimizer and counters."""

    def __init__(self, spec: AgentSpec, num_actions: int, device: torch.device | None = None) -> None:
        self.spec = spec
        self.device = device or pick_device(spec.device)
        self.net = ActorCritic(spec.network, num_actions).to(self.device)
        self.optimizer = optim.Adam(self.net.parameters(), lr=as_float(spec.learning_rate), eps=1e-5)
        self.counters = Counters()
        self.gamma = as_float(spec.gamma)
        self.gae_lambda = as_float(spec.gae_lambda)
        self.clip = as_float(spec.clip_coef)
        self.ent_coef = as_float(spec.entropy_coef)
        self.vf_coef = as_float(spec.value_coef)
        self.max_grad_norm = as_float(spec.max_grad_norm)
        self._update_threads = torch_threads()

    def _threads(self, n: int) -> None:
        if self.device.type == "cpu":
            torch.set_num_threads(n)

    @torch.no_grad()
    def policy(self, obs: np.ndarray) -> np.ndarray:
        """Sample actions for a batch of frames (one torch thread: the env workers need the cores)."""
        self._threads(1)
        action, _, _, _ = self.net.act(torch.as_tensor(obs, device=self.device))
        return action.cpu().numpy()

    def train(
        self,
        vec: VecEnv,
        steps: int,
        on_episode: Callable[[Episode], None],
        on_iteration: Callable[[IterationStats], None],
    ) -> int:
        """Run PPO for about ``steps`` env steps (whole env batches); returns the steps done."""
        num_envs, horizon = vec.num_envs, self.spec.rollout_steps
        obs_np = vec.reset()
        next_obs = torch.as_tensor(obs_np, device=self.device)
        next_done = torch.zeros(num_envs, device=self.device)
        done_steps = 0
        while done_steps < steps:
            length = min(horizon, -(-(steps - done_steps) // num_envs))
            started = time.perf_counter()
            self._threads(1)
            buf_obs = torch.zeros((length, num_envs, *obs_np.shape[1:]), dtype=torch.uint8, device=self.device)
            buf_act = torch.zeros((length, num_envs), dtype=torch.long, device=self.device)
            buf_logp = torch.zeros((length, num_envs), device=self.device)
            buf_rew = torch.zeros((length, num_envs), device=self.device)
            buf_done = torch.zeros((length, num_envs), device=self.device)
            buf_val = torch.zeros((length, num_envs), device=self.device)
            for t in range(length):
                buf_obs[t], buf_done[t] = next_obs, next_done
                with torch.no_grad():
                    action, logp, _, value = self.net.act(next_obs)
                buf_act[t], buf_logp[t], buf_val[t] = action, logp, value
                obs_np, reward, done, episodes = vec.step(action.cpu().numpy())
                buf_rew[t] = torch.as_tensor(reward, device=self.device)
                next_obs = torch.as_tensor(obs_np, device=self.device)
                next_done = torch.as_tensor(done, dtype=torch.float32, device=self.device)
                for ep in episodes:
                    self.counters.episodes += 1
                    on_episode(ep)
            rollout_s = time.perf_counter() - started
            self._threads(self._update_threads)
            with torch.no_grad():
                next_value = self.net.value(next_obs)
            advantages = self._gae(buf_rew, buf_val, buf_done, next_value, next_done)
            losses = self._update(
                buf_obs.reshape(-1, *obs_np.shape[1:]),
                buf_act.reshape(-1),
                buf_logp.reshape(-1),
                advantages.reshape(-1),
                (advantages + buf_val).reshape(-1),
                buf_val.reshape(-1),
            )
            batch = length * num_envs
            done_steps += batch
            self.counters.global_step += batch
            self.counters.iterations += 1
            elapsed = time.perf_counter() - started
            losses["rollout_seconds"] = rollout_s
            on_iteration(IterationStats(done_steps, batch / max(elapsed, 1e-9), losses))
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
            delta = rewards[t] + self.gamma * nxt * nonterminal - values[t]
            last = delta + self.gamma * self.gae_lambda * nonterminal * last
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
        batch = obs.shape[0]
        stats: dict[str, list[float]] = {"policy_loss": [], "value_loss": [], "entropy": [], "approx_kl": []}
        for _ in range(self.spec.epochs):
            order = torch.randperm(batch, device=self.device)
            for idx in torch.tensor_split(order, min(self.spec.minibatches, batch)):
                _, logp, entropy, value = self.net.act(obs[idx], actions[idx])
                log_ratio = logp - old_logp[idx]
                ratio = log_ratio.exp()
                adv = advantages[idx]
                if adv.numel() > 1:
                    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                pg_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - self.clip, 1 + self.clip)).mean()
                v_loss = 0.5 * (value - returns[idx]) ** 2
                if self.spec.clip_value_loss:
                    clipped = old_values[idx] + (value - old_values[idx]).clamp(-self.clip, self.clip)
                    v_loss = torch.max(v_loss, 0.5 * (clipped - returns[idx]) ** 2)
                v_loss = v_loss.mean()
                ent = entropy.mean()
                loss = pg_loss - self.ent_coef * ent + self.vf_coef * v_loss
                self.optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.net.parameters(), self.max_grad_norm)
                self.optimizer.step()
                with torch.no_grad():
                    stats["approx_kl"].append(float(((ratio - 1) - log_ratio).mean()))
                stats["policy_loss"].append(pg_loss.item())
                stats["value_loss"].append(v_loss.item())
                stats["entropy"].append(ent.item())
        return {k: float(np.mean(v)) for k, v in stats.items()}
