"""Our PPO update is stable-baselines3's PPO update, step for step, when configured the same way.

stable-baselines3's ``PPO("CnnPolicy")`` (the project's outside reference, ``bench/science/sb3.py``) and our
``envgen_trainer.ppo.PPO`` with the Nature CNN are given the same weights and the same rollout, and compared:

* the networks: the same architecture and initialisation scheme (orthogonal, gains sqrt(2) / 0.01 / 1, zero biases),
  and, with SB3's weights copied into ours, the same logits and values (ours takes NHWC frames and permutes them
  itself; SB3's gets the NCHW frames its ``VecTransposeImage`` makes);
* GAE: ``_gae`` gives SB3's advantages and returns, episode boundaries included (our ``dones[t]`` marks that obs
  ``t`` starts an episode, like SB3's ``episode_starts``; ``next_done`` is SB3's ``dones`` after the last step);
* the update: the project's PPO settings, several epochs of one minibatch each (so the shuffle order cannot matter),
  give the same parameters after ``_update`` as after SB3's ``train()``, with the same Adam settings.

The one known difference is the value loss: SB3 has ``vf_coef * mse`` unclipped, we have
``valueCoef * 0.5 * squared error``, clipped to ``clipCoef`` around the old value when ``clipValueLoss`` (our
default). So SB3's ``vf_coef`` 0.5 is ours with ``clipValueLoss: false`` and ``valueCoef: "1.0"`` (the
``ppo-250k-sb3-value`` arm); with the value loss clipped, or with ``valueCoef`` 0.5, the updates differ. (The clip
bites only from the second gradient step on, once the value has left the old one: hence several epochs here.)
So a score difference between the two learners is seed noise or the rollout side, not the update.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch

pytest.importorskip("stable_baselines3")
pytest.importorskip("gymnasium")

import gymnasium as gym
from stable_baselines3 import PPO as SB3PPO
from stable_baselines3.common.distributions import CategoricalDistribution
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import DummyVecEnv

from bench.science import sb3
from envgen.spec import AgentSpec
from envgen_trainer.ppo import PPO, PPOArgs

N_ENVS, N_STEPS, EPOCHS = 2, 8, 3  # the project's 3 epochs; one minibatch of all 16 steps each
OBS_SHAPE, N_ACTIONS = (64, 64, 3), 17
# The benchmark's SB3 settings (bench/science/sb3.py, cpu profile: the paper's PPO) over this tiny batch; SB3's
# defaults for the rest (vf_coef 0.5, max_grad_norm 0.5), read back from the model where ours needs them.
SETTINGS = {k: v for k, v in sb3.ppo_settings("cpu").items() if k not in ("n_steps", "batch_size", "n_epochs")}
# our parameter -> SB3's (the features extractor is shared by SB3's actor and critic, like our encoder)
LAYERS = {
    "encoder.net.0": "features_extractor.cnn.0",
    "encoder.net.2": "features_extractor.cnn.2",
    "encoder.net.4": "features_extractor.cnn.4",
    "encoder.net.7": "features_extractor.linear.0",
    "actor": "action_net",
    "critic": "value_net",
}
GAINS = {"encoder": float(np.sqrt(2)), "actor": 0.01, "critic": 1.0}


class Frames(gym.Env[np.ndarray, np.int64]):
    """Crafter's spaces; never stepped (the rollout is made by hand)."""

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(0, 255, OBS_SHAPE, np.uint8)
        self.action_space = gym.spaces.Discrete(N_ACTIONS)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        return np.zeros(OBS_SHAPE, np.uint8), {}

    def step(self, action: np.int64) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        return np.zeros(OBS_SHAPE, np.uint8), 0.0, False, False, {}


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread: the test is small, and the machine may be busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def sb3_model(epochs: int = EPOCHS, seed: int = 0) -> SB3PPO:
    """``PPO("CnnPolicy")`` as ``bench/science/sb3.py`` builds it, on a tiny batch that is one minibatch."""
    model = SB3PPO(
        "CnnPolicy",
        DummyVecEnv([Frames] * N_ENVS),
        n_steps=N_STEPS,
        batch_size=N_STEPS * N_ENVS,
        n_epochs=epochs,
        seed=seed,
        device="cpu",
        **SETTINGS,
    )
    model.set_logger(configure(None, []))  # train() logs; learn() would set this up
    return model


def our_agent(model: SB3PPO, *, clip_value_loss: bool, value_coef: str) -> PPO:
    """Our agent with the same settings, SB3's weights copied in."""
    spec = AgentSpec(
        network="nature",
        num_envs=N_ENVS,
        rollout_steps=N_STEPS,
        epochs=model.n_epochs,
        minibatches=1,
        learning_rate=str(SETTINGS["learning_rate"]),
        gamma=str(SETTINGS["gamma"]),
        gae_lambda=str(SETTINGS["gae_lambda"]),
        clip_coef=str(SETTINGS["clip_range"]),
        entropy_coef=str(SETTINGS["ent_coef"]),
        value_coef=value_coef,
        clip_value_loss=clip_value_loss,
        max_grad_norm=str(model.max_grad_norm),
        device="cpu",
    )
    agent = PPO(PPOArgs.from_spec(spec), num_actions=N_ACTIONS)
    agent.net.load_state_dict(sb3_params(model))
    return agent


def sb3_params(model: SB3PPO) -> dict[str, torch.Tensor]:
    """SB3's parameters under our names."""
    theirs = model.policy.state_dict()
    return {
        f"{ours}.{p}": theirs[f"{name}.{p}"].detach().clone()
        for ours, name in LAYERS.items()
        for p in ("weight", "bias")
    }


def our_params(agent: PPO) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in agent.net.named_parameters()}


def chw(frames: np.ndarray) -> torch.Tensor:
    """What SB3's policy sees: ``VecTransposeImage``'s channel-first frames."""
    return torch.as_tensor(frames.transpose(0, 3, 1, 2).copy())


@dataclass
class Rollout:
    """One rollout, time-major (``N_STEPS, N_ENVS, ...``), with values and log-probs from the policy."""

    frames: np.ndarray  # uint8 NHWC
    actions: np.ndarray
    rewards: np.ndarray
    starts: np.ndarray  # 1 where obs t is the first of an episode
    values: np.ndarray
    log_probs: np.ndarray
    last_values: np.ndarray
    last_dones: np.ndarray  # 1 where the last step ended an episode


def make_rollout(model: SB3PPO, seed: int = 1) -> Rollout:
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (N_STEPS, N_ENVS, *OBS_SHAPE), dtype=np.uint8)
    actions = rng.integers(0, N_ACTIONS, (N_STEPS, N_ENVS))
    rewards = rng.normal(0.0, 1.0, (N_STEPS, N_ENVS)).astype(np.float32)
    starts = np.zeros((N_STEPS, N_ENVS), np.float32)
    starts[0] = 1.0  # the first rollout after reset
    starts[3, 0] = starts[5, 1] = starts[6, 1] = 1.0  # episodes end mid-rollout (one lasts a single step)
    last_dones = np.array([1.0, 0.0], np.float32)
    with torch.no_grad():
        flat = chw(frames.reshape(-1, *OBS_SHAPE))
        values, log_probs, _ = model.policy.evaluate_actions(flat, torch.as_tensor(actions.reshape(-1)))
        last = model.policy.predict_values(chw(rng.integers(0, 256, (N_ENVS, *OBS_SHAPE), dtype=np.uint8)))
    return Rollout(
        frames,
        actions,
        rewards,
        starts,
        values.numpy().reshape(N_STEPS, N_ENVS),
        log_probs.numpy().reshape(N_STEPS, N_ENVS),
        last.numpy().reshape(N_ENVS),
        last_dones,
    )


def fill_sb3_buffer(model: SB3PPO, ro: Rollout) -> None:
    """What ``collect_rollouts`` leaves in SB3's buffer, GAE included."""
    buf = model.rollout_buffer
    buf.reset()
    for t in range(N_STEPS):
        buf.add(
            ro.frames[t].transpose(0, 3, 1, 2),
            ro.actions[t],
            ro.rewards[t],
            ro.starts[t],
            torch.as_tensor(ro.values[t]),
            torch.as_tensor(ro.log_probs[t]),
        )
    buf.compute_returns_and_advantage(torch.as_tensor(ro.last_values), ro.last_dones)


def our_gae(agent: PPO, ro: Rollout) -> torch.Tensor:
    return agent._gae(
        torch.as_tensor(ro.rewards),
        torch.as_tensor(ro.values),
        torch.as_tensor(ro.starts),
        torch.as_tensor(ro.last_values),
        torch.as_tensor(ro.last_dones),
    )


def our_update(agent: PPO, ro: Rollout) -> None:
    """``_update`` on the rollout, flattened as ``PPO.train`` does."""
    advantages = our_gae(agent, ro)
    values = torch.as_tensor(ro.values)
    agent._update(
        torch.as_tensor(ro.frames).reshape(-1, *OBS_SHAPE),
        torch.as_tensor(ro.actions).reshape(-1),
        torch.as_tensor(ro.log_probs).reshape(-1),
        advantages.reshape(-1),
        (advantages + values).reshape(-1),
        values.reshape(-1),
    )


def update_gap(*, clip_value_loss: bool, value_coef: str, epochs: int = EPOCHS) -> tuple[float, float]:
    """Largest difference between SB3's and our parameters after one update, and SB3's largest change."""
    model = sb3_model(epochs)
    agent = our_agent(model, clip_value_loss=clip_value_loss, value_coef=value_coef)
    before = sb3_params(model)
    ro = make_rollout(model)
    fill_sb3_buffer(model, ro)
    model.train()
    our_update(agent, ro)
    theirs, ours = sb3_params(model), our_params(agent)
    gap = max(float((ours[k] - theirs[k]).abs().max()) for k in before)
    step = max(float((theirs[k] - before[k]).abs().max()) for k in before)
    return gap, step


def test_the_networks_are_initialised_alike() -> None:
    """Orthogonal weights (all singular values = the gain) and zero biases, layer for layer, in both."""
    model = sb3_model()
    agent = PPO(PPOArgs.from_spec(AgentSpec(network="nature", device="cpu")), num_actions=N_ACTIONS)
    ours = our_params(agent)
    theirs = sb3_params(model)
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}
    for name in ours:
        gain = GAINS[name.split(".")[0]]
        for params in (ours, theirs):
            if name.endswith("bias"):
                assert not params[name].any(), name
            else:
                singular = torch.linalg.svdvals(params[name].reshape(params[name].shape[0], -1))
                torch.testing.assert_close(singular, torch.full_like(singular, gain), atol=1e-4, rtol=1e-4)


def test_with_the_same_weights_the_networks_agree() -> None:
    model = sb3_model()
    agent = our_agent(model, clip_value_loss=False, value_coef="1.0")
    frames = np.random.default_rng(0).integers(0, 256, (6, *OBS_SHAPE), dtype=np.uint8)
    with torch.no_grad():
        dist = model.policy.get_distribution(chw(frames))
        assert isinstance(dist, CategoricalDistribution)
        their_logits = dist.distribution.logits
        their_values = model.policy.predict_values(chw(frames)).squeeze(-1)
        ours = torch.as_tensor(frames)
        our_logits = torch.distributions.Categorical(logits=agent.net.actor(agent.net.features(ours))).logits
        our_values = agent.net.value(ours)
    torch.testing.assert_close(our_logits, their_logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(our_values, their_values, atol=1e-5, rtol=1e-5)


def test_gae_matches_sb3_across_episode_boundaries() -> None:
    model = sb3_model()
    agent = our_agent(model, clip_value_loss=False, value_coef="1.0")
    ro = make_rollout(model)
    fill_sb3_buffer(model, ro)
    advantages = our_gae(agent, ro)
    torch.testing.assert_close(advantages, torch.as_tensor(model.rollout_buffer.advantages), atol=1e-5, rtol=1e-5)
    returns = advantages + torch.as_tensor(ro.values)
    torch.testing.assert_close(returns, torch.as_tensor(model.rollout_buffer.returns), atol=1e-5, rtol=1e-5)
    # the boundaries matter: without them the advantages differ
    no_starts = Rollout(**{**ro.__dict__, "starts": np.zeros_like(ro.starts), "last_dones": np.zeros(N_ENVS)})
    assert not torch.allclose(our_gae(agent, no_starts), advantages, atol=1e-3)


def test_the_optimisers_are_alike() -> None:
    model = sb3_model()
    agent = our_agent(model, clip_value_loss=False, value_coef="1.0")
    assert agent.optimizer.defaults == model.policy.optimizer.defaults  # Adam, lr 3e-4, eps 1e-5, betas, ...
    assert type(agent.optimizer) is type(model.policy.optimizer)


def test_the_update_matches_sb3_with_its_value_loss() -> None:
    """clipValueLoss false and valueCoef 1.0 (SB3's vf_coef 0.5 on the mse): the same parameters after 3 epochs."""
    gap, step = update_gap(clip_value_loss=False, value_coef="1.0")
    assert step > 5e-4  # the update moved the weights (Adam: ~lr per step, 3 steps)
    assert gap < 1e-6  # float rounding only (batch order differs: SB3 flattens env-major, we time-major)


@pytest.mark.parametrize(("clip_value_loss", "value_coef"), [(True, "1.0"), (False, "0.5"), (True, "0.5")])
def test_the_update_differs_with_our_other_value_losses(clip_value_loss: bool, value_coef: str) -> None:
    """Our default (clipped, valueCoef 0.5) and each half of it on its own move the weights differently."""
    gap, step = update_gap(clip_value_loss=clip_value_loss, value_coef=value_coef)
    assert gap > 1e-5
    assert step > 5e-4


def test_in_the_first_gradient_step_the_value_clip_does_nothing() -> None:
    """Clipping bites only once the value has moved from the old one: from the second epoch (or minibatch) on."""
    gap, _ = update_gap(clip_value_loss=True, value_coef="1.0", epochs=1)
    assert gap < 1e-6
