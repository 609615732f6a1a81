"""The games: one descriptor per game in a module of its own, and their registry, the one list of games.

Adding a game means one module: its env config (a :class:`GameConfig`), its descriptor (a :class:`Game`), and
for the trainer a ``TrainerGame`` (``envgen_trainer.games``). The built-in games are registered below; another
package's game by an entry point in the group ``envgen.games`` naming its module (which has ``GAME`` and, for
the trainer, ``TRAINER_GAME``), or by calling :func:`register`. ``GameName`` (the spec's ``game``, the CRD's
enum) and the env-config union (``envconfig.EnvConfig``) read this registry.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from ..envconfig import GameConfig
from .base import ENTRY_POINT_GROUP, SEED_MODULUS, CatalogueEnv, ConfigModel, Game, GameName, register, registry
from .crafter import CRAFTER
from .heist import HEIST

__all__ = [
    "CRAFTER",
    "ENTRY_POINT_GROUP",
    "GAMES",
    "HEIST",
    "SEED_MODULUS",
    "CatalogueEnv",
    "ConfigModel",
    "Game",
    "GameConfig",
    "GameName",
    "game",
    "register",
]


class _Games(Mapping[str, Game]):
    """A read-only view of the registry."""

    def __getitem__(self, name: str) -> Game:
        return registry()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(registry())

    def __len__(self) -> int:
        return len(registry())


GAMES: Mapping[str, Game] = _Games()
"""Every registered game by name."""


def game(name: str) -> Game:
    """The descriptor of a game by name (KeyError names the known games)."""
    try:
        return GAMES[name]
    except KeyError:
        raise KeyError(f"unknown game {name!r}; known: {', '.join(GAMES)}") from None


for _game in (CRAFTER, HEIST):
    register(_game)
