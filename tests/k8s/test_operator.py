"""The operator end to end: kmock (or ENVGEN_TEST_KUBECONFIG) as the API, the operator in-process."""

from __future__ import annotations

import asyncio
import threading
import urllib.parse
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from prometheus_client import generate_latest

from envgen.k8s import API_GROUP, API_VERSION, RUNS_PLURAL
from envgen.k8s.designing import DesignerSessions
from envgen.k8s.metrics import REGISTRY
from envgen.k8s.reconcile import Guards, reconcile

from .harness import Cluster, JobPlayer, OperatorProcess, call, eventually


def small_spec(**overrides: Any) -> dict[str, Any]:
    """A tiny run with the deterministic heuristic designer."""
    spec: dict[str, Any] = {
        "designer": {"type": "heuristic"},
        "cycles": 2,
        "envsPerCycle": 2,
        "training": {"designedEnvSteps": 64, "gameSteps": 64, "finalSteps": 64, "evalEpisodes": 1, "evalRuns": 1},
        "resources": {"image": "envgen-trainer:test", "ttlSecondsAfterFinished": 60},
    }
    return {**spec, **overrides}


def sample(name: str, labels: dict[str, str]) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


async def test_run_survives_a_restart_between_every_step(
    cluster: Cluster, operator: OperatorProcess, player: JobPlayer
) -> None:
    ns = cluster.namespace
    created_before = sample("envgen_training_jobs_created_total", {"namespace": ns}) or 0.0
    await cluster.create_run("r1", small_spec())
    for k, name in enumerate(("r1-c1-s0", "r1-c2-s0", "r1-final-s0")):
        jobs = await cluster.wait_jobs("r1", {name})
        await operator.restart()
        await player.succeed(jobs[name], score=10.0 + k)
        await operator.restart()
    done = await cluster.wait_condition("r1", "Succeeded")
    operator.check()
    assert done["reason"] == "AllCyclesCompleted"
    assert set(await cluster.jobs("r1")) == {"r1-c1-s0", "r1-c2-s0", "r1-final-s0"}  # no duplicates
    run = await cluster.run("r1")
    assert run is not None
    status = run["status"]
    assert status["cyclesCompleted"] == 2 and status["currentCycle"] == 3
    assert status["jobs"] == {"active": 0, "succeeded": 3, "failed": 0}
    assert [s["score"] for s in status["scores"]] == ["10.00", "11.00", "12.00"]
    assert status["bestCycle"] == 3 and status["finalScore"] == "12.00"
    assert status["message"].endswith("score 12.00") and done["message"] == status["message"]  # rounded alike
    assert {"name": "collect_wood", "mean": "80.00", "std": "0.00"} in status["skills"]
    assert status["observedGeneration"] == run["metadata"]["generation"]
    assert status["startTime"] and status["completionTime"]
    cycles = await cluster.cycles("r1")
    assert set(cycles) == {"r1-c1", "r1-c2", "r1-final"}
    assert cycles["r1-c1"]["spec"]["design"]["designer"] == "heuristic"
    assert [t["name"] for t in cycles["r1-c2"]["status"]["tasks"]] == ["r1-c2-s0"]
    reasons = {e["reason"] for e in await cluster.events("r1")}
    assert {"CycleDesigned", "TrainingJobCreated", "TrainingJobSucceeded", "AllCyclesCompleted"} <= reasons
    annotations = run["metadata"].get("annotations") or {}
    assert not any(k.startswith("kopf.zalando.org") for k in annotations)
    assert run["metadata"]["finalizers"] == ["envgen.dev/cleanup"]
    created = sample("envgen_training_jobs_created_total", {"namespace": ns})
    assert created is not None and created - created_before == 3
    text = generate_latest(REGISTRY).decode()
    assert f'envgen_run_condition{{condition="Succeeded",name="r1",namespace="{ns}",status="True"}} 1.0' in text
    assert f'envgen_skill_success_ratio{{name="r1",namespace="{ns}",skill="collect_wood"}} 0.8' in text


async def test_failed_job_is_retried_and_counted(
    cluster: Cluster, operator: OperatorProcess, player: JobPlayer
) -> None:
    await cluster.create_run("r2", small_spec(cycles=1))
    jobs = await cluster.wait_jobs("r2", {"r2-c1-s0"})
    pods = await player.finish(jobs["r2-c1-s0"], exit_code=1)
    if cluster.job_mode == "kubelet":  # the job controller retried the Pod once (backoffLimit: 1)
        assert pods == 2
    jobs = await cluster.wait_jobs("r2", {"r2-c1-s0-r2"})
    assert jobs["r2-c1-s0-r2"]["metadata"]["labels"]["envgen.dev/attempt"] == "2"
    await player.succeed(jobs["r2-c1-s0-r2"])
    jobs = await cluster.wait_jobs("r2", {"r2-final-s0"})
    await player.succeed(jobs["r2-final-s0"])
    await cluster.wait_condition("r2", "Succeeded")
    run = await cluster.run("r2")
    assert run is not None and run["status"]["jobs"]["failed"] == 1
    record = (await cluster.cycles("r2"))["r2-c1"]["status"]["tasks"][0]
    assert record["name"] == "r2-c1-s0" and record["state"] == "failed" and record["reason"] == "BackoffLimitExceeded"
    assert "TrainingJobFailed" in {e["reason"] for e in await cluster.events("r2")}
    failed = sample(
        "envgen_training_jobs_failed_total", {"namespace": cluster.namespace, "reason": "BackoffLimitExceeded"}
    )
    assert failed == 1.0


async def test_succeeded_job_without_metrics_counts_as_failed(
    cluster: Cluster, operator: OperatorProcess, player: JobPlayer
) -> None:
    await cluster.create_run("r3", small_spec(maxFailedTasks=1))
    jobs = await cluster.wait_jobs("r3", {"r3-c1-s0"})
    await player.finish(jobs["r3-c1-s0"], exit_code=0, message=None)
    failed = await cluster.wait_condition("r3", "Failed")
    assert failed["reason"] == "MaxFailedTasksReached"
    succeeded = await cluster.condition("r3", "Succeeded")
    assert succeeded is not None and succeeded["status"] == "False"
    record = (await cluster.cycles("r3"))["r3-c1"]["status"]["tasks"][0]
    assert record["state"] == "failed" and record["reason"] == "MetricsUnavailable"
    assert set(await cluster.jobs("r3")) == {"r3-c1-s0"}  # no retry after the run failed


async def test_suspend_stops_new_jobs_and_resume_continues(
    cluster: Cluster, operator: OperatorProcess, player: JobPlayer
) -> None:
    await cluster.create_run("r4", small_spec(cycles=1, suspend=True))
    await cluster.wait_condition("r4", "Suspended")
    running = await cluster.condition("r4", "Running")
    assert running is not None and running["status"] == "False" and running["reason"] == "Suspended"
    assert await cluster.jobs("r4") == {}
    assert await _claims_named(cluster, "r4", [])  # no Job yet, so no claim: status names none
    await cluster.patch_run("r4", {"spec": {"suspend": False}})
    jobs = await cluster.wait_jobs("r4", {"r4-c1-s0"})
    await cluster.wait_condition("r4", "Suspended", "False")
    await cluster.patch_run("r4", {"spec": {"suspend": True}})
    await cluster.wait_condition("r4", "Suspended")
    await player.succeed(jobs["r4-c1-s0"])  # the running Job may finish while suspended
    await eventually(lambda: _cycles_completed(cluster, "r4", 1), what="cycle 1 recorded while suspended")
    assert set(await cluster.jobs("r4")) == {"r4-c1-s0"}  # but the final phase waits
    await cluster.patch_run("r4", {"spec": {"suspend": False}})
    jobs = await cluster.wait_jobs("r4", {"r4-final-s0"})
    await player.succeed(jobs["r4-final-s0"])
    await cluster.wait_condition("r4", "Succeeded")


async def _cycles_completed(cluster: Cluster, name: str, n: int) -> bool:
    run = await cluster.run(name)
    return bool(run and (run.get("status") or {}).get("cyclesCompleted") == n)


async def test_delete_mid_run_cleans_up(cluster: Cluster, operator: OperatorProcess, player: JobPlayer) -> None:
    await cluster.create_run("r5", small_spec())
    await cluster.wait_jobs("r5", {"r5-c1-s0"})
    await cluster.delete_run("r5")
    await eventually(lambda: _gone(cluster, "r5"), what="r5 deleted (not stuck Terminating)")
    assert await cluster.jobs("r5") == {}
    assert await cluster.cycles("r5") == {}
    text = generate_latest(REGISTRY).decode()
    assert 'name="r5"' not in text


async def _gone(cluster: Cluster, name: str) -> bool:
    return await cluster.run(name) is None


async def test_invalid_spec_fails_permanently_with_the_reason(cluster: Cluster, operator: OperatorProcess) -> None:
    bad = small_spec(agent={"numEnvs": 3, "rolloutSteps": 10, "minibatches": 4})
    if cluster.real:  # the CRD's CEL rule refuses it at admission
        with pytest.raises(ApiException) as refused:
            await cluster.create_run("r6", bad)
        assert refused.value.status == 422
        assert "spec.agent" in str(refused.value.body) and "divisible by minibatches" in str(refused.value.body)
        assert await cluster.run("r6") is None
        return
    await cluster.create_run("r6", bad)
    failed = await cluster.wait_condition("r6", "Failed")
    assert failed["reason"] == "InvalidSpec"
    assert "spec.agent" in failed["message"] and "divisible by minibatches" in failed["message"]
    assert await cluster.jobs("r6") == {}
    assert "InvalidSpec" in {e["reason"] for e in await cluster.events("r6")}


QUEUE_LABEL = "kueue.x-k8s.io/queue-name"


@pytest.mark.parametrize("via", ["spec", "label"])
async def test_queued_jobs_wait_for_admission(
    cluster: Cluster, operator: OperatorProcess, player: JobPlayer, via: str
) -> None:
    """With a Kueue queue the Jobs start suspended; the test plays Kueue by unsuspending them."""
    name = f"q-{via}"
    spec = small_spec(cycles=1, **({"queueName": "team-a"} if via == "spec" else {}))
    await cluster.create_run(name, spec, labels={QUEUE_LABEL: "team-a"} if via == "label" else None)
    for task in (f"{name}-c1-s0", f"{name}-final-s0"):
        job = (await cluster.wait_jobs(name, {task}))[task]
        assert job["metadata"]["labels"][QUEUE_LABEL] == "team-a" and job["spec"]["suspend"] is True
        queued = await cluster.wait_condition(name, "Queued")
        assert queued["reason"] == "WaitingForAdmission" and task in queued["message"]
        await operator.restart()
        await asyncio.sleep(1.0)  # several reconciles of a suspended Job: pending, neither failed nor recreated
        run = await cluster.run(name)
        assert run is not None and run["status"]["jobs"]["failed"] == 0
        assert set(await cluster.jobs(name)) <= {f"{name}-c1-s0", f"{name}-final-s0"}
        await call(cluster.batch.patch_namespaced_job, task, cluster.namespace, {"spec": {"suspend": False}})
        admitted = await cluster.wait_condition(name, "Queued", "False")
        assert admitted["reason"] == "Admitted"
        await player.succeed(job)
    await cluster.wait_condition(name, "Succeeded")
    assert set(await cluster.jobs(name)) == {f"{name}-c1-s0", f"{name}-final-s0"}


async def test_no_queue_means_no_queue_label_and_no_queued_condition(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    await cluster.create_run("plain", small_spec(cycles=1))
    job = (await cluster.wait_jobs("plain", {"plain-c1-s0"}))["plain-c1-s0"]
    assert QUEUE_LABEL not in job["metadata"]["labels"] and not job["spec"].get("suspend")
    assert await cluster.condition("plain", "Queued") is None
    await eventually(
        lambda: _claims_named(cluster, "plain", ["plain-checkpoints-s0"]), what="checkpointClaim in status"
    )


async def _claims_named(cluster: Cluster, name: str, claims: list[str]) -> bool:
    run = await cluster.run(name)
    return bool(run and (run.get("status") or {}).get("checkpointClaims", []) == claims)


async def test_a_finished_job_starts_the_next_at_once(cluster: Cluster, player: JobPlayer) -> None:
    """With the timer ten minutes away, only the Job's event can move the run on to its next cycle."""
    operator = OperatorProcess(cluster, interval_seconds=600)
    await operator.start()
    try:
        await cluster.create_run("ev", small_spec())
        jobs = await cluster.wait_jobs("ev", {"ev-c1-s0"}, timeout=60)
        await player.succeed(jobs["ev-c1-s0"])
        jobs = await cluster.wait_jobs("ev", {"ev-c1-s0", "ev-c2-s0"}, timeout=30)
        await player.succeed(jobs["ev-c2-s0"])
        await cluster.wait_jobs("ev", {"ev-c1-s0", "ev-c2-s0", "ev-final-s0"}, timeout=30)
    finally:
        await operator.stop()


def counting_client(
    cluster: Cluster, before: Callable[[str], None] | None = None
) -> tuple[client.ApiClient, Counter[str]]:
    """An API client for the operator, and the tally of its requests as ``METHOD resource`` (``jobs``,
    ``envgenruns/*/status``: names and namespaces left out); ``before`` sees each such key before its request."""
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    tally: Counter[str] = Counter()
    lock = threading.Lock()
    request = api.rest_client.request

    def counted(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        parts = urllib.parse.urlsplit(url).path.split("/namespaces/", 1)[-1].split("/")[1:]
        key = f"{method} {'/'.join([parts[0], *(['*'] if len(parts) > 1 else []), *parts[2:]])}"
        with lock:
            tally[key] += 1
        if before is not None:
            before(key)
        return request(method, url, *args, **kwargs)

    api.rest_client.request = counted
    return api, tally


async def test_a_cycle_costs_a_few_api_requests(cluster: Cluster, player: JobPlayer) -> None:
    """Job events alone move the run (the timer is ten minutes away): the claim is created once, the Pods are
    listed once per finished Job (never while Jobs run), and the status is written once per reconcile."""
    api, tally = counting_client(cluster)
    operator = OperatorProcess(cluster, api=api, interval_seconds=600)
    await operator.start()
    try:
        await cluster.create_run("cheap", small_spec(cycles=1))
        for task in ("cheap-c1-s0", "cheap-final-s0"):
            jobs = await cluster.wait_jobs("cheap", {task}, timeout=60)
            await player.succeed(jobs[task])
        await cluster.wait_condition("cheap", "Succeeded")
    finally:
        await operator.stop()
        api.close()
    assert tally["POST persistentvolumeclaims"] == 1, tally
    assert tally["GET pods"] == 2, tally
    assert tally["GET envgencycles/*"] == 0, tally  # a record is patched over the listed version
    assert tally["POST jobs"] == 2 and tally["POST envgencycles"] == 2, tally
    # Created, cycle 1 recorded, succeeded; one more when Kopf's finalizer came between a read and a write.
    assert tally["PATCH envgenruns/*/status"] <= 4, tally
    assert sum(tally.values()) <= 2 * 17, tally  # two Jobs (cycle 1, the final phase): 15 each (23 before)


async def test_reconciles_that_would_find_nothing_new_make_no_requests(cluster: Cluster) -> None:
    """A Job's later events once a reconcile saw it finished, and timer ticks while the run waits on its Job at
    the version the last reconcile left it, cost no API request; a tick at another version (another writer),
    after a running Job's deletion, or past the resync reconciles."""
    api, tally = counting_client(cluster)
    guards, sessions = Guards(), DesignerSessions()
    await cluster.create_run("quiet", small_spec())
    ns = cluster.namespace

    async def tick(version: str | None = None, resync: float = 600.0) -> int:
        """A timer tick at ``version`` (the run's as watched, by default); the requests it made."""
        if version is None:
            run = await cluster.run("quiet")
            assert run is not None
            version = run["metadata"]["resourceVersion"]
        before = sum(tally.values())
        retry = await asyncio.to_thread(reconcile, api, ns, "quiet", guards, sessions, version=version, resync=resync)
        assert retry is None
        return sum(tally.values()) - before

    try:
        assert await asyncio.to_thread(reconcile, api, ns, "quiet", guards, sessions, finished_job="uid-1") is None
        made = sum(tally.values())
        assert tally["POST jobs"] == 1 and made > 1, tally  # the first cycle's Job: the run waits on it
        await _pod_started(cluster, "quiet-c1-s0")
        assert await tick() > 0, tally  # the Job had no Pod yet (one may be refused): one more look
        made = sum(tally.values())
        assert await asyncio.to_thread(reconcile, api, ns, "quiet", guards, sessions, finished_job="uid-1") is None
        assert sum(tally.values()) == made, tally
        assert await tick() == 0, tally
        assert await tick("another writer's") > 0, tally
        assert await tick() == 0, tally  # quiet again at the version it read
        guards.get(ns, "quiet").changes += 1  # what a running Job's deletion event does
        assert await tick() > 0, tally
        assert await tick() == 0, tally
        assert await tick(resync=0.0) > 0, tally
        assert tally["POST jobs"] == 1, tally
    finally:
        sessions.close_all()
        api.close()


async def _pod_started(cluster: Cluster, job: str) -> None:
    """The Job has a Pod: the job controller made it, or (kmock) the test says so in the Job's status."""
    if cluster.job_mode == "fake":
        await call(cluster.batch.patch_namespaced_job_status, job, cluster.namespace, {"status": {"active": 1}})
        return

    async def active() -> bool:
        return bool((await call(cluster.batch.read_namespaced_job, job, cluster.namespace)).status.active)

    await eventually(active, 60, f"a Pod of {job}")


async def test_a_deleted_running_job_is_created_again(
    cluster: Cluster, operator: OperatorProcess, player: JobPlayer
) -> None:
    """A run that waits on its Job skips its timer ticks; the Job's deletion makes the next tick create it again."""
    await cluster.create_run("gone", small_spec(cycles=1))
    job = (await cluster.wait_jobs("gone", {"gone-c1-s0"}, timeout=60))["gone-c1-s0"]
    await asyncio.sleep(1.0)  # several timer ticks: the run is quiet
    await call(cluster.batch.delete_namespaced_job, "gone-c1-s0", cluster.namespace, propagation_policy="Background")

    async def recreated() -> bool:
        jobs = await cluster.jobs("gone")
        again = jobs.get("gone-c1-s0")
        return again is not None and again["metadata"]["uid"] != job["metadata"]["uid"]

    await eventually(recreated, what="the deleted Job created again", timeout=30)
    await player.succeed((await cluster.jobs("gone"))["gone-c1-s0"])
    await cluster.wait_jobs("gone", {"gone-c1-s0", "gone-final-s0"}, timeout=30)


@pytest.mark.parametrize("between", ["label", "status"])
async def test_a_status_write_after_another_writer(cluster: Cluster, between: str) -> None:
    """Another writer changes the run between its read and the status write. A label (Kopf's finalizer,
    annotations) leaves status and spec as read: the write is made again over the new version. A status written
    by another replica is a real conflict: the reconcile fails, to be recomputed from a fresh read."""
    ns, changed = cluster.namespace, threading.Event()

    def change(key: str) -> None:
        if key == "PATCH envgenruns/*/status" and not changed.is_set():
            changed.set()
            patch = {"metadata": {"labels": {"team": "a"}}} if between == "label" else {"status": {"message": "x"}}
            patch_run = cluster.custom.patch_namespaced_custom_object_status
            if between == "label":
                patch_run = cluster.custom.patch_namespaced_custom_object
            patch_run(API_GROUP, API_VERSION, ns, RUNS_PLURAL, "rw", patch)

    api, tally = counting_client(cluster, before=change)
    guards, sessions = Guards(), DesignerSessions()
    await cluster.create_run("rw", small_spec(suspend=True))
    try:
        if between == "status":
            with pytest.raises(ApiException) as conflict:
                await asyncio.to_thread(reconcile, api, ns, "rw", guards, sessions)
            assert conflict.value.status == 409
            return
        assert await asyncio.to_thread(reconcile, api, ns, "rw", guards, sessions) is None
    finally:
        sessions.close_all()
        api.close()
    assert tally["PATCH envgenruns/*/status"] == 2 and tally["GET envgenruns/*"] == 2, tally
    await cluster.wait_condition("rw", "Suspended")
