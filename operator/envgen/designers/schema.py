"""The LLM's answer: its typed model, the JSON schema sent to the endpoint, and parsing/validation.

Both the answer models and the schema derive from the env-config models in ``envconfig.py`` (one source of
truth). The schema sent to servers is rewritten for constrained decoding: small integer ranges become ``enum``
lists (llama-cpp-python's grammar ignores minimum/maximum), every object lists all its properties as required
with ``additionalProperties: false`` (OpenAI strict mode), strings carry ``maxLength`` and the environment list
has ``minItems = maxItems = N``. Answers are still validated here, ranges included.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Annotated, Any

from jsonschema import Draft202012Validator
from pydantic import BaseModel, Field, ValidationError, create_model

from ..envconfig import DesignedEnv, check
from ..games import GameName
from ..games import game as game_of
from ..models import StrictModel, describe_validation_error

NAME_MAX = 40
PURPOSE_MAX = 240
MAX_ENUM_RANGE = 32  # integer ranges up to this many values are sent as enum lists
MAX_PROBLEMS = 12  # problems quoted back to the model in a repair turn


@cache
def answer_env_model(name: GameName) -> type[BaseModel]:
    """The model of one environment in the LLM's answer: a name, a purpose and the game's answer fields."""
    g = game_of(name)
    fields: dict[str, Any] = {
        "name": (Annotated[str, Field(min_length=1, max_length=NAME_MAX)], ...),
        "purpose": (Annotated[str, Field(min_length=1, max_length=PURPOSE_MAX)], ...),
        **{n: (g.config_model.model_fields[n].annotation, g.config_model.model_fields[n]) for n in g.answer_fields},
    }
    doc = f"One {g.title} environment as the LLM writes it."
    return create_model(f"{g.title}AnswerEnv", __base__=StrictModel, __doc__=doc, **fields)


def to_designed_env(name: GameName, item: BaseModel) -> DesignedEnv:
    """Convert one validated answer entry to a DesignedEnv."""
    g = game_of(name)
    data = item.model_dump()
    config = g.config_model.model_validate({n: data[n] for n in g.answer_fields})
    return DesignedEnv(name=data["name"].strip(), purpose=data["purpose"].strip(), config=config)


def for_constrained_decoding(schema: dict[str, Any]) -> dict[str, Any]:
    """Rewrite a pydantic JSON schema for grammar-constrained decoding (see the module docstring)."""
    defs = schema.get("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(n) for n in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            return walk(defs[node["$ref"].rsplit("/", 1)[-1]])
        out = {k: walk(v) for k, v in node.items() if k not in ("title", "default", "description", "$defs")}
        lo, hi = out.get("minimum"), out.get("maximum")
        if out.get("type") == "integer" and lo is not None and hi is not None and hi - lo < MAX_ENUM_RANGE:
            out = {"type": "integer", "enum": list(range(int(lo), int(hi) + 1))}
        if out.get("type") == "object" and "properties" in out:
            out["required"] = list(out["properties"])
            out["additionalProperties"] = False
        return out

    result = walk(schema)
    assert isinstance(result, dict)
    return result


def answer_schema(game: GameName, num_envs: int) -> dict[str, Any]:
    """The JSON schema of a whole answer: ``{"environments": [N entries]}``."""
    item = for_constrained_decoding(answer_env_model(game).model_json_schema())
    return {
        "type": "object",
        "properties": {"environments": {"type": "array", "items": item, "minItems": num_envs, "maxItems": num_envs}},
        "required": ["environments"],
        "additionalProperties": False,
    }


_FENCE_RE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)


def extract_json(text: str) -> Any:
    """The JSON value in an answer: the whole text, else a fenced block, else the outermost braces."""
    candidates = [text.strip()]
    candidates += [m.group(1).strip() for m in _FENCE_RE.finditer(text)]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except json.JSONDecodeError:
            continue
    raise ValueError("the answer contains no parsable JSON object")


def parse_answer(
    text: str, finish_reason: str | None, game: GameName, num_envs: int, schema: dict[str, Any]
) -> tuple[list[DesignedEnv], list[str]]:
    """Envs from an answer, or the problems that make it unusable (schema, ranges, check() errors)."""
    if finish_reason == "length":
        return [], ["the answer was cut off at the token limit: write shorter names and purposes"]
    if not text.strip():
        return [], ["the answer was empty"]
    try:
        doc = extract_json(text)
    except ValueError as exc:
        return [], [f"{exc}: reply with one JSON object only"]
    if isinstance(doc, list):
        doc = {"environments": doc}
    problems = [
        f"{'.'.join(str(p) for p in err.absolute_path) or '(top level)'}: {err.message}"
        for err in sorted(Draft202012Validator(schema).iter_errors(doc), key=lambda e: list(e.absolute_path))
    ]
    if problems:
        return [], _cap(problems)
    model = answer_env_model(game)
    envs: list[DesignedEnv] = []
    for i, raw in enumerate(doc["environments"]):
        try:
            envs.append(to_designed_env(game, model.model_validate(raw)))
        except ValidationError as exc:
            problems += describe_validation_error(exc, f"environments.{i}").splitlines()
    for i, env in enumerate(envs):
        problems += [f"environments.{i} ({env.name}): {f.message}" for f in check(env.config) if f.severity == "error"]
    return (envs, []) if not problems else ([], _cap(problems))


def _cap(problems: list[str]) -> list[str]:
    if len(problems) <= MAX_PROBLEMS:
        return problems
    return [*problems[:MAX_PROBLEMS], f"... and {len(problems) - MAX_PROBLEMS} more problems"]
