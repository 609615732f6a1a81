"""``envgen explain FIELD``: a field's description, type, default and allowed values, as ``kubectl explain`` shows.

The text comes from the generated CRD schema, which carries the models' field descriptions, so the two agree.
"""

from __future__ import annotations

import difflib
from typing import Any

from .k8s.crd import experiment_crd, run_crd

Schema = dict[str, Any]
ROOTS = ("apiVersion", "kind", "metadata", "spec", "status")


class UnknownFieldError(KeyError):
    """No such field; ``str()`` says which part of the path is unknown and what exists there."""

    def __str__(self) -> str:
        return str(self.args[0])


EXPERIMENT_PREFIXES = ("envgenexperiments", "envgenexperiment", "egx")


def _root(experiment: bool = False) -> Schema:
    schema: Schema = (experiment_crd() if experiment else run_crd())["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def _type(node: Schema) -> str:
    if node.get("x-kubernetes-int-or-string"):
        return "int-or-string"
    kind = node.get("type", "object")
    if kind == "array":
        return f"[]{_type(node.get('items', {}))}"
    if kind == "object" and "additionalProperties" in node:
        return f"map[string]{_type(node['additionalProperties'])}"
    return str(kind)


def _allowed(node: Schema) -> list[str]:
    rules = []
    if "enum" in node:
        rules.append("one of " + ", ".join(str(v) for v in node["enum"]))
    if "minimum" in node and "maximum" in node:
        rules.append(f"from {node['minimum']} to {node['maximum']}")
    elif "minimum" in node:
        rules.append(f"at least {node['minimum']}")
    elif "maximum" in node:
        rules.append(f"at most {node['maximum']}")
    if "pattern" in node:
        rules.append(f"matching {node['pattern']}")
    if "maxLength" in node and "enum" not in node:
        rules.append(f"at most {node['maxLength']} characters")
    if "maxItems" in node:
        rules.append(f"at most {node['maxItems']} items")
    if "maxProperties" in node:
        rules.append(f"at most {node['maxProperties']} entries")
    rules += [rule["message"] for rule in node.get("x-kubernetes-validations", [])]
    return rules


def lookup(path: str) -> tuple[str, Schema]:
    """The full dotted path and schema node of a field (``spec.`` may be left out; ``envgenruns.`` too; an
    EnvGenExperiment field starts with ``envgenexperiments.`` or ``egx.``)."""
    parts = [p for p in path.strip().split(".") if p]
    experiment = bool(parts) and parts[0] in EXPERIMENT_PREFIXES
    if parts and parts[0] in ("envgenruns", "envgenrun", "egr", *EXPERIMENT_PREFIXES):
        parts = parts[1:]
    if parts and parts[0] not in ROOTS:
        parts = ["spec", *parts]
    node = _root(experiment)
    for i, part in enumerate(parts):
        props: Schema = node.get("properties", {})
        if node.get("type") == "array":
            props = node.get("items", {}).get("properties", {})
        if part not in props:
            where = ".".join(parts[:i]) or "the document"
            close = difflib.get_close_matches(part, props, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            known = ", ".join(props) or "nothing (it has no fields)"
            raise UnknownFieldError(f"{where} has no field {part!r}{hint}; its fields: {known}")
        node = props[part]
    return ".".join(parts), node


def explain(path: str) -> str:
    """What ``envgen explain`` prints for a field."""
    full, node = lookup(path)
    lines = [f"FIELD: {full} <{_type(node)}>", ""]
    if node.get("description"):
        lines += ["DESCRIPTION:", f"    {node['description']}"]
    if "default" in node:
        lines.append(f"DEFAULT: {node['default']!r}")
    if node.get("nullable"):
        lines.append("OPTIONAL: may be left unset")
    allowed = _allowed(node)
    if allowed:
        lines.append("ALLOWED: " + "; ".join(allowed))
    props = node.get("properties") or (node.get("items", {}).get("properties") if node.get("type") == "array" else None)
    if props:
        lines += ["", "FIELDS:"]
        required = set(node.get("required", []))
        for name, sub in props.items():
            mark = " (required)" if name in required else ""
            lines.append(f"  {name} <{_type(sub)}>{mark}")
            if sub.get("description"):
                lines.append(f"    {sub['description']}")
    return "\n".join(lines)
