"""The experiment's status from its arms' task metrics: per-arm scores, the comparison with the baseline, the
best arm, lost achievements and the conditions, checked against values computed by hand."""

from __future__ import annotations

import math
import statistics
from typing import Any

import pytest

from envgen.experiment.cluster import conditions, run_phase
from envgen.experiment.model import parse_experiment
from envgen.experiment.results import Arm, arm_of
from envgen.experiment.status import aggregate

EXP = parse_experiment(
    {
        "apiVersion": "envgen.dev/v1alpha1",
        "kind": "EnvGenExperiment",
        "metadata": {"name": "ab"},
        "spec": {
            "seeds": 3,
            "arms": [
                {"name": "none", "designer": {"type": "none"}},
                {"name": "heuristic", "designer": {"type": "heuristic"}},
                {"name": "llm", "designer": {"type": "llm"}},
            ],
        },
    }
)


def final(seed: int, score: float, wake_up: float) -> dict[str, Any]:
    return {
        "phase": "final",
        "seed": seed,
        "globalStep": 100,
        "trainScore": score,
        "score": score + 1,
        "trainSuccess": {"wake_up": wake_up, "collect_wood": 90.0},
    }


def arm(scores: list[float], wake_up: list[float], finished: bool = True) -> Arm:
    cycles = [{"phase": "cycle", "cycle": 1, "seed": s, "globalStep": 50, "score": 1.0} for s in range(len(scores))]
    finals = [final(s, x, w) for s, (x, w) in enumerate(zip(scores, wake_up, strict=True))]
    failed = {"phase": "final", "seed": 9, "error": "boom"}  # a failed task never counts
    return arm_of([*finals, *cycles, failed], [{"usage": {"calls": 2}, "findings": [{}]}], finished)


def test_arms_are_built_from_task_metrics() -> None:
    a = arm([5.0, 6.0], [80.0, 90.0])
    assert sorted(a.seeds) == [0, 1] and a.llm_calls == 2 and a.findings == 1
    assert [len(s.tasks) for s in a.seeds.values()] == [2, 2]
    assert a.train_scores_by_seed() == {0: 5.0, 1: 6.0} and a.eval_scores() == [6.0, 7.0]


def test_aggregate_by_hand() -> None:
    none = arm([5.0, 6.0, 7.0], [85.0, 88.0, 91.0])
    heuristic = arm([7.0, 8.0, 9.0], [10.0, 90.0, 92.0])  # wake_up mean 64 < none's lowest 85: lost
    status = aggregate(EXP, {"none": none, "heuristic": heuristic}, {"none": "Succeeded", "heuristic": "Succeeded"})
    rows = {r.name: r for r in status.arms}
    assert (status.arm_count, status.arms_finished) == (3, 2)
    assert rows["llm"].phase == "Pending" and rows["llm"].seeds_finished == 0 and rows["llm"].score is None
    assert (rows["none"].score, rows["none"].score_std, rows["none"].eval_score) == ("6.00", "1.00", "7.00")
    assert rows["none"].difference is None and rows["none"].lost == []
    h = rows["heuristic"]
    # equal variances of 1, 3 seeds a side: t = 2 / sqrt(2/3) = sqrt 6 with 4 df; for 4 df the two-sided p is
    # 1 - (3/2) x (1 - x^2/3) with x = t / sqrt(t^2 + 4) = sqrt 0.6, i.e. 0.0705
    assert (h.difference, h.p) == ("2.00", "0.070")
    # every per-seed difference is exactly 2: the paired test has no noise
    assert h.paired_p == "0.000"
    assert float(h.ci_low) <= 2.0 <= float(h.ci_high)  # type: ignore[arg-type]
    assert h.lost == ["wake_up"]
    assert (status.best_arm, status.best_difference, status.best_p) == ("heuristic", "2.00", "0.070")
    assert math.isclose(statistics.fmean([7.0, 8.0, 9.0]) - statistics.fmean([5.0, 6.0, 7.0]), 2.0)


def test_conditions_follow_the_arms() -> None:
    none, other = arm([5.0, 6.0], [90.0, 90.0]), arm([5.5, 6.5], [90.0, 90.0])
    arms = {"none": none, "heuristic": other, "llm": other}
    running = aggregate(EXP, arms, {"none": "Succeeded", "heuristic": "Running", "llm": "Running"})
    conds = {c.type: c for c in conditions([], running, 3, None)}
    assert {t: c.status for t, c in conds.items()} == {"Running": "True", "Succeeded": "False", "Failed": "False"}
    assert conds["Running"].message == "1/3 arms finished" and conds["Running"].observed_generation == 3
    previous = [c.dump() for c in conds.values()]
    failed = aggregate(EXP, arms, {"none": "Succeeded", "heuristic": "Failed", "llm": "Succeeded"})
    after = {c.type: c for c in conditions(previous, failed, 3, "EnvGenRun ab-llm refused: forbidden")}
    assert after["Failed"].status == "True" and after["Failed"].message == "failed arms: heuristic"
    assert after["Running"].status == "False" and after["Succeeded"].reason == "ArmFailed"
    assert after["ChildrenCreated"].status == "False"
    # a condition keeps its transition time while its status stays
    assert after["Succeeded"].last_transition_time == conds["Succeeded"].last_transition_time
    done = aggregate(EXP, arms, dict.fromkeys(("none", "heuristic", "llm"), "Succeeded"))  # type: ignore[arg-type]
    ok = {c.type: c for c in conditions(previous, done, 3, None)}
    assert ok["Succeeded"].status == "True" and ok["Succeeded"].message.startswith("best arm heuristic: 0.50")


@pytest.mark.parametrize(
    ("conds", "phase"),
    [
        ([{"type": "Succeeded", "status": "True"}], "Succeeded"),
        ([{"type": "Failed", "status": "True"}, {"type": "Succeeded", "status": "False"}], "Failed"),
        ([{"type": "Running", "status": "True"}], "Running"),
        ([], "Running"),
    ],
)
def test_run_phase(conds: list[dict[str, str]], phase: str) -> None:
    assert run_phase({"status": {"conditions": conds}}) == phase
