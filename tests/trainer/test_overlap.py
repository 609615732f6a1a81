"""``agent.overlap``: the next rollout is collected in a background thread, with the policy from before the update
that runs meanwhile; the bookkeeping is that of the plain loop, errors reach the caller, and no thread is left."""

from __future__ import annotations

import copy
import threading
from typing import Any

import numpy as np
import pytest
import torch

from envgen.envconfig import CrafterEnvConfig
from envgen.spec import AgentSpec
from envgen_trainer.ppo import PPO, IterationStats, PPOArgs
from envgen_trainer.vecenv import EnvSpec, Episode, VecEnv, VecEnvError


class FakeVecEnv:
    """An in-process stand-in for ``VecEnv`` whose frames and episodes do not depend on the actions: the frames
    of step call k are drawn from seed k, env i's episodes last ``episode + i`` steps; call ``fail_at`` raises."""

    def __init__(self, num_envs: int = 3, episode: int = 5, fail_at: int | None = None) -> None:
        self.num_envs, self.episode, self.fail_at = num_envs, episode, fail_at
        self.groups = [range(num_envs)]
        self.calls = 0
        self.lengths = np.zeros(num_envs, dtype=np.int64)
        self.failed_in: threading.Thread | None = None

    def _frames(self) -> np.ndarray:
        return np.random.default_rng(self.calls).integers(0, 255, (self.num_envs, 64, 64, 3), dtype=np.uint8)

    def reset(self) -> np.ndarray:
        return self._frames()

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[Episode]]:
        assert actions.shape == (self.num_envs,)
        self.calls += 1
        if self.calls == self.fail_at:
            self.failed_in = threading.current_thread()
            raise VecEnvError("an env raised")
        self.lengths += 1
        done = self.lengths >= self.episode + np.arange(self.num_envs)
        episodes = [
            Episode(int(i), "fake", float(self.lengths[i]), int(self.lengths[i]), ()) for i in np.flatnonzero(done)
        ]
        self.lengths[done] = 0
        return self._frames(), np.ones(self.num_envs, np.float32), done, episodes


def agent(overlap: bool, **settings: Any) -> PPO:
    torch.manual_seed(0)
    doc = {"numEnvs": 3, "rolloutSteps": 8, "epochs": 1, "minibatches": 1, "device": "cpu", "overlap": overlap}
    return PPO(PPOArgs.from_spec(AgentSpec.model_validate({**doc, **settings})), num_actions=4)


def rollout_logps(overlap: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rollout 2's behaviour log-probs (what its update reads), and those of the policy before and after update 1
    on its frames and actions."""
    ppo = agent(overlap, learningRate="1e-2")
    update, before, batches = ppo._update, [], []

    def recording(*batch: torch.Tensor) -> dict[str, float]:
        before.append(copy.deepcopy(ppo.net.state_dict()))
        batches.append([t.clone() for t in batch[:3]])
        return update(*batch)

    ppo._update = recording
    ppo.train(FakeVecEnv(), 3 * 3 * 8, lambda ep: None, lambda it: None)
    assert len(batches) == 3
    obs, actions, behaviour = batches[1]
    logps = []
    for state in before[:2]:
        net = copy.deepcopy(ppo.net)
        net.load_state_dict(state)
        with torch.no_grad():
            logps.append(net.act(obs, actions)[1])
    return behaviour, logps[0], logps[1]


def test_the_next_rollout_is_collected_by_the_policy_from_before_the_update() -> None:
    """Rollout 2's behaviour log-probs are those of the policy before update 1 with overlap, after it without."""
    for overlap in (True, False):
        behaviour, lagged, newest = rollout_logps(overlap)
        assert (lagged - newest).abs().max() > 1e-3  # update 1 moved the policy on rollout 2's actions
        expected, other = (lagged, newest) if overlap else (newest, lagged)
        assert torch.allclose(behaviour, expected, atol=1e-5), overlap
        assert not torch.allclose(behaviour, other, atol=1e-5), overlap


def bookkeeping(overlap: bool, steps: int) -> tuple[int, int, list[tuple[Any, ...]], PPO]:
    """The steps done, the env step calls and every report in order, with the counters when it came."""
    ppo = agent(overlap)
    vec = FakeVecEnv()
    events: list[tuple[Any, ...]] = []

    def on_episode(ep: Episode) -> None:
        events.append(("episode", ep, ppo.counters.episodes, ppo.counters.global_step))

    def on_iteration(it: IterationStats) -> None:
        assert np.isfinite(it.steps_per_second) and it.losses["rollout_seconds"] >= 0
        events.append(("iteration", it.steps, ppo.counters.episodes, ppo.counters.global_step))

    done = ppo.train(vec, steps, on_episode, on_iteration)
    return done, vec.calls, events, ppo


def test_overlap_keeps_the_bookkeeping_of_the_plain_loop() -> None:
    """The same steps, iterations and episodes, each reported once, in the same order against the counters: an
    episode of the background rollout comes only once the main thread takes that rollout; no rollout beyond the
    budget is started (the last rollout is 2 steps of the 3 envs)."""
    before = set(threading.enumerate())
    steps = 3 * 3 * 8 + 6
    plain_done, plain_calls, plain, plain_agent = bookkeeping(False, steps)
    done, calls, events, ppo = bookkeeping(True, steps)
    assert done == plain_done == steps and calls == plain_calls == steps // 3
    assert events == plain
    assert [e[1] for e in events if e[0] == "iteration"] == [24, 48, 72, 78]
    assert vars(ppo.counters) == vars(plain_agent.counters) == {"global_step": 78, "iterations": 4, "episodes": 12}
    assert set(threading.enumerate()) <= before


@pytest.mark.parametrize("groups", [1, 2])
def test_a_small_crafter_run_with_overlap_learns(groups: int) -> None:
    ppo = agent(True, numEnvs=4, rolloutSteps=64, minibatches=4, envGroups=groups)
    initial = [p.detach().clone() for p in ppo.net.parameters()]
    short = CrafterEnvConfig.model_validate({"world_settings": {"length": 48}})
    episodes: list[Episode] = []
    iterations: list[IterationStats] = []
    before = set(threading.enumerate())
    with VecEnv([EnvSpec("crafter", 7 + i, "e", short) for i in range(4)], num_workers=2) as vec:
        assert len(vec.groups) == 2
        assert ppo.train(vec, 3 * 4 * 64, episodes.append, iterations.append) == 768
    assert set(threading.enumerate()) <= before
    assert [it.steps for it in iterations] == [256, 512, 768]
    assert all(np.isfinite(v) for it in iterations for v in it.losses.values())
    assert any(not torch.equal(a, b) for a, b in zip(initial, ppo.net.parameters(), strict=True))
    # every finished episode reported once: per env they cover its 192 steps but the unfinished last episode's
    assert ppo.counters.episodes == len(episodes) >= 4
    for slot in range(4):
        lengths = [ep.length for ep in episodes if ep.slot == slot]
        assert all(n <= 48 for n in lengths) and 192 - 48 < sum(lengths) <= 192, lengths


def test_an_env_error_in_the_background_reaches_the_caller() -> None:
    before = set(threading.enumerate())
    vec = FakeVecEnv(fail_at=8 + 3)  # step 3 of rollout 2, collected during update 1
    iterations: list[IterationStats] = []
    with pytest.raises(VecEnvError, match="an env raised"):
        agent(True).train(vec, 3 * 3 * 8, lambda ep: None, iterations.append)
    assert vec.failed_in is not None and vec.failed_in is not threading.main_thread()
    assert len(iterations) == 1
    assert set(threading.enumerate()) <= before


def test_a_caller_raising_during_the_background_collection_leaves_no_thread() -> None:
    """``on_iteration`` raising (SIGTERM's ``Stopped``) while rollout 2 is being collected: that error comes
    out, the collection stops, and the env is not stepped after ``train`` returns."""
    before = set(threading.enumerate())
    vec = FakeVecEnv()

    def stop(it: IterationStats) -> None:
        raise RuntimeError("stopped")

    with pytest.raises(RuntimeError, match="stopped"):
        agent(True).train(vec, 10 * 3 * 8, lambda ep: None, stop)
    assert set(threading.enumerate()) <= before
    assert 8 <= vec.calls <= 16  # rollout 1, then at most rollout 2 (stopped after the step under way)
