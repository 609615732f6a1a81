"""Evaluation in the unmodified game: ``runs`` x ``episodes`` episodes, success rates per skill."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from envgen.contracts import SkillStat
from envgen.games import ConfigModel

from .metrics import score, skill_names, std, success_rates
from .ppo import PPO
from .vecenv import EnvSpec, Episode, VecEnv


@dataclass
class Evaluation:
    """Aggregated evaluation results."""

    success: dict[str, SkillStat] = field(default_factory=dict)
    score: float | None = None
    score_std: float | None = None
    reward_mean: float | None = None
    reward_std: float | None = None
    length_mean: float | None = None
    episodes: int = 0


def eval_specs(game: str, config: ConfigModel | None, seed: int, count: int) -> list[EnvSpec]:
    """Envs of the unmodified game (``config``: the real game's config, see ``TrainerGame.game_config``)."""
    return [EnvSpec(game, seed + i, "eval", config, stock=True) for i in range(count)]


def collect(agent: PPO, vec: VecEnv, episodes: int) -> list[Episode]:
    """The first ``episodes`` episodes, an equal quota per env (so short episodes are not favoured)."""
    quota = [episodes // vec.num_envs + (i < episodes % vec.num_envs) for i in range(vec.num_envs)]
    got: list[Episode] = []
    obs = vec.reset()
    while len(got) < episodes:
        obs, _, _, finished = vec.step(agent.policy(obs))
        for ep in finished:
            if quota[ep.slot] > 0:
                quota[ep.slot] -= 1
                got.append(ep)
    return got


def evaluate(
    agent: PPO,
    game: str,
    config: ConfigModel | None,
    seed: int,
    runs: int,
    episodes: int,
    num_envs: int,
    num_workers: int,
) -> Evaluation:
    """Evaluate ``runs`` times over ``episodes`` episodes each; SkillStat = mean/std over runs."""
    if episodes <= 0:
        return Evaluation()
    per_run: list[dict[str, float]] = []
    all_eps: list[Episode] = []
    envs = max(1, min(num_envs, episodes))
    with VecEnv(eval_specs(game, config, seed, envs), num_workers) as vec:
        for _ in range(runs):
            eps = collect(agent, vec, episodes)
            per_run.append(success_rates(eps, game))
            all_eps.extend(eps)
    names = skill_names(game)
    mean = {k: statistics.fmean(r[k] for r in per_run) for k in names}
    returns = [ep.ret for ep in all_eps]
    return Evaluation(
        success={k: SkillStat(mean=mean[k], std=std([r[k] for r in per_run])) for k in names},
        score=score(mean, game),
        score_std=std([score(r, game) for r in per_run]),
        reward_mean=statistics.fmean(returns),
        reward_std=std(returns),
        length_mean=statistics.fmean(ep.length for ep in all_eps),
        episodes=len(all_eps),
    )
