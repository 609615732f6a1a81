"""Task records in EnvGenCycle status: appended once, patched over the version seen, retried after a conflict."""

from __future__ import annotations

from typing import Any

from kubernetes.client.exceptions import ApiException

from ..contracts import Phase
from . import CYCLES_PLURAL
from .children import Children
from .cycles import MAX_TASK_RECORDS, CycleStatus, TaskRecord, cycle_object, cycle_object_name

APPEND_ATTEMPTS = 3  # patches of a task record that another writer's change to its EnvGenCycle may cost


def append_record(
    children: Children, run: str, owner: dict[str, Any], phase: Phase, cycle: int, record: TaskRecord
) -> bool:
    """Add a task record to its EnvGenCycle (created if missing); False when it was already there. Patched over
    the version observed: when another writer came between, read it again and retry."""
    kube = children.kube
    name = cycle_object_name(run, phase, cycle)
    obj = children.cycles().get(name)
    if obj is None:
        body = cycle_object(run, phase, cycle, None, owner)
        obj = kube.create_custom(CYCLES_PLURAL, body) or kube.get_custom(CYCLES_PLURAL, name) or {}
    for attempt in range(1, APPEND_ATTEMPTS + 1):
        status = CycleStatus.model_validate(obj.get("status") or {})
        if any(r.name == record.name for r in status.tasks):
            return False
        tasks = [t.dump() for t in [*status.tasks, record][-MAX_TASK_RECORDS:]]
        metadata = obj.get("metadata") or {}
        try:
            version = kube.patch_custom_status(CYCLES_PLURAL, name, {"tasks": tasks}, metadata.get("resourceVersion"))
        except ApiException as exc:
            if exc.status != 409 or attempt == APPEND_ATTEMPTS:
                raise
            obj = kube.get_custom(CYCLES_PLURAL, name) or {}
            continue
        children.updated_cycle(
            {
                **obj,
                "metadata": {**metadata, "resourceVersion": version},
                "status": {**(obj.get("status") or {}), "tasks": tasks},
            }
        )
        return True
    return False
