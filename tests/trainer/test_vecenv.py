"""The shared-memory vector env: mixed configs, auto-reset with episode stats, clean shutdown, lost workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from envgen.envconfig import CrafterEnvConfig, HeistEnvConfig
from envgen_trainer.vecenv import EnvSpec, Episode, VecEnv, VecEnvError, make_env

pytestmark = pytest.mark.timeout(600)  # a worker that is never woken would hang the caller, not fail it


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


def test_rollout_identical_to_stepping_the_envs_in_process() -> None:
    """Frames, rewards, dones and episodes equal those of the same envs stepped one by one here (the spare envs
    that prepare the next worlds in the workers change nothing), and a step's frames survive the next step."""
    short = CrafterEnvConfig.model_validate({"world_settings": {"length": 16}})
    specs = [
        EnvSpec("crafter", 11, "a", short),
        EnvSpec("crafter", 13, "c", CrafterEnvConfig.model_validate({"world_settings": {"length": 17}})),
        EnvSpec("crafter", 14, "game"),
    ]
    envs = [make_env(s) for s in specs]
    returns, lengths = [0.0] * len(envs), [0] * len(envs)
    rng = np.random.default_rng(0)
    with VecEnv(specs, num_workers=2) as vec:
        obs = vec.reset()
        assert np.array_equal(obs, np.stack([e.reset() for e in envs]))
        finished = 0
        for _ in range(50):
            actions = rng.integers(17, size=len(envs))
            view, kept = obs, obs.copy()
            obs, rewards, dones, episodes = vec.step(actions)
            assert np.array_equal(view, kept)  # the previous frames are still there
            expected_eps = []
            for i, (env, action) in enumerate(zip(envs, actions, strict=True)):
                frame, reward, done, info = env.step(int(action))
                returns[i] += reward
                lengths[i] += 1
                assert (np.float32(reward), done) == (rewards[i], dones[i])
                if done:
                    unlocked = tuple(sorted(k for k, v in info["achievements"].items() if v > 0))
                    expected_eps.append(Episode(i, specs[i].label, returns[i], lengths[i], unlocked))
                    returns[i], lengths[i] = 0.0, 0
                    frame = env.reset()
                assert np.array_equal(obs[i], frame)
            assert episodes == expected_eps
            finished += len(episodes)
    assert finished == 5


def test_an_error_in_a_worker_reaches_the_caller() -> None:
    with pytest.raises(VecEnvError, match="AssertionError"):
        VecEnv([EnvSpec("crafter", 1, config=HeistEnvConfig())], num_workers=1)


def test_worker_groups_step_on_their_own_as_the_whole_batch_would() -> None:
    """Two worker groups stepped alternately (one sent while the other is received) give each env the frames,
    rewards, dones and episodes of the same env stepped in process."""
    short = CrafterEnvConfig.model_validate({"world_settings": {"length": 16}})
    specs = [EnvSpec("crafter", 21 + i, f"e{i}", short) for i in range(3)]
    envs = [make_env(s) for s in specs]
    rng = np.random.default_rng(1)
    with VecEnv(specs, num_workers=2) as vec:
        assert vec.groups == [range(0, 2), range(2, 3)]
        obs = vec.reset()
        assert np.array_equal(obs, np.stack([e.reset() for e in envs]))
        finished = 0
        for step in range(40):
            actions = rng.integers(17, size=len(envs))
            vec.send(0, actions[:2])
            vec.send(1, actions[2:])
            for group in (1, 0):
                frames, rewards, dones, episodes = vec.receive(group)
                for j, i in enumerate(vec.groups[group]):
                    frame, reward, done, _ = envs[i].step(int(actions[i]))
                    assert (np.float32(reward), done) == (rewards[j], dones[j])
                    if done:
                        frame = envs[i].reset()
                    assert np.array_equal(frames[j], frame), (step, i)
                assert sorted(ep.slot for ep in episodes) == [
                    i for i in vec.groups[group] if dones[i - vec.groups[group].start]
                ]
                finished += len(episodes)
        assert finished == 6
        with pytest.raises(RuntimeError, match="unevenly"):
            vec.send(0, actions[:2])
            vec.receive(0)
            vec.step(actions)


def test_a_worker_killed_mid_run_is_reported_not_waited_for() -> None:
    with VecEnv([EnvSpec("crafter", i) for i in range(2)], num_workers=2) as vec:
        vec.reset()
        os.kill(vec._procs[1].pid, signal.SIGKILL)
        vec._procs[1].join(10)
        with pytest.raises(VecEnvError, match="exited unexpectedly"):
            vec.step(np.zeros(2, np.int64))


CALLER = """
import sys, time
from envgen_trainer.vecenv import EnvSpec, VecEnv
if __name__ == "__main__":
    vec = VecEnv([EnvSpec("crafter", i) for i in range(2)], num_workers=2)
    vec.reset()
    print(" ".join(str(p.pid) for p in vec._procs), flush=True)
    time.sleep(600)
"""


def test_workers_leave_when_their_caller_is_killed(tmp_path: Path) -> None:
    """A caller killed without a chance to clean up (SIGKILL) leaves no env worker behind."""
    script = tmp_path / "caller.py"
    script.write_text(CALLER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    caller = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
    assert caller.stdout is not None
    workers = [int(pid) for pid in caller.stdout.readline().split()]
    assert len(workers) == 2
    caller.kill()
    caller.wait()
    deadline = time.monotonic() + 30  # orphans are re-parented; a zombie left unreaped counts as gone
    while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_running(pid) for pid in workers)


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (not gone, not a zombie)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def test_many_workers_woken_as_a_tree_step_as_in_process() -> None:
    """Seven workers (the wake-up tree three deep; groups of four and three) step every env as in process, in
    lockstep and as two groups, and a reset reaches every worker."""
    specs = [
        EnvSpec("crafter", 31 + i, "e", CrafterEnvConfig.model_validate({"world_settings": {"length": 16}}))
        for i in range(7)
    ]
    envs = [make_env(s) for s in specs]
    rng = np.random.default_rng(2)
    with VecEnv(specs, num_workers=7) as vec:
        assert vec.groups == [range(0, 4), range(4, 7)]
        for _ in range(2):
            assert np.array_equal(vec.reset(), np.stack([e.reset() for e in envs]))
            for step in range(20):
                actions = rng.integers(17, size=len(envs))
                if step % 2:
                    vec.send(1, actions[4:])
                    vec.send(0, actions[:4])
                    results = [vec.receive(0), vec.receive(1)]
                else:
                    results = [vec.step(actions)]
                frames = np.concatenate([r[0] for r in results])
                dones = np.concatenate([r[2] for r in results])
                for i, env in enumerate(envs):
                    frame, _, done, _ = env.step(int(actions[i]))
                    assert done == dones[i]
                    assert np.array_equal(frames[i], env.reset() if done else frame), (step, i)
