"""The local quickstart end to end: the real embedded LLM, real Crafter training, killed mid-run and resumed."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from envgen.achievements import ACHIEVEMENTS

ROOT = Path(__file__).resolve().parents[2]
RUN = "qs-test"

pytestmark = [pytest.mark.slow(minutes=12), pytest.mark.llm]


def small_quickstart(tmp_path: Path) -> Path:
    """examples/quickstart.yaml with a smaller budget (same loop: 2 cycles, real LLM, real training)."""
    doc = yaml.safe_load((ROOT / "examples" / "quickstart.yaml").read_text())
    doc["metadata"]["name"] = RUN
    spec = doc["spec"]
    spec["envsPerCycle"] = 2
    spec["training"] = {
        "designedEnvSteps": 1024,
        "gameSteps": 512,
        "finalSteps": 512,
        "evalEpisodes": 2,
        "evalRuns": 2,
        "designedEnvLength": 256,
    }
    spec["agent"].update({"numEnvs": 4, "rolloutSteps": 64, "minibatches": 2})
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def envgen_run(run_yaml: Path, run_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "envgen", "run", str(run_yaml), "--run-dir", str(run_dir), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def wait_for(path: Path, proc: subprocess.Popen[str], timeout: float) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(
                f"envgen run ended early ({proc.returncode}):\n{proc.stdout.read() if proc.stdout else ''}"
            )
        if time.time() > deadline:
            raise AssertionError(f"{path} did not appear within {timeout} s")
        time.sleep(0.5)


def trainer_pids(run_dir: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if b"envgen_trainer" in cmdline and str(run_dir).encode() in cmdline:
                pids.append(int(proc.name))
    return pids


def test_quickstart_killed_and_resumed(tmp_path: Path) -> None:
    run_yaml, run_dir = small_quickstart(tmp_path), tmp_path / "run"
    first = envgen_run(run_yaml, run_dir)
    c1_metrics = run_dir / "metrics" / f"{RUN}-c1-s0.json"
    try:
        wait_for(c1_metrics, first, timeout=900)
        wait_for(run_dir / "tasks" / f"{RUN}-c2-s0" / "task.json", first, timeout=600)
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # no clean shutdown: as if the machine lost power
        first.wait()
    # the trainer of cycle 2 dies with its runner (SIGTERM: first it saves its resumable checkpoint at the end of the
    # update under way)
    deadline = time.time() + 60
    while trainer_pids(run_dir) and time.time() < deadline:
        time.sleep(0.3)
    assert trainer_pids(run_dir) == []

    c1_task = run_dir / "tasks" / f"{RUN}-c1-s0"
    before = {p: p.stat().st_mtime_ns for p in [c1_metrics, c1_task / "exit-code", run_dir / "designs" / "c1.json"]}
    records_before = set((run_dir / "llm-records").glob("*.json"))

    second = envgen_run(run_yaml, run_dir)
    out, _ = second.communicate(timeout=1200)
    assert second.returncode == 0, out
    assert "Succeeded" in out and "AllCyclesCompleted" in out

    # nothing finished was repeated
    assert {p: p.stat().st_mtime_ns for p in before} == before
    assert sorted(p.name for p in (run_dir / "tasks").iterdir()) == [f"{RUN}-c1-s0", f"{RUN}-c2-s0", f"{RUN}-final-s0"]
    assert records_before <= set((run_dir / "llm-records").glob("*.json"))

    # metrics for every cycle and the final phase: all 22 achievements, a score by the formula
    for name in (f"{RUN}-c1-s0", f"{RUN}-c2-s0", f"{RUN}-final-s0"):
        metrics = json.loads((run_dir / "metrics" / f"{name}.json").read_text())
        assert set(metrics["success"]) == set(ACHIEVEMENTS)
        assert metrics["steps"] > 0 and metrics["score"] is not None
    assert (run_dir / "checkpoints" / "s0" / "final.pt").stat().st_size > 0

    # the second prompt carries the first cycle's success rates
    c1 = json.loads(c1_metrics.read_text())
    design2 = json.loads((run_dir / "designs" / "c2.json").read_text())
    prompt = "\n".join(m["content"] for m in design2["chat"] if m["role"] == "user")
    for skill in ("collect_wood", "place_table", "collect_diamond"):
        stat = c1["success"][skill]
        line = re.search(rf"{skill}: (\d+)% \+/- (\d+)%", prompt)
        assert line is not None, prompt
        assert int(line.group(1)) == round(stat["mean"]) and int(line.group(2)) == round(stat["std"])
    assert design2["usage"]["calls"] >= 1 and len(design2["envs"]) == 2

    # the report
    report = run_dir / "report"
    assert (report / "report.md").stat().st_size > 0 and (report / "heatmap.png").stat().st_size > 1000
    assert "collect_diamond" in (report / "report.md").read_text()

    # a finished run re-run does no new work and reports again
    third = envgen_run(run_yaml, run_dir)
    out3, _ = third.communicate(timeout=120)
    assert third.returncode == 0 and "AllCyclesCompleted" in out3
    assert sorted(p.name for p in (run_dir / "tasks").iterdir()) == [f"{RUN}-c1-s0", f"{RUN}-c2-s0", f"{RUN}-final-s0"]
