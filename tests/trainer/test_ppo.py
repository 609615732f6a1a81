"""PPO's settings under CleanRL's names, the statistics CleanRL logs, and the value loss: clipped around the old
value (CleanRL) or the plain squared error (stable-baselines3)."""

from __future__ import annotations

import re
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import pytest
import torch

from envgen.contracts import UpdateStats
from envgen.envconfig import CrafterEnvConfig
from envgen.spec import AgentSpec
from envgen_trainer.ppo import PPO, IterationStats, PPOArgs, ToDevice, pinned_copies
from envgen_trainer.vecenv import EnvSpec, Episode, VecEnv


def value_moved(clip_value_loss: bool) -> float:
    """Mean change of the value on one batch after an update towards returns 5 above the old values."""
    torch.manual_seed(0)
    spec = AgentSpec(
        network="nature",
        num_envs=1,
        rollout_steps=32,
        epochs=32,
        minibatches=1,
        learning_rate="3e-5",
        entropy_coef="0",
        clip_value_loss=clip_value_loss,
        device="cpu",
    )
    agent = PPO(PPOArgs.from_spec(spec), num_actions=17)
    obs = torch.randint(0, 255, (32, 64, 64, 3), dtype=torch.uint8)
    with torch.no_grad():
        actions, logp, _, old = agent.net.act(obs)
    returns = old + 5.0
    agent._update(obs, actions, logp, returns - old, returns, old)
    with torch.no_grad():
        return float((agent.net.value(obs) - old).abs().mean())


def test_a_clipped_value_loss_holds_the_value_near_the_old_one() -> None:
    clipped, plain = value_moved(True), value_moved(False)
    assert plain > 4.0  # the plain squared error pulls the value most of the way to the returns
    assert clipped < plain / 3  # clipped at clipCoef 0.2 (Adam's momentum carries it a little past)


# a valid value other than the default for each spec.agent field (numEnvs*rolloutSteps stays divisible)
OTHER = {
    "network": "impala",
    "device": "cpu",
    "precision": "bfloat16",
    "envGroups": 2,
    "overlap": True,
    "learningRate": "1e-3",
    "numEnvs": 16,
    "rolloutSteps": 256,
    "epochs": 5,
    "minibatches": 4,
    "gamma": "0.9",
    "gaeLambda": "0.7",
    "clipCoef": "0.1",
    "clipValueLoss": False,
    "entropyCoef": "0.02",
    "valueCoef": "0.4",
    "maxGradNorm": "0.4",
}


def readme_mapping() -> dict[str, str]:
    """The README's table of ``spec.agent`` names and CleanRL (``PPOArgs``) names."""
    text = (Path(__file__).parents[2] / "README.md").read_text()
    table = text[text.index("**PPO settings.**") :].split("\n\n")[1]
    pairs = re.findall(r"\| `(\w+)` \| `(\w+)`", table)
    return dict(pairs)


def test_the_spec_maps_onto_cleanrl_names_as_the_readme_says() -> None:
    """Each spec field sets the PPOArgs field the README's table names, and every field is in the table."""
    mapping = readme_mapping()
    assert set(mapping) == {f.alias for f in AgentSpec.model_fields.values()} == set(OTHER)
    assert sorted(mapping.values()) == sorted(f.name for f in fields(PPOArgs))
    default = asdict(PPOArgs.from_spec(AgentSpec()))
    for name, value in OTHER.items():
        changed = asdict(PPOArgs.from_spec(AgentSpec.model_validate({name: value})))
        assert [k for k in default if changed[k] != default[k]] == [mapping[name]], name
    args = PPOArgs.from_spec(AgentSpec.model_validate({"entropyCoef": "0.02", "rolloutSteps": 256}))
    assert args.ent_coef == 0.02 and args.num_steps == 256


def test_an_update_reports_what_cleanrl_logs() -> None:
    torch.manual_seed(0)
    spec = AgentSpec(num_envs=1, rollout_steps=32, epochs=2, minibatches=2, learning_rate="1e-2", device="cpu")
    agent = PPO(PPOArgs.from_spec(spec), num_actions=17)
    obs = torch.randint(0, 255, (32, 64, 64, 3), dtype=torch.uint8)
    with torch.no_grad():
        actions, logp, _, values = agent.net.act(obs)
    advantages = torch.randn(32)
    # returns the values predict up to a constant: all of their variance is explained
    stats = agent._update(obs, actions, logp, advantages, values + 5.0, values)
    assert set(stats) == set(UpdateStats.model_fields)
    assert stats["explained_variance"] == pytest.approx(1.0)
    # a large learning rate moves the policy: some ratios leave 1 +- clip_coef, and both KL estimates are positive
    assert 0.0 < stats["clipfrac"] <= 1.0 and stats["approx_kl"] > 0.0 and stats["old_approx_kl"] > 0.0
    # values that predict nothing explain nothing; returns that never vary have no variance to explain
    assert agent._update(obs, actions, logp, advantages, values, torch.zeros(32))["explained_variance"] == 0.0
    assert "explained_variance" not in agent._update(obs, actions, logp, advantages, torch.zeros(32), values)


def test_frames_go_through_pinned_memory_on_cuda_only() -> None:
    assert pinned_copies(torch.device("cuda")) and pinned_copies(torch.device("cuda:1"))
    assert not pinned_copies(torch.device("cpu"))
    to_device = ToDevice(torch.device("cpu"), (2, 4, 4, 3), torch.uint8)
    assert not to_device.pinned
    frames = np.random.default_rng(0).integers(0, 255, (2, 4, 4, 3), dtype=np.uint8)
    moved = to_device(frames)
    assert moved.dtype == torch.uint8 and moved.device.type == "cpu"
    assert np.array_equal(moved.numpy(), frames)


def bandit(precision: str, iterations: int = 5) -> tuple[PPO, list[float]]:
    """PPO on a one-step bandit over 32 random frames (reward 1 for action 2 of 4): the mean reward of each
    iteration's actions, sampled by the agent and scored by its update as in a rollout."""
    torch.manual_seed(0)
    spec = AgentSpec.model_validate(
        {
            "numEnvs": 4,
            "rolloutSteps": 8,
            "epochs": 2,
            "minibatches": 2,
            "learningRate": "1e-3",
            "device": "cpu",
            "precision": precision,
        }
    )
    agent = PPO(PPOArgs.from_spec(spec), num_actions=4)
    frames = torch.randint(0, 255, (32, 64, 64, 3), dtype=torch.uint8)
    rewards = []
    for _ in range(iterations):
        with torch.no_grad():
            actions, logp, _, values = agent.act(frames)
        reward = (actions == 2).float()
        rewards.append(float(reward.mean()))
        stats = agent._update(frames, actions, logp, reward - values, reward, values)
        assert all(np.isfinite(v) for v in stats.values()), stats
    return agent, rewards


def test_bfloat16_autocast_learns_as_float32_does() -> None:
    half, half_rewards = bandit("bfloat16")
    full, full_rewards = bandit("float32")
    frames = torch.randint(0, 255, (2, 64, 64, 3), dtype=torch.uint8)
    with torch.no_grad():
        with half._forward():  # the forward passes run in bfloat16 ...
            assert half.net.features(frames).dtype == torch.bfloat16
        with full._forward():
            assert full.net.features(frames).dtype == torch.float32
        _, logp, entropy, value = half.act(frames)  # ... what the loss reads is float32
    assert logp.dtype == entropy.dtype == value.dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in half.net.parameters())  # the weights stay float32
    # both learn the bandit from chance (0.25), at about the same pace
    assert half_rewards[-1] > 0.8 and full_rewards[-1] > 0.8, (half_rewards, full_rewards)
    assert abs(np.mean(half_rewards) - np.mean(full_rewards)) < 0.15, (half_rewards, full_rewards)


def test_two_env_groups_step_every_env_through_each_rollout() -> None:
    """With envGroups 2 (two workers, one stepping while the other's actions are inferred) each env takes every
    step of each rollout: 3 envs with 16-step episodes each finish one, on the last step of 2 rollouts of 8 steps."""
    torch.manual_seed(0)
    spec = AgentSpec.model_validate(
        {"numEnvs": 3, "rolloutSteps": 8, "epochs": 1, "minibatches": 1, "device": "cpu", "envGroups": 2}
    )
    agent = PPO(PPOArgs.from_spec(spec), num_actions=17)
    short = CrafterEnvConfig.model_validate({"world_settings": {"length": 16}})
    episodes: list[Episode] = []
    iterations: list[IterationStats] = []
    with VecEnv([EnvSpec("crafter", 31 + i, "e", short) for i in range(3)], num_workers=2) as vec:
        assert len(vec.groups) == 2
        assert agent.train(vec, 48, episodes.append, iterations.append) == 48
    assert sorted(ep.slot for ep in episodes) == [0, 1, 2]
    assert all(ep.length == 16 for ep in episodes)
    assert [it.steps for it in iterations] == [24, 48]
    assert all(np.isfinite(v) for it in iterations for v in it.losses.values())
