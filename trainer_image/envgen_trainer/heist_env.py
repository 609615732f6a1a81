"""Procgen Heist behind the same old-gym interface as Crafter (``reset() -> obs``, ``step(a) -> 4-tuple``).

A stock ``HeistEnvConfig`` is the standard distribution of its mode (all levels). A config with a key count
or maze size runs on the matching levels of the seed catalogue: every episode starts from the saved initial
state of a randomly chosen matching level. Episode success is reported as the ``heist_success`` achievement.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from envgen.envconfig import HeistEnvConfig
from envgen.games import HEIST, SEED_MODULUS

from .heist_catalogue import HeistCatalogue

SUCCESS = HEIST.skills[0]
NUM_ACTIONS = HEIST.num_actions


class HeistEnv:
    """One Heist environment (procgen, one instance)."""

    num_actions = NUM_ACTIONS

    def __init__(self, config: HeistEnvConfig | None = None, seed: int = 0) -> None:
        from procgen import ProcgenGym3Env

        self.config = config or HeistEnvConfig()
        self._env = ProcgenGym3Env(
            num=1,
            env_name="heist",
            distribution_mode=self.config.distribution_mode,
            start_level=0,
            num_levels=0,
            rand_seed=int(seed) % SEED_MODULUS,
        )
        self._rng = np.random.RandomState(seed % SEED_MODULUS)
        self._levels: list[bytes] = []
        if not self.config.is_stock():
            self._levels = HeistCatalogue(self.config.distribution_mode).states(
                self.config.num_keys, self.config.maze_size
            )
        self._pending: npt.NDArray[np.uint8] | None = None

    def _observe(self) -> npt.NDArray[np.uint8]:
        _, obs, _ = self._env.observe()
        return np.asarray(obs["rgb"][0])

    def reset(self) -> npt.NDArray[np.uint8]:
        """Start an episode: a matching level for a designed config, procgen's next level otherwise."""
        if self._levels:
            state = self._levels[self._rng.randint(len(self._levels))]
            self._env.callmethod("set_state", [state])
            self._pending = None
            return self._observe()
        obs = self._pending if self._pending is not None else self._observe()
        self._pending = None
        return obs

    def step(self, action: int) -> tuple[npt.NDArray[np.uint8], float, bool, dict[str, Any]]:
        """One step; at the episode's end ``info['achievements']`` says whether the gem was stolen."""
        self._env.act(np.array([action], dtype=np.int32))
        reward, obs, first = self._env.observe()
        done = bool(first[0])
        info: dict[str, Any] = {}
        if done:
            complete = int(self._env.get_info()[0]["prev_level_complete"])
            info["achievements"] = {SUCCESS: complete}
            self._pending = np.asarray(obs["rgb"][0])
        return np.asarray(obs["rgb"][0]), float(reward[0]), done, info

    def close(self) -> None:
        """Release the procgen instance."""
        self._env.close()
