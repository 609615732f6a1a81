"""One descriptor per game: the facts that the designers, the report and the trainer all read.

Adding a game means one new descriptor here (plus its environment in the trainer): skills, the action count,
how a score is computed from success rates, and the text that tells an LLM what the skills mean.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from .achievements import ACHIEVEMENTS, crafter_score

GameName = Literal["crafter", "heist"]

# Seeds given to game engines are reduced modulo this (the largest value procgen and numpy accept everywhere).
SEED_MODULUS = 2**31 - 1

HEIST_SUCCESS = "heist_success"


@dataclass(frozen=True)
class Game:
    """What the project knows of one game."""

    name: GameName
    title: str  # the name used in prompts and reports
    skills: tuple[str, ...]  # the skills evaluation reports, in report order
    skill_text: str  # one line per skill, for prompts
    num_actions: int  # the discrete action space
    score_of: Callable[[Mapping[str, float]], float]  # success percent per skill -> score percent

    def score(self, success_percent: Mapping[str, float]) -> float:
        """The game's score (percent) from success rates (percent per skill)."""
        return self.score_of(success_percent)


def _heist_score(success_percent: Mapping[str, float]) -> float:
    return float(success_percent.get(HEIST_SUCCESS, 0.0))


CRAFTER = Game(
    name="crafter",
    title="Crafter",
    skills=ACHIEVEMENTS,
    skill_text="\n".join(ACHIEVEMENTS),
    num_actions=17,
    score_of=crafter_score,
)

HEIST = Game(
    name="heist",
    title="Heist",
    skills=(HEIST_SUCCESS,),
    skill_text=f"{HEIST_SUCCESS}: steal the gem",
    num_actions=15,
    score_of=_heist_score,
)

GAMES: Mapping[str, Game] = {g.name: g for g in (CRAFTER, HEIST)}


def game(name: str) -> Game:
    """The descriptor of a game by name (KeyError names the known games)."""
    try:
        return GAMES[name]
    except KeyError:
        raise KeyError(f"unknown game {name!r}; known: {', '.join(GAMES)}") from None
