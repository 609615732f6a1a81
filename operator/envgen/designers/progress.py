"""What the feedback says of the agent's progress: success per skill, and the skills it has lost."""

from __future__ import annotations

from ..contracts import CycleFeedback, CycleHistory, SkillStat
from ..games import GAMES, Game

LOST_FROM = 20.0  # real-game success (percent) at which the agent holds a skill ...
LOST_SHARE = 0.5  # ... that it has lost once it falls below this share of its best


def success_of(feedback: CycleFeedback | None, weakest_seed: bool = False) -> dict[str, float]:
    """Success (percent) per skill of every game, the seeds' mean or the weakest seed's (the mean where the
    feedback has no seeds); absent skills count as 0."""
    got = {} if feedback is None else {k: _rate(v, weakest_seed) for k, v in feedback.success.items()}
    return {s: got.get(s, 0.0) for g in GAMES.values() for s in g.skills}


def _rate(stat: SkillStat, weakest_seed: bool) -> float:
    return stat.lowest if weakest_seed and stat.lowest is not None else stat.mean


def latest_success(history: list[CycleHistory]) -> dict[str, float]:
    """``success_of`` the last finished cycle's feedback (cycle 1: everything 0 %)."""
    return success_of(history[-1].feedback if history else None)


def weakest_seed_now(history: list[CycleHistory]) -> dict[str, float]:
    """``success_of`` the last finished cycle's weakest seed: what a lost skill is measured by."""
    return success_of(history[-1].feedback if history else None, weakest_seed=True)


def lost_skills(game: Game, history: list[CycleHistory]) -> dict[str, float]:
    """Skills the agent held in the real game (>= LOST_FROM at some cycle) and now does at under LOST_SHARE of its
    best on some seed (the weakest seed against the seeds' best mean), each with that best, the largest fall
    first."""
    if len(history) < 2:
        return {}
    now = weakest_seed_now(history)
    best = {s: max(success_of(h.feedback)[s] for h in history[:-1]) for s in game.skills}
    lost = [s for s in game.skills if best[s] >= LOST_FROM and now[s] < LOST_SHARE * best[s]]
    return {s: best[s] for s in sorted(lost, key=lambda s: now[s] - best[s])}
