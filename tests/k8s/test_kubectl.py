"""What users type: ``kubectl apply -f examples/run.yaml``, ``kubectl get envgenruns``, ``kubectl get egr``."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest
import yaml

from .harness import Cluster

ROOT = Path(__file__).resolve().parents[2]
TOOLS = Path.home() / ".cache" / "envgen" / "k8s-tools" / "kubectl"


def kubectl_binary() -> str | None:
    """scripts/install_k8s_tools.sh's kubectl, else one on PATH."""
    return str(TOOLS) if TOOLS.exists() else shutil.which("kubectl")


async def kubectl(cluster: Cluster, home: Path, *args: str) -> str:
    binary = kubectl_binary()
    assert binary is not None
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "HOME": str(home)}  # fresh discovery cache
    proc = await asyncio.create_subprocess_exec(
        binary,
        "--namespace",
        cluster.namespace,
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, f"kubectl {' '.join(args)} failed: {err.decode()}"
    return out.decode()


@pytest.mark.skipif(kubectl_binary() is None, reason="kubectl is absent (scripts/install_k8s_tools.sh installs it)")
async def test_kubectl_apply_and_get(cluster: Cluster, tmp_path: Path) -> None:
    validate = [] if cluster.real else ["--validate=false"]  # kmock serves no OpenAPI document
    applied = await kubectl(cluster, tmp_path, "apply", *validate, "-f", str(ROOT / "examples" / "run.yaml"))
    assert "envgenrun.envgen.dev/crafter-envgen created" in applied
    listed = await kubectl(cluster, tmp_path, "get", "envgenruns")
    assert "crafter-envgen" in listed
    if cluster.real:  # printer columns are rendered by the apiserver (kmock has no Table output)
        assert listed.split()[:6] == ["NAME", "CYCLE", "SCORE", "SUCCEEDED", "REASON", "AGE"]
        wide = await kubectl(cluster, tmp_path, "get", "egr", "-o", "wide")
        assert "DESIGNER" in wide and "GAME" in wide
    doc = yaml.safe_load(await kubectl(cluster, tmp_path, "get", "egr", "crafter-envgen", "-o", "yaml"))
    assert doc["kind"] == "EnvGenRun" and doc["spec"]["designer"]["type"] == "llm"
    categories = await kubectl(cluster, tmp_path, "get", "envgen")
    assert "crafter-envgen" in categories
