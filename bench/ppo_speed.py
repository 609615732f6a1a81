"""P2: PPO end-to-end env-steps/s, this trainer vs stable-baselines3 ``PPO("CnnPolicy")`` on Crafter.

Same env count, rollout length, epochs, minibatch count and network size (Nature CNN) for both. SB3 runs stock
``crafter.Env`` in a SubprocVecEnv (what EnvGen used); the trainer runs its pipe vector env with the
configurable Crafter at its default (stock-identical) config, and, for reference, with stock ``crafter.Env``.

Usage: python bench/ppo_speed.py [--steps 8192] [--envs 8] [--rollout 128] [--epochs 3] [--minibatches 4]
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np
import torch

from envgen.spec import AgentSpec
from envgen_trainer.ppo import PPO, PPOArgs
from envgen_trainer.vecenv import EnvSpec, VecEnv


def ours(stock: bool, args: argparse.Namespace) -> float:
    spec = AgentSpec(
        num_envs=args.envs, rollout_steps=args.rollout, epochs=args.epochs, minibatches=args.minibatches, device="cpu"
    )
    agent = PPO(PPOArgs.from_spec(spec), 17)
    with VecEnv([EnvSpec("crafter", i, stock=stock) for i in range(args.envs)], min(2, os.cpu_count() or 1)) as vec:
        agent.train(vec, args.envs * args.rollout, lambda ep: None, lambda s: None)  # warm-up iteration
        start = time.perf_counter()
        done = agent.train(vec, args.steps, lambda ep: None, lambda s: None)
    return done / (time.perf_counter() - start)


def _crafter_gymnasium() -> Any:
    import crafter
    import gymnasium as gym

    class CrafterGymnasium(gym.Env):  # type: ignore[misc]
        """Old-gym crafter.Env behind the gymnasium API (terminated = death, truncated = time limit)."""

        def __init__(self, seed: int) -> None:
            self.env = crafter.Env(seed=seed)
            self.observation_space = gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
            self.action_space = gym.spaces.Discrete(17)

        def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[np.ndarray, dict[str, Any]]:
            return self.env.reset(), {}

        def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
            obs, reward, done, info = self.env.step(int(action))
            terminated = info["discount"] == 0
            return obs, reward, terminated, done and not terminated, {}

    return CrafterGymnasium


def sb3(args: argparse.Namespace) -> float:
    from stable_baselines3 import PPO as SB3PPO
    from stable_baselines3.common.vec_env import SubprocVecEnv

    env_cls = _crafter_gymnasium()
    vec = SubprocVecEnv([lambda i=i: env_cls(i) for i in range(args.envs)], start_method="spawn")
    batch = args.envs * args.rollout
    model = SB3PPO(
        "CnnPolicy",
        vec,
        n_steps=args.rollout,
        batch_size=batch // args.minibatches,
        n_epochs=args.epochs,
        learning_rate=3e-4,
        gamma=0.95,
        gae_lambda=0.65,
        ent_coef=0.01,
        device="cpu",
        verbose=0,
    )
    model.learn(batch)  # warm-up iteration
    start = time.perf_counter()
    model.learn(args.steps, reset_num_timesteps=False)
    elapsed = time.perf_counter() - start
    vec.close()
    return args.steps / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=8192)
    parser.add_argument("--envs", type=int, default=8)
    parser.add_argument("--rollout", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--minibatches", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    results = {
        "sb3 (stock crafter.Env)": sb3(args),
        "ours (configurable Crafter)": ours(False, args),
        "ours (stock crafter.Env)": ours(True, args),
    }
    base = results["sb3 (stock crafter.Env)"]
    for name, sps in results.items():
        print(f"{name:30s} {sps:7.0f} env-steps/s  {sps / base:.2f}x")


if __name__ == "__main__":
    main()
