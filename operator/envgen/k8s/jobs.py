"""Manifests of a run's children: one training Job per task, and the checkpoint PersistentVolumeClaim.

Task paths from the engine are relative to the storage root; here they are placed under the claim's mount
and the run's own directory, so several runs can share one claim.
"""

from __future__ import annotations

import os
from typing import Any

from .. import __version__
from ..contracts import EXIT_INVALID_TASK, TrainingTask
from ..spec import EnvGenRun
from . import (
    LABEL_ATTEMPT,
    LABEL_CYCLE,
    LABEL_MANAGED_BY,
    LABEL_PHASE,
    LABEL_RUN,
    LABEL_SEED,
    LABEL_TASK,
    MANAGER,
    TASK_ANNOTATION,
)

WORKSPACE = "/workspace"
TASK_DIR = "/etc/envgen"
CONTAINER = "trainer"
IMAGE_ENV = "ENVGEN_TRAINER_IMAGE"
FALLBACK_IMAGE = f"envgen-trainer:{__version__}"
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"


def claim_name(run: EnvGenRun) -> str:
    """The checkpoint claim: the one the spec references, or ``<run>-checkpoints`` created for the run."""
    return run.spec.checkpoints.claim_name or f"{run.name}-checkpoints"


def run_root(run: EnvGenRun) -> str:
    """The run's directory on the checkpoint volume."""
    return f"{WORKSPACE}/{run.name}"


def rooted(task: TrainingTask, root: str) -> TrainingTask:
    """The task with its storage paths placed under ``root``."""
    return task.model_copy(
        update={
            "checkpoint_in": f"{root}/{task.checkpoint_in}" if task.checkpoint_in else None,
            "checkpoint_out": f"{root}/{task.checkpoint_out}",
            "output_dir": f"{root}/{task.output_dir}",
        }
    )


def queue_name(run: EnvGenRun) -> str | None:
    """The Kueue LocalQueue of the run's Jobs: ``spec.queueName``, else the run's own queue-name label."""
    return run.spec.queue_name or run.metadata.labels.get(KUEUE_QUEUE_LABEL) or None


def trainer_image(run: EnvGenRun) -> str:
    """``spec.resources.image``, else the operator's default trainer image."""
    return run.spec.resources.image or os.environ.get(IMAGE_ENV) or FALLBACK_IMAGE


def task_labels(run: EnvGenRun, task: TrainingTask, attempt: int) -> dict[str, str]:
    """Labels of a task's Job and Pods."""
    return {
        LABEL_RUN: run.name,
        LABEL_TASK: task.name,
        LABEL_PHASE: task.phase,
        LABEL_CYCLE: str(task.cycle),
        LABEL_SEED: str(task.seed),
        LABEL_ATTEMPT: str(attempt),
        LABEL_MANAGED_BY: MANAGER,
    }


def job_manifest(run: EnvGenRun, task: TrainingTask, attempt: int, owner: dict[str, Any]) -> dict[str, Any]:
    """The batch/v1 Job that runs ``envgen-train`` on one task."""
    res = run.spec.resources
    placed = rooted(task, run_root(run))
    labels = task_labels(run, task, attempt)
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": trainer_image(run),
        "command": ["envgen-train", "--task", f"{TASK_DIR}/task.json"],
        "resources": {"requests": dict(res.requests), **({"limits": dict(res.limits)} if res.limits else {})},
        "volumeMounts": [
            {"name": "workspace", "mountPath": WORKSPACE},
            {"name": "task", "mountPath": TASK_DIR, "readOnly": True},
        ],
        "terminationMessagePath": placed.termination_message_path,
        "terminationMessagePolicy": "File",
    }
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [container],
        "volumes": [
            {"name": "workspace", "persistentVolumeClaim": {"claimName": claim_name(run)}},
            {
                "name": "task",
                "downwardAPI": {
                    "items": [
                        {"path": "task.json", "fieldRef": {"fieldPath": f"metadata.annotations['{TASK_ANNOTATION}']"}}
                    ]
                },
            },
        ],
    }
    if res.node_selector:
        pod_spec["nodeSelector"] = dict(res.node_selector)
    if res.tolerations:
        pod_spec["tolerations"] = [t.dump() for t in res.tolerations]
    job_spec: dict[str, Any] = {
        "backoffLimit": res.backoff_limit,
        "podFailurePolicy": {
            "rules": [
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
                {
                    "action": "FailJob",
                    "onExitCodes": {"containerName": CONTAINER, "operator": "In", "values": [EXIT_INVALID_TASK]},
                },
            ]
        },
        "template": {
            "metadata": {"labels": labels, "annotations": {TASK_ANNOTATION: placed.model_dump_json(by_alias=True)}},
            "spec": pod_spec,
        },
    }
    if res.job_active_deadline_seconds is not None:
        job_spec["activeDeadlineSeconds"] = res.job_active_deadline_seconds
    if res.ttl_seconds_after_finished is not None:
        job_spec["ttlSecondsAfterFinished"] = res.ttl_seconds_after_finished
    job_labels = dict(labels)
    queue = queue_name(run)
    if queue:  # Kueue admits the Job by unsuspending it
        job_labels[KUEUE_QUEUE_LABEL] = queue
        job_spec["suspend"] = True
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": task.name, "labels": job_labels, "ownerReferences": [owner]},
        "spec": job_spec,
    }


def claim_manifest(run: EnvGenRun, owner: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint claim created for a run that references none."""
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": run.spec.checkpoints.size}},
    }
    if run.spec.checkpoints.storage_class_name:
        spec["storageClassName"] = run.spec.checkpoints.storage_class_name
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": claim_name(run),
            "labels": {LABEL_RUN: run.name, LABEL_MANAGED_BY: MANAGER},
            "ownerReferences": [owner],
        },
        "spec": spec,
    }


def owner_reference(body: dict[str, Any]) -> dict[str, Any]:
    """A controller owner reference to the run (garbage collection deletes children with it)."""
    return {
        "apiVersion": body["apiVersion"],
        "kind": body["kind"],
        "name": body["metadata"]["name"],
        "uid": body["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
