"""The game descriptor: every fact about one game that the designers, the report and the trainer read."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import import_module
from importlib.metadata import entry_points
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, GetJsonSchemaHandler, PlainValidator
from pydantic.json_schema import JsonSchemaValue

from ..envconfig import DesignedEnv, GameConfig

ENTRY_POINT_GROUP = "envgen.games"
_REGISTRY: dict[str, Game] = {}
_discovered = False


def register(game: Game) -> Game:
    """Add a game to the registry (again with the same descriptor: nothing changes); returns it."""
    known = _REGISTRY.get(game.name)
    if known is not None and known is not game:
        raise ValueError(f"a different game named {game.name!r} is registered already")
    if not issubclass(game.config_model, GameConfig):
        raise TypeError(f"game {game.name!r}: its config model must derive from envgen.envconfig.GameConfig")
    _REGISTRY[game.name] = game
    return game


def registry() -> Mapping[str, Game]:
    """Every registered game by name, in registration order: the one list of games. The first call also
    registers other packages' games: each entry point of the group ``envgen.games`` names a module with ``GAME``."""
    global _discovered
    if not _discovered:
        _discovered = True
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            register(import_module(ep.value).GAME)
    return _REGISTRY


def one_of(names: Iterable[str]) -> str:
    """``'crafter' or 'heist'`` (pydantic's wording for the values a field allows)."""
    quoted = [repr(n) for n in names]
    if len(quoted) <= 1:
        return "".join(quoted)
    return f"{', '.join(quoted[:-1])} or {quoted[-1]}"


class _RegisteredEnum:
    """The JSON schema of :data:`GameName`: an enum of the registered games (the CRD's ``spec.game``)."""

    def __get_pydantic_json_schema__(self, schema: Any, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return {"enum": list(registry()), "type": "string"}


def _registered_name(value: Any) -> str:
    games = registry()
    if not isinstance(value, str) or value not in games:
        raise ValueError(f"must be one of {one_of(games)}, got {value!r}")
    return value


GameName = Annotated[str, PlainValidator(_registered_name), _RegisteredEnum()]
"""The name of a registered game; anything else is an error listing the registered ones."""
ConfigModel = GameConfig


class _Named(BaseModel):
    model_config = ConfigDict(extra="ignore")

    game: GameName


def registered_config(value: Any) -> GameConfig:
    """An env config, validated by the config model of the registered game its ``game`` field names."""
    if isinstance(value, GameConfig):  # validated by its model already; a game's module builds its catalogue
        known = registry().get(value.game)  # before the game is registered
        if known is None or isinstance(value, known.config_model):
            return value
        value = value.model_dump()
    if not isinstance(value, dict):
        raise ValueError(f"must be a mapping with a game field, got {type(value).__name__}")
    name = _Named.model_validate({k: v for k, v in value.items() if k == "game"}).game
    return registry()[name].config_model.model_validate(value)


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
