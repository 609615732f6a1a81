"""EnvGenExperiment in the cluster: one EnvGenRun per arm (owned by the experiment, labelled with it, named
``<experiment>-<arm>``), their results aggregated into the experiment's status as they finish, per-arm
Prometheus gauges.

Level-based and restart-safe: every reconcile recomputes the status from the API (the arms' runs and their
EnvGenCycles' task records), creates what is missing (a create that finds the name counts as done) and patches
the status only when it changed. Deleting the experiment deletes its runs through their ownerReferences (the
garbage collector), so experiments carry no finalizer.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import kopf
from kubernetes import client
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..k8s import API_GROUP, API_VERSION, CYCLES_PLURAL, LABEL_MANAGED_BY, LABEL_RUN, MANAGER, RUNS_PLURAL
from ..k8s.cycles import CycleStatus
from ..k8s.kube import ChildCreateError, Kube, RunGone, transient
from ..k8s.metrics import REGISTRY
from ..k8s.status import FAILED, RUNNING, SUCCEEDED, Condition, now
from ..spec import SpecError
from .model import KIND, PLURAL, EnvGenExperiment, parse_experiment
from .results import Arm, arm_of
from .status import ArmPhase, ExperimentStatus, aggregate

log = logging.getLogger(__name__)

LABEL_EXPERIMENT = f"{API_GROUP}/experiment"
LABEL_ARM = f"{API_GROUP}/arm"
CHILDREN_CREATED = "ChildrenCreated"


def owner_reference(body: dict[str, Any]) -> dict[str, Any]:
    """The experiment as the controller owner of its runs (the garbage collector deletes them with it)."""
    md = body["metadata"]
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": KIND,
        "name": md["name"],
        "uid": md["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def child_run(exp: EnvGenExperiment, body: dict[str, Any], arm: str) -> dict[str, Any]:
    """The EnvGenRun of one arm: the experiment's namespace and labels (a Kueue queue label too), its own labels,
    owned by the experiment."""
    doc = exp.arm_run(arm).dump()
    md = body["metadata"]
    labels = {
        **(md.get("labels") or {}),
        LABEL_EXPERIMENT: md["name"],
        LABEL_ARM: arm,
        LABEL_MANAGED_BY: MANAGER,
    }
    doc["metadata"] = {
        "name": exp.run_name(arm),
        "namespace": md["namespace"],
        "labels": labels,
        "ownerReferences": [owner_reference(body)],
    }
    doc.pop("status", None)
    return doc


def run_phase(run: dict[str, Any]) -> ArmPhase:
    """An arm's phase from its run's conditions."""
    conditions = {c.get("type"): c.get("status") for c in (run.get("status") or {}).get("conditions") or []}
    if conditions.get(SUCCEEDED) == "True":
        return "Succeeded"
    if conditions.get(FAILED) == "True":
        return "Failed"
    return "Running"


def arm_results(kube: Kube, run: dict[str, Any]) -> Arm:
    """An arm's results from its run's EnvGenCycles: the task records' metrics and the cycles' designs."""
    name = run["metadata"]["name"]
    tasks: list[dict[str, Any]] = []
    designs: list[dict[str, Any]] = []
    for cycle in kube.list_custom(CYCLES_PLURAL, {LABEL_RUN: name}):
        if (cycle.get("spec") or {}).get("design"):
            designs.append(cycle["spec"]["design"])
        status = CycleStatus.model_validate(cycle.get("status") or {})
        for record in status.tasks:
            metrics = record.parsed_metrics() if record.state == "succeeded" else None
            if metrics is not None:
                tasks.append(metrics.dump())
    return arm_of(tasks, designs, finished=run_phase(run) in ("Succeeded", "Failed"))


def conditions(
    previous: list[dict[str, Any]], status: ExperimentStatus, generation: int | None, refused: str | None
) -> list[Condition]:
    """Running, Succeeded, Failed (and ChildrenCreated while the API refuses a run), keeping each one's
    lastTransitionTime while its status stays."""
    phases = [a.phase for a in status.arms]
    failed = [a.name for a in status.arms if a.phase == "Failed"]
    done = all(p in ("Succeeded", "Failed") for p in phases)
    wanted = {
        RUNNING: ("False", "ArmsFinished", "every arm's run ended")
        if done
        else ("True", "ArmsRunning", f"{status.arms_finished}/{status.arm_count} arms finished"),
        SUCCEEDED: ("True", "AllArmsSucceeded", best_line(status))
        if done and not failed
        else ("False", "ArmFailed" if failed else "ArmsRunning", f"failed arms: {', '.join(failed)}" if failed else ""),
        FAILED: ("True", "ArmFailed", f"failed arms: {', '.join(failed)}") if failed else ("False", "NoArmFailed", ""),
    }
    if refused is not None:
        wanted[CHILDREN_CREATED] = ("False", "ChildCreateFailed", refused)
    elif any(c.get("type") == CHILDREN_CREATED for c in previous):
        wanted[CHILDREN_CREATED] = ("True", "ChildrenCreated", "every arm's run exists")
    before = {c.get("type"): c for c in previous}
    out = []
    for ctype, (state, reason, message) in wanted.items():
        old = before.get(ctype) or {}
        stamp = old.get("lastTransitionTime") if old.get("status") == state else None
        out.append(
            Condition(
                type=ctype,
                status=state,
                observed_generation=generation,
                last_transition_time=stamp or now(),
                reason=reason,
                message=message,
            )
        )
    return out


def best_line(status: ExperimentStatus) -> str:
    """The best arm and its difference, as text."""
    if status.best_arm is None:
        return "no arm has 2 finished seeds a side to compare yet"
    return f"best arm {status.best_arm}: {status.best_difference} points vs the baseline (Welch p {status.best_p})"


@dataclass
class Locks:
    """One lock per experiment: its own events and its runs' events may reconcile it at once."""

    _locks: dict[tuple[str, str], threading.Lock]
    _guard: threading.Lock

    def __init__(self) -> None:
        self._locks, self._guard = {}, threading.Lock()

    def of(self, namespace: str, name: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault((namespace, name), threading.Lock())

    def drop(self, namespace: str, name: str) -> None:
        with self._guard:
            self._locks.pop((namespace, name), None)


def reconcile_experiment(api: client.ApiClient, namespace: str, name: str, locks: Locks) -> None:
    """Create the missing runs, aggregate their results, publish the status (only when it changed)."""
    with locks.of(namespace, name):
        _reconcile(Kube(api, namespace), namespace, name)


def _reconcile(kube: Kube, namespace: str, name: str) -> None:
    body = kube.get_custom(PLURAL, name)
    if body is None or body["metadata"].get("deletionTimestamp"):
        GAUGES.drop(namespace, name)
        return
    generation = body["metadata"].get("generation")
    previous = (body.get("status") or {}).get("conditions") or []
    try:
        exp = parse_experiment({k: body[k] for k in ("apiVersion", "kind", "metadata", "spec")}, name)
    except SpecError as exc:
        stamp = now()
        failed = Condition(
            type=FAILED,
            status="True",
            observed_generation=generation,
            last_transition_time=stamp,
            reason="InvalidSpec",
            message=str(exc)[:1024],
        )
        invalid = ExperimentStatus(observed_generation=generation, conditions=[failed]).dump()
        if not any(c.get("reason") == "InvalidSpec" for c in previous):
            kube.patch_custom_status(PLURAL, name, invalid)
            kube.event(body, "Warning", "InvalidSpec", str(exc))
        return
    runs = {r["metadata"]["name"]: r for r in kube.list_custom(RUNS_PLURAL, {LABEL_EXPERIMENT: name})}
    refused = None
    for arm in exp.spec.arms:
        if exp.run_name(arm.name) in runs:
            continue
        doc = child_run(exp, body, arm.name)
        try:
            created = kube.create_custom(RUNS_PLURAL, doc)
        except ChildCreateError as exc:
            refused = str(exc)
            continue
        if created is None:  # the name is taken by a run that is not this experiment's
            refused = f"EnvGenRun {exp.run_name(arm.name)} exists and does not belong to experiment {name}"
            continue
        runs[exp.run_name(arm.name)] = created
        kube.event(body, "Normal", "RunCreated", f"arm {arm.name}: EnvGenRun {exp.run_name(arm.name)}")
    arms: dict[str, Arm] = {}
    phases: dict[str, ArmPhase] = {}
    for arm in exp.spec.arms:
        run = runs.get(exp.run_name(arm.name))
        if run is not None:
            arms[arm.name], phases[arm.name] = arm_results(kube, run), run_phase(run)
    status = aggregate(exp, arms, phases)
    status.observed_generation = generation
    status.conditions = conditions(previous, status, generation, refused)
    new = status.dump()
    GAUGES.update(namespace, name, status)
    if new == body.get("status"):
        return
    kube.patch_custom_status(PLURAL, name, new)
    before = {c.get("type"): c.get("status") for c in previous}
    for c in status.conditions:
        if c.status == "True" and before.get(c.type) != "True":
            kind = "Warning" if c.type == FAILED else "Normal"
            kube.event(body, kind, c.reason, c.message or c.reason)
        if c.type == CHILDREN_CREATED and c.status == "False" and before.get(c.type) != "False":
            kube.event(body, "Warning", c.reason, c.message)


class ExperimentGauges(Collector):
    """Per-arm gauges of every experiment (labels bounded: at most 12 arms an experiment), computed at scrape
    time from the latest status; an experiment's series disappear when it is deleted."""

    def __init__(self) -> None:
        self._status: dict[tuple[str, str], ExperimentStatus] = {}
        self._lock = threading.Lock()

    def update(self, namespace: str, name: str, status: ExperimentStatus) -> None:
        with self._lock:
            self._status[namespace, name] = status

    def drop(self, namespace: str, name: str) -> None:
        with self._lock:
            self._status.pop((namespace, name), None)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            items = sorted(self._status.items())
        labels = ["namespace", "experiment", "arm"]
        score = GaugeMetricFamily(
            "envgen_experiment_arm_score", "An arm's mean final-phase training score (percent).", labels=labels
        )
        diff = GaugeMetricFamily(
            "envgen_experiment_arm_difference", "An arm's score minus the baseline's (points).", labels=labels
        )
        p = GaugeMetricFamily("envgen_experiment_arm_p_value", "Welch p-value of the difference.", labels=labels)
        seeds = GaugeMetricFamily("envgen_experiment_arm_seeds_finished", "Seeds finished per arm.", labels=labels)
        for (ns, name), status in items:
            for a in status.arms:
                key = [ns, name, a.name]
                seeds.add_metric(key, a.seeds_finished)
                for family, value in ((score, a.score), (diff, a.difference), (p, a.p)):
                    if value is not None:
                        family.add_metric(key, float(value))
        yield from (score, diff, p, seeds)


GAUGES = ExperimentGauges()
REGISTRY.register(GAUGES)


def register(registry: kopf.OperatorRegistry, api: client.ApiClient, retry_delay_seconds: float = 30.0) -> None:
    """The experiment's handlers: its own events and its runs' events reconcile it (no timer, so no finalizer:
    the watches' initial listing after a restart and their periodic re-listing reconcile every experiment)."""
    locks = Locks()

    async def run(namespace: str, name: str) -> None:
        try:
            await asyncio.to_thread(reconcile_experiment, api, namespace, name, locks)
        except RunGone:
            pass
        except Exception as exc:
            if transient(exc):
                log.info("reconcile of experiment %s/%s: %s (the next event retries)", namespace, name, exc)
                return
            raise

    @kopf.on.event(API_GROUP, API_VERSION, PLURAL, id="experiment", registry=registry)
    async def experiment_event(namespace: str | None, name: str | None, type: str | None, **_: Any) -> None:
        """An experiment appeared, changed or was listed again: reconcile it."""
        assert namespace is not None and name is not None
        if type == "DELETED":
            GAUGES.drop(namespace, name)
            locks.drop(namespace, name)
            return
        await run(namespace, name)

    @kopf.on.event(
        API_GROUP,
        API_VERSION,
        RUNS_PLURAL,
        id="experiment-arm",
        labels={LABEL_EXPERIMENT: kopf.PRESENT},
        registry=registry,
    )
    async def arm_run_event(namespace: str | None, labels: kopf.Labels, type: str | None, **_: Any) -> None:
        """An arm's run changed (its status, or it was deleted): reconcile its experiment."""
        assert namespace is not None
        await run(namespace, str(labels[LABEL_EXPERIMENT]))
