"""The heuristic designer: walk the achievement DAG, practise the weakest reachable skills.

A skill is reachable when the agent already manages each of its direct prerequisites (success >= REACH_PERCENT
in the last feedback; cycle 1 counts everything as 0 %). The ``numEnvs`` weakest reachable skills (ties: the
shallower skill, then Crafter's order) each get their practice environment, which hands out the skill's
prerequisites as starting items, pre-placed objects and biome. One slot in four reaches one step further ahead: the
shallowest skill just beyond the frontier (its prerequisites themselves reachable), whose practice env hands out
what the agent cannot yet make, so deep tools (stone and iron) get practised before the agent gets there alone.
Heist has a single skill, so the heuristic picks
the stretch of the level ladder that matches the agent's success rate.
"""

from __future__ import annotations

from ..achievements import ACHIEVEMENTS, PREREQUISITES, depth
from ..contracts import CycleDesign, CycleFeedback, DesignRequest
from ..spec import DesignerType
from .base import env_findings, unique_names
from .catalogue import CRAFTER_PRACTICE, HEIST_LADDER, HEIST_SKILL, spread

REACH_PERCENT = 10.0


def success_of(feedback: CycleFeedback | None) -> dict[str, float]:
    """Mean success (percent) per skill; absent skills count as 0."""
    got = {} if feedback is None else {k: v.mean for k, v in feedback.success.items()}
    return {a: got.get(a, 0.0) for a in (*ACHIEVEMENTS, HEIST_SKILL)}


def weakest_reachable(success: dict[str, float], n: int) -> list[str]:
    """The ``n`` weakest skills whose direct prerequisites the agent manages (then the nearest unreachable)."""
    reachable = [a for a in ACHIEVEMENTS if _reachable(success, a)]
    order = sorted(reachable, key=lambda a: (success[a], depth(a), ACHIEVEMENTS.index(a)))
    rest = sorted(set(ACHIEVEMENTS) - set(reachable), key=lambda a: (depth(a), ACHIEVEMENTS.index(a)))
    return (order + rest)[:n]


def _reachable(success: dict[str, float], skill: str) -> bool:
    return all(success[p] >= REACH_PERCENT for p in PREREQUISITES[skill])


def one_step_ahead(success: dict[str, float]) -> list[str]:
    """Unreachable skills whose every direct prerequisite is reachable, shallowest first."""
    ahead = [
        a for a in ACHIEVEMENTS if not _reachable(success, a) and all(_reachable(success, p) for p in PREREQUISITES[a])
    ]
    return sorted(ahead, key=lambda a: (depth(a), ACHIEVEMENTS.index(a)))


def curriculum(success: dict[str, float], n: int) -> list[str]:
    """``n`` distinct targets: the weakest reachable skills, one slot in four one step ahead of the frontier."""
    ahead = one_step_ahead(success)[: n // 4]
    rest = [a for a in weakest_reachable(success, len(ACHIEVEMENTS)) if a not in ahead]
    return (rest[: n - len(ahead)] + ahead)[:n]


class HeuristicDesigner:
    """Deterministic DAG-walking designer (no LLM)."""

    name: DesignerType = "heuristic"

    def design(self, request: DesignRequest) -> CycleDesign:
        feedback = request.history[-1].feedback if request.history else None
        success = success_of(feedback)
        if request.game == "crafter":
            targets = curriculum(success, request.num_envs)
            picked = spread(tuple(CRAFTER_PRACTICE[t] for t in targets), request.num_envs)
            note = "heuristic: practising " + ", ".join(f"{t} ({success[t]:.0f}%)" for t in targets)
        else:
            rate = success[HEIST_SKILL]
            centre = round(rate / 100 * (len(HEIST_LADDER) - 1))
            lo = max(0, min(centre - request.num_envs // 2, len(HEIST_LADDER) - request.num_envs))
            picked = spread(HEIST_LADDER[lo : lo + request.num_envs], request.num_envs)
            hi = lo + min(request.num_envs, len(HEIST_LADDER))
            note = f"heuristic: heist success {rate:.0f}%, ladder levels {lo + 1}-{hi}"
        envs = unique_names([c.env for c in picked])
        return CycleDesign(
            cycle=request.cycle, designer=self.name, envs=envs, findings=env_findings(envs), notes=[note]
        )
