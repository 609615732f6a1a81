"""PPO end-to-end env-steps/s on Crafter for a network and device: the numbers for a GPU machine.

Runs the trainer's PPO and pipe vector env (configurable Crafter at its default, stock-identical config) for
``--steps`` after one warm-up iteration, and prints one JSON line with steps/s and the parameter count.

Usage: python bench/gpu_speed.py --network impala --device cuda --envs 64 --workers 16 --steps 65536
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from envgen.spec import AgentSpec
from envgen_trainer.ppo import PPO, PPOArgs
from envgen_trainer.vecenv import EnvSpec, VecEnv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--network", choices=["nature", "impala"], default="impala")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda")
    parser.add_argument("--envs", type=int, default=64)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--rollout", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--minibatches", type=int, default=8)
    parser.add_argument("--steps", type=int, default=65536)
    args = parser.parse_args()
    spec = AgentSpec(
        network=args.network,
        num_envs=args.envs,
        rollout_steps=args.rollout,
        epochs=args.epochs,
        minibatches=args.minibatches,
        device=args.device,
    )
    agent = PPO(PPOArgs.from_spec(spec), 17)
    params = sum(p.numel() for p in agent.net.parameters())
    with VecEnv([EnvSpec("crafter", i) for i in range(args.envs)], args.workers) as vec:
        agent.train(vec, args.envs * args.rollout, lambda ep: None, lambda s: None)  # warm-up iteration
        start = time.perf_counter()
        done = agent.train(vec, args.steps, lambda ep: None, lambda s: None)
        seconds = time.perf_counter() - start
    device = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    print(json.dumps({**vars(args), "params": params, "steps_per_second": round(done / seconds, 1), "on": device}))


if __name__ == "__main__":
    main()
