"""Cores a process may use (affinity capped by the cgroup quota) and torch threads of a trainer."""

from __future__ import annotations

from pathlib import Path

import pytest

from envgen import cores


@pytest.mark.parametrize(("cpu_max", "expected"), [("max 100000\n", 2), ("150000 100000\n", 2), ("50000 100000", 1)])
def test_usable_cores_honour_the_cgroup_quota(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cpu_max: str, expected: int
) -> None:
    monkeypatch.setattr(cores.os, "sched_getaffinity", lambda pid: {0, 1})
    (tmp_path / "cpu.max").write_text(cpu_max)
    monkeypatch.setattr(cores, "CGROUP_CPU_MAX", tmp_path / "cpu.max")
    assert cores.usable_cores() == expected


def test_torch_threads_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cores, "usable_cores", lambda: 8)
    monkeypatch.delenv(cores.TORCH_THREADS_ENV, raising=False)
    assert cores.torch_threads() == 8
    monkeypatch.setenv(cores.TORCH_THREADS_ENV, "3")
    assert cores.torch_threads() == 3
    assert cores.share_of_cores(3) == 2 and cores.share_of_cores(16) == 1 and cores.share_of_cores(1) == 8
