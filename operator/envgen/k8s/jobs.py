"""Manifests of a run's children: one training Job per task, and the checkpoint PersistentVolumeClaims.

Task paths from the engine are relative to the storage root; here they are placed under the claim's mount
and the run's own directory, so several runs can share one claim. Claims the operator creates are one per seed
(ReadWriteOnce: the seeds' Pods run at once, maybe on different nodes, and only one node can attach such a
volume; a seed's own tasks run one after another) or one for the run (ReadWriteMany). A retried Pod of a task
mounts the same claim and gets the same task, so it finds what the evicted one left.

Training Pods pass Pod Security Admission ``restricted`` and OpenShift's ``restricted-v2``: non-root, no
privilege escalation, every capability dropped, seccomp RuntimeDefault, a read-only root filesystem with
emptyDir volumes for HOME and /tmp. UID, GID and fsGroup are the run's ``resources.podSecurity``, else the
operator's defaults (``ENVGEN_TRAINER_POD_SECURITY``, JSON, from the chart's ``trainer.podSecurity``), else
left to the image and the cluster.
"""

from __future__ import annotations

import os
from typing import Any

from .. import __version__
from ..contracts import EXIT_INVALID_TASK, TrainingTask
from ..spec import EnvGenRun, PodSecuritySpec
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
HOME = "/home/envgen"  # the image's user's home, an emptyDir under the read-only root filesystem
SCRATCH = "/tmp"
POD_SECURITY_ENV = "ENVGEN_TRAINER_POD_SECURITY"
CONTAINER = "trainer"
IMAGE_ENV = "ENVGEN_TRAINER_IMAGE"
FALLBACK_IMAGE = f"envgen-trainer:{__version__}"
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"


def claim_name(run: EnvGenRun, seed: int) -> str:
    """The checkpoint claim a seed's tasks mount: the one the spec references, else the run's shared
    ``<run>-checkpoints`` (ReadWriteMany), else the seed's own ``<run>-checkpoints-s<seed>``."""
    cp = run.spec.checkpoints
    if cp.claim_name:
        return cp.claim_name
    if cp.access_mode == "ReadWriteMany":
        return f"{run.name}-checkpoints"
    return f"{run.name}-checkpoints-s{seed}"


def default_pod_security() -> PodSecuritySpec:
    """The operator's defaults for the training Pods' UID, GID and fsGroup (``ENVGEN_TRAINER_POD_SECURITY``)."""
    raw = os.environ.get(POD_SECURITY_ENV, "").strip()
    if not raw:
        return PodSecuritySpec()
    try:
        return PodSecuritySpec.model_validate_json(raw)
    except ValueError as exc:
        raise ValueError(f'{POD_SECURITY_ENV} is invalid (JSON like {{"fsGroup": 10001}}): {exc}') from None


def pod_security(run: EnvGenRun) -> PodSecuritySpec:
    """The run's ``resources.podSecurity`` over the operator's defaults, field by field."""
    own = run.spec.resources.pod_security
    return default_pod_security().model_copy(update={k: getattr(own, k) for k in own.model_fields_set})


def security_contexts(security: PodSecuritySpec) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Pod's and the trainer container's securityContext (PSA ``restricted``, OpenShift ``restricted-v2``)."""
    pod: dict[str, Any] = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    for field, key in (("run_as_user", "runAsUser"), ("run_as_group", "runAsGroup"), ("fs_group", "fsGroup")):
        value = getattr(security, field)
        if value is not None:
            pod[key] = value
    if security.fs_group is not None:  # chown a large volume only when its root is not the group's yet
        pod["fsGroupChangePolicy"] = "OnRootMismatch"
    container = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    return pod, container


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
    pod_context, container_context = security_contexts(pod_security(run))
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": trainer_image(run),
        "command": ["envgen-train", "--task", f"{TASK_DIR}/task.json"],
        "resources": {"requests": dict(res.requests), **({"limits": dict(res.limits)} if res.limits else {})},
        "env": [
            {"name": "HOME", "value": HOME},
            {"name": "TMPDIR", "value": SCRATCH},
            {"name": "NUMBA_CACHE_DIR", "value": f"{SCRATCH}/numba"},
        ],
        "volumeMounts": [
            {"name": "workspace", "mountPath": WORKSPACE},
            {"name": "task", "mountPath": TASK_DIR, "readOnly": True},
            {"name": "home", "mountPath": HOME},
            {"name": "tmp", "mountPath": SCRATCH},
        ],
        "securityContext": container_context,
        "terminationMessagePath": placed.termination_message_path,
        "terminationMessagePolicy": "File",
    }
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "securityContext": pod_context,
        "containers": [container],
        "volumes": [
            {"name": "workspace", "persistentVolumeClaim": {"claimName": claim_name(run, task.seed)}},
            {"name": "home", "emptyDir": {}},
            {"name": "tmp", "emptyDir": {}},
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


def claim_manifest(run: EnvGenRun, seed: int, owner: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint claim created for a seed's tasks (for the run's, when ReadWriteMany)."""
    cp = run.spec.checkpoints
    spec: dict[str, Any] = {"accessModes": [cp.access_mode], "resources": {"requests": {"storage": cp.size}}}
    if cp.storage_class_name:
        spec["storageClassName"] = cp.storage_class_name
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": claim_name(run, seed),
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
