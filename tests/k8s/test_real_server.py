"""What only a real API server checks: the CRDs install, defaults and CEL rules as Go reads them, kubectl explain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from spec.corpus import committed

from envgen.k8s import RUNS_PLURAL
from envgen.k8s.crd import DECIMAL_DESCRIPTION

from .conftest import RealServer
from .harness import Cluster, refusals
from .test_kubectl import kubectl, kubectl_binary

pytestmark = pytest.mark.real_server


def test_the_generated_crds_are_established(real_server: RealServer) -> None:
    ext = client.ApiextensionsV1Api(real_server.api)
    for name in ("envgenruns.envgen.dev", "envgencycles.envgen.dev"):
        conds = {c.type: c.status for c in ext.read_custom_resource_definition(name).status.conditions}
        assert conds.get("Established") == "True" and conds.get("NamesAccepted") == "True", conds


async def test_defaults_arrive_as_the_models_strings(real_cluster: Cluster) -> None:
    created = await real_cluster.create_run("defaults", {})
    agent, llm = created["spec"]["agent"], created["spec"]["llm"]
    assert agent["learningRate"] == "3e-4" and agent["gamma"] == "0.95" and llm["temperature"] == "0"
    assert agent["numEnvs"] == 8 and created["spec"]["resources"]["requests"] == {"cpu": "2", "memory": "4Gi"}


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        (
            {"agent": {"numEnvs": 3, "rolloutSteps": 10, "minibatches": 4}},
            "spec.agent",
            "numEnvs*rolloutSteps must be divisible by minibatches",
        ),
        ({"llm": {"temperature": "2.5"}}, "spec.llm.temperature", 'must be between "0" and "2"'),
        ({"agent": {"learningRate": 0.001}}, "spec.agent.learningRate", "must be of type integer,string"),
        ({"cycles": 51}, "spec.cycles", "less than or equal to 50"),
    ],
)
async def test_the_apiserver_refuses_what_the_models_refuse(
    real_cluster: Cluster, spec: dict, field: str, message: str
) -> None:
    with pytest.raises(ApiException) as refused:
        await real_cluster.create_run("bad", spec)
    assert refused.value.status == 422
    said = json.loads(refused.value.body)["message"]
    assert field in said, said
    assert message in said, said


async def test_immutable_fields_cannot_change(real_cluster: Cluster) -> None:
    await real_cluster.create_run("frozen", {"designer": {"type": "heuristic"}})
    with pytest.raises(ApiException) as refused:
        await real_cluster.patch_run("frozen", {"spec": {"game": "heist"}})
    assert refused.value.status == 422 and "game cannot change once a run exists" in str(refused.value.body)
    await real_cluster.patch_run("frozen", {"spec": {"cycles": 6}})


@pytest.mark.skipif(kubectl_binary() is None, reason="kubectl is absent (scripts/install_k8s_tools.sh installs it)")
async def test_kubectl_explain_describes_int_or_string_fields(real_cluster: Cluster, tmp_path: Path) -> None:
    text = await kubectl(real_cluster, tmp_path, "explain", "envgenruns.spec.agent.learningRate")
    assert "int-or-string: a decimal number" in " ".join(text.split())
    fields = " ".join((await kubectl(real_cluster, tmp_path, "explain", "envgenruns.spec.agent")).split())
    assert f"gamma <Object> {DECIMAL_DESCRIPTION}" in fields


async def test_the_apiserver_refuses_the_invalid_corpus(real_cluster: Cluster) -> None:
    """Every schema-level case of the invalid-input corpus is refused at admission, naming its field."""
    cases = [c for c in committed() if c.refused_by != "file"]
    assert len(cases) >= 40
    accepted, unnamed = await refusals(real_cluster, RUNS_PLURAL, cases)
    assert not accepted, f"the API server accepted {accepted}"
    assert not unnamed, unnamed
