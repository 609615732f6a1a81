"""A small stand-in for the apiserver's CRD validation: defaulting, structural schema checks, CEL rules.

Unknown fields are rejected, as ``kubectl apply`` (strict server-side field validation) does. CEL rules run
through cel-python; transition rules (those that use ``oldSelf``) only when an old object is given.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import celpy

Schema = dict[str, Any]
_ENV = celpy.Environment()


def apply_defaults(schema: Schema, value: Any) -> Any:
    """The value with the schema's defaults filled in (nested defaults of defaulted objects too)."""
    if isinstance(value, dict) and "properties" in schema:
        for key, sub in schema["properties"].items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                value[key] = apply_defaults(sub, value[key])
    elif isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
        for key in value:
            value[key] = apply_defaults(schema["additionalProperties"], value[key])
    elif isinstance(value, list) and "items" in schema:
        return [apply_defaults(schema["items"], v) for v in value]
    return value


def validate(schema: Schema, value: Any, old: Any = None, path: str = "") -> list[str]:
    """Every violation, as ``path: message``."""
    if value is None:
        return [] if schema.get("nullable") else [f"{path}: must not be null"]
    errors = _type_errors(schema, value, path)
    if errors:
        return errors
    if isinstance(value, dict):
        errors += _object_errors(schema, value, old if isinstance(old, dict) else None, path)
    elif isinstance(value, list):
        if len(value) > schema.get("maxItems", len(value)):
            errors.append(f"{path}: must have at most {schema['maxItems']} items")
        errors += [e for i, v in enumerate(value) for e in validate(schema["items"], v, None, f"{path}[{i}]")]
    for rule in schema.get("x-kubernetes-validations", []):
        if "oldSelf" in rule["rule"] and old is None:
            continue
        env = {"self": celpy.json_to_cel(value)}
        if old is not None:
            env["oldSelf"] = celpy.json_to_cel(old)
        if not _ENV.program(_ENV.compile(rule["rule"])).evaluate(env):
            errors.append(f"{path}: {rule['message']}")
    return errors


def _type_errors(schema: Schema, value: Any, path: str) -> list[str]:
    if schema.get("x-kubernetes-int-or-string"):
        if isinstance(value, bool) or not isinstance(value, int | str):
            return [f"{path}: must be an integer or a string"]
        return _string_errors(schema, value, path) if isinstance(value, str) else []
    kind = schema.get("type")
    ok = {
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        None: True,
    }[kind]
    if not ok:
        return [f"{path}: must be of type {kind}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{path}: must be one of {schema['enum']}"]
    if kind == "string":
        return _string_errors(schema, value, path)
    if kind == "integer":
        if "minimum" in schema and value < schema["minimum"]:
            return [f"{path}: must be >= {schema['minimum']}"]
        if "maximum" in schema and value > schema["maximum"]:
            return [f"{path}: must be <= {schema['maximum']}"]
    return []


def _string_errors(schema: Schema, value: str, path: str) -> list[str]:
    if len(value) > schema.get("maxLength", len(value)):
        return [f"{path}: may not be longer than {schema['maxLength']}"]
    if len(value) < schema.get("minLength", 0):
        return [f"{path}: must be at least {schema['minLength']} characters"]
    if "pattern" in schema and not re.search(schema["pattern"], value):
        return [f"{path}: must match {schema['pattern']}"]
    return []


def _object_errors(schema: Schema, value: dict[str, Any], old: dict[str, Any] | None, path: str) -> list[str]:
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    errors = [f"{path}.{k}: required" for k in schema.get("required", []) if k not in value]
    props = schema.get("properties")
    if props is None:
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            if len(value) > schema.get("maxProperties", len(value)):
                errors.append(f"{path}: must have at most {schema['maxProperties']} properties")
            errors += [e for k, v in value.items() for e in validate(extra, v, None, f"{path}.{k}")]
        return errors
    for key, item in value.items():
        if key not in props:
            errors.append(f'{path}: unknown field "{key}"')
            continue
        errors += validate(props[key], item, (old or {}).get(key), f"{path}.{key}")
    return errors


def admit(crd: Schema, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    """What the apiserver would say about creating (or updating from ``old``) an object of this CRD."""
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    new = apply_defaults(schema, copy.deepcopy(obj))
    previous = apply_defaults(schema, copy.deepcopy(old)) if old is not None else None
    body = {k: v for k, v in new.items() if k != "metadata"}
    errors = validate({**schema, "x-kubernetes-validations": []}, body, previous, "")
    for rule in schema.get("x-kubernetes-validations", []):
        if not _ENV.program(_ENV.compile(rule["rule"])).evaluate({"self": celpy.json_to_cel(new)}):
            errors.append(rule["message"])
    return errors
