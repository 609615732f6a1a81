"""The local backend: the engine's actions as files in a run directory and trainer processes on this machine."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pydantic import ValidationError

from .. import atomic
from ..contracts import RESUME_CHECKPOINT, CycleDesign, TrainingMetrics, TrainingTask
from ..cores import TORCH_THREADS_ENV, share_of_cores
from ..engine import (
    Finish,
    LLMOutage,
    Observed,
    ObservedTask,
    RecordFailure,
    RunSummary,
    TaskState,
    failure_count,
    unusable,
)
from ..processes import die_with_parent
from .rundir import RunDir, read_json, write_json

STOP_SECONDS = 10  # how long stopped trainers may take to save their resumable checkpoint


@dataclass
class _Process:
    popen: subprocess.Popen[bytes]
    log: IO[bytes]


class LocalBackend:
    """Stores a run in a run directory and runs each training task as a ``envgen-train`` process."""

    def __init__(self, rundir: RunDir, trainer_command: list[str] | None = None, parallel_tasks: int = 1) -> None:
        self.dir = rundir
        self.trainer_command = trainer_command or [sys.executable, "-m", "envgen_trainer"]
        self.parallel_tasks = parallel_tasks  # trainers at once (one per seed): they share the machine's cores
        self.processes: dict[str, _Process] = {}

    # ---- observe -----------------------------------------------------------------------------------------
    def observe(self) -> Observed:
        designs = {}
        failures = 0
        if self.dir.designs.is_dir():
            for path in sorted(self.dir.designs.glob("c*.json")):
                if ".failed-" in path.name:
                    failures += 1
                    continue
                doc = read_json(path)
                if doc is not None:
                    design = CycleDesign.model_validate(doc)
                    designs[design.cycle] = design
        tasks = tuple(t for name in self._task_names() if (t := self._observe_task(name)) is not None)
        recorded = frozenset(p.stem for p in self.dir.metrics.glob("*.json")) if self.dir.metrics.is_dir() else ()
        info = read_json(self.dir.info) or {}
        started = info.get("startedAt")
        finished = read_json(self.dir.finished)
        outage = read_json(self.dir.outage)
        now = time.time()
        return Observed(
            designs=designs,
            tasks=tasks,
            recorded=frozenset(recorded),
            design_failures=failures,
            elapsed_seconds=now - started if isinstance(started, int | float) else None,
            finished=finished.get("outcome") if isinstance(finished, dict) else None,
            finished_reason=finished.get("reason") if isinstance(finished, dict) else None,
            outage=LLMOutage(**outage) if isinstance(outage, dict) else None,
            now=now,
            forgiven_failures=int(info.get("forgivenFailures", 0)),
        )

    def _task_names(self) -> list[str]:
        return sorted(p.name for p in self.dir.tasks.iterdir() if p.is_dir()) if self.dir.tasks.is_dir() else []

    def _observe_task(self, name: str) -> ObservedTask | None:
        folder = self.dir.task(name)
        doc = read_json(folder / "task.json")
        if doc is None:
            return None
        task = TrainingTask.model_validate(doc)
        attempt = int(_read_text(folder / "attempt") or 1)
        exit_text = _read_text(folder / "exit-code")
        metrics = self._metrics(name, folder)
        state: TaskState
        message = None
        if exit_text is None:
            state, reason = "running", None
        elif exit_text == "0" and (why := unusable(metrics)) is not None:
            state, (reason, message) = "failed", why  # the one rule the cluster's observation follows too
        elif exit_text == "0":
            state, reason = "succeeded", None
        else:
            state = "failed"
            reason = (metrics.error if metrics and metrics.error else None) or f"trainer exited with code {exit_text}"
        return ObservedTask(
            name=name,
            phase=task.phase,
            cycle=task.cycle,
            seed=task.seed,
            attempt=attempt,
            state=state,
            metrics=metrics,
            reason=reason,
            message=message,
        )

    def _metrics(self, name: str, folder: Path) -> TrainingMetrics | None:
        for path in (self.dir.metrics / f"{name}.json", folder / "metrics.json"):
            doc = read_json(path)
            if doc is not None:
                try:
                    return TrainingMetrics.model_validate(doc)
                except ValidationError:
                    return None
        return None

    # ---- act ---------------------------------------------------------------------------------------------
    def save_design(self, design: CycleDesign) -> None:
        write_json(self.dir.design(design.cycle), design)

    def record_design_failure(self, cycle: int, error: str, design: CycleDesign | None) -> None:
        n = len(list(self.dir.designs.glob(f"c{cycle}.failed-*.json"))) + 1 if self.dir.designs.is_dir() else 1
        doc = {"cycle": cycle, "error": error, "design": design.dump() if design else None}
        write_json(self.dir.designs / f"c{cycle}.failed-{n}.json", doc)

    def record_outage(self, outage: LLMOutage | None) -> None:
        if outage is None:
            self.dir.outage.unlink(missing_ok=True)
        else:
            write_json(self.dir.outage, dataclasses.asdict(outage))

    def reopen(self, message: str) -> None:
        self.dir.finished.unlink(missing_ok=True)

    def forgive(self, observed: Observed) -> None:
        """``--retry``: the failures so far stop counting and an outage starts afresh; finished cycles stay."""
        info = read_json(self.dir.info) or {}
        write_json(self.dir.info, {**info, "forgivenFailures": failure_count(observed)})
        self.record_outage(None)

    def launch(self, task: TrainingTask, attempt: int) -> None:
        folder = self.dir.task(task.name)
        if (folder / "task.json").exists():
            return
        local = task.model_copy(
            update={
                "checkpoint_in": self.dir.resolve(task.checkpoint_in) if task.checkpoint_in else None,
                "checkpoint_out": self.dir.resolve(task.checkpoint_out),
                "output_dir": str(folder),
                "termination_message_path": str(folder / "termination-log"),
            }
        )
        folder.mkdir(parents=True, exist_ok=True)
        atomic.write_text(folder / "attempt", str(attempt))
        write_json(folder / "task.json", local)
        log = (folder / "train.log").open("ab")
        popen = subprocess.Popen(
            [*self.trainer_command, "--task", str(folder / "task.json")],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={TORCH_THREADS_ENV: str(share_of_cores(self.parallel_tasks)), **os.environ},
            start_new_session=True,  # Ctrl-C reaches the runner only; it stops the trainers itself
            preexec_fn=die_with_parent,
        )
        atomic.write_text(folder / "pid", str(popen.pid))
        self.processes[task.name] = _Process(popen, log)

    def record_metrics(self, name: str, metrics: TrainingMetrics) -> None:
        write_json(self.dir.metrics / f"{name}.json", metrics)

    def record_failure(self, failure: RecordFailure) -> None:
        """Never asked: a local task's outcome is durable in its folder (exit code, output) from the start."""

    def finish(self, outcome: Finish, summary: RunSummary) -> None:
        doc = {
            "outcome": outcome.outcome,
            "reason": outcome.reason,
            "message": outcome.message,
            "finishedAt": time.time(),
            "summary": summary.dump(),
        }
        write_json(self.dir.finished, doc)

    def publish(self, summary: RunSummary) -> None:
        """The local runner draws progress itself; nothing to publish."""

    # ---- processes ---------------------------------------------------------------------------------------
    def poll(self) -> list[str]:
        """Reap finished trainer processes; returns the names that ended since the last poll."""
        ended = []
        for name, proc in list(self.processes.items()):
            code = proc.popen.poll()
            if code is None:
                continue
            atomic.write_text(self.dir.task(name) / "exit-code", str(code))
            proc.log.close()
            del self.processes[name]
            ended.append(name)
        return ended

    def stop_all(self) -> None:
        """Stop running trainers (Ctrl-C); their tasks are relaunched on resume. SIGTERM goes to the trainer alone,
        which saves its resumable checkpoint at the end of the update under way (its env workers must live till
        then); whatever is left after ``STOP_SECONDS`` is killed."""
        for proc in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.popen.pid, signal.SIGTERM)
        deadline = time.time() + STOP_SECONDS
        for proc in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=max(0.1, deadline - time.time()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.popen.pid, signal.SIGKILL)  # the trainer if it is still running, and its workers
            proc.popen.wait()
            proc.log.close()
        self.processes.clear()

    def discard_interrupted(self) -> list[str]:
        """Clear task folders whose process ended without an exit code (the runner was killed); the engine
        then launches them again under the same name. A task's resumable checkpoint is kept (with its log and
        TensorBoard scalars), so the relaunched trainer continues inside the task. Finished tasks are never
        touched."""
        removed = []
        for name in self._task_names():
            folder = self.dir.task(name)
            if name not in self.processes and not (folder / "exit-code").exists():
                _kill_orphan(folder)
                if (folder / RESUME_CHECKPOINT).exists():
                    for path in folder.iterdir():
                        if path.is_dir() and path.name not in _KEPT_ON_RESUME:
                            shutil.rmtree(path)
                        elif path.name not in _KEPT_ON_RESUME:
                            path.unlink()
                else:
                    shutil.rmtree(folder, ignore_errors=True)
                removed.append(name)
        return removed

    def resumable(self, name: str) -> bool:
        """Whether a task left a resumable checkpoint (its relaunch continues inside the task)."""
        return (self.dir.task(name) / RESUME_CHECKPOINT).exists()


_KEPT_ON_RESUME = frozenset({RESUME_CHECKPOINT, "train.log", "tb"})


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _kill_orphan(folder: Path) -> None:
    """Kill a trainer left running by a killed runner (where the parent-death signal was unavailable)."""
    pid_text = _read_text(folder / "pid")
    if not pid_text or not pid_text.isdigit():
        return
    pid = int(pid_text)
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return
    if str(folder / "task.json").encode() in cmdline:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
