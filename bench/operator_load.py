"""P4: the operator under load: N EnvGenRuns at once on kmock or a real API server, a fast fake trainer.

The operator runs as its own process through its real entry point (``envgen.k8s.operator.run``), with two
probes added: the wall time of every reconcile, and a count of its API client's requests. The bench plays the
trainer (the kubelet on a real control plane, the Job controller too on kmock): every Job finishes at once with
a termination message carrying metrics, as ``tests/k8s/harness.JobPlayer`` does. The designer is ``heuristic``
(no LLM). It reports:

* latency from a Job's completion (its Complete condition, as watched) to the next Job's creation (p50/p95/p99);
* reconcile wall time (p50/p95/p99, max), operator RSS (max, sampled each second);
* API requests by the operator's client per completed cycle (Kopf's own watches and patches not included), by
  method and resource, and their latency (p50/p95);
* the largest ``status`` of a run (JSON bytes), and whether every run finished ``Succeeded``.

    .venv/bin/python bench/operator_load.py --runs 100                       # kmock in-process
    .venv/bin/python bench/operator_load.py --runs 100 --kubeconfig KUBECONFIG  # a real API server
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import queue
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import urllib3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from k8s.control_plane import write_kubeconfig  # noqa: E402
from k8s.harness import Cluster, JobPlayer, call, job_mode  # noqa: E402
from kubernetes import client, config, watch  # noqa: E402
from kubernetes.client import rest  # noqa: E402

from envgen.k8s import API_GROUP, API_VERSION, LABEL_RUN, RUNS_PLURAL  # noqa: E402
from envgen.k8s.crd import cycle_crd, run_crd  # noqa: E402

STATUS_LIMIT = 16 * 1024


@dataclass
class LoadResult:
    """What one load run measured."""

    api: str
    runs: int
    cycles: int
    interval_seconds: float
    succeeded: int
    wall_seconds: float
    next_job_p50: float
    next_job_p95: float
    next_job_p99: float
    next_job_samples: int
    reconcile_p50: float
    reconcile_p95: float
    reconcile_p99: float
    reconcile_max: float
    reconciles: int
    rss_max_mb: float
    cpu_seconds: float
    requests_per_cycle: float
    status_max_bytes: int
    request_p50: float = 0.0
    request_p95: float = 0.0
    requests_by_kind: dict[str, float] = field(default_factory=dict)  # per completed cycle, "GET jobs" etc.

    def markdown(self) -> str:
        """One row of bench/README.md's P4 table."""
        return (
            f"| {self.api} | {self.runs} | {self.cycles} | {self.interval_seconds:g} s | "
            f"{self.succeeded}/{self.runs} | {self.wall_seconds:.0f} s | "
            f"{self.next_job_p50:.2f} / {self.next_job_p95:.2f} / {self.next_job_p99:.2f} s | "
            f"{self.reconcile_p50 * 1000:.0f} / {self.reconcile_p95 * 1000:.0f} / {self.reconcile_p99 * 1000:.0f} ms | "
            f"{self.rss_max_mb:.0f} MB | {self.cpu_seconds:.0f} s | {self.requests_per_cycle:.0f} | "
            f"{self.status_max_bytes / 1024:.1f} KiB |"
        )


def load_spec(cycles: int) -> dict[str, Any]:
    """A run that only exercises the operator: heuristic designer, tiny budgets, one seed."""
    return {
        "designer": {"type": "heuristic"},
        "cycles": cycles,
        "envsPerCycle": 2,
        "training": {"designedEnvSteps": 64, "gameSteps": 64, "finalSteps": 64, "evalEpisodes": 1, "evalRuns": 1},
        "resources": {"image": "envgen-trainer:load", "ttlSecondsAfterFinished": 3600},
    }


def quantile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation; 0 for no values."""
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


class JobWatch:
    """Every Job event of a namespace, stamped on arrival, from a watch in a thread of its own."""

    def __init__(self, kubeconfig: Path, namespace: str) -> None:
        self.events: queue.Queue[tuple[float, str, dict[str, Any]]] = queue.Queue()
        self._api = config.new_client_from_config(config_file=str(kubeconfig))
        self._ns = namespace
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)

    async def __aenter__(self) -> JobWatch:
        self._thread.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()  # joined off the loop: kmock serves the watch on this very loop
        await asyncio.to_thread(self._thread.join, 15)
        self._api.close()

    def _main(self) -> None:
        batch = client.BatchV1Api(self._api)
        rv = ""
        while not self._stop.is_set():
            w = watch.Watch()
            try:
                stream = w.stream(
                    batch.list_namespaced_job, self._ns, resource_version=rv, timeout_seconds=5, _request_timeout=10
                )
                for ev in stream:
                    obj = self._api.sanitize_for_serialization(ev["object"])
                    rv = obj["metadata"].get("resourceVersion") or rv
                    self.events.put((time.monotonic(), ev["type"], obj))
                    if self._stop.is_set():
                        break
            except client.exceptions.ApiException as exc:
                if exc.status != 410:
                    raise
                rv = ""
            except urllib3.exceptions.ReadTimeoutError:
                pass  # a quiet stream (kmock has no server-side watch timeout): watch again


PROBE_FILES = ("reconciles.txt", "requests.txt")  # one line per reconcile (seconds), per API request


@asynccontextmanager
async def operator_process(
    kubeconfig: Path, namespace: str, interval: float, probes: Path
) -> AsyncIterator[subprocess.Popen[bytes]]:
    """The operator as its own process; stopped on exit (SIGTERM, then SIGKILL)."""
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "ENVGEN_RECONCILE_INTERVAL_SECONDS": str(interval),
        "PYTHONPATH": str(ROOT / "operator"),
    }
    for probe in PROBE_FILES:  # a kept folder starts each measurement empty
        (probes / probe).write_text("")
    log = (probes / "operator.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve-operator", namespace, str(probes)], env=env, stdout=log, stderr=log
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            await asyncio.to_thread(proc.wait, 20)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait)
        log.close()


def serve_operator(namespace: str, probes: Path) -> None:
    """The operator's real entry point, with the reconcile timer and request counter probes."""
    from envgen.k8s import operator

    durations, requests = ((probes / probe).open("a", buffering=1) for probe in PROBE_FILES)
    inner = operator.reconcile

    def timed(*args: Any, **kwargs: Any) -> str | None:
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            durations.write(f"{time.perf_counter() - start:.6f}\n")

    original = rest.RESTClientObject.request

    def counted(self: rest.RESTClientObject, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(self, method, url, *args, **kwargs)
        finally:
            requests.write(f"{method} {time.perf_counter() - start:.6f} {url.split('?')[0]}\n")

    operator.reconcile = timed
    rest.RESTClientObject.request = counted  # type: ignore[method-assign]
    operator.run([namespace], metrics_port=0, liveness_port=None)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, in seconds (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


async def measure(
    cluster: Cluster, runs: int, cycles: int, interval: float, timeout: float, api: str, keep: Path | None = None
) -> LoadResult:
    """Create ``runs`` EnvGenRuns at once, finish every Job they make, and measure (see the module docstring).
    The operator's log and the probes go to ``keep`` when given, else to a temporary folder."""
    player = JobPlayer(cluster)
    with tempfile.TemporaryDirectory(prefix="envgen-load-") as tmp:
        probes = keep or Path(tmp)
        probes.mkdir(parents=True, exist_ok=True)
        async with (
            operator_process(cluster.kubeconfig, cluster.namespace, interval, probes) as proc,
            JobWatch(cluster.kubeconfig, cluster.namespace) as jobs,
        ):
            start = time.monotonic()
            names = [f"load-{i:03d}" for i in range(runs)]
            await asyncio.gather(*(cluster.create_run(n, load_spec(cycles)) for n in names))
            created: dict[str, float] = {}
            completed: dict[str, float] = {}
            order: dict[str, list[str]] = {n: [] for n in names}
            finishing: set[asyncio.Task[Any]] = set()
            rss = cpu = 0.0
            succeeded = 0
            last_check = 0.0
            while time.monotonic() - start < timeout:
                try:
                    while True:
                        stamp, kind, job = jobs.events.get_nowait()
                        name = job["metadata"]["name"]
                        if kind == "ADDED" and name not in created:
                            created[name] = stamp
                            order[job["metadata"]["labels"][LABEL_RUN]].append(name)
                            task = asyncio.create_task(player.succeed(job))
                            finishing.add(task)
                            task.add_done_callback(finishing.discard)
                        conds = (job.get("status") or {}).get("conditions") or []
                        if name not in completed and any(
                            c["type"] == "Complete" and c["status"] == "True" for c in conds
                        ):
                            completed[name] = stamp
                except queue.Empty:
                    pass
                for task in [t for t in finishing if t.done()]:
                    task.result()
                now = time.monotonic()
                if now - last_check >= 1.0:
                    last_check = now
                    if proc.poll() is not None:
                        raise RuntimeError(f"the operator exited ({proc.returncode}): see {probes}/operator.log")
                    rss = max(rss, rss_mb(proc.pid))
                    cpu = cpu_seconds(proc.pid) or cpu
                    succeeded = sum(1 for body in await list_runs(cluster) if done(body))
                    print(
                        f"[load] {now - start:5.0f} s: {len(created)} Jobs created, {len(completed)} complete, "
                        f"{succeeded}/{runs} runs succeeded, operator RSS {rss:.0f} MB",
                        file=sys.stderr,
                    )
                    if succeeded == runs:
                        break
                await asyncio.sleep(0.02)
            wall = time.monotonic() - start
            bodies = await list_runs(cluster)
        latencies = [
            created[b] - completed[a]
            for seq in order.values()
            for a, b in itertools.pairwise(seq)
            if a in completed and b in created
        ]
        reconciles = [float(x) for x in (probes / PROBE_FILES[0]).read_text().split()]
        requests = [line.split() for line in (probes / PROBE_FILES[1]).read_text().splitlines()]
    statuses = [len(json.dumps(b.get("status") or {}, separators=(",", ":"))) for b in bodies]
    cycles_done = sum(int((b.get("status") or {}).get("cyclesCompleted") or 0) + (1 if done(b) else 0) for b in bodies)
    seconds = [float(r[1]) for r in requests]
    kinds = Counter(f"{method} {resource(url)}" for method, _, url in requests)
    return LoadResult(
        api=api,
        runs=runs,
        cycles=cycles,
        interval_seconds=interval,
        succeeded=sum(1 for b in bodies if done(b)),
        wall_seconds=wall,
        next_job_p50=quantile(latencies, 0.50),
        next_job_p95=quantile(latencies, 0.95),
        next_job_p99=quantile(latencies, 0.99),
        next_job_samples=len(latencies),
        reconcile_p50=quantile(reconciles, 0.50),
        reconcile_p95=quantile(reconciles, 0.95),
        reconcile_p99=quantile(reconciles, 0.99),
        reconcile_max=max(reconciles, default=0.0),
        reconciles=len(reconciles),
        rss_max_mb=rss,
        cpu_seconds=cpu,
        requests_per_cycle=len(requests) / max(cycles_done, 1),
        status_max_bytes=max(statuses, default=0),
        request_p50=quantile(seconds, 0.50),
        request_p95=quantile(seconds, 0.95),
        requests_by_kind={k: round(n / max(cycles_done, 1), 2) for k, n in kinds.most_common()},
    )


def resource(url: str) -> str:
    """A request's resource without namespace or names: ``jobs``, ``envgenruns/*/status``."""
    parts = url.split("/namespaces/", 1)[-1].split("/")[1:]
    return "/".join([parts[0], *(["*"] if len(parts) > 1 else []), *parts[2:]]) if parts else url


async def list_runs(cluster: Cluster) -> list[dict[str, Any]]:
    result: dict[str, Any] = await call(
        cluster.custom.list_namespaced_custom_object, API_GROUP, API_VERSION, cluster.namespace, RUNS_PLURAL
    )
    return list(result["items"])


def done(body: dict[str, Any]) -> bool:
    conds = (body.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Succeeded" and c["status"] == "True" for c in conds)


@asynccontextmanager
async def a_cluster(kubeconfig: Path | None) -> AsyncIterator[Cluster]:
    """A fresh namespace with the CRDs: on the given cluster, else on kmock served in this process."""
    from k8s.conftest import install_crds, strip_and_delete

    if kubeconfig is not None:
        api = config.new_client_from_config(config_file=str(kubeconfig))
        await call(install_crds, api)
        ns = f"envgen-load-{secrets.token_hex(3)}"
        await call(client.CoreV1Api(api).create_namespace, {"metadata": {"name": ns}})
        c = Cluster(api=api, namespace=ns, kubeconfig=kubeconfig, job_mode=await call(job_mode, api, True), real=True)
        try:
            yield c
        finally:
            await call(strip_and_delete, api, ns)
            api.close()
        return
    from k8s.kmock_plus import Emulator
    from kmock._internal.apps import Server

    async with Emulator() as emulator, Server(emulator):
        emulator.resources.load_bundled()
        with tempfile.TemporaryDirectory() as tmp:
            path = write_kubeconfig(str(emulator.url), Path(tmp) / "kubeconfig")
            api = config.new_client_from_config(config_file=str(path))
            ext = client.ApiextensionsV1Api(api)
            for crd in (run_crd(), cycle_crd()):
                await call(ext.create_custom_resource_definition, crd)
            await call(client.CoreV1Api(api).create_namespace, {"metadata": {"name": "envgen-load"}})
            yield Cluster(api=api, namespace="envgen-load", kubeconfig=path, job_mode="fake", real=False)
            api.close()


def warn_if_not_byte_compiled() -> None:
    """RSS is only the image's when the kubernetes client is byte-compiled (the image's pip install does it;
    ``scripts/setup.sh`` does it here): compiling its 4.5 MB ``core_v1_api.py`` at import costs ~60 MB."""
    import importlib.util

    from kubernetes.client.api import core_v1_api

    if not Path(importlib.util.cache_from_source(core_v1_api.__file__)).exists():
        print("[load] warning: the kubernetes client is not byte-compiled; RSS includes compiling it", file=sys.stderr)


async def amain(args: argparse.Namespace) -> LoadResult:
    warn_if_not_byte_compiled()
    async with a_cluster(args.kubeconfig) as cluster:
        api = "real API server" if args.kubeconfig else "kmock"
        return await measure(cluster, args.runs, args.cycles, args.interval, args.timeout, api, args.keep)


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve-operator":
        serve_operator(sys.argv[2], Path(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--cycles", type=int, default=2)
    parser.add_argument("--interval", type=float, default=10.0, help="the operator's reconcile interval (seconds)")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--kubeconfig", type=Path, default=None, help="a real cluster (default: kmock)")
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    parser.add_argument("--keep", type=Path, default=None, help="keep the operator's log and the probes here")
    args = parser.parse_args()
    result = asyncio.run(amain(args))
    print(json.dumps(asdict(result), indent=2))
    print(result.markdown())
    if args.json:
        args.json.write_text(json.dumps(asdict(result), indent=2))
    goals = result.succeeded == result.runs and result.status_max_bytes <= STATUS_LIMIT
    sys.exit(0 if goals else 1)


if __name__ == "__main__":
    main()
