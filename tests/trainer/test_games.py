"""The game descriptors agree with the real games they describe, and the trainer builds every registered game."""

from __future__ import annotations

import crafter
import numpy as np
import pytest
import torch
from pydantic import TypeAdapter

from envgen.achievements import crafter_score
from envgen.games import CRAFTER, GAMES, HEIST, GameName, game
from envgen_trainer.games import TRAINER_GAMES, trainer_game
from envgen_trainer.networks import ActorCritic


def test_crafter_descriptor_matches_the_real_game() -> None:
    env = crafter.Env()
    assert CRAFTER.num_actions == env.action_space.n
    env.reset()
    _, _, _, info = env.step(0)
    assert set(CRAFTER.skills) == set(info["achievements"])
    assert len(CRAFTER.skills) == 22


def test_heist_descriptor_matches_procgen() -> None:
    from procgen import ProcgenGym3Env

    env = ProcgenGym3Env(num=1, env_name="heist")
    assert HEIST.num_actions == env.ac_space.eltype.n


def test_scores_come_from_the_descriptor() -> None:
    success = {name: 10.0 for name in CRAFTER.skills}
    assert CRAFTER.score(success) == pytest.approx(crafter_score(success))
    assert HEIST.score({"heist_success": 42.0}) == 42.0
    assert HEIST.score({}) == 0.0


def test_lookup_names_the_known_games() -> None:
    assert game("heist") is HEIST
    assert set(GAMES) == {"crafter", "heist"}
    with pytest.raises(KeyError, match="known: crafter, heist"):
        game("pong")


def test_both_sides_name_the_same_games() -> None:
    assert set(TRAINER_GAMES) == set(GAMES) == set(TypeAdapter(GameName).json_schema()["enum"])
    assert all(name == g.name for name, g in TRAINER_GAMES.items())


@pytest.mark.parametrize("name", sorted(TRAINER_GAMES))
def test_trainer_side_builds_the_game(name: str) -> None:
    side, descriptor = trainer_game(name), game(name)
    designed = descriptor.catalogue[0].env.config
    real = side.game_config([designed])
    assert all(c is None or c.game == name for c in (real, side.game_config([])))
    for env in (side.make_env(designed, 1), side.make_env(real, 2), side.make_eval_env(real, 3)):
        obs = np.asarray(env.reset())
        assert obs.shape == side.obs_shape and obs.dtype == np.uint8
        obs, _, _, _ = env.step(descriptor.num_actions - 1)
        assert np.asarray(obs).shape == side.obs_shape
    action, *_ = ActorCritic("nature", descriptor.num_actions).act(torch.zeros((2, *side.obs_shape), dtype=torch.uint8))
    assert action.shape == (2,)
