"""The heuristic designer: walk the skill graph, practise the trunk of the tech tree first, earn what is given.

For a game whose catalogue has one practice env per skill (Crafter). The frontier follows the real game: a skill
is reachable when the agent manages (>= REACH_PERCENT) each of its direct prerequisites **in the real game**, and
the candidates are the reachable skills and those one step beyond them. Success inside a practice env never
unlocks a skill: such success often comes from the prerequisites the env hands out (stone placed and mined back),
not from a chain the real game would let the agent complete. Each candidate is valued by how much the Crafter
score can gain from it: the score is a geometric mean of (1 + success), so a point of success is worth
1 / (1 + success), and a skill also opens every skill that depends on it: value = (1 + dependants) / (1 + success).
The ``numEnvs // 2`` most valuable targets get two slots each, so each target gets enough steps for its craft
actions to be tried. A skill practised twice without gaining ``STALL_POINTS``, neither in the real game nor in its
own practice env, is set aside while other skills are left.

These rules keep the curriculum from doing harm and make what is practised transfer:

* **No lost skills.** A skill the agent held in the real game (>= LOST_FROM) that fell below LOST_SHARE of its
  best on its weakest seed is lost (wake_up 87 % -> 5 %; one seed's loss hides in the seeds' mean); lost skills
  take the first target places, so they get practice again.
* **Root first.** Practice transfers to the real game only when the agent can earn what the target needs there:
  a candidate stands for its chain, its prerequisites (direct or not) still below CHAIN_PERCENT in the real game
  first, shallowest first, so the places go to the chain's weakest root and the step after it (coal, while the
  table stands at 23 % and the wood pickaxe at 5 %, becomes table and wood-pickaxe practice; the stone pickaxe
  practised with everything handed out while the wood pickaxe stood at 18 % cost the real game 10 points of
  wood pickaxe).
* **Earn it** (a reverse curriculum). A target's practice env starts with every prerequisite handed out (the
  game's ``earn_ladder``, level 0); once the agent reaches EARN_PERCENT in it, the next cycle's env hands out one
  prerequisite fewer (the one earned closest to the skill), down to the real game with only a denser layout;
  below RETREAT_PERCENT it hands one back.

For a game with a level ladder of one skill (Heist), the heuristic picks the stretch of the ladder that matches the
agent's success rate.
"""

from __future__ import annotations

from collections.abc import Collection

from ..contracts import CycleDesign, CycleFeedback, CycleHistory, DesignRequest
from ..games import CatalogueEnv, Game
from ..games import game as game_of
from ..spec import DesignerType
from .base import env_findings, is_copy, unique_names
from .catalogue import spread
from .progress import latest_success, lost_skills, success_of

REACH_PERCENT = 10.0
STALL_POINTS = 1.0  # success points a practised skill must gain, in the real game or its own env, to keep its slot
SLOTS_PER_TARGET = 2
EARN_PERCENT = 50.0  # in-env success at which a practice env hands out one prerequisite fewer
RETREAT_PERCENT = 5.0  # in-env success below which it hands one back
CHAIN_PERCENT = 50.0  # real-game success below which a target's prerequisite is practised instead of it


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


def ladder_of(game: Game, skill: str) -> tuple[CatalogueEnv, ...]:
    """A skill's practice envs, everything handed out first (one env when the game has no earn ladder)."""
    if game.earn_ladder is not None:
        return game.earn_ladder(skill)
    return tuple(c for c in game.catalogue if c.skills[0] == skill)


def _practised(game: Game, design_envs: Collection[str], skill: str) -> tuple[int, str] | None:
    """The earn level and env name of a skill's practice env among a design's env names (None when absent)."""
    for level, entry in enumerate(ladder_of(game, skill)):
        if any(is_copy(name, entry.env.name) for name in design_envs):
            return level, entry.env.name
    return None


def practised_skills(game: Game, design_envs: Collection[str]) -> set[str]:
    """The skills whose practice envs (at any earn level) are among a design's env names."""
    return {s for s in game.skills if _practised(game, design_envs, s) is not None}


def _practice_rate(feedback: CycleFeedback, env_name: str, skill: str) -> float:
    """The skill's best success in its own practice env or the env's copies; 0 when it was not there."""
    return max((r.success.get(skill, 0.0) for r in feedback.per_env if is_copy(r.name, env_name)), default=0.0)


def earn_level(game: Game, history: list[CycleHistory], skill: str) -> int:
    """The earn level of a skill's next practice env: the level it last practised at, one up once the agent
    reached EARN_PERCENT there, one down below RETREAT_PERCENT; 0 when it was never practised."""
    top = len(ladder_of(game, skill)) - 1
    for h in reversed(history):
        found = _practised(game, [e.name for e in h.design.envs], skill)
        if found is None:
            continue
        level, name = found
        rate = _practice_rate(h.feedback, name, skill)
        if rate >= EARN_PERCENT:
            return min(level + 1, top)
        return max(level - 1, 0) if rate < RETREAT_PERCENT else level
    return 0


def practice_env(game: Game, history: list[CycleHistory], skill: str) -> CatalogueEnv:
    """The practice env a skill gets next cycle: its earn ladder at ``earn_level``."""
    return ladder_of(game, skill)[earn_level(game, history, skill)]


def stalled(game: Game, history: list[CycleHistory]) -> set[str]:
    """Skills whose last two practices gained less than STALL_POINTS, both in the real game and in their own env."""
    out: set[str] = set()
    for skill in game.skills:
        cycles = [(h, found) for h in history if (found := _practised(game, [e.name for e in h.design.envs], skill))][
            -2:
        ]
        if len(cycles) < 2:
            continue
        (first, (_, first_env)), (second, (_, second_env)) = cycles
        real_gain = success_of(second.feedback)[skill] - success_of(first.feedback)[skill]
        env_gain = _practice_rate(second.feedback, second_env, skill) - _practice_rate(first.feedback, first_env, skill)
        if max(real_gain, env_gain) < STALL_POINTS:
            out.add(skill)
    return out


def curriculum(game: Game, success: dict[str, float], n: int, stall: Collection[str] = ()) -> list[str]:
    """``n`` distinct targets among the reachable skills and those one step ahead, most valuable first.

    Reachability and value follow the real-game ``success``; ties go to the shallower skill, then the game's
    order. Stalled skills go last, so they come back only when nothing else is left.
    """
    candidates = [s for s in game.skills if reachable(game, success, s) or one_step_ahead(game, success, s)]
    ranked = sorted(
        candidates, key=lambda s: (s in stall, -value(game, success, s), game.depth(s), game.skills.index(s))
    )
    return ranked[:n]


def weak_chain(game: Game, success: dict[str, float], skill: str, stall: Collection[str] = ()) -> list[str]:
    """A skill's chain as practice should climb it: the prerequisites (direct or not) still below CHAIN_PERCENT in
    the real game and not set aside, then the skill, shallowest first (the weaker first among equals)."""
    weak = [p for p in game.requires(skill) if success[p] < CHAIN_PERCENT and p not in stall]
    return [*sorted(weak, key=lambda p: (game.depth(p), success[p], game.skills.index(p))), skill]


def _pick(game: Game, success: dict[str, float], lost: list[str], stall: set[str], n: int) -> list[str]:
    first = lost[: max(1, n // 2)]
    ranked = curriculum(game, success, len(game.skills), stall)
    return list(dict.fromkeys([*first, *(s for c in ranked for s in weak_chain(game, success, c, stall))]))[:n]


def targets(game: Game, history: list[CycleHistory], n: int) -> list[str]:
    """``n`` targets: the lost skills first (at most half the places, at least one), then the curriculum's
    candidates, each standing for its ``weak_chain`` (the weak prerequisites first, shallowest first)."""
    return _pick(game, latest_success(history), list(lost_skills(game, history)), stalled(game, history), n)


def _practise(game: Game, history: list[CycleHistory], n: int) -> tuple[list[CatalogueEnv], str]:
    success, lost, stall = latest_success(history), list(lost_skills(game, history)), stalled(game, history)
    chosen = _pick(game, success, lost, stall, max(1, n // SLOTS_PER_TARGET))
    levels = {t: earn_level(game, history, t) for t in chosen}
    picked = spread(tuple(ladder_of(game, t)[levels[t]] for t in chosen), n)
    note = "heuristic: practising " + ", ".join(
        f"{t} ({success[t]:.0f}% in the game, earn level {levels[t]})" for t in chosen
    )
    if lost:
        note += "; lost (fell below half its best in the game): " + ", ".join(lost)
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
