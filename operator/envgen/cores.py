"""How many CPU cores a process may use, and how trainers sharing a machine split them.

One rule for the embedded LLM's thread count and for torch in the trainer: CPU affinity, capped by the cgroup v2
CPU quota (a Pod limited to 4 CPUs on a 64-core node gets 4, not 64).
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
TORCH_THREADS_ENV = "ENVGEN_TORCH_THREADS"  # torch threads of a trainer; set by a runner that starts several


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup v2 CPU quota when there is one."""
    cores = len(os.sched_getaffinity(0))
    with contextlib.suppress(OSError, ValueError):
        quota, period = CGROUP_CPU_MAX.read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    return cores


def torch_threads() -> int:
    """A trainer's torch threads: ``ENVGEN_TORCH_THREADS`` when set, else every usable core."""
    given = os.environ.get(TORCH_THREADS_ENV, "").strip()
    return max(1, int(given)) if given else usable_cores()


def share_of_cores(parallel: int) -> int:
    """Torch threads for each of ``parallel`` trainers on this machine (oversubscribed OpenMP threads spin: three
    trainers with one thread each do 1.6x the env steps of three with two each on 2 cores, bench/README.md)."""
    return max(1, usable_cores() // max(1, parallel))
