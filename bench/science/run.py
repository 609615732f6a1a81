"""Run arms x seeds of the science benchmark through ``envgen run``; resumable; commits raw results as they land.

    python -m bench.science run --profile cpu --arms none heuristic --seeds 3
    python -m bench.science run --profile paper --arms none --max-minutes 9     # GPU, one chunk; rerun to resume
    python -m bench.science report --profile cpu                               # tables and plots only
    python -m bench.science run --profile cpu --reference sb3 --seeds 3        # stable-baselines3 side by side
    python -m bench.science run --profile cpu --arms none --seeds 3 --first-seed 3   # 3 more seeds: 3, 4, 5

Each arm is one EnvGenRun (``seeds`` parallel seeds, pooled feedback, as the project runs them) in
``bench/science/runs/<profile>/<arm>/`` (ignored by git). Every finished task's metrics, the cycle designs and
``finished.json`` are copied to ``bench/science/results/<profile>/<arm>/`` (committed with ``--commit``); a finished
arm (its ``finished.json`` in results) is reused, an interrupted one resumes where it stopped. ``--first-seed K``
runs another batch of seeds of an arm (an EnvGenRun with ``firstSeed: K``, in ``runs/<profile>/<arm>-from-sK/``)
or of the SB3 reference; its files join the arm's results (its designs, run.json and finished.json prefixed
``sK-``), and the report pools every batch.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent.parent
# Where runs, raw results and reports live (a temporary folder in tests).
ROOT = Path(os.environ.get("ENVGEN_SCIENCE_DIR", Path(__file__).resolve().parent))
RUNS = ROOT / "runs"
RESULTS = ROOT / "results"

# PPO as in the paper (8 envs x 512 steps, 3 epochs x 8 minibatches, gamma 0.95, lambda 0.65, lr 3e-4, ent 0.01).
PAPER_PPO: dict[str, Any] = {
    "learningRate": "3e-4",
    "numEnvs": 8,
    "rolloutSteps": 512,
    "epochs": 3,
    "minibatches": 8,
    "gamma": "0.95",
    "gaeLambda": "0.65",
    "clipCoef": "0.2",
    "entropyCoef": "0.01",
}
UPDATE = 8 * 512  # env steps per PPO update: phase budgets are whole updates

PROFILES: dict[str, dict[str, Any]] = {
    # CI: proves the command, the tables and the plots (a few thousand steps, 1 seed).
    "smoke": {
        "cycles": 1,
        "envsPerCycle": 2,
        "training": {
            "designedEnvSteps": 1024,
            "gameSteps": 512,
            "finalSteps": 1024,
            "evalEpisodes": 2,
            "evalRuns": 1,
            "designedEnvLength": 128,
        },
        "agent": {
            "network": "nature",
            "numEnvs": 4,
            "rolloutSteps": 128,
            "epochs": 1,
            "minibatches": 4,
            "device": "cpu",
        },
        "reference_steps": 1024,
    },
    # 2 CPU cores: 4 cycles x (6 updates designed + 6 updates real game) + 49 updates final = 397,312 steps/seed.
    "cpu": {
        "cycles": 4,
        "envsPerCycle": 4,
        "training": {
            "designedEnvSteps": 6 * UPDATE,
            "gameSteps": 6 * UPDATE,
            "finalSteps": 49 * UPDATE,
            "evalEpisodes": 10,
            "evalRuns": 2,
            "designedEnvLength": 1024,
        },
        "agent": {"network": "nature", **PAPER_PPO, "device": "cpu"},
        "reference_steps": 61 * UPDATE,  # 249,856: the SB3 comparison's 250k
    },
    # 2 CPU cores, where the stone tier starts to open: the paper's 4-cycle shape at about 38 % of its 1.96M steps,
    # 4 cycles x (11 updates designed + 11 real game) + 95 updates final = 749,568 steps/seed (3 seeds: ~100 min).
    "long": {
        "cycles": 4,
        "envsPerCycle": 4,
        "training": {
            "designedEnvSteps": 11 * UPDATE,
            "gameSteps": 11 * UPDATE,
            "finalSteps": 95 * UPDATE,
            "evalEpisodes": 10,
            "evalRuns": 2,
            "designedEnvLength": 1024,
        },
        "agent": {"network": "nature", **PAPER_PPO, "device": "cpu"},
        "reference_steps": 61 * UPDATE,
    },
    # The paper's schedule (Table 1) with the IMPALA network, for a GPU machine; run in chunks (--max-minutes).
    "paper": {
        "cycles": 4,
        "envsPerCycle": 4,
        "training": {
            "designedEnvSteps": 120_000,
            "gameSteps": 120_000,
            "finalSteps": 1_000_000,
            "evalEpisodes": 20,
            "evalRuns": 3,
            "designedEnvLength": 1024,
        },
        "agent": {"network": "impala", **PAPER_PPO, "device": "auto"},
        "reference_steps": 61 * UPDATE,
    },
}

# Our PPO alone for the SB3 comparison (real game only, the reference budget): arm -> agent settings it changes.
# "ppo-250k-sb3-value" takes stable-baselines3's value loss: no value clipping, 0.5 x squared error.
REFERENCE_ARMS: dict[str, dict[str, Any]] = {
    "ppo-250k": {},
    "ppo-250k-sb3-value": {"clipValueLoss": False, "valueCoef": "1.0"},
}
# Arms that split each cycle's steps otherwise (the same steps per cycle, so still equal steps): arm -> the share
# of a cycle's PPO updates spent in the designed envs (the profiles spend half). "heuristic-5to1" asks whether a
# larger dose of designed envs helps: 10 designed + 2 real-game updates a cycle in the cpu profile, not 6 + 6.
DESIGNED_SHARE: dict[str, float] = {"heuristic-5to1": 5 / 6}
# Arm -> designer block.
ARMS: dict[str, dict[str, Any]] = {
    "none": {"type": "none"},
    "heuristic": {"type": "heuristic"},
    "heuristic-v4": {"type": "heuristic"},
    "heuristic-5to1": {"type": "heuristic"},
    "learning-progress": {"type": "learning-progress"},
    "llm-constrained": {"type": "llm", "mode": "constrained"},
    "fixed": {"type": "fixed", "mode": "free"},
    "easy-to-hard": {"type": "easy-to-hard"},
    "adversarial": {"type": "adversarial"},
    "llm": {"type": "llm", "mode": "free"},
    "llm-endpoint": {"type": "llm", "mode": "free"},
    **{arm: {"type": "none"} for arm in REFERENCE_ARMS},
}
SB3_SCORES = [4.3, 4.9]  # stable-baselines3 PPO("CnnPolicy"), stock Crafter, 250k steps, two seeds (the run)
REFERENCES = ["sb3"]  # --reference: learners run beside our arms at the reference budget (bench/science/sb3.py)
DEFAULT_ARMS = [
    "none",
    "heuristic",
    "heuristic-5to1",
    "learning-progress",
    "llm-constrained",
    "fixed",
    "easy-to-hard",
    "adversarial",
    "llm",
    "ppo-250k",
    "ppo-250k-sb3-value",
]


def training_of(arm: str, profile: str) -> dict[str, Any]:
    """The training block of one arm at one profile: the profile's, with a reference or ratio arm's budget."""
    prof = PROFILES[profile]
    training = dict(prof["training"])
    if arm in REFERENCE_ARMS:
        training.update(designedEnvSteps=0, gameSteps=0, finalSteps=prof["reference_steps"])
    if arm in DESIGNED_SHARE:
        update = prof["agent"]["numEnvs"] * prof["agent"]["rolloutSteps"]
        cycle = training["designedEnvSteps"] + training["gameSteps"]
        designed = round(cycle // update * DESIGNED_SHARE[arm]) * update
        training.update(designedEnvSteps=designed, gameSteps=cycle - designed)
    return training


def run_doc(
    arm: str, profile: str, seeds: int, endpoint: str | None = None, model: str | None = None, first_seed: int = 0
) -> dict:
    """The EnvGenRun document of one arm at one profile (seeds ``first_seed`` .. ``first_seed + seeds - 1``)."""
    prof = PROFILES[profile]
    training = training_of(arm, profile)
    cycles = 1 if arm in REFERENCE_ARMS else prof["cycles"]
    spec: dict[str, Any] = {
        "game": "crafter",
        "designer": dict(ARMS[arm]),
        "envsPerCycle": prof["envsPerCycle"],
        "cycles": cycles,
        "seeds": seeds,
        **({"firstSeed": first_seed} if first_seed else {}),
        "training": training,
        "agent": {**prof["agent"], **REFERENCE_ARMS.get(arm, {})},
        "llm": {"timeoutSeconds": 900, "maxRetries": 2},
    }
    if arm == "llm-endpoint":
        if not endpoint:
            raise SystemExit("arm llm-endpoint needs --endpoint URL (and --model NAME)")
        spec["llm"].update(baseURL=endpoint, model=model or "gpt-4o", apiKey={"env": "OPENAI_API_KEY"})
    return {"apiVersion": "envgen.dev/v1alpha1", "kind": "EnvGenRun", "metadata": {"name": f"sci-{arm}"}, "spec": spec}


def git_commit(paths: list[Path], message: str) -> None:
    """Commit exactly ``paths`` (never anything else staged), retrying while another commit holds the index."""
    rel = [str(p.relative_to(REPO)) for p in paths]
    for _ in range(30):
        if not (REPO / ".git" / "index.lock").exists():
            add = subprocess.run(["git", "add", "--", *rel], cwd=REPO, capture_output=True, text=True)
            if add.returncode == 0:
                if subprocess.run(["git", "diff", "--cached", "--quiet", "--", *rel], cwd=REPO).returncode == 0:
                    return  # nothing new in these paths
                done = subprocess.run(
                    ["git", "commit", "-q", "-m", message, "--", *rel], cwd=REPO, capture_output=True, text=True
                )
                if done.returncode == 0:
                    return
        time.sleep(5)
    print(f"[science] could not commit {rel}", file=sys.stderr)


def copy_changed(pairs: list[tuple[Path, Path]]) -> list[Path]:
    """Copy each ``src`` to its ``dst`` when ``dst`` is missing or differs; the destinations copied."""
    copied = []
    for src, dst in pairs:
        if not dst.exists() or dst.read_bytes() != src.read_bytes():
            shutil.copyfile(src, dst)
            copied.append(dst)
    return copied


def batch_prefix(first_seed: int) -> str:
    """The file prefix of a batch of seeds in an arm's results: none for the first batch (seeds from 0), ``s3-``
    for the batch from seed 3. Task metrics need none (their names end in -s<seed>); a batch's designs, run.json and
    finished.json do."""
    return f"s{first_seed}-" if first_seed else ""


def finished_name(seeds: range) -> str:
    """The finished.json of a batch of seeds in an arm's results (``s3-finished.json`` for the batch from seed 3):
    the arm's batch is reused when it is there."""
    return f"{batch_prefix(seeds[0])}finished.json"


def sync(rundir: Path, out: Path, prefix: str = "") -> list[Path]:
    """Copy new or changed raw results (task metrics, designs, finished.json) of a run into ``out``; the batch's
    own files (designs, run.json, finished.json) get its ``prefix``."""
    out.mkdir(parents=True, exist_ok=True)
    pairs = [(m, out / m.name) for m in sorted((rundir / "metrics").glob("*.json"))]
    pairs += [(d, out / f"{prefix}design-{d.name}") for d in sorted((rundir / "designs").glob("c*.json"))]
    pairs += [(f, out / f"{prefix}{f.name}") for f in (rundir / "finished.json", rundir / "run.json") if f.exists()]
    return copy_changed(pairs)


def run_arm(arm: str, profile: str, seeds: range, args: argparse.Namespace, deadline: float | None) -> bool:
    """Run (or resume) one arm, resuming up to ``--retries`` times after a crash; True when it finished."""
    for attempt in range(args.retries + 1):
        if attempt:
            print(f"[science] {profile}/{arm}: resuming after a failure (retry {attempt})", flush=True)
            time.sleep(args.retry_wait)
        finished, code = _run_once(arm, profile, seeds, args, deadline)
        if finished or code in (0, None) or (deadline is not None and time.time() > deadline):
            return finished
    return False


def _run_once(
    arm: str, profile: str, seeds: range, args: argparse.Namespace, deadline: float | None
) -> tuple[bool, int | None]:
    out, first, prefix = RESULTS / profile / arm, seeds[0], batch_prefix(seeds[0])
    batch = f"{arm} seeds {first}-{seeds[-1]}"
    if (out / finished_name(seeds)).exists():
        print(f"[science] {profile}/{batch}: finished earlier, reused")
        return True, 0
    rundir = RUNS / profile / (f"{arm}-from-s{first}" if first else arm)
    rundir.mkdir(parents=True, exist_ok=True)
    spec = rundir.parent / f"{rundir.name}.yaml"
    spec.write_text(
        yaml.safe_dump(run_doc(arm, profile, len(seeds), args.endpoint, args.model, first), sort_keys=False)
    )
    cmd = [sys.executable, "-m", "envgen", "run", str(spec), "--run-dir", str(rundir), "-q"]
    if args.nice:
        cmd = ["nice", "-n", str(args.nice), *cmd]
    print(f"[science] {profile}/{batch}: {' '.join(cmd)}", flush=True)
    log = (rundir.parent / f"{rundir.name}.log").open("a")
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        while proc.poll() is None:
            time.sleep(args.poll)
            _publish(rundir, out, arm, profile, args.commit, prefix)
            if deadline is not None and time.time() > deadline:
                print(f"[science] {profile}/{batch}: time is up, stopping (rerun to resume)", flush=True)
                stop(proc)
                break
    except KeyboardInterrupt:
        stop(proc)
        raise
    finally:
        log.close()
    _publish(rundir, out, arm, profile, args.commit, prefix)
    finished = (out / finished_name(seeds)).exists()
    if not finished and proc.returncode not in (0, None):
        print(
            f"[science] {profile}/{batch}: envgen run exited {proc.returncode}; see {rundir.parent / rundir.name}.log"
        )
    return finished, proc.returncode


def _publish(rundir: Path, out: Path, arm: str, profile: str, commit: bool, prefix: str) -> None:
    commit_copied(sync(rundir, out, prefix), out, arm, profile, commit, other="designs")


def commit_copied(copied: list[Path], out: Path, arm: str, profile: str, commit: bool, other: str = "") -> None:
    """Commit an arm's results folder when ``copied`` changed it (named by its task files, else ``other``)."""
    if copied and commit:
        names = ", ".join(p.stem for p in copied if p.stem.startswith("sci-"))
        git_commit([out], f"Science benchmark raw results: {profile}/{arm} {names or other}".strip())


def stop(proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    """Stop a child cleanly (SIGTERM: ``envgen run`` stops as on Ctrl-C, SIGINT may be ignored under nohup; an SB3
    seed keeps its last saved chunk), then its whole process group after ``timeout`` seconds."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
