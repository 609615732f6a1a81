"""EnvGenCycle: the durable record of one cycle (or the final phase) of a run.

``spec`` holds the cycle's design (configs, LLM exchange, usage); ``status.tasks`` one record per finished
training task with its compact metrics, so nothing is lost when finished Jobs are garbage-collected.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from ..contracts import COMPACT_LIMIT_BYTES, CycleDesign, Phase, TrainingMetrics
from ..models import CamelModel
from . import API_GROUP, API_VERSION, LABEL_CYCLE, LABEL_MANAGED_BY, LABEL_PHASE, LABEL_RUN, MANAGER

KIND = "EnvGenCycle"
MAX_TASK_RECORDS = 256


class CycleSpec(CamelModel):
    """Which run and cycle this is, and the design the cycle trained in (absent for the final phase)."""

    run: Annotated[str, Field(min_length=1, max_length=63)]
    cycle: Annotated[int, Field(ge=1)]
    phase: Literal["cycle", "final"] = "cycle"
    design: dict[str, Any] | None = None  # a CycleDesign document


class TaskRecord(CamelModel):
    """A finished training task. ``metrics`` is the compact metrics JSON the trainer reported."""

    name: Annotated[str, Field(min_length=1, max_length=63)]
    seed: Annotated[int, Field(ge=0)]
    attempt: Annotated[int, Field(ge=1)]
    state: Literal["succeeded", "failed"]
    reason: Annotated[str, Field(max_length=128)] | None = None
    message: Annotated[str, Field(max_length=1024)] | None = None
    score: Annotated[str, Field(max_length=32)] | None = None
    metrics: Annotated[str, Field(max_length=COMPACT_LIMIT_BYTES)] | None = None
    finished_at: Annotated[str, Field(max_length=64)] | None = None

    def parsed_metrics(self) -> TrainingMetrics | None:
        """The metrics as a model (None when absent or unreadable)."""
        return parse_metrics(self.metrics)


class CycleStatus(CamelModel):
    """Finished training tasks of the cycle."""

    tasks: Annotated[list[TaskRecord], Field(max_length=MAX_TASK_RECORDS)] = Field(default_factory=list)


def cycle_object_name(run: str, phase: Phase, cycle: int) -> str:
    """``<run>-c<k>`` for a cycle, ``<run>-final`` for the final phase."""
    return f"{run}-final" if phase == "final" else f"{run}-c{cycle}"


def cycle_object(run: str, phase: Phase, cycle: int, design: CycleDesign | None, owner: dict[str, Any]) -> dict:
    """A new EnvGenCycle document owned by the run."""
    spec = CycleSpec(run=run, cycle=cycle, phase=phase, design=design.dump() if design else None)
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": KIND,
        "metadata": {
            "name": cycle_object_name(run, phase, cycle),
            "labels": {LABEL_RUN: run, LABEL_CYCLE: str(cycle), LABEL_PHASE: phase, LABEL_MANAGED_BY: MANAGER},
            "ownerReferences": [owner],
        },
        "spec": spec.dump(),
    }


def parse_metrics(text: str | None) -> TrainingMetrics | None:
    """Metrics from a compact JSON text; None when absent or unreadable."""
    if not text:
        return None
    try:
        return TrainingMetrics.model_validate_json(text)
    except ValueError:
        return None
