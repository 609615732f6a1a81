"""The trainer's loop on this machine, per env-step: env, pipeline, inference and update, and end to end.

- env: the trainer's Crafter env stepped in one process (random actions, resets included);
- pipeline: what the vector env adds, 1 worker x N envs stepping random actions, minus env;
- stepping: the vector env with ``--workers`` workers (random actions, no inference), wall time per env-step,
  and main_cpu: the main process's CPU time per env-step meanwhile (the pipeline's share in the learner's
  process; CPU time, so the least disturbed by a busy machine);
- inference: the policy on a batch of N frames as the rollout runs it (frames to the device, actions back; one
  torch thread on CPU);
- update: PPO's update, from ``PPO.train`` (iteration time minus its ``rollout_seconds``), and the end-to-end
  env-steps/s of that training (``sps``; ``params``: the network's parameter count).

``--against DIR`` measures another checkout too (e.g. a ``git worktree`` of the previous commit), in
alternating subprocesses of this script with that checkout's packages first on the path, and prints both side
by side with the ratios: compare those, not absolute numbers, on a busy machine.

Usage: python bench/pipeline_speed.py [--envs 8] [--workers 2] [--steps 2048] [--rounds 2] [--against DIR]
       [--network nature|impala] [--device cpu|cuda] [--rollout 128] [--epochs 3] [--minibatches 4]
       [--precision float32|bfloat16] [--env-groups 1|2] [--overlap]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def _env_us(steps: int) -> float:
    from envgen_trainer.games import trainer_game

    env = trainer_game("crafter").make_env(None, 0)
    rng = np.random.default_rng(0)
    env.reset()
    start = time.perf_counter()
    for _ in range(steps):
        if env.step(int(rng.integers(17)))[2]:
            env.reset()
    return (time.perf_counter() - start) / steps * 1e6


def _vec_us(envs: int, workers: int, steps: int) -> tuple[float, float]:
    from envgen_trainer.vecenv import EnvSpec, VecEnv

    rng = np.random.default_rng(0)
    with VecEnv([EnvSpec("crafter", i) for i in range(envs)], workers) as vec:
        vec.reset()
        for _ in range(10):
            vec.step(rng.integers(17, size=envs))
        batches = max(1, steps // envs)
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(batches):
            vec.step(rng.integers(17, size=envs))
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        return wall / (batches * envs) * 1e6, cpu / (batches * envs) * 1e6


def _agent(args: argparse.Namespace) -> Any:
    from envgen.spec import AgentSpec
    from envgen_trainer import ppo

    spec = AgentSpec(
        network=args.network,
        num_envs=args.envs,
        rollout_steps=args.rollout,
        epochs=args.epochs,
        minibatches=args.minibatches,
        device=args.device,
        **{k: v for k, v in _OPTIONS.items() if getattr(args, k) != v},
    )
    ppo_args = getattr(ppo, "PPOArgs", None)  # the PPO settings of newer checkouts; older ones take the spec
    settings: Any = ppo_args.from_spec(spec) if ppo_args is not None else spec
    return ppo.PPO(settings, 17)


def _inference_us(args: argparse.Namespace) -> float:
    import torch

    agent = _agent(args)
    frames = np.random.default_rng(0).integers(0, 256, (args.envs, 64, 64, 3), dtype=np.uint8)
    torch.set_num_threads(1)
    batches = max(1, args.steps // args.envs)
    with torch.no_grad():
        agent.net.act(torch.as_tensor(frames, device=agent.device))
        start = time.perf_counter()
        for _ in range(batches):
            action, _, _, _ = agent.net.act(torch.as_tensor(frames, device=agent.device))
            action.cpu().numpy()
    return (time.perf_counter() - start) / (batches * args.envs) * 1e6


def _train(args: argparse.Namespace) -> dict[str, float]:
    from envgen_trainer.vecenv import EnvSpec, VecEnv

    agent = _agent(args)
    iterations: list[Any] = []
    with VecEnv([EnvSpec("crafter", i) for i in range(args.envs)], args.workers) as vec:
        agent.train(vec, args.envs * args.rollout, lambda ep: None, lambda s: None)  # warm-up iteration
        start = time.perf_counter()
        done = agent.train(vec, args.steps, lambda ep: None, iterations.append)
        wall = time.perf_counter() - start
    rollout = sum(s.losses["rollout_seconds"] for s in iterations)
    params = sum(p.numel() for p in agent.net.parameters())
    return {
        "rollout_us": rollout / done * 1e6,
        "update_us": (wall - rollout) / done * 1e6,
        "sps": done / wall,
        "params": params,
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """One round of every measurement in this process."""
    env = _env_us(args.steps // 2)
    one_worker, _ = _vec_us(args.envs, 1, args.steps // 2)
    stepping, main_cpu = _vec_us(args.envs, args.workers, args.steps)
    result: dict[str, Any] = {"env_us": env, "pipeline_us": one_worker - env, "main_cpu_us": main_cpu}
    result["stepping_us"] = stepping
    if not args.skip_train:
        result |= {"inference_us": _inference_us(args), **_train(args)}
    import envgen_trainer

    result["tree"] = str(Path(envgen_trainer.__file__).parents[2])
    return result


# Agent options with their defaults: only a changed one reaches the spec (older checkouts lack the newer ones).
_OPTIONS: dict[str, Any] = {"precision": "float32", "env_groups": 1, "overlap": False}
# forwarded as --name=value (flags spell "_" as "-"); --overlap and --skip-train are switches
_FORWARDED = ("envs", "workers", "rollout", "steps", "network", "device", "epochs", "minibatches")
_FORWARDED += ("precision", "env_groups")


def _subprocess(args: argparse.Namespace, tree: Path | None) -> dict[str, Any]:
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(tree / "trainer_image"), str(tree / "operator")])
    cmd = [
        sys.executable,
        __file__,
        "--json",
        *(f"--{k.replace('_', '-')}={getattr(args, k)}" for k in _FORWARDED),
    ]
    cmd += ["--skip-train"] if args.skip_train else []
    cmd += ["--overlap"] if args.overlap else []
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rollout", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--minibatches", type=int, default=4)
    parser.add_argument("--network", choices=["nature", "impala"], default="nature")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--precision", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--env-groups", type=int, choices=[1, 2], default=1)
    parser.add_argument("--overlap", action="store_true", help="collect the next rollout during the update")
    parser.add_argument("--steps", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--against", type=Path, help="another checkout to measure side by side")
    parser.add_argument("--json", action="store_true", help="one round in this process, one JSON line")
    parser.add_argument("--skip-train", action="store_true", help="env and pipeline only (no inference, update)")
    args = parser.parse_args()
    if args.json:
        print(json.dumps(measure(args)))
        return
    trees: dict[str, Path | None] = {"this": None}
    if args.against is not None:
        trees["against"] = args.against.resolve()
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
    for r in range(args.rounds):
        for name, tree in trees.items():
            rounds[name].append(_subprocess(args, tree))
            print(f"round {r} {name}: {json.dumps(rounds[name][-1])}", flush=True)
    keys = ["env_us", "pipeline_us", "main_cpu_us", "stepping_us", "inference_us", "rollout_us", "update_us", "sps"]
    keys += ["params"]
    keys = [k for k in keys if k in rounds["this"][0]]
    median = {name: {k: statistics.median(r[k] for r in rs) for k in keys} for name, rs in rounds.items()}
    print("\nmedians per env-step (us), end-to-end env-steps/s" + (" (this / against)" if args.against else ""))
    for k in keys:
        line = f"{k:14s}" + "".join(f" {name} {median[name][k]:9.1f}" for name in trees)
        if args.against is not None and median["against"][k]:
            line += f"   ratio {median['this'][k] / median['against'][k]:.2f}"
        print(line)


if __name__ == "__main__":
    main()
