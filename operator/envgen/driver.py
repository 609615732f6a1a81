"""Drive the engine through a backend: observe, decide, act. Shared by the local runner and the operator.

A backend owns all I/O for one run (a run directory and local processes, or Kubernetes objects); the driver
only wires the engine's actions to it. Every backend method must be idempotent: the driver may repeat any of
them after a crash or restart.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .contracts import CycleDesign, Designer, DesignError, DesignUnavailable, TrainingMetrics, TrainingTask
from .engine import (
    Action,
    DesignEnvs,
    Finish,
    LaunchTask,
    LLMOutage,
    Observed,
    RecordFailure,
    RecordMetrics,
    Reopen,
    RunSummary,
    decide,
    outage_after,
    summarize,
)
from .spec import EnvGenRun

log = logging.getLogger(__name__)


class Backend(Protocol):
    """Storage and execution for one run."""

    def observe(self) -> Observed:
        """What exists now: designs, tasks and their metrics, recorded metrics, failures, elapsed time."""

    def save_design(self, design: CycleDesign) -> None:
        """Persist a cycle's design (the designer's output and its record)."""

    def record_design_failure(self, cycle: int, error: str, design: CycleDesign | None) -> None:
        """Persist a failed design attempt (counts towards maxFailedTasks)."""

    def record_outage(self, outage: LLMOutage | None) -> None:
        """Persist the LLM endpoint's outage (None: it answered again)."""

    def reopen(self, message: str) -> None:
        """Clear a failed run's end mark: it continues."""

    def launch(self, task: TrainingTask, attempt: int) -> None:
        """Start a training task; a task that already exists under that name counts as started."""

    def record_metrics(self, name: str, metrics: TrainingMetrics) -> None:
        """Persist a finished task's metrics durably."""

    def record_failure(self, failure: RecordFailure) -> None:
        """Persist a failed task's outcome durably (a task observed with ``durable=False``)."""

    def finish(self, outcome: Finish, summary: RunSummary) -> None:
        """Mark the run as ended."""

    def publish(self, summary: RunSummary) -> None:
        """Show progress (status, terminal, metrics)."""


def execute(
    action: Action,
    designer: Designer,
    backend: Backend,
    observed: Observed,
    summary: RunSummary,
    before_design: Callable[[], None] | None = None,
) -> None:
    """Carry out one action (``WaitForLLM`` needs nothing: the adapter waits until its retry time).
    ``before_design`` runs before a design is asked for (which may take minutes)."""
    if isinstance(action, DesignEnvs):
        if before_design is not None:
            before_design()
        try:
            design = designer.design(action.request)
        except DesignUnavailable as exc:
            log.warning("designing cycle %d: LLM unavailable, will retry: %s", action.cycle, exc)
            backend.record_outage(outage_after(observed.outage, time.time(), str(exc), exc.retry_after))
            return
        except DesignError as exc:
            log.warning("designing cycle %d failed: %s", action.cycle, exc)
            if observed.outage is not None:
                backend.record_outage(None)
            backend.record_design_failure(action.cycle, str(exc), exc.design)
            return
        if observed.outage is not None:
            backend.record_outage(None)
        backend.save_design(design)
    elif isinstance(action, LaunchTask):
        backend.launch(action.task, action.attempt)
    elif isinstance(action, RecordMetrics):
        backend.record_metrics(action.name, action.metrics)
    elif isinstance(action, RecordFailure):
        backend.record_failure(action)
    elif isinstance(action, Reopen):
        log.info("reopening the run: %s", action.message)
        backend.reopen(action.message)
    elif isinstance(action, Finish):
        backend.finish(action, summary)


@dataclass(frozen=True)
class StepResult:
    """What one round did, and the world after it."""

    actions: list[Action]
    observed: Observed
    summary: RunSummary


def step(
    run: EnvGenRun,
    designer: Designer,
    backend: Backend,
    observed: Observed | None = None,
    before_design: Callable[[], None] | None = None,
) -> StepResult:
    """One observe -> decide -> act round. No actions means: wait for running tasks. ``observed``: the world as
    the previous round of the same backend left it (it is not observed again); ``before_design``: see
    ``execute``."""
    observed = observed or backend.observe()
    summary = summarize(run.spec, observed, run.name)  # once per world observed
    actions = decide(run.name, run.spec, observed, summary)
    for action in actions:
        execute(action, designer, backend, observed, summary, before_design)
    if actions:
        observed = backend.observe()
        summary = summarize(run.spec, observed, run.name)
    backend.publish(summary)
    return StepResult(actions, observed, summary)
