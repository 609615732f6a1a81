"""P4 as a check (the numbers live in bench/README.md): 20 EnvGenRuns at once on a real API server (kmock is
far too slow for this many), the test playing the kubelet.

Every run finishes Succeeded, each with exactly one Job per cycle and the final phase, and no run's status
grows past 16 KiB. Latency, reconcile time and memory are reported, not asserted (they are benchmark goals).
"""

from __future__ import annotations

import pytest

from bench.operator_load import STATUS_LIMIT, measure

from .harness import Cluster

pytestmark = pytest.mark.real_server

RUNS = 20
CYCLES = 2


async def test_twenty_runs_at_once_all_finish_with_one_job_each(real_cluster: Cluster) -> None:
    result = await measure(real_cluster, RUNS, CYCLES, interval=10.0, timeout=240.0, api="test")
    print(result.markdown())
    assert result.succeeded == RUNS, result
    assert result.status_max_bytes <= STATUS_LIMIT, result
    for name in (f"load-{i:03d}" for i in range(RUNS)):
        want = {f"{name}-c{c}-s0" for c in range(1, CYCLES + 1)} | {f"{name}-final-s0"}
        assert set(await real_cluster.jobs(name)) == want, name
