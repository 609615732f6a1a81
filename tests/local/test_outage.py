"""`envgen run` against an LLM endpoint that goes down: the outage is waited out, a failed run is retried with
``--retry``, and the API key never lands in the run directory or the output. Real trainer, tiny budget."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from llm.stub import StubLLM, crafter_answer, error, free_port, streamed

pytestmark = pytest.mark.slow(minutes=3)
RUN = "outage"
API_KEY = "sk-envgen-test-0123456789abcdef-do-not-leak"


def run_yaml(tmp_path: Path, base_url: str, cycles: int, tolerance: int) -> Path:
    doc = {
        "apiVersion": "envgen.dev/v1alpha1",
        "kind": "EnvGenRun",
        "metadata": {"name": RUN},
        "spec": {
            "designer": {"type": "llm", "critic": False},
            "llm": {
                "baseURL": base_url,
                "model": "stub",
                "maxRetries": 0,
                "timeoutSeconds": 5,
                "outageToleranceSeconds": tolerance,
                "apiKey": {"env": "ENVGEN_TEST_API_KEY"},
            },
            "envsPerCycle": 2,
            "cycles": cycles,
            "maxFailedTasks": 1,
            "training": {
                "designedEnvSteps": 256,
                "gameSteps": 128,
                "finalSteps": 128,
                "evalEpisodes": 1,
                "evalRuns": 1,
                "designedEnvLength": 64,
            },
            "agent": {"numEnvs": 2, "rolloutSteps": 32, "epochs": 1, "minibatches": 1},
        },
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def envgen_run(run_yaml: Path, run_dir: Path, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "ENVGEN_TEST_API_KEY": API_KEY}
    return subprocess.Popen(
        [sys.executable, "-m", "envgen", "run", str(run_yaml), "--run-dir", str(run_dir), "--quiet", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def answers(n: int) -> list[object]:
    return [streamed([crafter_answer(2)]) for _ in range(n)]


def wait_until(check: object, proc: subprocess.Popen[str], timeout: float) -> None:
    deadline = time.time() + timeout
    while not check():  # type: ignore[operator]
        assert proc.poll() is None, f"envgen run ended early:\n{proc.communicate()[0]}"
        assert time.time() < deadline, "timed out"
        time.sleep(0.2)


def assert_no_secret(run_dir: Path, output: str) -> None:
    assert API_KEY not in output
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert API_KEY.encode() not in path.read_bytes(), path


def test_outage_is_waited_out_and_the_run_finishes(tmp_path: Path) -> None:
    port = free_port()
    run_dir = tmp_path / "run"
    proc = envgen_run(run_yaml(tmp_path, f"http://127.0.0.1:{port}/v1", cycles=1, tolerance=600), run_dir)
    outage = run_dir / "llm-outage.json"
    wait_until(lambda: outage.exists() and json.loads(outage.read_text())["attempts"] >= 2, proc, 120)
    assert not (run_dir / "designs" / "c1.json").exists()
    stub = StubLLM(port)  # the endpoint comes back, overloaded at first
    stub.add(error(503, "loading model", {"retry-after": "1"}), *answers(4))
    try:
        out, _ = proc.communicate(timeout=900)
    finally:
        stub.close()
    assert proc.returncode == 0, out
    assert "AllCyclesCompleted" in out and "LLM unavailable" in out
    assert not outage.exists()
    assert sorted(p.name for p in (run_dir / "designs").iterdir()) == ["c1.json"]  # no failed design counted
    assert sorted(p.name for p in (run_dir / "tasks").iterdir()) == [f"{RUN}-c1-s0", f"{RUN}-final-s0"]
    assert len(stub.requests) == 2  # the 503, then the answer
    assert all(h["authorization"] == f"Bearer {API_KEY}" for h in stub.headers)  # the key is used ...
    assert_no_secret(run_dir, out)  # ... and written nowhere


def test_failed_run_is_continued_with_retry(tmp_path: Path) -> None:
    port = free_port()
    run_dir = tmp_path / "run"
    config = run_yaml(tmp_path, f"http://127.0.0.1:{port}/v1", cycles=2, tolerance=3)
    stub = StubLLM(port)
    stub.add(*answers(1))
    proc = envgen_run(config, run_dir)
    wait_until(lambda: (run_dir / "designs" / "c1.json").exists(), proc, 120)
    stub.close()  # down for good while cycle 1 trains
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 1 and "LLMUnavailable" in out, out
    first = run_dir / "tasks" / f"{RUN}-c1-s0" / "metrics.json"
    kept = first.stat().st_mtime_ns

    again = envgen_run(config, run_dir)
    out2, _ = again.communicate(timeout=120)
    assert again.returncode == 1 and "--retry" in out2, out2

    stub = StubLLM(port)
    stub.add(*answers(4))
    try:
        retried = envgen_run(config, run_dir, "--retry")
        out3, _ = retried.communicate(timeout=900)
    finally:
        stub.close()
    assert retried.returncode == 0 and "AllCyclesCompleted" in out3, out3
    assert first.stat().st_mtime_ns == kept  # cycle 1 kept, not trained again
    names = sorted(p.name for p in (run_dir / "tasks").iterdir())
    assert names == [f"{RUN}-c1-s0", f"{RUN}-c2-s0", f"{RUN}-final-s0"]
    assert_no_secret(run_dir, out + out2 + out3)
