"""Actor-critic networks on 64x64 RGB frames: Nature-CNN (CPU default) and an IMPALA ResNet (~4M params)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def _init(layer: nn.Module, gain: float = float(np.sqrt(2))) -> nn.Module:
    if isinstance(layer, nn.Conv2d | nn.Linear):
        nn.init.orthogonal_(layer.weight, gain)
        if layer.bias is not None:
            nn.init.constant_(layer.bias, 0.0)
    return layer


class NatureEncoder(nn.Module):
    """The DQN Nature CNN: 3 convs and a 512-unit dense layer."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            _init(nn.Conv2d(3, 32, 8, stride=4)),
            nn.ReLU(),
            _init(nn.Conv2d(32, 64, 4, stride=2)),
            nn.ReLU(),
            _init(nn.Conv2d(64, 64, 3, stride=1)),
            nn.ReLU(),
            nn.Flatten(),
            _init(nn.Linear(64 * 4 * 4, 512)),
            nn.ReLU(),
        )
        self.out_dim = 512

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class _ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv0 = _init(nn.Conv2d(channels, channels, 3, padding=1))
        self.conv1 = _init(nn.Conv2d(channels, channels, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv1(torch.relu(self.conv0(torch.relu(x))))


class _Stage(nn.Module):
    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__()
        self.conv = _init(nn.Conv2d(in_channels, channels, 3, padding=1))
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.res = nn.Sequential(_ResidualBlock(channels), _ResidualBlock(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res(self.pool(self.conv(x)))


class ImpalaEncoder(nn.Module):
    """IMPALA ResNet: stages [64, 128, 128] (conv, max-pool, 2 residual blocks), dense 256 with layer norm,
    then a 1024-unit hidden layer (the PPO-ResNet of Moon et al. 2023; about 4M parameters)."""

    def __init__(self, channels: tuple[int, ...] = (64, 128, 128), hidden: int = 1024) -> None:
        super().__init__()
        stages, prev = [], 3
        for ch in channels:
            stages.append(_Stage(prev, ch))
            prev = ch
        self.stages = nn.Sequential(*stages)
        self.dense = nn.Sequential(
            nn.ReLU(),
            nn.Flatten(),
            _init(nn.Linear(prev * 8 * 8, 256)),
            nn.LayerNorm(256),
            nn.ReLU(),
            _init(nn.Linear(256, hidden)),
            nn.ReLU(),
        )
        self.out_dim = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(self.stages(x))


class ActorCritic(nn.Module):
    """Shared encoder with a categorical policy head and a value head. Input: uint8 frames (N, H, W, C)."""

    def __init__(self, network: str, num_actions: int) -> None:
        super().__init__()
        self.network = network
        self.num_actions = num_actions
        self.encoder: NatureEncoder | ImpalaEncoder = NatureEncoder() if network == "nature" else ImpalaEncoder()
        self.actor = _init(nn.Linear(self.encoder.out_dim, num_actions), 0.01)
        self.critic = _init(nn.Linear(self.encoder.out_dim, 1), 1.0)

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        return self.encoder(obs.permute(0, 3, 1, 2).float() / 255.0)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """The value of each frame (float32, also under autocast)."""
        return self.critic(self.features(obs)).squeeze(-1).float()

    def act(
        self, obs: torch.Tensor, action: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample (or score) actions: returns action, log-prob, entropy, value (the distribution and the value in
        float32, also under autocast)."""
        hidden = self.features(obs)
        dist = torch.distributions.Categorical(logits=self.actor(hidden).float())
        if action is None:
            action = dist.sample()
        return action, dist.log_prob(action), dist.entropy(), self.critic(hidden).squeeze(-1).float()
