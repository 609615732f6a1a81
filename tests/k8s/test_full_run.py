"""A whole run on the operator: the real local LLM designs, the real trainer CLI trains (tiny budget)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from envgen.contracts import TrainingMetrics
from envgen.k8s.metrics import REGISTRY

from .harness import Cluster, JobPlayer, OperatorProcess

pytestmark = [pytest.mark.slow(minutes=8), pytest.mark.llm]


def full_spec(base_url: str) -> dict[str, Any]:
    return {
        "game": "crafter",
        "designer": {"type": "llm", "critic": False},
        "llm": {
            "baseURL": base_url,
            "model": "smollm2-135m",
            "temperature": "0",
            "timeoutSeconds": 300,
            "maxTokens": 1024,
        },
        "envsPerCycle": 1,
        "cycles": 2,
        "training": {
            "designedEnvSteps": 1024,
            "gameSteps": 512,
            "finalSteps": 512,
            "evalEpisodes": 2,
            "evalRuns": 2,
            "designedEnvLength": 256,
        },
        "agent": {"numEnvs": 4, "rolloutSteps": 64, "minibatches": 2, "device": "cpu"},
        "resources": {"image": "envgen-trainer:test"},
    }


async def test_full_run_with_the_local_llm_and_the_real_trainer(
    llm_server: str, cluster: Cluster, operator: OperatorProcess, player: JobPlayer, tmp_path: Path
) -> None:
    await cluster.create_run("full", full_spec(llm_server))
    for name in ("full-c1-s0", "full-c2-s0", "full-final-s0"):
        jobs = await cluster.wait_jobs("full", {name}, timeout=600)
        await player.train(jobs[name], tmp_path)
    done = await cluster.wait_condition("full", "Succeeded", timeout=60)
    assert done["reason"] == "AllCyclesCompleted"
    llm = await cluster.condition("full", "LLMAvailable")
    assert llm is not None and llm["status"] == "True"
    run = await cluster.run("full")
    assert run is not None
    status = run["status"]
    assert status["cyclesCompleted"] == 2 and status["llm"]["calls"] >= 2 and status["llm"]["promptTokens"] > 0
    assert len(status["skills"]) == 22 and all(isinstance(s["mean"], str) for s in status["skills"])

    cycles = await cluster.cycles("full")
    record = cycles["full-c1"]["status"]["tasks"][0]
    first = TrainingMetrics.model_validate_json(record["metrics"])
    wood = round(first.success["collect_wood"].mean)
    prompts = [m["content"] for m in cycles["full-c2"]["spec"]["design"]["chat"] if m["role"] == "user"]
    assert any(re.search(rf"collect_wood: {wood}% \+/- \d+%", p) for p in prompts), "cycle 1 feedback not in prompt"
    assert (tmp_path / "full" / "checkpoints" / "s0" / "c1.pt").exists()  # carried on the (mapped) claim
    ns = cluster.namespace
    assert (REGISTRY.get_sample_value("envgen_llm_requests_total", {"namespace": ns, "outcome": "success"}) or 0) >= 2
    assert (REGISTRY.get_sample_value("envgen_llm_tokens_total", {"namespace": ns, "direction": "completion"}) or 0) > 0
    assert REGISTRY.get_sample_value("envgen_cycles_completed_total", {"namespace": ns}) == 2
