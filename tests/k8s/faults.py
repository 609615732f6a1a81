"""Faults for the operator's chaos tests: an API (kmock) that fails the operator's requests, a killable operator.

* ``FaultyEmulator``: kmock that, for the operator's requests only (its client's and Kopf's User-Agent), answers
  some with 500 before acting, some writes with 409 (a conflict, not applied), some writes with 500 after
  applying them (the answer lost), and ends every watch after a random time (half of them with 410 Gone).
  The test's own calls are never touched.
* ``Replicas``: operator processes to start and SIGKILL at any moment. A preloaded parent process (``python
  -m k8s.faults``) forks each replica, so a start costs milliseconds instead of the imports' seconds; each
  replica logs to ``replica-<pid>.log`` in a folder of the test's.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import attrs
from kmock._internal import enums, k8s

from .kmock_plus import Emulator

OPERATOR_AGENT = "envgen-operator"  # the User-Agent of the operator's API client in these tests
FAULTED_AGENTS = (OPERATOR_AGENT, "kopf/")
TESTS = Path(__file__).resolve().parents[1]


@dataclass
class FaultPlan:
    """How often the operator's requests fail, and the tally of what was injected."""

    rate: float = 0.15  # share of the operator's requests that fail
    watch_seconds: tuple[float, float] = (0.5, 3.0)  # every watch of the operator ends after this long
    seed: int = 0
    injected: Counter[str] = field(default_factory=Counter)
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def draw(self, write: bool) -> str | None:
        """The fault for one request: None, 'error' (500, not applied), 'conflict' (409), 'lost' (500, applied).
        A write gets the kind injected least so far, so that a short run sees every kind."""
        if self.rng.random() >= self.rate:
            return None
        return self._tally(WRITE_FAULTS if write else ("error",))

    def watch_end(self) -> str:
        """How the next watch ends: 'watch-dropped' (the stream just ends) or 'watch-410' (ERROR 410 Gone)."""
        return self._tally(WATCH_FAULTS)

    def _tally(self, kinds: tuple[str, ...]) -> str:
        fewest = min(self.injected[k] for k in kinds)
        kind = self.rng.choice([k for k in kinds if self.injected[k] == fewest])
        self.injected[kind] += 1
        return kind


WRITE_FAULTS = ("error", "conflict", "lost")
WATCH_FAULTS = ("watch-dropped", "watch-410")
FAULT_KINDS = (*WRITE_FAULTS, *WATCH_FAULTS)


WRITES = (enums.action.CREATE, enums.action.UPDATE, enums.action.DELETE)


@attrs.define(kw_only=True)
class FaultyEmulator(Emulator):
    """kmock with faults on the operator's requests (see the module docstring)."""

    plan: FaultPlan = attrs.field(factory=FaultPlan)

    async def _handle(self, request: Any) -> Any:
        agent = str(request.headers.get("User-Agent", ""))
        if request.resource is None or not agent.startswith(FAULTED_AGENTS) or request.action == enums.action.WATCH:
            return await super()._handle(request)
        fault = self.plan.draw(request.action in WRITES)
        if fault == "error":
            raise k8s.KubernetesError(status=500, reason="InternalError", message="injected: not applied")
        if fault == "conflict" and request.action in WRITES:
            raise k8s.KubernetesError(
                status=409,
                reason="Conflict",
                message="injected: the object has been modified; please apply your changes to the latest version",
            )
        response = await super()._handle(request)
        if fault == "lost":
            raise k8s.KubernetesError(status=500, reason="InternalError", message="injected: applied, answer lost")
        return response

    async def _serve_watch(self, request: Any) -> AsyncIterator[Any]:
        agent = str(request.headers.get("User-Agent", ""))
        stream = super()._serve_watch(request)
        if not agent.startswith(FAULTED_AGENTS):
            async for item in stream:
                yield item
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.plan.rng.uniform(*self.plan.watch_seconds)
        try:
            while (left := deadline - loop.time()) > 0:
                try:
                    async with asyncio.timeout(left):
                        item = await anext(stream)
                except TimeoutError:
                    break
                except StopAsyncIteration:
                    return
                yield item
            if self.plan.watch_end() == "watch-410":
                yield {"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "code": 410, "reason": "Gone"}}
        finally:
            await stream.aclose()


class Replicas:
    """Operator replicas in one namespace, forked from a preloaded parent; each can be SIGKILLed."""

    def __init__(self, kubeconfig: Path, namespace: str, logs: Path) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.logs = logs
        self._parent: subprocess.Popen[str] | None = None
        self.live: list[int] = []
        self.kills = 0

    async def __aenter__(self) -> Replicas:
        env = {**os.environ, "PYTHONPATH": str(TESTS), "KUBECONFIG": str(self.kubeconfig)}
        self._parent = subprocess.Popen(
            [sys.executable, "-m", "k8s.faults", str(self.kubeconfig), self.namespace, str(self.logs)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert await asyncio.to_thread(self._read) == "ready", "the operator parent did not start"
        return self

    async def __aexit__(self, *exc: object) -> None:
        for pid in list(self.live):
            self._kill(pid)
        if self._parent is not None:
            assert self._parent.stdin is not None
            self._parent.stdin.close()
            await asyncio.to_thread(self._parent.wait, 30)

    def log_tail(self, chars: int = 3000) -> str:
        """The end of every replica's log, for a failure message."""
        return "\n".join(f"== {p.name}\n{p.read_text()[-chars:]}" for p in sorted(self.logs.glob("replica-*.log")))

    def _read(self) -> str:
        assert self._parent is not None and self._parent.stdout is not None
        return self._parent.stdout.readline().strip()

    async def start(self) -> int:
        """Fork one more replica; its pid."""
        assert self._parent is not None and self._parent.stdin is not None
        self._parent.stdin.write("start\n")
        self._parent.stdin.flush()
        pid = int(await asyncio.to_thread(self._read))
        self.live.append(pid)
        return pid

    async def reconciled(self, pid: int, timeout: float = 60.0) -> None:
        """Wait until a replica has ended one whole reconcile (its log says so)."""
        log = self.logs / f"replica-{pid}.log"
        deadline = time.monotonic() + timeout
        while "Timer 'reconcile'" not in (log.read_text() if log.exists() else ""):
            if time.monotonic() > deadline:
                raise AssertionError(f"replica {pid} did not reconcile within {timeout:g} s:\n{self.log_tail()}")
            await asyncio.sleep(0.05)

    def kill(self, pid: int) -> None:
        """SIGKILL one replica: no shutdown, no cleanup, whatever it was doing."""
        self._kill(pid)
        self.kills += 1

    def _kill(self, pid: int) -> None:
        self.live.remove(pid)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError as exc:
            raise AssertionError(f"replica {pid} had died by itself") from exc


def _replica(kubeconfig: str, namespace: str) -> None:
    """One operator replica (the child of ``_parent``): the test settings of ``harness.OperatorProcess``."""
    import kopf
    from kubernetes import config

    from envgen.k8s.operator import OperatorConfig, make_registry, make_settings

    api = config.new_client_from_config(config_file=kubeconfig)
    api.user_agent = OPERATOR_AGENT
    cfg = OperatorConfig(
        api=api, interval_seconds=0.2, retry_delay_seconds=0.5, watch_server_timeout_seconds=5, namespaced=True
    )
    kopf.configure(verbose=False)
    kopf.run(registry=make_registry(cfg), settings=make_settings(cfg), standalone=True, namespaces=[namespace])


def _parent(kubeconfig: str, namespace: str, logs: str) -> None:
    """Preload the operator, then fork a replica for every ``start`` line on stdin, answering its pid."""
    import kopf  # noqa: F401 (preloaded for the forks)
    from kubernetes import client

    import envgen.k8s.operator  # noqa: F401

    for api in (client.BatchV1Api, client.CoreV1Api, client.CustomObjectsApi):  # lazily imported otherwise: seconds
        assert api.__name__

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # killed replicas are reaped at once
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "start":
            continue
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            log = os.open(Path(logs) / f"replica-{os.getpid()}.log", os.O_WRONLY | os.O_CREAT, 0o644)
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            os.dup2(log, 1)
            os.dup2(log, 2)
            try:
                _replica(kubeconfig, namespace)
            finally:
                os._exit(0)
        print(pid, flush=True)


def injected_summary(plan: FaultPlan) -> str:
    """The injected faults, for a test's failure message."""
    return json.dumps(dict(plan.injected), sort_keys=True)


if __name__ == "__main__":
    _parent(sys.argv[1], sys.argv[2], sys.argv[3])
