"""The game descriptors agree with the real games they describe."""

from __future__ import annotations

import crafter
import pytest

from envgen.achievements import crafter_score
from envgen.games import CRAFTER, GAMES, HEIST, game


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
