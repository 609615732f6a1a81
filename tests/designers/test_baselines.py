"""LLM-free designers: valid, deterministic, and doing what their names say."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import crafter
import pytest

from envgen.achievements import ACHIEVEMENTS, PREREQUISITES, depth
from envgen.contracts import CycleDesign, CycleFeedback, CycleHistory, DesignRequest, EnvResult, SkillStat
from envgen.designers import AdversarialDesigner, EasyToHardDesigner, HeuristicDesigner, NoDesigner
from envgen.designers.base import Designer
from envgen.designers.heuristic import REACH_PERCENT, curriculum, dependants, stalled
from envgen.envconfig import CrafterEnvConfig, DesignedEnv, check
from envgen.games import CRAFTER
from envgen.games.crafter import PRACTICE as CRAFTER_PRACTICE
from envgen.games.heist import LADDER as HEIST_LADDER
from envgen.spec import GameName

DESIGNERS: dict[str, Callable[[], Designer]] = {
    "easy-to-hard": lambda: EasyToHardDesigner(cycles=4),
    "adversarial": AdversarialDesigner,
    "heuristic": HeuristicDesigner,
}


def success(**overrides: float) -> dict[str, SkillStat]:
    values = {a: 0.0 for a in ACHIEVEMENTS} | overrides
    return {k: SkillStat(mean=v, std=1.0) for k, v in values.items()}


def history(game: GameName, envs: list[DesignedEnv], skills: dict[str, SkillStat], **kw: object) -> list[CycleHistory]:
    design = CycleDesign(cycle=1, designer="heuristic", envs=envs)
    return [CycleHistory(design=design, feedback=CycleFeedback.model_validate({"cycle": 1, "success": skills, **kw}))]


def assert_valid(design: CycleDesign, n: int, game: str) -> None:
    assert len(design.envs) == n
    assert len({e.name for e in design.envs}) == n
    for env in design.envs:
        DesignedEnv.model_validate(env.model_dump())
        assert env.config.game == game
        assert not [f for f in check(env.config) if f.severity == "error"]
        if isinstance(env.config, CrafterEnvConfig):
            assert env.config.world_settings.length == 10_000


@pytest.mark.parametrize("name", sorted(DESIGNERS))
@pytest.mark.parametrize("game", ["crafter", "heist"])
@pytest.mark.parametrize("n", [1, 4, 12])
def test_valid_and_deterministic(name: str, game: GameName, n: int) -> None:
    skills = success(collect_wood=90, place_table=70) if game == "crafter" else {"heist_success": SkillStat(mean=40)}
    for cycle in (1, 2, 4):
        previous = [] if cycle == 1 else history(game, [], skills)
        request = DesignRequest(game=game, cycle=cycle, num_envs=n, history=previous)
        first, second = DESIGNERS[name](), DESIGNERS[name]()
        design = first.design(request)
        assert_valid(design, n, game)
        assert design == second.design(request) == first.design(request)
        assert design.designer == name and design.notes


def test_none_designs_nothing() -> None:
    design = NoDesigner().design(DesignRequest(game="crafter", cycle=3, num_envs=4))
    assert design.envs == [] and design.designer == "none"


def test_easy_to_hard_climbs_the_ladder() -> None:
    designer = EasyToHardDesigner(cycles=4)
    depths = []
    for cycle in range(1, 5):
        envs = designer.design(DesignRequest(game="crafter", cycle=cycle, num_envs=4)).envs
        depths.append([depth(next(s for s, c in CRAFTER_PRACTICE.items() if c.env.name == e.name)) for e in envs])
    assert depths[0][0] == 0 and max(depths[-1]) == max(depth(a) for a in ACHIEVEMENTS)
    assert all(max(a) <= min(b) for a, b in itertools.pairwise(depths))
    heist = [designer.design(DesignRequest(game="heist", cycle=c, num_envs=2)).envs for c in (1, 4)]
    ladder = [c.env.name for c in HEIST_LADDER]
    assert ladder.index(heist[0][-1].name) < ladder.index(heist[1][0].name)


def test_adversarial_keeps_the_worst_envs() -> None:
    envs = [CRAFTER_PRACTICE[s].env for s in ("collect_wood", "eat_cow", "collect_stone", "collect_drink")]
    per_env = [
        EnvResult(name=envs[0].name, episodes=10, success={"collect_wood": 95.0}),
        EnvResult(name=envs[1].name, episodes=10, success={"eat_cow": 3.0}),
        EnvResult(name=envs[2].name, episodes=10, success={"collect_stone": 60.0}),
        EnvResult(name=envs[3].name, episodes=10, success={"collect_drink": 1.0}),
    ]
    # every skill is mastered in the real game except inside those envs, so per-env results decide
    skills = {a: SkillStat(mean=80.0) for a in ACHIEVEMENTS}
    request = DesignRequest(
        game="crafter", cycle=2, num_envs=2, history=history("crafter", envs, skills, per_env=per_env)
    )
    picked = [e.name for e in AdversarialDesigner().design(request).envs]
    assert picked == [envs[3].name, envs[1].name]


def test_adversarial_reads_a_numbered_copys_result() -> None:
    envs = [CRAFTER_PRACTICE[s].env for s in ("collect_wood", "eat_cow")]
    per_env = [
        EnvResult(name=f"{envs[0].name}-2", episodes=10, success={"collect_wood": 2.0}),  # only the copy trained
        EnvResult(name=envs[1].name, episodes=10, success={"eat_cow": 40.0}),
    ]
    skills = {a: SkillStat(mean=80.0) for a in ACHIEVEMENTS}
    request = DesignRequest(
        game="crafter", cycle=2, num_envs=1, history=history("crafter", envs, skills, per_env=per_env)
    )
    assert [e.name for e in AdversarialDesigner().design(request).envs] == [envs[0].name]


def test_adversarial_uses_weakest_skills_without_per_env_results() -> None:
    skills = {a: SkillStat(mean=50.0) for a in ACHIEVEMENTS} | {"wake_up": SkillStat(mean=4.0)}
    request = DesignRequest(game="crafter", cycle=2, num_envs=1, history=history("crafter", [], skills))
    assert AdversarialDesigner().design(request).envs[0].name == "practice-wake-up"


def test_curriculum_walks_the_dag_trunk_first() -> None:
    rates = {a: 0.0 for a in ACHIEVEMENTS} | {
        "collect_wood": 95.0,
        "place_table": 80.0,
        "collect_sapling": 90.0,
        "collect_drink": 70.0,
        "eat_cow": 50.0,
        "defeat_zombie": 40.0,
        "wake_up": 30.0,
        "place_plant": 20.0,
        "make_wood_sword": 15.0,
    }
    # the wood pickaxe opens ten skills and stands at 0 %: it goes first; stone (one step ahead) next
    assert curriculum(CRAFTER, rates, 2) == ["make_wood_pickaxe", "collect_stone"]
    for skill in curriculum(CRAFTER, rates, len(ACHIEVEMENTS)):
        # reachable, or one step ahead: every prerequisite of the skill is itself within reach
        assert all(all(rates[q] >= REACH_PERCENT for q in PREREQUISITES[p]) for p in PREREQUISITES[skill])
    assert "collect_diamond" not in curriculum(CRAFTER, rates, len(ACHIEVEMENTS))
    # collect_wood opens every skill but itself, the six other roots and the plant chain
    assert dependants(CRAFTER, "collect_wood") == len(ACHIEVEMENTS) - 9
    assert dependants(CRAFTER, "make_wood_sword") == 0


def test_heuristic_gives_each_target_two_slots_and_its_prerequisites() -> None:
    skills = success(collect_wood=95, place_table=80, make_wood_pickaxe=60, collect_stone=40, collect_coal=35)
    skills |= {a: SkillStat(mean=50.0) for a in ("collect_sapling", "collect_drink", "eat_cow", "defeat_zombie")}
    skills |= {a: SkillStat(mean=50.0) for a in ("defeat_skeleton", "wake_up", "place_plant", "eat_plant")}
    skills |= {a: SkillStat(mean=50.0) for a in ("make_wood_sword", "place_stone", "place_furnace")}
    request = DesignRequest(game="crafter", cycle=2, num_envs=4, history=history("crafter", [], skills))
    design = HeuristicDesigner().design(request)
    names = [e.name for e in design.envs]
    # the stone pickaxe opens iron and its tools; its chain's weak step (stone, 40 % in the game) comes first
    assert names == [
        "practice-collect-stone",
        "practice-make-stone-pickaxe",
        "practice-collect-stone-2",
        "practice-make-stone-pickaxe-2",
    ]
    cfg = design.envs[1].config
    assert isinstance(cfg, CrafterEnvConfig)
    assert cfg.environment_settings.place_table and not cfg.inventory_settings.stone_pickaxe


def test_practice_envs_hand_out_what_the_skill_costs() -> None:
    """Each place/make practice env starts with what Crafter's recipe consumes, so the skill can be done at once."""
    recipes = {f"place_{k}": v for k, v in crafter.constants.place.items()}
    recipes |= {f"make_{k}": v for k, v in crafter.constants.make.items()}
    for skill, recipe in recipes.items():
        if skill not in CRAFTER_PRACTICE:
            continue
        inventory = CRAFTER_PRACTICE[skill].env.config.inventory_settings  # type: ignore[union-attr]
        for item, amount in recipe["uses"].items():
            assert getattr(inventory, item) >= amount, f"{skill} needs {amount} {item}"
        if "stone" in recipe["uses"] and skill != "place_stone":
            assert inventory.stone > recipe["uses"]["stone"], f"{skill}: placing stone uses up its material"


def test_heuristic_heist_follows_the_success_rate() -> None:
    def names(rate: float) -> list[str]:
        skills = {"heist_success": SkillStat(mean=rate)}
        request = DesignRequest(game="heist", cycle=2, num_envs=2, history=history("heist", [], skills))
        return [e.name for e in HeuristicDesigner().design(request).envs]

    ladder = [c.env.name for c in HEIST_LADDER]
    assert names(0.0) == ladder[:2] and names(100.0) == ladder[-2:]
    assert ladder.index(names(50.0)[0]) > 0


def test_designed_env_results_raise_the_earn_level_never_the_frontier() -> None:
    """In the place-table env the agent already makes pickaxes: the frontier still follows the real game (no stone
    yet), and the mastered place-table env hands out one prerequisite fewer (its wood) next cycle."""
    skills = success(collect_wood=50, place_table=8)
    skills |= {a: SkillStat(mean=50.0) for a in ("collect_sapling", "collect_drink", "eat_cow", "defeat_zombie")}
    skills |= {a: SkillStat(mean=50.0) for a in ("defeat_skeleton", "wake_up", "place_plant", "eat_plant")}
    envs = [CRAFTER_PRACTICE[s].env for s in ("collect_wood", "place_table")]
    in_env = [
        EnvResult(name="practice-place-table", episodes=100, success={"place_table": 100.0, "make_wood_pickaxe": 40.0}),
        EnvResult(name="practice-collect-wood", episodes=100, success={"collect_wood": 100.0}),
    ]

    def design(per_env: list[EnvResult]) -> list[DesignedEnv]:
        previous = history("crafter", envs, skills, per_env=[r.model_dump(by_alias=True) for r in per_env])
        request = DesignRequest(game="crafter", cycle=2, num_envs=4, history=previous)
        return HeuristicDesigner().design(request).envs[:2]

    assert [e.name for e in design([])] == ["practice-place-table", "practice-make-wood-pickaxe"]
    table, pickaxe = design(in_env)
    assert (table.name, pickaxe.name) == ("practice-place-table-earn1", "practice-make-wood-pickaxe")
    assert isinstance(table.config, CrafterEnvConfig)
    assert table.config.inventory_settings.wood == 0  # the agent collects its own wood ...
    assert table.config.environment_settings.tree_rarity == "very common"  # ... in a forest


def test_heuristic_sets_aside_skills_that_did_not_move_in_two_practices() -> None:
    def cycle(n: int, skills: tuple[str, ...], in_env: float, **rates: float) -> CycleHistory:
        envs = [CRAFTER_PRACTICE[s].env for s in skills]
        per_env = [EnvResult(name=e.name, episodes=100, success={s: in_env}) for e, s in zip(envs, skills, strict=True)]
        design = CycleDesign(cycle=n, designer="heuristic", envs=envs)
        return CycleHistory(design=design, feedback=CycleFeedback(cycle=n, success=success(**rates), per_env=per_env))

    base = {"collect_wood": 95.0, "place_table": 80.0, "collect_sapling": 90.0}
    once = [cycle(1, ("make_wood_pickaxe", "eat_plant"), 0.0, **base)]
    assert stalled(CRAFTER, once) == set()  # one practice is not enough to judge
    twice = [*once, cycle(2, ("make_wood_pickaxe", "eat_plant"), 0.0, **base)]
    assert stalled(CRAFTER, twice) == {"make_wood_pickaxe", "eat_plant"}
    moved_in_env = [*once, cycle(2, ("make_wood_pickaxe", "eat_plant"), 30.0, **base)]
    assert stalled(CRAFTER, moved_in_env) == set()  # the real game lags; its own env shows the gain
    moved_in_game = [*once, cycle(2, ("make_wood_pickaxe", "eat_plant"), 0.0, **base, make_wood_pickaxe=5.0)]
    assert stalled(CRAFTER, moved_in_game) == {"eat_plant"}
    request = DesignRequest(game="crafter", cycle=3, num_envs=4, history=twice)
    design = HeuristicDesigner().design(request)
    assert "practice-make-wood-pickaxe" not in {e.name for e in design.envs}
    assert "set aside" in design.notes[0] and "make_wood_pickaxe" in design.notes[0]
