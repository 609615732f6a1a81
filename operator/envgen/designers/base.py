"""The designer interface: design N environments for a cycle, given the previous cycles."""

from __future__ import annotations

from typing import Protocol

from ..contracts import CycleDesign, DesignRequest
from ..envconfig import DesignedEnv, Finding, check
from ..spec import DesignerType


class DesignError(Exception):
    """No usable design. ``design`` carries the attempts, notes and usage so far (or None)."""

    def __init__(self, message: str, design: CycleDesign | None = None) -> None:
        super().__init__(message)
        self.design = design


class Designer(Protocol):
    """Returns exactly ``request.num_envs`` envs (``none``: zero), schema-valid and free of error findings."""

    name: DesignerType

    def design(self, request: DesignRequest) -> CycleDesign: ...


def env_findings(envs: list[DesignedEnv]) -> list[Finding]:
    """``check()`` findings of every env, each message prefixed with the env's name."""
    return [f.model_copy(update={"message": f"{env.name}: {f.message}"}) for env in envs for f in check(env.config)]


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
