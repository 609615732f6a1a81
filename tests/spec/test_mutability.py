"""One mutability rule: the spec's definition, the CRD's immutability CEL rules and the local resume check agree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from envgen.k8s.crd import run_crd
from envgen.local.runner import prepare_run_dir
from envgen.spec import MUTABLE_FIELDS, EnvGenRunSpec, SpecError, immutable_fields, parse_run

# A valid value different from the default for every top-level spec field (camelCase). A new field fails
# test_every_field_has_a_changed_value until it gets one here, and so a place in MUTABLE_FIELDS or not.
CHANGED: dict[str, Any] = {
    "game": "heist",
    "designer": {"type": "heuristic"},
    "llm": {"model": "another-model"},
    "envsPerCycle": 2,
    "cycles": 7,
    "training": {"gameSteps": 1000},
    "seeds": 2,
    "firstSeed": 3,
    "agent": {"epochs": 4},
    "objective": {"goalScore": "40"},
    "maxFailedTasks": 9,
    "suspend": True,
    "activeDeadlineSeconds": 3600,
    "resources": {"image": "registry.example/envgen-trainer:2"},
    "checkpoints": {"size": "9Gi"},
    "queueName": "team-a",
}


def aliases(names: frozenset[str]) -> set[str]:
    return {EnvGenRunSpec.model_fields[n].alias or n for n in names}


def make_run(spec: dict[str, Any]) -> Any:
    return parse_run(
        {"apiVersion": "envgen.dev/v1alpha1", "kind": "EnvGenRun", "metadata": {"name": "m"}, "spec": spec}
    )


def test_definition_names_real_fields() -> None:
    assert set(EnvGenRunSpec.model_fields) >= MUTABLE_FIELDS
    assert set(immutable_fields()) == {f.alias or n for n, f in EnvGenRunSpec.model_fields.items()} - aliases(
        MUTABLE_FIELDS
    )
    assert {"game", "designer", "training", "agent", "seeds", "firstSeed", "envsPerCycle"} <= set(immutable_fields())
    assert {"cycles", "llm", "maxFailedTasks", "suspend", "activeDeadlineSeconds", "objective"} <= aliases(
        MUTABLE_FIELDS
    )


def test_every_field_has_a_changed_value() -> None:
    assert set(CHANGED) == {f.alias or n for n, f in EnvGenRunSpec.model_fields.items()}
    defaults = EnvGenRunSpec().model_dump(mode="json", by_alias=True)
    spec = make_run(CHANGED).spec.model_dump(mode="json", by_alias=True)
    assert [k for k in CHANGED if spec[k] == defaults[k]] == []


def test_crd_rules_match_the_definition() -> None:
    props = run_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    frozen = {
        name
        for name, prop in props.items()
        if any(r["rule"] == "self == oldSelf" for r in prop.get("x-kubernetes-validations", []))
    }
    assert frozen == set(immutable_fields())
    assert set(props) - frozen == aliases(MUTABLE_FIELDS)


def test_local_resume_check_matches_the_definition(tmp_path: Path) -> None:
    prepare_run_dir(make_run({}), tmp_path)
    mutable = {k: v for k, v in CHANGED.items() if k in aliases(MUTABLE_FIELDS)}
    prepare_run_dir(make_run(mutable), tmp_path)  # accepted: only mutable fields changed
    prepare_run_dir(make_run({}), tmp_path)
    with pytest.raises(SpecError) as refused:
        prepare_run_dir(make_run(CHANGED), tmp_path)
    changed = str(refused.value).split("changed: ", 1)[1].split(")", 1)[0].split(", ")
    assert set(changed) == set(immutable_fields())
