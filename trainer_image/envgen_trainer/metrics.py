"""Turning finished episodes into success rates, scores and per-env results."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from envgen.contracts import EnvResult
from envgen.games import game as game_of

from .vecenv import Episode


def skill_names(game: str) -> tuple[str, ...]:
    """The skills a game reports: Crafter's 22 achievements, or Heist's success."""
    return game_of(game).skills


def success_rates(episodes: Sequence[Episode], game: str) -> dict[str, float]:
    """Percent of episodes in which each skill was unlocked at least once (every skill present)."""
    n = len(episodes)
    return {k: (100.0 * sum(k in ep.achievements for ep in episodes) / n if n else 0.0) for k in skill_names(game)}


def score(success: dict[str, float], game: str) -> float:
    """The game's score: Crafter's geometric mean with +1 offset, Heist's success percent."""
    return game_of(game).score(success)


def std(values: Sequence[float]) -> float:
    """Population standard deviation (0 for fewer than two values)."""
    return statistics.pstdev(values) if len(values) > 1 else 0.0


def env_results(episodes: Sequence[Episode], labels: Sequence[str], game: str) -> list[EnvResult]:
    """Per designed env (by label): episode count, success rates, score and mean return."""
    results = []
    for label in labels:
        eps = [ep for ep in episodes if ep.label == label]
        success = success_rates(eps, game)
        results.append(
            EnvResult(
                name=label,
                episodes=len(eps),
                success=success,
                score=score(success, game) if eps else None,
                reward_mean=statistics.fmean(ep.ret for ep in eps) if eps else None,
            )
        )
    return results
