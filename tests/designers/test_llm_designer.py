"""The LLM designer across cycles (stateless: the chat comes from the history) and make_designer."""

from __future__ import annotations

import json

from llm.stub import StubLLM, completion, crafter_answer, crafter_env, heist_answer

from envgen.achievements import ACHIEVEMENTS
from envgen.contracts import CycleDesign, CycleFeedback, CycleHistory, DesignRequest, SkillStat
from envgen.designers import (
    AdversarialDesigner,
    EasyToHardDesigner,
    FixedDesigner,
    HeuristicDesigner,
    LLMDesigner,
    NoDesigner,
    make_designer,
)
from envgen.spec import EnvGenRunSpec


def spec(designer: str = "llm", **llm: object) -> EnvGenRunSpec:
    return EnvGenRunSpec.model_validate(
        {"designer": {"type": designer, "critic": False}, "llm": {"maxRetries": 0, **llm}, "envsPerCycle": 2}
    )


def feedback(cycle: int, coal: float) -> CycleFeedback:
    success = {a: SkillStat(mean=40.0, std=2.0) for a in ACHIEVEMENTS}
    success["collect_coal"] = SkillStat(mean=coal, std=3.0)
    return CycleFeedback(cycle=cycle, success=success)


def test_three_cycles_rebuild_the_chat_from_history(stub_llm: StubLLM) -> None:
    answers = [
        crafter_answer(2),
        crafter_answer(2, [crafter_env(5), crafter_env(6)]),
        crafter_answer(2, [crafter_env(7), crafter_env(8)]),
    ]
    stub_llm.add(*(completion(a) for a in answers))
    designer = make_designer(spec(), base_url=stub_llm.base_url)
    history: list[CycleHistory] = []
    designs: list[CycleDesign] = []
    for cycle, coal in zip((1, 2, 3), (2.0, 22.0, 39.0), strict=True):
        design = designer.design(DesignRequest(game="crafter", cycle=cycle, num_envs=2, history=list(history)))
        designs.append(design)
        history.append(CycleHistory(design=design, feedback=feedback(cycle, coal)))

    first, second, third = (r["messages"] for r in stub_llm.requests)
    assert [m["role"] for m in first] == ["system", "user"]
    assert [m["role"] for m in second] == ["system", "user"]
    assert "collect_coal: 2% +/- 3%" in second[1]["content"]
    assert '"name": "Stone tools 0"' in second[1]["content"]  # the previous envs, as JSON
    assert third[:3] == [*second, {"role": "assistant", "content": answers[1]}]
    assert third[3]["role"] == "user" and "collect_coal: 22% +/- 3%" in third[3]["content"]
    assert [e.name for e in designs[2].envs] == ["Stone tools 7", "Stone tools 8"]
    assert designs[2].chat[-1].content == answers[2] and len(designs[2].chat) == 5
    assert all(d.designer == "llm" for d in designs)


def test_heist_design(stub_llm: StubLLM) -> None:
    stub_llm.add(completion(heist_answer(3)))
    design = make_designer(spec(), base_url=stub_llm.base_url).design(DesignRequest(game="heist", cycle=1, num_envs=3))
    assert [e.config.game for e in design.envs] == ["heist"] * 3
    assert design.envs[2].config.model_dump() == {
        "game": "heist",
        "distribution_mode": "hard",
        "num_keys": 3,
        "maze_size": 11,
    }
    schema = stub_llm.requests[0]["response_format"]["json_schema"]["schema"]
    assert set(schema["properties"]["environments"]["items"]["properties"]) == {
        "name",
        "purpose",
        "distribution_mode",
        "num_keys",
        "maze_size",
    }


def test_fixed_asks_the_llm_once_then_reuses_cycle_one(stub_llm: StubLLM) -> None:
    stub_llm.add(completion(crafter_answer(2)))
    designer = make_designer(spec("fixed"), base_url=stub_llm.base_url)
    assert isinstance(designer, FixedDesigner)
    first = designer.design(DesignRequest(game="crafter", cycle=1, num_envs=2))
    assert first.designer == "fixed" and first.usage.calls == 1
    history = [CycleHistory(design=first, feedback=feedback(1, 5.0))]
    later = designer.design(DesignRequest(game="crafter", cycle=2, num_envs=2, history=history))
    assert later.envs == first.envs and later.usage.calls == 0 and len(stub_llm.requests) == 1


def test_make_designer_picks_the_type() -> None:
    assert isinstance(make_designer(spec("easy-to-hard")), EasyToHardDesigner)
    assert isinstance(make_designer(spec("adversarial")), AdversarialDesigner)
    assert isinstance(make_designer(spec("heuristic")), HeuristicDesigner)
    assert isinstance(make_designer(spec("none")), NoDesigner)
    assert isinstance(make_designer(spec(baseURL="http://spec.example/v1")), LLMDesigner)


def test_answer_text_is_kept_verbatim(stub_llm: StubLLM) -> None:
    text = "```json\n" + crafter_answer(2) + "\n```"
    stub_llm.add(completion(text))
    design = make_designer(spec(), base_url=stub_llm.base_url).design(
        DesignRequest(game="crafter", cycle=1, num_envs=2)
    )
    assert design.chat[-1].content == text
    assert json.loads(crafter_answer(2))["environments"][0]["name"] == design.envs[0].name
