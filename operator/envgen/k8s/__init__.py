"""EnvGen on Kubernetes: the EnvGenRun/EnvGenCycle CRDs, the Kopf operator, training Jobs and metrics."""

from .. import API_GROUP, API_VERSION

RUNS_PLURAL = "envgenruns"
CYCLES_PLURAL = "envgencycles"
CATEGORY = "envgen"

# Labels on every child object (Jobs, their Pods, EnvGenCycles, the checkpoint claim).
LABEL_RUN = f"{API_GROUP}/run"
LABEL_TASK = f"{API_GROUP}/task"
LABEL_PHASE = f"{API_GROUP}/phase"
LABEL_CYCLE = f"{API_GROUP}/cycle"
LABEL_SEED = f"{API_GROUP}/seed"
LABEL_ATTEMPT = f"{API_GROUP}/attempt"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "envgen-operator"

# The task JSON travels in a pod-template annotation and reaches the trainer through a downward-API volume.
TASK_ANNOTATION = f"{API_GROUP}/task"
FINALIZER = f"{API_GROUP}/cleanup"

__all__ = [
    "API_GROUP",
    "API_VERSION",
    "CATEGORY",
    "CYCLES_PLURAL",
    "FINALIZER",
    "LABEL_ATTEMPT",
    "LABEL_CYCLE",
    "LABEL_MANAGED_BY",
    "LABEL_PHASE",
    "LABEL_RUN",
    "LABEL_SEED",
    "LABEL_TASK",
    "MANAGER",
    "RUNS_PLURAL",
    "TASK_ANNOTATION",
]
