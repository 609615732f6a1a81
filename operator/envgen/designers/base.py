"""Helpers shared by designers; the Designer protocol and its errors live in :mod:`envgen.contracts`."""

from __future__ import annotations

from ..contracts import CycleFeedback, Designer, DesignError, DesignUnavailable, EnvResult
from ..envconfig import DesignedEnv, Finding, check
from ..games import game as game_of

__all__ = ["DesignError", "DesignUnavailable", "Designer", "env_findings", "unique_names"]


# check() codes that only say one skill (and every skill that needs it) is impossible in the env
RULES_OUT = {"no-stone-source": "collect_stone", "no-water": "collect_drink"}


def concerns(finding: Finding, env: DesignedEnv) -> bool:
    """False for a finding that only rules out skills, in an env whose purpose names its targets and none of those."""
    ruled_out = RULES_OUT.get(finding.code)
    if ruled_out is None:
        return True
    game = game_of(env.config.game)
    targets = [s for s in game.skills if s in env.purpose]
    return not targets or any(s == ruled_out or ruled_out in game.requires(s) for s in targets)


def env_findings(envs: list[DesignedEnv]) -> list[Finding]:
    """``check()`` findings of every env that concern its purpose, each message prefixed with the env's name."""
    return [
        f.model_copy(update={"message": f"{env.name}: {f.message}"})
        for env in envs
        for f in check(env.config)
        if concerns(f, env)
    ]


def is_copy(name: str, original: str) -> bool:
    """True for ``original`` itself and the numbered copies ``unique_names`` makes of it (``x-2``, ``x-3`` ...)."""
    base, _, number = name.rpartition("-")
    return name == original or (base == original and number.isdigit())


def result_of(feedback: CycleFeedback, env_name: str) -> EnvResult | None:
    """How the agent did in an env last cycle: the env's own result, else its first numbered copy's, else None."""
    own = [r for r in feedback.per_env if is_copy(r.name, env_name)]
    return next((r for r in own if r.name == env_name), own[0] if own else None)


def unique_names(envs: list[DesignedEnv]) -> list[DesignedEnv]:
    """Envs with distinct names (later duplicates get a ``-2``, ``-3`` ... suffix)."""
    seen: set[str] = set()
    out = []
    for env in envs:
        name, n = env.name, 1
        while name in seen:
            n += 1
            suffix = f"-{n}"
            name = env.name[: 80 - len(suffix)] + suffix
        seen.add(name)
        out.append(env if name == env.name else env.model_copy(update={"name": name}))
    return out
