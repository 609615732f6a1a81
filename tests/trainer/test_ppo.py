"""PPO's value loss: clipped around the old value (CleanRL) or the plain squared error (stable-baselines3)."""

from __future__ import annotations

import torch

from envgen.spec import AgentSpec
from envgen_trainer.ppo import PPO


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
    agent = PPO(spec, num_actions=17)
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
