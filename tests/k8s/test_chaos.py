"""The operator under chaos: SIGKILLed at random moments, two replicas at once, API errors and dropped watches.

Each whole multi-cycle run must end with exactly one Job per cycle, seed and attempt, every cycle recorded once,
and a status that agrees with its Jobs and EnvGenCycles. The kill and replica tests run on the suite's cluster
(kmock, or a real API server); injected API faults need kmock (``faults.FaultyEmulator``).
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from kmock._internal.apps import Server
from kubernetes import config

from envgen.k8s import LABEL_ATTEMPT, LABEL_CYCLE, LABEL_SEED

from . import control_plane
from .conftest import _namespace
from .faults import FAULT_KINDS, FaultPlan, FaultyEmulator, Replicas, injected_summary
from .harness import Cluster, JobPlayer
from .test_operator import small_spec

# each scenario takes minutes (not in `make test-fast`); the timeout is a backstop, each has a shorter deadline
pytestmark = [pytest.mark.slow(minutes=3), pytest.mark.timeout(360)]

CYCLES = 3
SEEDS = 2
KILLS = 20
SEED = 20241
KILL_SECONDS = 180.0  # deadlines of whole scenarios (each takes well under half of it on a loaded 2-core machine)
RUN_SECONDS = 120.0


def chaos_spec() -> dict[str, Any]:
    return small_spec(cycles=CYCLES, seeds=SEEDS)


def expected_jobs(run: str) -> dict[str, int]:
    """Every Job the run must create (attempt 1 each), with the cycle number it belongs to (final: CYCLES+1)."""
    jobs = {f"{run}-c{c}-s{s}": c for c in range(1, CYCLES + 1) for s in range(SEEDS)}
    return jobs | {f"{run}-final-s{s}": CYCLES + 1 for s in range(SEEDS)}


async def play(cluster: Cluster, player: JobPlayer, run: str, may_finish: Callable[[int], bool]) -> None:
    """Finish each Job of the run once (score 10 + its cycle), when ``may_finish(cycle)`` allows."""
    cycle_of = expected_jobs(run)
    done: set[str] = set()
    while len(done) < len(cycle_of):
        for name, job in sorted((await cluster.jobs(run)).items()):
            assert name in cycle_of, f"unexpected Job {name}"
            if name not in done and may_finish(cycle_of[name]):
                await player.succeed(job, score=10.0 + cycle_of[name])
                done.add(name)
        await asyncio.sleep(0.2)


async def assert_consistent(cluster: Cluster, run: str) -> None:
    """Exactly one Job per cycle, seed and attempt; each cycle once; status, cycles and Jobs agree."""
    want = expected_jobs(run)
    jobs = await cluster.jobs(run)
    assert set(jobs) == set(want), f"Jobs {sorted(jobs)}"
    keys = Counter(
        tuple(job["metadata"]["labels"].get(k) for k in (LABEL_CYCLE, LABEL_SEED, LABEL_ATTEMPT))
        for job in jobs.values()
    )
    assert len(keys) == len(want) and set(keys.values()) == {1}, f"(cycle, seed, attempt) of Jobs: {keys}"
    assert {job["metadata"]["labels"][LABEL_ATTEMPT] for job in jobs.values()} == {"1"}

    body = await cluster.run(run)
    assert body is not None
    status = body["status"]
    done = next(c for c in status["conditions"] if c["type"] == "Succeeded")
    assert done["status"] == "True" and done["reason"] == "AllCyclesCompleted"
    assert not any(c["type"] == "Failed" and c["status"] == "True" for c in status["conditions"])
    assert status["cyclesCompleted"] == CYCLES and status["currentCycle"] == CYCLES + 1
    assert status["jobs"] == {"active": 0, "succeeded": len(want), "failed": 0}
    assert status.get("designFailures", 0) == 0
    scores = [(s["cycle"], s.get("phase", "cycle"), s["score"]) for s in status["scores"]]
    assert scores == [(c, "cycle", f"{10 + c}.00") for c in range(1, CYCLES + 1)] + [
        (CYCLES + 1, "final", f"{11 + CYCLES}.00")
    ], "a cycle lost, repeated or out of order"
    assert status["observedGeneration"] == body["metadata"]["generation"]

    cycles = await cluster.cycles(run)
    assert set(cycles) == {f"{run}-c{c}" for c in range(1, CYCLES + 1)} | {f"{run}-final"}
    for name, cycle in cycles.items():
        tasks = cycle["status"]["tasks"]
        names = [t["name"] for t in tasks]
        assert sorted(names) == sorted(j for j in want if j.rsplit("-s", 1)[0] == name), f"{name}: {names}"
        assert {t["state"] for t in tasks} == {"succeeded"}, f"{name}: {tasks}"
    created = [e for e in await cluster.events(run) if e["reason"] == "TrainingJobCreated"]
    assert len(created) <= len(want), "a Job was reported created twice"


async def where(cluster: Cluster, run: str) -> str:
    """Where a run stands: its Jobs, the finished ones, its cycle count and conditions."""
    jobs = await cluster.jobs(run)
    finished = sorted(n for n, j in jobs.items() if (j.get("status") or {}).get("succeeded"))
    status = ((await cluster.run(run)) or {}).get("status") or {}
    conditions = {c["type"]: f"{c['status']}/{c.get('reason')}" for c in status.get("conditions") or []}
    return (
        f"Jobs {sorted(jobs)}, finished {finished}; "
        f"cyclesCompleted={status.get('cyclesCompleted')}, conditions {conditions}"
    )


async def within(
    seconds: float,
    scenario: Coroutine[Any, Any, None],
    cluster: Cluster,
    run: str,
    replicas: Replicas,
    tally: Callable[[], str] = str,
) -> None:
    """Play a whole scenario, or fail after ``seconds`` saying where the run stood (replica logs printed)."""
    try:
        await asyncio.wait_for(scenario, seconds)
    except TimeoutError:
        print(replicas.log_tail())
        stood = await where(cluster, run)
        raise AssertionError(f"run {run} hung: not finished after {seconds:g} s ({tally()}); {stood}") from None
    except BaseException:
        print(replicas.log_tail())
        raise


async def test_sigkill_at_random_moments_across_a_whole_run(
    cluster: Cluster, player: JobPlayer, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    per_wave = -(-KILLS // (CYCLES + 1))
    await cluster.create_run("kill", chaos_spec())
    async with Replicas(cluster.kubeconfig, cluster.namespace, tmp_path) as replicas:

        async def scenario() -> None:
            # Cycle c's Jobs finish only after c * per_wave kills, so the kills spread over the whole run.
            playing = asyncio.create_task(play(cluster, player, "kill", lambda c: replicas.kills >= c * per_wave))
            try:
                while not (playing.done() and replicas.kills >= KILLS):
                    pid = await replicas.start()
                    await replicas.reconciled(pid)  # each life moves the run on, however slow the machine
                    await asyncio.sleep(rng.uniform(0.0, 1.0))  # then killed mid-reconcile, -create or -patch
                    replicas.kill(pid)
                    if playing.done():
                        playing.result()  # a failed player fails the test now
            finally:
                playing.cancel()
            await replicas.start()  # one last, undisturbed replica finishes the run
            await cluster.wait_condition("kill", "Succeeded", timeout=60)

        await within(KILL_SECONDS, scenario(), cluster, "kill", replicas, lambda: f"{replicas.kills} kills")
        assert replicas.kills >= KILLS
    await assert_consistent(cluster, "kill")


async def test_two_replicas_at_once(cluster: Cluster, player: JobPlayer, tmp_path: Path) -> None:
    await cluster.create_run("twins", chaos_spec())
    async with Replicas(cluster.kubeconfig, cluster.namespace, tmp_path) as replicas:

        async def scenario() -> None:
            await replicas.start()
            await replicas.start()
            await play(cluster, player, "twins", lambda c: True)
            await cluster.wait_condition("twins", "Succeeded", timeout=60)

        await within(RUN_SECONDS, scenario(), cluster, "twins", replicas)
        assert len(replicas.live) == 2  # both replicas ran the whole run
    await assert_consistent(cluster, "twins")


@pytest.fixture
async def faulty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Cluster, FaultPlan]]:
    """A namespace on kmock that fails the operator's requests (never the test's)."""
    plan = FaultPlan(rate=0.15, seed=SEED)
    async with FaultyEmulator(plan=plan) as emulator, Server(emulator):
        emulator.resources.load_bundled()
        kubeconfig = control_plane.write_kubeconfig(str(emulator.url), tmp_path / "kubeconfig")
        api = config.new_client_from_config(config_file=str(kubeconfig))
        try:
            async with _namespace(api, kubeconfig, False, None, monkeypatch) as c:
                yield c, plan
        finally:
            api.close()


async def test_api_errors_and_dropped_watches(faulty: tuple[Cluster, FaultPlan], tmp_path: Path) -> None:
    cluster, plan = faulty
    player = JobPlayer(cluster)
    await cluster.create_run("faults", chaos_spec())
    async with Replicas(cluster.kubeconfig, cluster.namespace, tmp_path) as replicas:

        async def scenario() -> None:
            await replicas.start()
            await play(cluster, player, "faults", lambda c: True)
            await cluster.wait_condition("faults", "Succeeded", timeout=90)

        await within(RUN_SECONDS, scenario(), cluster, "faults", replicas, lambda: injected_summary(plan))
    for kind in FAULT_KINDS:
        assert plan.injected[kind] > 0, f"no {kind} fault was injected: {injected_summary(plan)}"
    await assert_consistent(cluster, "faults")
