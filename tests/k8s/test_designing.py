"""The operator's designer sessions: one per run across reconciles (the response-format rung it found is kept),
a new one when the run's llm block changes, closed when the run is deleted or ends and when the operator stops."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import kopf
from llm.stub import StubLLM, completion, crafter_answer, error

from envgen.contracts import DesignRequest
from envgen.designers.factory import DesignerSession
from envgen.k8s import API_GROUP, API_VERSION, RUNS_PLURAL
from envgen.k8s.designing import DesignerSessions, RunDesigner
from envgen.k8s.operator import OperatorConfig, make_registry, make_settings
from envgen.k8s.reconcile import Guards, cleanup, reconcile
from envgen.spec import EnvGenRun, parse_run

from .harness import Cluster, eventually

REJECT = "response_format json_schema is not supported"


class FakeKube:
    ns = "ns"

    def secret_value(self, name: str, key: str) -> str | None:
        return "sk-test"


def run_doc(base_url: str, uid: str = "uid-1", **llm: Any) -> EnvGenRun:
    return parse_run(
        {
            "apiVersion": "envgen.dev/v1alpha1",
            "kind": "EnvGenRun",
            "metadata": {"name": "r", "uid": uid},
            "spec": {
                "designer": {"type": "llm", "critic": False},
                "llm": {"baseURL": base_url, "maxRetries": 0, **llm},
                "envsPerCycle": 2,
            },
        }
    )


def closed(session: DesignerSession | None, sdk: Any) -> bool:
    return session is not None and session.client is None and sdk._client.is_closed


def test_one_session_across_reconciles_keeps_the_rung(stub_llm: StubLLM) -> None:
    stub_llm.add(error(400, REJECT), completion(crafter_answer(2)), completion(crafter_answer(2)))
    sessions = DesignerSessions()
    run = run_doc(stub_llm.base_url)
    first = RunDesigner(run, FakeKube(), sessions, "uid-1")  # type: ignore[arg-type]
    first.design(DesignRequest(game="crafter", cycle=1, num_envs=2))
    session = sessions.held("ns", "r")
    assert session is not None and session.client is not None and session.client.rung == "json_object+schema"
    second = RunDesigner(run, FakeKube(), sessions, "uid-1")  # type: ignore[arg-type]
    design = second.design(DesignRequest(game="crafter", cycle=1, num_envs=2))
    assert sessions.held("ns", "r") is session and second.outcome is not None and second.outcome.available
    assert design.usage.calls == 1 and len(stub_llm.requests) == 3  # no second json_schema rejection
    assert stub_llm.requests[2]["response_format"]["type"] == "json_object"


def test_a_changed_llm_block_or_a_new_run_opens_a_new_session(stub_llm: StubLLM) -> None:
    stub_llm.add(*(completion(crafter_answer(2)) for _ in range(3)))
    sessions = DesignerSessions()
    request = DesignRequest(game="crafter", cycle=1, num_envs=2)
    RunDesigner(run_doc(stub_llm.base_url), FakeKube(), sessions, "uid-1").design(request)  # type: ignore[arg-type]
    old = sessions.held("ns", "r")
    assert old is not None and old.client is not None
    sdk = old.client._sdk
    changed = run_doc(stub_llm.base_url, temperature="0.5")
    RunDesigner(changed, FakeKube(), sessions, "uid-1").design(request)  # type: ignore[arg-type]
    new = sessions.held("ns", "r")
    assert new is not old and closed(old, sdk)
    assert new is not None and new.client is not None and new.client.settings.temperature == 0.5
    sdk = new.client._sdk
    RunDesigner(changed, FakeKube(), sessions, "uid-2").design(request)  # type: ignore[arg-type]
    assert sessions.held("ns", "r") is not new and closed(new, sdk)  # deleted and created again: a new uid
    sessions.close_all()
    assert sessions.held("ns", "r") is None


def llm_run_spec(base_url: str) -> dict[str, Any]:
    return {
        "designer": {"type": "llm", "critic": False},
        "llm": {"baseURL": base_url, "model": "stub", "maxRetries": 0, "timeoutSeconds": 5},
        "cycles": 1,
        "envsPerCycle": 2,
        "maxFailedTasks": 3,
        "training": {"designedEnvSteps": 64, "gameSteps": 64, "finalSteps": 64, "evalEpisodes": 1, "evalRuns": 1},
        "resources": {"image": "envgen-trainer:test", "ttlSecondsAfterFinished": 60},
    }


async def test_reconciles_share_the_session_and_deletion_closes_it(cluster: Cluster, stub_llm: StubLLM) -> None:
    stub_llm.add(error(400, REJECT), completion("not json"), completion("still not json"))
    stub_llm.add(completion(crafter_answer(2)))
    guards, sessions = Guards(), DesignerSessions()
    await cluster.create_run("d1", llm_run_spec(stub_llm.base_url))
    ns = cluster.namespace
    retry = await asyncio.to_thread(reconcile, cluster.api, ns, "d1", guards, sessions)
    assert retry == "the design failed"  # the invalid answer and its repair: one design failure
    session = sessions.held(ns, "d1")
    assert session is not None and session.client is not None and session.client.rung == "json_object+schema"
    sdk = session.client._sdk
    assert await asyncio.to_thread(reconcile, cluster.api, ns, "d1", guards, sessions) is None
    assert sessions.held(ns, "d1") is session and len(stub_llm.requests) == 4
    assert stub_llm.requests[3]["response_format"]["type"] == "json_object"  # the rung found by the first reconcile
    assert any(c["spec"].get("design") for c in (await cluster.cycles("d1")).values())  # cycle 1 is designed
    run = await cluster.run("d1")
    assert run is not None
    await asyncio.to_thread(cleanup, cluster.api, ns, "d1", guards, sessions)
    assert sessions.held(ns, "d1") is None and closed(session, sdk)


async def test_an_ended_run_closes_its_session(cluster: Cluster, stub_llm: StubLLM) -> None:
    stub_llm.add(completion(crafter_answer(2)))
    guards, sessions = Guards(), DesignerSessions()
    await cluster.create_run("d2", llm_run_spec(stub_llm.base_url))
    ns = cluster.namespace
    await asyncio.to_thread(reconcile, cluster.api, ns, "d2", guards, sessions)
    session = sessions.held(ns, "d2")
    assert session is not None and session.client is not None
    sdk = session.client._sdk
    run = await cluster.run("d2")
    assert run is not None
    ended = {
        "type": "Succeeded",
        "status": "True",
        "reason": "AllCyclesCompleted",
        "message": "done",
        "lastTransitionTime": "2025-01-01T00:00:00Z",
    }
    status = {"conditions": [ended], "observedGeneration": run["metadata"]["generation"]}
    await asyncio.to_thread(
        cluster.custom.patch_namespaced_custom_object_status,
        API_GROUP,
        API_VERSION,
        ns,
        RUNS_PLURAL,
        "d2",
        {"status": status},
    )
    await asyncio.to_thread(reconcile, cluster.api, ns, "d2", guards, sessions)
    assert sessions.held(ns, "d2") is None and closed(session, sdk)


async def test_the_operator_keeps_one_session_per_run_and_closes_them_when_it_stops(
    cluster: Cluster, stub_llm: StubLLM
) -> None:
    stub_llm.add(error(400, REJECT), completion("not json"), completion("still not json"))
    stub_llm.add(completion(crafter_answer(2)))
    cfg = OperatorConfig(
        api=cluster.api, interval_seconds=0.2, retry_delay_seconds=0.2, watch_server_timeout_seconds=5, namespaced=True
    )
    stop = threading.Event()

    def main() -> None:
        operator = kopf.operator(
            registry=make_registry(cfg),
            settings=make_settings(cfg),
            standalone=True,
            namespaces=[cluster.namespace],
            stop_flag=stop,
        )
        asyncio.run(operator)

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    try:
        await cluster.create_run("d3", llm_run_spec(stub_llm.base_url))

        async def designed() -> bool:
            return any(c["spec"].get("design") for c in (await cluster.cycles("d3")).values())

        await eventually(designed, timeout=30, what="cycle 1 designed on the second try")
        session = cfg.sessions.held(cluster.namespace, "d3")
        assert session is not None and session.client is not None
        sdk = session.client._sdk
        assert [r["response_format"]["type"] for r in stub_llm.requests] == [
            "json_schema",
            "json_object",
            "json_object",
            "json_object",  # the second reconcile's design starts from the rung the first one found
        ]
    finally:
        stop.set()
        await asyncio.to_thread(thread.join, 30)
    assert not thread.is_alive() and cfg.sessions.held(cluster.namespace, "d3") is None and closed(session, sdk)
