"""The pure cycle engine: given a run's spec and what exists, say what to do next.

No I/O happens here. An adapter (the Kopf operator or the local runner) observes the world into ``Observed``,
calls ``decide``, carries out the returned actions, and calls ``decide`` again. The engine is level-based:
repeating a call after any restart yields the same actions, and task names are deterministic
(``<run>-c<cycle>-s<seed>``, ``-r<attempt>`` from the second attempt on), so a repeated launch finds the task
that already exists.

Schedule per seed: cycle 1..C trains in the cycle's designed envs, then in the real game, then evaluates;
the evaluations of all seeds are the feedback that designs cycle k+1. After cycle C a final phase trains in the
real game only. Terminal logic, in this order: goal reached -> Succeeded; failed tasks >= maxFailedTasks ->
Failed; the LLM endpoint unreachable for longer than spec.llm.outageToleranceSeconds -> Failed (LLMUnavailable);
all cycles and the final phase done -> Succeeded; deadline passed -> Failed.

An unreachable or overloaded LLM endpoint is an outage, not a failed design: the engine waits (exponential
backoff with deterministic jitter, at least the endpoint's Retry-After) and designs again when the retry is due.
A run that failed for a reason that no longer holds (maxFailedTasks or outageToleranceSeconds raised, or the
failures forgiven by a retry) is reopened.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import Field

from .contracts import (
    CycleDesign,
    CycleFeedback,
    CycleHistory,
    DesignRequest,
    LLMUsage,
    Phase,
    SkillStat,
    TrainingMetrics,
    TrainingTask,
    WeightedEnv,
)
from .envconfig import CrafterEnvConfig, EnvConfig
from .feedback import aggregate_feedback
from .models import CamelModel, as_float
from .spec import EnvGenRunSpec

TaskState = Literal["running", "succeeded", "failed"]
Outcome = Literal["Succeeded", "Failed"]

METRICS_UNAVAILABLE = "MetricsUnavailable"
TRAINER_ERROR = "TrainerError"
LLM_UNAVAILABLE = "LLMUnavailable"
MAX_FAILED_TASKS_REACHED = "MaxFailedTasksReached"
REOPENABLE = frozenset({MAX_FAILED_TASKS_REACHED, LLM_UNAVAILABLE})  # failures a spec change or a retry can undo
BACKOFF_BASE_SECONDS = 2.0
BACKOFF_CAP_SECONDS = 300.0


# ---- what exists -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ObservedTask:
    """A training task as the backend sees it. ``metrics`` comes from the task's output or from the record."""

    name: str
    phase: Phase
    cycle: int
    seed: int
    attempt: int
    state: TaskState
    metrics: TrainingMetrics | None = None
    reason: str | None = None  # why it failed, when it did
    message: str | None = None  # what the failure said (the executor's message, the trainer's error)
    durable: bool = True  # False: only short-lived objects show how it ended (a finished Job): record it

    @property
    def usable(self) -> bool:
        """Succeeded with readable metrics that carry no error."""
        return self.state == "succeeded" and unusable(self.metrics) is None

    @property
    def failed(self) -> bool:
        """Failed, or succeeded without usable metrics (MetricsUnavailable counts as a failure)."""
        return self.state == "failed" or (self.state == "succeeded" and not self.usable)


def unusable(metrics: TrainingMetrics | None) -> tuple[str, str] | None:
    """Why a task that exited cleanly still counts as failed, as (reason, message); None when its metrics are
    usable. The one rule for succeeded-without-metrics, used by every backend."""
    if metrics is None:
        return METRICS_UNAVAILABLE, "the task succeeded but its metrics are missing or unreadable"
    if metrics.error is not None:
        return TRAINER_ERROR, metrics.error
    return None


@dataclass(frozen=True)
class LLMOutage:
    """The designer's endpoint has not answered since ``since`` (the adapter's clock, epoch seconds)."""

    since: float
    last_attempt: float
    attempts: int
    reason: str
    retry_after: float | None = None  # the endpoint's Retry-After, seconds after last_attempt


@dataclass(frozen=True)
class Observed:
    """Everything the engine needs to know about a run's world."""

    designs: dict[int, CycleDesign] = field(default_factory=dict)
    tasks: tuple[ObservedTask, ...] = ()
    recorded: frozenset[str] = frozenset()  # task names whose metrics are durably recorded
    design_failures: int = 0
    elapsed_seconds: float | None = None  # since the run started
    finished: Outcome | None = None  # the run already ended
    finished_reason: str | None = None  # why it ended
    outage: LLMOutage | None = None  # the LLM endpoint is not answering
    now: float | None = None  # the adapter's clock (epoch seconds), for outage retries
    forgiven_failures: int = 0  # failures before the last retry of a failed run (they no longer count)


# ---- what to do ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DesignEnvs:
    """Ask the designer for the envs of ``cycle``."""

    cycle: int
    request: DesignRequest


@dataclass(frozen=True)
class LaunchTask:
    """Start a training task. Paths in ``task`` are relative to the backend's storage root."""

    task: TrainingTask
    attempt: int


@dataclass(frozen=True)
class RecordMetrics:
    """Persist a finished task's metrics durably (the task's own output may be garbage-collected)."""

    name: str
    metrics: TrainingMetrics


@dataclass(frozen=True)
class RecordFailure:
    """Persist a failed task's outcome durably (what showed it, such as a finished Job, may be deleted)."""

    name: str
    reason: str
    message: str
    metrics: TrainingMetrics | None = None


@dataclass(frozen=True)
class WaitForLLM:
    """The LLM endpoint is down: design again at ``retry_at`` (epoch seconds); nothing else to do until then."""

    cycle: int
    retry_at: float
    reason: str


@dataclass(frozen=True)
class Reopen:
    """A failed run whose failure no longer holds continues: clear its end mark."""

    message: str


@dataclass(frozen=True)
class Finish:
    """End the run."""

    outcome: Outcome
    reason: str
    message: str


Action = DesignEnvs | LaunchTask | RecordMetrics | RecordFailure | WaitForLLM | Reopen | Finish


# ---- the summary every adapter shows ---------------------------------------------------------------------
class CycleScore(CamelModel):
    """Score of one cycle's evaluation (mean over seeds)."""

    cycle: int
    score: float | None = None
    phase: Phase = "cycle"


class TaskCounts(CamelModel):
    """Training tasks (Jobs in a cluster) by state; succeeded without usable metrics counts as failed."""

    active: Annotated[int, Field(ge=0)] = 0
    succeeded: Annotated[int, Field(ge=0)] = 0
    failed: Annotated[int, Field(ge=0)] = 0


class RunSummary(CamelModel):
    """Progress of a run, derived purely from the spec and what exists."""

    total_cycles: int
    current_cycle: int = 0  # the cycle being designed or trained; total_cycles + 1 in the final phase
    cycles_completed: int = 0
    final_completed: bool = False
    tasks: TaskCounts = Field(default_factory=TaskCounts)
    design_failures: int = 0
    scores: list[CycleScore] = Field(default_factory=list)
    latest_success: dict[str, SkillStat] = Field(default_factory=dict)
    best_cycle: int | None = None
    best_score: float | None = None
    final_score: float | None = None
    llm_usage: LLMUsage = Field(default_factory=LLMUsage)
    llm_available: bool = True
    llm_reason: str | None = None  # why the endpoint is unavailable
    llm_retry_at: float | None = None  # next design attempt (epoch seconds) while unavailable
    message: str = ""


def score_text(score: float | None) -> str:
    """A score (percent) as messages and the run's status show it: two decimals ("n/a" when unknown)."""
    return "n/a" if score is None else f"{score:.2f}"


# ---- naming ----------------------------------------------------------------------------------------------
def task_name(run: str, phase: Phase, cycle: int, seed: int, attempt: int = 1) -> str:
    """Deterministic task name: ``<run>-c<k>-s<seed>`` / ``<run>-final-s<seed>``, ``-r<n>`` for retries."""
    base = f"{run}-final-s{seed}" if phase == "final" else f"{run}-c{cycle}-s{seed}"
    return base if attempt == 1 else f"{base}-r{attempt}"


def checkpoint_path(seed: int, phase: Phase, cycle: int) -> str:
    """Checkpoint written by a task, relative to the backend's storage root."""
    return f"checkpoints/s{seed}/final.pt" if phase == "final" else f"checkpoints/s{seed}/c{cycle}.pt"


# ---- the engine ------------------------------------------------------------------------------------------
class _View:
    """Indexes over Observed used by decide() and summarize()."""

    def __init__(self, spec: EnvGenRunSpec, observed: Observed) -> None:
        self.spec = spec
        self.observed = observed
        self.final_cycle = spec.cycles + 1
        self.attempts: dict[tuple[int, int], list[ObservedTask]] = {}
        self._feedback: dict[int, CycleFeedback] = {}
        for t in sorted(observed.tasks, key=lambda t: t.attempt):
            self.attempts.setdefault((t.cycle, t.seed), []).append(t)

    def latest(self, cycle: int, seed: int) -> ObservedTask | None:
        tries = self.attempts.get((cycle, seed))
        return tries[-1] if tries else None

    def done(self, cycle: int, seed: int) -> ObservedTask | None:
        """The attempt that produced usable metrics, if any."""
        return next((t for t in self.attempts.get((cycle, seed), []) if t.usable), None)

    def cycle_complete(self, cycle: int) -> bool:
        return all(self.done(cycle, s) for s in self.spec.seed_numbers)

    def feedback(self, cycle: int) -> CycleFeedback:
        """Pooled evaluation of a cycle's seeds (computed once per view)."""
        if cycle not in self._feedback:
            metrics = [t.metrics for s in self.spec.seed_numbers if (t := self.done(cycle, s)) and t.metrics]
            self._feedback[cycle] = aggregate_feedback(cycle, metrics)
        return self._feedback[cycle]

    def failures(self) -> int:
        """Failed tasks and content-failed designs since the last retry (outages never count)."""
        return max(0, failure_count(self.observed) - self.observed.forgiven_failures)

    def history(self, upto: int) -> list[CycleHistory]:
        return [
            CycleHistory(design=self.observed.designs[k], feedback=self.feedback(k))
            for k in range(1, upto)
            if k in self.observed.designs
        ]


def failure_count(observed: Observed) -> int:
    """Every failed task and content-failed design of a run, forgiven or not."""
    return sum(1 for t in observed.tasks if t.failed) + observed.design_failures


def decide(run: str, spec: EnvGenRunSpec, observed: Observed, summary: RunSummary | None = None) -> list[Action]:
    """The next actions for a run, in the order they should be carried out. ``summary``: ``summarize`` of the
    same world, when the caller has it (computed here otherwise)."""
    view = _View(spec, observed)
    summary = summary or _summarize(view, run)
    if observed.finished:
        reopenable = observed.finished == "Failed" and observed.finished_reason in REOPENABLE
        if reopenable and _terminal(view, summary) is None:
            return [Reopen(f"{observed.finished_reason} no longer holds; continuing")]
        return []
    actions: list[Action] = [
        RecordMetrics(t.name, t.metrics)
        for t in observed.tasks
        if t.usable and t.metrics is not None and t.name not in observed.recorded
    ]
    actions += [
        RecordFailure(t.name, t.reason or "Failed", t.message or "", t.metrics)
        for t in observed.tasks
        if t.failed and not t.durable
    ]
    finish = _terminal(view, summary)
    if finish:
        return [*actions, finish]
    if spec.suspend:
        return actions
    return actions + _next_work(run, view)


def _terminal(view: _View, summary: RunSummary) -> Finish | None:
    spec = view.spec
    if spec.objective.goal_score is not None:
        goal = as_float(spec.objective.goal_score)
        reached = [s for s in summary.scores if s.score is not None and s.score >= goal]
        if reached:
            first = reached[0]
            where = "final phase" if first.phase == "final" else f"cycle {first.cycle}"
            return Finish("Succeeded", "GoalReached", f"score {score_text(first.score)} >= goal {goal:g} in {where}")
    failures = view.failures()
    if failures >= spec.max_failed_tasks:
        return Finish(
            "Failed",
            MAX_FAILED_TASKS_REACHED,
            f"{failures} failed tasks or designs (maxFailedTasks {spec.max_failed_tasks})",
        )
    outage, tolerance = view.observed.outage, spec.llm.outage_tolerance_seconds
    if outage is not None and outage.last_attempt - outage.since >= tolerance:
        return Finish(
            "Failed",
            LLM_UNAVAILABLE,
            f"LLM endpoint unavailable for {outage.last_attempt - outage.since:.0f}s "
            f"(outageToleranceSeconds {tolerance}): {outage.reason}",
        )
    if summary.final_completed:
        score = score_text(summary.final_score)
        return Finish("Succeeded", "AllCyclesCompleted", f"{spec.cycles} cycles and final training done, score {score}")
    elapsed, deadline = view.observed.elapsed_seconds, spec.active_deadline_seconds
    if deadline is not None and elapsed is not None and elapsed > deadline:
        return Finish("Failed", "DeadlineExceeded", f"run exceeded activeDeadlineSeconds {deadline}")
    return None


def _next_work(run: str, view: _View) -> list[Action]:
    spec, observed = view.spec, view.observed
    for cycle in range(1, spec.cycles + 1):
        if view.cycle_complete(cycle):
            continue
        if cycle not in observed.designs:
            outage, now = observed.outage, observed.now
            if outage is not None and now is not None:
                retry_at = next_retry_at(run, spec, outage)
                if now < retry_at:
                    return [WaitForLLM(cycle, retry_at, outage.reason)]
            request = DesignRequest(
                game=spec.game, cycle=cycle, num_envs=spec.envs_per_cycle, history=view.history(cycle)
            )
            return [DesignEnvs(cycle, request)]
        return _launches(run, view, "cycle", cycle)
    return _launches(run, view, "final", view.final_cycle)


def _launches(run: str, view: _View, phase: Phase, cycle: int) -> list[Action]:
    actions: list[Action] = []
    for seed in view.spec.seed_numbers:
        if view.done(cycle, seed):
            continue
        latest = view.latest(cycle, seed)
        if latest is not None and not latest.failed:
            continue  # still running
        attempt = 1 if latest is None else latest.attempt + 1
        actions.append(LaunchTask(build_task(run, view.spec, view.observed, phase, cycle, seed, attempt), attempt))
    return actions


def retry_delay(run: str, attempts: int, retry_after: float | None = None) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt of an outage: exponential backoff (2 s doubling,
    capped at 5 min) times a jitter in [0.5, 1) derived from the run's name, so replicas and restarts agree;
    never less than the endpoint's Retry-After."""
    backoff = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1))
    digest = hashlib.sha256(f"{run}/{attempts}".encode()).digest()
    jitter = 0.5 + int.from_bytes(digest[:4], "big") / 2**33
    return max(backoff * jitter, retry_after or 0.0)


def next_retry_at(run: str, spec: EnvGenRunSpec, outage: LLMOutage) -> float:
    """When to design again during an outage; no later than the end of the tolerated outage."""
    delay = retry_delay(run, outage.attempts, outage.retry_after)
    return min(outage.last_attempt + delay, outage.since + spec.llm.outage_tolerance_seconds)


def outage_after(previous: LLMOutage | None, now: float, reason: str, retry_after: float | None) -> LLMOutage:
    """The outage after one more attempt found the endpoint unavailable at ``now``."""
    if previous is None:
        return LLMOutage(since=now, last_attempt=now, attempts=1, reason=reason, retry_after=retry_after)
    return LLMOutage(
        since=previous.since, last_attempt=now, attempts=previous.attempts + 1, reason=reason, retry_after=retry_after
    )


def build_task(
    run: str, spec: EnvGenRunSpec, observed: Observed, phase: Phase, cycle: int, seed: int, attempt: int
) -> TrainingTask:
    """The training task for one (phase, cycle, seed) attempt; paths relative to the storage root."""
    name = task_name(run, phase, cycle, seed, attempt)
    previous = cycle - 1
    checkpoint_in = checkpoint_path(seed, "cycle", previous) if previous >= 1 else None
    common = {
        "run": run,
        "name": name,
        "phase": phase,
        "cycle": cycle,
        "seed": seed,
        "game": spec.game,
        "eval_episodes": spec.training.eval_episodes,
        "eval_runs": spec.training.eval_runs,
        "agent": spec.agent,
        "checkpoint_in": checkpoint_in,
        "checkpoint_out": checkpoint_path(seed, phase, cycle),
        "output_dir": f"tasks/{name}",
    }
    if phase == "final":
        return TrainingTask(**common, game_steps=spec.training.final_steps)
    envs = [
        WeightedEnv(name=env.name, config=_with_length(env.config, spec.training.designed_env_length))
        for env in observed.designs[cycle].envs
    ]
    designed, game = spec.training.designed_env_steps, spec.training.game_steps
    if not envs:  # the "none" designer: designed-env steps go to the real game (the equal-step baseline)
        designed, game = 0, designed + game
    return TrainingTask(**common, envs=envs, designed_env_steps=designed, game_steps=game)


def _with_length(config: EnvConfig, length: int) -> EnvConfig:
    if isinstance(config, CrafterEnvConfig):
        world = config.world_settings.model_copy(update={"length": length})
        return config.model_copy(update={"world_settings": world})
    return config


def summarize(spec: EnvGenRunSpec, observed: Observed, run: str = "") -> RunSummary:
    """Progress, scores and the latest per-skill success of a run (``run`` names it for outage retry times)."""
    return _summarize(_View(spec, observed), run)


def _summarize(view: _View, run: str = "") -> RunSummary:
    spec, observed = view.spec, view.observed
    counts = TaskCounts(
        active=sum(1 for t in observed.tasks if t.state == "running"),
        succeeded=sum(1 for t in observed.tasks if t.usable),
        failed=sum(1 for t in observed.tasks if t.failed),
    )
    completed = [k for k in range(1, spec.cycles + 1) if view.cycle_complete(k)]
    scores = [CycleScore(cycle=k, score=view.feedback(k).score) for k in completed]
    final_completed = view.cycle_complete(view.final_cycle)
    final_score = None
    latest: dict[str, SkillStat] = view.feedback(completed[-1]).success if completed else {}
    if final_completed:
        final = view.feedback(view.final_cycle)
        final_score = final.score
        latest = final.success
        scores.append(CycleScore(cycle=view.final_cycle, score=final_score, phase="final"))
    scored = [s for s in scores if s.score is not None]
    best = max(scored, key=lambda s: s.score or 0.0) if scored else None
    usage = LLMUsage()
    for design in observed.designs.values():
        usage = usage + design.usage
    current = next((k for k in range(1, spec.cycles + 2) if not view.cycle_complete(k)), spec.cycles + 1)
    outage = observed.outage
    retry_at = next_retry_at(run, spec, outage) if outage is not None else None
    message = _progress_message(spec, current, final_completed, counts)
    if outage is not None:
        message = f"{message}; LLM unavailable ({outage.attempts} attempt(s)): {outage.reason}"
    return RunSummary(
        total_cycles=spec.cycles,
        current_cycle=current,
        cycles_completed=len(completed),
        final_completed=final_completed,
        tasks=counts,
        design_failures=observed.design_failures,
        scores=scores,
        latest_success=latest,
        best_cycle=best.cycle if best else None,
        best_score=best.score if best else None,
        final_score=final_score,
        llm_usage=usage,
        llm_available=outage is None,
        llm_reason=outage.reason if outage is not None else None,
        llm_retry_at=retry_at,
        message=message,
    )


def _progress_message(spec: EnvGenRunSpec, current: int, final_done: bool, counts: TaskCounts) -> str:
    if final_done:
        return "all cycles and final training done"
    where = "final training" if current > spec.cycles else f"cycle {current}/{spec.cycles}"
    return f"{where}: {counts.active} task(s) running, {counts.succeeded} succeeded, {counts.failed} failed"


def feedback_by_cycle(spec: EnvGenRunSpec, observed: Observed) -> dict[int, CycleFeedback]:
    """Pooled evaluation of every completed cycle (the final phase is cycle ``spec.cycles + 1``)."""
    view = _View(spec, observed)
    return {k: view.feedback(k) for k in range(1, spec.cycles + 2) if view.cycle_complete(k)}
