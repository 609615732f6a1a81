"""Fixtures of the Kubernetes tests: a cluster (kmock in-process, or ENVGEN_TEST_KUBECONFIG), the operator."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import kubernetes.config.kube_config as kube_config
import pytest
import yaml
from kmock._internal.apps import Server
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from envgen.k8s.crd import cycle_crd, run_crd

from .harness import Cluster, JobPlayer, OperatorProcess, call, job_mode
from .kmock_plus import Emulator

REAL_KUBECONFIG = os.environ.get("ENVGEN_TEST_KUBECONFIG")


def _kubeconfig(url: str, path: Path) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "k", "cluster": {"server": url}}],
        "users": [{"name": "k", "user": {"token": "t"}}],
        "contexts": [{"name": "k", "context": {"cluster": "k", "user": "k"}}],
        "current-context": "k",
    }))
    return path


@pytest.fixture
async def kmock_url(tmp_path: Path) -> AsyncIterator[str | None]:
    """The URL of an in-process kmock (None when the tests run against a real cluster)."""
    if REAL_KUBECONFIG:
        yield None
        return
    async with Emulator() as emulator, Server(emulator):
        emulator.resources.load_bundled()
        yield str(emulator.url)


@pytest.fixture
async def cluster(kmock_url: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Cluster]:
    """A fresh namespace with the CRDs installed; everything the test created is deleted afterwards."""
    kubeconfig = Path(REAL_KUBECONFIG) if REAL_KUBECONFIG else _kubeconfig(kmock_url or "", tmp_path / "kubeconfig")
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))  # Kopf logs in with it
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    api = config.new_client_from_config(config_file=str(kubeconfig))
    real = REAL_KUBECONFIG is not None
    namespace = f"envgen-test-{secrets.token_hex(3)}"
    c = Cluster(api=api, namespace=namespace, kubeconfig=kubeconfig, job_mode=await call(job_mode, api, real),
                real=real)
    ext = client.ApiextensionsV1Api(api)
    for crd in (run_crd(), cycle_crd()):
        try:
            await call(ext.create_custom_resource_definition, crd)
            c.created.append(("crd", crd["metadata"]["name"]))
        except ApiException as exc:
            if exc.status != 409:
                raise
    await call(c.core.create_namespace, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    try:
        yield c
    finally:
        if real:
            await call(c.core.delete_namespace, namespace)
            for kind, name in c.created:
                if kind == "crd":
                    await call(ext.delete_custom_resource_definition, name)
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
