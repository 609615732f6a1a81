"""The heuristic designer: walk the skill graph, practise the trunk of the tech tree first.

For a game whose catalogue has one practice env per skill (Crafter). What the agent can do, its *capability* in a
skill, is the better of its real-game success and its best success in any env of the last cycle: inside a practice
env the agent often manages a skill (place_table 100 %) cycles before the real-game feedback shows it, so the
frontier follows the designed envs' results, not only the real game's. A skill is reachable when the agent is
capable (>= REACH_PERCENT) in each of its direct prerequisites; the candidates are the reachable skills and those
one step beyond them. Each is valued by how much the Crafter score can gain from it: the score is a geometric mean
of (1 + success), so a point of success is worth 1 / (1 + success), and a skill also opens every skill that
depends on it: value = (1 + dependants) / (1 + real-game success). The ``numEnvs // 2`` most valuable targets
get two slots each, so each target gets enough steps for its craft actions to be tried (with one slot per skill
and four skills, a practice env got about 1.5 PPO updates per cycle). A skill practised twice without gaining
``STALL_POINTS``, neither in the real game nor in its own practice env, is set aside while other skills are left.
For a game with a level ladder of one skill (Heist), the heuristic picks the stretch of the ladder that matches the
agent's success rate.
"""

from __future__ import annotations

from collections.abc import Collection

from ..contracts import CycleDesign, CycleFeedback, CycleHistory, DesignRequest
from ..games import GAMES, CatalogueEnv, Game
from ..games import game as game_of
from ..spec import DesignerType
from .base import env_findings, is_copy, unique_names
from .catalogue import spread

REACH_PERCENT = 10.0
STALL_POINTS = 1.0  # success points a practised skill must gain, in the real game or its own env, to keep its slot
SLOTS_PER_TARGET = 2


def success_of(feedback: CycleFeedback | None) -> dict[str, float]:
    """Mean success (percent) per skill of every game; absent skills count as 0."""
    got = {} if feedback is None else {k: v.mean for k, v in feedback.success.items()}
    return {s: got.get(s, 0.0) for g in GAMES.values() for s in g.skills}


def latest_success(history: list[CycleHistory]) -> dict[str, float]:
    """``success_of`` the last finished cycle's feedback (cycle 1: everything 0 %)."""
    return success_of(history[-1].feedback if history else None)


def capability(history: list[CycleHistory]) -> dict[str, float]:
    """Per skill, the better of the last real-game success and the best success in any of the last cycle's envs."""
    cap = latest_success(history)
    for result in history[-1].feedback.per_env if history else ():
        for skill, rate in result.success.items():
            if skill in cap:
                cap[skill] = max(cap[skill], rate)
    return cap


def reachable(game: Game, success: dict[str, float], skill: str) -> bool:
    """True when the agent manages every direct prerequisite of a skill."""
    return all(success[p] >= REACH_PERCENT for p in game.prerequisites.get(skill, ()))


def one_step_ahead(game: Game, success: dict[str, float], skill: str) -> bool:
    """True when a skill is not reachable yet but every direct prerequisite of it is."""
    return not reachable(game, success, skill) and all(
        reachable(game, success, p) for p in game.prerequisites.get(skill, ())
    )


def dependants(game: Game, skill: str) -> int:
    """How many skills need this one, directly or through others."""
    need = {s: set(game.prerequisites.get(s, ())) for s in game.skills}
    found: set[str] = set()
    frontier = {skill}
    while frontier:
        frontier = {s for s, parents in need.items() if parents & frontier} - found
        found |= frontier
    return len(found)


def value(game: Game, success: dict[str, float], skill: str) -> float:
    """What practising a skill is worth to the score: (1 + dependants) / (1 + real-game success)."""
    return (1 + dependants(game, skill)) / (1 + success[skill])


def _practice_rate(feedback: CycleFeedback, env_name: str, skill: str) -> float:
    """The skill's best success in its own practice env or the env's copies; 0 when it was not there."""
    return max((r.success.get(skill, 0.0) for r in feedback.per_env if is_copy(r.name, env_name)), default=0.0)


def stalled(game: Game, history: list[CycleHistory]) -> set[str]:
    """Skills whose last two practices gained less than STALL_POINTS, both in the real game and in their own env."""
    practice = {c.skills[0]: c.env.name for c in game.catalogue}
    out: set[str] = set()
    for skill, env_name in practice.items():
        cycles = [h for h in history if any(is_copy(e.name, env_name) for e in h.design.envs)][-2:]
        if len(cycles) < 2:
            continue
        first, second = (c.feedback for c in cycles)
        real_gain = success_of(second)[skill] - success_of(first)[skill]
        env_gain = _practice_rate(second, env_name, skill) - _practice_rate(first, env_name, skill)
        if max(real_gain, env_gain) < STALL_POINTS:
            out.add(skill)
    return out


def curriculum(
    game: Game, success: dict[str, float], capable: dict[str, float], n: int, stall: Collection[str] = ()
) -> list[str]:
    """``n`` distinct targets among the reachable skills and those one step ahead, most valuable first.

    Reachability follows ``capable``, value the real-game ``success``; ties go to the shallower skill, then the
    game's order. Stalled skills go last, so they come back only when nothing else is left.
    """
    candidates = [s for s in game.skills if reachable(game, capable, s) or one_step_ahead(game, capable, s)]
    ranked = sorted(
        candidates, key=lambda s: (s in stall, -value(game, success, s), game.depth(s), game.skills.index(s))
    )
    return ranked[:n]


def _practise(game: Game, history: list[CycleHistory], n: int) -> tuple[list[CatalogueEnv], str]:
    practice = {c.skills[0]: c for c in game.catalogue}
    success, capable = latest_success(history), capability(history)
    stall = stalled(game, history)
    targets = curriculum(game, success, capable, max(1, n // SLOTS_PER_TARGET), stall)
    picked = spread(tuple(practice[t] for t in targets), n)
    note = "heuristic: practising " + ", ".join(
        f"{t} ({success[t]:.0f}% in the game, {capable[t]:.0f}% at best)" for t in targets
    )
    if stall:
        note += "; set aside (no gain in two practices): " + ", ".join(sorted(stall))
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
