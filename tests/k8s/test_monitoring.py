"""Monitoring checked by the real thing: a real Prometheus scrapes the operator through a run and an experiment on
a real API server, and every expression of the Grafana dashboard (its variables' queries too) returns series."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from llm.stub import crafter_answer, free_port, streamed

from envgen.experiment.model import PLURAL as EXPERIMENTS
from envgen.k8s import API_GROUP, API_VERSION, LABEL_SEED
from envgen.k8s.metrics import REGISTRY, serve

from .harness import Cluster, JobPlayer, OperatorProcess, call, eventually
from .test_llm_outage import Endpoint, llm_spec

pytestmark = [pytest.mark.real_server, pytest.mark.slow(minutes=2)]  # a run and an experiment, scraped

PROMETHEUS = shutil.which("prometheus")
DASHBOARD = Path(__file__).resolve().parents[2] / "charts" / "envgen-operator" / "dashboards" / "envgen-operator.json"
JOB = "envgen-operator"


class Prometheus:
    """A real Prometheus scraping the operator's /metrics every second, with its own storage."""

    def __init__(self, target: str, workdir: Path) -> None:
        assert PROMETHEUS is not None
        self.url = f"http://127.0.0.1:{free_port()}"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": JOB, "honor_labels": True, "static_configs": [{"targets": [target]}]}],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = (workdir / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address={self.url.removeprefix('http://')}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def get(self, path: str, **params: str) -> Any:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as reply:
            body = json.loads(reply.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.get("/api/v1/query", query=expr)["result"]
        return result

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def metrics_target() -> Iterator[str]:
    """The operator's /metrics (its registry, served as ``envgen operator --metrics-port`` serves it)."""
    port = free_port()
    server, thread = serve(port)
    yield f"127.0.0.1:{port}"
    server.shutdown()
    thread.join(10)


@pytest.fixture
async def prometheus(metrics_target: str, tmp_path: Path) -> AsyncIterator[Prometheus]:
    if PROMETHEUS is None:
        pytest.skip("prometheus is not installed: scripts/setup.sh installs Debian's prometheus package (as root)")
    prom = Prometheus(metrics_target, tmp_path)

    async def scraped() -> bool:
        try:
            return any(t["health"] == "up" for t in prom.get("/api/v1/targets")["activeTargets"])
        except OSError:
            return False

    try:
        await eventually(scraped, 60, "prometheus scraping the operator")
        yield prom
    finally:
        prom.stop()


def dashboard_queries(namespace: str, run: str) -> list[str]:
    """Every expression of the dashboard's panels, with its variables as Grafana would fill them in."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", []) if t.get("expr")]
    fill = {"$namespace": namespace, "$run": run, "$__range": "1h", "$__rate_interval": "1m"}
    for i, expr in enumerate(exprs):
        for var, value in fill.items():
            expr = expr.replace(var, value)
        assert "$" not in expr, f"unfilled variable in {expr}"
        exprs[i] = expr
    return exprs


def experiment(name: str) -> dict[str, Any]:
    """A two-arm experiment of tiny runs (its gauges feed the dashboard's Experiments row)."""
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": "EnvGenExperiment",
        "metadata": {"name": name},
        "spec": {
            "seeds": 2,
            "template": {
                "designer": {"type": "heuristic"},
                "cycles": 1,
                "envsPerCycle": 2,
                "training": {"designedEnvSteps": 64, "gameSteps": 64, "finalSteps": 64, "evalEpisodes": 1},
            },
            "arms": [{"name": "none", "designer": {"type": "none"}}, {"name": "heuristic"}],
        },
    }


TRAIN_SCORES = {"none": (5.0, 6.0), "heuristic": (7.0, 9.0)}  # per arm and seed


async def play_experiment(c: Cluster, player: JobPlayer, name: str) -> None:
    """Finish every Job of the experiment's arm runs until the experiment has Succeeded."""
    played: set[str] = set()

    async def succeeded() -> bool:
        for arm, scores in TRAIN_SCORES.items():
            for job_name, job in sorted((await c.jobs(f"{name}-{arm}")).items()):
                if job_name not in played:
                    played.add(job_name)
                    seed = int(job["metadata"]["labels"][LABEL_SEED])
                    await player.succeed(job, score=scores[seed], train_score=scores[seed])
        body = await call(c.custom.get_namespaced_custom_object, API_GROUP, API_VERSION, c.namespace, EXPERIMENTS, name)
        conds = (body.get("status") or {}).get("conditions") or []
        return any(x["type"] == "Succeeded" and x["status"] == "True" for x in conds)

    await eventually(succeeded, 240, f"experiment {name} Succeeded")


async def test_every_dashboard_expression_returns_series_from_a_real_prometheus(
    real_cluster: Cluster, prometheus: Prometheus
) -> None:
    c, player, endpoint = real_cluster, JobPlayer(real_cluster), Endpoint()
    stub = endpoint.up()
    stub.add(*[streamed([crafter_answer(2)]) for _ in range(3)])
    spec = llm_spec(endpoint.port, tolerance=600)
    del spec["llm"]["apiKey"]
    spec["maxFailedTasks"] = 3
    op = OperatorProcess(c)
    await op.start()
    try:
        await c.create_run("mon", spec)
        jobs = await c.wait_jobs("mon", {"mon-c1-s0"}, timeout=60)
        await player.finish(jobs["mon-c1-s0"], 0, None)  # succeeded without metrics: a failed task, retried
        jobs = await c.wait_jobs("mon", {"mon-c1-s0-r2"}, timeout=60)
        await player.succeed(jobs["mon-c1-s0-r2"])
        jobs = await c.wait_jobs("mon", {"mon-final-s0"}, timeout=60)
        await player.succeed(jobs["mon-final-s0"])
        await c.wait_condition("mon", "Succeeded", timeout=60)
        body = experiment("exp")
        await call(c.custom.create_namespaced_custom_object, API_GROUP, API_VERSION, c.namespace, EXPERIMENTS, body)
        await play_experiment(c, player, "exp")
    finally:
        await op.stop()
        stub.close()
    ns = c.namespace
    failed = {"namespace": ns, "reason": "MetricsUnavailable"}
    assert REGISTRY.get_sample_value("envgen_training_jobs_failed_total", failed) == 1

    async def scraped_twice() -> bool:  # increase() and rate() need two samples of the final values
        found = prometheus.query(f'count_over_time(envgen_run_score{{namespace="{ns}"}}[1h])')
        return bool(found) and float(found[0]["value"][1]) >= 2

    await eventually(scraped_twice, 30, "two scrapes of the finished run")
    await asyncio.sleep(2.5)
    queries = dashboard_queries(ns, "mon")
    assert len(queries) >= 20
    empty = [expr for expr in queries if not prometheus.query(expr)]
    assert not empty, f"dashboard expressions without series: {empty}"
    namespaces = prometheus.get("/api/v1/label/namespace/values", **{"match[]": "envgen_run_info"})
    runs = prometheus.get("/api/v1/label/name/values", **{"match[]": f'envgen_run_info{{namespace=~"{ns}"}}'})
    assert ns in namespaces and runs == ["exp-heuristic", "exp-none", "mon"]
