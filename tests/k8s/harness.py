"""Cluster-agnostic e2e harness: kmock in-process by default, a real cluster when ENVGEN_TEST_KUBECONFIG is set.

Every API call goes through the official client in a worker thread, so the same code drives kmock (served on
the test's own event loop) and a real apiserver. Where no job controller or kubelet acts on Jobs, the test
plays them (``JobPlayer``):

* ``fake``: no controllers at all (kmock): the test creates the Pod and sets the Job's status;
* ``kubelet``: a real apiserver with kube-controller-manager but no kubelet: the test finishes the Pod that
  the job controller created, and the job controller completes the Job;
* ``real``: a cluster with nodes: nobody is played (tests that need scripted outcomes are skipped).

``ENVGEN_TEST_JOB_CONTROLLER`` overrides the detection.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import kopf
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from spec.corpus import Case

from envgen.contracts import SkillStat, TrainingMetrics, TrainingTask
from envgen.k8s import API_GROUP, API_VERSION, CYCLES_PLURAL, LABEL_RUN, RUNS_PLURAL, TASK_ANNOTATION
from envgen.k8s.jobs import CONTAINER, WORKSPACE
from envgen.k8s.operator import OperatorConfig, make_registry, make_settings

JobMode = Literal["fake", "kubelet", "real"]
# Namespace labels under which Pod Security Admission enforces the ``restricted`` profile.
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}
JOB_FAILED = "<job failed>"
# Metadata the API server validates itself: refused, but its messages do not use our dotted path.
SERVER_WORDED = ("metadata.namespace", "metadata.labels")
T = TypeVar("T")


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A blocking client call, off the event loop (kmock serves on this very loop)."""
    return await asyncio.to_thread(fn, *args, **kwargs)


async def eventually(check: Callable[[], Awaitable[T | None]], timeout: float = 20.0, what: str = "") -> T:
    """Poll an async check until it returns something truthy."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or check}: last={last!r}")


@dataclass
class Cluster:
    """One test namespace on kmock or a real cluster."""

    api: client.ApiClient
    namespace: str
    kubeconfig: Path
    job_mode: JobMode
    real: bool
    created: list[tuple[str, str]] = field(default_factory=list)

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    @property
    def batch(self) -> client.BatchV1Api:
        return client.BatchV1Api(self.api)

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    async def create(self, plural: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create a custom object of ours as a strict client does (unknown fields are errors)."""
        return await call(
            self.custom.create_namespaced_custom_object,
            API_GROUP,
            API_VERSION,
            self.namespace,
            plural,
            body,
            field_validation="Strict",
        )

    # ---- runs and cycles ----
    async def create_run(self, name: str, spec: dict[str, Any], labels: dict[str, str] | None = None) -> dict[str, Any]:
        body = {
            "apiVersion": f"{API_GROUP}/{API_VERSION}",
            "kind": "EnvGenRun",
            "metadata": {"name": name, "labels": labels or {}},
            "spec": spec,
        }
        return await call(
            self.custom.create_namespaced_custom_object, API_GROUP, API_VERSION, self.namespace, RUNS_PLURAL, body
        )

    async def get(self, plural: str, name: str) -> dict[str, Any] | None:
        """A custom object of ours, or None when there is none."""
        try:
            return await call(
                self.custom.get_namespaced_custom_object, API_GROUP, API_VERSION, self.namespace, plural, name
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def run(self, name: str) -> dict[str, Any] | None:
        return await self.get(RUNS_PLURAL, name)

    async def patch_run(self, name: str, patch: dict[str, Any]) -> None:
        await call(
            self.custom.patch_namespaced_custom_object, API_GROUP, API_VERSION, self.namespace, RUNS_PLURAL, name, patch
        )

    async def delete_run(self, name: str) -> None:
        await call(
            self.custom.delete_namespaced_custom_object, API_GROUP, API_VERSION, self.namespace, RUNS_PLURAL, name
        )

    async def cycles(self, run: str) -> dict[str, dict[str, Any]]:
        items = (
            await call(self.custom.list_namespaced_custom_object, API_GROUP, API_VERSION, self.namespace, CYCLES_PLURAL)
        )["items"]
        return {i["metadata"]["name"]: i for i in items if i["metadata"].get("labels", {}).get(LABEL_RUN) == run}

    async def condition(self, run: str, ctype: str) -> dict[str, Any] | None:
        body = await self.run(run)
        conds = ((body or {}).get("status") or {}).get("conditions") or []
        return next((c for c in conds if c["type"] == ctype), None)

    async def wait_condition(self, run: str, ctype: str, status: str = "True", timeout: float = 30.0) -> dict:
        async def check() -> dict[str, Any] | None:
            cond = await self.condition(run, ctype)
            return cond if cond and cond["status"] == status else None

        return await eventually(check, timeout, f"{run} {ctype}={status}")

    # ---- jobs, pods, events ----
    async def jobs(self, run: str) -> dict[str, dict[str, Any]]:
        items = (await call(self.batch.list_namespaced_job, self.namespace)).items
        return {
            j.metadata.name: self.api.sanitize_for_serialization(j)
            for j in items
            if (j.metadata.labels or {}).get(LABEL_RUN) == run
        }

    async def wait_jobs(self, run: str, names: set[str], timeout: float = 20.0) -> dict[str, dict[str, Any]]:
        async def check() -> dict[str, dict[str, Any]] | None:
            jobs = await self.jobs(run)
            return jobs if names <= set(jobs) else None

        return await eventually(check, timeout, f"jobs {sorted(names)}")

    async def events(self, name: str) -> list[dict[str, Any]]:
        items = (await call(self.core.list_namespaced_event, self.namespace)).items
        return [
            {"reason": e.reason, "type": e.type, "message": e.message}
            for e in items
            if e.involved_object and e.involved_object.name == name
        ]


class JobPlayer:
    """Plays the job controller (and kubelet) for a Job: finishes it with an exit code and a message."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def task(self, job: dict[str, Any]) -> TrainingTask:
        """The task a Job runs (from its pod template annotation)."""
        return TrainingTask.model_validate_json(job["spec"]["template"]["metadata"]["annotations"][TASK_ANNOTATION])

    async def finish(self, job: dict[str, Any], exit_code: int = 0, message: str | None = None) -> int:
        """End the Job's Pod(s) with an exit code; the number of Pods ended.

        Under a job controller a failing Pod is retried (``backoffLimit``, after its backoff): each new Pod
        fails the same way until the Job itself has failed.
        """
        if self.cluster.job_mode == "real":
            raise RuntimeError("a real job controller and kubelet run this cluster's Jobs")
        c, name, ns = self.cluster, job["metadata"]["name"], self.cluster.namespace
        terminated: dict[str, Any] = {
            "exitCode": exit_code,
            "reason": "Completed" if exit_code == 0 else "Error",
            "startedAt": _now(),
            "finishedAt": _now(),
        }
        if message is not None:
            terminated["message"] = message
        pod_status = {
            "phase": "Succeeded" if exit_code == 0 else "Failed",
            "containerStatuses": [_trainer_ended(terminated)],
        }
        if c.job_mode == "kubelet":
            ended = 0
            while True:
                pod = await eventually(lambda: self._live_pod_or_failed(name), 60, f"a pod of {name}")
                if pod is JOB_FAILED:
                    return ended
                await call(c.core.patch_namespaced_pod_status, pod, ns, {"status": pod_status})
                ended += 1
                if exit_code == 0:
                    return ended
        template = job["spec"]["template"]
        labels = {**template["metadata"]["labels"], "job-name": name, "batch.kubernetes.io/job-name": name}
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"{name}-{secrets.token_hex(3)}", "labels": labels, "creationTimestamp": _now()},
            "spec": {"restartPolicy": "Never", "containers": [{"name": CONTAINER, "image": "trainer"}]},
            "status": pod_status,
        }
        await call(c.core.create_namespaced_pod, ns, pod)
        ctype = "Complete" if exit_code == 0 else "Failed"
        reason = "Completed" if exit_code == 0 else "BackoffLimitExceeded"
        status = {
            "conditions": [{"type": ctype, "status": "True", "reason": reason, "message": reason}],
            "succeeded" if exit_code == 0 else "failed": 1,
        }
        await call(c.batch.patch_namespaced_job_status, name, ns, {"status": status})
        return 1

    async def evict(self, job: dict[str, Any]) -> dict[str, Any]:
        """Play a kubelet whose node is preempted: the Job's live Pod fails with a ``DisruptionTarget`` condition
        (as an eviction or preemption leaves it), its trainer killed. The Pod as it was, before the eviction."""
        c, pod_name = self.cluster, await self._live_pod(job, "be evicted")
        pod = c.api.sanitize_for_serialization(await call(c.core.read_namespaced_pod, pod_name, c.namespace))
        disrupted = {
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "PreemptionByScheduler",
            "message": "preempted by a higher-priority Pod",
            "lastTransitionTime": _now(),
        }
        killed = {"exitCode": 137, "reason": "Error", "startedAt": _now(), "finishedAt": _now()}
        status = {
            "phase": "Failed",
            "conditions": [disrupted],
            "containerStatuses": [_trainer_ended(killed)],
        }
        await call(c.core.patch_namespaced_pod_status, pod_name, c.namespace, {"status": status})
        return dict(pod)

    async def unschedulable(self, job: dict[str, Any], message: str) -> None:
        """Play a scheduler that finds no node for the Job's live Pod: it stays Pending with PodScheduled False,
        reason Unschedulable, and the scheduler's ``message``."""
        c, pod_name = self.cluster, await self._live_pod(job, "wait for a node")
        unscheduled = {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
            "lastTransitionTime": _now(),
        }
        status = {"phase": "Pending", "conditions": [unscheduled]}
        await call(c.core.patch_namespaced_pod_status, pod_name, c.namespace, {"status": status})

    async def succeed(
        self, job: dict[str, Any], score: float = 10.0, train_score: float | None = None
    ) -> TrainingMetrics:
        """Finish a Job with metrics made from the model (operator behaviour is under test, not training)."""
        task = self.task(job)
        metrics = TrainingMetrics.for_task(
            task,
            steps=task.designed_env_steps + task.game_steps,
            score=score,
            train_score=train_score,
            success={"collect_wood": SkillStat(mean=80.0), "place_table": SkillStat(mean=20.0)},
            eval_episodes=task.eval_episodes,
        )
        await self.finish(job, 0, metrics.compact())
        return metrics

    async def train(self, job: dict[str, Any], workdir: Path) -> int:
        """Run the real trainer CLI on the Job's task (paths under the workspace mapped into ``workdir``)."""
        task = self.task(job)
        doc = json.loads(task.model_dump_json(by_alias=True))
        for key in ("checkpointIn", "checkpointOut", "outputDir"):
            if doc.get(key):
                doc[key] = doc[key].replace(WORKSPACE, str(workdir), 1)
        task_file = workdir / f"{task.name}.json"
        log_file = workdir / f"{task.name}.termination-log"
        task_file.write_text(json.dumps(doc))
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "envgen_trainer",
            "--task",
            str(task_file),
            "--termination-log",
            str(log_file),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await proc.communicate()
        code = proc.returncode or 0
        message = log_file.read_text() if log_file.exists() else None
        assert code == 0, f"trainer failed ({code}): {output.decode()[-2000:]}"
        await self.finish(job, code, message)
        return code

    async def _live_pod(self, job: dict[str, Any], what: str) -> str:
        """The name of the Job's live Pod, for a test that plays what happens to it (only under a real job
        controller without a kubelet)."""
        if self.cluster.job_mode != "kubelet":
            raise RuntimeError(f"a Pod is made to {what} only under a real job controller without a kubelet")
        name = job["metadata"]["name"]
        pod_name = await eventually(lambda: self._live_pod_or_failed(name), 60, f"a pod of {name}")
        assert pod_name != JOB_FAILED, f"{name} failed before its Pod could {what}"
        return str(pod_name)

    async def _live_pod_or_failed(self, job: str) -> str | None:
        """A Pod of the Job that has not ended yet, JOB_FAILED once the Job failed, else None."""
        c = self.cluster
        pods = await call(c.core.list_namespaced_pod, c.namespace, label_selector=f"job-name={job}")
        live = [
            p for p in pods.items if p.status.phase not in ("Succeeded", "Failed") and not p.metadata.deletion_timestamp
        ]
        if live:
            return str(live[0].metadata.name)
        status = (await call(c.batch.read_namespaced_job, job, c.namespace)).status
        if any(cond.type == "Failed" and cond.status == "True" for cond in status.conditions or []):
            return JOB_FAILED
        return None


class OperatorProcess:
    """The operator in-process, on its own event loop in a thread; restartable at any moment.

    Its own loop keeps Kopf's shutdown (which cancels every task it did not start) away from the test's
    tasks and from kmock, which serves on the test's loop.
    """

    def __init__(self, cluster: Cluster, api: client.ApiClient | None = None, interval_seconds: float = 0.2) -> None:
        self.cluster = cluster
        self.api = api or cluster.api  # the identity of the operator's own API calls (Kopf watches as the cluster)
        self.interval_seconds = interval_seconds
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._error: BaseException | None = None

    async def start(self) -> None:
        cfg = OperatorConfig(
            api=self.api,
            interval_seconds=self.interval_seconds,
            retry_delay_seconds=0.5,
            watch_server_timeout_seconds=5,
            namespaced=True,
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, args=(cfg, self._stop), daemon=True)
        self._thread.start()

    def registry(self, cfg: OperatorConfig) -> kopf.OperatorRegistry:
        """The handlers this operator runs (all of the operator's; a subclass may run fewer)."""
        return make_registry(cfg)

    def _main(self, cfg: OperatorConfig, stop: threading.Event) -> None:
        try:
            asyncio.run(
                kopf.operator(
                    registry=self.registry(cfg),
                    settings=make_settings(cfg),
                    standalone=True,
                    namespaces=[self.cluster.namespace],
                    stop_flag=stop,
                )
            )
        except BaseException as exc:
            self._error = exc

    async def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        await asyncio.to_thread(self._thread.join, 30)
        assert not self._thread.is_alive(), "the operator did not stop"
        self._thread = None
        self.check()

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    def check(self) -> None:
        """Fail when the operator died."""
        if self._error is not None:
            raise self._error


async def refusals(cluster: Cluster, plural: str, cases: list[Case]) -> tuple[list[str], list[tuple[str, ...]]]:
    """Create each invalid case's manifest: the cases accepted, and the refusals whose message does not name the
    case's field (its last segment; list indexes, and metadata the API server words itself, aside)."""
    accepted: list[str] = []
    unnamed: list[tuple[str, ...]] = []
    for case in cases:
        body = case.manifest()
        body.setdefault("metadata", {}).setdefault("namespace", cluster.namespace)
        try:
            await cluster.create(plural, body)
        except ApiException as refused:
            said = json.loads(refused.body).get("message", "") if refused.body else str(refused)
            assert refused.status in (400, 422), (case.name, refused.status, said)
            last = (case.field or "").split(".")[-1]
            if case.field and not case.field.startswith(SERVER_WORDED) and not last.isdigit() and last not in said:
                unnamed.append((case.name, case.field, said))
        else:
            accepted.append(case.name)
    return accepted, unnamed


def _trainer_ended(terminated: dict[str, Any]) -> dict[str, Any]:
    """The trainer container's status once it has ended (``terminated``: its exit code, reason and times)."""
    return {
        "name": CONTAINER,
        "image": "trainer",
        "imageID": "sim://trainer",
        "ready": False,
        "restartCount": 0,
        "state": {"terminated": terminated},
    }


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def job_mode(api: client.ApiClient, real: bool) -> JobMode:
    """Which controllers the test must play (see the module docstring)."""
    forced = os.environ.get("ENVGEN_TEST_JOB_CONTROLLER")
    if forced in ("fake", "kubelet", "real"):
        return forced  # type: ignore[return-value]
    if not real:
        return "fake"
    nodes = client.CoreV1Api(api).list_node().items
    ready = [n for n in nodes if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])]
    return "real" if ready else "kubelet"
