"""``KubernetesBackend``: the driver's Backend for one EnvGenRun, over the Kubernetes API.

What exists is read from the API on every reconcile (level-based): designs and task records from the run's
EnvGenCycle children, running and finished tasks from its Jobs and (only for a finished Job not recorded yet)
their Pods' termination messages, design failures and start time from the run's status. Later rounds of the
same reconcile see that reading with the reconcile's own writes applied, not a new list (``Children``).
Observing only reads; every write is an action of the engine's. Writes are idempotent: deterministic names, and
an existing name on create counts as success. The status is written, and Events posted (all at once), once per
reconcile after its children are created (``StatusWriter.flush``).
"""

from __future__ import annotations

import datetime
import threading
from dataclasses import replace
from typing import Any

from ..contracts import CycleDesign, Phase, TrainingMetrics, TrainingTask
from ..engine import (
    REOPENABLE,
    Finish,
    LLMOutage,
    Observed,
    ObservedTask,
    RecordFailure,
    RunSummary,
    next_retry_at,
    unusable,
)
from ..spec import EnvGenRun
from . import CYCLES_PLURAL, LABEL_ATTEMPT, LABEL_CYCLE, LABEL_PHASE, LABEL_SEED
from . import metrics as prom
from .children import Children, job_finished, without_pod
from .cycles import CycleSpec, CycleStatus, TaskRecord, cycle_object, parse_metrics
from .designing import RunDesigner
from .jobs import claim_manifest, claim_name, job_manifest, owner_reference, queue_name
from .kube import ChildCreateError, Kube, RunGone
from .records import append_record
from .status import (
    CHILDREN_CREATED,
    FAILED,
    LLMOutageStatus,
    child_conditions,
    condition,
    decimal,
    ended,
    finished_status,
    llm_conditions,
    now,
    progress_status,
    reopened_status,
    set_condition,
    timestamp,
)
from .writer import StatusWriter


class KubernetesBackend:
    """Storage and execution of one run: Jobs, EnvGenCycles, the checkpoint claim, status and Events."""

    def __init__(
        self,
        kube: Kube,
        body: dict[str, Any],
        run: EnvGenRun,
        designer: RunDesigner,
        cancelled: threading.Event | None = None,
        listed: tuple[list[dict[str, Any]], list[dict[str, Any]]] | None = None,
    ) -> None:
        """``listed``: the run's EnvGenCycles and Jobs when the caller has just listed them (else the first
        ``observe`` lists them)."""
        self.kube = kube
        self.run = run
        self.designer = designer
        self.cancelled = cancelled or threading.Event()
        self.writer = StatusWriter(kube, body, run)
        self.generation = self.writer.generation
        self.owner = owner_reference(body)
        self.children = Children(kube, run.name, listed)
        self._tasks: dict[str, ObservedTask] = {}
        self._cycle_started: dict[int, str] = {}
        self._claims: set[str] = set()  # checkpoint claims that exist: created, or a Job (that needs one) exists
        self._queued: list[str] = []  # Jobs created suspended that their queue has not admitted yet
        self._podless: list[dict[str, Any]] = []  # running, admitted Jobs without a Pod (yet)
        self._blocked: dict[str, str] = {}  # Jobs whose Pods the API refuses -> its message
        self._unscheduled: dict[str, str] = {}  # Jobs whose Pod finds no node -> the scheduler's message

    @property
    def version(self) -> str | None:
        """The run's resourceVersion as last read or written."""
        return self.writer.version

    # ---- observe ----
    def observe(self) -> Observed:
        """The run as its children show it. The first call of a reconcile lists them; later calls see that list
        with this reconcile's own writes applied (a write that found its name taken lists them again)."""
        cycles, jobs = self.children.cycles(), self.children.jobs()
        designs: dict[int, CycleDesign] = {}
        records: dict[str, tuple[CycleSpec, TaskRecord]] = {}
        for obj in list(cycles.values()):
            spec = CycleSpec.model_validate(obj["spec"])
            if spec.phase == "cycle":
                self._cycle_started[spec.cycle] = obj["metadata"].get("creationTimestamp") or now()
                if spec.design is not None:
                    designs[spec.cycle] = CycleDesign.model_validate(spec.design)
            for record in CycleStatus.model_validate(obj.get("status") or {}).tasks:
                records[record.name] = (spec, record)
        tasks = {name: _recorded_task(spec, record) for name, (spec, record) in records.items()}
        unrecorded = [job for name, job in list(jobs.items()) if name not in tasks]
        tasks |= {job["metadata"]["name"]: self._job_task(job) for job in unrecorded}
        self._tasks = tasks
        # pending admission by their queue: neither failed nor to be recreated
        self._queued = [
            job["metadata"]["name"]
            for job in unrecorded
            if not job_finished(job.get("status") or {}) and (job.get("spec") or {}).get("suspend")
        ]
        self._podless = [job for job in unrecorded if without_pod(job)]
        self._blocked = self.children.refused_pods(self._podless)
        self._unscheduled = self.children.unscheduled(unrecorded)
        self._claims |= {claim_name(self.run, t.seed) for t in tasks.values()}  # Jobs are created after claims
        status = self.writer.status
        return Observed(
            designs=designs,
            tasks=tuple(tasks.values()),
            recorded=frozenset(n for n, (_, r) in records.items() if r.state == "succeeded"),
            design_failures=status.design_failures,
            elapsed_seconds=_elapsed(status.start_time),
            finished=ended(status),
            finished_reason=failed.reason if (failed := condition(status.conditions, FAILED)) else None,
            outage=_outage(status.llm_outage),
            now=datetime.datetime.now(datetime.UTC).timestamp(),
        )

    def _job_task(self, job: dict[str, Any]) -> ObservedTask:
        """A Job not recorded yet, as a task: a finished Job carries its outcome, not yet durable (the engine
        has it recorded, see ``record_failure`` and ``record_metrics``)."""
        labels = job["metadata"].get("labels") or {}
        phase: Phase = "final" if labels.get(LABEL_PHASE) == "final" else "cycle"
        task = ObservedTask(
            name=job["metadata"]["name"],
            phase=phase,
            cycle=int(labels.get(LABEL_CYCLE, "0")),
            seed=int(labels.get(LABEL_SEED, "0")),
            attempt=int(labels.get(LABEL_ATTEMPT, "1")),
            state="running",
        )
        conditions = {c.get("type"): c for c in (job.get("status") or {}).get("conditions") or []}
        complete, failed = conditions.get("Complete"), conditions.get("Failed")
        if complete is not None and complete.get("status") == "True":
            metrics = parse_metrics(self.children.termination_message(task.name, "Succeeded"))
            why = unusable(metrics)
            if why is None:
                return replace(task, state="succeeded", metrics=metrics)
            reason, message = why
            return replace(task, state="failed", metrics=metrics, reason=reason, message=message, durable=False)
        if failed is not None and failed.get("status") == "True":
            metrics = parse_metrics(self.children.termination_message(task.name, "Failed"))
            message = failed.get("message") or ""
            if metrics is not None and metrics.error:
                message = f"{message}: {metrics.error}" if message else metrics.error
            reason = failed.get("reason") or "JobFailed"
            return replace(task, state="failed", metrics=metrics, reason=reason, message=message, durable=False)
        return task

    # ---- act ----
    def save_design(self, design: CycleDesign) -> None:
        self._check_cancelled()
        body = cycle_object(self.run.name, "cycle", design.cycle, design, self.owner)
        if self.children.created(CYCLES_PLURAL, self.kube.create_custom(CYCLES_PLURAL, body)):
            names = ", ".join(e.name for e in design.envs) or "no designed envs"
            self.writer.event("Normal", "CycleDesigned", f"cycle {design.cycle}: {names}")

    def record_design_failure(self, cycle: int, error: str, design: CycleDesign | None) -> None:
        w = self.writer
        w.status = w.status.model_copy(update={"design_failures": w.status.design_failures + 1})
        w.event("Warning", "DesignFailed", f"cycle {cycle}: {error}")
        w.flush()  # at once: a restart must not retry the design for free

    def record_outage(self, outage: LLMOutage | None) -> None:
        value = None
        if outage is not None:
            retry_at = timestamp(next_retry_at(self.run.name, self.run.spec, outage))
            wait = None if outage.retry_after is None else int(outage.retry_after)
            value = LLMOutageStatus(
                since=int(outage.since),
                last_attempt=int(outage.last_attempt),
                attempts=outage.attempts,
                reason=outage.reason[:1024],
                retry_after_seconds=wait,
                retry_at=retry_at,
            )
            self.writer.event("Warning", "LLMUnavailable", f"{outage.reason[:900]}; next try at {retry_at}")
        self.writer.status = self.writer.status.model_copy(update={"llm_outage": value})
        self.writer.flush()  # at once: a restart keeps the backoff

    def reopen(self, message: str) -> None:
        self.writer.status = reopened_status(self.writer.status, message, self.generation)

    def launch(self, task: TrainingTask, attempt: int) -> None:
        self._check_cancelled()
        self._ensure_claim(task.seed)
        job = job_manifest(self.run, task, attempt, self.owner)
        if self.children.created("jobs", job if self.kube.create_job(job) else None):
            prom.JOBS_CREATED.labels(self.kube.ns).inc()
            self.writer.event("Normal", "TrainingJobCreated", f"{task.name} (attempt {attempt})")

    def record_failure(self, failure: RecordFailure) -> None:
        """Record a failed Job in its EnvGenCycle (once: the Job may be deleted), with a metric and an Event."""
        task = self._tasks[failure.name]
        record = TaskRecord(
            name=task.name,
            seed=task.seed,
            attempt=task.attempt,
            state="failed",
            reason=failure.reason[:128],
            message=failure.message[:1024],
            metrics=failure.metrics.compact() if failure.metrics else None,
            finished_at=now(),
        )
        if self._append_record(task, record):
            prom.JOBS_FAILED.labels(self.kube.ns, failure.reason).inc()
            self.writer.event("Warning", "TrainingJobFailed", f"{task.name}: {failure.reason}: {failure.message}")

    def record_metrics(self, name: str, metrics: TrainingMetrics) -> None:
        task = self._tasks[name]
        record = TaskRecord(
            name=name,
            seed=task.seed,
            attempt=task.attempt,
            state="succeeded",
            score=decimal(metrics.score),
            metrics=metrics.compact(),
            finished_at=now(),
        )
        if self._append_record(task, record):
            self.writer.event("Normal", "TrainingJobSucceeded", f"{name}: score {record.score or 'n/a'}")

    def finish(self, outcome: Finish, summary: RunSummary) -> None:
        w = self.writer
        progress = progress_status(w.status, self.run.spec, summary, self.generation, sorted(self._claims))
        w.status = finished_status(progress, outcome, self.generation)
        w.flush()  # the run's end is written before its running Jobs are deleted (never recreated)
        running = [t.name for t in self._tasks.values() if t.state == "running"]
        for name in running:
            self.kube.delete_job(name)
        if running:
            self.children.forget()

    def publish(self, summary: RunSummary) -> None:
        old = self.writer.status
        new = progress_status(old, self.run.spec, summary, self.generation, sorted(self._claims))
        conds = child_conditions(
            new.conditions, self.generation, queue_name(self.run), self._queued, self._blocked, self._unscheduled
        )
        if self.designer.uses_llm and ended(new) is None:
            conds = llm_conditions(conds, self.generation, summary, self.designer.outcome)
        new = new.model_copy(update={"conditions": conds})
        for k in range(old.cycles_completed + 1, new.cycles_completed + 1):
            prom.CYCLES_COMPLETED.labels(self.kube.ns).inc()
            if k in self._cycle_started:
                prom.CYCLE_DURATION.labels(self.kube.ns).observe(_elapsed(self._cycle_started[k]) or 0.0)
        self.writer.status = new

    def flush(self) -> None:
        """Write the status and post the Events: once at the end of a reconcile, after its children were
        created, and at once for what must outlive a crash (a design failure, an outage, the run's end, a refused
        child) and before a design (an LLM request may take minutes)."""
        self.writer.flush()

    def child_create_failed(self, exc: ChildCreateError) -> None:
        """Report a child the API refused to create: condition ChildrenCreated=False and a Warning Event."""
        w = self.writer
        old = w.status
        conds = set_condition(old.conditions, CHILDREN_CREATED, "False", exc.reason, str(exc), self.generation)
        w.status = old.model_copy(update={"conditions": conds})
        if w.status.dump() != old.dump():  # one Event per distinct refusal, not one per retry
            w.event("Warning", "ChildCreateFailed", str(exc))
        w.flush()

    def waits_on_events(self) -> bool:
        """Whether the run, as this reconcile leaves it, waits only on what an event announces: it has ended, or
        its Jobs run (each with a Pod, none waiting for admission) with no LLM outage to retry and no active
        deadline to watch."""
        written = self.writer.written
        if ended(written) is not None:
            failed = condition(written.conditions, FAILED)
            return failed is None or failed.status != "True" or failed.reason not in REOPENABLE
        running = any(t.state == "running" for t in self._tasks.values())
        return (
            running
            and not self._queued
            and not self._podless  # a Pod created or refused (and retried) comes with no Job event of ours
            and written.llm_outage is None
            and self.run.spec.active_deadline_seconds is None
        )

    # ---- helpers ----
    def _append_record(self, task: ObservedTask, record: TaskRecord) -> bool:
        self._check_cancelled()
        return append_record(self.children, self.run.name, self.owner, task.phase, task.cycle, record)

    def _ensure_claim(self, seed: int) -> None:
        """Create a seed's checkpoint claim before its first Job (not before every Job: see ``observe``)."""
        name = claim_name(self.run, seed)
        if name in self._claims:
            return
        if not self.run.spec.checkpoints.claim_name and self.kube.create_claim(
            claim_manifest(self.run, seed, self.owner)
        ):
            self.writer.event("Normal", "CheckpointClaimCreated", name)
        self._claims.add(name)

    def _check_cancelled(self) -> None:
        if self.cancelled.is_set():
            raise RunGone(self.run.name)


def _recorded_task(spec: CycleSpec, record: TaskRecord) -> ObservedTask:
    return ObservedTask(
        name=record.name,
        phase=spec.phase,
        cycle=spec.cycle,
        seed=record.seed,
        attempt=record.attempt,
        state=record.state,
        metrics=record.parsed_metrics(),
        reason=record.reason,
    )


def _outage(status: LLMOutageStatus | None) -> LLMOutage | None:
    if status is None:
        return None
    wait = None if status.retry_after_seconds is None else float(status.retry_after_seconds)
    return LLMOutage(float(status.since), float(status.last_attempt), status.attempts, status.reason, wait)


def _elapsed(since: str | None) -> float | None:
    if not since:
        return None
    start = datetime.datetime.strptime(since, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    return (datetime.datetime.now(datetime.UTC) - start).total_seconds()
