"""Several trainers on one machine (the local runner's seeds in parallel): torch threads per trainer.

Each of ``--trainers`` processes runs our PPO on Crafter (the science profile's settings: 8 envs x 512 steps,
3 epochs x 8 minibatches, Nature CNN) for ``--steps`` env steps after a warm-up iteration; the figure is the sum
of their env-steps/s. Rounds alternate ``ENVGEN_TORCH_THREADS=1`` with every core per trainer (the default of a
trainer alone), so both settings see the same machine load.

Usage: python bench/parallel_seeds.py [--trainers 3] [--steps 8192] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from envgen.cores import TORCH_THREADS_ENV, usable_cores
from envgen.spec import AgentSpec
from envgen_trainer.ppo import PPO, PPOArgs
from envgen_trainer.vecenv import EnvSpec, VecEnv

SPEC = {"num_envs": 8, "rollout_steps": 512, "epochs": 3, "minibatches": 8, "device": "cpu"}


def one_trainer(steps: int, seed: int) -> float:
    """Env-steps/s of one trainer (after one warm-up iteration)."""
    spec = AgentSpec(**SPEC)
    agent = PPO(PPOArgs.from_spec(spec), 17)
    with VecEnv([EnvSpec("crafter", seed * 100 + i) for i in range(spec.num_envs)], 2) as vec:
        agent.train(vec, spec.num_envs * spec.rollout_steps, lambda ep: None, lambda s: None)
        start = time.perf_counter()
        done = agent.train(vec, steps, lambda ep: None, lambda s: None)
    return done / (time.perf_counter() - start)


def together(trainers: int, threads: int | None, steps: int) -> float:
    """Sum of env-steps/s of ``trainers`` trainers started at once."""
    env = dict(os.environ)
    if threads is None:
        env.pop(TORCH_THREADS_ENV, None)
    else:
        env[TORCH_THREADS_ENV] = str(threads)
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--one", str(steps), str(seed)], env=env, stdout=subprocess.PIPE, text=True
        )
        for seed in range(trainers)
    ]
    rates = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    return float(sum(rates))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trainers", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8192)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--one", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_trainer(*args.one)))
        return
    cores = usable_cores()
    one: list[float] = []  # ENVGEN_TORCH_THREADS=1
    every: list[float] = []  # a trainer's default: every usable core
    for _ in range(args.rounds):
        one.append(together(args.trainers, 1, args.steps))
        every.append(together(args.trainers, None, args.steps))
    for threads, rates in ((1, one), (cores, every)):
        print(f"{args.trainers} trainers x {threads} torch thread(s): " + ", ".join(f"{r:.0f}" for r in rates))
    print(f"ratio 1 thread / {cores} threads: {sum(one) / sum(every):.2f}x")


if __name__ == "__main__":
    main()
