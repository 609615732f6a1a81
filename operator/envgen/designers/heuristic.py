"""The heuristic designer: walk the skill graph, practise the weakest reachable skills.

For a game whose catalogue has one practice env per skill (Crafter): a skill is reachable when the agent already
manages each of its direct prerequisites (success >= REACH_PERCENT in the last feedback; cycle 1 counts
everything as 0 %). The ``numEnvs`` weakest reachable skills (ties: the shallower skill, then the game's order)
each get their practice environment, which hands out the skill's prerequisites as starting items, pre-placed
objects and biome. One slot in four reaches one step further ahead: the shallowest skill just beyond the frontier
(its prerequisites themselves reachable), whose practice env hands out what the agent cannot yet make, so deep
tools (stone and iron) get practised before the agent gets there alone. For a game with a level ladder of one
skill (Heist), the heuristic picks the stretch of the ladder that matches the agent's success rate.
"""

from __future__ import annotations

from ..contracts import CycleDesign, CycleFeedback, DesignRequest
from ..games import GAMES, CatalogueEnv, Game
from ..games import game as game_of
from ..spec import DesignerType
from .base import env_findings, unique_names
from .catalogue import spread

REACH_PERCENT = 10.0


def success_of(feedback: CycleFeedback | None) -> dict[str, float]:
    """Mean success (percent) per skill of every game; absent skills count as 0."""
    got = {} if feedback is None else {k: v.mean for k, v in feedback.success.items()}
    return {s: got.get(s, 0.0) for g in GAMES.values() for s in g.skills}


def reachable(game: Game, success: dict[str, float], skill: str) -> bool:
    """True when the agent manages every direct prerequisite of a skill."""
    return all(success[p] >= REACH_PERCENT for p in game.prerequisites.get(skill, ()))


def _order(game: Game, skill: str) -> tuple[int, int]:
    return game.depth(skill), game.skills.index(skill)


def weakest_reachable(game: Game, success: dict[str, float], n: int) -> list[str]:
    """The ``n`` weakest skills whose direct prerequisites the agent manages (then the nearest unreachable)."""
    can = [s for s in game.skills if reachable(game, success, s)]
    order = sorted(can, key=lambda s: (success[s], *_order(game, s)))
    rest = sorted(set(game.skills) - set(can), key=lambda s: _order(game, s))
    return (order + rest)[:n]


def one_step_ahead(game: Game, success: dict[str, float]) -> list[str]:
    """Unreachable skills whose every direct prerequisite is reachable, shallowest first."""
    ahead = [
        s
        for s in game.skills
        if not reachable(game, success, s) and all(reachable(game, success, p) for p in game.prerequisites.get(s, ()))
    ]
    return sorted(ahead, key=lambda s: _order(game, s))


def curriculum(game: Game, success: dict[str, float], n: int) -> list[str]:
    """``n`` distinct targets: the weakest reachable skills, one slot in four one step ahead of the frontier."""
    ahead = one_step_ahead(game, success)[: n // 4]
    rest = [s for s in weakest_reachable(game, success, len(game.skills)) if s not in ahead]
    return (rest[: n - len(ahead)] + ahead)[:n]


def _practise(game: Game, success: dict[str, float], n: int) -> tuple[list[CatalogueEnv], str]:
    practice = {c.skills[0]: c for c in game.catalogue}
    targets = curriculum(game, success, n)
    picked = spread(tuple(practice[t] for t in targets), n)
    return picked, "heuristic: practising " + ", ".join(f"{t} ({success[t]:.0f}%)" for t in targets)


def _climb(game: Game, success: dict[str, float], n: int) -> tuple[list[CatalogueEnv], str]:
    levels, skill = game.catalogue, game.skills[0]
    rate = success[skill]
    centre = round(rate / 100 * (len(levels) - 1))
    lo = max(0, min(centre - n // 2, len(levels) - n))
    picked = spread(levels[lo : lo + n], n)
    hi = lo + min(n, len(levels))
    return picked, f"heuristic: {skill.replace('_', ' ')} {rate:.0f}%, ladder levels {lo + 1}-{hi}"


class HeuristicDesigner:
    """Deterministic DAG-walking designer (no LLM)."""

    name: DesignerType = "heuristic"

    def design(self, request: DesignRequest) -> CycleDesign:
        feedback = request.history[-1].feedback if request.history else None
        game = game_of(request.game)
        pick = _practise if game.curriculum == "skills" else _climb
        picked, note = pick(game, success_of(feedback), request.num_envs)
        envs = unique_names([c.env for c in picked])
        return CycleDesign(
            cycle=request.cycle, designer=self.name, envs=envs, findings=env_findings(envs), notes=[note]
        )

    def close(self) -> None:
        """Nothing to release."""
