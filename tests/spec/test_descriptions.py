"""Every spec field is documented once, in the models: the CRD carries it and ``envgen explain`` prints it."""

from __future__ import annotations

import re
import typing
from collections.abc import Iterator

import pytest
from pydantic import BaseModel

from envgen.cli import EXIT_INVALID, main
from envgen.explain import UnknownFieldError, explain, lookup
from envgen.k8s.crd import run_crd
from envgen.spec import EnvGenRun, EnvGenRunSpec


def models(model: type[BaseModel], seen: set[type[BaseModel]] | None = None) -> Iterator[type[BaseModel]]:
    """A model and every model nested in its fields."""
    seen = set() if seen is None else seen
    if model in seen:
        return
    seen.add(model)
    yield model
    for field in model.model_fields.values():
        stack = [field.annotation]
        while stack:
            arg = stack.pop()
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                yield from models(arg, seen)
            stack += typing.get_args(arg)


def spec_paths(model: type[BaseModel] = EnvGenRunSpec, prefix: str = "spec") -> Iterator[tuple[str, str]]:
    """(dotted camelCase path, description) of every field under the spec."""
    for name, field in model.model_fields.items():
        path = f"{prefix}.{field.alias or name}"
        yield path, field.description or ""
        for arg in (field.annotation, *typing.get_args(field.annotation)):
            for inner in (arg, *typing.get_args(arg)):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    yield from spec_paths(inner, path)


def test_every_field_has_a_one_line_description() -> None:
    missing = [
        f"{m.__name__}.{name}"
        for m in models(EnvGenRun)
        for name, field in m.model_fields.items()
        if not (field.description or "").strip() or "\n" in (field.description or "")
    ]
    assert missing == []
    assert len(list(spec_paths())) > 60


def test_the_crd_carries_every_description() -> None:
    root = run_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, description in spec_paths():
        node = root
        for part in path.split("."):
            node = node["properties"] if node.get("type") != "array" else node["items"]["properties"]
            node = node[part]
        assert description in node.get("description", ""), path


@pytest.mark.parametrize(("path", "description"), list(spec_paths()), ids=lambda v: v if "." in v else "")
def test_explain_prints_the_description(path: str, description: str) -> None:
    text = explain(path)
    assert text.startswith(f"FIELD: {path} <")
    assert " ".join(description.split()) in " ".join(text.split())


def test_explain_shows_type_default_and_allowed_values() -> None:
    text = explain("spec.agent.learningRate")
    assert "<int-or-string>" in text and "DEFAULT: '3e-4'" in text and "Adam learning rate" in text
    cycles = explain("cycles")  # spec. may be left out
    assert cycles.startswith("FIELD: spec.cycles <integer>") and "DEFAULT: 4" in cycles and "from 1 to 50" in cycles
    assert "one of crafter, heist" in explain("envgenruns.spec.game")
    assert "cannot change once a run exists" in explain("spec.agent")
    assert "tolerationSeconds <integer>" in explain("spec.resources.tolerations")


def test_explain_names_the_unknown_part(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(
        UnknownFieldError, match=re.escape("spec.agent has no field 'learningrate' (did you mean learningRate")
    ):
        lookup("spec.agent.learningrate")
    assert main(["explain", "spec.trainig.gameSteps"]) == EXIT_INVALID
    assert "did you mean training" in capsys.readouterr().err
    assert main(["explain", "spec.envsPerCycle"]) == 0
    assert "Environments designed per cycle" in capsys.readouterr().out
