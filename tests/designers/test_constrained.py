"""The constrained LLM mode: the schema only allows distinct frontier choices; the catalogue builds the envs."""

from __future__ import annotations

import itertools
import json

import pytest
from jsonschema import Draft202012Validator
from llm.stub import StubLLM, completion

from envgen.achievements import ACHIEVEMENTS
from envgen.contracts import CycleDesign, CycleFeedback, CycleHistory, DesignRequest, SkillStat
from envgen.designers import FixedDesigner, make_designer
from envgen.designers.constrained import ConstrainedLLMDesigner, constrained_schema, frontier, menus, stages
from envgen.designers.heuristic import reachable
from envgen.designers.progress import success_of
from envgen.envconfig import check
from envgen.games import game as game_of
from envgen.games.crafter import PRACTICE as CRAFTER_PRACTICE
from envgen.games.heist import LADDER as HEIST_LADDER
from envgen.spec import EnvGenRunSpec


def spec(kind: str = "llm") -> EnvGenRunSpec:
    return EnvGenRunSpec.model_validate(
        {"designer": {"type": kind, "mode": "constrained"}, "llm": {"maxRetries": 0}, "envsPerCycle": 4}
    )


def feedback(cycle: int, rates: dict[str, float]) -> CycleFeedback:
    """Real-game feedback with these success rates (percent), every other skill at 0 %."""
    return CycleFeedback(cycle=cycle, success={a: SkillStat(mean=rates.get(a, 0.0)) for a in ACHIEVEMENTS})


def after(design: list[str], rates: dict[str, float], game: str = "crafter", n: int = 4) -> DesignRequest:
    """The request of cycle 2, after a cycle that practised these catalogue skills and reached these rates."""
    envs = [CRAFTER_PRACTICE[s].env for s in design]
    history = [CycleHistory(design=CycleDesign(cycle=1, designer="llm", envs=envs), feedback=feedback(1, rates))]
    return DesignRequest(game=game, cycle=2, num_envs=n, history=history)  # type: ignore[arg-type]


@pytest.mark.parametrize("game", ["crafter", "heist"])
@pytest.mark.parametrize("n", [1, 2, 4, 7])
def test_schema_allows_only_distinct_choices(game: str, n: int) -> None:
    menu = menus(DesignRequest(game=game, cycle=1, num_envs=n))  # type: ignore[arg-type]
    schema = constrained_schema(game, menu)  # type: ignore[arg-type]
    enums = [p["enum"] for p in schema["properties"].values()]
    assert len(enums) == len(menu) and 1 <= len(menu) <= n and all(enums)
    assert all(not set(a) & set(b) for a, b in itertools.combinations(enums, 2))  # no answer can repeat a choice
    assert schema["required"] == list(schema["properties"]) and schema["additionalProperties"] is False
    flat = [v for e in enums for v in e]
    offered = [c.skills[0] for c in frontier(DesignRequest(game="crafter", cycle=1, num_envs=n))]
    assert sorted(flat) == sorted(offered if game == "crafter" else [c.env.name for c in HEIST_LADDER])
    Draft202012Validator.check_schema(schema)


def test_crafter_menus_are_the_reachable_frontier() -> None:
    game = game_of("crafter")
    start = {c.skills[0] for c in frontier(DesignRequest(game="crafter", cycle=1, num_envs=4))}
    assert "collect_wood" in start and not start & {"make_stone_pickaxe", "collect_iron", "collect_diamond"}
    rates = {"collect_wood": 90.0, "place_table": 60.0, "make_wood_pickaxe": 30.0, "collect_drink": 80.0}
    later = [c.skills[0] for c in frontier(after(["collect_wood", "place_table"], rates))]
    assert "collect_stone" in later and "make_wood_pickaxe" in later  # the frontier moved with the feedback
    assert not {"collect_wood", "place_table"} & set(later)  # last cycle's choices are not on offer
    assert all(
        reachable(game, success_of(feedback(1, rates)), s)
        or all(reachable(game, success_of(feedback(1, rates)), p) for p in game.prerequisites.get(s, ()))
        for s in later
    )


def test_stages_go_from_easy_to_hard() -> None:
    cut = stages("crafter", 4)
    order = list(CRAFTER_PRACTICE)
    assert [order.index(s.skills[0]) for st in cut for s in st] == list(range(len(order)))


def test_choices_become_valid_practice_envs_without_findings(stub_llm: StubLLM) -> None:
    request = DesignRequest(game="crafter", cycle=1, num_envs=4)
    picks = {f"env{k + 1}": options[-1].skills[0] for k, options in enumerate(menus(request))}
    stub_llm.add(completion(json.dumps(picks)))
    designer = make_designer(spec(), base_url=stub_llm.base_url)
    assert isinstance(designer, ConstrainedLLMDesigner)
    design = designer.design(request)
    assert [e.name for e in design.envs] == [CRAFTER_PRACTICE[s].env.name for s in picks.values()]
    assert design.findings == []
    assert all(not [f for f in check(e.config) if f.severity == "error"] for e in design.envs)
    sent = stub_llm.requests[0]
    assert "json_schema" in json.dumps(sent["response_format"]) and "env4" in sent["messages"][1]["content"]
    assert design.usage.calls == 1 and design.chat[-1].content == json.dumps(picks)


def test_prompt_shows_the_success_table_and_each_options_rate(stub_llm: StubLLM) -> None:
    request = after(["collect_wood"], {"collect_wood": 83.0, "place_table": 4.0}, n=2)
    stub_llm.add(completion(json.dumps({f"env{k + 1}": m[0].skills[0] for k, m in enumerate(menus(request))})))
    make_designer(spec(), base_url=stub_llm.base_url).design(request)
    prompt = stub_llm.requests[0]["messages"][1]["content"]
    assert "collect_wood: 83%" in prompt and "practised: practice-collect-wood" in prompt
    assert "- place_table (now 4%)" in prompt


def test_invalid_answer_gets_one_repair_then_falls_back_per_slot(stub_llm: StubLLM) -> None:
    request = DesignRequest(game="crafter", cycle=1, num_envs=2)
    menu = menus(request)
    stub_llm.add(completion(json.dumps({"env1": "collect_diamond", "env2": menu[1][-1].skills[0]})))
    stub_llm.add(completion("not json"))
    design = make_designer(spec(), base_url=stub_llm.base_url).design(request)
    assert len(stub_llm.requests) == 2 and "not valid" in stub_llm.requests[1]["messages"][-1]["content"]
    assert design.envs[1].name == menu[1][-1].env.name  # the valid slot is kept
    assert design.envs[0].name == menu[0][0].env.name  # the unusable slot gets its menu's first option
    assert any("no valid choice" in n for n in design.notes)


def test_a_model_that_always_picks_first_still_follows_the_feedback(stub_llm: StubLLM) -> None:
    """Four cycles without any learning: each cycle's choices are new, so the critic finds nothing."""
    designer = make_designer(spec(), base_url=stub_llm.base_url)
    history: list[CycleHistory] = []
    for cycle in range(1, 5):
        request = DesignRequest(game="crafter", cycle=cycle, num_envs=4, history=history)
        stub_llm.add(completion(json.dumps({f"env{k + 1}": m[0].skills[0] for k, m in enumerate(menus(request))})))
        design = designer.design(request)
        assert design.findings == [], design.findings
        history = [*history, CycleHistory(design=design, feedback=feedback(cycle, {}))]
    names = [[e.name for e in h.design.envs] for h in history]
    assert all(not set(a) & set(b) for a, b in itertools.pairwise(names))


def test_fixed_can_use_the_constrained_mode(stub_llm: StubLLM) -> None:
    designer = make_designer(spec("fixed"), base_url=stub_llm.base_url)
    assert isinstance(designer, FixedDesigner) and isinstance(designer.first, ConstrainedLLMDesigner)


def test_no_two_catalogue_envs_are_alike() -> None:
    for entries in (CRAFTER_PRACTICE.values(), HEIST_LADDER):
        configs = [c.env.config.model_dump_json() for c in entries]
        assert len(set(configs)) == len(configs)
