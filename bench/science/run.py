"""Run arms x seeds of the science benchmark through the product's EnvGenExperiment (``envgen run``); resumable;
commits raw results as they land.

    python -m bench.science run --profile cpu --arms none heuristic --seeds 3
    python -m bench.science run --profile paper --arms none --max-minutes 9     # GPU, one chunk; rerun to resume
    python -m bench.science report --profile cpu                               # tables and plots only
    python -m bench.science run --profile cpu --reference sb3 --seeds 3        # stable-baselines3 side by side
    python -m bench.science run --profile cpu --arms none --seeds 3 --first-seed 3   # 3 more seeds: 3, 4, 5

A profile and a batch of seeds is one EnvGenExperiment named ``sci`` (the profile's EnvGenRun spec as template,
every designer arm, baseline ``none``), generated into ``bench/science/runs/<profile>/sci.yaml`` and run by
``envgen run sci.yaml --run-dir runs/<profile>/sci --arms <the chosen arms>`` (ignored by git): each arm is the
run ``sci-<arm>`` with the batch's seeds in parallel (pooled feedback, as the project runs them), the arms one after
another. The reference arms (our PPO alone at the SB3 reference budget, not equal steps, so not experiment arms) are
each their own EnvGenRun ``sci-<arm>`` in ``runs/<profile>/<arm>/``. Every finished task's metrics, the cycle
designs and ``finished.json`` are copied to ``bench/science/results/<profile>/<arm>/`` (committed with
``--commit``); a finished arm (its ``finished.json`` in results) is reused, an interrupted one resumes where it
stopped. ``--first-seed K`` runs another batch of seeds (the experiment with ``firstSeed: K`` in
``runs/<profile>/sci-from-sK/``, a reference arm in ``runs/<profile>/<arm>-from-sK/``) or of the SB3 reference; its
files join the arm's results (its designs, run.json and finished.json prefixed ``sK-``), and the report pools every
batch.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from envgen.experiment.model import EnvGenExperiment, parse_experiment

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

# The experiment every profile runs: its arms' EnvGenRuns are named <experiment>-<arm>, so their tasks (and the task
# metrics in results/) are sci-<arm>-c<k>-s<seed> and sci-<arm>-final-s<seed>.
EXPERIMENT = "sci"
# The experiment's arms (equal steps, baseline "none"): arm -> its entry in the experiment (designer, split of a
# cycle's steps). "heuristic-5to1" asks whether a larger dose of designed envs helps: designedShare 5/6 of each
# cycle's PPO updates (the product rounds it to whole updates: 10 designed + 2 real-game updates a cycle in the cpu
# profile, not 6 + 6; the same steps per cycle).
DESIGN_ARMS: dict[str, dict[str, Any]] = {
    "none": {"designer": {"type": "none"}},
    "heuristic": {"designer": {"type": "heuristic"}},
    "heuristic-v5": {"designer": {"type": "heuristic"}},
    "heuristic-v6": {"designer": {"type": "heuristic"}},
    "heuristic-v7": {"designer": {"type": "heuristic"}},
    "heuristic-5to1": {"designer": {"type": "heuristic"}, "designedShare": "0.8333"},
    "learning-progress": {"designer": {"type": "learning-progress"}},
    "llm-constrained": {"designer": {"type": "llm", "mode": "constrained"}},
    "fixed": {"designer": {"type": "fixed", "mode": "free"}},
    "easy-to-hard": {"designer": {"type": "easy-to-hard"}},
    "adversarial": {"designer": {"type": "adversarial"}},
    "llm": {"designer": {"type": "llm", "mode": "free"}},
    "llm-endpoint": {"designer": {"type": "llm", "mode": "free"}},  # its llm comes from --endpoint and --model
}
# Our PPO alone for the SB3 comparison (real game only, the reference budget, so not equal steps: an experiment
# refuses them; each is its own EnvGenRun): arm -> agent settings it changes. "ppo-250k-sb3-value" takes
# stable-baselines3's value loss: no value clipping, 0.5 x squared error.
REFERENCE_ARMS: dict[str, dict[str, Any]] = {
    "ppo-250k": {},
    "ppo-250k-sb3-value": {"clipValueLoss": False, "valueCoef": "1.0"},
}
ARMS = [*DESIGN_ARMS, *REFERENCE_ARMS]
LLM: dict[str, Any] = {"timeoutSeconds": 900, "maxRetries": 2}
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


def template(profile: str) -> dict[str, Any]:
    """The EnvGenRun spec of a profile: what every arm of its experiment trains (designer none)."""
    prof = PROFILES[profile]
    return {
        "game": "crafter",
        "designer": {"type": "none"},
        "envsPerCycle": prof["envsPerCycle"],
        "cycles": prof["cycles"],
        "training": dict(prof["training"]),
        "agent": dict(prof["agent"]),
        "llm": dict(LLM),
    }


def experiment_doc(
    profile: str,
    seeds: range,
    endpoint: str | None = None,
    model: str | None = None,
    only: Collection[str] | None = None,
) -> dict[str, Any]:
    """The EnvGenExperiment of a profile and a batch of seeds: the profile's template, baseline ``none`` and every
    designer arm, or the arms ``only`` names (an experiment holds 2 to 12 arms: every arm when ``only`` names
    ``none`` alone; the ``llm-endpoint`` arm only when an endpoint is given)."""
    chosen = None if only is None or set(only) <= {"none"} else {"none", *only}
    arms = []
    for arm, entry in DESIGN_ARMS.items():
        if chosen is not None and arm not in chosen:
            continue
        if arm == "llm-endpoint":
            if not endpoint:
                continue
            llm = {**LLM, "baseURL": endpoint, "model": model or "gpt-4o", "apiKey": {"env": "OPENAI_API_KEY"}}
            entry = {**entry, "llm": llm}
        arms.append({"name": arm, **entry})
    spec = {"template": template(profile), "arms": arms, "baseline": "none", "seeds": len(seeds), "firstSeed": seeds[0]}
    return {
        "apiVersion": "envgen.dev/v1alpha1",
        "kind": "EnvGenExperiment",
        "metadata": {"name": EXPERIMENT},
        "spec": spec,
    }


def experiment(
    profile: str,
    seeds: range = range(3),
    endpoint: str | None = None,
    model: str | None = None,
    only: Collection[str] | None = None,
) -> EnvGenExperiment:
    """The profile's experiment (of the arms ``only`` names, with ``none``), validated by the product."""
    return parse_experiment(experiment_doc(profile, seeds, endpoint, model, only), f"profile {profile}")


def reference_doc(arm: str, profile: str, seeds: range) -> dict[str, Any]:
    """The EnvGenRun of a reference arm: our PPO alone, one phase of the profile's reference steps in the real
    game, seeds ``seeds``."""
    spec = template(profile)
    spec["training"].update(designedEnvSteps=0, gameSteps=0, finalSteps=PROFILES[profile]["reference_steps"])
    spec["agent"].update(REFERENCE_ARMS[arm])
    spec.update(cycles=1, seeds=len(seeds), **({"firstSeed": seeds[0]} if seeds[0] else {}))
    return {
        "apiVersion": "envgen.dev/v1alpha1",
        "kind": "EnvGenRun",
        "metadata": {"name": f"{EXPERIMENT}-{arm}"},
        "spec": spec,
    }


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


@dataclass
class Batch:
    """One ``envgen run`` of the benchmark: the document it runs, its run directory, and the arms it fills (arm ->
    the arm's run directory); ``experiment``: the document is an EnvGenExperiment, run for the pending arms only."""

    name: str
    doc: dict[str, Any]
    rundir: Path
    arms: dict[str, Path]
    experiment: bool


def experiment_batch(profile: str, arms: list[str], seeds: range, args: argparse.Namespace) -> Batch:
    """The profile's experiment for one batch of seeds (``runs/<profile>/sci/``, ``sci-from-s3/`` for the batch from
    seed 3), filling ``arms``."""
    if "llm-endpoint" in arms and not args.endpoint:
        raise SystemExit("arm llm-endpoint needs --endpoint URL (and --model NAME)")
    exp = experiment(profile, seeds, args.endpoint, args.model, arms)
    rundir = RUNS / profile / (f"{EXPERIMENT}-from-s{seeds[0]}" if seeds[0] else EXPERIMENT)
    doc = exp.model_dump(mode="json", by_alias=True, exclude_unset=True, exclude_none=True)
    return Batch(EXPERIMENT, doc, rundir, {arm: rundir / "arms" / arm for arm in arms}, experiment=True)


def reference_batch(arm: str, profile: str, seeds: range) -> Batch:
    """A reference arm's own EnvGenRun for one batch of seeds (``runs/<profile>/<arm>/``, ``<arm>-from-s3/``)."""
    rundir = RUNS / profile / (f"{arm}-from-s{seeds[0]}" if seeds[0] else arm)
    return Batch(arm, reference_doc(arm, profile, seeds), rundir, {arm: rundir}, experiment=False)


def run_batch(
    batch: Batch,
    profile: str,
    seeds: range,
    args: argparse.Namespace,
    deadline: float | None,
    on_finished: Callable[[str], None] = lambda arm: None,
) -> bool:
    """Run (or resume) a batch's unfinished arms, resuming up to ``--retries`` times after a crash;
    ``on_finished(arm)`` as each arm's results finish. True when every arm finished."""
    pending = []
    for arm in batch.arms:
        if (RESULTS / profile / arm / finished_name(seeds)).exists():
            print(f"[science] {profile}/{arm} seeds {seeds[0]}-{seeds[-1]}: finished earlier, reused")
        else:
            pending.append(arm)
    for attempt in range(args.retries + 1):
        if not pending:
            return True
        if attempt:
            print(f"[science] {profile}/{batch.name}: resuming after a failure (retry {attempt})", flush=True)
            time.sleep(args.retry_wait)
        code = _run_once(batch, pending, profile, seeds, args, deadline, on_finished)
        pending = [arm for arm in pending if not (RESULTS / profile / arm / finished_name(seeds)).exists()]
        if code in (0, None) or (deadline is not None and time.time() > deadline):
            break
    return not pending


def _run_once(
    batch: Batch,
    pending: list[str],
    profile: str,
    seeds: range,
    args: argparse.Namespace,
    deadline: float | None,
    on_finished: Callable[[str], None],
) -> int | None:
    label = f"{profile}/{batch.name} seeds {seeds[0]}-{seeds[-1]}"
    batch.rundir.mkdir(parents=True, exist_ok=True)
    spec = batch.rundir.parent / f"{batch.rundir.name}.yaml"
    spec.write_text(yaml.safe_dump(batch.doc, sort_keys=False))
    cmd = [sys.executable, "-m", "envgen", "run", str(spec), "--run-dir", str(batch.rundir), "-q"]
    if batch.experiment:
        cmd += ["--arms", *pending]
    if args.nice:
        cmd = ["nice", "-n", str(args.nice), *cmd]
    print(f"[science] {label}: {' '.join(cmd)}", flush=True)
    unfinished = list(pending)

    def publish() -> None:
        for arm in list(unfinished):
            out = RESULTS / profile / arm
            if batch.arms[arm].is_dir():
                commit_copied(
                    sync(batch.arms[arm], out, batch_prefix(seeds[0])), out, arm, profile, args.commit, "designs"
                )
            if (out / finished_name(seeds)).exists():
                unfinished.remove(arm)
                on_finished(arm)

    log = (batch.rundir.parent / f"{batch.rundir.name}.log").open("a")
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        while proc.poll() is None:
            time.sleep(args.poll)
            publish()
            if deadline is not None and time.time() > deadline:
                print(f"[science] {label}: time is up, stopping (rerun to resume)", flush=True)
                stop(proc)
                break
    except KeyboardInterrupt:
        stop(proc)
        raise
    finally:
        log.close()
    publish()
    if unfinished and proc.returncode not in (0, None):
        print(
            f"[science] {label}: envgen run exited {proc.returncode}; see {batch.rundir.parent / batch.rundir.name}.log"
        )
    return proc.returncode


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
