"""A real Kubernetes API server for the tests: a given kubeconfig, else the shared control plane started here.

``ENVGEN_TEST_KUBECONFIG`` runs every Kubernetes test on that cluster (kmock otherwise);
``ENVGEN_TEST_REAL_KUBECONFIG`` only gives the tests that need a real API server one. Without either, those
tests start ``../shared/k8s/control-plane`` (etcd, kube-apiserver, kube-controller-manager; no kubelet) once
per session, with its own state directory and free ports, and stop it at the end; without it they skip.
The started API server enforces ``OwnerReferencesPermissionEnforcement``, as OpenShift does.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT.parent / "shared" / "k8s" / "control-plane"
ADMISSION = "--enable-admission-plugins=OwnerReferencesPermissionEnforcement"
PORT_VARS = ("ETCD_PORT", "ETCD_PEER_PORT", "APISERVER_PORT", "KCM_PORT")


def given_kubeconfig() -> Path | None:
    """A real cluster named by the environment, if any."""
    path = os.environ.get("ENVGEN_TEST_KUBECONFIG") or os.environ.get("ENVGEN_TEST_REAL_KUBECONFIG")
    return Path(path) if path else None


def write_kubeconfig(url: str, path: Path) -> Path:
    """A kubeconfig for an API server at ``url`` that takes any token (kmock)."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "k", "cluster": {"server": url}}],
        "users": [{"name": "k", "user": {"token": "t"}}],
        "contexts": [{"name": "k", "context": {"cluster": "k", "user": "k"}}],
        "current-context": "k",
    }
    path.write_text(json.dumps(doc))
    return path


def available() -> bool:
    """Whether a real API server can be had (given, or the shared control plane to start)."""
    return given_kubeconfig() is not None or SCRIPT.exists()


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@contextmanager
def started() -> Iterator[Path]:
    """Start the shared control plane in a fresh state directory on free ports; stop it on exit."""
    with tempfile.TemporaryDirectory(prefix="envgen-k8s-") as state:
        env = {**os.environ, "STATE_DIR": state, "EXTRA_APISERVER_ARGS": ADMISSION}
        env |= {var: str(port) for var, port in zip(PORT_VARS, _free_ports(len(PORT_VARS)), strict=True)}
        try:
            proc = subprocess.run(
                ["bash", str(SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=300, check=False
            )
            if proc.returncode != 0:
                raise RuntimeError(f"control-plane start failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
            yield Path(state) / "kubeconfig"
        finally:
            subprocess.run(["bash", str(SCRIPT), "stop"], env=env, capture_output=True, timeout=120, check=False)
