"""How many CPU cores a process may use, and how trainers sharing a machine split them.

One rule for the embedded LLM's threads and for a trainer's env workers and torch threads: the process's CPU
affinity, capped by the CPU quota of its cgroup and of every cgroup above it (cgroup v2 ``cpu.max``, cgroup v1
``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``): a Pod limited to 4 CPUs on a 64-core node gets 4, not 64. A quota
of 1.5 CPUs counts as 2. The trainer image ships this package, so the trainer uses this module too.
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")
TORCH_THREADS_ENV = "ENVGEN_TORCH_THREADS"  # torch threads of a trainer; set by a runner that starts several
WORKERS_ENV = "ENVGEN_TRAINER_WORKERS"  # env worker processes of a trainer; unset: one per usable core


def _ancestors(folder: Path, root: Path) -> list[Path]:
    """``folder`` and the folders above it, up to and including ``root``."""
    chain = [folder]
    while chain[-1] != root and root in chain[-1].parents:
        chain.append(chain[-1].parent)
    return chain if chain[-1] == root else [*chain, root]


def _cgroup_folders(root: Path, proc: Path) -> list[Path]:
    """The folders that may hold this process's CPU quota: its cgroup and its ancestors, in v2 and in the v1
    ``cpu`` hierarchy (the hierarchy's own root too: in a container it is the container's cgroup)."""
    try:
        lines = proc.read_text().splitlines()
    except OSError:
        lines = []
    folders: list[Path] = []
    for line in lines:
        _, controllers, path = [*line.split(":", 2), "", ""][:3]
        relative = path.strip().lstrip("/")
        if controllers == "":  # cgroup v2: "0::/path"
            folders += _ancestors(root / relative, root)
        elif "cpu" in controllers.split(","):  # cgroup v1: "4:cpu,cpuacct:/path"
            for mount in (root / controllers, root / "cpu", root / "cpu,cpuacct"):
                if mount.is_dir():
                    folders += _ancestors(mount / relative, mount)
                    break
    if not lines:  # no /proc: the usual mounts
        folders = [root, root / "cpu", root / "cpu,cpuacct"]
    return list(dict.fromkeys(folders))


def _quota(folder: Path) -> float | None:
    """CPUs the quota in one cgroup folder allows; None when unlimited or absent."""
    with contextlib.suppress(OSError, ValueError):
        quota, period = (folder / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    with contextlib.suppress(OSError, ValueError):
        quota_us = int((folder / "cpu.cfs_quota_us").read_text())
        period_us = int((folder / "cpu.cfs_period_us").read_text())
        return None if quota_us < 0 or period_us <= 0 else quota_us / period_us
    return None


def cgroup_cpus(root: Path | None = None, proc: Path | None = None) -> float | None:
    """The tightest CPU quota over this process's cgroups, in CPUs; None when none is set."""
    folders = _cgroup_folders(root or CGROUP_ROOT, proc or PROC_CGROUP)
    quotas = [q for q in map(_quota, folders) if q is not None]
    return min(quotas) if quotas else None


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by its cgroups' CPU quota (rounded up)."""
    cores = len(os.sched_getaffinity(0))
    quota = cgroup_cpus()
    return cores if quota is None else max(1, min(cores, math.ceil(quota)))


def torch_threads() -> int:
    """A trainer's torch threads: ``ENVGEN_TORCH_THREADS`` when set, else every usable core."""
    given = os.environ.get(TORCH_THREADS_ENV, "").strip()
    return max(1, int(given)) if given else usable_cores()


def env_workers(num_envs: int) -> int:
    """A trainer's env worker processes: ``ENVGEN_TRAINER_WORKERS`` when set (0: unset), else one per usable core;
    never more than its ``num_envs`` envs."""
    given = os.environ.get(WORKERS_ENV, "").strip()
    return max(1, min((int(given) if given else 0) or usable_cores(), num_envs))


def share_of_cores(parallel: int) -> int:
    """Torch threads for each of ``parallel`` trainers on this machine (oversubscribed OpenMP threads spin: three
    trainers with one thread each do 1.6x the env steps of three with two each on 2 cores, bench/README.md)."""
    return max(1, usable_cores() // max(1, parallel))
