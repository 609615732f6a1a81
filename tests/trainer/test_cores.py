"""Cores a process may use (affinity capped by its cgroups' CPU quota), env workers and torch threads of a trainer."""

from __future__ import annotations

from pathlib import Path

import pytest

from envgen import cores


@pytest.fixture
def cgroups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake ``/sys/fs/cgroup`` (and ``/proc/self/cgroup`` beside it) on a 16-core affinity."""
    monkeypatch.setattr(cores.os, "sched_getaffinity", lambda pid: set(range(16)))
    monkeypatch.setattr(cores, "CGROUP_ROOT", tmp_path / "sys")
    monkeypatch.setattr(cores, "PROC_CGROUP", tmp_path / "proc-self-cgroup")
    (tmp_path / "sys").mkdir()
    return tmp_path


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize(("cpu_max", "expected"), [("max 100000\n", 16), ("150000 100000\n", 2), ("50000 100000", 1)])
def test_cgroup_v2_cpu_max_in_a_container(cgroups: Path, cpu_max: str, expected: int) -> None:
    _write(cgroups / "proc-self-cgroup", "0::/\n")  # a cgroup namespace: the container's cgroup is the root
    _write(cgroups / "sys" / "cpu.max", cpu_max)
    assert cores.usable_cores() == expected


def test_cgroup_v2_the_tightest_quota_above_the_process_counts(cgroups: Path) -> None:
    _write(cgroups / "proc-self-cgroup", "0::/kubepods.slice/pod1/ctr\n")
    _write(cgroups / "sys" / "kubepods.slice" / "pod1" / "ctr" / "cpu.max", "max 100000\n")
    _write(cgroups / "sys" / "kubepods.slice" / "pod1" / "cpu.max", "400000 100000\n")  # the Pod: 4 CPUs
    _write(cgroups / "sys" / "kubepods.slice" / "cpu.max", "max 100000\n")
    assert cores.cgroup_cpus() == 4.0 and cores.usable_cores() == 4


@pytest.mark.parametrize(("quota", "expected"), [("-1", 16), ("250000", 3), ("100000", 1)])
def test_cgroup_v1_cfs_quota(cgroups: Path, quota: str, expected: int) -> None:
    _write(
        cgroups / "proc-self-cgroup", "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n"
    )
    # without a cgroup namespace the host's path is not under the container's mount: the mount's root counts
    _write(cgroups / "sys" / "cpu,cpuacct" / "cpu.cfs_quota_us", quota + "\n")
    _write(cgroups / "sys" / "cpu,cpuacct" / "cpu.cfs_period_us", "100000\n")
    assert cores.usable_cores() == expected


def test_no_cgroup_information_leaves_the_affinity(cgroups: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cores.cgroup_cpus() is None and cores.usable_cores() == 16
    monkeypatch.setattr(cores.os, "sched_getaffinity", lambda pid: {2, 3})  # taskset: 2 of the 16 cores
    _write(cgroups / "sys" / "cpu.max", "800000 100000\n")
    assert cores.usable_cores() == 2


def test_env_workers_and_torch_threads_follow_the_usable_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cores, "usable_cores", lambda: 4)
    for name in (cores.TORCH_THREADS_ENV, cores.WORKERS_ENV):
        monkeypatch.delenv(name, raising=False)
    assert cores.torch_threads() == 4 and cores.env_workers(8) == 4 and cores.env_workers(2) == 2
    monkeypatch.setenv(cores.TORCH_THREADS_ENV, "3")
    monkeypatch.setenv(cores.WORKERS_ENV, "1")
    assert cores.torch_threads() == 3 and cores.env_workers(8) == 1
    assert cores.share_of_cores(3) == 1 and cores.share_of_cores(16) == 1 and cores.share_of_cores(1) == 4
