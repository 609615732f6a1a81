"""The pipe vector env: mixed configs, auto-reset with episode stats, clean shutdown."""

from __future__ import annotations

import numpy as np
import pytest

from envgen.envconfig import CrafterEnvConfig
from envgen_trainer.vecenv import EnvSpec, VecEnv


def test_mixed_configs_autoreset_and_shutdown() -> None:
    short = CrafterEnvConfig.model_validate({"world_settings": {"length": 16}})
    specs = [
        EnvSpec("crafter", 1, "short", short),
        EnvSpec("crafter", 2, "short", short),
        EnvSpec("crafter", 3, "stock", stock=True),
    ]
    vec = VecEnv(specs, num_workers=2)
    procs = list(vec._procs)
    obs = vec.reset()
    assert obs.shape == (3, 64, 64, 3) and obs.dtype == np.uint8
    episodes = []
    for _ in range(16):
        obs, _rewards, dones, finished = vec.step(np.zeros(3, np.int64))
        episodes += finished
    assert dones.tolist() == [True, True, False]
    assert sorted(ep.slot for ep in episodes) == [0, 1] and all(ep.length == 16 for ep in episodes)
    assert all(ep.label == "short" for ep in episodes)
    vec.close()
    assert not any(p.is_alive() for p in procs)


def test_workers_stop_when_the_body_raises() -> None:
    procs = []
    with pytest.raises(RuntimeError), VecEnv([EnvSpec("crafter", 1)], num_workers=1) as vec:
        procs = list(vec._procs)
        raise RuntimeError("boom")
    assert procs and not any(p.is_alive() for p in procs)
