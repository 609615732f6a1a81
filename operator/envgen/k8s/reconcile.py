"""One reconcile of one EnvGenRun, and the cleanup of a deleted one. Blocking code: run it off the event loop.

A per-run guard keeps a cleanup from racing a reconcile that is still in flight: deletion first marks the run
cancelled (no new children), then waits for the reconcile to end, then deletes the children. It also spares
reconciles that would find nothing new: a Job's later events once its finish was reconciled, and timer ticks
while a run waits on what an event announces (``RunGuard.quiet``).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client

from ..driver import step
from ..engine import REOPENABLE
from ..spec import EnvGenRun, SpecError, parse_run
from . import CYCLES_PLURAL, LABEL_MANAGED_BY, LABEL_RUN, MANAGER, RUNS_PLURAL
from . import metrics as prom
from .backend import KubernetesBackend
from .designing import DesignerSessions, RunDesigner
from .kube import PARALLEL, ChildCreateError, Kube
from .status import FAILED, INVALID_SPEC, RUNNING, SUCCEEDED, condition, ended, now, set_condition
from .writer import read_status, snapshot

log = logging.getLogger(__name__)
CLEANUP_WAIT_SECONDS = 60.0
ROUNDS = 4  # rounds per reconcile: record a finished cycle, design the next, create its Jobs


@dataclass
class RunGuard:
    """What the operator holds in memory about one run (an optimisation only: a restart starts empty)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    cancelled: threading.Event = field(default_factory=threading.Event)
    finished_jobs: set[str] = field(default_factory=set)  # uids of finished Jobs reconciled since they finished
    changes: int = 0  # Job events that may change a decision without a reconcile of their own (a deletion)
    # (run resourceVersion, ``changes``, time.monotonic()) as the last reconcile left a run that waits only on what
    # an event announces (its Jobs finishing, a change to the run); None: the next timer tick reconciles.
    quiet: tuple[str, int, float] | None = None

    def is_quiet(self, version: str | None, resync: float) -> bool:
        """Whether a timer tick would find nothing new: the run is at the version the last reconcile left it
        waiting, no Job event came since, and that was less than ``resync`` seconds ago (the safety net)."""
        if self.quiet is None or version is None:
            return False
        at_version, changes, at = self.quiet
        return at_version == version and changes == self.changes and time.monotonic() - at < resync


class Guards:
    """Per-run guards, shared by the reconcile and cleanup handlers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[tuple[str, str], RunGuard] = {}

    def get(self, namespace: str, name: str) -> RunGuard:
        with self._lock:
            return self._runs.setdefault((namespace, name), RunGuard())

    def forget(self, namespace: str, name: str) -> None:
        with self._lock:
            self._runs.pop((namespace, name), None)


def reconcile(
    api: client.ApiClient,
    namespace: str,
    name: str,
    guards: Guards,
    sessions: DesignerSessions,
    *,
    finished_job: str | None = None,
    version: str | None = None,
    resync: float = 0.0,
) -> str | None:
    """Observe, decide and act for a run until it waits on something (at most ``ROUNDS`` rounds: a finished
    cycle is recorded, the next designed and its Jobs created in one reconcile), designing with its session in
    ``sessions`` (closed once the run has ended). Returns why to retry after a delay, or None.

    After a Job event (``finished_job``: the finished Job's uid) nothing is done when a reconcile has already
    seen that Job finished; a timer tick (``version``: the run's resourceVersion as watched) does nothing while
    the run is quiet (``RunGuard.is_quiet``; the timer is the safety net, not the pace of a run)."""
    guard = guards.get(namespace, name)
    if finished_job in guard.finished_jobs:
        return None
    with guard.lock:
        if guard.cancelled.is_set() or finished_job in guard.finished_jobs:
            return None
        if finished_job is None and guard.is_quiet(version, resync):
            return None
        changes, guard.quiet = guard.changes, None
        kube = Kube(api, namespace)
        retry, quiet_at = _reconcile(kube, name, guard.cancelled, sessions, _prefetch(kube, name, finished_job))
        if retry is None and finished_job is not None:
            guard.finished_jobs.add(finished_job)
        if retry is None and quiet_at is not None:
            guard.quiet = (quiet_at, changes, time.monotonic())
        return retry


Listing = Future[list[dict[str, Any]]]


def _prefetch(kube: Kube, name: str, finished_job: str | None) -> tuple[Listing, Listing] | None:
    """After a Job finished, the run's EnvGenCycles and Jobs, listed while the run itself is read (the three
    reads in parallel: two round trips less before the next Job); None on a timer tick, which is often quiet."""
    if finished_job is None:
        return None
    labels = {LABEL_RUN: name}
    return PARALLEL.submit(kube.list_custom, CYCLES_PLURAL, labels), PARALLEL.submit(kube.list_jobs, labels)


def _reconcile(
    kube: Kube, name: str, cancelled: threading.Event, sessions: DesignerSessions, lists: tuple[Listing, Listing] | None
) -> tuple[str | None, str | None]:
    """One reconcile: why to retry (or None), and the run's resourceVersion when it is left quiet (or None)."""
    namespace = kube.ns
    body = kube.get_custom(RUNS_PLURAL, name)
    if body is None or body["metadata"].get("deletionTimestamp"):
        return None, None
    doc = {k: body.get(k) for k in ("apiVersion", "kind", "metadata", "spec")}
    try:
        run = parse_run(doc, f"EnvGenRun {namespace}/{name}")
    except SpecError as exc:
        _reject(kube, body, str(exc))
        return None, None
    status = read_status(body)
    generation = int(body["metadata"].get("generation") or 1)
    failed = condition(status.conditions, FAILED)
    reopenable = failed is not None and failed.status == "True" and failed.reason in REOPENABLE
    if ended(status) is not None and status.observed_generation == generation and not reopenable:
        sessions.close(namespace, name)
        prom.RUNS.update(namespace, name, snapshot(run, status))
        return None, body["metadata"].get("resourceVersion")  # ended: only a change to its spec reopens it
    designer = RunDesigner(run, kube, sessions, str(body["metadata"].get("uid") or ""))
    backend = KubernetesBackend(
        kube, body, run, designer, cancelled, (lists[0].result(), lists[1].result()) if lists else None
    )
    try:
        retry = _rounds(run, designer, backend, sessions, cancelled)
    finally:
        backend.flush()  # the status and Events once, after the children: not in every round
    return retry, backend.version if backend.waits_on_events() else None


def _rounds(
    run: EnvGenRun,
    designer: RunDesigner,
    backend: KubernetesBackend,
    sessions: DesignerSessions,
    cancelled: threading.Event,
) -> str | None:
    namespace, name = backend.kube.ns, run.name
    observed = None
    for _ in range(ROUNDS):
        try:
            # the status and Events are written before the LLM is asked (which may take minutes)
            result = step(run, designer, backend, observed, backend.flush if designer.uses_llm else None)
        except ChildCreateError as exc:
            log.warning("run %s/%s: %s", namespace, name, exc)
            backend.child_create_failed(exc)
            return str(exc)
        if result.observed.finished:
            sessions.close(namespace, name)
            return None
        if designer.outcome is not None and not designer.outcome.available:
            return "the design failed"
        if not result.actions or cancelled.is_set():
            return None
        observed = result.observed
    return None


def _reject(kube: Kube, body: dict[str, Any], message: str) -> None:
    """Mark a run with an invalid spec as Failed (reason InvalidSpec); nothing else happens until it is fixed."""
    status = read_status(body)
    generation = int(body["metadata"].get("generation") or 1)
    failed = condition(status.conditions, FAILED)
    if failed is not None and failed.reason == INVALID_SPEC and status.observed_generation == generation:
        return
    conds = set_condition(status.conditions, RUNNING, "False", INVALID_SPEC, message, generation)
    conds = set_condition(conds, SUCCEEDED, "False", INVALID_SPEC, message, generation)
    conds = set_condition(conds, FAILED, "True", INVALID_SPEC, message, generation)
    update = {"conditions": conds, "observed_generation": generation, "message": message[:1024]}
    new = status.model_copy(update={**update, "start_time": status.start_time or now()})
    kube.patch_custom_status(RUNS_PLURAL, body["metadata"]["name"], new.model_dump(mode="json", by_alias=True))
    kube.event(body, "Warning", INVALID_SPEC, message)


def cleanup(api: client.ApiClient, namespace: str, name: str, guards: Guards, sessions: DesignerSessions) -> None:
    """Close a deleted run's designer session and delete its Jobs, EnvGenCycles and the claims created for it.
    Best effort: errors are logged only."""
    guard = guards.get(namespace, name)
    guard.cancelled.set()
    acquired = guard.lock.acquire(timeout=CLEANUP_WAIT_SECONDS)
    try:
        sessions.close(namespace, name)
        kube = Kube(api, namespace)
        labels = {LABEL_RUN: name}
        steps = [
            *((kube.delete_job, job["metadata"]["name"]) for job in _safe(lambda: kube.list_jobs(labels))),
            *(
                (lambda n: kube.delete_custom(CYCLES_PLURAL, n), obj["metadata"]["name"])
                for obj in _safe(lambda: kube.list_custom(CYCLES_PLURAL, labels))
            ),
        ]
        made = {**labels, LABEL_MANAGED_BY: MANAGER}  # the claims created for the run, never one it referenced
        steps += [(kube.delete_claim, claim["metadata"]["name"]) for claim in _safe(lambda: kube.list_claims(made))]
        for delete, child in steps:
            try:
                delete(child)
            except Exception as exc:  # best effort: owner references let the garbage collector finish the job
                log.warning("could not delete %s of run %s/%s: %s", child, namespace, name, exc)
    finally:
        if acquired:
            guard.lock.release()
        guards.forget(namespace, name)
        prom.RUNS.drop(namespace, name)


def _safe(list_fn: Any) -> list[dict[str, Any]]:
    try:
        return list(list_fn())
    except Exception as exc:
        log.warning("could not list children: %s", exc)
        return []
