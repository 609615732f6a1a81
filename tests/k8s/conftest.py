"""Fixtures of the Kubernetes tests: a cluster (kmock in-process, or a real API server), the operator.

``cluster`` is kmock unless ``ENVGEN_TEST_KUBECONFIG`` names a real cluster; ``real_cluster`` is always a real
API server (see ``control_plane``) and skips without one. Each test gets a fresh ``envgen-test-*`` namespace;
on a real server its runs lose their finalizers and the namespace is deleted, and the session waits until
every namespace it made is gone, so nothing is left behind or stuck Terminating.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import kubernetes.config.kube_config as kube_config
import pytest
from kmock._internal.apps import Server
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from envgen.experiment.model import PLURAL as EXPERIMENTS_PLURAL
from envgen.k8s import API_GROUP, API_VERSION, CYCLES_PLURAL, RUNS_PLURAL
from envgen.k8s.crd import all_crds

from . import control_plane
from .harness import Cluster, JobPlayer, OperatorProcess, call, job_mode
from .kmock_plus import Emulator

EVERYWHERE = os.environ.get("ENVGEN_TEST_KUBECONFIG")  # every cluster test on this cluster, not kmock
NAMESPACE_PREFIX = "envgen-test-"


@dataclass
class RealServer:
    """A real API server for the session, with the current CRDs installed."""

    kubeconfig: Path
    api: client.ApiClient
    namespaces: list[str] = field(default_factory=list)


def install_crds(api: client.ApiClient) -> list[str]:
    """Server-side apply every CRD (as ``helm install`` and the README's ``kubectl apply --server-side`` do) and
    wait until they are served; the names that did not exist before."""
    ext = client.ApiextensionsV1Api(api)
    existing = {c.metadata.name for c in ext.list_custom_resource_definition().items}
    created = []
    for crd in all_crds():
        name = crd["metadata"]["name"]
        ext.patch_custom_resource_definition(
            name, crd, field_manager="envgen-tests", force=True, _content_type="application/apply-patch+yaml"
        )
        if name not in existing:
            created.append(name)
    deadline = time.monotonic() + 60
    for crd in all_crds():
        while True:
            conds = ext.read_custom_resource_definition(crd["metadata"]["name"]).status.conditions or []
            if any(c.type == "Established" and c.status == "True" for c in conds):
                break
            assert time.monotonic() < deadline, f"{crd['metadata']['name']} not Established"
            time.sleep(0.2)
    custom = client.CustomObjectsApi(api)
    for plural in (
        RUNS_PLURAL,
        CYCLES_PLURAL,
        EXPERIMENTS_PLURAL,
    ):  # served once the new storage answers (429 while initializing)
        while True:
            try:
                custom.list_cluster_custom_object(API_GROUP, API_VERSION, plural, limit=1)
                break
            except ApiException as exc:
                assert exc.status == 429 and time.monotonic() < deadline, exc
                time.sleep(0.2)
    return created


@pytest.fixture(scope="session")
def real_server() -> Iterator[RealServer]:
    """The session's real API server (given, or the shared control plane started for it); skips without one."""
    given = control_plane.given_kubeconfig()
    if not control_plane.available():
        pytest.skip("no real API server: set ENVGEN_TEST_REAL_KUBECONFIG or provide ../shared/k8s")
    with _server_kubeconfig(given) as kubeconfig:
        api = config.new_client_from_config(config_file=str(kubeconfig))
        server = RealServer(kubeconfig=kubeconfig, api=api)
        with _crd_holders(kubeconfig) as holders:
            holders.created(install_crds(api))
        try:
            yield server
        finally:
            left = _wait_namespaces_gone(api, server.namespaces)
            with _crd_holders(kubeconfig) as holders:
                if holders.release() and given is not None:
                    ext = client.ApiextensionsV1Api(api)
                    for name in holders.installed:
                        ext.delete_custom_resource_definition(name)
            api.close()
            assert not left, f"namespaces left behind (stuck Terminating?): {left}"


@dataclass
class _CRDHolders:
    """The test sessions (xdist workers) using one cluster's CRDs, and the CRDs the tests installed there."""

    count: int = 0
    installed: list[str] = field(default_factory=list)

    def created(self, names: list[str]) -> None:
        self.count += 1
        self.installed = sorted({*self.installed, *names})

    def release(self) -> bool:
        """One holder fewer; True for the last, which removes what the tests installed."""
        self.count -= 1
        return self.count == 0


@contextmanager
def _crd_holders(kubeconfig: Path) -> Iterator[_CRDHolders]:
    """The holders' record of a cluster, read and written under a file lock: parallel sessions on one cluster
    must not delete the CRDs while another still runs tests."""
    path = Path(tempfile.gettempdir()) / f"envgen-test-crds-{hashlib.sha256(str(kubeconfig).encode()).hexdigest()[:12]}"
    with open(f"{path}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        holders = _CRDHolders(**json.loads(path.read_text())) if path.exists() else _CRDHolders()
        yield holders
        if holders.count > 0:
            path.write_text(json.dumps(asdict(holders)))
        else:
            path.unlink(missing_ok=True)


def _server_kubeconfig(given: Path | None) -> AbstractContextManager[Path]:
    return nullcontext(given) if given is not None else control_plane.started()


def _wait_namespaces_gone(api: client.ApiClient, names: list[str], timeout: float = 120.0) -> list[str]:
    core = client.CoreV1Api(api)
    deadline = time.monotonic() + timeout
    while True:
        left = [n.metadata.name for n in core.list_namespace().items if n.metadata.name in names]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.5)


def strip_and_delete(api: client.ApiClient, namespace: str) -> None:
    """Release every run's finalizer (the operator may be gone) and delete the namespace."""
    custom = client.CustomObjectsApi(api)
    for run in custom.list_namespaced_custom_object(API_GROUP, API_VERSION, namespace, RUNS_PLURAL)["items"]:
        if run["metadata"].get("finalizers"):
            try:
                custom.patch_namespaced_custom_object(
                    API_GROUP,
                    API_VERSION,
                    namespace,
                    RUNS_PLURAL,
                    run["metadata"]["name"],
                    {"metadata": {"finalizers": None}},
                )
            except ApiException as exc:
                if exc.status != 404:
                    raise
    client.CoreV1Api(api).delete_namespace(namespace)


@asynccontextmanager
async def _namespace(
    api: client.ApiClient, kubeconfig: Path, real: bool, server: RealServer | None, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Cluster]:
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))  # Kopf logs in with it
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    namespace = f"{NAMESPACE_PREFIX}{secrets.token_hex(3)}"
    c = Cluster(
        api=api, namespace=namespace, kubeconfig=kubeconfig, job_mode=await call(job_mode, api, real), real=real
    )
    if not real:
        ext = client.ApiextensionsV1Api(api)
        for crd in all_crds():
            await call(ext.create_custom_resource_definition, crd)
    await call(c.core.create_namespace, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    if server is not None:
        server.namespaces.append(namespace)
    try:
        yield c
    finally:
        if real:
            await call(strip_and_delete, api, namespace)


@pytest.fixture
async def kmock_url() -> AsyncIterator[str | None]:
    """The URL of a fresh in-process kmock (None when every test runs on ENVGEN_TEST_KUBECONFIG's cluster)."""
    if EVERYWHERE is not None:
        yield None
        return
    async with Emulator() as emulator, Server(emulator):
        emulator.resources.load_bundled()
        yield str(emulator.url)


@pytest.fixture
async def real_cluster(real_server: RealServer, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Cluster]:
    """A fresh namespace on the real API server."""
    async with _namespace(real_server.api, real_server.kubeconfig, True, real_server, monkeypatch) as c:
        yield c


@pytest.fixture
async def cluster(
    kmock_url: str | None, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Cluster]:
    """A fresh namespace with the CRDs installed: on kmock, or on ENVGEN_TEST_KUBECONFIG's cluster."""
    if kmock_url is None:
        server: RealServer = request.getfixturevalue("real_server")
        async with _namespace(server.api, server.kubeconfig, True, server, monkeypatch) as c:
            yield c
        return
    kubeconfig = control_plane.write_kubeconfig(kmock_url, tmp_path / "kubeconfig")
    api = config.new_client_from_config(config_file=str(kubeconfig))
    try:
        async with _namespace(api, kubeconfig, False, None, monkeypatch) as c:
            yield c
    finally:
        api.close()


@pytest.fixture
async def operator(cluster: Cluster) -> AsyncIterator[OperatorProcess]:
    """The operator running in-process against the test namespace."""
    op = OperatorProcess(cluster)
    await op.start()
    try:
        yield op
    finally:
        await op.stop()


@pytest.fixture
def player(cluster: Cluster) -> JobPlayer:
    """The test's stand-in for the job controller and kubelet."""
    if cluster.job_mode == "real":
        pytest.skip("this test scripts Job outcomes; the cluster runs real Jobs (ENVGEN_TEST_JOB_CONTROLLER=real)")
    return JobPlayer(cluster)
