"""The game descriptor: every fact about one game that the designers, the report and the trainer read."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from ..envconfig import CrafterEnvConfig, DesignedEnv, HeistEnvConfig

GameName = Literal["crafter", "heist"]
ConfigModel = CrafterEnvConfig | HeistEnvConfig

# Seeds given to game engines are reduced modulo this (the largest value procgen and numpy accept everywhere).
SEED_MODULUS = 2**31 - 1


@dataclass(frozen=True)
class CatalogueEnv:
    """A hand-written env and the skills it trains."""

    env: DesignedEnv
    skills: tuple[str, ...]


@dataclass(frozen=True)
class Game:
    """What the project knows of one game.

    ``curriculum`` says how the catalogue is organised: ``skills`` has one practice env per skill (chosen by
    skill, walked along ``prerequisites``); ``ladder`` has levels of rising difficulty (chosen by env name).
    """

    name: GameName
    title: str  # the name used in prompts and reports
    skills: tuple[str, ...]  # the skills evaluation reports, in report order
    skill_text: str  # one line per skill, for prompts
    num_actions: int  # the discrete action space
    score_of: Callable[[Mapping[str, float]], float]  # success percent per skill -> score percent
    config_model: type[ConfigModel]  # the env config; its default instance is the unmodified game
    answer_fields: tuple[str, ...]  # the config fields a designer writes
    setting_text: Mapping[str, str]  # one line per answer field (and per nested setting) for prompts
    control: str  # what a designer controls, for prompts
    rules: tuple[str, ...]  # the world's rules, for prompts
    feedback_rules: tuple[str, ...]  # rules added once the agent has trained
    skill_words: tuple[str, ...]  # words that show a purpose names a skill of the game
    gives_away: Callable[[ConfigModel], bool]  # True when an env hands out what the agent should learn
    given_away_text: str  # what such an env hands out
    catalogue: tuple[CatalogueEnv, ...]  # hand-written envs, easy to hard
    curriculum: Literal["skills", "ladder"]
    prerequisites: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # direct prerequisites per skill
    skill_noun: str = "skill"  # what a skill is called in reports
    # ``skills`` games: a skill's practice envs from everything handed out to nothing handed out (earn-it practice)
    earn_ladder: Callable[[str], tuple[CatalogueEnv, ...]] | None = None

    def score(self, success_percent: Mapping[str, float]) -> float:
        """The game's score (percent) from success rates (percent per skill)."""
        return self.score_of(success_percent)

    def depth(self, skill: str) -> int:
        """Length of the longest prerequisite chain below a skill (0 for independent ones)."""
        parents = self.prerequisites.get(skill, ())
        return 0 if not parents else 1 + max(self.depth(p) for p in parents)

    def requires(self, skill: str) -> set[str]:
        """Every skill below a skill in the prerequisite graph (direct prerequisites and theirs)."""
        return {r for p in self.prerequisites.get(skill, ()) for r in (p, *self.requires(p))}

    def choice(self, entry: CatalogueEnv) -> str:
        """How a designer names a catalogue entry: its skill (``skills``) or its env name (``ladder``)."""
        return entry.skills[0] if self.curriculum == "skills" else entry.env.name
