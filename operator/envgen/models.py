"""Base classes for every typed document of the project: unknown keys are errors, errors name the field."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel


class StrictModel(BaseModel):
    """snake_case JSON documents (env configs, LLM answers): unknown keys and wrong types are errors."""

    model_config = ConfigDict(extra="forbid", strict=False, validate_default=True, frozen=False)


class CamelModel(BaseModel):
    """Kubernetes-facing and contract documents: camelCase keys, unknown keys are errors."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        validate_default=True,
    )

    def dump(self) -> dict[str, Any]:
        """JSON-ready dict with camelCase keys."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


_DECIMAL_RE = re.compile(r"^-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")


def _decimal_string(value: Any) -> str:
    if isinstance(value, bool):
        raise ValueError('expected a quoted decimal string such as "0.5"')
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        raise ValueError(f'floats are not allowed in the spec (Kubernetes API conventions); quote it: "{value}"')
    if not isinstance(value, str) or not _DECIMAL_RE.match(value.strip()):
        raise ValueError(f'expected a quoted decimal string such as "0.5", got {value!r}')
    try:
        Decimal(value)
    except InvalidOperation as exc:  # pragma: no cover - the regex already guards this
        raise ValueError(f"not a decimal number: {value!r}") from exc
    return value.strip()


DecimalString = Annotated[str, BeforeValidator(_decimal_string)]
"""A number written as a string ("3e-4", "0.95"): the spec carries no floats."""


def as_float(value: str) -> float:
    """Numeric value of a DecimalString."""
    return float(Decimal(value))


def describe_validation_error(exc: ValidationError, root: str = "") -> str:
    """One line per problem: the dotted field path, what was wrong, and what is allowed."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        path = f"{root}.{loc}" if root and loc else (root or loc)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field (remove it or check its spelling)"
        elif err["type"] == "literal_error":
            ctx = err.get("ctx") or {}
            msg = f"must be one of {ctx.get('expected', '')}, got {err.get('input')!r}"
        elif err["type"] == "missing":
            msg = "required field is missing"
        elif err["type"] in _TYPE_NAMES:
            msg = f"must be {_TYPE_NAMES[err['type']]}, got {_describe_input(err.get('input'))}"
        elif err["type"] == "string_pattern_mismatch":
            msg = f"{err.get('input')!r} does not match {(err.get('ctx') or {}).get('pattern')}"
        lines.append(f"{path}: {msg}")
    return "\n".join(lines)


_TYPE_NAMES = {
    "int_type": "an integer",
    "bool_type": "a boolean (true or false)",
    "string_type": "a string",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "list_type": "a list",
}


def _describe_input(value: Any) -> str:
    """What a wrong-typed value was, with the usual fix: YAML reads true/yes/on as booleans, quotes make strings."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()} (YAML reads true/false/yes/no/on/off as booleans)"
    if isinstance(value, str):
        return f"the string {value!r} (remove the quotes for a number or boolean)"
    if isinstance(value, float):
        return f"the float {value} (no floats in the spec; integers, or decimals as quoted strings)"
    if isinstance(value, int):
        return f"the integer {value} (quote it for a string)"
    if value is None:
        return "null"
    return f"a {type(value).__name__}"
