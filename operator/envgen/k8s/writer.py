"""The run's status and Events as one reconcile writes them: the status is changed in memory and written, with
the Events held back, at ``flush`` (once per reconcile after its children are created, and at once for what
must outlive a crash)."""

from __future__ import annotations

import logging
from typing import Any

from kubernetes.client.exceptions import ApiException

from ..spec import EnvGenRun
from . import RUNS_PLURAL
from . import metrics as prom
from .kube import PARALLEL, Kube, RunGone
from .status import FAILED, LLM_AVAILABLE, POD_CONDITIONS, SUCCEEDED, RunStatus, condition

log = logging.getLogger(__name__)


def read_status(body: dict[str, Any]) -> RunStatus:
    """The run's status as a model; fields the operator does not own are ignored."""
    raw = body.get("status") or {}
    known = {f.alias or n for n, f in RunStatus.model_fields.items()}
    try:
        return RunStatus.model_validate({k: v for k, v in raw.items() if k in known})
    except ValueError:
        log.warning("unreadable status on %s; starting from an empty one", body["metadata"]["name"])
        return RunStatus()


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


class StatusWriter:
    """The run's status (``status``: as this reconcile has it; ``written``: as last read or written) and the
    Events to post."""

    def __init__(self, kube: Kube, body: dict[str, Any], run: EnvGenRun) -> None:
        self.kube = kube
        self.body = body
        self.run = run
        self.status = read_status(body)
        self.written = self.status
        self.generation = int(body["metadata"].get("generation") or 1)
        self.version: str | None = body["metadata"].get("resourceVersion")  # of the run, as last read or written
        self._events: list[tuple[str, str, str]] = []  # (type, reason, message)

    def event(self, kind: str, reason: str, message: str) -> None:
        """An Event about the run, posted at the next ``flush``."""
        self._events.append((kind, reason, message))

    def flush(self) -> None:
        """Write the status (when it changed) and post the Events held back, all at once."""
        try:
            if self.status.dump() != self.written.dump():
                self._patch(self.status.model_dump(mode="json", by_alias=True))
                self._announce(self.written, self.status)
                self.written = self.status
        finally:
            events, self._events = self._events, []
            posted = [PARALLEL.submit(self.kube.event, self.body, *event) for event in events]
            for post in posted:  # all at once: one round trip, not one per Event
                post.result()
        prom.RUNS.update(self.kube.ns, self.run.name, snapshot(self.run, self.written))

    def _patch(self, status: dict[str, Any]) -> None:
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
                read_status(fresh).dump() == self.written.dump() and int(md.get("generation") or 1) == self.generation
            )
            if not same or md.get("deletionTimestamp"):
                raise
            self.version = self.kube.patch_custom_status(RUNS_PLURAL, self.run.name, status, md["resourceVersion"])

    def _announce(self, old: RunStatus, new: RunStatus) -> None:
        """An Event for every condition that changed status (or appeared as True), and for every new refusal of
        Pods or new reason the scheduler gives."""
        for cond in new.conditions:
            before = condition(old.conditions, cond.type)
            appeared = before is None and cond.status == "True"
            flipped = appeared or (before is not None and before.status != cond.status)
            refused = cond.type in POD_CONDITIONS and cond.status == "False"
            if flipped or (refused and (before is None or before.message != cond.message)):
                warning = (
                    refused
                    or (cond.type == FAILED and cond.status == "True")
                    or (cond.type in (SUCCEEDED, LLM_AVAILABLE) and cond.status == "False")
                )
                self.event(
                    "Warning" if warning else "Normal", cond.reason, f"{cond.type}={cond.status}: {cond.message}"
                )
