"""The science benchmark's smoke profile: two arms, one seed, a few thousand steps, end to end through envgen run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.science import report
from bench.science import run as bench

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("profile", sorted(bench.PROFILES))
def test_ratio_arms_keep_the_steps_per_cycle(profile: str) -> None:
    prof = bench.PROFILES[profile]
    update = prof["agent"]["numEnvs"] * prof["agent"]["rolloutSteps"]
    base = bench.training_of("heuristic", profile)
    for arm, share in bench.DESIGNED_SHARE.items():
        t = bench.training_of(arm, profile)
        assert t["designedEnvSteps"] + t["gameSteps"] == base["designedEnvSteps"] + base["gameSteps"]
        assert t["designedEnvSteps"] % update == 0 and t["gameSteps"] > 0
        assert (t["designedEnvSteps"] >= base["designedEnvSteps"]) == (share >= 0.5)
        assert bench.run_doc(arm, profile, 3)["spec"]["training"] == t
    assert bench.training_of("heuristic-5to1", "cpu")["designedEnvSteps"] == 10 * bench.UPDATE


def _fake_run(rundir: Path, seeds: range, finished: bool) -> None:
    """A run directory as ``envgen run`` leaves it: final-task metrics per seed, a design, run.json."""
    for d in ("metrics", "designs"):
        (rundir / d).mkdir(parents=True)
    for seed in seeds:
        doc = {"name": f"sci-none-final-s{seed}", "phase": "final", "seed": seed, "trainScore": 5.0 + seed}
        (rundir / "metrics" / f"sci-none-final-s{seed}.json").write_text(json.dumps(doc | {"score": 6.0}))
    (rundir / "designs" / "c1.json").write_text(json.dumps({"envs": [], "findings": [{}], "usage": {"calls": 1}}))
    (rundir / "run.json").write_text("{}")
    if finished:
        (rundir / "finished.json").write_text("{}")


def test_a_second_batch_of_seeds_joins_the_arm(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(bench, "RESULTS", tmp_path / "results")
    out = tmp_path / "results" / "smoke" / "none"
    assert bench.run_doc("none", "smoke", 3, first_seed=3)["spec"]["firstSeed"] == 3
    assert "firstSeed" not in bench.run_doc("none", "smoke", 3)["spec"]
    _fake_run(tmp_path / "b0", range(3), finished=True)
    bench.sync(tmp_path / "b0", out, bench.batch_prefix(0))
    _fake_run(tmp_path / "b3", range(3, 5), finished=False)
    copied = bench.sync(tmp_path / "b3", out, bench.batch_prefix(3))
    assert sorted(p.name for p in copied) == [
        "s3-design-c1.json",
        "s3-run.json",
        "sci-none-final-s3.json",
        "sci-none-final-s4.json",
    ]
    arm = report.load("smoke")["none"]
    assert sorted(arm.seeds) == [0, 1, 2, 3, 4] and arm.findings == 2 and arm.llm_calls == 2
    assert not arm.finished  # the batch from seed 3 is still running
    (tmp_path / "b3" / "finished.json").write_text("{}")
    assert [p.name for p in bench.sync(tmp_path / "b3", out, "s3-")] == ["s3-finished.json"]
    assert report.load("smoke")["none"].finished
    assert report.summary("smoke", report.load("smoke"))["arms"]["none"]["scores"] == [5.0, 6.0, 7.0, 8.0, 9.0]


@pytest.mark.slow(minutes=5)
def test_smoke_profile_writes_results_tables_and_plots(tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "bench.science",
        "run",
        "--profile",
        "smoke",
        "--arms",
        "none",
        "heuristic",
        "--seeds",
        "1",
        "--poll",
        "2",
        "--retries",
        "0",
    ]
    env = {"ENVGEN_SCIENCE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    out = tmp_path / "results" / "smoke"
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["arms"]) == {"none", "heuristic"}
    for arm in summary["arms"].values():
        assert arm["seeds"] == [0] and len(arm["scores"]) == 1 and len(arm["evalScores"]) == 1
    assert summary["budget"]["stepsPerSeed"] == 2560
    text = (out / "RESULTS.md").read_text()
    assert text.count("| finished |") == 2
    assert "| none | 1 |" in text and "| heuristic | 1 |" in text and "26.4" in text
    # one seed a side: no test, no power, no pairing yet, but the per-achievement table beside none's range
    assert "heuristic vs none: not enough finished seeds yet (1 vs 1)" in text
    assert "| achievement | none mean | none range | none sd | heuristic |" in text
    assert "## Lost achievements" in text
    for png in ("achievements.png", "curves.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    assert (out / "none" / "sci-none-final-s0.json").exists()
    # a second run reuses the finished arms: nothing trains again
    again = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and again.stdout.count("reused") == 2
