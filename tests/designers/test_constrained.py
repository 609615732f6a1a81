"""The constrained LLM mode: the schema only allows distinct catalogue choices; the catalogue builds the envs."""

from __future__ import annotations

import itertools
import json

import pytest
from jsonschema import Draft202012Validator
from llm.stub import StubLLM, completion

from envgen.achievements import ACHIEVEMENTS
from envgen.contracts import CycleDesign, CycleFeedback, CycleHistory, DesignRequest, SkillStat
from envgen.designers import FixedDesigner, make_designer
from envgen.designers.constrained import ConstrainedLLMDesigner, constrained_schema, stages
from envgen.envconfig import check
from envgen.games.crafter import PRACTICE as CRAFTER_PRACTICE
from envgen.games.heist import LADDER as HEIST_LADDER
from envgen.spec import EnvGenRunSpec


def spec(kind: str = "llm") -> EnvGenRunSpec:
    return EnvGenRunSpec.model_validate(
        {"designer": {"type": kind, "mode": "constrained"}, "llm": {"maxRetries": 0}, "envsPerCycle": 4}
    )


@pytest.mark.parametrize("game", ["crafter", "heist"])
@pytest.mark.parametrize("n", [1, 2, 4, 7])
def test_schema_allows_only_distinct_catalogue_choices(game: str, n: int) -> None:
    schema = constrained_schema(game, n)  # type: ignore[arg-type]
    enums = [p["enum"] for p in schema["properties"].values()]
    assert len(enums) == min(n, len(CRAFTER_PRACTICE if game == "crafter" else HEIST_LADDER))
    assert all(not set(a) & set(b) for a, b in itertools.combinations(enums, 2))  # no answer can repeat a choice
    assert schema["required"] == list(schema["properties"]) and schema["additionalProperties"] is False
    flat = [v for e in enums for v in e]
    assert len(flat) == len(CRAFTER_PRACTICE if game == "crafter" else HEIST_LADDER)  # every entry offered once
    Draft202012Validator.check_schema(schema)


def test_stages_go_from_easy_to_hard() -> None:
    cut = stages("crafter", 4)
    order = list(CRAFTER_PRACTICE)
    assert [order.index(s.skills[0]) for st in cut for s in st] == list(range(len(order)))


def test_choices_become_valid_practice_envs_without_findings(stub_llm: StubLLM) -> None:
    picks = {"env1": "collect_wood", "env2": "wake_up", "env3": "make_stone_pickaxe", "env4": "make_iron_pickaxe"}
    stub_llm.add(completion(json.dumps(picks)))
    designer = make_designer(spec(), base_url=stub_llm.base_url)
    assert isinstance(designer, ConstrainedLLMDesigner)
    design = designer.design(DesignRequest(game="crafter", cycle=1, num_envs=4))
    assert [e.name for e in design.envs] == [CRAFTER_PRACTICE[s].env.name for s in picks.values()]
    assert design.findings == []
    assert all(not [f for f in check(e.config) if f.severity == "error"] for e in design.envs)
    sent = stub_llm.requests[0]
    assert "json_schema" in json.dumps(sent["response_format"]) and "env4" in sent["messages"][1]["content"]
    assert design.usage.calls == 1 and design.chat[-1].content == json.dumps(picks)


def test_prompt_shows_the_success_table(stub_llm: StubLLM) -> None:
    stub_llm.add(completion(json.dumps({"env1": "collect_wood", "env2": "make_iron_pickaxe"})))
    success = {a: SkillStat(mean=0.0) for a in ACHIEVEMENTS} | {"collect_wood": SkillStat(mean=83.0, std=4.0)}
    history = [
        CycleHistory(
            design=CycleDesign(cycle=1, designer="llm", envs=[CRAFTER_PRACTICE["collect_wood"].env]),
            feedback=CycleFeedback(cycle=1, success=success),
        )
    ]
    make_designer(spec(), base_url=stub_llm.base_url).design(
        DesignRequest(game="crafter", cycle=2, num_envs=2, history=history)
    )
    prompt = stub_llm.requests[0]["messages"][1]["content"]
    assert "collect_wood: 83% +/- 4%" in prompt and "practised: practice-collect-wood" in prompt


def test_invalid_answer_gets_one_repair_then_falls_back_per_slot(stub_llm: StubLLM) -> None:
    stub_llm.add(completion('{"env1": "collect_diamond", "env2": "make_iron_sword"}'), completion("not json"))
    design = make_designer(spec(), base_url=stub_llm.base_url).design(
        DesignRequest(game="crafter", cycle=1, num_envs=2)
    )
    assert len(stub_llm.requests) == 2 and "not valid" in stub_llm.requests[1]["messages"][-1]["content"]
    assert design.envs[1].name == "practice-make-iron-sword"  # the valid slot is kept
    assert design.envs[0].name in {c.env.name for c in stages("crafter", 2)[0]}  # fallback within the stage
    assert any("no valid choice" in n for n in design.notes)


def test_fixed_can_use_the_constrained_mode(stub_llm: StubLLM) -> None:
    designer = make_designer(spec("fixed"), base_url=stub_llm.base_url)
    assert isinstance(designer, FixedDesigner) and isinstance(designer.first, ConstrainedLLMDesigner)


def test_no_two_catalogue_envs_are_alike() -> None:
    for entries in (CRAFTER_PRACTICE.values(), HEIST_LADDER):
        configs = [c.env.config.model_dump_json() for c in entries]
        assert len(set(configs)) == len(configs)
