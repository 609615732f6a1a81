"""Procgen Heist: one skill (steal the gem), a ladder of levels from a 5x5 maze without keys to the standard hard
distribution."""

from __future__ import annotations

from collections.abc import Mapping

from ..envconfig import DesignedEnv, HeistEnvConfig
from .base import CatalogueEnv, ConfigModel, Game

SUCCESS = "heist_success"
SETTINGS: tuple[str, ...] = tuple(n for n in HeistEnvConfig.model_fields if n != "game")

SETTING_TEXT: dict[str, str] = {
    "distribution_mode": "easy = 9x9 world, hard = 13x13 world, memory = 23x23 world seen through a small window",
    "num_keys": "number of keys (each opens the lock of its colour) in the level; null = any",
    "maze_size": "side of the maze in tiles; null = any size the mode allows",
}

RULES = (
    "The agent must steal the gem; collecting it gives reward 10 and ends the episode.",
    "Locks (blue, green, red) block the way to the gem; each opens with the key of its colour.",
    "A maze of size m has difficulty d = (m - 5) / 2 and d or d + 1 keys (at most 3), except in memory mode.",
    "maze_size must fit in the world of the distribution_mode (9, 13 or 23 tiles).",
    "Episodes time out after 1000 steps.",
)

SKILL_WORDS = ("heist", "gem", "key", "lock", "door", "maze", "navigat", "steal", "explor")


def gives_away(cfg: ConfigModel) -> bool:
    """True for a 5x5 maze without keys."""
    assert isinstance(cfg, HeistEnvConfig)
    return cfg.maze_size == 5 and not cfg.num_keys


def _score(success_percent: Mapping[str, float]) -> float:
    return float(success_percent.get(SUCCESS, 0.0))


# (distribution_mode, maze_size, num_keys), easy to hard; each is a level Heist can generate.
_LEVELS: tuple[tuple[str, int | None, int | None], ...] = (
    ("easy", 5, 0),
    ("easy", 5, 1),
    ("easy", 7, 1),
    ("easy", 7, 2),
    ("easy", 9, 2),
    ("easy", 9, 3),
    ("hard", 11, 3),
    ("hard", 13, None),
    ("hard", None, None),
)


def _heist_env(mode: str, maze: int | None, keys: int | None) -> CatalogueEnv:
    maze_text = f"{maze}x{maze} maze" if maze else "maze of any size"
    keys_text = "any number of keys" if keys is None else f"{keys} key{'s' if keys != 1 else ''}"
    env = DesignedEnv(
        name=f"{mode}-maze{maze or 'any'}-keys{'any' if keys is None else keys}",
        purpose=f"Steal the gem in a {maze_text} with {keys_text} ({mode} world).",
        config=HeistEnvConfig.model_validate({"distribution_mode": mode, "maze_size": maze, "num_keys": keys}),
    )
    return CatalogueEnv(env=env, skills=(SUCCESS,))


LADDER: tuple[CatalogueEnv, ...] = tuple(_heist_env(*level) for level in _LEVELS)


HEIST = Game(
    name="heist",
    title="Heist",
    skills=(SUCCESS,),
    skill_text=f"{SUCCESS}: steal the gem",
    num_actions=15,
    score_of=_score,
    config_model=HeistEnvConfig,
    answer_fields=SETTINGS,
    setting_text=SETTING_TEXT,
    control="the world size, the maze size and the number of keys",
    rules=RULES,
    feedback_rules=(),
    skill_words=SKILL_WORDS,
    gives_away=gives_away,
    given_away_text="a 5x5 maze without keys",
    catalogue=LADDER,
    curriculum="ladder",
)
