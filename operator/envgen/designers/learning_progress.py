"""The learning-progress designer (PLR/ACCEL-style, no LLM): practise where the agent's success moves most.

Every catalogue environment trains one skill. Its priority is the skill's learning progress, the absolute change
of its success rate (percent) between the last two evaluations, taking the larger of the change in the real game
and in the practice environment itself when the agent trained there both times (cycle 1's prior is 0 % everywhere).
Like PLR's staleness term, a frontier skill (its prerequisites managed, itself not mastered) not practised for a
while gains ``STALENESS_BONUS`` per cycle since it was last offered, so no reachable skill is starved; mastered
skills and skills whose prerequisites the agent does not manage are only offered when nothing else is left.
Heist's ladder has one skill, so its levels rank by the change of success in each level.
"""

from __future__ import annotations

from ..achievements import ACHIEVEMENTS, PREREQUISITES, depth
from ..contracts import CycleDesign, CycleFeedback, CycleHistory, DesignRequest
from ..spec import DesignerType
from .base import env_findings, is_copy, result_of, unique_names
from .catalogue import CatalogueEnv, ladder, spread
from .heuristic import REACH_PERCENT

MASTERED_PERCENT = 90.0
STALENESS_BONUS = 5.0  # points of priority per cycle since a frontier env was last offered


def _game_success(feedback: CycleFeedback | None, skill: str) -> float:
    if feedback is None or skill not in feedback.success:
        return 0.0
    return feedback.success[skill].mean


def _env_success(feedback: CycleFeedback | None, entry: CatalogueEnv) -> float | None:
    if feedback is None:
        return None
    result = result_of(feedback, entry.env.name)
    if result is None:
        return None
    values = [result.success[s] for s in entry.skills if s in result.success]
    return sum(values) / len(values) if values else result.score


def progress(entry: CatalogueEnv, history: list[CycleHistory]) -> float:
    """Learning progress of ``entry`` (percent points): the largest success change over its last two evaluations."""
    last = history[-1].feedback if history else None
    before = history[-2].feedback if len(history) >= 2 else None
    game = max(abs(_game_success(last, s) - _game_success(before, s)) for s in entry.skills)
    now, then = _env_success(last, entry), _env_success(before, entry)
    in_env = abs(now - then) if now is not None and then is not None else 0.0
    return max(game, in_env)


def staleness(entry: CatalogueEnv, history: list[CycleHistory]) -> int:
    """Cycles since ``entry`` was last offered (all cycles so far + 1 when it never was)."""
    for age, past in enumerate(reversed(history)):
        if any(is_copy(env.name, entry.env.name) for env in past.design.envs):
            return age
    return len(history) + 1


def _frontier(entry: CatalogueEnv, feedback: CycleFeedback | None) -> bool:
    if feedback is None:
        return all(not PREREQUISITES.get(s) for s in entry.skills)
    if all(s not in ACHIEVEMENTS for s in entry.skills):
        return True  # Heist levels: every level is on the frontier
    reachable = all(_game_success(feedback, p) >= REACH_PERCENT for s in entry.skills for p in PREREQUISITES[s])
    return reachable and min(_game_success(feedback, s) for s in entry.skills) < MASTERED_PERCENT


def priority(entry: CatalogueEnv, history: list[CycleHistory]) -> float:
    """Learning progress plus the staleness bonus (frontier envs always rank before the others)."""
    return progress(entry, history) + STALENESS_BONUS * staleness(entry, history)


class LearningProgressDesigner:
    """Deterministic PLR-style curriculum over the catalogue (no LLM)."""

    name: DesignerType = "learning-progress"

    def design(self, request: DesignRequest) -> CycleDesign:
        envs = ladder(request.game)
        last = request.history[-1].feedback if request.history else None
        frontier = [e for e in envs if _frontier(e, last)]
        rest = [e for e in envs if e not in frontier]

        def rank(entry: CatalogueEnv) -> tuple[float, int, int]:
            skill = entry.skills[0]
            return (-priority(entry, request.history), depth(skill) if skill in ACHIEVEMENTS else 0, envs.index(entry))

        picked = (sorted(frontier, key=rank) + sorted(rest, key=rank))[: request.num_envs]
        chosen = unique_names([c.env for c in spread(tuple(picked), request.num_envs)])
        note = "learning-progress: " + ", ".join(
            f"{c.env.name} (progress {progress(c, request.history):.0f}, stale {staleness(c, request.history)})"
            for c in picked
        )
        return CycleDesign(
            cycle=request.cycle, designer=self.name, envs=chosen, findings=env_findings(chosen), notes=[note]
        )

    def close(self) -> None:
        """Nothing to release."""
