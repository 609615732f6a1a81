"""The EnvGenRun status: typed models (the CRD's status schema is generated from them) and its computation.

Status is bounded: counts, the latest per-skill success, one score per cycle and the conditions. The full
per-cycle history (configs, LLM exchange, metrics) lives in EnvGenCycle objects. Numbers that are not counts are
decimal strings, as Kubernetes API conventions ask.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field

from ..engine import Finish, RunSummary, TaskCounts, score_text
from ..models import CamelModel
from ..spec import EnvGenRunSpec

ConditionStatus = Literal["True", "False", "Unknown"]
Reason = Annotated[str, Field(min_length=1, max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")]
Timestamp = Annotated[str, Field(max_length=64, json_schema_extra={"format": "date-time"})]
Decimal = Annotated[str, Field(max_length=32)]
Count = Annotated[int, Field(ge=0)]

RUNNING, SUCCEEDED, FAILED, SUSPENDED, LLM_AVAILABLE = "Running", "Succeeded", "Failed", "Suspended", "LLMAvailable"
INVALID_SPEC = "InvalidSpec"
CHILDREN_CREATED = "ChildrenCreated"  # False while the API refuses to create a Job, claim or EnvGenCycle
QUEUED = "Queued"  # True while a Job waits for admission by its queue (Kueue)
PODS_CREATED = "PodsCreated"  # False while the API refuses a Job's Pods (admission, quota)
PODS_SCHEDULED = "PodsScheduled"  # False while the scheduler finds no node for a Job's Pod (GPUs, a missing claim)
MAX_MESSAGE = 1024


@dataclass(frozen=True)
class LLMOutcome:
    """How the last design request to the LLM went (the LLMAvailable condition shows it)."""

    available: bool
    reason: str
    message: str


class Condition(CamelModel):
    """A ``metav1.Condition``."""

    type: Annotated[str, Field(min_length=1, max_length=316)]
    status: ConditionStatus
    observed_generation: Count | None = None
    last_transition_time: Timestamp
    reason: Reason
    message: Annotated[str, Field(max_length=32768)] = ""


class SkillSuccess(CamelModel):
    """Latest success rate of one skill, in percent over evaluation runs (and seeds)."""

    name: Annotated[str, Field(min_length=1, max_length=64)]
    mean: Decimal
    std: Decimal = "0"


class CycleScoreStatus(CamelModel):
    """Score (percent) of one cycle's evaluation; ``phase: final`` for the final training."""

    cycle: Count
    phase: Literal["cycle", "final"] = "cycle"
    score: Decimal | None = None


class LLMStatus(CamelModel):
    """LLM accounting over the whole run."""

    calls: Count = 0
    prompt_tokens: Count = 0
    completion_tokens: Count = 0


class LLMOutageStatus(CamelModel):
    """The LLM endpoint has not answered since ``since`` (epoch seconds); the engine retries with backoff."""

    since: Count
    last_attempt: Count
    attempts: Count
    reason: Annotated[str, Field(max_length=MAX_MESSAGE)]
    retry_after_seconds: Count | None = None
    retry_at: Timestamp | None = None


class RunStatus(CamelModel):
    """What the operator reports about an EnvGenRun."""

    observed_generation: Count | None = None
    conditions: Annotated[list[Condition], Field(max_length=16)] = Field(default_factory=list)
    start_time: Timestamp | None = None
    completion_time: Timestamp | None = None
    current_cycle: Count | None = None
    total_cycles: Count | None = None
    cycles_completed: Count = 0
    jobs: TaskCounts = Field(default_factory=TaskCounts)
    design_failures: Count = 0
    score: Decimal | None = None  # the latest cycle's (or the final phase's) score
    best_cycle: Count | None = None
    best_score: Decimal | None = None
    final_score: Decimal | None = None
    scores: Annotated[list[CycleScoreStatus], Field(max_length=64)] = Field(default_factory=list)
    skills: Annotated[list[SkillSuccess], Field(max_length=64)] = Field(default_factory=list)
    llm: LLMStatus = Field(default_factory=LLMStatus)
    llm_outage: LLMOutageStatus | None = None
    checkpoint_claims: Annotated[list[Annotated[str, Field(max_length=253)]], Field(max_length=64)] = Field(
        default_factory=list
    )
    message: Annotated[str, Field(max_length=MAX_MESSAGE)] = ""


def now() -> str:
    """The current time as a Kubernetes timestamp."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def timestamp(epoch: float) -> str:
    """Epoch seconds as a Kubernetes timestamp."""
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def reopened_status(old: RunStatus, message: str, generation: int) -> RunStatus:
    """A failed run that continues: Failed=False, Running=True, no completion time."""
    conditions = set_condition(old.conditions, FAILED, "False", "Reopened", message, generation)
    conditions = set_condition(conditions, SUCCEEDED, "Unknown", "InProgress", "the run is in progress", generation)
    conditions = set_condition(conditions, RUNNING, "True", "Reopened", message, generation)
    return old.model_copy(update={"conditions": conditions, "completion_time": None, "message": message[:MAX_MESSAGE]})


def decimal(value: float | None) -> str | None:
    """A score as a decimal string, rounded as the run's messages round it (None stays None)."""
    return None if value is None else score_text(value)


def set_condition(
    conditions: list[Condition], type_: str, status: ConditionStatus, reason: str, message: str, generation: int
) -> list[Condition]:
    """Conditions with one of them set; ``lastTransitionTime`` changes only when the status flips."""
    old = next((c for c in conditions if c.type == type_), None)
    since = old.last_transition_time if old is not None and old.status == status else now()
    new = Condition(
        type=type_,
        status=status,
        observed_generation=generation,
        last_transition_time=since,
        reason=reason,
        message=message[:MAX_MESSAGE],
    )
    return [new if c.type == type_ else c for c in conditions] if old else [*conditions, new]


def condition(conditions: list[Condition], type_: str) -> Condition | None:
    """The condition of a type, if set."""
    return next((c for c in conditions if c.type == type_), None)


def progress_status(
    old: RunStatus, spec: EnvGenRunSpec, summary: RunSummary, generation: int, claims: list[str]
) -> RunStatus:
    """The status of a run in progress (or already ended: terminal conditions are kept)."""
    scores = [CycleScoreStatus(cycle=s.cycle, phase=s.phase, score=decimal(s.score)) for s in summary.scores]
    status = old.model_copy(
        update={
            "observed_generation": generation,
            "start_time": old.start_time or now(),
            "current_cycle": summary.current_cycle,
            "total_cycles": summary.total_cycles,
            "cycles_completed": summary.cycles_completed,
            "jobs": summary.tasks,
            "design_failures": summary.design_failures,
            "score": scores[-1].score if scores else None,
            "best_cycle": summary.best_cycle,
            "best_score": decimal(summary.best_score),
            "final_score": decimal(summary.final_score),
            "scores": scores[-64:],
            "skills": [
                SkillSuccess(name=k, mean=f"{v.mean:.2f}", std=f"{v.std:.2f}")
                for k, v in sorted(summary.latest_success.items())
            ][:64],
            "llm": LLMStatus(
                calls=summary.llm_usage.calls,
                prompt_tokens=summary.llm_usage.prompt_tokens,
                completion_tokens=summary.llm_usage.completion_tokens,
            ),
            "checkpoint_claims": sorted({*old.checkpoint_claims, *claims})[:64],  # named once they exist
            "message": summary.message[:MAX_MESSAGE],
        }
    )
    if ended(old) is not None:
        return status.model_copy(update={"message": old.message})
    conditions = status.conditions
    if spec.suspend:
        conditions = set_condition(conditions, RUNNING, "False", "Suspended", "suspended: no new Jobs", generation)
        conditions = set_condition(conditions, SUSPENDED, "True", "Suspended", "spec.suspend is true", generation)
    else:
        reason = "FinalTraining" if summary.current_cycle > summary.total_cycles else "CycleInProgress"
        conditions = set_condition(conditions, RUNNING, "True", reason, summary.message, generation)
        if condition(conditions, SUSPENDED) is not None:
            conditions = set_condition(conditions, SUSPENDED, "False", "Resumed", "spec.suspend is false", generation)
    conditions = set_condition(conditions, SUCCEEDED, "Unknown", "InProgress", "the run is in progress", generation)
    conditions = set_condition(conditions, FAILED, "False", "InProgress", "the run is in progress", generation)
    return status.model_copy(update={"conditions": conditions})


def finished_status(old: RunStatus, outcome: Finish, generation: int) -> RunStatus:
    """The status of a run that just ended: terminal conditions and the completion time."""
    conditions = set_condition(old.conditions, RUNNING, "False", outcome.reason, outcome.message, generation)
    succeeded: ConditionStatus = "True" if outcome.outcome == "Succeeded" else "False"
    failed: ConditionStatus = "True" if outcome.outcome == "Failed" else "False"
    conditions = set_condition(conditions, SUCCEEDED, succeeded, outcome.reason, outcome.message, generation)
    conditions = set_condition(conditions, FAILED, failed, outcome.reason, outcome.message, generation)
    if condition(conditions, SUSPENDED) is not None:
        conditions = set_condition(conditions, SUSPENDED, "False", outcome.reason, "the run ended", generation)
    return old.model_copy(
        update={
            "observed_generation": generation,
            "conditions": conditions,
            "start_time": old.start_time or now(),
            "completion_time": old.completion_time or now(),
            "message": outcome.message[:MAX_MESSAGE],
        }
    )


def ended(status: RunStatus) -> Literal["Succeeded", "Failed"] | None:
    """The run's outcome if it ended; a run that failed only for an invalid spec may be retried once fixed."""
    done = condition(status.conditions, SUCCEEDED)
    if done is not None and done.status == "True":
        return "Succeeded"
    failed = condition(status.conditions, FAILED)
    if failed is not None and failed.status == "True" and failed.reason != INVALID_SPEC:
        return "Failed"
    return None


def child_conditions(
    conditions: list[Condition],
    generation: int,
    queue: str | None,
    queued: list[str],
    blocked: dict[str, str],
    unscheduled: dict[str, str],
) -> list[Condition]:
    """The conditions about a run's children after a reconcile that created all it had to: ChildrenCreated back
    to True after a refusal; Queued while Jobs wait for ``queue`` to admit them; PodsCreated while the API
    refuses Jobs' Pods (``blocked``: Job name -> the refusal), True again once none is refused; PodsScheduled
    while the scheduler finds no node for Jobs' Pods (``unscheduled``: Job name -> the scheduler's message)."""
    conds = conditions
    refused = condition(conds, CHILDREN_CREATED)
    if refused is not None and refused.status == "False":
        conds = set_condition(conds, CHILDREN_CREATED, "True", "Created", "every child was created", generation)
    if queued and queue:
        message = f"{len(queued)} Job(s) wait for admission by queue {queue}: {', '.join(queued[:8])}"
        conds = set_condition(conds, QUEUED, "True", "WaitingForAdmission", message, generation)
    elif condition(conds, QUEUED) is not None:
        conds = set_condition(conds, QUEUED, "False", "Admitted", "no Job waits for admission", generation)
    conds = _jobs_condition(conds, PODS_CREATED, blocked, generation)
    return _jobs_condition(conds, PODS_SCHEDULED, unscheduled, generation)


# The conditions about Jobs' Pods: (reason while failing, what the Jobs suffer, reason and message once none fails).
POD_CONDITIONS = {
    PODS_CREATED: ("FailedCreate", "get no Pods", "Created", "every Job's Pods were created"),
    PODS_SCHEDULED: ("Unschedulable", "wait for a node", "Scheduled", "every Job's Pod has a node"),
}


def _jobs_condition(conds: list[Condition], ctype: str, failing: dict[str, str], generation: int) -> list[Condition]:
    """False with up to four Jobs' messages while any Job is ``failing``; True again afterwards (absent until the
    first failure)."""
    reason, suffer, ok_reason, ok_message = POD_CONDITIONS[ctype]
    if failing:
        names = sorted(failing)
        message = "; ".join(f"{n}: {failing[n]}" for n in names[:4])
        return set_condition(conds, ctype, "False", reason, f"{len(names)} Job(s) {suffer}: {message}", generation)
    if condition(conds, ctype) is not None:
        return set_condition(conds, ctype, "True", ok_reason, ok_message, generation)
    return conds


def llm_conditions(
    conditions: list[Condition], generation: int, summary: RunSummary, outcome: LLMOutcome | None
) -> list[Condition]:
    """LLMAvailable of a run whose designer calls an LLM: False with the next try during an outage, else how
    the last request went (``outcome``), Unknown before the first."""
    if summary.llm_retry_at is not None:
        message = f"{summary.llm_reason}; next try at {timestamp(summary.llm_retry_at)}"
        return set_condition(conditions, LLM_AVAILABLE, "False", "Unavailable", message, generation)
    if outcome is not None:
        status: ConditionStatus = "True" if outcome.available else "False"
        return set_condition(conditions, LLM_AVAILABLE, status, outcome.reason, outcome.message, generation)
    if condition(conditions, LLM_AVAILABLE) is None:
        return set_condition(
            conditions, LLM_AVAILABLE, "Unknown", "NotCalledYet", "no design requested yet", generation
        )
    return conditions
