"""The CRDs: generated from the models without drift, accepting and rejecting what the models do, CEL rules."""

from __future__ import annotations

import copy
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel
from ruamel.yaml import YAML

from envgen.k8s.crd import crd_files, cycle_crd, dump_yaml, run_crd
from envgen.spec import EnvGenRunSpec, SpecError, parse_run

from .schema_check import admit, validate

ROOT = Path(__file__).resolve().parents[2]


def test_committed_crds_match_the_models() -> None:
    for name, text in crd_files().items():
        committed = ROOT / "crds" / name
        assert committed.exists(), f"missing {committed}: run `python -m envgen.k8s.crd crds/`"
        regenerate = "run `python -m envgen.k8s.crd crds/`"
        assert committed.read_text() == text, f"{committed} drifted from the models: {regenerate}"


def run_doc(name: str = "demo", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "envgen.dev/v1alpha1", "kind": "EnvGenRun", "metadata": {"name": name}, "spec": spec}


EXAMPLE = yaml.safe_load((ROOT / "examples" / "run.yaml").read_text())

CASES: list[tuple[str, dict[str, Any]]] = [
    ("minimal", run_doc()),
    ("example", EXAMPLE),
    ("integer temperature", run_doc(llm={"temperature": 1})),
    ("decimal strings", run_doc(llm={"temperature": "0.7"}, agent={"learningRate": "2.5e-4"})),
    ("goal", run_doc(objective={"goalScore": "15"})),
    (
        "placement",
        run_doc(
            resources={
                "limits": {"nvidia.com/gpu": "1"},
                "nodeSelector": {"gpu": "a100"},
                "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
            }
        ),
    ),
    (
        "secret key",
        run_doc(llm={"baseURL": "https://llm.example/v1", "apiKey": {"secretKeyRef": {"name": "llm", "key": "token"}}}),
    ),
    ("float temperature", run_doc(llm={"temperature": 0.5})),
    ("temperature out of range", run_doc(llm={"temperature": "2.5"})),
    ("not a decimal", run_doc(agent={"gamma": "high"})),
    ("unknown game", run_doc(game="minecraft")),
    ("unknown field", run_doc(cycle=3)),
    ("unknown nested field", run_doc(training={"steps": 3})),
    ("too many cycles", run_doc(cycles=51)),
    ("zero seeds", run_doc(seeds=0)),
    ("batch not divisible", run_doc(agent={"numEnvs": 3, "rolloutSteps": 10, "minibatches": 4})),
    ("ftp endpoint", run_doc(llm={"baseURL": "ftp://llm"})),
    ("long image", run_doc(resources={"image": "x" * 513})),
    ("too many tolerations", run_doc(resources={"tolerations": [{"key": "k"}] * 33})),
    ("bad toleration effect", run_doc(resources={"tolerations": [{"effect": "Sometimes"}]})),
    ("uppercase name", run_doc(name="Demo")),
    ("long name", run_doc(name="a" * 41)),
    ("bad designer", run_doc(designer={"type": "gpt"})),
    ("short deadline", run_doc(resources={"jobActiveDeadlineSeconds": 10})),
]


def model_accepts(doc: dict[str, Any]) -> bool:
    try:
        parse_run(copy.deepcopy(doc))
    except SpecError:
        return False
    return True


@pytest.mark.parametrize(("label", "doc"), CASES, ids=[c[0] for c in CASES])
def test_schema_and_model_agree(label: str, doc: dict[str, Any]) -> None:
    errors = admit(run_crd(), doc)
    assert model_accepts(doc) == (not errors), f"{label}: model and CRD disagree; CRD says {errors}"


def test_rejections_name_the_field_and_the_rule() -> None:
    assert admit(run_crd(), run_doc(agent={"numEnvs": 3, "rolloutSteps": 10, "minibatches": 4})) == [
        ".spec.agent: numEnvs*rolloutSteps must be divisible by minibatches"
    ]
    errors = admit(run_crd(), run_doc(llm={"temperature": "2.5"}))
    assert errors == ['.spec.llm.temperature: must be between "0" and "2"']
    assert "metadata.name must be a DNS-1035 label" in admit(run_crd(), run_doc(name="Bad_Name"))[0]


@pytest.mark.parametrize(
    ("change", "allowed"),
    [
        ({"game": "heist"}, False),
        ({"designer": {"type": "none"}}, False),
        ({"seeds": 2}, False),
        ({"training": {"gameSteps": 1}}, False),
        ({"agent": {"epochs": 4}}, False),
        ({"checkpoints": {"claimName": "other"}}, False),
        ({"suspend": True}, True),
        ({"cycles": 6}, True),
        ({"maxFailedTasks": 5}, True),
        ({"activeDeadlineSeconds": 3600}, True),
        ({"llm": {"baseURL": "http://other:8080/v1"}}, True),
    ],
)
def test_immutability_transition_rules(change: dict[str, Any], allowed: bool) -> None:
    old = run_doc(cycles=2, designer={"type": "heuristic"})
    new = run_doc(**{**old["spec"], **change})
    errors = admit(run_crd(), new, old=old)
    assert (not errors) == allowed, errors
    if not allowed:
        assert errors == [f".spec.{next(iter(change))}: {next(iter(change))} cannot change once a run exists"]


def test_status_printer_columns_and_names() -> None:
    crd = run_crd()
    names = crd["spec"]["names"]
    assert names["shortNames"] == ["egr"] and names["categories"] == ["envgen"]
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c for c in version["additionalPrinterColumns"]}
    assert list(columns) == ["Cycle", "Score", "Succeeded", "Reason", "Age", "Designer", "Game"]
    assert columns["Succeeded"]["jsonPath"] == '.status.conditions[?(@.type=="Succeeded")].status'
    assert columns["Designer"]["priority"] == 1 and columns["Game"]["priority"] == 1
    conditions = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map" and conditions["maxItems"] == 16


TRICKY = [
    "3e-4",
    "1e3",
    "1.",
    ".5",
    "+1",
    "-2",
    "0x1F",
    "0o17",
    "1_000",
    "1:20",
    "-.inf",
    ".NaN",
    "yes",
    "No",
    "on",
    "OFF",
    "y",
    "null",
    "~",
    "true",
    "False",
    "",
    "0",
    "2.5e-4",
    "5Gi",
    "cpu",
    "^-?\\d+$",
]


def _readers() -> list[tuple[str, Any]]:
    yaml12 = YAML(typ="safe", pure=True)  # YAML 1.2, as Go's reader in kubectl, Helm and the apiserver
    return [("YAML 1.1 (PyYAML)", yaml.safe_load), ("YAML 1.2 (ruamel.yaml)", yaml12.load)]


@pytest.mark.parametrize("value", TRICKY)
def test_every_string_reads_back_as_the_same_string(value: str) -> None:
    text = dump_yaml({"default": value, "items": [value]})
    for label, load in _readers():
        assert load(text) == {"default": value, "items": [value]}, f"{label} misreads {text!r}"


def test_committed_crds_read_the_same_in_yaml_1_1_and_1_2() -> None:
    generated = {"envgenruns.envgen.dev.yaml": run_crd(), "envgencycles.envgen.dev.yaml": cycle_crd()}
    for name, expected in generated.items():
        text = (ROOT / "crds" / name).read_text()
        for label, load in _readers():
            assert load(text) == expected, f"{label} reads crds/{name} differently from the generator"
        assert (ROOT / "charts" / "envgen-operator" / "crds" / name).read_text() == text


def _field_descriptions(model: type[BaseModel], schema: dict[str, Any], path: str) -> list[tuple[str, str, str]]:
    """(path, model description, CRD description) for every described field under a model."""
    out = []
    for name, info in model.model_fields.items():
        key = info.alias or name
        prop = schema["properties"][key]
        if info.description:
            out.append((f"{path}.{key}", info.description.strip(), prop.get("description", "")))
        for arg in (info.annotation, *typing.get_args(info.annotation)):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                out += _field_descriptions(arg, prop.get("items", prop), f"{path}.{key}")
    return out


def test_field_descriptions_reach_the_crd() -> None:
    spec = run_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    for path, described, shown in _field_descriptions(EnvGenRunSpec, spec, "spec"):
        assert described in shown, f"{path}: CRD description {shown!r} lacks the model's {described!r}"
    learning_rate = spec["properties"]["agent"]["properties"]["learningRate"]
    assert learning_rate["description"].startswith("int-or-string: a decimal number")


def _rules(schema: dict[str, Any]) -> list[str]:
    found = [r["rule"] for r in schema.get("x-kubernetes-validations", [])]
    for sub in (schema.get("properties") or {}).values():
        found += _rules(sub)
    if isinstance(schema.get("items"), dict):
        found += _rules(schema["items"])
    return found


def test_every_rule_holds_on_the_literal_defaults() -> None:
    """The apiserver evaluates each rule on each `default` as written (nested defaults not filled in)."""
    schema = run_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]

    def visit(node: dict[str, Any], path: str) -> None:
        if "default" in node:
            assert validate(node, node["default"], None, path) == [], path
        for key, sub in (node.get("properties") or {}).items():
            visit(sub, f"{path}.{key}")

    visit(schema, "")
    assert all("self.metadata" not in r or "has(self.metadata.name)" in r for r in _rules(schema))
