"""The local backend and run directory: process outcomes, interrupted tasks, and resuming with another spec."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from envgen.engine import Observed, build_task
from envgen.local.backend import LocalBackend
from envgen.local.rundir import RunDir
from envgen.local.runner import prepare_run_dir
from envgen.spec import EnvGenRun, SpecError, parse_run


def make_run(**spec: object) -> EnvGenRun:
    return parse_run(
        {"apiVersion": "envgen.dev/v1alpha1", "kind": "EnvGenRun", "metadata": {"name": "b"}, "spec": spec}
    )


def trainer(script: str) -> list[str]:
    """A trainer command that runs ``script`` with the task path as argv[2]."""
    return [sys.executable, "-c", script]


def launch_and_wait(backend: LocalBackend, attempt: int = 1) -> None:
    run = make_run(designer={"type": "none"}, cycles=1)
    task = build_task("b", run.spec, Observed(), "final", 2, 0, attempt)
    backend.launch(task, attempt)
    deadline = time.time() + 30
    while backend.processes and time.time() < deadline:
        backend.poll()
        time.sleep(0.05)
    assert not backend.processes


def test_exit_zero_without_metrics_is_not_usable(tmp_path: Path) -> None:
    backend = LocalBackend(RunDir(tmp_path), trainer("pass"))
    launch_and_wait(backend)
    (task,) = backend.observe().tasks
    # the same rule as the cluster's observation: a clean exit without usable metrics is a failure
    assert task.state == "failed" and task.metrics is None and task.failed and not task.usable
    assert task.reason == "MetricsUnavailable" and task.message is not None and "missing" in task.message


def test_failed_trainer_reports_its_error(tmp_path: Path) -> None:
    script = (
        "import json,sys,pathlib; t=json.load(open(sys.argv[2])); "
        "doc={'error':'checkpoint is corrupt','exitCode':3}; "
        "pathlib.Path(t['outputDir'],'metrics.json').write_text(json.dumps(doc)); "
        "sys.exit(3)"
    )
    backend = LocalBackend(RunDir(tmp_path), trainer(script))
    launch_and_wait(backend)
    (task,) = backend.observe().tasks
    assert task.state == "failed" and task.reason == "checkpoint is corrupt"


@pytest.mark.parametrize(
    ("parallel", "given", "threads"), [(1, None, "4"), (3, None, "1"), (2, None, "2"), (3, "3", "3")]
)
def test_trainers_share_the_cores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parallel: int, given: str | None, threads: str
) -> None:
    monkeypatch.setattr("envgen.cores.usable_cores", lambda: 4)
    if given is None:
        monkeypatch.delenv("ENVGEN_TORCH_THREADS", raising=False)
    else:
        monkeypatch.setenv("ENVGEN_TORCH_THREADS", given)  # the user's choice wins
    script = (
        "import os,pathlib,sys; "
        "pathlib.Path(sys.argv[2]).with_name('threads').write_text(os.environ['ENVGEN_TORCH_THREADS'])"
    )
    backend = LocalBackend(RunDir(tmp_path), trainer(script), parallel_tasks=parallel)
    launch_and_wait(backend)
    assert next(tmp_path.glob("tasks/*/threads")).read_text() == threads


def test_task_paths_are_inside_the_run_directory(tmp_path: Path) -> None:
    backend = LocalBackend(RunDir(tmp_path), trainer("import sys; sys.exit(1)"))
    launch_and_wait(backend)
    task_json = (tmp_path / "tasks" / "b-final-s0" / "task.json").read_text()
    assert str(tmp_path / "checkpoints" / "s0" / "final.pt") in task_json
    assert str(tmp_path / "tasks" / "b-final-s0" / "termination-log") in task_json
    assert backend.observe().tasks[0].reason == "trainer exited with code 1"


def test_interrupted_task_is_discarded_and_finished_ones_are_kept(tmp_path: Path) -> None:
    backend = LocalBackend(RunDir(tmp_path), trainer("pass"))
    launch_and_wait(backend)
    interrupted = tmp_path / "tasks" / "b-c1-s0"
    interrupted.mkdir(parents=True)
    (interrupted / "task.json").write_text("{}")
    assert backend.discard_interrupted() == ["b-c1-s0"]
    assert not interrupted.exists() and (tmp_path / "tasks" / "b-final-s0" / "exit-code").exists()


def test_resume_refuses_a_changed_spec_but_allows_mutable_fields(tmp_path: Path) -> None:
    prepare_run_dir(make_run(cycles=2), tmp_path)
    prepare_run_dir(make_run(cycles=3, suspend=True, maxFailedTasks=5), tmp_path)
    with pytest.raises(SpecError, match="changed: seeds"):
        prepare_run_dir(make_run(cycles=3, seeds=2), tmp_path)
