"""The operator and an LLM endpoint that goes down: LLMAvailable=False with the next try, no failure counted,
the run continues once the endpoint answers; a run failed LLMUnavailable reopens when the tolerance is raised;
the API key from a Secret never shows in status, Events, EnvGenCycles, logs or metrics."""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes import client
from llm.stub import StubLLM, crafter_answer, error, free_port, streamed
from prometheus_client import generate_latest

from envgen.k8s.metrics import REGISTRY

from .harness import Cluster, JobPlayer, OperatorProcess, call, eventually

API_KEY = "sk-envgen-k8s-test-fedcba9876543210-do-not-leak"


def llm_spec(port: int, tolerance: int) -> dict[str, Any]:
    return {
        "designer": {"type": "llm", "critic": False},
        "llm": {
            "baseURL": f"http://127.0.0.1:{port}/v1",
            "model": "stub",
            "maxRetries": 0,
            "timeoutSeconds": 5,
            "outageToleranceSeconds": tolerance,
            "apiKey": {"secretKeyRef": {"name": "llm", "key": "token"}},
        },
        "cycles": 1,
        "envsPerCycle": 2,
        "maxFailedTasks": 1,
        "training": {"designedEnvSteps": 64, "gameSteps": 64, "finalSteps": 64, "evalEpisodes": 1, "evalRuns": 1},
        "resources": {"image": "envgen-trainer:test", "ttlSecondsAfterFinished": 60},
    }


class Endpoint:
    """A port where no LLM answers until ``up`` starts a stub there."""

    def __init__(self) -> None:
        self.port = free_port()
        self.stub: StubLLM | None = None

    def up(self) -> StubLLM:
        self.stub = StubLLM(self.port)
        return self.stub


@pytest.fixture
async def endpoint(cluster: Cluster) -> AsyncIterator[Endpoint]:
    """The API key's Secret, and an endpoint that is down until the test brings it up."""
    token = base64.b64encode(API_KEY.encode()).decode()
    body = client.V1Secret(metadata=client.V1ObjectMeta(name="llm"), data={"token": token})
    await call(cluster.core.create_namespaced_secret, cluster.namespace, body)
    ep = Endpoint()
    yield ep
    if ep.stub is not None:
        ep.stub.close()


async def finish(cluster: Cluster, player: JobPlayer, name: str) -> None:
    """Play the run's cycle Job and final Job to success; it succeeds with no Job created twice."""
    jobs = await cluster.wait_jobs(name, {f"{name}-c1-s0"}, timeout=120)
    await player.succeed(jobs[f"{name}-c1-s0"])
    jobs = await cluster.wait_jobs(name, {f"{name}-final-s0"})
    await player.succeed(jobs[f"{name}-final-s0"])
    done = await cluster.wait_condition(name, "Succeeded")
    assert done["reason"] == "AllCyclesCompleted"
    assert set(await cluster.jobs(name)) == {f"{name}-c1-s0", f"{name}-final-s0"}


async def outage_attempts(cluster: Cluster, name: str) -> int:
    run = await cluster.run(name)
    outage = ((run or {}).get("status") or {}).get("llmOutage") or {}
    return int(outage.get("attempts", 0))


async def test_outage_is_waited_out_without_counting_failures(
    cluster: Cluster,
    operator: OperatorProcess,
    player: JobPlayer,
    endpoint: Endpoint,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    await cluster.create_run("o1", llm_spec(endpoint.port, tolerance=600))
    await eventually(lambda: _at_least(cluster, "o1", 2), timeout=60, what="two failed attempts")
    available = await cluster.condition("o1", "LLMAvailable")
    assert available is not None and available["status"] == "False" and available["reason"] == "Unavailable"
    assert "next try at" in available["message"]
    run = await cluster.run("o1")
    assert run is not None and run["status"]["designFailures"] == 0
    assert run["status"]["llmOutage"]["retryAt"]
    failed = await cluster.condition("o1", "Failed")
    assert failed is None or failed["status"] == "False"

    stub = endpoint.up()
    stub.add(error(429, "slow down", {"retry-after": "1"}), *[streamed([crafter_answer(2)]) for _ in range(3)])
    await finish(cluster, player, "o1")
    operator.check()
    run = await cluster.run("o1")
    assert (run is not None and "llmOutage" not in run["status"]) or run["status"].get("llmOutage") is None
    assert run["status"]["designFailures"] == 0
    available = await cluster.condition("o1", "LLMAvailable")
    assert available is not None and available["status"] == "True"
    assert all(h.get("authorization") == f"Bearer {API_KEY}" for h in stub.headers)
    events = await cluster.events("o1")
    assert "LLMUnavailable" in {e["reason"] for e in events}
    cycles = await cluster.cycles("o1")
    visible = [str(run), str(events), str(cycles), caplog.text, generate_latest(REGISTRY).decode()]
    assert all(API_KEY not in text for text in visible)


async def _at_least(cluster: Cluster, name: str, n: int) -> bool | None:
    return True if await outage_attempts(cluster, name) >= n else None


async def test_raising_the_tolerance_reopens_a_run_failed_unavailable(
    cluster: Cluster, operator: OperatorProcess, player: JobPlayer, endpoint: Endpoint
) -> None:
    await cluster.create_run("o2", llm_spec(endpoint.port, tolerance=2))
    failed = await cluster.wait_condition("o2", "Failed", timeout=60)
    assert failed["reason"] == "LLMUnavailable"
    assert await cluster.jobs("o2") == {}
    stub = endpoint.up()
    stub.add(*[streamed([crafter_answer(2)]) for _ in range(3)])
    await cluster.patch_run("o2", {"spec": {"llm": {"outageToleranceSeconds": 3600}}})
    running = await cluster.wait_condition("o2", "Running", timeout=60)
    assert running["reason"] in ("Reopened", "CycleInProgress")
    await finish(cluster, player, "o2")
