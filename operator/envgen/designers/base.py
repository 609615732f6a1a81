"""Helpers shared by designers; the Designer protocol and its errors live in :mod:`envgen.contracts`."""

from __future__ import annotations

from ..contracts import Designer, DesignError, DesignUnavailable
from ..envconfig import DesignedEnv, Finding, check

__all__ = ["DesignError", "DesignUnavailable", "Designer", "env_findings", "unique_names"]


def env_findings(envs: list[DesignedEnv]) -> list[Finding]:
    """``check()`` findings of every env, each message prefixed with the env's name."""
    return [f.model_copy(update={"message": f"{env.name}: {f.message}"}) for env in envs for f in check(env.config)]


def is_copy(name: str, original: str) -> bool:
    """True for ``original`` itself and the numbered copies ``unique_names`` makes of it (``x-2``, ``x-3`` ...)."""
    base, _, number = name.rpartition("-")
    return name == original or (base == original and number.isdigit())


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
