"""The stable seams between parts: the task JSON (engine -> trainer), the metrics JSON (trainer -> engine),
and a cycle's design and feedback (designer <-> engine). camelCase JSON, unknown keys are errors.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal, Protocol

from pydantic import Field

from .envconfig import DesignedEnv, EnvConfig, Finding
from .models import CamelModel
from .spec import AgentSpec, DesignerType, GameName

Phase = Literal["cycle", "final"]
COMPACT_LIMIT_BYTES = 4096

# Exit codes of `envgen-train`. A Job's podFailurePolicy fails fast on EXIT_INVALID_TASK (retrying cannot help).
EXIT_OK = 0
EXIT_RUNTIME_ERROR = 1
EXIT_INVALID_TASK = 2
EXIT_CHECKPOINT_ERROR = 3

# The trainer's in-task checkpoint, in the task's outputDir: a task started again with the same outputDir (a Pod
# retried after a disruption, a local run resumed) continues from it instead of from checkpointIn.
RESUME_CHECKPOINT = "resume.pt"


# ---- engine -> trainer -----------------------------------------------------------------------------------
class WeightedEnv(CamelModel):
    """A designed env to train in; weight is its share of the parallel envs."""

    name: Annotated[str, Field(min_length=1, max_length=80)]
    config: EnvConfig
    weight: Annotated[int, Field(ge=1, le=100)] = 1


class TrainingTask(CamelModel):
    """What one training task (a Job or a local process) does: `envgen-train --task task.json`.

    Steps run in order: ``designedEnvSteps`` in ``envs`` (all at once), then ``gameSteps`` in the unmodified
    game, then ``evalRuns`` x ``evalEpisodes`` evaluation episodes in the unmodified game.
    Paths are the backend's (a run directory, or the checkpoint volume's mount). While it trains, the trainer
    keeps a resumable checkpoint in ``outputDir`` (:data:`RESUME_CHECKPOINT`), written every
    ``resumeEverySeconds`` and every ``resumeEveryUpdates`` PPO updates (0 turns either off) and at the end of
    each training phase.
    """

    run: Annotated[str, Field(min_length=1, max_length=63)]
    name: Annotated[str, Field(min_length=1, max_length=63)]
    phase: Phase
    cycle: Annotated[int, Field(ge=1)]
    seed: Annotated[int, Field(ge=0)]
    game: GameName
    envs: list[WeightedEnv] = Field(default_factory=list)
    designed_env_steps: Annotated[int, Field(ge=0)] = 0
    game_steps: Annotated[int, Field(ge=0)] = 0
    eval_episodes: Annotated[int, Field(ge=0)] = 10
    eval_runs: Annotated[int, Field(ge=1)] = 3
    agent: AgentSpec = Field(default_factory=AgentSpec)
    checkpoint_in: str | None = None
    checkpoint_out: str
    output_dir: str
    termination_message_path: str = "/dev/termination-log"
    resume_every_seconds: Annotated[int, Field(ge=0)] = 300
    resume_every_updates: Annotated[int, Field(ge=0)] = 0


# ---- trainer -> engine -----------------------------------------------------------------------------------
class SkillStat(CamelModel):
    """Success rate in percent (0-100): mean and std over evaluation runs (and seeds, once aggregated); once
    aggregated, ``lowest`` is the weakest seed's mean (a skill one seed lost hides in the mean of the others)."""

    mean: float
    std: float = 0.0
    lowest: float | None = None


class EnvResult(CamelModel):
    """How the agent did inside one designed env during training."""

    name: str
    episodes: int
    success: dict[str, float] = Field(default_factory=dict)
    score: float | None = None
    reward_mean: float | None = None


class UpdateStats(CamelModel):
    """PPO update statistics of a task, each the mean over its updates (CleanRL's ``losses/*``)."""

    policy_loss: float
    value_loss: float
    entropy: float
    old_approx_kl: float  # mean of -log(ratio)
    approx_kl: float  # mean of (ratio - 1) - log(ratio), the lower-variance estimator
    clipfrac: float  # share of probability ratios outside 1 +- clipCoef
    explained_variance: float | None = None  # of the returns by the value predictions; None when returns never vary


class TrainingMetrics(CamelModel):
    """What a finished training task reports. ``error`` set means the task failed."""

    run: str = ""
    name: str = ""
    phase: Phase = "cycle"
    cycle: int = 0
    seed: int = 0
    game: GameName = "crafter"
    global_step: int = 0  # the agent's step counter after this task (continues across cycles)
    steps: int = 0  # env steps done by this task
    wall_time_seconds: float = 0.0
    steps_per_second: float = 0.0
    success: dict[str, SkillStat] = Field(default_factory=dict)  # Crafter: 22 achievements; Heist: "heist_success"
    score: float | None = None  # Crafter score (percent) over eval episodes; Heist: success percent
    score_std: float | None = None
    reward_mean: float | None = None
    reward_std: float | None = None
    episode_length_mean: float | None = None
    eval_episodes: int = 0
    train_success: dict[str, float] = Field(default_factory=dict)  # over real-game training episodes
    train_score: float | None = None
    per_env: list[EnvResult] = Field(default_factory=list)
    updates: UpdateStats | None = None  # over this task's PPO updates (None: it trained no steps)
    device: str | None = None
    resumed_from_step: int | None = None  # set when the task continued from its in-task checkpoint at this step
    error: str | None = None
    exit_code: int | None = None

    @classmethod
    def for_task(cls, task: TrainingTask, **results: Any) -> TrainingMetrics:
        """Metrics of a task: its identity (run, name, phase, cycle, seed, game) plus ``results``."""
        identity = {k: getattr(task, k) for k in ("run", "name", "phase", "cycle", "seed", "game")}
        return cls(**identity, **results)

    def compact(self, limit: int = COMPACT_LIMIT_BYTES) -> str:
        """Compact JSON (<= limit bytes) for a container termination message; drops detail until it fits."""
        doc = _rounded(self.dump())
        text = json.dumps(doc, separators=(",", ":"))
        for drop in ("perEnv", "trainSuccess"):
            if len(text.encode()) <= limit:
                break
            doc.pop(drop, None)
            text = json.dumps(doc, separators=(",", ":"))
        if len(text.encode()) > limit and doc.get("error"):
            doc["error"] = str(doc["error"])[:500]
            text = json.dumps(doc, separators=(",", ":"))
        if len(text.encode()) > limit:
            raise ValueError(f"metrics do not fit in {limit} bytes even without detail")
        return text


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 2) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


# ---- designer <-> engine ---------------------------------------------------------------------------------
class ChatMessage(CamelModel):
    """One chat turn."""

    role: Literal["system", "user", "assistant"]
    content: str


class LLMUsage(CamelModel):
    """LLM accounting for one design step (or a whole run, summed)."""

    calls: int = 0
    cached_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_seconds: float = 0.0

    def __add__(self, other: LLMUsage) -> LLMUsage:
        return LLMUsage(
            calls=self.calls + other.calls,
            cached_calls=self.cached_calls + other.cached_calls,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            latency_seconds=self.latency_seconds + other.latency_seconds,
        )


class CycleFeedback(CamelModel):
    """What the agent achieved after a cycle: the designer's input for the next one."""

    cycle: int
    success: dict[str, SkillStat]
    score: float | None = None
    per_env: list[EnvResult] = Field(default_factory=list)


class CycleDesign(CamelModel):
    """A designer's output for one cycle: N envs plus the record of how they were obtained."""

    cycle: int
    designer: DesignerType
    envs: list[DesignedEnv]
    chat: list[ChatMessage] = Field(default_factory=list)  # conversation ending with the accepted answer
    findings: list[Finding] = Field(default_factory=list)  # validation / critic notes on the final set
    notes: list[str] = Field(default_factory=list)  # what happened: fallbacks, repairs, critic verdicts
    usage: LLMUsage = Field(default_factory=LLMUsage)
    attempts: list[dict[str, Any]] = Field(default_factory=list)  # per-request log (no secrets)


class CycleHistory(CamelModel):
    """One finished cycle as the designer sees it."""

    design: CycleDesign
    feedback: CycleFeedback


class DesignRequest(CamelModel):
    """Input of a designer: design ``numEnvs`` envs for ``cycle`` given the previous cycles."""

    game: GameName
    cycle: int
    num_envs: int
    history: list[CycleHistory] = Field(default_factory=list)


class DesignError(Exception):
    """No usable design. ``design`` carries the attempts, notes and usage so far (or None)."""

    def __init__(self, message: str, design: CycleDesign | None = None) -> None:
        super().__init__(message)
        self.design = design


class DesignUnavailable(DesignError):
    """The designer's LLM endpoint did not answer (connection, timeout, 429, 5xx): wait and retry, not a failure.

    ``retry_after`` is the endpoint's ``Retry-After`` in seconds, when it sent one.
    """

    def __init__(self, message: str, design: CycleDesign | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, design)
        self.retry_after = retry_after


class Designer(Protocol):
    """Returns exactly ``request.num_envs`` envs (``none``: zero), schema-valid and free of error findings.

    Raises :class:`DesignUnavailable` when its endpoint is down, :class:`DesignError` for unusable output.
    ``close()`` releases what the designer holds (its LLM client); a designer holding nothing does nothing.
    """

    name: DesignerType

    def design(self, request: DesignRequest) -> CycleDesign: ...

    def close(self) -> None: ...
