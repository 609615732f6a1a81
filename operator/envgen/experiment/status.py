"""The EnvGenExperiment status: per arm its finished seeds, scores and the comparison with the baseline; the
best arm; conditions. Computed from the arms' results alike locally and in the cluster. Numbers that are not
counts are decimal strings, as Kubernetes API conventions ask."""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import Field

from ..achievements import ACHIEVEMENTS
from ..k8s.status import Condition, Count
from ..models import CamelModel
from . import stats
from .model import MAX_ARMS, EnvGenExperiment
from .results import Arm

Decimal = Annotated[str, Field(max_length=32)]
ArmPhase = Literal["Pending", "Running", "Succeeded", "Failed"]


class ArmStatus(CamelModel):
    """One arm: its EnvGenRun, the seeds finished, the final-phase training score, the evaluation score, and the
    comparison with the baseline (absent for the baseline itself and below 2 seeds a side)."""

    name: Annotated[str, Field(min_length=1, max_length=63)] = Field(description="The arm's name.")
    run: Annotated[str, Field(min_length=1, max_length=63)] = Field(description="The arm's EnvGenRun.")
    phase: ArmPhase = Field(default="Pending", description="Pending, Running, Succeeded or Failed (its run's).")
    seeds_finished: Count = Field(default=0, description="Seeds whose final phase finished.")
    score: Decimal | None = Field(default=None, description="Mean final-phase training score (%) over the seeds.")
    score_std: Decimal | None = Field(default=None, description="Its standard deviation over the seeds.")
    eval_score: Decimal | None = Field(default=None, description="Mean evaluation score (%) in the unmodified game.")
    difference: Decimal | None = Field(default=None, description="Score minus the baseline's score (points).")
    p: Decimal | None = Field(default=None, description="Welch's t-test p-value of the difference (two-sided).")
    ci_low: Decimal | None = Field(default=None, description="Lower end of the 95 % bootstrap CI of the difference.")
    ci_high: Decimal | None = Field(default=None, description="Upper end of the 95 % bootstrap CI of the difference.")
    mde: Decimal | None = Field(
        default=None,
        description="Minimum detectable effect (points) at 80 % power and 5 % for the seeds finished (pooled sd).",
    )
    paired_p: Decimal | None = Field(
        default=None, description="Paired t-test p-value over the seeds shared with the baseline (3 or more)."
    )
    lost: Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=len(ACHIEVEMENTS))] = Field(
        default_factory=list, description="Achievements whose mean fell below every baseline seed."
    )


class ExperimentStatus(CamelModel):
    """What the experiment found so far."""

    observed_generation: Count | None = Field(default=None, description="The generation this status describes.")
    conditions: Annotated[list[Condition], Field(max_length=16)] = Field(
        default_factory=list, description="Running, Succeeded, Failed (metav1.Condition)."
    )
    arm_count: Count = Field(default=0, description="Arms in the experiment.")
    arms_finished: Count = Field(default=0, description="Arms whose run ended.")
    arms: Annotated[list[ArmStatus], Field(max_length=MAX_ARMS)] = Field(
        default_factory=list, description="Per arm: seeds finished, scores, the comparison with the baseline."
    )
    best_arm: Annotated[str, Field(max_length=63)] | None = Field(
        default=None, description="The arm (other than the baseline) with the largest difference to the baseline."
    )
    best_difference: Decimal | None = Field(default=None, description="Its difference to the baseline (points).")
    best_p: Decimal | None = Field(default=None, description="Its Welch p-value.")


def _fmt(x: float, digits: int = 2) -> str:
    return f"{x:.{digits}f}"


def arm_status(exp: EnvGenExperiment, name: str, arm: Arm | None, base: Arm | None, phase: ArmPhase) -> ArmStatus:
    """One arm's status from its results and the baseline's."""
    out = ArmStatus(name=name, run=exp.run_name(name), phase=phase)
    if arm is None:
        return out
    scores, evals = arm.train_scores(), arm.eval_scores()
    out.seeds_finished = len(arm.final())
    if scores:
        out.score = _fmt(statistics.fmean(scores))
        out.score_std = _fmt(statistics.stdev(scores)) if len(scores) > 1 else "0.00"
    if evals:
        out.eval_score = _fmt(statistics.fmean(evals))
    if base is None or name == exp.spec.baseline:
        return out
    c = stats.compare(scores, base.train_scores())
    if c is not None:
        out.difference, out.p = _fmt(c.diff), _fmt(c.welch.p, 3)
        out.ci_low, out.ci_high = _fmt(c.ci[0]), _fmt(c.ci[1])
        out.mde = _fmt(c.mde) if c.mde != float("inf") else None
    pair = stats.paired(arm.train_scores_by_seed(), base.train_scores_by_seed())
    if pair is not None:
        out.paired_p = _fmt(pair.p, 3)
    if arm.final() and base.final():
        diffs = stats.achievement_diffs(arm.train_success(), base.train_success(), ACHIEVEMENTS)
        out.lost = [d.name for d in diffs if d.lost]
    return out


def aggregate(exp: EnvGenExperiment, arms: Mapping[str, Arm], phases: Mapping[str, ArmPhase]) -> ExperimentStatus:
    """The experiment's status (without conditions) from each arm's results and its run's phase."""
    base = arms.get(exp.spec.baseline)
    rows = [arm_status(exp, a.name, arms.get(a.name), base, phases.get(a.name, "Pending")) for a in exp.spec.arms]
    compared = [r for r in rows if r.difference is not None]
    best = max(compared, key=lambda r: float(r.difference or 0), default=None)
    return ExperimentStatus(
        arm_count=len(rows),
        arms_finished=sum(1 for r in rows if r.phase in ("Succeeded", "Failed")),
        arms=rows,
        best_arm=best.name if best else None,
        best_difference=best.difference if best else None,
        best_p=best.p if best else None,
    )
