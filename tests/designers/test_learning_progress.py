"""The learning-progress designer: frontier first, biggest success change first, stale envs come back."""

from __future__ import annotations

from envgen.achievements import ACHIEVEMENTS, PREREQUISITES
from envgen.contracts import CycleDesign, CycleFeedback, CycleHistory, DesignRequest, EnvResult, SkillStat
from envgen.designers import make_designer
from envgen.designers.learning_progress import LearningProgressDesigner, progress, staleness
from envgen.games.crafter import PRACTICE as CRAFTER_PRACTICE
from envgen.games.heist import LADDER as HEIST_LADDER
from envgen.spec import EnvGenRunSpec


def cycle(k: int, rates: dict[str, float], envs: tuple[str, ...] = (), per_env: dict[str, float] | None = None):
    success = {a: SkillStat(mean=rates.get(a, 0.0)) for a in ACHIEVEMENTS}
    results = [
        EnvResult(name=CRAFTER_PRACTICE[s].env.name, episodes=8, success={s: v}) for s, v in (per_env or {}).items()
    ]
    design = CycleDesign(cycle=k, designer="learning-progress", envs=[CRAFTER_PRACTICE[s].env for s in envs])
    return CycleHistory(design=design, feedback=CycleFeedback(cycle=k, success=success, per_env=results))


def names(history: list[CycleHistory], n: int = 4) -> list[str]:
    request = DesignRequest(game="crafter", cycle=len(history) + 1, num_envs=n, history=history)
    return [e.name for e in LearningProgressDesigner().design(request).envs]


def test_first_cycle_offers_skills_without_prerequisites() -> None:
    picked = names([])
    assert len(set(picked)) == 4
    skills = [s for s, c in CRAFTER_PRACTICE.items() if c.env.name in picked]
    assert all(not PREREQUISITES[s] for s in skills)


def test_the_biggest_success_change_wins() -> None:
    base = {"collect_wood": 60.0, "place_table": 40.0, "collect_sapling": 50.0, "collect_drink": 50.0}
    moved = base | {"place_table": 75.0, "collect_drink": 52.0}
    history = [cycle(1, base, ("place_table",)), cycle(2, moved, ("place_table",))]
    assert names(history, 1) == ["practice-place-table"]
    assert progress(CRAFTER_PRACTICE["place_table"], history) == 35.0
    assert progress(CRAFTER_PRACTICE["collect_drink"], history) == 2.0


def test_progress_inside_the_practice_env_counts() -> None:
    rates = {"collect_wood": 60.0, "place_table": 40.0}
    history = [
        cycle(1, rates, ("make_wood_pickaxe",), {"make_wood_pickaxe": 10.0}),
        cycle(2, rates, ("make_wood_pickaxe",), {"make_wood_pickaxe": 70.0}),
    ]
    assert progress(CRAFTER_PRACTICE["make_wood_pickaxe"], history) == 60.0
    assert names(history, 1) == ["practice-make-wood-pickaxe"]


def test_a_numbered_copy_counts_as_its_env() -> None:
    entry = CRAFTER_PRACTICE["make_wood_pickaxe"]
    copy = entry.env.model_copy(update={"name": f"{entry.env.name}-2"})
    history = [cycle(1, {}, ("make_wood_pickaxe",), {"make_wood_pickaxe": 10.0}), cycle(2, {})]
    history[1].design.envs = [copy]
    history[1].feedback.per_env = [EnvResult(name=copy.name, episodes=8, success={"make_wood_pickaxe": 70.0})]
    assert progress(entry, history) == 60.0  # the copy's result is the env's
    assert staleness(entry, history) == 0  # offered last cycle, as a copy


def test_unreachable_and_mastered_skills_wait() -> None:
    rates = {"collect_wood": 99.0, "collect_sapling": 95.0, "collect_drink": 95.0, "eat_cow": 95.0, "wake_up": 95.0}
    history = [cycle(1, {}), cycle(2, rates)]
    picked = names(history, 4)  # the frontier: place_table, place_plant, defeat_zombie, defeat_skeleton
    assert "practice-collect-wood" not in picked  # mastered, though it moved most
    assert "practice-collect-diamond" not in picked  # far beyond the frontier
    assert "practice-place-table" in picked  # collect_wood managed, place_table not


def test_staleness_brings_an_env_back() -> None:
    history = [cycle(1, {}, ("collect_wood",)), cycle(2, {}, ("eat_cow",))]
    assert staleness(CRAFTER_PRACTICE["eat_cow"], history) == 0
    assert staleness(CRAFTER_PRACTICE["collect_wood"], history) == 1
    assert staleness(CRAFTER_PRACTICE["wake_up"], history) == 3
    assert "practice-eat-cow" not in names(history, 3)


def test_heist_and_factory() -> None:
    request = DesignRequest(game="heist", cycle=1, num_envs=3)
    design = LearningProgressDesigner().design(request)
    assert len(design.envs) == 3 and {e.name for e in design.envs} <= {c.env.name for c in HEIST_LADDER}
    spec = EnvGenRunSpec.model_validate({"designer": {"type": "learning-progress"}})
    assert isinstance(make_designer(spec), LearningProgressDesigner)
