"""``--reference sb3``: stable-baselines3 ``PPO("CnnPolicy")`` on stock Crafter, side by side with our reference arms.

Same budget (the profile's ``reference_steps``) and protocol as ``ppo-250k``: stock ``crafter.Env()`` only, the
profile's PPO settings (the paper's in ``cpu``), and the Crafter score over all training episodes. One process per
seed (one torch thread each, seeds in parallel); each trains in chunks and saves its model and the episode records
so far after every chunk, so an interrupted seed resumes from its last chunk:

    python -m bench.science run --profile cpu --reference sb3 --seeds 3
    python -m bench.science.sb3 --profile smoke --seed 0 --run-dir /tmp/sb3-s0     # one seed, by hand

Checkpoints live in ``runs/<profile>/sb3-250k/s<seed>/`` (git-ignored); each finished seed's result JSON and, once
every seed is done, ``finished.json`` are copied to ``results/<profile>/sb3-250k/``. stable-baselines3 and
gymnasium come with the ``dev`` extra (``scripts/setup.sh`` installs it); nothing here imports them
at module level, so the wrapper, the chunk runner and the report work (and are tested) without them.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from envgen import atomic
from envgen.achievements import crafter_score

from . import run as bench

SB3_ARM = "sb3-250k"
OBS_SHAPE = (64, 64, 3)
N_ACTIONS = 17
CHUNK_UPDATES = 8  # PPO updates per saved chunk: 32,768 steps in the cpu profile (a few minutes per seed)
MISSING = (
    "--reference sb3 needs stable-baselines3 (and gymnasium), which are not installed: "
    "bash scripts/setup.sh (or pip install -c constraints.txt -e '.[dev]')"
)


# ---- the env ------------------------------------------------------------------------------------------------
class CrafterEpisodes:
    """Stock ``crafter.Env`` (old gym API) behind gymnasium's ``reset``/``step``, recording finished episodes.

    ``terminated`` is death (crafter's discount 0), ``truncated`` the time limit; crafter's info (achievement
    counts, inventory, ...) is passed through, and the last step of an episode adds ``info["episode_record"]``:
    its return, length and achievement counts. Crafter seeds its worlds at construction (``seed``), so the
    ``seed`` of ``reset`` is ignored.
    """

    def __init__(self, seed: int, length: int = 10000) -> None:
        import crafter

        self.env = crafter.Env(seed=seed, length=length)
        self._return, self._length = 0.0, 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Start a new episode (a new world): ``(obs, {})``."""
        self._return, self._length = 0.0, 0
        return self.env.reset(), {}

    def step(self, action: int) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """One step: ``(obs, reward, terminated, truncated, info)``."""
        obs, reward, done, info = self.env.step(int(action))
        self._return += float(reward)
        self._length += 1
        terminated = bool(info["discount"] == 0)
        info = dict(info)
        if done:
            info["episode_record"] = {
                "reward": self._return,
                "length": self._length,
                "achievements": {k: int(v) for k, v in info["achievements"].items()},
            }
        return obs, float(reward), terminated, bool(done) and not terminated, info

    def render(self) -> Any:
        """The current frame."""
        return self.env.render()

    def close(self) -> None:
        """Nothing to release."""


def gymnasium_env(seed: int, length: int = 10000) -> Any:
    """A ``gymnasium.Env`` of stock Crafter: obs Box(0, 255, (64, 64, 3), uint8), Discrete(17) actions."""
    import gymnasium as gym

    class CrafterGymnasium(CrafterEpisodes, gym.Env):
        metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012

        def __init__(self, seed: int, length: int) -> None:
            CrafterEpisodes.__init__(self, seed, length)
            self.observation_space = gym.spaces.Box(0, 255, OBS_SHAPE, np.uint8)
            self.action_space = gym.spaces.Discrete(N_ACTIONS)

    return CrafterGymnasium(seed, length)


# ---- scoring ------------------------------------------------------------------------------------------------
def episode_result(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Success % per achievement (finished episodes with its count > 0), the Crafter score, reward and length."""
    from envgen_trainer.metrics import success_rates
    from envgen_trainer.vecenv import Episode

    episodes = [
        Episode(0, "crafter", float(r["reward"]), int(r["length"]), tuple(k for k, v in r["achievements"].items() if v))
        for r in records
    ]
    success = success_rates(episodes, "crafter")
    rewards = [ep.ret for ep in episodes]
    return {
        "trainEpisodes": len(episodes),
        "trainSuccess": success,
        "trainScore": crafter_score(success) if episodes else None,
        "trainRewardMean": statistics.fmean(rewards) if rewards else None,
        "trainRewardStd": statistics.pstdev(rewards) if len(rewards) > 1 else 0.0,
        "episodeLengthMean": statistics.fmean(ep.length for ep in episodes) if episodes else None,
    }


# ---- the chunk runner ---------------------------------------------------------------------------------------
class Learner(Protocol):
    """What the chunk runner needs of a learner (SB3's PPO behind :class:`SB3Learner`, a fake in tests)."""

    @property
    def num_timesteps(self) -> int: ...

    def learn(self, steps: int) -> list[dict[str, Any]]:
        """Train ``steps`` more env steps; the episode records finished meanwhile."""
        ...

    def save(self, path: Path) -> None:
        """Write the model (weights, optimiser, step counter) to ``path``."""
        ...


def train_seed(
    rundir: Path,
    total: int,
    chunk: int,
    make_learner: Callable[[Path | None], Learner],
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train one seed to ``total`` steps in chunks, resuming from ``rundir``; return (and write) its result.

    After each chunk the model is saved as ``model-<steps>.zip`` and then ``state.json`` (steps, episode records,
    wall seconds, the model's name) replaces the old one atomically: ``state.json`` is the commit point, so an
    interrupted chunk is simply trained again. A finished seed's ``result.json`` is returned as it is.
    """
    rundir.mkdir(parents=True, exist_ok=True)
    result_path = rundir / "result.json"
    if result_path.exists():
        return dict(json.loads(result_path.read_text()))
    state_path = rundir / "state.json"
    state: dict[str, Any] = (
        json.loads(state_path.read_text())
        if state_path.exists()
        else {"steps": 0, "model": None, "records": [], "wallSeconds": 0.0, "chunks": 0, "resumes": 0}
    )
    for stale in rundir.glob("model-*"):  # a chunk cut during its save, or models older than the state's
        if stale.name != state["model"]:
            stale.unlink()
    if state["model"]:
        state["resumes"] += 1
    learner = make_learner(rundir / state["model"] if state["model"] else None)
    while state["steps"] < total:
        started = time.perf_counter()
        records = learner.learn(min(chunk, total - state["steps"]))
        steps = int(learner.num_timesteps)
        if steps <= state["steps"]:
            raise RuntimeError(f"the learner did not advance ({state['steps']} -> {steps} steps)")
        model = f"model-{steps}.zip"
        learner.save(rundir / f"model-{steps}.partial.zip")
        os.replace(rundir / f"model-{steps}.partial.zip", rundir / model)
        previous = state["model"]
        state.update(
            steps=steps,
            model=model,
            records=[*state["records"], *records],
            wallSeconds=state["wallSeconds"] + time.perf_counter() - started,
            chunks=state["chunks"] + 1,
        )
        atomic.write_json(state_path, state, indent=1)
        if previous and previous != model:
            (rundir / previous).unlink(missing_ok=True)
        print(f"[sb3] {rundir.name}: {steps:,}/{total:,} steps, {len(state['records'])} episodes", flush=True)
    wall = state["wallSeconds"]
    result = {
        **(meta or {}),
        "phase": "final",
        "globalStep": state["steps"],
        "steps": state["steps"],
        "wallTimeSeconds": wall,
        "stepsPerSecond": state["steps"] / wall if wall > 0 else 0.0,
        "chunks": state["chunks"],
        "resumes": state["resumes"],
        **episode_result(state["records"]),
    }
    atomic.write_json(result_path, result, indent=1)
    return result


# ---- stable-baselines3 --------------------------------------------------------------------------------------
def sb3_installed() -> bool:
    """Whether stable-baselines3 and gymnasium can be imported."""
    return all(importlib.util.find_spec(m) is not None for m in ("stable_baselines3", "gymnasium"))


def require_sb3(profile: str, seeds: range) -> None:
    """Exit naming the fix when the SB3 reference still has seeds to train and SB3 is not installed (a finished
    reference is reused without it)."""
    if not (bench.RESULTS / profile / SB3_ARM / bench.finished_name(seeds)).exists() and not sb3_installed():
        raise SystemExit(MISSING)


def _agent(profile: str) -> dict[str, Any]:
    """The profile's agent block over the paper's PPO (the cpu profile: the paper's)."""
    return {**bench.PAPER_PPO, **bench.PROFILES[profile]["agent"]}


def ppo_settings(profile: str) -> dict[str, Any]:
    """SB3 PPO keyword arguments from the profile's agent settings."""
    agent = _agent(profile)
    batch = int(agent["numEnvs"]) * int(agent["rolloutSteps"])
    return {
        "n_steps": int(agent["rolloutSteps"]),
        "batch_size": batch // int(agent["minibatches"]),
        "n_epochs": int(agent["epochs"]),
        "gamma": float(agent["gamma"]),
        "gae_lambda": float(agent["gaeLambda"]),
        "learning_rate": float(agent["learningRate"]),
        "ent_coef": float(agent["entropyCoef"]),
        "clip_range": float(agent["clipCoef"]),
    }


def num_envs(profile: str) -> int:
    """Envs per seed: the profile's numEnvs (8 in cpu and paper)."""
    return int(_agent(profile)["numEnvs"])


class SB3Learner:
    """SB3 ``PPO("CnnPolicy")`` on ``n_envs`` stock Crafter envs, collecting finished episodes' records."""

    def __init__(self, seed: int, n_envs: int, ppo: dict[str, Any], model_path: Path | None) -> None:
        from stable_baselines3 import PPO
        from stable_baselines3.common.callbacks import BaseCallback
        from stable_baselines3.common.vec_env import DummyVecEnv

        records: list[dict[str, Any]] = []

        class Records(BaseCallback):
            def _on_step(self) -> bool:
                records.extend(i["episode_record"] for i in self.locals["infos"] if "episode_record" in i)
                return True

        # DummyVecEnv: the 8 envs step in the seed's own process. The seeds already run in parallel (3 processes
        # on 2 cores, like our trainers with one torch thread each), so SubprocVecEnv's 8 processes per seed would
        # only oversubscribe the cores and add pipe traffic; the algorithm and its results are the same either way.
        self.vec = DummyVecEnv([partial(gymnasium_env, seed * 1000 + i) for i in range(n_envs)])
        if model_path is None:
            self.model = PPO("CnnPolicy", self.vec, seed=seed, device="cpu", verbose=0, **ppo)
        else:
            self.model = PPO.load(model_path, env=self.vec, device="cpu")
            self.model.set_random_seed(seed + self.model.num_timesteps)
        self._records = records
        self._callback = Records()

    @property
    def num_timesteps(self) -> int:
        """Env steps trained so far (restored from a loaded model)."""
        return int(self.model.num_timesteps)

    def learn(self, steps: int) -> list[dict[str, Any]]:
        """Train ``steps`` more steps (whole rollouts); the episodes finished meanwhile."""
        self.model.learn(steps, callback=self._callback, reset_num_timesteps=False)
        done = list(self._records)
        self._records.clear()
        return done

    def save(self, path: Path) -> None:
        """Save the model (SB3 zip: weights, optimiser, num_timesteps)."""
        self.model.save(path)


def versions() -> dict[str, str]:
    """Versions of the learner's stack."""
    from importlib.metadata import version

    return {name: version(name) for name in ("stable_baselines3", "torch", "gymnasium", "crafter")}


def train(profile: str, seed: int, rundir: Path, steps: int | None = None) -> dict[str, Any]:
    """One seed of the SB3 reference at ``profile``, resumable in ``rundir``."""
    if not sb3_installed():
        raise SystemExit(MISSING)
    import torch

    torch.set_num_threads(1)
    total = steps or int(bench.PROFILES[profile]["reference_steps"])
    ppo, n_envs = ppo_settings(profile), num_envs(profile)
    meta = {
        "run": f"sci-{SB3_ARM}",
        "name": result_name(seed).removesuffix(".json"),
        "cycle": 1,
        "seed": seed,
        "game": "crafter",
        "learner": 'stable-baselines3 PPO("CnnPolicy"), DummyVecEnv, stock crafter.Env()',
        "numEnvs": n_envs,
        "ppo": ppo,
        "versions": versions(),
        "device": "cpu",
        "torchThreads": torch.get_num_threads(),
    }
    chunk = CHUNK_UPDATES * n_envs * ppo["n_steps"]
    return train_seed(rundir, total, chunk, lambda path: SB3Learner(seed, n_envs, ppo, path), meta)


# ---- the benchmark's side: seeds in parallel, results published ---------------------------------------------
def result_name(seed: int) -> str:
    """A seed's result file in ``results/<profile>/sb3-250k/``, named like the arms' final-task metrics."""
    return f"sci-{SB3_ARM}-final-s{seed}.json"


def publish(base: Path, out: Path, seeds: range) -> list[Path]:
    """Copy finished seeds' results into ``out``, and the batch's finished.json once all its seeds are there (its
    name has the batch's prefix, as the arms' batches do); what changed."""
    out.mkdir(parents=True, exist_ok=True)
    finished = [(base / f"s{seed}" / "result.json", out / result_name(seed)) for seed in seeds]
    copied = bench.copy_changed([(src, dst) for src, dst in finished if src.exists()])
    done = [s for s in seeds if (out / result_name(s)).exists()]
    marker = out / bench.finished_name(seeds)
    if len(done) == len(seeds) and not marker.exists():
        doc = {"outcome": "Succeeded", "reason": "AllSeedsFinished", "seeds": done, "finishedAt": time.time()}
        atomic.write_json(marker, doc, indent=1)
        copied.append(marker)
    return copied


def run_sb3(profile: str, seeds: range, args: argparse.Namespace, deadline: float | None) -> bool:
    """Run (or resume) the SB3 reference's ``seeds``: one process per unfinished seed, in parallel; True when all
    finished."""
    out = bench.RESULTS / profile / SB3_ARM
    marker = out / bench.finished_name(seeds)
    require_sb3(profile, seeds)
    if marker.exists():
        print(f"[science] {profile}/{SB3_ARM} seeds {seeds[0]}-{seeds[-1]}: finished earlier, reused")
        return True
    base = bench.RUNS / profile / SB3_ARM
    base.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)  # the batch's run.json: the report waits for its finished.json
    atomic.write_json(out / f"{bench.batch_prefix(seeds[0])}run.json", {"profile": profile, "seeds": list(seeds)})
    procs: dict[int, subprocess.Popen[bytes]] = {}
    failures = dict.fromkeys(seeds, 0)
    not_before = dict.fromkeys(seeds, 0.0)

    def sync() -> None:
        bench.commit_copied(publish(base, out, seeds), out, SB3_ARM, profile, args.commit)

    def pending() -> list[int]:
        return [s for s in seeds if not (out / result_name(s)).exists()]

    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    try:
        while True:
            sync()
            for seed in pending():
                if seed in procs or failures[seed] > args.retries or time.time() < not_before[seed]:
                    continue
                cmd = [sys.executable, "-m", "bench.science.sb3", "--profile", profile, "--seed", str(seed)]
                cmd += ["--run-dir", str(base / f"s{seed}")]
                if args.nice:
                    cmd = ["nice", "-n", str(args.nice), *cmd]
                print(f"[science] {profile}/{SB3_ARM} seed {seed}: {' '.join(cmd)}", flush=True)
                with (base / f"s{seed}.log").open("a") as log:
                    procs[seed] = subprocess.Popen(
                        cmd, cwd=bench.REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                    )
            for seed, proc in list(procs.items()):
                if proc.poll() is not None:
                    del procs[seed]
                    if not (base / f"s{seed}" / "result.json").exists():
                        failures[seed] += 1
                        not_before[seed] = time.time() + args.retry_wait
                        print(
                            f"[science] {profile}/{SB3_ARM} seed {seed}: exited {proc.returncode} "
                            f"(failure {failures[seed]}); see {base / f's{seed}.log'}",
                            flush=True,
                        )
            if not pending() or (not procs and all(failures[s] > args.retries for s in pending())):
                break
            if deadline is not None and time.time() > deadline:
                print(f"[science] {profile}/{SB3_ARM}: time is up, stopping (rerun to resume)", flush=True)
                break
            time.sleep(args.poll if procs else min(args.poll, 1.0))
    finally:
        for proc in procs.values():
            bench.stop(proc, 60)
    sync()
    return marker.exists()


def main(argv: list[str] | None = None) -> int:
    """Train one seed (the process ``run_sb3`` starts per seed)."""
    parser = argparse.ArgumentParser(prog="python -m bench.science.sb3", description=__doc__.split("\n")[0])
    parser.add_argument("--profile", choices=sorted(bench.PROFILES), default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--steps", type=int, help="env steps (default: the profile's reference_steps)")
    args = parser.parse_args(argv)
    result = train(args.profile, args.seed, args.run_dir, args.steps)
    print(
        f"[sb3] seed {args.seed}: score {result['trainScore']}, {result['trainEpisodes']} episodes, "
        f"{result['stepsPerSecond']:.0f} steps/s",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
