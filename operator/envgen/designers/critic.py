"""The design critic: findings that make a schema-valid set of environments weak as a curriculum.

* ``duplicate-envs``: two environments with the same config.
* ``everything-given-away``: most environments hand out the end of the tech tree (Crafter: an iron pickaxe, an
  iron sword or diamonds; Heist: a 5x5 maze without keys), so nothing is left to learn.
* ``purpose-names-no-skill``: a purpose that names none of the game's skills.
* ``unchanged-after-feedback``: an environment copied unchanged from the previous cycle.
* ``lost-skill``: the agent lost a skill it held in the real game (``progress.lost_skills``) and no environment's
  purpose names it, so nothing gives it practice again.
* the per-env ``check()`` warnings (biome/resource contradictions such as coal in grassland).

All are warnings: the LLM designer asks for one repair with these reasons and records them either way.
"""

from __future__ import annotations

import re
from functools import cache

from ..contracts import DesignRequest
from ..envconfig import DesignedEnv, Finding
from ..games import GameName
from ..games import game as game_of
from .base import env_findings
from .progress import lost_skills, weakest_seed_now


@cache
def _skill_re(game: GameName) -> re.Pattern[str]:
    words = sorted(game_of(game).skill_words, key=len, reverse=True)
    return re.compile(r"\b(" + "|".join(re.escape(w) for w in words) + ")", re.I)


def gives_away(env: DesignedEnv) -> bool:
    """True when the env hands out what the agent should learn to get."""
    return game_of(env.config.game).gives_away(env.config)


def names_a_skill(env: DesignedEnv) -> bool:
    """True when the purpose names at least one of the game's skills."""
    return bool(_skill_re(env.config.game).search(env.purpose))


def critique(envs: list[DesignedEnv], request: DesignRequest) -> list[Finding]:
    """Every weakness of a design (warnings only); an empty list means no complaints."""
    found: list[Finding] = []

    def add(code: str, message: str) -> None:
        found.append(Finding(code=code, severity="warning", message=message))

    for i, env in enumerate(envs):
        for other in envs[:i]:
            if other.config == env.config:
                add("duplicate-envs", f"{env.name}: same settings as {other.name}")
                break
    given = [e.name for e in envs if gives_away(e)]
    if envs and 2 * len(given) > len(envs):
        what = game_of(request.game).given_away_text
        add(
            "everything-given-away",
            f"{len(given)} of {len(envs)} environments hand out {what} ({', '.join(given)}): nothing is left to learn",
        )
    for env in envs:
        if not names_a_skill(env):
            add("purpose-names-no-skill", f"{env.name}: the purpose {env.purpose!r} names no skill of the game")
    if request.history:
        previous = request.history[-1].design.envs
        for env in envs:
            same = next((p for p in previous if p.config == env.config), None)
            if same is not None:
                add(
                    "unchanged-after-feedback",
                    f"{env.name}: copied unchanged from the previous cycle's {same.name} despite the feedback",
                )
        game = game_of(request.game)
        history = list(request.history)
        now = weakest_seed_now(history)
        for skill, best in lost_skills(game, history).items():
            if not any(re.search(rf"\b{skill}\b", env.purpose) for env in envs):
                add(
                    "lost-skill",
                    f"{skill} fell from {best:.0f}% to {now[skill]:.0f}% in the real game (weakest seed) and no "
                    "environment practises it",
                )
    return found + [f for f in env_findings(envs) if f.severity == "warning"]
