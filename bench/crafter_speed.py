"""P1: configurable Crafter vs stock ``crafter.Env`` (numba present): steps/s with a random policy, resets
included, measured side by side in one process (alternating rounds), plus a bit-identity check.

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


def steps_per_second(env: crafter.Env, steps: int, seed: int) -> tuple[float, int]:
    rng = np.random.default_rng(seed)
    env.reset()
    resets = 0
    start = time.perf_counter()
    for _ in range(steps):
        _, _, done, _ = env.step(int(rng.integers(17)))
        if done:
            env.reset()
            resets += 1
    return steps / (time.perf_counter() - start), resets


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
        s, s_resets = steps_per_second(crafter.Env(seed=r), args.steps, r)
        o, o_resets = steps_per_second(ConfigurableCrafter(seed=r), args.steps, r)
        t, _ = steps_per_second(make(None, r), args.steps, r)
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
