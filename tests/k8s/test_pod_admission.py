"""Training Pods on a real API server: Pod Security Admission ``restricted``, refused Pods, Pods that find no
node, per-seed claims, an evicted Pod retried on the same checkpoint location.

The real Job controller creates the Pods (so admission judges them); the test plays the kubelet.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from envgen.k8s import TASK_ANNOTATION
from envgen.k8s.jobs import POD_SECURITY_ENV

from .conftest import RealServer
from .harness import RESTRICTED, Cluster, JobPlayer, OperatorProcess, call, eventually
from .test_operator import small_spec

pytestmark = pytest.mark.real_server


@pytest.fixture
async def restricted(
    real_server: RealServer, real_cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Cluster]:
    """A namespace that enforces PSA ``restricted``, the operator on it with an fsGroup default (the chart's)."""
    monkeypatch.setenv(POD_SECURITY_ENV, '{"fsGroup": 10001}')
    c = real_cluster
    await call(c.core.patch_namespace, c.namespace, {"metadata": {"labels": RESTRICTED}})
    op = OperatorProcess(c)
    await op.start()
    try:
        yield c
    finally:
        await op.stop()


async def _pods(c: Cluster, job: str) -> list[dict[str, Any]]:
    pods = (await call(c.core.list_namespaced_pod, c.namespace, label_selector=f"job-name={job}")).items
    return sorted((c.api.sanitize_for_serialization(p) for p in pods), key=lambda p: p["metadata"]["creationTimestamp"])


def _claim(pod: dict[str, Any]) -> str:
    (claim,) = [v["persistentVolumeClaim"]["claimName"] for v in pod["spec"]["volumes"] if "persistentVolumeClaim" in v]
    return str(claim)


async def test_a_multi_seed_run_succeeds_under_pod_security_restricted(restricted: Cluster) -> None:
    c, player = restricted, JobPlayer(restricted)
    spec = small_spec(seeds=2)
    spec["resources"]["podSecurity"] = {"runAsUser": 2000}  # the run's own UID over the operator's defaults
    await c.create_run("psa", spec)
    evicted: dict[str, Any] = {}
    for phase in ("c1", "c2", "final"):
        names = {f"psa-{phase}-s{seed}" for seed in (0, 1)}
        jobs = await c.wait_jobs("psa", names, timeout=60)
        if phase == "c2":
            evicted = await player.evict(jobs["psa-c2-s1"])
        for name in sorted(names):
            await player.succeed(jobs[name])
    done = await c.wait_condition("psa", "Succeeded", timeout=60)
    assert done["reason"] == "AllCyclesCompleted"

    pods = {name: await _pods(c, name) for name in await c.jobs("psa")}
    for pod in (p for ps in pods.values() for p in ps):  # admitted under `restricted`, as the operator wrote them
        sc, (container,) = pod["spec"]["securityContext"], pod["spec"]["containers"]
        assert sc["runAsNonRoot"] is True and sc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert sc["runAsUser"] == 2000 and sc["fsGroup"] == 10001
        csc = container["securityContext"]
        assert csc["allowPrivilegeEscalation"] is False and csc["readOnlyRootFilesystem"] is True
        assert csc["capabilities"] == {"drop": ["ALL"]}
        assert {m["mountPath"] for m in container["volumeMounts"]} >= {"/tmp", "/home/envgen", "/workspace"}

    # Parallel seeds share no ReadWriteOnce claim: one per seed, each mounted by that seed's Pods only.
    seeds_of: dict[str, set[str]] = {}
    for name, ps in pods.items():
        for pod in ps:
            seeds_of.setdefault(_claim(pod), set()).add(name.rsplit("-", 1)[1])
    assert seeds_of == {"psa-checkpoints-s0": {"s0"}, "psa-checkpoints-s1": {"s1"}}
    claims = (await call(c.core.list_namespaced_persistent_volume_claim, c.namespace)).items
    assert {cl.metadata.name: cl.spec.access_modes for cl in claims} == {
        "psa-checkpoints-s0": ["ReadWriteOnce"],
        "psa-checkpoints-s1": ["ReadWriteOnce"],
    }
    run = await c.run("psa")
    assert run is not None and run["status"]["checkpointClaims"] == ["psa-checkpoints-s0", "psa-checkpoints-s1"]

    # The evicted Pod was retried (podFailurePolicy: a disruption is no failure) on the same claim and task, so
    # the new Pod finds the trainer's in-task checkpoint where the evicted one wrote it.
    first, retried = pods["psa-c2-s1"]
    assert first["metadata"]["name"] == evicted["metadata"]["name"]
    assert _claim(retried) == _claim(evicted)
    task = TASK_ANNOTATION
    assert retried["metadata"]["annotations"][task] == evicted["metadata"]["annotations"][task]
    assert run["status"]["jobs"]["failed"] == 0 and run["status"]["jobs"]["succeeded"] == 6

    # Deleting the run deletes every claim made for it.
    await c.delete_run("psa")

    async def claims_gone() -> bool:
        left = (await call(c.core.list_namespaced_persistent_volume_claim, c.namespace)).items
        return all(cl.metadata.deletion_timestamp for cl in left)

    await eventually(claims_gone, 60, "the run's claims deleted")


async def test_refused_pods_show_as_a_condition_and_an_event_until_allowed(restricted: Cluster) -> None:
    c, player = restricted, JobPlayer(restricted)
    quota = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "no-pods"}}
    quota["spec"] = {"hard": {"pods": "0"}}
    await call(c.core.create_namespaced_resource_quota, c.namespace, quota)
    await c.create_run("blocked", small_spec(cycles=1))
    refused = await c.wait_condition("blocked", "PodsCreated", "False", timeout=60)
    assert refused["reason"] == "FailedCreate"
    assert "blocked-c1-s0" in refused["message"] and "quota" in refused["message"], refused["message"]

    async def warned() -> list[dict[str, Any]]:
        return [e for e in await c.events("blocked") if e["type"] == "Warning" and e["reason"] == "FailedCreate"]

    (event,) = await eventually(warned, 20, "a FailedCreate Warning Event on the run")
    assert "quota" in event["message"]

    await call(c.core.delete_namespaced_resource_quota, "no-pods", c.namespace)
    created = await c.wait_condition("blocked", "PodsCreated", "True", timeout=120)
    assert created["reason"] == "Created"
    for name in ("blocked-c1-s0", "blocked-final-s0"):
        jobs = await c.wait_jobs("blocked", {name}, timeout=60)
        await player.succeed(jobs[name])
    await c.wait_condition("blocked", "Succeeded", timeout=60)
    assert len(await warned()) == 1  # one Event per refusal, not one per reconcile


async def test_a_pod_that_finds_no_node_shows_as_a_condition_and_an_event_until_it_runs(restricted: Cluster) -> None:
    c, player = restricted, JobPlayer(restricted)
    await c.create_run("nonode", small_spec(cycles=1))
    jobs = await c.wait_jobs("nonode", {"nonode-c1-s0"}, timeout=60)
    why = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu. preemption: 0/3 nodes are available."
    await player.unschedulable(jobs["nonode-c1-s0"], why)
    waiting = await c.wait_condition("nonode", "PodsScheduled", "False", timeout=60)
    assert waiting["reason"] == "Unschedulable"
    assert "nonode-c1-s0" in waiting["message"] and "Insufficient nvidia.com/gpu" in waiting["message"]

    async def warned() -> list[dict[str, Any]]:
        return [e for e in await c.events("nonode") if e["type"] == "Warning" and e["reason"] == "Unschedulable"]

    (event,) = await eventually(warned, 20, "an Unschedulable Warning Event on the run")
    assert "Insufficient nvidia.com/gpu" in event["message"]

    await player.succeed(jobs["nonode-c1-s0"])  # a node was found and the task ran
    scheduled = await c.wait_condition("nonode", "PodsScheduled", "True", timeout=60)
    assert scheduled["reason"] == "Scheduled"
    final = await c.wait_jobs("nonode", {"nonode-final-s0"}, timeout=60)
    await player.succeed(final["nonode-final-s0"])
    await c.wait_condition("nonode", "Succeeded", timeout=60)
    assert len(await warned()) == 1  # one Event per message, not one per reconcile
