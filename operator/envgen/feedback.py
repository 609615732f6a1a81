"""Pooling the seeds' evaluations of a cycle into the feedback the designer sees next."""

from __future__ import annotations

import math
import statistics

from .contracts import CycleFeedback, EnvResult, SkillStat, TrainingMetrics


def aggregate_feedback(cycle: int, metrics: list[TrainingMetrics]) -> CycleFeedback:
    """Pool the per-seed metrics of a cycle: mean of means, std from the law of total variance, the lowest mean."""
    skills = sorted({k for m in metrics for k in m.success})
    success: dict[str, SkillStat] = {}
    for k in skills:
        stats = [m.success[k] for m in metrics if k in m.success]
        means = [s.mean for s in stats]
        mean = statistics.fmean(means)
        within = statistics.fmean(s.std**2 for s in stats)
        between = statistics.pvariance(means) if len(means) > 1 else 0.0
        success[k] = SkillStat(mean=mean, std=math.sqrt(within + between), lowest=min(means))
    scores = [m.score for m in metrics if m.score is not None]
    per_env = [e for m in metrics for e in m.per_env] if len(metrics) == 1 else _merge_env_results(metrics)
    return CycleFeedback(
        cycle=cycle, success=success, score=statistics.fmean(scores) if scores else None, per_env=per_env
    )


def _merge_env_results(metrics: list[TrainingMetrics]) -> list[EnvResult]:
    by_name: dict[str, list[EnvResult]] = {}
    for m in metrics:
        for e in m.per_env:
            by_name.setdefault(e.name, []).append(e)
    merged = []
    for name, results in by_name.items():
        episodes = sum(r.episodes for r in results)
        keys = sorted({k for r in results for k in r.success})
        weight = [max(r.episodes, 1) for r in results]
        success = {
            k: sum(r.success.get(k, 0.0) * w for r, w in zip(results, weight, strict=True)) / sum(weight) for k in keys
        }
        scores = [r.score for r in results if r.score is not None]
        merged.append(
            EnvResult(name=name, episodes=episodes, success=success, score=statistics.fmean(scores) if scores else None)
        )
    return merged
