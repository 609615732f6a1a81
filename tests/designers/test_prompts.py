"""Prompts and answer schema: one source of truth with the env-config models, the paper's structure."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

from envgen.achievements import ACHIEVEMENTS
from envgen.contracts import ChatMessage, CycleDesign, CycleFeedback, CycleHistory, DesignRequest, SkillStat
from envgen.designers.prompts import (
    _values,
    build_chat,
    env_json,
    initial_prompt,
    settings_text,
    success_table,
)
from envgen.designers.schema import answer_schema, parse_answer
from envgen.envconfig import CrafterEnvironmentSettings, CrafterInventorySettings
from envgen.games import CRAFTER, HEIST
from envgen.games.crafter import PRACTICE as CRAFTER_PRACTICE
from envgen.games.heist import LADDER as HEIST_LADDER


def test_every_setting_is_described_and_offered() -> None:
    fields = set(CrafterEnvironmentSettings.model_fields) | set(CrafterInventorySettings.model_fields)
    assert set(CRAFTER.setting_text) == fields | set(CRAFTER.answer_fields)
    assert set(HEIST.setting_text) == set(HEIST.answer_fields)
    text = settings_text("crafter")
    assert all(f"- {name} (" in text for name in fields)
    assert '- target_biome (one of "natural", "grassland", "mountain", "beaches")' in text
    assert "- spawn_zombies (an integer 0-9)" in text and "- iron_sword (an integer 0-1)" in text
    assert "- maze_size (one of 5, 7, 9" in settings_text("heist")


def test_schema_sends_ranges_as_enums_and_bounds_strings_and_arrays() -> None:
    schema = answer_schema("crafter", 3)
    envs = schema["properties"]["environments"]
    assert envs["minItems"] == envs["maxItems"] == 3
    item = envs["items"]
    assert item["properties"]["name"]["maxLength"] == 40 and item["properties"]["purpose"]["maxLength"] == 240
    inv = item["properties"]["inventory_settings"]
    assert inv["properties"]["wood"] == {"type": "integer", "enum": list(range(10))}
    assert inv["properties"]["iron_pickaxe"] == {"type": "integer", "enum": [0, 1]}
    assert inv["required"] == list(CrafterInventorySettings.model_fields) and inv["additionalProperties"] is False
    text = json.dumps(schema)
    assert "minimum" not in text and "maximum" not in text and "$ref" not in text and "default" not in text
    Draft202012Validator.check_schema(schema)
    heist = answer_schema("heist", 1)["properties"]["environments"]["items"]
    assert heist["properties"]["num_keys"] == {"anyOf": [{"type": "integer", "enum": [0, 1, 2, 3]}, {"type": "null"}]}


@pytest.mark.parametrize("game", ["crafter", "heist"])
def test_catalogue_envs_round_trip_through_the_answer_format(game: str) -> None:
    envs = [c.env for c in (CRAFTER_PRACTICE.values() if game == "crafter" else HEIST_LADDER)][:4]
    text = '{"environments": [' + ", ".join(env_json(e) for e in envs) + "]}"
    parsed, problems = parse_answer(text, "stop", game, len(envs), answer_schema(game, len(envs)))  # type: ignore[arg-type]
    assert problems == []
    assert parsed == envs


def test_initial_prompt_follows_the_paper() -> None:
    text = initial_prompt("crafter", 3)
    assert 'environment designer for the game "Crafter"' in text and "Design 3 environments" in text
    assert all(a in text for a in ACHIEVEMENTS)
    assert "Coal, iron and diamonds only appear in mountains." in text
    assert "exactly 3 environments" in text
    assert "sleep" not in text.lower()  # the sleep rules come with the feedback prompt


def feedback(cycle: int, coal: float) -> CycleFeedback:
    success = {a: SkillStat(mean=50.0, std=1.0) for a in ACHIEVEMENTS}
    success["collect_coal"] = SkillStat(mean=coal, std=6.4)
    return CycleFeedback(cycle=cycle, success=success)


def history_entry(cycle: int, coal: float, chat: list[ChatMessage]) -> CycleHistory:
    envs = [CRAFTER_PRACTICE["collect_coal"].env, CRAFTER_PRACTICE["eat_cow"].env]
    return CycleHistory(
        design=CycleDesign(cycle=cycle, designer="llm", envs=envs, chat=chat), feedback=feedback(cycle, coal)
    )


def test_success_table_uses_integers_in_achievement_order() -> None:
    lines = success_table(feedback(1, 37.6)).splitlines()
    assert lines[0] == "collect_coal: 38% +/- 6%"
    assert [line.split(":")[0] for line in lines] == list(ACHIEVEMENTS)


def test_chat_per_cycle() -> None:
    first, kind = build_chat(DesignRequest(game="crafter", cycle=1, num_envs=2))
    assert kind == "initial" and [m.role for m in first] == ["system", "user"]

    answer = ChatMessage(role="assistant", content='{"environments": []}')
    cycle1 = history_entry(1, 2.0, [*first, answer])
    second, kind = build_chat(DesignRequest(game="crafter", cycle=2, num_envs=2, history=[cycle1]))
    assert kind == "first-feedback" and [m.role for m in second] == ["system", "user"]
    prompt = second[1].content
    assert "collect_coal: 2% +/- 6%" in prompt
    assert "Environment 1: " + env_json(cycle1.design.envs[0]) in prompt
    assert "explicitly state which information" in prompt and "must sleep to get wake_up" in prompt

    cycle2 = history_entry(2, 22.0, [*second, answer])
    third, kind = build_chat(DesignRequest(game="crafter", cycle=3, num_envs=2, history=[cycle1, cycle2]))
    assert kind == "update"
    assert third[:-1] == cycle2.design.chat
    assert third[-1].role == "user" and "collect_coal: 22% +/- 6%" in third[-1].content
    assert third[-1].content.startswith("Those environments resulted in the agent improving up to these scores")

    chatless = history_entry(2, 22.0, [])
    fallback, kind = build_chat(DesignRequest(game="crafter", cycle=3, num_envs=2, history=[cycle1, chatless]))
    assert kind == "first-feedback" and "collect_coal: 22% +/- 6%" in fallback[1].content


def test_a_wide_integer_range_is_described_by_its_bounds() -> None:
    assert _values({"type": "integer", "minimum": 0, "maximum": 1000}) == "an integer 0-1000"
    assert _values({"type": "integer"}) == "an integer"
    assert _values({"type": "integer", "enum": [0, 1, 2]}) == "an integer 0-2"
