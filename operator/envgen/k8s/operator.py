"""The Kopf operator: thin, level-based handlers over ``reconcile``, its settings, and the entry point.

One timer per EnvGenRun recomputes everything from the API each tick (a run that waits on its Jobs, as the last
reconcile left it, at most once a ``resync_seconds``), and a training Job that finishes reconciles its run at once
(the next Job follows in well under a second). The blocking work (API calls, the
LLM) runs in a worker thread, never on the event loop. Transient failures become ``TemporaryError`` retries
with a delay; an invalid spec is a permanent ``Failed`` condition with reason ``InvalidSpec``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import kopf
from kubernetes import client, config

from ..experiment import cluster as experiments
from . import API_GROUP, API_VERSION, FINALIZER, LABEL_RUN, RUNS_PLURAL
from . import metrics as prom
from .children import job_finished
from .designing import DesignerSessions
from .jobs import default_pod_security
from .kube import PARALLEL_REQUESTS, RunGone, transient
from .reconcile import Guards, cleanup, reconcile

log = logging.getLogger(__name__)
INTERVAL_ENV = "ENVGEN_RECONCILE_INTERVAL_SECONDS"


@dataclass(frozen=True)
class OperatorConfig:
    """How the operator talks to the API and how often it reconciles."""

    api: client.ApiClient
    interval_seconds: float = 10.0
    resync_seconds: float = 60.0  # the longest a timer skips a quiet run (see ``RunGuard.is_quiet``)
    retry_delay_seconds: float = 30.0
    watch_server_timeout_seconds: int = 300
    namespaced: bool = False  # only named namespaces (a Role each): no cluster-wide namespace or CRD watches
    workers: int = 32  # threads for timer reconciles (each blocks on API calls or the LLM)
    event_workers: int = 8  # threads for reconciles after a Job finished: never queued behind the timers
    guards: Guards = field(default_factory=Guards)
    sessions: DesignerSessions = field(default_factory=DesignerSessions)  # one designer session per run


def make_settings(cfg: OperatorConfig) -> kopf.OperatorSettings:
    """Kopf settings: our own annotation prefix and finalizer, explicit watch and request timeouts."""
    settings = kopf.OperatorSettings()
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=API_GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=API_GROUP)
    settings.persistence.finalizer = FINALIZER
    settings.watching.server_timeout = cfg.watch_server_timeout_seconds
    settings.watching.client_timeout = cfg.watch_server_timeout_seconds + 30
    settings.watching.connect_timeout = 30
    settings.watching.inactivity_timeout = 120
    settings.networking.request_timeout = 60
    settings.networking.connect_timeout = 30
    settings.execution.default_backoff = cfg.retry_delay_seconds
    settings.posting.level = logging.WARNING  # transitions post their own Events; no event per timer tick
    # Kopf otherwise lists and watches namespaces and CRDs cluster-wide, which a Role forbids (retried, logged).
    settings.scanning.disabled = cfg.namespaced
    # A run deleted while its timer is mid-reconcile: Kopf looks again for the timer's exit after this many seconds
    # before it releases the finalizer (its default, 60 s, held deleted runs for a minute).
    settings.background.cancellation_polling = 2.0
    return settings


def make_registry(cfg: OperatorConfig) -> kopf.OperatorRegistry:
    """The operator's handlers, bound to a configuration."""
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        """The same credentials as the Kubernetes client (service account, else kubeconfig)."""
        return kopf.login_via_client(**kwargs)

    @kopf.on.startup(registry=registry)
    async def size_workers(**_: Any) -> None:
        """Enough worker threads that runs waiting on a slow LLM do not hold up the others."""
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(cfg.workers, "envgen-reconcile"))

    events = ThreadPoolExecutor(cfg.event_workers, "envgen-job-event")

    @kopf.timer(API_GROUP, API_VERSION, RUNS_PLURAL, id="reconcile", interval=cfg.interval_seconds, registry=registry)
    async def reconcile_run(namespace: str | None, name: str, meta: kopf.Meta, **_: Any) -> None:
        """Observe, decide, act: create what is missing, record what finished, publish status (nothing while the
        run waits on its Jobs and is as the last reconcile left it)."""
        assert namespace is not None  # EnvGenRun is namespaced
        version = meta.get("resourceVersion")
        try:
            retry = await asyncio.to_thread(
                reconcile,
                cfg.api,
                namespace,
                name,
                cfg.guards,
                cfg.sessions,
                version=version,
                resync=cfg.resync_seconds,
            )
        except RunGone:
            return
        except Exception as exc:
            if transient(exc):
                raise kopf.TemporaryError(f"transient API failure: {exc}", delay=cfg.retry_delay_seconds) from exc
            raise
        if retry:
            raise kopf.TemporaryError(f"{retry}; retrying later", delay=cfg.retry_delay_seconds)

    waiting: set[tuple[str, str]] = set()

    @kopf.on.event("batch", "v1", "jobs", labels={LABEL_RUN: kopf.PRESENT}, when=job_event_matters, registry=registry)
    async def job_finished_event(
        namespace: str | None, labels: kopf.Labels, uid: str | None, status: kopf.Status, **_: Any
    ) -> None:
        """A training Job finished: reconcile its run now, not at the next timer tick (the timer stays the safety
        net). Jobs that finish together, or while a reconcile is in flight, cost one more reconcile, not one each;
        a Job's later events (status updates, its deletion) none once its finish was reconciled. A running Job
        deleted makes its run's next timer tick reconcile."""
        assert namespace is not None
        key = (namespace, str(labels[LABEL_RUN]))
        guard = cfg.guards.get(*key)
        if uid in guard.finished_jobs:
            return
        if not job_finished(status):
            guard.changes += 1
            return
        if key in waiting:
            return
        waiting.add(key)
        try:
            while guard.lock.locked():  # wait here, not in a worker thread, for the reconcile in flight
                await asyncio.sleep(0.05)
        finally:
            waiting.discard(key)
        try:
            await asyncio.get_running_loop().run_in_executor(
                events, partial(reconcile, cfg.api, *key, cfg.guards, cfg.sessions, finished_job=uid)
            )
        except RunGone:
            pass
        except Exception as exc:  # the timer retries with backoff
            log.info("reconcile of %s/%s after a Job finished: %s", *key, exc)

    @kopf.on.delete(
        API_GROUP, API_VERSION, RUNS_PLURAL, id="cleanup", registry=registry, errors=kopf.ErrorsMode.IGNORED
    )
    async def cleanup_run(namespace: str | None, name: str, **_: Any) -> None:
        """Delete the run's children (best effort: the finalizer is always released)."""
        assert namespace is not None
        await asyncio.to_thread(cleanup, cfg.api, namespace, name, cfg.guards, cfg.sessions)

    experiments.register(registry, cfg.api)  # EnvGenExperiment: one run per arm, the comparison in its status

    @kopf.on.cleanup(registry=registry)
    async def close_sessions(**_: Any) -> None:
        """Close every run's designer session (its LLM client) when the operator stops."""
        await asyncio.to_thread(cfg.sessions.close_all)
        events.shutdown(wait=False)

    return registry


def job_event_matters(status: kopf.Status, type: str | None, **_: Any) -> bool:
    """Whether a Job event may change its run's next decision: the Job finished, or it was deleted."""
    return job_finished(status) or type == "DELETED"


def make_api_client(
    connections: int = OperatorConfig.workers + OperatorConfig.event_workers + PARALLEL_REQUESTS,
) -> client.ApiClient:
    """An API client from the in-cluster service account, else from the kubeconfig, that keeps a connection per
    reconcile thread and parallel request (its default, 5 per core, makes the threads past it connect anew for
    every request)."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except config.ConfigException:
        config.load_kube_config(client_configuration=configuration)
    configuration.connection_pool_maxsize = connections
    return client.ApiClient(configuration)


def run(namespaces: list[str], metrics_port: int, liveness_port: int | None) -> None:
    """Run the operator until interrupted: in the given namespaces, or in all of them when the list is empty."""
    root = logging.getLogger()
    root.handlers[:] = []  # Kopf installs the one handler the operator logs through (no line printed twice)
    kopf.configure(verbose=root.level == logging.DEBUG)
    default_pod_security()  # a bad chart value stops the operator here, naming the variable
    prom.serve(metrics_port)
    cfg = OperatorConfig(
        api=make_api_client(),
        interval_seconds=float(os.environ.get(INTERVAL_ENV, "10")),
        namespaced=bool(namespaces),
    )
    kopf.run(
        registry=make_registry(cfg),
        settings=make_settings(cfg),
        standalone=True,
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=f"http://0.0.0.0:{liveness_port}/healthz" if liveness_port else None,
    )
