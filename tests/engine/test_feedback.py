"""Pooling seeds into feedback (weighting of per-env results, total variance) and the compact metrics form."""

from __future__ import annotations

import json
import math

import pytest

from envgen.contracts import EnvResult, SkillStat, TrainingMetrics
from envgen.feedback import aggregate_feedback


def seed(score: float, success: dict[str, SkillStat], per_env: list[EnvResult]) -> TrainingMetrics:
    return TrainingMetrics(score=score, success=success, per_env=per_env)


def test_skills_pool_by_mean_of_means_and_total_variance() -> None:
    a = seed(10.0, {"collect_wood": SkillStat(mean=20.0, std=3.0)}, [])
    b = seed(30.0, {"collect_wood": SkillStat(mean=60.0, std=4.0), "place_table": SkillStat(mean=5.0)}, [])
    fb = aggregate_feedback(2, [a, b])
    assert fb.cycle == 2 and fb.score == 20.0
    wood = fb.success["collect_wood"]
    assert wood.mean == 40.0
    assert wood.std == pytest.approx(math.sqrt((9 + 16) / 2 + 400))  # within-seed + between-seed variance
    assert wood.lowest == 20.0  # the weakest seed
    assert fb.success["place_table"] == SkillStat(mean=5.0, std=0.0, lowest=5.0)  # only the seeds that saw it


def test_per_env_results_are_weighted_by_episodes() -> None:
    a = seed(0.0, {}, [EnvResult(name="cave", episodes=3, success={"collect_coal": 90.0}, score=9.0)])
    b = seed(0.0, {}, [EnvResult(name="cave", episodes=1, success={"collect_coal": 10.0, "eat_cow": 40.0})])
    c = seed(0.0, {}, [EnvResult(name="meadow", episodes=0, success={"eat_cow": 50.0})])
    merged = {e.name: e for e in aggregate_feedback(1, [a, b, c]).per_env}
    cave = merged["cave"]
    assert cave.episodes == 4
    assert cave.success["collect_coal"] == pytest.approx((90 * 3 + 10 * 1) / 4)  # not the plain mean 50
    assert cave.success["eat_cow"] == pytest.approx(40 * 1 / 4)  # missing counts as 0 for that seed's episodes
    assert cave.score == 9.0  # mean over the seeds that scored it
    assert merged["meadow"].episodes == 0 and merged["meadow"].success["eat_cow"] == 50.0  # weight floor of 1


def test_one_seed_keeps_its_per_env_results() -> None:
    env = EnvResult(name="cave", episodes=2, success={"collect_coal": 50.0}, score=1.5, reward_mean=0.25)
    fb = aggregate_feedback(1, [seed(5.0, {}, [env])])
    assert fb.per_env == [env]


def test_no_metrics_means_no_score() -> None:
    fb = aggregate_feedback(1, [])
    assert fb.score is None and fb.success == {} and fb.per_env == []


def test_compact_drops_per_env_first_then_train_success() -> None:
    per_env = [EnvResult(name=f"env-{i:02d}", episodes=9, success={f"k{j}": 1.0 for j in range(8)}) for i in range(30)]
    metrics = TrainingMetrics(
        score=12.3456,
        success={"collect_wood": SkillStat(mean=1.23456, std=0.5)},
        train_success={f"skill_{i}": 1.0 for i in range(10)},
        per_env=per_env,
    )
    full = json.loads(metrics.compact(limit=1_000_000))
    assert "perEnv" in full and full["score"] == 12.35  # rounded to two decimals
    without_envs = json.loads(metrics.compact(limit=len(json.dumps(full, separators=(",", ":"))) - 10))
    assert "perEnv" not in without_envs and "trainSuccess" in without_envs
    smaller = len(json.dumps(without_envs, separators=(",", ":"))) - 10
    bare = json.loads(metrics.compact(limit=smaller))
    assert "perEnv" not in bare and "trainSuccess" not in bare and bare["success"]["collect_wood"]["mean"] == 1.23
    with pytest.raises(ValueError, match="do not fit"):
        metrics.compact(limit=20)
