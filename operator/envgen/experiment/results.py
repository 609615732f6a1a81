"""An experiment's results: per arm, its seeds' task metrics (cycles and final phase), designs and state, read
from the per-task metrics JSON that local runs and cluster Jobs write alike."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Metrics = Mapping[str, Any]  # one training task's metrics.json (camelCase: phase, seed, score, trainScore, ...)


@dataclass
class Seed:
    """One seed of an arm: its cycles' task metrics in order, and the final phase's once it finished."""

    cycles: list[Metrics] = field(default_factory=list)
    final: Metrics | None = None

    @property
    def tasks(self) -> list[Metrics]:
        return [*self.cycles, *([self.final] if self.final is not None else [])]


@dataclass
class Arm:
    """One arm: its seeds, LLM calls, critic findings and designs over every batch, and whether it finished."""

    seeds: dict[int, Seed] = field(default_factory=dict)
    llm_calls: int = 0
    findings: int = 0
    designs: int = 0
    finished: bool = False

    def final(self) -> list[tuple[int, Metrics]]:
        """The final-phase metrics of the seeds that finished, by seed."""
        return [(s, r.final) for s, r in sorted(self.seeds.items()) if r.final is not None]

    def train_scores(self) -> list[float]:
        """The final-phase training scores of the finished seeds (the paper's protocol)."""
        return [m["trainScore"] for _, m in self.final() if m.get("trainScore") is not None]

    def train_scores_by_seed(self) -> dict[int, float]:
        return {s: m["trainScore"] for s, m in self.final() if m.get("trainScore") is not None}

    def eval_scores(self) -> list[float]:
        return [m["score"] for _, m in self.final() if m.get("score") is not None]

    def train_success(self) -> list[Metrics]:
        """Per finished seed, the success rates (percent) of the achievements in the final phase's training."""
        return [m.get("trainSuccess", {}) for _, m in self.final()]


def arm_of(tasks: Iterable[Metrics], designs: Iterable[Metrics], finished: bool) -> Arm:
    """Build an arm from its task metrics (any order, failed tasks left out) and its cycle designs."""
    arm = Arm(finished=finished)
    good = [m for m in tasks if not m.get("error")]
    for m in sorted(good, key=lambda m: (m.get("seed", 0), m.get("globalStep", 0))):
        rec = arm.seeds.setdefault(m.get("seed", 0), Seed())
        if m.get("phase") == "final":
            rec.final = m
        else:
            rec.cycles.append(m)
    for d in designs:
        arm.designs += 1
        arm.llm_calls += d.get("usage", {}).get("calls", 0)
        arm.findings += len(d.get("findings", []))
    return arm


def mean_std(values: list[float]) -> str:
    """``mean ± sd`` with two decimals, the value alone for one, ``–`` for none."""
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f}"


def unlocked(task: Metrics) -> int:
    """Achievements unlocked at least once in a task's evaluation."""
    return sum(1 for s in task.get("success", {}).values() if s["mean"] > 0)
