"""A run's children as one reconcile sees them: its EnvGenCycles and Jobs listed once, with the reconcile's own
writes applied, its Pods listed only when a finished Job's termination message is needed or a Job's Pod is not
ready, and the Job controller's refusals of Pods (FailedCreate Events) listed only when a Job has no Pod."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from . import CYCLES_PLURAL, LABEL_RUN, LABEL_TASK
from .jobs import CONTAINER
from .kube import Kube

REFUSED_PODS = "involvedObject.kind=Job,reason=FailedCreate"


class Children:
    """The run's EnvGenCycles, Jobs and Pods by name (listed again after ``forget``)."""

    def __init__(
        self, kube: Kube, run: str, listed: tuple[list[dict[str, Any]], list[dict[str, Any]]] | None = None
    ) -> None:
        """``listed``: the run's EnvGenCycles and Jobs when the caller has just listed them."""
        self.kube = kube
        self.labels = {LABEL_RUN: run}
        self._cycles = _by_name(listed[0]) if listed else None
        self._jobs = _by_name(listed[1]) if listed else None
        self._pods: dict[str, list[dict[str, Any]]] | None = None

    def cycles(self) -> dict[str, dict[str, Any]]:
        """The run's EnvGenCycles by name."""
        self._list()
        assert self._cycles is not None
        return self._cycles

    def jobs(self) -> dict[str, dict[str, Any]]:
        """The run's Jobs by name."""
        self._list()
        assert self._jobs is not None
        return self._jobs

    def termination_message(self, job: str, phase: str) -> str | None:
        """The trainer's termination message from a Job's newest Pod in ``phase``. The Pods are listed once per
        reconcile, always after the Jobs, so a Job seen finished has its Pods' final state here."""
        return _termination_message(self._pods_of(job), phase)

    def unscheduled(self, jobs: list[dict[str, Any]]) -> dict[str, str]:
        """Of ``jobs``, those whose newest Pod waits for a node (the scheduler's Unschedulable), with its message.
        Pods are listed only when a running Job has fewer ready Pods than active ones."""
        waiting = [j for j in jobs if _not_ready(j.get("status") or {})]
        found: dict[str, str] = {}
        for job in waiting:
            name = job["metadata"]["name"]
            pods = sorted(self._pods_of(name), key=lambda p: p["metadata"].get("creationTimestamp") or "")
            message = _unschedulable(pods[-1]) if pods else None
            if message is not None:
                found[name] = message
        return found

    def _pods_of(self, job: str) -> list[dict[str, Any]]:
        """A Job's Pods, from one list of the run's Pods per reconcile (after the Jobs)."""
        if self._pods is None:
            self._pods = {}
            for pod in self.kube.list_pods(self.labels):
                task = (pod["metadata"].get("labels") or {}).get(LABEL_TASK)
                if task:
                    self._pods.setdefault(task, []).append(pod)
        return self._pods.get(job, [])

    def refused_pods(self, jobs: list[dict[str, Any]]) -> dict[str, str]:
        """Of ``jobs`` (without a Pod), those whose Pod the API refused, with the newest refusal."""
        waiting = {j["metadata"].get("uid"): j["metadata"]["name"] for j in jobs}
        if not waiting:
            return {}
        newest: dict[str, tuple[str, str]] = {}
        for event in self.kube.list_events(REFUSED_PODS):
            name = waiting.get((event.get("involvedObject") or {}).get("uid"))
            if name is None:
                continue
            at = event.get("lastTimestamp") or event.get("eventTime") or ""
            if name not in newest or at >= newest[name][0]:
                newest[name] = (at, refusal(event.get("message") or ""))
        return {name: message for name, (_, message) in newest.items()}

    def created(self, plural: str, obj: dict[str, Any] | None) -> bool:
        """Apply a create (``CYCLES_PLURAL`` or ``"jobs"``): the object joins the children when this reconcile
        created it (``obj``); None, its name was taken (another replica), so they are listed again. Whether it was
        created."""
        if obj is None:
            self.forget()
            return False
        view = self._cycles if plural == CYCLES_PLURAL else self._jobs
        if view is not None:
            view[obj["metadata"]["name"]] = obj
        return True

    def updated_cycle(self, obj: dict[str, Any]) -> None:
        """An EnvGenCycle as this reconcile wrote it."""
        if self._cycles is not None:
            self._cycles[obj["metadata"]["name"]] = obj

    def forget(self) -> None:
        """List everything again at the next look."""
        self._cycles = self._jobs = None

    def _list(self) -> None:
        if self._cycles is None or self._jobs is None:
            self._cycles = _by_name(self.kube.list_custom(CYCLES_PLURAL, self.labels))
            self._jobs = _by_name(self.kube.list_jobs(self.labels))
            self._pods = None


def without_pod(job: dict[str, Any]) -> bool:
    """Whether a running, admitted Job has no Pod (active, terminating or finished-and-counted)."""
    status = job.get("status") or {}
    suspended = (job.get("spec") or {}).get("suspend")
    return not (job_finished(status) or suspended or status.get("active") or status.get("terminating"))


def job_finished(status: Mapping[str, Any]) -> bool:
    """Whether a Job (by its ``status``) has ended: its Complete or Failed condition is True."""
    conditions = status.get("conditions") or []
    return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True" for c in conditions)


def _not_ready(status: Mapping[str, Any]) -> bool:
    """Whether a running Job has an active Pod that is not ready (pending, or starting)."""
    return not job_finished(status) and int(status.get("active") or 0) > int(status.get("ready") or 0)


def _unschedulable(pod: dict[str, Any]) -> str | None:
    """The scheduler's message when a Pending Pod found no node (its PodScheduled condition), else None."""
    status = pod.get("status") or {}
    if status.get("phase") not in (None, "Pending"):
        return None
    for cond in status.get("conditions") or []:
        if (cond.get("type"), cond.get("status"), cond.get("reason")) == ("PodScheduled", "False", "Unschedulable"):
            return str(cond.get("message") or "no node fits the Pod")[:512]
    return None


def refusal(message: str) -> str:
    """The API's refusal of a Pod without the Job controller's prefix and the Pod's generated name."""
    return re.sub(r'^(Error creating: )?pods "[^"]*" is forbidden: ', "", message)[:512]


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
