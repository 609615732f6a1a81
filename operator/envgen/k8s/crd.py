"""Generate the EnvGenRun, EnvGenCycle and EnvGenExperiment CRDs from the typed models, so schema and models
cannot drift.

``python -m envgen.k8s.crd crds/`` rewrites the committed YAML; a test regenerates it and fails on any change.
The walk turns pydantic's JSON schema into a structural OpenAPI v3 schema: ``$ref`` resolved, ``Optional``
as ``nullable``, every string and list bounded, decimal strings as int-or-string with a pattern, defaults
from the models, and the models' validators (plus immutability) as CEL ``x-kubernetes-validations``.
"""

from __future__ import annotations

import copy
import re
import sys
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from ..experiment.model import KIND as EXPERIMENT_KIND
from ..experiment.model import MAX_EXPERIMENT_NAME, EnvGenExperimentSpec
from ..experiment.model import PLURAL as EXPERIMENTS_PLURAL
from ..experiment.model import SHORT_NAMES as EXPERIMENT_SHORT_NAMES
from ..experiment.status import ExperimentStatus
from ..models import DecimalString
from ..spec import BASE_URL_RE, MAX_NAME_LENGTH, NAME_RE, EnvGenRunSpec, immutable_fields
from . import API_GROUP, API_VERSION, CATEGORY, CYCLES_PLURAL, RUNS_PLURAL
from .cycles import KIND as CYCLE_KIND
from .cycles import CycleSpec, CycleStatus
from .status import RunStatus

Schema = dict[str, Any]

DEFAULT_MAX_LENGTH = 1024
DEFAULT_MAX_ITEMS = 64
DEFAULT_MAX_PROPERTIES = 64
DECIMAL_PATTERN = r"^-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$"
DECIMAL_DESCRIPTION = 'int-or-string: a decimal number written as a string ("3e-4", "0.95") or an integer.'
# The jsonPath of a kind's Succeeded condition (printer columns).
SUCCEEDED = '.status.conditions[?(@.type=="Succeeded")]'


def guarded(fields: tuple[str, ...], expr: str, message: str) -> Schema:
    """A CEL rule that holds vacuously while any field it reads is absent.

    The apiserver evaluates every rule against each literal ``default`` (``{}`` for a defaulted object) without
    filling in nested defaults, and a rule may meet a partial object, so every field a rule reads is guarded.
    """
    guards = " || ".join(f"!has(self.{f})" for f in fields)
    return {"rule": f"{guards} || ({expr})" if fields else expr, "message": message}


# The models' validators, as CEL rules keyed by the schema path they apply to ("" is the spec itself).
SPEC_RULES: dict[str, list[Schema]] = {
    "llm.temperature": [
        guarded((), "double(string(self)) >= 0.0 && double(string(self)) <= 2.0", 'must be between "0" and "2"')
    ],
    "agent": [
        guarded(
            ("numEnvs", "rolloutSteps", "minibatches"),
            "(self.numEnvs * self.rolloutSteps) % self.minibatches == 0",
            "numEnvs*rolloutSteps must be divisible by minibatches",
        )
    ],
}
EXTRA_PATTERNS = {"llm.baseURL": BASE_URL_RE.pattern}


def _decimal_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Dotted alias paths of every DecimalString field under a model."""
    marker = typing.get_args(DecimalString)[1:]
    paths: set[str] = set()
    for name, field in model.model_fields.items():
        alias = field.alias or name
        path = f"{prefix}{alias}"
        if any(m in marker for m in field.metadata):
            paths.add(path)
        items = "[]" if typing.get_origin(field.annotation) is list else ""  # the walker's path of list items
        for arg in (field.annotation, *typing.get_args(field.annotation)):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                paths |= _decimal_paths(arg, f"{path}{items}.")
    return paths


class _Walker:
    """Turns one model's JSON schema into a structural schema."""

    def __init__(
        self,
        model: type[BaseModel],
        *,
        defaults: Any = None,
        rules: dict[str, list[Schema]] | None = None,
        list_maps: dict[str, list[str]] | None = None,
    ) -> None:
        self.root = model.model_json_schema(by_alias=True, mode="validation")
        self.defs: dict[str, Schema] = self.root.get("$defs", {})
        self.defaults = defaults
        self.rules = rules or {}
        self.list_maps = list_maps or {}
        self.decimals = _decimal_paths(model)

    def walk(self) -> Schema:
        return self._node(self.root, "", self.defaults)

    def _resolve(self, node: Schema) -> Schema:
        while "$ref" in node:
            node = {**self.defs[node["$ref"].rsplit("/", 1)[-1]], **{k: v for k, v in node.items() if k != "$ref"}}
        return node

    def _node(self, node: Schema, path: str, default: Any) -> Schema:
        node = self._resolve(node)
        nullable = False
        if "anyOf" in node:
            options = [o for o in node["anyOf"] if o.get("type") != "null"]
            nullable = len(options) < len(node["anyOf"])
            if len(options) != 1:
                raise ValueError(f"{path}: unions are not structural")
            rest = {k: v for k, v in node.items() if k not in ("anyOf", "default", "title")}
            node = {**self._resolve(options[0]), **rest}
        out = self._typed(node, path, default)
        description = node.get("description", "").strip()
        if path in self.decimals:  # kubectl explain shows `<Object>` for any schema without a type
            description = f"{DECIMAL_DESCRIPTION} {description}".strip()
        if description:
            out = {"description": description, **out}
        if nullable:
            out["nullable"] = True
        if path in self.rules:
            out["x-kubernetes-validations"] = self.rules[path]
        return out

    def _typed(self, node: Schema, path: str, default: Any) -> Schema:
        if path in self.decimals:
            out: Schema = {"x-kubernetes-int-or-string": True, "pattern": DECIMAL_PATTERN, "maxLength": 32}
            return self._with_default(out, default)
        kind = node.get("type")
        if kind == "object" or "properties" in node:
            return self._object(node, path, default)
        if kind == "array":
            items = self._node(node["items"], f"{path}[]", None)
            out = {"type": "array", "items": items, "maxItems": node.get("maxItems", DEFAULT_MAX_ITEMS)}
            if "minItems" in node:
                out["minItems"] = node["minItems"]
            if path in self.list_maps:
                out |= {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": self.list_maps[path]}
            return self._with_default(out, default)
        if "const" in node:
            return self._with_default({"type": "string", "enum": [node["const"]]}, default)
        out = {"type": kind} if kind else {}
        if kind is None and "enum" not in node:
            raise ValueError(f"{path}: no type")
        if "enum" in node:
            out = {"type": "string", "enum": list(node["enum"])}
        if out.get("type") == "string" and "enum" not in out:
            out["maxLength"] = node.get("maxLength", DEFAULT_MAX_LENGTH)
            for key in ("minLength", "pattern"):
                if key in node:
                    out[key] = node[key]
            if path in EXTRA_PATTERNS:
                out["pattern"] = EXTRA_PATTERNS[path]
        for src, dst in (("minimum", "minimum"), ("maximum", "maximum"), ("format", "format")):
            if src in node:
                out[dst] = node[src]
        return self._with_default(out, default)

    def _object(self, node: Schema, path: str, default: Any) -> Schema:
        props = node.get("properties")
        if props is None:
            extra = node.get("additionalProperties", True)
            if extra is True or extra == {}:
                return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
            values = self._node(extra, f"{path}{{}}", None)
            out = {"type": "object", "additionalProperties": values, "maxProperties": DEFAULT_MAX_PROPERTIES}
            return self._with_default(out, default)
        sub = default if isinstance(default, dict) else {}
        prefix = f"{path}." if path else ""
        out = {
            "type": "object",
            "properties": {k: self._node(v, f"{prefix}{k}", sub.get(k)) for k, v in props.items()},
        }
        if node.get("required"):
            out["required"] = list(node["required"])
        if isinstance(default, dict) and path:
            out["default"] = {}  # nested defaults fill it in
        return out

    @staticmethod
    def _with_default(out: Schema, default: Any) -> Schema:
        if default is not None:
            out["default"] = default
        return out


def spec_schema() -> Schema:
    """The EnvGenRun ``spec`` schema: the model, its validators as CEL, and immutability of run-shaping fields."""
    defaults = EnvGenRunSpec().model_dump(mode="json", by_alias=True)
    rules = {path: list(r) for path, r in SPEC_RULES.items()}
    for f in immutable_fields():
        rules.setdefault(f, []).append({"rule": "self == oldSelf", "message": f"{f} cannot change once a run exists"})
    return _Walker(EnvGenRunSpec, defaults=defaults, rules=rules).walk()


def run_crd() -> Schema:
    """The EnvGenRun CustomResourceDefinition."""
    columns: list[Schema] = [
        {"name": "Cycle", "type": "integer", "jsonPath": ".status.currentCycle"},
        {"name": "Score", "type": "string", "jsonPath": ".status.score"},
        {"name": "Succeeded", "type": "string", "jsonPath": f"{SUCCEEDED}.status"},
        {"name": "Reason", "type": "string", "jsonPath": f"{SUCCEEDED}.reason"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        {"name": "Designer", "type": "string", "jsonPath": ".spec.designer.type", "priority": 1},
        {"name": "Game", "type": "string", "jsonPath": ".spec.game", "priority": 1},
    ]
    schema = _object(
        "An EnvGen run: an LLM designs training environments for an RL agent, cycle by cycle.",
        spec_schema(),
        _Walker(RunStatus, list_maps={"conditions": ["type"], "skills": ["name"]}).walk(),
        named=(MAX_NAME_LENGTH, "child Jobs are named <run>-c<cycle>-s<seed>-r<attempt>"),
    )
    return _crd("EnvGenRun", RUNS_PLURAL, ["egr"], schema, columns)


def cycle_crd() -> Schema:
    """The EnvGenCycle CustomResourceDefinition (children of a run, one per cycle and one for the final phase)."""
    columns: list[Schema] = [
        {"name": "Run", "type": "string", "jsonPath": ".spec.run"},
        {"name": "Cycle", "type": "integer", "jsonPath": ".spec.cycle"},
        {"name": "Phase", "type": "string", "jsonPath": ".spec.phase"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    schema = _object(
        "One cycle of an EnvGenRun: its design, LLM exchange and per-task metrics.",
        _Walker(CycleSpec).walk(),
        _Walker(CycleStatus, list_maps={"tasks": ["name"]}).walk(),
    )
    return _crd(CYCLE_KIND, CYCLES_PLURAL, ["egc"], schema, columns)


def _template_steps(field: str, default: int) -> str:
    """CEL: a template training field, or its default when the template leaves it out (the template keeps no
    defaults, so that the experiment sees what was written)."""
    t = "self.template"
    present = f"has({t}) && has({t}.training) && has({t}.training.{field})"
    return f"({present} ? {t}.training.{field} : {default})"


def experiment_spec_schema() -> Schema:
    """The EnvGenExperiment ``spec`` schema: the model's validators as CEL rules, and a template that keeps what
    was written (its defaults arrive in each arm's EnvGenRun)."""
    t = EnvGenRunSpec().training
    cycle = (
        f"{_template_steps('designedEnvSteps', t.designed_env_steps)} + {_template_steps('gameSteps', t.game_steps)}"
    )
    owned = " || ".join(f"has(self.{f})" for f in ("seeds", "firstSeed"))
    rules: dict[str, list[Schema]] = {
        "": [
            guarded(
                ("arms", "baseline"),
                "self.arms.exists(a, a.name == self.baseline)",
                "baseline must be the name of one of the arms",
            ),
            guarded(
                ("arms",),
                f"self.arms.all(a, !has(a.training) || a.training.designedEnvSteps + a.training.gameSteps == {cycle})",
                "arms[].training must split the template's steps per cycle (designedEnvSteps + gameSteps equal to "
                "the template's): arms never change the steps they train",
            ),
        ],
        "template": [
            {
                "rule": f"!({owned})",
                "message": "seeds and firstSeed are set by the experiment (spec.seeds, spec.firstSeed)",
            }
        ],
        "arms[]": [
            {
                "rule": "!has(self.designedShare) || !has(self.training)",
                "message": "set designedShare or training, not both",
            }
        ],
        "arms[].designedShare": [
            guarded((), "double(string(self)) >= 0.0 && double(string(self)) <= 1.0", 'must be between "0" and "1"')
        ],
    }
    for path, r in SPEC_RULES.items():
        rules.setdefault(f"template.{path}", []).extend(copy.deepcopy(r))
        if path.startswith("llm."):
            rules.setdefault(f"arms[].{path}", []).extend(copy.deepcopy(r))  # one copy per place: no YAML anchors
    for f in ("template", "arms", "seeds", "firstSeed"):
        rules.setdefault(f, []).append(
            {"rule": "self == oldSelf", "message": f"{f} cannot change once an experiment exists"}
        )
    fields = EnvGenExperimentSpec.model_fields
    defaults = {fields[f].alias or f: fields[f].default for f in ("baseline", "seeds", "first_seed")}
    walker = _Walker(EnvGenExperimentSpec, defaults=defaults, rules=rules, list_maps={"arms": ["name"]})
    walker.decimals.add("arms[].designedShare")  # optional, so _decimal_paths does not see its DecimalString
    return walker.walk()


def experiment_crd() -> Schema:
    """The EnvGenExperiment CustomResourceDefinition: arms x seeds of EnvGenRuns compared with a baseline arm."""
    columns: list[Schema] = [
        {"name": "Arms", "type": "integer", "jsonPath": ".status.armCount"},
        {"name": "Finished", "type": "integer", "jsonPath": ".status.armsFinished"},
        {"name": "Best", "type": "string", "jsonPath": ".status.bestArm"},
        {"name": "Difference", "type": "string", "jsonPath": ".status.bestDifference"},
        {"name": "P", "type": "string", "jsonPath": ".status.bestP"},
        {"name": "Succeeded", "type": "string", "jsonPath": f"{SUCCEEDED}.status"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        {"name": "Baseline", "type": "string", "jsonPath": ".spec.baseline", "priority": 1},
        {"name": "Seeds", "type": "integer", "jsonPath": ".spec.seeds", "priority": 1},
    ]
    schema = _object(
        "An EnvGen experiment: arms x seeds of EnvGenRuns with equal steps, each arm compared with the baseline arm "
        "(Welch's t-test, bootstrap CI, minimum detectable effect, paired by seed).",
        experiment_spec_schema(),
        _Walker(ExperimentStatus, list_maps={"conditions": ["type"], "arms": ["name"]}).walk(),
        named=(MAX_EXPERIMENT_NAME, "its runs are named <experiment>-<arm>"),
    )
    return _crd(EXPERIMENT_KIND, EXPERIMENTS_PLURAL, EXPERIMENT_SHORT_NAMES, schema, columns)


def _object(description: str, spec: Schema, status: Schema, named: tuple[int, str] | None = None) -> Schema:
    """A kind's object schema; ``named`` (most characters, why) makes ``spec`` required and checks the name."""
    schema: Schema = {
        "type": "object",
        "description": description,
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }
    if named is not None:
        most, why = named
        name_rule = guarded(
            ("metadata.name",),
            f"self.metadata.name.matches('{NAME_RE.pattern}') && size(self.metadata.name) <= {most}",
            f"metadata.name must be a DNS-1035 label of at most {most} characters ({why})",
        )
        schema |= {"required": ["spec"], "x-kubernetes-validations": [name_rule]}
    return schema


def _crd(kind: str, plural: str, short: list[str], schema: Schema, columns: list[Schema]) -> Schema:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{API_GROUP}"},
        "spec": {
            "group": API_GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": short,
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": API_VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                }
            ],
        },
    }


# Plain scalars that a YAML 1.2 reader (Go's, in kubectl, Helm and the apiserver) takes for something other than
# a string; PyYAML (YAML 1.1) reads some of them as strings, so it would write them unquoted.
_YAML12_NOT_STRING = re.compile(
    r"""^(?:
        ~|null|Null|NULL|true|True|TRUE|false|False|FALSE
        |[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+
        |[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)
        |y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF
    )$""",
    re.VERBOSE,
)


class _Dumper(yaml.SafeDumper):
    """Quotes every string that a YAML 1.1 or 1.2 reader could read as a number, a bool or null."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if _YAML12_NOT_STRING.match(value) or value == "":
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')
    return dumper.represent_str(value)


_Dumper.add_representer(str, _represent_str)


def dump_yaml(doc: Any) -> str:
    """YAML text that YAML 1.1 and YAML 1.2 readers read as the same values."""
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=120)


def all_crds() -> list[Schema]:
    """Every CRD of the API group."""
    return [run_crd(), cycle_crd(), experiment_crd()]


def crd_files() -> dict[str, str]:
    """File name -> YAML text of every CRD, as committed in ``crds/``."""
    header = "# Generated by `python -m envgen.k8s.crd crds/` from the typed models. Do not edit.\n"
    return {f"{crd['metadata']['name']}.yaml": header + dump_yaml(crd) for crd in all_crds()}


def main(argv: list[str] | None = None) -> None:
    """Write the CRDs into the directory given as the only argument."""
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0] if args else "crds")
    out.mkdir(parents=True, exist_ok=True)
    for name, text in crd_files().items():
        (out / name).write_text(text)


if __name__ == "__main__":
    main()
