"""``KubernetesBackend``: the driver's Backend for one EnvGenRun, over the Kubernetes API.

What exists is read from the API on every reconcile (level-based): designs and task records from the run's
EnvGenCycle children, running and finished tasks from its Jobs and (only for a finished Job not recorded yet)
their Pods' termination messages, design failures and start time from the run's status. Later rounds of the
same reconcile see that reading with the reconcile's own writes applied, not a new list. Writes are idempotent:
deterministic names, and an existing name on create counts as success. The status is written, and Events
posted (all at once), once per reconcile after its children are created (``flush``).
"""

from __future__ import annotations

import datetime
import logging
import re
import threading
from dataclasses import replace
from typing import Any

from kubernetes.client.exceptions import ApiException

from ..contracts import CycleDesign, Phase, TrainingMetrics, TrainingTask
from ..engine import REOPENABLE, Finish, LLMOutage, Observed, ObservedTask, RunSummary, next_retry_at, unusable
from ..spec import EnvGenRun
from . import CYCLES_PLURAL, LABEL_ATTEMPT, LABEL_CYCLE, LABEL_PHASE, LABEL_RUN, LABEL_SEED, LABEL_TASK, RUNS_PLURAL
from . import metrics as prom
from .cycles import (
    MAX_TASK_RECORDS,
    CycleSpec,
    CycleStatus,
    TaskRecord,
    cycle_object,
    cycle_object_name,
    parse_metrics,
)
from .designing import RunDesigner
from .jobs import CONTAINER, claim_manifest, claim_name, job_manifest, owner_reference, queue_name
from .kube import PARALLEL, ChildCreateError, Kube, RunGone
from .status import (
    CHILDREN_CREATED,
    FAILED,
    LLM_AVAILABLE,
    PODS_CREATED,
    QUEUED,
    SUCCEEDED,
    Condition,
    ConditionStatus,
    LLMOutageStatus,
    RunStatus,
    condition,
    decimal,
    ended,
    finished_status,
    now,
    pods_created_conditions,
    progress_status,
    reopened_status,
    set_condition,
    timestamp,
)

log = logging.getLogger(__name__)
APPEND_ATTEMPTS = 3  # patches of a task record that another writer's change to its EnvGenCycle may cost


def read_status(body: dict[str, Any]) -> RunStatus:
    """The run's status as a model; fields the operator does not own are ignored."""
    raw = body.get("status") or {}
    known = {f.alias or n for n, f in RunStatus.model_fields.items()}
    try:
        return RunStatus.model_validate({k: v for k, v in raw.items() if k in known})
    except ValueError:
        log.warning("unreadable status on %s; starting from an empty one", body["metadata"]["name"])
        return RunStatus()


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
        self.body = body
        self.run = run
        self.designer = designer
        self.cancelled = cancelled or threading.Event()
        self.status = read_status(body)  # as this reconcile has it: written by ``flush``
        self._written = self.status  # as last read or written
        self._events: list[tuple[str, str, str]] = []  # (type, reason, message) for ``flush`` to post
        self.generation = int(body["metadata"].get("generation") or 1)
        self.version: str | None = body["metadata"].get("resourceVersion")  # of the run, as last read or written
        self.owner = owner_reference(body)
        self.labels = {LABEL_RUN: run.name}
        self._tasks: dict[str, ObservedTask] = {}
        self._cycle_started: dict[int, str] = {}
        self._claims: set[str] = set()  # checkpoint claims that exist: created, or a Job (that needs one) exists
        self._queued: list[str] = []  # Jobs created suspended that their queue has not admitted yet
        self._podless: list[dict[str, Any]] = []  # running, admitted Jobs without a Pod (yet)
        self._blocked: dict[str, str] = {}  # Jobs whose Pods the API refuses -> its message
        # The run's EnvGenCycles, Jobs and Pods by name as this reconcile listed them (None: list them again).
        self._cycles = _by_name(listed[0]) if listed else None
        self._jobs = _by_name(listed[1]) if listed else None
        self._pods: dict[str, list[dict[str, Any]]] | None = None

    # ---- observe ----
    def observe(self) -> Observed:
        """The run as its children show it. The first call of a reconcile lists them; later calls see that list
        with this reconcile's own writes applied (a write that found its name taken lists them again)."""
        if self._cycles is None or self._jobs is None:
            self._cycles = _by_name(self.kube.list_custom(CYCLES_PLURAL, self.labels))
            self._jobs = _by_name(self.kube.list_jobs(self.labels))
            self._pods = None
        designs: dict[int, CycleDesign] = {}
        records: dict[str, tuple[CycleSpec, TaskRecord]] = {}
        for obj in list(self._cycles.values()):
            spec = CycleSpec.model_validate(obj["spec"])
            if spec.phase == "cycle":
                self._cycle_started[spec.cycle] = obj["metadata"].get("creationTimestamp") or now()
                if spec.design is not None:
                    designs[spec.cycle] = CycleDesign.model_validate(spec.design)
            for record in CycleStatus.model_validate(obj.get("status") or {}).tasks:
                records[record.name] = (spec, record)
        tasks = {name: _recorded_task(spec, record) for name, (spec, record) in records.items()}
        self._queued = []
        for name, job in list(self._jobs.items()):
            if name not in tasks:
                tasks[name] = self._job_task(job)
        self._tasks = tasks
        self._podless = [j for n, j in self._jobs.items() if n not in records and _without_pod(j)]
        self._blocked = self._refused_pods(self._podless)
        self._claims |= {claim_name(self.run, t.seed) for t in tasks.values()}  # Jobs are created after claims
        return Observed(
            designs=designs,
            tasks=tuple(tasks.values()),
            recorded=frozenset(n for n, (_, r) in records.items() if r.state == "succeeded"),
            design_failures=self.status.design_failures,
            elapsed_seconds=_elapsed(self.status.start_time),
            finished=ended(self.status),
            finished_reason=failed.reason if (failed := condition(self.status.conditions, FAILED)) else None,
            outage=_outage(self.status.llm_outage),
            now=datetime.datetime.now(datetime.UTC).timestamp(),
        )

    def _refused_pods(self, jobs: list[dict[str, Any]]) -> dict[str, str]:
        """Of Jobs without a Pod, those whose Pod the API refused (the Job controller's FailedCreate Event), with
        the refusal; the Events are listed only when there are such Jobs."""
        waiting = {j["metadata"].get("uid"): j["metadata"]["name"] for j in jobs}
        if not waiting:
            return {}
        newest: dict[str, tuple[str, str]] = {}
        for event in self.kube.list_events("involvedObject.kind=Job,reason=FailedCreate"):
            name = waiting.get((event.get("involvedObject") or {}).get("uid"))
            if name is None:
                continue
            at = event.get("lastTimestamp") or event.get("eventTime") or ""
            if name not in newest or at >= newest[name][0]:
                newest[name] = (at, refusal(event.get("message") or ""))
        return {name: message for name, (_, message) in newest.items()}

    def _termination_message(self, job: str, phase: str) -> str | None:
        """The trainer's termination message from a finished Job's newest Pod in ``phase``. The run's Pods are
        listed once per reconcile, and only for a finished Job not recorded yet; always after the Jobs, so a
        Job seen finished has its Pods' final state here."""
        if self._pods is None:
            self._pods = {}
            for pod in self.kube.list_pods(self.labels):
                task = (pod["metadata"].get("labels") or {}).get(LABEL_TASK)
                if task:
                    self._pods.setdefault(task, []).append(pod)
        return _termination_message(self._pods.get(job, []), phase)

    def _job_task(self, job: dict[str, Any]) -> ObservedTask:
        """A Job as a task; a finished Job that failed (or has no usable metrics) is recorded at once."""
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
            metrics = parse_metrics(self._termination_message(task.name, "Succeeded"))
            why = unusable(metrics)
            if why is None:
                return replace(task, state="succeeded", metrics=metrics)
            return self._record_failure(task, *why, metrics)
        if failed is not None and failed.get("status") == "True":
            metrics = parse_metrics(self._termination_message(task.name, "Failed"))
            message = failed.get("message") or ""
            if metrics is not None and metrics.error:
                message = f"{message}: {metrics.error}" if message else metrics.error
            return self._record_failure(task, failed.get("reason") or "JobFailed", message, metrics)
        if (job.get("spec") or {}).get("suspend"):  # pending admission: neither failed nor to be recreated
            self._queued.append(task.name)
        return task

    def _record_failure(
        self, task: ObservedTask, reason: str, message: str, metrics: TrainingMetrics | None
    ) -> ObservedTask:
        record = TaskRecord(
            name=task.name,
            seed=task.seed,
            attempt=task.attempt,
            state="failed",
            reason=reason[:128],
            message=message[:1024],
            metrics=metrics.compact() if metrics else None,
            finished_at=now(),
        )
        if self._append_record(task.phase, task.cycle, record):
            prom.JOBS_FAILED.labels(self.kube.ns, reason).inc()
            self._event("Warning", "TrainingJobFailed", f"{task.name}: {reason}: {message}")
        return replace(task, state="failed", metrics=metrics, reason=reason)

    # ---- act ----
    def save_design(self, design: CycleDesign) -> None:
        self._check_cancelled()
        body = cycle_object(self.run.name, "cycle", design.cycle, design, self.owner)
        if self._observe_create(self._cycles, self.kube.create_custom(CYCLES_PLURAL, body)):
            names = ", ".join(e.name for e in design.envs) or "no designed envs"
            self._event("Normal", "CycleDesigned", f"cycle {design.cycle}: {names}")

    def record_design_failure(self, cycle: int, error: str, design: CycleDesign | None) -> None:
        self.status = self.status.model_copy(update={"design_failures": self.status.design_failures + 1})
        self._event("Warning", "DesignFailed", f"cycle {cycle}: {error}")
        self.flush()  # at once: a restart must not retry the design for free

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
            self._event("Warning", "LLMUnavailable", f"{outage.reason[:900]}; next try at {retry_at}")
        self.status = self.status.model_copy(update={"llm_outage": value})
        self.flush()  # at once: a restart keeps the backoff

    def reopen(self, message: str) -> None:
        self.status = reopened_status(self.status, message, self.generation)

    def launch(self, task: TrainingTask, attempt: int) -> None:
        self._check_cancelled()
        self._ensure_claim(task.seed)
        job = job_manifest(self.run, task, attempt, self.owner)
        if self._observe_create(self._jobs, job if self.kube.create_job(job) else None):
            prom.JOBS_CREATED.labels(self.kube.ns).inc()
            self._event("Normal", "TrainingJobCreated", f"{task.name} (attempt {attempt})")

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
        if self._append_record(task.phase, task.cycle, record):
            self._event("Normal", "TrainingJobSucceeded", f"{name}: score {record.score or 'n/a'}")

    def finish(self, outcome: Finish, summary: RunSummary) -> None:
        progress = progress_status(self.status, self.run.spec, summary, self.generation, sorted(self._claims))
        self.status = finished_status(progress, outcome, self.generation)
        self.flush()  # the run's end is written before its running Jobs are deleted (never recreated)
        running = [t.name for t in self._tasks.values() if t.state == "running"]
        for name in running:
            self.kube.delete_job(name)
        if running:
            self._jobs = None  # list them again

    def publish(self, summary: RunSummary) -> None:
        old = self.status
        new = progress_status(old, self.run.spec, summary, self.generation, sorted(self._claims))
        new = new.model_copy(update={"conditions": self._child_conditions(new)})
        if self.designer.uses_llm and ended(new) is None:
            out = self.designer.outcome
            if summary.llm_retry_at is not None:
                message = f"{summary.llm_reason}; next try at {timestamp(summary.llm_retry_at)}"[:1024]
                conds = set_condition(new.conditions, LLM_AVAILABLE, "False", "Unavailable", message, self.generation)
            elif out is not None:
                status: ConditionStatus = "True" if out.available else "False"
                conds = set_condition(new.conditions, LLM_AVAILABLE, status, out.reason, out.message, self.generation)
            elif condition(new.conditions, LLM_AVAILABLE) is None:
                conds = set_condition(
                    new.conditions, LLM_AVAILABLE, "Unknown", "NotCalledYet", "no design requested yet", self.generation
                )
            else:
                conds = new.conditions
            new = new.model_copy(update={"conditions": conds})
        for k in range(old.cycles_completed + 1, new.cycles_completed + 1):
            prom.CYCLES_COMPLETED.labels(self.kube.ns).inc()
            if k in self._cycle_started:
                prom.CYCLE_DURATION.labels(self.kube.ns).observe(_elapsed(self._cycle_started[k]) or 0.0)
        self.status = new

    def child_create_failed(self, exc: ChildCreateError) -> None:
        """Report a child the API refused to create: condition ChildrenCreated=False and a Warning Event."""
        old = self.status
        conds = set_condition(old.conditions, CHILDREN_CREATED, "False", exc.reason, str(exc), self.generation)
        self.status = old.model_copy(update={"conditions": conds})
        if self.status.dump() != old.dump():  # one Event per distinct refusal, not one per retry
            self._event("Warning", "ChildCreateFailed", str(exc))
        self.flush()

    def waits_on_events(self) -> bool:
        """Whether the run, as this reconcile leaves it, waits only on what an event announces: it has ended, or
        its Jobs run (none waits for admission) with no LLM outage to retry and no active deadline to watch."""
        if ended(self._written) is not None:
            failed = condition(self._written.conditions, FAILED)
            return failed is None or failed.status != "True" or failed.reason not in REOPENABLE
        running = any(t.state == "running" for t in self._tasks.values())
        return (
            running
            and not self._queued
            and not self._podless  # a Pod created or refused (and retried) comes with no Job event of ours
            and self._written.llm_outage is None
            and self.run.spec.active_deadline_seconds is None
        )

    # ---- helpers ----
    def _child_conditions(self, status: RunStatus) -> list[Condition]:
        """ChildrenCreated back to True after a refusal (this reconcile created all it had to); Queued."""
        conds = status.conditions
        refused = condition(conds, CHILDREN_CREATED)
        if refused is not None and refused.status == "False":
            conds = set_condition(
                conds, CHILDREN_CREATED, "True", "Created", "every child was created", self.generation
            )
        conds = pods_created_conditions(conds, self._blocked, self.generation)
        queue = queue_name(self.run)
        if self._queued and queue:
            names = ", ".join(self._queued[:8])
            message = f"{len(self._queued)} Job(s) wait for admission by queue {queue}: {names}"
            conds = set_condition(conds, QUEUED, "True", "WaitingForAdmission", message, self.generation)
        elif condition(conds, QUEUED) is not None:
            conds = set_condition(conds, QUEUED, "False", "Admitted", "no Job waits for admission", self.generation)
        return conds

    def _patch_status(self, status: dict[str, Any]) -> None:
        """Patch the run's status over the version this reconcile knows: a writer that came between (another
        replica) makes it a 409 Conflict, and the status is recomputed from a fresh read, never overwritten. A
        conflict that left the status and spec as they were (Kopf's finalizer, annotations, labels) is no
        conflict: the patch is made again over the new version."""
        try:
            self.version = self.kube.patch_custom_status(RUNS_PLURAL, self.run.name, status, self.version)
        except ApiException as exc:
            if exc.status != 409:
                raise
            fresh = self.kube.get_custom(RUNS_PLURAL, self.run.name)
            if fresh is None:
                raise RunGone(self.run.name) from None
            md = fresh["metadata"]
            same = (
                read_status(fresh).dump() == self._written.dump() and int(md.get("generation") or 1) == self.generation
            )
            if not same or md.get("deletionTimestamp"):
                raise
            self.version = self.kube.patch_custom_status(RUNS_PLURAL, self.run.name, status, md["resourceVersion"])

    def flush(self) -> None:
        """Write the status (when it changed) and post the Events held back: once at the end of a reconcile, after
        its children were created, and at once for what must outlive a crash (a design failure, an outage, the
        run's end, a refused child) and before a design request to the LLM (which may take minutes)."""
        try:
            if self.status.dump() != self._written.dump():
                self._patch_status(self.status.model_dump(mode="json", by_alias=True))
                self._announce(self._written, self.status)
                self._written = self.status
        finally:
            events, self._events = self._events, []
            posted = [PARALLEL.submit(self.kube.event, self.body, *event) for event in events]
            for post in posted:  # all at once: one round trip, not one per Event
                post.result()
        prom.RUNS.update(self.kube.ns, self.run.name, snapshot(self.run, self._written))

    def _event(self, kind: str, reason: str, message: str) -> None:
        """An Event about the run, posted at the next ``flush``."""
        self._events.append((kind, reason, message))

    def _announce(self, old: RunStatus, new: RunStatus) -> None:
        """An Event for every condition that changed status (or appeared as True)."""
        for cond in new.conditions:
            before = condition(old.conditions, cond.type)
            appeared = before is None and cond.status == "True"
            flipped = appeared or (before is not None and before.status != cond.status)
            refused = cond.type == PODS_CREATED and cond.status == "False"  # every new refusal, once
            if flipped or (refused and (before is None or before.message != cond.message)):
                warning = (cond.type == "Failed" and cond.status == "True") or (
                    cond.type in (SUCCEEDED, LLM_AVAILABLE, PODS_CREATED) and cond.status == "False"
                )
                self._event(
                    "Warning" if warning else "Normal", cond.reason, f"{cond.type}={cond.status}: {cond.message}"
                )

    def _append_record(self, phase: Phase, cycle: int, record: TaskRecord) -> bool:
        """Add a task record to its EnvGenCycle (created if missing); False when it was already there. Patched
        over the version observed: when another writer came between, read it again and retry."""
        self._check_cancelled()
        name = cycle_object_name(self.run.name, phase, cycle)
        obj = (self._cycles or {}).get(name)
        if obj is None:
            body = cycle_object(self.run.name, phase, cycle, None, self.owner)
            obj = self.kube.create_custom(CYCLES_PLURAL, body) or self.kube.get_custom(CYCLES_PLURAL, name) or {}
        for attempt in range(1, APPEND_ATTEMPTS + 1):
            status = CycleStatus.model_validate(obj.get("status") or {})
            if any(r.name == record.name for r in status.tasks):
                return False
            tasks = [t.dump() for t in [*status.tasks, record][-MAX_TASK_RECORDS:]]
            metadata = obj.get("metadata") or {}
            try:
                version = self.kube.patch_custom_status(
                    CYCLES_PLURAL, name, {"tasks": tasks}, metadata.get("resourceVersion")
                )
            except ApiException as exc:
                if exc.status != 409 or attempt == APPEND_ATTEMPTS:
                    raise
                obj = self.kube.get_custom(CYCLES_PLURAL, name) or {}
                continue
            if self._cycles is not None:
                self._cycles[name] = {
                    **obj,
                    "metadata": {**metadata, "resourceVersion": version},
                    "status": {**(obj.get("status") or {}), "tasks": tasks},
                }
            return True
        return False

    def _ensure_claim(self, seed: int) -> None:
        """Create a seed's checkpoint claim before its first Job (not before every Job: see ``observe``)."""
        name = claim_name(self.run, seed)
        if name in self._claims:
            return
        if not self.run.spec.checkpoints.claim_name and self.kube.create_claim(
            claim_manifest(self.run, seed, self.owner)
        ):
            self._event("Normal", "CheckpointClaimCreated", name)
        self._claims.add(name)

    def _observe_create(self, view: dict[str, dict[str, Any]] | None, created: dict[str, Any] | None) -> bool:
        """Apply a create to the observed children: the object joins them when this reconcile created it; when
        its name was taken (another replica), they are listed again. Whether it was created."""
        if created is None:
            self._cycles = self._jobs = None
            return False
        if view is not None:
            view[created["metadata"]["name"]] = created
        return True

    def _check_cancelled(self) -> None:
        if self.cancelled.is_set():
            raise RunGone(self.run.name)


def snapshot(run: EnvGenRun, status: RunStatus) -> prom.RunSnapshot:
    """The per-run gauges of a status."""
    return prom.RunSnapshot(
        game=run.spec.game,
        designer=run.spec.designer.type,
        conditions={c.type: c.status for c in status.conditions},
        current_cycle=status.current_cycle,
        score=float(status.score) if status.score is not None else None,
        skills={s.name: float(s.mean) / 100.0 for s in status.skills},
    )


def _without_pod(job: dict[str, Any]) -> bool:
    """Whether a running, admitted Job has no Pod (active, terminating or finished-and-counted)."""
    status = job.get("status") or {}
    finished = any(
        c.get("type") in ("Complete", "Failed") and c.get("status") == "True" for c in status.get("conditions") or []
    )
    return not (finished or (job.get("spec") or {}).get("suspend") or status.get("active") or status.get("terminating"))


def refusal(message: str) -> str:
    """The API's refusal of a Pod without the Job controller's prefix and the Pod's generated name."""
    return re.sub(r'^(Error creating: )?pods "[^"]*" is forbidden: ', "", message)[:512]


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


def _by_name(objs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {obj["metadata"]["name"]: obj for obj in objs}


def _termination_message(pods: list[dict[str, Any]], phase: str) -> str | None:
    """The trainer container's termination message from the newest Pod in a phase."""
    candidates = [p for p in pods if (p.get("status") or {}).get("phase") == phase]
    candidates.sort(key=lambda p: p["metadata"].get("creationTimestamp") or "")
    for pod in reversed(candidates):
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (cs.get("state") or {}).get("terminated") or {}
            if cs.get("name") == CONTAINER and terminated.get("message"):
                return str(terminated["message"])
    return None


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
