"""The heuristic designer: walk the skill graph, practise the weakest reachable skills.

For a game whose catalogue has one practice env per skill (Crafter): a skill is reachable when the agent already
manages each of its direct prerequisites (success >= REACH_PERCENT in the last feedback; cycle 1 counts
everything as 0 %). The ``numEnvs`` weakest reachable skills (ties: the shallower skill, then the game's order)
each get their practice environment, which hands out the skill's prerequisites as starting items, pre-placed
objects and biome. Half the slots reach one step further ahead: the shallowest skills just beyond the frontier
(their prerequisites themselves reachable), whose practice envs hand out what the agent cannot yet make, so deep
tools (stone and iron) get practised before the agent gets there alone. A skill that was practised and whose
real-game success has not risen by ``STALL_POINTS`` since is set aside while other skills are left (in the
science benchmark's first version, defeat_skeleton and eat_plant took two slots of four in every cycle and never
moved). For a game with a level ladder of one skill (Heist), the heuristic picks the stretch of the ladder that
matches the agent's success rate.
"""

from __future__ import annotations

from collections.abc import Collection

from ..contracts import CycleDesign, CycleFeedback, CycleHistory, DesignRequest
from ..games import GAMES, CatalogueEnv, Game
from ..games import game as game_of
from ..spec import DesignerType
from .base import env_findings, unique_names
from .catalogue import spread

REACH_PERCENT = 10.0
STALL_POINTS = 1.0  # real-game success points a practised skill must gain to keep its slot


def success_of(feedback: CycleFeedback | None) -> dict[str, float]:
    """Mean success (percent) per skill of every game; absent skills count as 0."""
    got = {} if feedback is None else {k: v.mean for k, v in feedback.success.items()}
    return {s: got.get(s, 0.0) for g in GAMES.values() for s in g.skills}


def latest_success(history: list[CycleHistory]) -> dict[str, float]:
    """``success_of`` the last finished cycle's feedback (cycle 1: everything 0 %)."""
    return success_of(history[-1].feedback if history else None)


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


def stalled(game: Game, history: list[CycleHistory]) -> set[str]:
    """Skills practised in an earlier cycle whose real-game success has not risen by STALL_POINTS since."""
    practised_by = {c.env.name: c.skills for c in game.catalogue}
    now = latest_success(history)
    out: set[str] = set()
    for skill in game.skills:
        for k in range(len(history) - 1, -1, -1):
            if any(skill in practised_by.get(env.name, ()) for env in history[k].design.envs):
                before = latest_success(history[:k])
                if now[skill] - before[skill] < STALL_POINTS:
                    out.add(skill)
                break
    return out


def curriculum(game: Game, success: dict[str, float], n: int, stall: Collection[str] = ()) -> list[str]:
    """``n`` distinct targets: the weakest reachable skills, half the slots one step ahead of the frontier.

    Stalled skills go last, so they come back only when nothing else is left.
    """
    ahead = [s for s in one_step_ahead(game, success) if s not in stall][: n // 2]
    ranked = weakest_reachable(game, success, len(game.skills))
    rest = [s for s in ranked if s not in ahead and s not in stall] + [s for s in ranked if s in stall]
    return (rest[: n - len(ahead)] + ahead)[:n]


def _practise(game: Game, history: list[CycleHistory], n: int) -> tuple[list[CatalogueEnv], str]:
    practice = {c.skills[0]: c for c in game.catalogue}
    success = latest_success(history)
    stall = stalled(game, history)
    targets = curriculum(game, success, n, stall)
    picked = spread(tuple(practice[t] for t in targets), n)
    note = "heuristic: practising " + ", ".join(f"{t} ({success[t]:.0f}%)" for t in targets)
    if stall:
        note += "; set aside (no gain after practice): " + ", ".join(sorted(stall))
    return picked, note


def _climb(game: Game, history: list[CycleHistory], n: int) -> tuple[list[CatalogueEnv], str]:
    levels, skill = game.catalogue, game.skills[0]
    rate = latest_success(history)[skill]
    centre = round(rate / 100 * (len(levels) - 1))
    lo = max(0, min(centre - n // 2, len(levels) - n))
    picked = spread(levels[lo : lo + n], n)
    hi = lo + min(n, len(levels))
    return picked, f"heuristic: {skill.replace('_', ' ')} {rate:.0f}%, ladder levels {lo + 1}-{hi}"


class HeuristicDesigner:
    """Deterministic DAG-walking designer (no LLM)."""

    name: DesignerType = "heuristic"

    def design(self, request: DesignRequest) -> CycleDesign:
        game = game_of(request.game)
        pick = _practise if game.curriculum == "skills" else _climb
        picked, note = pick(game, list(request.history), request.num_envs)
        envs = unique_names([c.env for c in picked])
        return CycleDesign(
            cycle=request.cycle, designer=self.name, envs=envs, findings=env_findings(envs), notes=[note]
        )

    def close(self) -> None:
        """Nothing to release."""
