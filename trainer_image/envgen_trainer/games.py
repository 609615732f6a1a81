"""The trainer's side of each game: how to build its environments, keyed by the names of ``envgen.games``.

A built-in game has its env module here (the old gym interface of ``vecenv.GymLikeEnv``) and one entry below;
another package's game is found through its ``envgen.games`` entry point (its module's ``TRAINER_GAME``), or
registered with :func:`register`. Env modules are imported when an env is built, inside the vector env's workers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import entry_points
from types import MappingProxyType
from typing import TYPE_CHECKING

from envgen.envconfig import CrafterEnvConfig, HeistEnvConfig
from envgen.games import ENTRY_POINT_GROUP, ConfigModel

if TYPE_CHECKING:
    from .vecenv import GymLikeEnv

MakeEnv = Callable[[ConfigModel | None, int], "GymLikeEnv"]


@dataclass(frozen=True)
class TrainerGame:
    """How the trainer builds one game's environments."""

    name: str
    obs_shape: tuple[int, int, int]  # one observation: height, width, channels (uint8)
    make_env: MakeEnv  # a training env from a config (None: the game's standard config) and a seed
    make_eval_env: MakeEnv  # the unmodified game, for evaluation
    game_config: Callable[[Sequence[ConfigModel]], ConfigModel | None]  # the real game, given the designed configs


def _crafter(config: ConfigModel | None, seed: int) -> GymLikeEnv:
    from .crafter_env import ConfigurableCrafter

    assert config is None or isinstance(config, CrafterEnvConfig)
    return ConfigurableCrafter(config, seed=seed, semantic=False)  # the trainer never reads info["semantic"]


def _crafter_stock(config: ConfigModel | None, seed: int) -> GymLikeEnv:
    import crafter

    env: GymLikeEnv = crafter.Env(seed=seed)
    return env


def _heist(config: ConfigModel | None, seed: int) -> GymLikeEnv:
    from .heist_env import HeistEnv

    assert config is None or isinstance(config, HeistEnvConfig)
    return HeistEnv(config, seed=seed)


def _heist_game(designed: Sequence[ConfigModel]) -> HeistEnvConfig:
    """Heist's standard distribution in the designed envs' mode (easy when there are none)."""
    modes = [c.distribution_mode for c in designed if isinstance(c, HeistEnvConfig)]
    return HeistEnvConfig(distribution_mode=modes[0] if modes else "easy")


_GAMES: dict[str, TrainerGame] = {
    g.name: g
    for g in (
        TrainerGame("crafter", (64, 64, 3), _crafter, _crafter_stock, lambda designed: None),
        TrainerGame("heist", (64, 64, 3), _heist, _heist, _heist_game),
    )
}
TRAINER_GAMES: Mapping[str, TrainerGame] = MappingProxyType(_GAMES)


def register(game: TrainerGame) -> TrainerGame:
    """Add a game's trainer side (again with the same one: nothing changes); returns it."""
    if _GAMES.get(game.name, game) is not game:
        raise ValueError(f"a different trainer game named {game.name!r} is registered already")
    _GAMES[game.name] = game
    return game


def trainer_game(name: str) -> TrainerGame:
    """The trainer's side of a game by name, looked up in the ``envgen.games`` entry points when not registered
    (KeyError names the known games)."""
    if name not in _GAMES:
        for ep in entry_points(group=ENTRY_POINT_GROUP, name=name):
            register(import_module(ep.value).TRAINER_GAME)
    try:
        return _GAMES[name]
    except KeyError:
        raise KeyError(f"unknown game {name!r}; known: {', '.join(_GAMES)}") from None
