"""Prometheus metrics of the operator (the Grafana dashboard is built from these exact names).

Counters and histograms are updated as things happen; per-run gauges are computed at scrape time by
``RunCollector`` from the latest snapshot of each run, and disappear when the run is deleted.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)

CYCLES_COMPLETED = Counter("envgen_cycles_completed", "Training cycles completed.", ["namespace"], registry=REGISTRY)
JOBS_CREATED = Counter("envgen_training_jobs_created", "Training Jobs created.", ["namespace"], registry=REGISTRY)
JOBS_FAILED = Counter(
    "envgen_training_jobs_failed",
    "Training Jobs that failed (MetricsUnavailable: succeeded without readable metrics).",
    ["namespace", "reason"],
    registry=REGISTRY,
)
LLM_REQUESTS = Counter(
    "envgen_llm_requests", "LLM requests by outcome (success|error).", ["namespace", "outcome"], registry=REGISTRY
)
LLM_TOKENS = Counter(
    "envgen_llm_tokens", "LLM tokens by direction (prompt|completion).", ["namespace", "direction"], registry=REGISTRY
)
CYCLE_DURATION = Histogram(
    "envgen_cycle_duration_seconds",
    "Wall time of a cycle, from its design to its last training Job's metrics.",
    ["namespace"],
    buckets=(10, 60, 300, 600, 1800, 3600, 7200, 14400, 28800, 86400),
    registry=REGISTRY,
)
LLM_DURATION = Histogram(
    "envgen_llm_request_duration_seconds",
    "Wall time of one cycle's design request to the LLM designer (repairs included).",
    ["namespace"],
    buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600),
    registry=REGISTRY,
)


@dataclass(frozen=True)
class RunSnapshot:
    """What the per-run gauges show for one run."""

    game: str
    designer: str
    conditions: dict[str, str] = field(default_factory=dict)  # type -> True|False|Unknown
    current_cycle: int | None = None
    score: float | None = None
    skills: dict[str, float] = field(default_factory=dict)  # ratio 0..1


class RunCollector(Collector):
    """Per-run gauges, computed at scrape time from the latest snapshots."""

    def __init__(self) -> None:
        self._runs: dict[tuple[str, str], RunSnapshot] = {}
        self._lock = threading.Lock()

    def update(self, namespace: str, name: str, snapshot: RunSnapshot) -> None:
        """Replace a run's snapshot."""
        with self._lock:
            self._runs[namespace, name] = snapshot

    def drop(self, namespace: str, name: str) -> None:
        """Forget a deleted run: its series disappear from the next scrape."""
        with self._lock:
            self._runs.pop((namespace, name), None)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            runs = dict(self._runs)
        info = GaugeMetricFamily("envgen_run_info", "An EnvGenRun.", labels=["namespace", "name", "game", "designer"])
        cond = GaugeMetricFamily(
            "envgen_run_condition",
            "1 for a run condition's current status.",
            labels=["namespace", "name", "condition", "status"],
        )
        cycle = GaugeMetricFamily("envgen_run_current_cycle", "The cycle in progress.", labels=["namespace", "name"])
        score = GaugeMetricFamily("envgen_run_score", "Latest score (percent).", labels=["namespace", "name"])
        skill = GaugeMetricFamily(
            "envgen_skill_success_ratio",
            "Latest success ratio (0..1) per skill.",
            labels=["namespace", "name", "skill"],
        )
        for (ns, name), snap in sorted(runs.items()):
            info.add_metric([ns, name, snap.game, snap.designer], 1)
            for ctype, status in sorted(snap.conditions.items()):
                for value in ("True", "False", "Unknown"):
                    cond.add_metric([ns, name, ctype, value], 1 if status == value else 0)
            if snap.current_cycle is not None:
                cycle.add_metric([ns, name], snap.current_cycle)
            if snap.score is not None:
                score.add_metric([ns, name], snap.score)
            for k, v in sorted(snap.skills.items()):
                skill.add_metric([ns, name, k], v)
        yield from (info, cond, cycle, score, skill)


RUNS = RunCollector()
REGISTRY.register(RUNS)


def serve(port: int, addr: str = "0.0.0.0") -> tuple[WSGIServer, threading.Thread]:
    """Serve ``/metrics`` on a port (a background thread); the server (``shutdown()`` stops it) and its thread."""
    return start_http_server(port, addr, registry=REGISTRY)
