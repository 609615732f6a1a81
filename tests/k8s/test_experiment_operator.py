"""An EnvGenExperiment on the whole operator: its arms' runs train through Jobs the test plays (metrics in the
termination message, as the trainer reports them), and the experiment's status aggregates them."""

from __future__ import annotations

import statistics
from typing import Any

from envgen.contracts import SkillStat, TrainingMetrics
from envgen.experiment import stats
from envgen.experiment.model import PLURAL
from envgen.k8s import API_GROUP, API_VERSION
from envgen.k8s.metrics import REGISTRY

from .harness import Cluster, JobPlayer, OperatorProcess, call, eventually

SCORES = {"none": {0: 4.0, 1: 5.0, 2: 6.5}, "heuristic": {0: 6.0, 1: 7.5, 2: 8.0}}


async def test_an_experiment_aggregates_its_arms_jobs(
    cluster: Cluster, operator: OperatorProcess, player: JobPlayer
) -> None:
    body = {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": "EnvGenExperiment",
        "metadata": {"name": "ab"},
        "spec": {
            "seeds": 3,
            "template": {
                "designer": {"type": "heuristic"},
                "envsPerCycle": 2,
                "cycles": 1,
                "training": {"designedEnvSteps": 1024, "gameSteps": 512, "finalSteps": 512},
                "resources": {"image": "envgen-trainer:test"},
            },
            "arms": [{"name": "none", "designer": {"type": "none"}}, {"name": "heuristic"}],
        },
    }
    await call(cluster.custom.create_namespaced_custom_object, API_GROUP, API_VERSION, cluster.namespace, PLURAL, body)
    for phase in ("c1", "final"):
        for arm, scores in SCORES.items():
            run = f"ab-{arm}"
            names = {f"{run}-{phase}-s{seed}" for seed in scores}
            jobs = await cluster.wait_jobs(run, names, timeout=60)
            for seed, score in scores.items():
                await finish(player, jobs[f"{run}-{phase}-s{seed}"], score)

    async def succeeded() -> dict[str, Any] | None:
        exp = await call(
            cluster.custom.get_namespaced_custom_object, API_GROUP, API_VERSION, cluster.namespace, PLURAL, "ab"
        )
        status = exp.get("status") or {}
        conds = {c["type"]: c["status"] for c in status.get("conditions") or []}
        return status if conds.get("Succeeded") == "True" else None

    status = await eventually(succeeded, 60, "the experiment Succeeded")
    arms = {a["name"]: a for a in status["arms"]}
    a, b = list(SCORES["heuristic"].values()), list(SCORES["none"].values())
    assert arms["none"]["seedsFinished"] == 3 and arms["none"]["score"] == f"{statistics.fmean(b):.2f}"
    assert arms["heuristic"]["difference"] == f"{statistics.fmean(a) - statistics.fmean(b):.2f}"
    assert arms["heuristic"]["p"] == f"{stats.welch(a, b).p:.3f}"
    assert status["bestArm"] == "heuristic" and status["armsFinished"] == 2
    labels = {"namespace": cluster.namespace, "experiment": "ab", "arm": "heuristic"}
    assert REGISTRY.get_sample_value("envgen_experiment_arm_seeds_finished", labels) == 3
    diff = REGISTRY.get_sample_value("envgen_experiment_arm_difference", labels)
    assert diff == float(arms["heuristic"]["difference"])


async def finish(player: JobPlayer, job: dict[str, Any], score: float) -> None:
    """End a Job with the metrics the trainer reports: the evaluation and the final phase's training score."""
    task = player.task(job)
    metrics = TrainingMetrics.for_task(
        task,
        steps=task.designed_env_steps + task.game_steps,
        global_step=task.designed_env_steps + task.game_steps,
        score=score,
        train_score=score,
        success={"collect_wood": SkillStat(mean=80.0)},
        train_success={"collect_wood": 80.0, "wake_up": 90.0},
        eval_episodes=task.eval_episodes,
    )
    await player.finish(job, 0, metrics.compact())


async def test_a_run_name_taken_by_another_run_is_reported(cluster: Cluster, operator: OperatorProcess) -> None:
    await cluster.create_run("taken-none", {"designer": {"type": "none"}, "resources": {"image": "trainer:test"}})
    body = {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": "EnvGenExperiment",
        "metadata": {"name": "taken"},
        "spec": {"arms": [{"name": "none", "designer": {"type": "none"}}, {"name": "heuristic"}]},
    }
    await call(cluster.custom.create_namespaced_custom_object, API_GROUP, API_VERSION, cluster.namespace, PLURAL, body)

    async def refused() -> dict[str, Any] | None:
        exp = await call(
            cluster.custom.get_namespaced_custom_object, API_GROUP, API_VERSION, cluster.namespace, PLURAL, "taken"
        )
        conds = {c["type"]: c for c in (exp.get("status") or {}).get("conditions") or []}
        cond = conds.get("ChildrenCreated")
        return cond if cond and cond["status"] == "False" else None

    cond = await eventually(refused, 30, "ChildrenCreated=False")
    assert cond["message"] == "EnvGenRun taken-none exists and does not belong to experiment taken"
    assert await cluster.run("taken-heuristic") is not None  # the other arm still starts
    assert "ChildCreateFailed" in {e["reason"] for e in await cluster.events("taken")}
