"""The paper's curriculum baselines (Table 3) and the equal-step baseline, as designers.

* ``fixed``: the LLM's first environments, never adapted (cycle 1 asks the LLM, later cycles reuse them).
* ``easy-to-hard``: a fixed ladder from easy to hard environments spread over the run's cycles; no LLM.
* ``adversarial``: keep training where the agent does worst (per-env results of the previous cycle, else its
  weakest skills); no LLM. Cycle 1 is a fixed starting set spread over the catalogue.
* ``none``: zero environments (the real game only).
"""

from __future__ import annotations

import statistics

from ..contracts import CycleDesign, CycleFeedback, DesignRequest
from ..spec import DesignerType
from .base import Designer, env_findings, result_of, unique_names
from .catalogue import CatalogueEnv, ladder, spread


def _design(request: DesignRequest, name: DesignerType, picked: list[CatalogueEnv], note: str) -> CycleDesign:
    envs = unique_names([c.env for c in picked])
    return CycleDesign(cycle=request.cycle, designer=name, envs=envs, findings=env_findings(envs), notes=[note])


class FixedDesigner:
    """The first cycle's LLM environments for every cycle."""

    name: DesignerType = "fixed"

    def __init__(self, first: Designer) -> None:
        self.first = first

    def design(self, request: DesignRequest) -> CycleDesign:
        if not request.history:
            design = self.first.design(request)
            design.designer = self.name
            design.notes.append("fixed: these environments are reused unchanged in every later cycle")
            return design
        first = request.history[0].design
        envs = first.envs[: request.num_envs]
        return CycleDesign(
            cycle=request.cycle,
            designer=self.name,
            envs=envs,
            findings=env_findings(envs),
            notes=[f"fixed: reusing the {len(envs)} environments of cycle {first.cycle}"],
        )

    def close(self) -> None:
        """Close the designer it wraps."""
        self.first.close()


class EasyToHardDesigner:
    """Stage k of ``cycles`` stages of the easy-to-hard catalogue at cycle k."""

    name: DesignerType = "easy-to-hard"

    def __init__(self, cycles: int) -> None:
        self.cycles = max(1, cycles)

    def design(self, request: DesignRequest) -> CycleDesign:
        envs = ladder(request.game)
        k = min(max(request.cycle, 1), self.cycles) - 1
        lo, hi = k * len(envs) // self.cycles, (k + 1) * len(envs) // self.cycles
        stage = envs[lo : max(hi, lo + 1)]
        note = f"easy-to-hard: stage {k + 1} of {self.cycles} (ladder steps {lo + 1}-{lo + len(stage)} of {len(envs)})"
        return _design(request, self.name, spread(stage, request.num_envs), note)

    def close(self) -> None:
        """Nothing to release."""


def weakness(entry: CatalogueEnv, feedback: CycleFeedback) -> float:
    """How well the agent does what ``entry`` trains (percent): in that env if it trained there, else in the game."""
    result = result_of(feedback, entry.env.name)
    values: list[float] = []
    for skill in entry.skills:
        if result is not None and skill in result.success:
            values.append(result.success[skill])
        elif result is not None and result.score is not None:
            values.append(result.score)
        elif skill in feedback.success:
            values.append(feedback.success[skill].mean)
        else:
            values.append(0.0)
    return statistics.fmean(values)


class AdversarialDesigner:
    """The catalogue environments where the agent did worst last cycle (ties: the harder one)."""

    name: DesignerType = "adversarial"

    def design(self, request: DesignRequest) -> CycleDesign:
        envs = ladder(request.game)
        if not request.history:
            return _design(request, self.name, spread(envs, request.num_envs), "adversarial: fixed starting set")
        feedback = request.history[-1].feedback
        ranked = sorted(range(len(envs)), key=lambda i: (weakness(envs[i], feedback), -i))
        picked = [envs[i] for i in ranked[: request.num_envs]]
        scores = ", ".join(f"{c.env.name} {weakness(c, feedback):.0f}%" for c in picked)
        return _design(request, self.name, spread(tuple(picked), request.num_envs), f"adversarial: weakest {scores}")

    def close(self) -> None:
        """Nothing to release."""


class NoDesigner:
    """No designed environments: the agent trains in the real game only (the equal-step baseline)."""

    name: DesignerType = "none"

    def design(self, request: DesignRequest) -> CycleDesign:
        return CycleDesign(cycle=request.cycle, designer=self.name, envs=[], notes=["none: real game only"])

    def close(self) -> None:
        """Nothing to release."""
