"""The design critic, alone and inside the LLM designer (one repair, verdict recorded either way)."""

from __future__ import annotations

import json

import pytest
from llm.stub import StubLLM, completion, crafter_answer, crafter_env

from envgen.contracts import CycleDesign, CycleFeedback, CycleHistory, DesignRequest
from envgen.designers import LLMDesigner, critique
from envgen.envconfig import CrafterEnvConfig, DesignedEnv
from envgen.games.crafter import PRACTICE as CRAFTER_PRACTICE
from envgen.games.heist import LADDER as HEIST_LADDER
from envgen.llm import LLMClient, LLMSettings

REQUEST = DesignRequest(game="crafter", cycle=1, num_envs=4)
GOOD = [CRAFTER_PRACTICE[s].env for s in ("collect_stone", "eat_cow", "place_table", "collect_iron")]


def codes(envs: list[DesignedEnv], request: DesignRequest = REQUEST) -> set[str]:
    return {f.code for f in critique(envs, request)}


def test_a_sound_set_has_no_findings() -> None:
    assert critique(GOOD, REQUEST) == []
    assert critique([c.env for c in HEIST_LADDER[2:6]], DesignRequest(game="heist", cycle=1, num_envs=4)) == []


def test_duplicates() -> None:
    twin = GOOD[0].model_copy(update={"name": "twin"})
    assert "duplicate-envs" in codes([*GOOD[:3], twin])


def test_everything_given_away() -> None:
    diamond = CRAFTER_PRACTICE["collect_diamond"].env
    given = [diamond.model_copy(update={"name": f"d{i}"}) for i in range(3)]
    assert "everything-given-away" in codes([*given, GOOD[0]])
    assert "everything-given-away" not in codes([given[0], *GOOD[:3]])  # one of four is fine
    heist = DesignRequest(game="heist", cycle=1, num_envs=2)
    trivial = HEIST_LADDER[0].env
    assert "everything-given-away" in codes([trivial, trivial.model_copy(update={"name": "x"})], heist)


def test_purpose_must_name_a_skill() -> None:
    vague = GOOD[0].model_copy(update={"purpose": "The forest of Dreams"})
    assert "purpose-names-no-skill" in codes([vague, *GOOD[1:]])
    assert "purpose-names-no-skill" not in codes([GOOD[0].model_copy(update={"purpose": "Mine coal"}), *GOOD[1:]])


def test_unchanged_after_feedback() -> None:
    previous = CycleHistory(
        design=CycleDesign(cycle=1, designer="llm", envs=GOOD), feedback=CycleFeedback(cycle=1, success={})
    )
    request = DesignRequest(game="crafter", cycle=2, num_envs=4, history=[previous])
    renamed = [
        GOOD[0].model_copy(update={"name": "same thing, new name"}),
        *[c.env for c in list(CRAFTER_PRACTICE.values())[:3]],
    ]
    found = [f for f in critique(renamed, request) if f.code == "unchanged-after-feedback"]
    assert len(found) == 1 and found[0].message.startswith("same thing, new name: copied unchanged")


def test_biome_contradictions_come_from_check() -> None:
    assert isinstance(GOOD[0].config, CrafterEnvConfig)
    settings = GOOD[0].config.environment_settings.model_copy(
        update={"target_biome": "grassland", "coal_rarity": "common"}
    )
    config = GOOD[0].config.model_copy(update={"environment_settings": settings})
    assert "coal-without-mountains" in codes([GOOD[0].model_copy(update={"config": config}), *GOOD[1:]])


@pytest.mark.parametrize(
    ("purpose", "warned"),
    [
        ("Practise collect_drink at the beach.", False),  # stone is not the target: no weakness
        ("Practise make_stone_pickaxe at the beach.", True),  # needs stone, which the beach lacks
        ("Practise collect_stone at the beach.", True),
        ("Learn to survive at the beach.", True),  # names no skill: the warning stays
    ],
)
def test_no_stone_source_matters_only_where_the_purpose_needs_stone(purpose: str, warned: bool) -> None:
    drink = CRAFTER_PRACTICE["collect_drink"].env
    assert isinstance(drink.config, CrafterEnvConfig) and drink.config.environment_settings.target_biome == "beaches"
    env = drink.model_copy(update={"purpose": purpose})
    assert ("no-stone-source" in codes([env, *GOOD[1:]])) is warned


def designer(stub: StubLLM, critic: bool) -> LLMDesigner:
    return LLMDesigner(LLMClient(LLMSettings(base_url=stub.base_url, model="m", max_retries=0)), critic=critic)


DEGENERATE = crafter_answer(2, [crafter_env(0), crafter_env(0, name="copy")])


def test_degenerate_set_is_sent_back_once(stub_llm: StubLLM) -> None:
    stub_llm.add(completion(DEGENERATE), completion(crafter_answer(2)))
    design = designer(stub_llm, critic=True).design(DesignRequest(game="crafter", cycle=1, num_envs=2))

    assert len(stub_llm.requests) == 2
    revise = stub_llm.requests[1]["messages"][-1]["content"]
    assert "weak as a training set" in revise and "same settings as" in revise
    assert design.findings == [] and [e.name for e in design.envs] == ["Stone tools 0", "Stone tools 1"]
    assert any("critic: 1 findings (duplicate-envs); asked for one repair" in n for n in design.notes)
    assert any("critic after repair: no findings" in n for n in design.notes)
    assert json.loads(design.chat[-1].content) == json.loads(crafter_answer(2))


def test_still_degenerate_after_repair_is_accepted_with_findings(stub_llm: StubLLM) -> None:
    stub_llm.add(completion(DEGENERATE), completion(DEGENERATE))
    design = designer(stub_llm, critic=True).design(DesignRequest(game="crafter", cycle=1, num_envs=2))
    assert len(design.envs) == 2
    assert [f.code for f in design.findings] == ["duplicate-envs"]
    assert any("critic after repair: 1 findings (duplicate-envs), accepted" in n for n in design.notes)


def test_unusable_critic_repair_keeps_the_first_valid_set(stub_llm: StubLLM) -> None:
    stub_llm.add(completion(DEGENERATE), completion("I cannot"))
    design = designer(stub_llm, critic=True).design(DesignRequest(game="crafter", cycle=1, num_envs=2))
    assert [e.name for e in design.envs] == ["Stone tools 0", "copy"]
    assert any("kept the first valid set" in n for n in design.notes)


@pytest.mark.parametrize("answer", [DEGENERATE, crafter_answer(2)])
def test_critic_off_reports_only(stub_llm: StubLLM, answer: str) -> None:
    stub_llm.add(completion(answer))
    design = designer(stub_llm, critic=False).design(DesignRequest(game="crafter", cycle=1, num_envs=2))
    assert len(stub_llm.requests) == 1
    degenerate = answer == DEGENERATE
    assert bool(design.findings) == degenerate
    assert any(("critic (report only)" if degenerate else "critic: no findings") in n for n in design.notes)
