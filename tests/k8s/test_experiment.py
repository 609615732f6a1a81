"""EnvGenExperiment on a real API server: the CRD refuses bad experiments naming the field; the operator creates
one owned EnvGenRun per arm, aggregates the arms' results into the status as they finish (the test plays the
runs finished by writing their status and EnvGenCycles), survives a restart, and deleting the experiment deletes
its runs through the real garbage collector."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import kopf
import pytest
from spec.corpus import committed

from envgen.contracts import TrainingMetrics
from envgen.experiment import stats
from envgen.experiment.cluster import LABEL_ARM, LABEL_EXPERIMENT, register
from envgen.experiment.model import PLURAL
from envgen.k8s import API_GROUP, API_VERSION, CYCLES_PLURAL, LABEL_RUN, RUNS_PLURAL
from envgen.k8s.operator import OperatorConfig

from .harness import Cluster, OperatorProcess, call, eventually, refusals
from .test_kubectl import kubectl, kubectl_binary

pytestmark = pytest.mark.real_server

INVALID = Path(__file__).resolve().parents[1] / "experiment" / "invalid"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
NONE_SCORES = {0: 5.0, 1: 6.0, 2: 7.0}
HEURISTIC_SCORES = {0: 7.5, 1: 8.0, 2: 9.5}


class ExperimentOperator(OperatorProcess):
    """The experiment handlers alone (no EnvGenRun reconciler: the test plays the arms' runs)."""

    def registry(self, cfg: OperatorConfig) -> kopf.OperatorRegistry:
        registry = kopf.OperatorRegistry()

        @kopf.on.login(registry=registry)
        def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
            return kopf.login_via_client(**kwargs)

        register(registry, cfg.api)
        return registry


def experiment(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": "EnvGenExperiment",
        "metadata": {"name": name, "labels": {QUEUE_LABEL: "team-a"}},
        "spec": {
            "seeds": 3,
            "template": {
                "designer": {"type": "heuristic"},
                "cycles": 1,
                "resources": {"requests": {"cpu": "1", "memory": "1Gi"}},
                "training": {"designedEnvSteps": 4096, "gameSteps": 4096, "finalSteps": 8192},
            },
            "arms": [{"name": "none", "designer": {"type": "none"}}, {"name": "heuristic"}],
        },
    }


async def arm_runs(cluster: Cluster, exp: str) -> dict[str, dict[str, Any]]:
    items = (
        await call(
            cluster.custom.list_namespaced_custom_object,
            API_GROUP,
            API_VERSION,
            cluster.namespace,
            RUNS_PLURAL,
            label_selector=f"{LABEL_EXPERIMENT}={exp}",
        )
    )["items"]
    return {i["metadata"]["name"]: i for i in items}


async def play_finished(cluster: Cluster, run: str, scores: dict[int, float]) -> None:
    """What the run operator leaves when an arm's run ends: its final EnvGenCycle with one task record per seed
    (the trainer's compact metrics), and Succeeded=True."""
    body = {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": "EnvGenCycle",
        "metadata": {"name": f"{run}-final", "labels": {LABEL_RUN: run}},
        "spec": {"run": run, "cycle": 2, "phase": "final"},
    }
    ns, custom = cluster.namespace, cluster.custom
    await call(custom.create_namespaced_custom_object, API_GROUP, API_VERSION, ns, CYCLES_PLURAL, body)
    tasks = []
    for seed, score in scores.items():
        metrics = TrainingMetrics(
            run=run,
            name=f"{run}-final-s{seed}",
            phase="final",
            cycle=2,
            seed=seed,
            global_step=16384,
            score=score,
            train_score=score,
            train_success={"wake_up": 80.0 + seed, "collect_wood": 90.0},
        )
        tasks.append(
            {"name": metrics.name, "seed": seed, "attempt": 1, "state": "succeeded", "metrics": metrics.compact()}
        )
    await call(
        custom.patch_namespaced_custom_object_status,
        API_GROUP,
        API_VERSION,
        ns,
        CYCLES_PLURAL,
        f"{run}-final",
        {"status": {"tasks": tasks}},
    )
    condition = {
        "type": "Succeeded",
        "status": "True",
        "reason": "AllCyclesCompleted",
        "message": "done",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }
    await call(
        custom.patch_namespaced_custom_object_status,
        API_GROUP,
        API_VERSION,
        ns,
        RUNS_PLURAL,
        run,
        {"status": {"conditions": [condition]}},
    )


async def test_an_experiment_runs_its_arms_and_compares_them(real_cluster: Cluster) -> None:
    cluster, ns = real_cluster, real_cluster.namespace
    exp = await call(
        cluster.custom.create_namespaced_custom_object, API_GROUP, API_VERSION, ns, PLURAL, experiment("ab")
    )
    assert exp["spec"]["baseline"] == "none" and exp["spec"]["firstSeed"] == 0  # CRD defaults
    op = ExperimentOperator(cluster)
    await op.start()
    try:
        runs = await eventually(lambda: _when(arm_runs(cluster, "ab"), lambda r: len(r) == 2), 30, "two arm runs")
        assert sorted(runs) == ["ab-heuristic", "ab-none"]
        for arm, run in (("none", runs["ab-none"]), ("heuristic", runs["ab-heuristic"])):
            md = run["metadata"]
            (owner,) = md["ownerReferences"]
            assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
                "EnvGenExperiment",
                "ab",
                exp["metadata"]["uid"],
                True,
            )
            assert md["labels"][LABEL_EXPERIMENT] == "ab" and md["labels"][LABEL_ARM] == arm
            assert md["labels"][QUEUE_LABEL] == "team-a"  # Kueue sees the experiment's queue on every arm
            spec = run["spec"]
            assert (spec["seeds"], spec["firstSeed"]) == (3, 0)
            assert spec["resources"]["requests"] == {"cpu": "1", "memory": "1Gi"}
            assert spec["training"]["designedEnvSteps"] + spec["training"]["gameSteps"] == 8192
        assert runs["ab-none"]["spec"]["designer"]["type"] == "none"
        assert runs["ab-heuristic"]["spec"]["designer"]["type"] == "heuristic"
        status = await eventually(lambda: _status(cluster, "ab", lambda s: s.get("armCount") == 2), 30, "status")
        assert _cond(status, "Running") == "True" and _cond(status, "Succeeded") == "False"

        # the operator stops; an arm finishes meanwhile; the restarted operator finds it and creates nothing twice
        await op.stop()
        await play_finished(cluster, "ab-none", NONE_SCORES)
        await op.start()
        status = await eventually(
            lambda: _status(cluster, "ab", lambda s: _arm(s, "none").get("seedsFinished") == 3), 30, "none aggregated"
        )
        none = _arm(status, "none")
        assert none["phase"] == "Succeeded" and none["score"] == "6.00" and none["scoreStd"] == "1.00"
        assert len(await arm_runs(cluster, "ab")) == 2 and _cond(status, "Running") == "True"

        await play_finished(cluster, "ab-heuristic", HEURISTIC_SCORES)
        status = await eventually(
            lambda: _status(cluster, "ab", lambda s: _cond(s, "Succeeded") == "True"), 30, "experiment Succeeded"
        )
        h = _arm(status, "heuristic")
        a, b = list(HEURISTIC_SCORES.values()), list(NONE_SCORES.values())
        assert h["difference"] == f"{statistics.fmean(a) - statistics.fmean(b):.2f}" == "2.33"
        assert h["p"] == f"{stats.welch(a, b).p:.3f}"
        assert float(h["ciLow"]) <= 2.33 <= float(h["ciHigh"]) and float(h["mde"]) > 0
        assert h["pairedP"] == f"{stats.paired(HEURISTIC_SCORES, NONE_SCORES).p:.3f}"  # type: ignore[union-attr]
        assert (status["bestArm"], status["bestDifference"], status["armsFinished"]) == ("heuristic", "2.33", 2)
        assert _cond(status, "Running") == "False" and _cond(status, "Failed") == "False"
        assert status["observedGeneration"] == exp["metadata"]["generation"]
        reasons = {e["reason"] for e in await cluster.events("ab")}
        assert {"RunCreated", "AllArmsSucceeded"} <= reasons
    finally:
        await op.stop()

    # deleting the experiment deletes its runs: the garbage collector follows their ownerReferences
    await call(cluster.custom.delete_namespaced_custom_object, API_GROUP, API_VERSION, ns, PLURAL, "ab")

    async def collected() -> bool:
        return not await arm_runs(cluster, "ab")

    await eventually(collected, 90, "arm runs garbage-collected")


async def test_the_apiserver_refuses_the_invalid_experiments(real_cluster: Cluster) -> None:
    """Every invalid experiment of the corpus is refused at admission, naming its field; nothing is created."""
    cases = committed(INVALID)
    assert len(cases) >= 15
    accepted, unnamed = await refusals(real_cluster, PLURAL, cases)
    assert not accepted, f"the API server accepted {accepted}"
    assert not unnamed, unnamed
    listed = await call(
        real_cluster.custom.list_namespaced_custom_object, API_GROUP, API_VERSION, real_cluster.namespace, PLURAL
    )
    assert listed["items"] == []
    # what the model takes, the CRD takes: a share as an integer or a quoted decimal
    good = experiment("shares")
    good["spec"]["arms"] += [{"name": "all", "designedShare": 1}, {"name": "most", "designedShare": "0.75"}]
    created = await real_cluster.create(PLURAL, good)
    assert [a.get("designedShare") for a in created["spec"]["arms"]] == [None, None, 1, "0.75"]


async def _when(value: Any, ok: Any) -> Any:
    got = await value
    return got if ok(got) else None


async def _status(cluster: Cluster, name: str, ok: Any) -> dict[str, Any] | None:
    body = await cluster.get(PLURAL, name)
    status = (body or {}).get("status") or {}
    return status if status and ok(status) else None


def _cond(status: dict[str, Any], ctype: str) -> str | None:
    return next((c["status"] for c in status.get("conditions") or [] if c["type"] == ctype), None)


def _arm(status: dict[str, Any], name: str) -> dict[str, Any]:
    return next((a for a in status.get("arms") or [] if a["name"] == name), {})


@pytest.mark.skipif(kubectl_binary() is None, reason="kubectl is absent (scripts/install_k8s_tools.sh installs it)")
async def test_kubectl_explains_and_lists_experiments(real_cluster: Cluster, tmp_path: Path) -> None:
    text = " ".join((await kubectl(real_cluster, tmp_path, "explain", "egx.spec.arms.designedShare")).split())
    assert "Share of each cycle's steps spent in the designed environments" in text
    text = " ".join((await kubectl(real_cluster, tmp_path, "explain", "envgenexperiments.status.arms.mde")).split())
    assert "Minimum detectable effect" in text
    await real_cluster.create(PLURAL, experiment("listed"))
    header = (await kubectl(real_cluster, tmp_path, "get", "egx")).splitlines()[0].split()
    assert header[:7] == ["NAME", "ARMS", "FINISHED", "BEST", "DIFFERENCE", "P", "SUCCEEDED"]
