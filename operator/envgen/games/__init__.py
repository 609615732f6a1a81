"""The games: one descriptor per game (``crafter``, ``heist``) in a module of its own, and their registry.

Adding a game means a new module here with its descriptor, its name in ``GameName``, its env config in
``envconfig``, and its environments in the trainer's registry (``envgen_trainer.games``).
"""

from __future__ import annotations

from collections.abc import Mapping

from .base import SEED_MODULUS, CatalogueEnv, ConfigModel, Game, GameName
from .crafter import CRAFTER
from .heist import HEIST

__all__ = ["CRAFTER", "GAMES", "HEIST", "SEED_MODULUS", "CatalogueEnv", "ConfigModel", "Game", "GameName", "game"]

GAMES: Mapping[str, Game] = {g.name: g for g in (CRAFTER, HEIST)}


def game(name: str) -> Game:
    """The descriptor of a game by name (KeyError names the known games)."""
    try:
        return GAMES[name]
    except KeyError:
        raise KeyError(f"unknown game {name!r}; known: {', '.join(GAMES)}") from None
