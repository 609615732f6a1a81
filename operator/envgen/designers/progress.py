"""What the feedback says of the agent's progress: success per skill, and the skills it has lost."""

from __future__ import annotations

from ..contracts import CycleFeedback, CycleHistory
from ..games import GAMES, Game

LOST_FROM = 20.0  # real-game success (percent) at which the agent holds a skill ...
LOST_SHARE = 0.5  # ... that it has lost once it falls below this share of its best


def success_of(feedback: CycleFeedback | None) -> dict[str, float]:
    """Mean success (percent) per skill of every game; absent skills count as 0."""
    got = {} if feedback is None else {k: v.mean for k, v in feedback.success.items()}
    return {s: got.get(s, 0.0) for g in GAMES.values() for s in g.skills}


def latest_success(history: list[CycleHistory]) -> dict[str, float]:
    """``success_of`` the last finished cycle's feedback (cycle 1: everything 0 %)."""
    return success_of(history[-1].feedback if history else None)


def lost_skills(game: Game, history: list[CycleHistory]) -> dict[str, float]:
    """Skills the agent held in the real game (>= LOST_FROM at some cycle) and now does at under LOST_SHARE of its
    best, each with that best, the largest fall first."""
    if len(history) < 2:
        return {}
    now = latest_success(history)
    best = {s: max(success_of(h.feedback)[s] for h in history[:-1]) for s in game.skills}
    lost = [s for s in game.skills if best[s] >= LOST_FROM and now[s] < LOST_SHARE * best[s]]
    return {s: best[s] for s in sorted(lost, key=lambda s: now[s] - best[s])}
