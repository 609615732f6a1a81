"""The chart on a real API server: ``helm install`` works, and the operator runs on its ServiceAccount alone.

The operator runs as its own process (``python -m envgen operator``) with a token of the chart's ServiceAccount,
so any verb the chart's RBAC lacks fails here. With ``watchNamespaces`` it holds only a Role: it must start
without cluster-wide list attempts and without an error line. With ``OwnerReferencesPermissionEnforcement``
on (the started control plane's setting), a Role lacking ``envgenruns/finalizers`` cannot create children, and
the run says so in a condition and an Event.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from .conftest import RealServer
from .harness import RESTRICTED, Cluster, JobPlayer, OperatorProcess, call, eventually
from .test_operator import small_spec

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "envgen-operator"
TOOLS = Path(os.environ.get("ENVGEN_CACHE", Path.home() / ".cache" / "envgen")) / "k8s-tools"
RELEASE = "envgen"
SA = f"{RELEASE}-envgen-operator"

pytestmark = pytest.mark.real_server


def _tool(name: str) -> str | None:
    return str(TOOLS / name) if (TOOLS / name).exists() else shutil.which(name)


HELM = _tool("helm")
needs_helm = pytest.mark.skipif(HELM is None, reason="helm is absent (scripts/install_k8s_tools.sh installs it)")


@pytest.fixture
def helm(real_cluster: Cluster, tmp_path: Path) -> Callable[..., str]:
    """``helm`` against the test's cluster, with its homes in a temporary folder."""
    home = tmp_path / "helm-home"
    env = {**os.environ, "HELM_CACHE_HOME": str(home), "HELM_CONFIG_HOME": str(home), "HELM_DATA_HOME": str(home)}

    def run(*args: str) -> str:
        assert HELM is not None
        proc = subprocess.run(
            [HELM, "--kubeconfig", str(real_cluster.kubeconfig), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, f"helm {' '.join(args)} failed: {proc.stderr}"
        return proc.stdout

    return run


def token_kubeconfig(server: RealServer, namespace: str, account: str, path: Path) -> Path:
    """A kubeconfig that authenticates as a ServiceAccount (a short-lived token from the TokenRequest API)."""
    core = client.CoreV1Api(server.api)
    token = core.create_namespaced_service_account_token(
        account, namespace, {"spec": {"expirationSeconds": 3600}}
    ).status.token
    admin = yaml.safe_load(server.kubeconfig.read_text())
    cluster = admin["clusters"][0]["cluster"]
    if "certificate-authority" in cluster:  # make a relative CA path absolute
        cluster = {**cluster, "certificate-authority": str(server.kubeconfig.parent / cluster["certificate-authority"])}
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": cluster}],
                "users": [{"name": account, "user": {"token": token}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": account, "namespace": namespace}}],
                "current-context": "c",
            }
        )
    )
    return path


class OperatorCommand:
    """``python -m envgen operator --namespace <ns>`` as its own process, logging to a file."""

    def __init__(self, kubeconfig: Path, namespace: str, log: Path) -> None:
        self.kubeconfig, self.namespace, self.log = kubeconfig, namespace, log
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"}
        env |= {"KUBECONFIG": str(self.kubeconfig), "ENVGEN_RECONCILE_INTERVAL_SECONDS": "0.5"}
        with self.log.open("wb") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "envgen", "operator", "--namespace", self.namespace,
                "--metrics-port", str(port), env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    async def stop(self) -> str:
        """Stop (SIGINT, as Kubernetes' SIGTERM would) and return the log."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self.proc.wait(), 30)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        return self.log.read_text()

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


@pytest.fixture
async def chart_operator(
    real_server: RealServer, real_cluster: Cluster, helm: Callable[..., str], tmp_path: Path
) -> AsyncIterator[OperatorCommand]:
    """The chart installed for the test namespace (Role only) and the operator running on its ServiceAccount. The
    namespace enforces Pod Security ``restricted``: the operator's Deployment and the training Pods must pass."""
    ns = real_cluster.namespace
    await call(real_cluster.core.patch_namespace, ns, {"metadata": {"labels": RESTRICTED}})
    helm("install", RELEASE, str(CHART), "-n", ns, "--set", f"watchNamespaces={{{ns}}}")
    kubeconfig = token_kubeconfig(real_server, ns, SA, tmp_path / "sa-kubeconfig")
    op = OperatorCommand(kubeconfig, ns, tmp_path / "operator.log")
    await op.start()
    try:
        yield op
    finally:
        await op.stop()  # before the namespace goes, so that runs are released by the operator itself
        helm("uninstall", RELEASE, "-n", ns)


@needs_helm
async def test_chart_installs_and_the_operator_runs_on_its_role_alone(
    real_cluster: Cluster, chart_operator: OperatorCommand
) -> None:
    c, player = real_cluster, JobPlayer(real_cluster)
    rbac = client.RbacAuthorizationV1Api(c.api)
    assert [r.metadata.name for r in (await call(rbac.list_namespaced_role, c.namespace)).items] == [SA]
    apps = client.AppsV1Api(c.api)
    assert (await call(apps.read_namespaced_deployment, SA, c.namespace)).spec.template.spec.service_account_name == SA
    await eventually(lambda: _deployment_pods(c), 60, "the operator Deployment's Pod admitted under restricted")
    await c.create_run("chart", small_spec(cycles=1))
    for name in ("chart-c1-s0", "chart-final-s0"):
        jobs = await c.wait_jobs("chart", {name}, timeout=60)
        await player.succeed(jobs[name])
    await c.wait_condition("chart", "Succeeded", timeout=60)
    run = await c.run("chart")
    assert run is not None and run["status"]["checkpointClaims"] == ["chart-checkpoints-s0"]
    await c.delete_run("chart")
    await eventually(lambda: _gone(c, "chart"), 30, "run deleted through the operator's finalizer")
    log = await chart_operator.stop()
    noisy = [line for line in log.splitlines() if "ERROR" in line or "Forbidden" in line or "permission" in line]
    assert not noisy, "\n".join(noisy)
    lines = [line for line in log.splitlines() if line.strip()]
    repeated = [a for a, b in itertools.pairwise(lines) if a == b]
    assert lines and not repeated, f"log lines printed twice: {repeated[:3]}"


async def _deployment_pods(c: Cluster) -> list[str]:
    pods = await call(c.core.list_namespaced_pod, c.namespace, label_selector=f"app.kubernetes.io/name={CHART.name}")
    return [p.metadata.name for p in pods.items]


async def _gone(c: Cluster, name: str) -> bool:
    return await c.run(name) is None


@needs_helm
async def test_a_role_without_owner_finalizers_gets_a_condition_and_an_event(
    real_server: RealServer, real_cluster: Cluster, helm: Callable[..., str], tmp_path: Path
) -> None:
    c = real_cluster
    await _rbac_without_finalizers(c, helm)
    op = OperatorCommand(token_kubeconfig(real_server, c.namespace, SA, tmp_path / "kc"), c.namespace, tmp_path / "log")
    await op.start()
    try:
        await c.create_run("owned", small_spec(cycles=1))
        seen = await eventually(lambda: _refused_or_created(c, "owned"), 60, "ChildrenCreated=False")
        if "created" in seen:
            pytest.skip("this API server does not enforce OwnerReferencesPermissionEnforcement")
        assert seen["reason"] == "Forbidden" and "blockOwnerDeletion" in seen["message"], seen
        assert "EnvGenCycle" in seen["message"]

        async def warned() -> bool:
            return any(e["reason"] == "ChildCreateFailed" and e["type"] == "Warning" for e in await c.events("owned"))

        await eventually(warned, 30, "a ChildCreateFailed Warning Event")
    finally:
        await op.stop()


@needs_helm
async def test_children_are_created_once_the_role_allows_it(
    real_server: RealServer, real_cluster: Cluster, helm: Callable[..., str], tmp_path: Path
) -> None:
    """ChildrenCreated goes back to True after a refusal is fixed (the operator's API calls on the Role alone)."""
    c = real_cluster
    docs = await _rbac_without_finalizers(c, helm)
    kubeconfig = token_kubeconfig(real_server, c.namespace, SA, tmp_path / "kc")
    restricted = config.new_client_from_config(config_file=str(kubeconfig))
    op = OperatorProcess(c, api=restricted)
    await op.start()
    try:
        await c.create_run("fixed", small_spec(cycles=1))
        refused = await eventually(lambda: _refused_or_created(c, "fixed"), 60, "ChildrenCreated=False")
        if "created" in refused:
            pytest.skip("this API server does not enforce OwnerReferencesPermissionEnforcement")
        assert refused["reason"] == "Forbidden", refused
        role = next(d for d in docs if d["kind"] == "Role")
        rule = {"apiGroups": ["envgen.dev"], "resources": ["envgenruns/finalizers"], "verbs": ["update"]}
        rbac = client.RbacAuthorizationV1Api(c.api)
        await call(rbac.patch_namespaced_role, role["metadata"]["name"], c.namespace, {"rules": [*role["rules"], rule]})
        created = await c.wait_condition("fixed", "ChildrenCreated", "True", timeout=60)
        assert created["reason"] == "Created"
        await c.wait_jobs("fixed", {"fixed-c1-s0"}, timeout=60)
    finally:
        await op.stop()
        restricted.close()


async def _refused_or_created(c: Cluster, run: str) -> dict[str, Any] | None:
    """The ChildrenCreated=False condition; ``{"created": True}`` when children appear (no enforcement)."""
    if await c.cycles(run) or await c.jobs(run):
        return {"created": True}
    cond = await c.condition(run, "ChildrenCreated")
    return cond if cond and cond["status"] == "False" else None


async def _rbac_without_finalizers(c: Cluster, helm: Callable[..., str]) -> list[dict[str, Any]]:
    """The chart's ServiceAccount, Role and RoleBinding for the namespace, the Role lacking envgenruns/finalizers."""
    rendered = yaml.safe_load_all(helm("template", RELEASE, str(CHART), "-n", c.namespace,
                                       "--set", f"watchNamespaces={{{c.namespace}}}"))  # fmt: skip
    docs = [d for d in rendered if d and d["kind"] in ("ServiceAccount", "Role", "RoleBinding")]
    role = next(d for d in docs if d["kind"] == "Role")
    role["rules"] = [r for r in role["rules"] if "envgenruns/finalizers" not in r["resources"]]
    for doc in docs:
        await call(_create, c.api, c.namespace, doc)
    return docs


def _create(api: client.ApiClient, namespace: str, doc: dict[str, Any]) -> None:
    kind = doc["kind"]
    if kind == "ServiceAccount":
        client.CoreV1Api(api).create_namespaced_service_account(namespace, doc)
    elif kind == "Role":
        client.RbacAuthorizationV1Api(api).create_namespaced_role(namespace, doc)
    else:
        client.RbacAuthorizationV1Api(api).create_namespaced_role_binding(namespace, doc)
