"""Heist seed catalogue: decoded levels match the asked key count and maze size."""

from __future__ import annotations

from pathlib import Path

import pytest

from envgen.envconfig import HeistEnvConfig
from envgen_trainer.heist_catalogue import HeistCatalogue, decode_state
from envgen_trainer.heist_env import HeistEnv


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ENVGEN_CACHE", str(tmp_path))
    return tmp_path


def test_catalogue_matches_and_is_cached(cache: Path) -> None:
    catalogue = HeistCatalogue("easy")
    found = catalogue.matching(num_keys=2, maze_size=7, minimum=3)
    assert len(found) >= 3
    for level, state in found:
        assert (level.num_keys, level.world_dim, level.maze_size) == (2, 9, 7)
        assert decode_state(state) == (2, 9, 7)
    assert {lv.maze_size for lv in catalogue.levels} <= {5, 7, 9}
    assert {lv.num_keys for lv in catalogue.levels} == {0, 1, 2, 3}
    path = cache / "heist-catalogue" / "easy.npz"
    assert path.exists()
    again = HeistCatalogue("easy")
    assert [lv.seed for lv in again.levels] == [lv.seed for lv in catalogue.levels]


def test_designed_heist_env_plays_matching_levels(cache: Path) -> None:
    env = HeistEnv(HeistEnvConfig(distribution_mode="easy", num_keys=0, maze_size=5), seed=1)
    for _ in range(3):
        env.reset()
        assert decode_state(bytes(env._env.callmethod("get_state")[0])) == (0, 9, 5)
        obs, reward, done, _ = env.step(4)
        assert obs.shape == (64, 64, 3) and not done and reward == 0.0
    env.close()
