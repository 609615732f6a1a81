"""``--reference sb3``: the crafter wrapper, episode scoring, the resumable chunk runner and the report's SB3 lines.

Everything but the last test runs without stable-baselines3 (CI does not install the ``reference`` extra).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.science import cli, report, sb3
from bench.science import run as bench
from envgen.achievements import ACHIEVEMENTS, crafter_score
from envgen.experiment import report as rep

REPO = Path(__file__).resolve().parents[2]


def test_crafter_wrapper_has_gymnasium_signatures_and_records_the_episode() -> None:
    env = sb3.CrafterEpisodes(seed=3, length=25)
    obs, info = env.reset(seed=123)
    assert obs.shape == sb3.OBS_SHAPE and obs.dtype == np.uint8 and info == {}
    rng = np.random.default_rng(0)
    total = 0.0
    for t in range(25):
        obs, reward, terminated, truncated, info = env.step(int(rng.integers(sb3.N_ACTIONS)))
        total += reward
        assert obs.shape == sb3.OBS_SHAPE and isinstance(reward, float)
        assert set(info["achievements"]) == set(ACHIEVEMENTS)  # crafter's counts, passed through
        if terminated:  # died before the time limit (rare in 25 steps)
            assert not truncated and "episode_record" in info
            break
        assert truncated == (t == 24) and ("episode_record" in info) == (t == 24)
    record = info["episode_record"]
    assert record["length"] == t + 1 and record["reward"] == pytest.approx(total)
    assert record["achievements"] == info["achievements"]
    obs, info = env.reset()  # a new episode starts from zero
    assert env.step(0)[4].get("episode_record") is None


def test_gymnasium_env_spaces() -> None:
    pytest.importorskip("gymnasium")
    env = sb3.gymnasium_env(0, length=10)
    obs, _ = env.reset()
    assert env.observation_space.contains(obs) and env.action_space.n == 17
    assert env.step(env.action_space.sample())[0].shape == (64, 64, 3)


def test_episode_result_is_the_crafter_score_of_per_episode_success() -> None:
    counts = [
        {"collect_wood": 3, "place_table": 1, "eat_cow": 0},
        {"collect_wood": 1, "place_table": 0},
        {"collect_wood": 2},
        {"collect_wood": 0, "wake_up": 1},
    ]
    records = [{"reward": float(i), "length": 10 * (i + 1), "achievements": c} for i, c in enumerate(counts)]
    result = sb3.episode_result(records)
    expected = {"collect_wood": 75.0, "place_table": 25.0, "wake_up": 25.0}
    assert result["trainSuccess"] == {k: expected.get(k, 0.0) for k in ACHIEVEMENTS}
    assert result["trainScore"] == pytest.approx(crafter_score(expected))
    assert result["trainEpisodes"] == 4 and result["trainRewardMean"] == 1.5 and result["episodeLengthMean"] == 25
    assert sb3.episode_result([])["trainScore"] is None


class FakeLearner:
    """Counts steps, 'saves' them to a file, finishes one episode per chunk; can fail at a given chunk."""

    def __init__(self, path: Path | None, fail_at: int | None = None) -> None:
        self.num_timesteps = int(path.read_text()) if path else 0
        self.loaded, self.fail_at, self.calls = path, fail_at, 0

    def learn(self, steps: int) -> list[dict[str, Any]]:
        self.calls += 1
        if self.calls == self.fail_at:
            raise KeyboardInterrupt  # the benchmark stopped mid-chunk
        self.num_timesteps += steps
        return [{"reward": 1.0, "length": steps, "achievements": {"collect_wood": self.num_timesteps // 100 % 2}}]

    def save(self, path: Path) -> None:
        path.write_text(str(self.num_timesteps))


def test_chunk_runner_resumes_from_its_last_chunk_and_reuses_a_finished_seed(tmp_path: Path) -> None:
    made: list[FakeLearner] = []

    def make(fail_at: int | None) -> Any:
        def factory(path: Path | None) -> FakeLearner:
            made.append(FakeLearner(path, fail_at))
            return made[-1]

        return factory

    with pytest.raises(KeyboardInterrupt):
        sb3.train_seed(tmp_path, 500, 100, make(3), {"seed": 7})
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["steps"] == 200 and len(state["records"]) == 2 and state["model"] == "model-200.zip"
    assert sorted(p.name for p in tmp_path.glob("model-*")) == ["model-200.zip"]
    (tmp_path / "model-300.partial.zip").write_text("300")  # a save cut short: dropped on resume

    result = sb3.train_seed(tmp_path, 500, 100, make(None), {"seed": 7})
    assert made[-1].loaded == tmp_path / "model-200.zip" and made[-1].calls == 3
    assert sorted(p.name for p in tmp_path.glob("model-*")) == ["model-500.zip"]
    assert result["seed"] == 7 and result["phase"] == "final" and result["steps"] == result["globalStep"] == 500
    assert result["trainEpisodes"] == 5 and result["resumes"] == 1 and result["chunks"] == 5
    assert result["trainSuccess"]["collect_wood"] == 60.0  # steps 100, 300, 500 -> 1; 200, 400 -> 0
    assert result["stepsPerSecond"] > 0 and result["wallTimeSeconds"] > 0

    def no_learner(path: Path | None) -> FakeLearner:
        raise AssertionError("a finished seed must not train again")

    assert sb3.train_seed(tmp_path, 500, 100, no_learner) == result


def test_chunk_runner_refuses_a_learner_that_does_not_advance(tmp_path: Path) -> None:
    stuck = FakeLearner(None)
    stuck.learn = lambda steps: []  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="did not advance"):
        sb3.train_seed(tmp_path, 100, 50, lambda path: stuck)


def test_ppo_settings_are_the_papers_in_the_cpu_profile() -> None:
    assert sb3.num_envs("cpu") == 8 and bench.PROFILES["cpu"]["reference_steps"] == 249_856
    assert sb3.ppo_settings("cpu") == {
        "n_steps": 512,
        "batch_size": 512,
        "n_epochs": 3,
        "gamma": 0.95,
        "gae_lambda": 0.65,
        "learning_rate": 3e-4,
        "ent_coef": 0.01,
        "clip_range": 0.2,
    }


def test_publish_copies_finished_seeds_and_marks_the_arm_finished_last(tmp_path: Path) -> None:
    base, out = tmp_path / "runs", tmp_path / "results"
    (base / "s0").mkdir(parents=True)
    (base / "s0" / "result.json").write_text('{"seed": 0}')
    assert [p.name for p in sb3.publish(base, out, range(2))] == [sb3.result_name(0)]
    assert not (out / "finished.json").exists() and sb3.publish(base, out, range(2)) == []
    (base / "s1").mkdir()
    (base / "s1" / "result.json").write_text('{"seed": 1}')
    assert [p.name for p in sb3.publish(base, out, range(2))] == [sb3.result_name(1), "finished.json"]
    assert json.loads((out / "finished.json").read_text())["seeds"] == [0, 1]
    (base / "s2").mkdir()  # a second batch from seed 2 (--first-seed 2 --seeds 1), with its own marker
    (base / "s2" / "result.json").write_text('{"seed": 2}')
    assert [p.name for p in sb3.publish(base, out, range(2, 3))] == [sb3.result_name(2), "s2-finished.json"]


def test_reference_sb3_without_sb3_names_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sb3, "sb3_installed", lambda: False)
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    monkeypatch.setattr(bench.signal, "signal", lambda *a: None)
    with pytest.raises(SystemExit, match=r"scripts/setup.sh"):
        cli.main(["run", "--profile", "smoke", "--reference", "sb3", "--seeds", "1"])


def _write(folder: Path, arm: str, scores: list[float], sb3_result: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for seed, score in enumerate(scores):
        doc = {"name": f"sci-{arm}-final-s{seed}", "phase": "final", "seed": seed, "globalStep": 1024}
        doc |= {"steps": 1024, "wallTimeSeconds": 10.24, "trainScore": score}
        if sb3_result:
            doc |= {"score": None, "trainRewardMean": 2.5, "versions": {"stable_baselines3": "2.9.2"}}
        else:
            doc |= {"score": score + 1, "rewardMean": 3.0}
        (folder / f"sci-{arm}-final-s{seed}.json").write_text(json.dumps(doc))


def test_report_row_and_sb3_lines_use_measured_sb3_from_two_seeds(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    _write(tmp_path / "smoke" / "ppo-250k", "ppo-250k", [4.1, 4.3, 3.9])
    (tmp_path / "smoke" / "ppo-250k" / "finished.json").write_text("{}")
    _write(tmp_path / "smoke" / sb3.SB3_ARM, sb3.SB3_ARM, [5.0], sb3_result=True)

    arms = report.load("smoke")
    lines = report._significance(arms)
    assert "- ppo-250k vs SB3 PPO (the issue's run: 4.3, 4.9): " in lines[0]
    assert lines[1] == f"- {sb3.SB3_ARM} vs the issue's SB3 run (4.3, 4.9): not enough finished seeds yet (1)."

    _write(tmp_path / "smoke" / sb3.SB3_ARM, sb3.SB3_ARM, [5.0, 4.6], sb3_result=True)
    (tmp_path / "smoke" / sb3.SB3_ARM / "finished.json").write_text("{}")
    arms = report.load("smoke")
    assert list(arms) == ["ppo-250k", sb3.SB3_ARM]
    lines = report._significance(arms)
    expected = rep.difference([4.1, 4.3, 3.9], [5.0, 4.6])[0]
    assert lines[0] == f"- ppo-250k vs SB3 PPO (measured here, 2 seeds: 5.00, 4.60): {expected}."
    assert lines[1].startswith(f"- {sb3.SB3_ARM} vs the issue's SB3 run (4.3, 4.9): +0.20 points")
    row = rep.results_row(sb3.SB3_ARM, arms[sb3.SB3_ARM], [report.PAPER[sb3.SB3_ARM]])
    assert row.startswith(f"| {sb3.SB3_ARM} | 2 | 4.80 ± 0.28 | – | – | 0 | 0 | 0 | 100 | finished | SB3 PPO 4.3")
    summary = report.summary("smoke", arms)["arms"][sb3.SB3_ARM]
    assert summary == {
        "scores": [5.0, 4.6],
        "evalScores": [],
        "seeds": [0, 1],
        "versions": {"stable_baselines3": "2.9.2"},
    }
    text = (tmp_path / "smoke" / "RESULTS.md").read_text() if report.write_report("smoke") else ""
    checkpoints = text.split("## Equal-step checkpoints")[1]
    assert row in text and "| ppo-250k | final |" in checkpoints and sb3.SB3_ARM not in checkpoints


@pytest.mark.slow(minutes=1)
def test_real_sb3_smoke_reference_runs_scores_and_is_reused(tmp_path: Path) -> None:
    pytest.importorskip("stable_baselines3")
    cmd = [sys.executable, "-m", "bench.science", "run", "--profile", "smoke", "--reference", "sb3", "--seeds", "1"]
    cmd += ["--poll", "1", "--retries", "0"]
    env = {"ENVGEN_SCIENCE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    out = tmp_path / "results" / "smoke" / sb3.SB3_ARM
    result = json.loads((out / sb3.result_name(0)).read_text())
    assert result["steps"] == 1024 and result["numEnvs"] == 4 and result["torchThreads"] == 1
    assert result["versions"]["torch"].startswith("2.") and result["stepsPerSecond"] > 0
    assert (out / "finished.json").exists()
    text = (tmp_path / "results" / "smoke" / "RESULTS.md").read_text()
    assert f"| {sb3.SB3_ARM} | " in text and "| finished |" in text
    again = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "reused" in again.stdout
