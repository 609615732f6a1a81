"""P1: configurable Crafter vs stock ``crafter.Env`` (numba present): steps/s with a random policy, resets
included, measured side by side in one process (the envs take turns in chunks of 50 steps), plus a bit-identity
check.

"configurable" is ``ConfigurableCrafter()`` with stock-identical infos; "trainer" is the env the trainer builds
(the same, without ``info["semantic"]``, which the trainer never reads): the P1 ratio.

Usage: python bench/crafter_speed.py [--steps 4000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import time

import crafter
import numpy as np

from envgen_trainer.crafter_env import ConfigurableCrafter
from envgen_trainer.games import trainer_game


class Runner:
    """One env under a random policy, stepped a chunk at a time; counts its own time and resets."""

    def __init__(self, env: crafter.Env, seed: int) -> None:
        self.env, self.rng = env, np.random.default_rng(seed)
        self.env.reset()
        self.seconds, self.steps, self.resets = 0.0, 0, 0

    def run(self, steps: int) -> None:
        start = time.perf_counter()
        for _ in range(steps):
            _, _, done, _ = self.env.step(int(self.rng.integers(17)))
            if done:
                self.env.reset()
                self.resets += 1
        self.seconds += time.perf_counter() - start
        self.steps += steps

    @property
    def sps(self) -> float:
        return self.steps / self.seconds


def steps_per_second(envs: list[crafter.Env], steps: int, seed: int, chunk: int = 50) -> list[Runner]:
    """Step the envs in alternating chunks, so a busy machine's changing load falls on each alike."""
    runners = [Runner(env, seed) for env in envs]
    for _ in range(max(1, steps // chunk)):
        for runner in runners:
            runner.run(chunk)
    return runners


def identical_resets(seeds: int = 5, episodes: int = 2) -> bool:
    for seed in range(seeds):
        stock, ours = crafter.Env(seed=seed), ConfigurableCrafter(seed=seed)
        for _ in range(episodes):
            if not np.array_equal(stock.reset(), ours.reset()):
                return False
            if not np.array_equal(stock._world._mat_map, ours._world._mat_map):
                return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"identical first observations and worlds (5 seeds x 2 episodes): {identical_resets()}")
    make = trainer_game("crafter").make_env
    stock_sps, ours_sps, trainer_sps = [], [], []
    for r in range(args.rounds):
        runners = steps_per_second([crafter.Env(seed=r), ConfigurableCrafter(seed=r), make(None, r)], args.steps, r)
        (s, s_resets), (o, o_resets), (t, _) = ((x.sps, x.resets) for x in runners)
        stock_sps.append(s)
        ours_sps.append(o)
        trainer_sps.append(t)
        print(
            f"round {r}: stock {s:7.0f} sps ({s_resets} resets)  configurable {o:7.0f} sps ({o_resets} resets)"
            f"  trainer {t:7.0f} sps  ratios {o / s:.2f}x {t / s:.2f}x"
        )
    ratios, trainer_ratios = np.array(ours_sps) / np.array(stock_sps), np.array(trainer_sps) / np.array(stock_sps)
    print(
        f"median: stock {np.median(stock_sps):.0f} sps, configurable {np.median(ours_sps):.0f} sps "
        f"({np.median(ratios):.2f}x), trainer {np.median(trainer_sps):.0f} sps "
        f"(P1 ratio {np.median(trainer_ratios):.2f}x)"
    )


if __name__ == "__main__":
    main()
