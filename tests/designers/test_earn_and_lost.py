"""Earn-it practice (the reverse curriculum) and lost skills: the heuristic and the critic act on both."""

from __future__ import annotations

import itertools

import pytest

from envgen.achievements import ACHIEVEMENTS, depth
from envgen.contracts import CycleDesign, CycleFeedback, CycleHistory, DesignRequest, EnvResult, SkillStat
from envgen.designers import HeuristicDesigner
from envgen.designers.critic import critique
from envgen.designers.heuristic import earn_level, targets
from envgen.designers.progress import lost_skills
from envgen.envconfig import CrafterEnvConfig, DesignedEnv
from envgen.games import CRAFTER
from envgen.games.crafter import EARNED_BY, PRACTICE, earn_ladder


def cycle(n: int, envs: list[DesignedEnv], per_env: dict[str, float] | None = None, **rates: float) -> CycleHistory:
    """One finished cycle: the real-game success ``rates`` and, per env name, its target's in-env success."""
    skill_of = {e.env.name: e.skills[0] for s in ACHIEVEMENTS for e in earn_ladder(s)}
    results = [
        EnvResult(name=name, episodes=50, success={skill_of[name]: rate}) for name, rate in (per_env or {}).items()
    ]
    feedback = CycleFeedback(
        cycle=n, success={a: SkillStat(mean=rates.get(a, 0.0)) for a in ACHIEVEMENTS}, per_env=results
    )
    return CycleHistory(design=CycleDesign(cycle=n, designer="heuristic", envs=envs), feedback=feedback)


@pytest.mark.parametrize("skill", ACHIEVEMENTS)
def test_each_level_gives_an_earlier_step_of_the_chain_down_to_nothing(skill: str) -> None:
    """Each level withdraws one hand-out and gives only what earning it needs (shallower hand-outs)."""
    ladder = earn_ladder(skill)
    assert ladder[0] == PRACTICE[skill]
    given = []
    for entry in ladder:
        cfg = entry.env.config
        assert isinstance(cfg, CrafterEnvConfig) and entry.skills == (skill,) and skill in entry.env.purpose
        env = cfg.environment_settings
        placed = {k for k in ("place_table", "place_furnace", "place_plant") if getattr(env, k)}
        given.append(placed | set(cfg.inventory_settings.items()))
    for before, after in itertools.pairwise(given):
        (withdrawn,) = before - after
        assert all(depth(EARNED_BY[h]) < depth(EARNED_BY[withdrawn]) for h in after - before)
    assert given[-1] == set()
    assert len({e.env.name for e in ladder}) == len(ladder)


def test_a_withdrawn_pickaxe_becomes_a_table_and_wood_and_every_level_keeps_the_natural_world() -> None:
    levels = [e.env.config for e in earn_ladder("collect_stone")]
    assert all(isinstance(c, CrafterEnvConfig) for c in levels)
    first, second, *_, last = levels
    assert isinstance(first, CrafterEnvConfig) and isinstance(second, CrafterEnvConfig)
    assert isinstance(last, CrafterEnvConfig)
    assert first.inventory_settings.wood_pickaxe
    assert all(c.environment_settings.target_biome == "natural" for c in levels if isinstance(c, CrafterEnvConfig))
    assert second.environment_settings.place_table and second.inventory_settings.wood >= 2
    assert not second.inventory_settings.wood_pickaxe
    assert last.inventory_settings.items() == {}
    assert last.environment_settings.tree_rarity == "very common"


@pytest.mark.parametrize("skill", ["make_wood_sword", "make_iron_sword", "defeat_zombie", "defeat_skeleton"])
def test_extra_monsters_meet_only_an_agent_given_the_whole_chain(skill: str) -> None:
    first, *earned = (e.env.config for e in earn_ladder(skill))
    assert isinstance(first, CrafterEnvConfig)
    assert first.environment_settings.spawn_zombies or first.environment_settings.spawn_skeletons
    for config in earned:
        assert isinstance(config, CrafterEnvConfig)
        assert not config.environment_settings.spawn_zombies and not config.environment_settings.spawn_skeletons


def test_the_earn_level_climbs_with_in_env_success_and_retreats_when_it_collapses() -> None:
    table = earn_ladder("place_table")
    pickaxe = earn_ladder("make_stone_pickaxe")
    assert earn_level(CRAFTER, [], "place_table") == 0
    mastered = [cycle(1, [table[0].env], {table[0].env.name: 90.0})]
    assert earn_level(CRAFTER, mastered, "place_table") == 1
    assert earn_level(CRAFTER, [cycle(1, [table[1].env], {table[1].env.name: 60.0})], "place_table") == 1  # top
    middling = [cycle(1, [pickaxe[2].env], {pickaxe[2].env.name: 20.0})]
    assert earn_level(CRAFTER, middling, "make_stone_pickaxe") == 2
    collapsed = [cycle(1, [pickaxe[2].env], {pickaxe[2].env.name: 1.0})]
    assert earn_level(CRAFTER, collapsed, "make_stone_pickaxe") == 1


def test_a_lost_skill_gets_practice_and_the_critic_reports_it_when_it_does_not() -> None:
    held = dict(collect_wood=90.0, place_table=60.0, wake_up=87.0, collect_drink=80.0)
    history = [cycle(1, [], None, **held), cycle(2, [], None, **(held | {"wake_up": 5.0}))]
    assert lost_skills(CRAFTER, history) == {"wake_up": 87.0}
    assert lost_skills(CRAFTER, history[:1]) == {}
    assert targets(CRAFTER, history, 2)[0] == "wake_up"
    design = HeuristicDesigner().design(DesignRequest(game="crafter", cycle=3, num_envs=4, history=history))
    assert design.envs[0].name == PRACTICE["wake_up"].env.name
    assert "lost" in design.notes[0] and "wake_up" in design.notes[0]

    request = DesignRequest(game="crafter", cycle=3, num_envs=2, history=history)
    without = [PRACTICE["make_wood_pickaxe"].env, PRACTICE["collect_stone"].env]
    found = [f for f in critique(without, request) if f.code == "lost-skill"]
    assert len(found) == 1 and "wake_up fell from 87% to 5%" in found[0].message
    with_sleep = [PRACTICE["make_wood_pickaxe"].env, PRACTICE["wake_up"].env]
    assert not [f for f in critique(with_sleep, request) if f.code == "lost-skill"]


def test_a_skill_one_seed_lost_counts_as_lost_though_the_mean_hides_it() -> None:
    held = dict(collect_wood=90.0, wake_up=87.0)
    one_seed_lost = cycle(2, [], None, **(held | {"wake_up": 60.0}))
    one_seed_lost.feedback.success["wake_up"] = SkillStat(mean=60.0, std=35.0, lowest=6.0)  # seeds 87, 87, 6
    history = [cycle(1, [], None, **held), one_seed_lost]
    assert lost_skills(CRAFTER, history) == {"wake_up": 87.0}
    assert targets(CRAFTER, history, 2)[0] == "wake_up"
    request = DesignRequest(game="crafter", cycle=3, num_envs=2, history=history)
    found = [f for f in critique([PRACTICE["collect_stone"].env], request) if f.code == "lost-skill"]
    assert len(found) == 1 and "wake_up fell from 87% to 6%" in found[0].message
    one_seed_lost.feedback.success["wake_up"] = SkillStat(mean=60.0, std=20.0, lowest=50.0)
    assert lost_skills(CRAFTER, history) == {}


def test_a_candidate_stands_for_its_weak_chain_shallowest_first() -> None:
    trunk = dict(collect_wood=80.0, place_table=30.0, make_wood_pickaxe=2.0, wake_up=87.0, collect_sapling=90.0)
    history = [cycle(1, [], None, **trunk)]
    assert targets(CRAFTER, history, 2) == ["place_table", "make_wood_pickaxe"]  # the table is the weakest root
    assert targets(CRAFTER, history, 1) == ["place_table"]
    held = [cycle(1, [], None, **(trunk | {"place_table": 70.0, "make_wood_pickaxe": 60.0}))]
    frontier = targets(CRAFTER, held, 2)
    assert not {"place_table", "make_wood_pickaxe"} & set(frontier)  # held: the places go to the frontier
    # a lost skill takes the first place; the chain's root, not the skill beyond it, takes the second
    fell = [*held, cycle(2, [], None, **(trunk | {"wake_up": 30.0, "make_wood_pickaxe": 20.0, "place_table": 70.0}))]
    assert targets(CRAFTER, fell, 2) == ["wake_up", "make_wood_pickaxe"]
