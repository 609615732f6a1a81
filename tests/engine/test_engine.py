"""The pure cycle engine: schedules, retries, terminal logic and its order, determinism."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from envgen.achievements import ACHIEVEMENTS
from envgen.contracts import CycleDesign, SkillStat, TrainingMetrics
from envgen.engine import (
    DesignEnvs,
    Finish,
    LaunchTask,
    Observed,
    ObservedTask,
    RecordFailure,
    RecordMetrics,
    decide,
    feedback_by_cycle,
    summarize,
    task_name,
)
from envgen.envconfig import CrafterEnvConfig, CrafterEnvironmentSettings, DesignedEnv
from envgen.spec import EnvGenRunSpec

RUN = "demo"


def make_spec(**overrides: Any) -> EnvGenRunSpec:
    base: dict[str, Any] = {
        "cycles": 2,
        "envsPerCycle": 2,
        "training": {"designedEnvSteps": 100, "gameSteps": 50, "finalSteps": 80, "designedEnvLength": 256},
    }
    base.update(overrides)
    return EnvGenRunSpec.model_validate(base)


def design(cycle: int, n: int = 2) -> CycleDesign:
    envs = [
        DesignedEnv(
            name=f"env-{cycle}-{i}",
            purpose="collect_coal",
            config=CrafterEnvConfig(environment_settings=CrafterEnvironmentSettings(target_biome="mountain")),
        )
        for i in range(n)
    ]
    return CycleDesign(cycle=cycle, designer="heuristic", envs=envs)


def metrics(name: str, level: float, error: str | None = None) -> TrainingMetrics:
    return TrainingMetrics(
        name=name,
        success={a: SkillStat(mean=level, std=1.0) for a in ACHIEVEMENTS},
        score=level,
        error=error,
    )


class World:
    """A tiny in-memory backend that carries out the engine's actions, for whole-run simulations."""

    def __init__(self, spec: EnvGenRunSpec) -> None:
        self.spec = spec
        self.observed = Observed()
        self.launched: list[str] = []
        self.requests: list[DesignEnvs] = []

    def apply(self, actions: list[Any]) -> None:
        o = self.observed
        for a in actions:
            if isinstance(a, DesignEnvs):
                self.requests.append(a)
                o = replace(o, designs={**o.designs, a.cycle: design(a.cycle, a.request.num_envs)})
            elif isinstance(a, LaunchTask):
                self.launched.append(a.task.name)
                t = ObservedTask(a.task.name, a.task.phase, a.task.cycle, a.task.seed, a.attempt, "running")
                o = replace(o, tasks=(*o.tasks, t))
            elif isinstance(a, RecordMetrics):
                o = replace(o, recorded=o.recorded | {a.name})
            elif isinstance(a, RecordFailure):
                o = replace(o, tasks=tuple(replace(t, durable=True) if t.name == a.name else t for t in o.tasks))
            elif isinstance(a, Finish):
                o = replace(o, finished=a.outcome)
        self.observed = o

    def complete_running(self, level: float = 10.0, state: str = "succeeded", with_metrics: bool = True) -> None:
        tasks = tuple(
            replace(t, state=state, metrics=metrics(t.name, level) if with_metrics else None)
            if t.state == "running"
            else t
            for t in self.observed.tasks
        )
        self.observed = replace(self.observed, tasks=tasks)

    def tick(self) -> list[Any]:
        actions = decide(RUN, self.spec, self.observed)
        self.apply(actions)
        return actions


def test_fresh_run_designs_cycle_one_first() -> None:
    actions = decide(RUN, make_spec(), Observed())
    assert len(actions) == 1 and isinstance(actions[0], DesignEnvs)
    assert actions[0].cycle == 1 and actions[0].request.num_envs == 2 and actions[0].request.history == []


def test_full_run_order_and_feedback() -> None:
    spec = make_spec(seeds=2)
    world = World(spec)
    world.tick()  # design c1
    launched = world.tick()
    assert [a.task.name for a in launched] == ["demo-c1-s0", "demo-c1-s1"]
    task = launched[0].task
    assert task.designed_env_steps == 100 and task.game_steps == 50
    assert task.checkpoint_in is None and task.checkpoint_out == "checkpoints/s0/c1.pt"
    assert all(e.config.world_settings.length == 256 for e in task.envs)  # type: ignore[union-attr]
    assert world.tick() == []  # waiting for running tasks
    world.complete_running(level=20.0)
    actions = world.tick()
    assert [type(a) for a in actions] == [RecordMetrics, RecordMetrics, DesignEnvs]
    request = actions[-1].request
    assert request.cycle == 2 and len(request.history) == 1
    assert request.history[0].feedback.success["collect_coal"].mean == pytest.approx(20.0)
    c2 = world.tick()
    assert [a.task.name for a in c2] == ["demo-c2-s0", "demo-c2-s1"]
    assert c2[1].task.checkpoint_in == "checkpoints/s1/c1.pt"
    world.complete_running(level=30.0)
    final = world.tick()
    assert [a.task.name for a in final if isinstance(a, LaunchTask)] == ["demo-final-s0", "demo-final-s1"]
    ft = final[-1].task
    assert ft.phase == "final" and ft.game_steps == 80 and ft.designed_env_steps == 0 and ft.envs == []
    assert ft.checkpoint_in == "checkpoints/s1/c2.pt" and ft.checkpoint_out == "checkpoints/s1/final.pt"
    world.complete_running(level=40.0)
    end = world.tick()
    assert isinstance(end[-1], Finish) and end[-1].outcome == "Succeeded" and end[-1].reason == "AllCyclesCompleted"
    assert world.tick() == []  # finished runs do nothing
    summary = summarize(spec, world.observed)
    assert summary.cycles_completed == 2 and summary.final_completed
    assert [s.score for s in summary.scores] == [20.0, 30.0, 40.0]
    assert summary.best_cycle == 3 and summary.final_score == 40.0
    assert world.launched == ["demo-c1-s0", "demo-c1-s1", "demo-c2-s0", "demo-c2-s1", "demo-final-s0", "demo-final-s1"]


def test_decide_is_deterministic_and_idempotent() -> None:
    spec = make_spec()
    world = World(spec)
    world.tick()
    world.tick()
    first = decide(RUN, spec, world.observed)
    assert first == decide(RUN, spec, world.observed) == []


def test_failed_task_is_retried_under_a_new_name() -> None:
    spec = make_spec(maxFailedTasks=3)
    world = World(spec)
    world.tick()
    world.tick()
    world.complete_running(state="failed", with_metrics=False)
    retry = world.tick()
    assert [a.task.name for a in retry] == ["demo-c1-s0-r2"] and retry[0].attempt == 2
    assert retry[0].task.checkpoint_out == "checkpoints/s0/c1.pt"
    world.complete_running(level=5.0)
    assert isinstance(world.tick()[-1], DesignEnvs)


def test_succeeded_without_metrics_counts_as_failure() -> None:
    spec = make_spec(maxFailedTasks=1)
    world = World(spec)
    world.tick()
    world.tick()
    world.complete_running(with_metrics=False)
    end = world.tick()
    assert end == [Finish("Failed", "MaxFailedTasksReached", end[0].message)]
    assert summarize(spec, world.observed).tasks.failed == 1


def test_metrics_with_error_count_as_failure() -> None:
    spec = make_spec(maxFailedTasks=5)
    world = World(spec)
    world.tick()
    world.tick()
    t = world.observed.tasks[0]
    world.observed = replace(world.observed, tasks=(replace(t, state="succeeded", metrics=metrics(t.name, 1, "boom")),))
    actions = world.tick()
    assert [a.task.name for a in actions] == ["demo-c1-s0-r2"]  # no RecordMetrics for an errored result


def test_a_failure_only_short_lived_objects_show_is_recorded_once() -> None:
    spec = make_spec(maxFailedTasks=5)
    world = World(spec)
    world.tick()
    world.tick()
    t = world.observed.tasks[0]
    failed = replace(t, state="failed", reason="BackoffLimitExceeded", message="exit 1", durable=False)
    world.observed = replace(world.observed, tasks=(failed,))
    actions = world.tick()
    assert actions[0] == RecordFailure(t.name, "BackoffLimitExceeded", "exit 1", None)
    assert [a.task.name for a in actions[1:]] == ["demo-c1-s0-r2"]
    assert not any(isinstance(a, RecordFailure) for a in world.tick())
    assert summarize(spec, world.observed).tasks.failed == 1


def test_design_failures_count_towards_max_failed() -> None:
    spec = make_spec(maxFailedTasks=2)
    assert isinstance(decide(RUN, spec, Observed(design_failures=1))[0], DesignEnvs)
    end = decide(RUN, spec, Observed(design_failures=2))
    assert isinstance(end[0], Finish) and end[0].reason == "MaxFailedTasksReached"


def test_terminal_order_goal_before_failures_before_completion() -> None:
    spec = make_spec(cycles=1, maxFailedTasks=1, objective={"goalScore": "25"})
    done = (
        ObservedTask("demo-c1-s0", "cycle", 1, 0, 1, "succeeded", metrics("demo-c1-s0", 30.0)),
        ObservedTask("demo-final-s0", "final", 2, 0, 1, "failed"),
    )
    observed = Observed(designs={1: design(1)}, tasks=done)
    # goal reached wins over a failure count at the limit
    assert decide(RUN, spec, observed)[-1].reason == "GoalReached"  # type: ignore[union-attr]
    # without a goal, failures win over anything else
    no_goal = make_spec(cycles=1, maxFailedTasks=1)
    assert decide(RUN, no_goal, observed)[-1].reason == "MaxFailedTasksReached"  # type: ignore[union-attr]
    # failures at the limit beat a completed schedule
    finished = (*done, ObservedTask("demo-final-s0-r2", "final", 2, 0, 2, "succeeded", metrics("x", 10.0)))
    observed_done = replace(observed, tasks=finished)
    assert decide(RUN, no_goal, observed_done)[-1].reason == "MaxFailedTasksReached"  # type: ignore[union-attr]
    relaxed = make_spec(cycles=1, maxFailedTasks=2)
    assert decide(RUN, relaxed, observed_done)[-1].reason == "AllCyclesCompleted"  # type: ignore[union-attr]


def test_goal_not_reached_continues() -> None:
    spec = make_spec(objective={"goalScore": "50"})
    world = World(spec)
    world.tick()
    world.tick()
    world.complete_running(level=49.9)
    assert not any(isinstance(a, Finish) for a in world.tick())


def test_deadline_exceeded_fails_the_run() -> None:
    spec = make_spec(activeDeadlineSeconds=60)
    assert decide(RUN, spec, Observed(elapsed_seconds=30))[0] == decide(RUN, spec, Observed())[0]
    end = decide(RUN, spec, Observed(elapsed_seconds=61))
    assert isinstance(end[0], Finish) and end[0].reason == "DeadlineExceeded"


def test_suspend_launches_nothing_but_still_records() -> None:
    spec = make_spec(suspend=True)
    assert decide(RUN, spec, Observed()) == []
    t = ObservedTask("demo-c1-s0", "cycle", 1, 0, 1, "succeeded", metrics("demo-c1-s0", 3.0))
    assert decide(RUN, spec, Observed(designs={1: design(1)}, tasks=(t,))) == [RecordMetrics(t.name, t.metrics)]  # type: ignore[arg-type]


def test_none_designer_moves_designed_steps_to_the_real_game() -> None:
    spec = make_spec(designer={"type": "none"})
    empty = CycleDesign(cycle=1, designer="none", envs=[])
    launch = decide(RUN, spec, Observed(designs={1: empty}))
    assert isinstance(launch[0], LaunchTask)
    assert launch[0].task.envs == [] and launch[0].task.designed_env_steps == 0 and launch[0].task.game_steps == 150


def test_running_task_blocks_relaunch_and_next_cycle() -> None:
    spec = make_spec()
    t = ObservedTask("demo-c1-s0", "cycle", 1, 0, 1, "running")
    assert decide(RUN, spec, Observed(designs={1: design(1)}, tasks=(t,))) == []


def test_finished_run_is_inert() -> None:
    assert decide(RUN, make_spec(), Observed(finished="Failed")) == []


def test_task_names_fit_kubernetes_limits() -> None:
    longest = task_name("a" * 40, "final", 51, 999 + 15, 100)  # firstSeed <= 999, seeds <= 16
    assert len(longest) <= 63
    assert task_name("r", "cycle", 3, 1) == "r-c3-s1" and task_name("r", "cycle", 3, 1, 2) == "r-c3-s1-r2"


def test_first_seed_runs_and_pools_only_its_own_seeds() -> None:
    spec = make_spec(seeds=2, firstSeed=3, cycles=1)
    world = World(spec)
    world.tick()
    launched = world.tick()
    assert [(a.task.name, a.task.seed) for a in launched] == [("demo-c1-s3", 3), ("demo-c1-s4", 4)]
    assert launched[1].task.checkpoint_out == "checkpoints/s4/c1.pt"
    # a finished task of another seed (seed 0, say a first batch) neither completes the cycle nor joins its feedback
    stray = ObservedTask("demo-c1-s0", "cycle", 1, 0, 1, "succeeded", metrics("demo-c1-s0", 90.0))
    world.observed = replace(world.observed, tasks=(*world.observed.tasks, stray))
    assert [type(a) for a in world.tick()] == [RecordMetrics]  # recorded, nothing else
    world.complete_running(level=20.0)
    actions = world.tick()
    assert [type(a) for a in actions] == [RecordMetrics, RecordMetrics, LaunchTask, LaunchTask]
    assert [a.task.name for a in actions[2:]] == ["demo-final-s3", "demo-final-s4"]
    assert actions[3].task.checkpoint_in == "checkpoints/s4/c1.pt"
    assert feedback_by_cycle(spec, world.observed)[1].score == pytest.approx(20.0)


def test_feedback_pools_seeds() -> None:
    spec = make_spec(seeds=2)
    tasks = tuple(
        ObservedTask(f"demo-c1-s{s}", "cycle", 1, s, 1, "succeeded", metrics(f"demo-c1-s{s}", 10.0 * (s + 1)))
        for s in range(2)
    )
    fb = feedback_by_cycle(spec, Observed(designs={1: design(1)}, tasks=tasks))[1]
    assert fb.success["collect_wood"].mean == pytest.approx(15.0)
    assert fb.success["collect_wood"].std == pytest.approx((1.0 + 25.0) ** 0.5)
    assert fb.score == pytest.approx(15.0)
