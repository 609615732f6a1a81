"""The EnvGenRun document: one YAML format for ``envgen run run.yaml`` and ``kubectl apply -f run.yaml``.

Kubernetes conventions: camelCase keys, no floats (decimals are quoted strings), units in field names.
Every problem is reported with its field path and what is allowed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from . import safeyaml
from .models import CamelModel, DecimalString, as_float, describe_validation_error

DesignerType = Literal["llm", "fixed", "easy-to-hard", "adversarial", "heuristic", "learning-progress", "none"]
DesignMode = Literal["free", "constrained"]
GameName = Literal["crafter", "heist"]

NAME_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
MAX_NAME_LENGTH = 40  # child names <run>-c<k>-s<seed>-r<n> must fit in 63 characters

# An http(s) URL without credentials, whitespace or quotes (an API key goes in apiKey, never in the URL).
BASE_URL_RE = re.compile(r"^https?://[^\s/?#@\"'<>\\]+(/[^\s\"'<>\\]*)?$")
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
# Model names as OpenAI-compatible servers spell them ("gpt-4o-mini", "Qwen/Qwen2.5-7B-Instruct", "llama3:8b").
MODEL_NAME = r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$"

MAX_ENTRIES = 64  # entries of a map field (the CRD's maxProperties)

PosInt = Annotated[int, Field(ge=1)]
NonNegInt = Annotated[int, Field(ge=0)]


class SpecError(ValueError):
    """An invalid EnvGenRun document; ``str()`` names every bad field and what is allowed."""


class SpecModel(CamelModel):
    """A part of the EnvGenRun document: strict, so booleans, numbers and strings never coerce into each other
    (YAML ``true`` is no ``cycles: 1``, ``"4"`` no integer); decimals are DecimalString (int or quoted string)."""

    model_config = CamelModel.model_config | {"strict": True}


class Metadata(SpecModel):
    """The subset of Kubernetes object metadata a run uses."""

    model_config = SpecModel.model_config | {"extra": "ignore"}  # server-set fields are fine here

    name: Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH)]
    namespace: Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL)] | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _dns_label(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError(
                "must be a DNS-1035 label: lowercase letters, digits and '-', starting with a letter "
                f"(at most {MAX_NAME_LENGTH} characters)"
            )
        return v


class SecretKeyRef(SpecModel):
    """A key of a Kubernetes Secret in the run's namespace."""

    name: Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)]
    key: Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")]


class ApiKeySource(SpecModel):
    """Where the LLM API key comes from: an environment variable (local) or a Secret (cluster). Never inline."""

    env: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] | None = None
    secret_key_ref: SecretKeyRef | None = None


class LLMSpec(SpecModel):
    """An OpenAI-compatible endpoint. With no baseURL, local mode starts the embedded model."""

    base_url: Annotated[str, Field(max_length=2048)] | None = Field(default=None, alias="baseURL")
    model: Annotated[str, Field(min_length=1, max_length=256, pattern=MODEL_NAME)] = "smollm2-135m"
    api_key: ApiKeySource | None = None
    temperature: DecimalString = "0"
    timeout_seconds: Annotated[int, Field(ge=1, le=3600)] = 120
    max_retries: Annotated[int, Field(ge=0, le=10)] = 2
    max_tokens: Annotated[int, Field(ge=64, le=32768)] = 2048
    outage_tolerance_seconds: Annotated[int, Field(ge=0, le=7 * 86400)] = Field(
        default=3600,
        description="How long the run waits out an unreachable or overloaded endpoint (connection refused, "
        "timeout, 429, 5xx), retrying with backoff, before it fails with reason LLMUnavailable. Mutable: raising "
        "it brings a run that failed this way back to Running.",
    )

    @field_validator("temperature")
    @classmethod
    def _temperature_range(cls, v: str) -> str:
        if not 0.0 <= as_float(v) <= 2.0:
            raise ValueError(f'must be between "0" and "2", got "{v}"')
        return v

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is not None and not BASE_URL_RE.match(v):
            raise ValueError(f"must be an http:// or https:// URL without credentials, spaces or quotes, got {v!r}")
        return v


class DesignerSpec(SpecModel):
    """Which designer writes the environments."""

    type: DesignerType = "llm"
    critic: bool = True  # detect degenerate LLM designs and ask for one repair
    mode: DesignMode = Field(
        default="free",
        description="How the llm and fixed designers ask: free (the paper: the LLM writes every setting of each "
        "environment; for capable endpoints) or constrained (the LLM only picks one skill to practise per "
        "environment from the catalogue's enums, no two alike; for small local models).",
    )


class TrainingSpec(SpecModel):
    """Environment steps per phase (per seed). Designed-env steps are shared by the N envs."""

    designed_env_steps: NonNegInt = 120_000
    game_steps: NonNegInt = 120_000
    final_steps: NonNegInt = 1_000_000
    eval_episodes: PosInt = 10
    eval_runs: Annotated[int, Field(ge=1, le=10)] = 3
    designed_env_length: Annotated[int, Field(ge=16, le=100_000)] = 1024


class AgentSpec(SpecModel):
    """PPO settings (CleanRL names). Decimals are strings."""

    network: Literal["nature", "impala"] = "nature"
    learning_rate: DecimalString = "3e-4"
    num_envs: Annotated[int, Field(ge=1, le=256)] = 8
    rollout_steps: Annotated[int, Field(ge=8, le=8192)] = 512
    epochs: Annotated[int, Field(ge=1, le=32)] = 3
    minibatches: Annotated[int, Field(ge=1, le=256)] = 8
    gamma: DecimalString = "0.95"
    gae_lambda: DecimalString = "0.65"
    clip_coef: DecimalString = "0.2"
    entropy_coef: DecimalString = "0.01"
    value_coef: DecimalString = "0.5"
    max_grad_norm: DecimalString = "0.5"
    device: Literal["auto", "cpu", "cuda"] = "auto"

    @model_validator(mode="after")
    def _batch_divisible(self) -> AgentSpec:
        if (self.num_envs * self.rollout_steps) % self.minibatches:
            raise ValueError(
                f"numEnvs*rolloutSteps ({self.num_envs * self.rollout_steps}) must be divisible by "
                f"minibatches ({self.minibatches})"
            )
        return self


class ObjectiveSpec(SpecModel):
    """Stop early with Succeeded once the score (percent) reaches goalScore."""

    goal_score: DecimalString | None = None


class Toleration(SpecModel):
    """A pod toleration (subset of core/v1 Toleration)."""

    key: Annotated[str, Field(max_length=253)] | None = None
    operator: Literal["Exists", "Equal"] | None = None
    value: Annotated[str, Field(max_length=253)] | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = None


class ResourcesSpec(SpecModel):
    """Resources and placement of training Jobs (ignored by local mode)."""

    image: Annotated[str, Field(min_length=1, max_length=512, pattern=r"^[^\s]+$")] | None = None
    requests: dict[str, Annotated[str, Field(max_length=64)]] = Field(
        default_factory=lambda: {"cpu": "2", "memory": "4Gi"}, max_length=MAX_ENTRIES
    )
    limits: dict[str, Annotated[str, Field(max_length=64)]] = Field(default_factory=dict, max_length=MAX_ENTRIES)
    node_selector: dict[str, Annotated[str, Field(max_length=253)]] = Field(
        default_factory=dict, max_length=MAX_ENTRIES
    )
    tolerations: Annotated[list[Toleration], Field(max_length=32)] = Field(default_factory=list)
    backoff_limit: Annotated[int, Field(ge=0, le=10)] = 1
    job_active_deadline_seconds: Annotated[int, Field(ge=60)] | None = None
    ttl_seconds_after_finished: Annotated[int, Field(ge=0)] | None = 3600


class CheckpointSpec(SpecModel):
    """Where checkpoints live in the cluster: an existing claim, or one the operator creates."""

    claim_name: Annotated[str, Field(max_length=253, pattern=DNS_SUBDOMAIN)] | None = None
    storage_class_name: Annotated[str, Field(max_length=253, pattern=DNS_SUBDOMAIN)] | None = None
    size: Annotated[str, Field(max_length=32)] = "5Gi"


QueueName = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")]


class EnvGenRunSpec(SpecModel):
    """What a run does. Defaults follow the paper's schedule."""

    game: GameName = "crafter"
    designer: DesignerSpec = Field(default_factory=DesignerSpec)
    llm: LLMSpec = Field(default_factory=LLMSpec)
    envs_per_cycle: Annotated[int, Field(ge=1, le=16)] = 4
    cycles: Annotated[int, Field(ge=1, le=50)] = 4
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    seeds: Annotated[int, Field(ge=1, le=16)] = 1
    agent: AgentSpec = Field(default_factory=AgentSpec)
    objective: ObjectiveSpec = Field(default_factory=ObjectiveSpec)
    max_failed_tasks: Annotated[int, Field(ge=1, le=100)] = 3
    suspend: bool = False
    active_deadline_seconds: Annotated[int, Field(ge=1)] | None = None
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    checkpoints: CheckpointSpec = Field(default_factory=CheckpointSpec)
    queue_name: QueueName | None = Field(
        default=None,
        description="Kueue LocalQueue for the training Jobs (label kueue.x-k8s.io/queue-name; they are created "
        "suspended until Kueue admits them). The same label on the EnvGenRun works too. Ignored by local mode.",
    )


# Top-level spec fields that may change while a run exists: the CRD lets them change (every other field has an
# immutability CEL rule) and ``envgen run`` resumes a run directory whose spec differs only in them. They decide how
# long and how far a run goes and which endpoint designs (cycles, llm, maxFailedTasks, suspend,
# activeDeadlineSeconds, objective), or place training Jobs in the cluster only (resources, queueName); none changes
# what one cycle trains. The fields that shape training (game, designer, envsPerCycle, seeds, training, agent,
# checkpoints) are fixed: changing them mid-run would mix incompatible cycles and checkpoints.
MUTABLE_FIELDS: frozenset[str] = frozenset(
    {
        "cycles",
        "llm",
        "max_failed_tasks",
        "suspend",
        "active_deadline_seconds",
        "objective",
        "resources",
        "queue_name",
    }
)


def immutable_fields() -> tuple[str, ...]:
    """The camelCase names of the spec fields that cannot change once a run exists, in declaration order."""
    return tuple(
        field.alias or name for name, field in EnvGenRunSpec.model_fields.items() if name not in MUTABLE_FIELDS
    )


class EnvGenRun(SpecModel):
    """A whole EnvGenRun document (``apiVersion``, ``kind``, ``metadata``, ``spec``; ``status`` is ignored)."""

    model_config = SpecModel.model_config | {"extra": "forbid"}

    api_version: Literal["envgen.dev/v1alpha1"] = Field(default="envgen.dev/v1alpha1", alias="apiVersion")
    kind: Literal["EnvGenRun"] = "EnvGenRun"
    metadata: Metadata
    spec: EnvGenRunSpec
    status: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.metadata.name


def parse_run(doc: Any, source: str = "run") -> EnvGenRun:
    """Validate a parsed YAML/JSON document; raise SpecError naming each bad field."""
    if not isinstance(doc, dict):
        raise SpecError(f"{source}: expected a mapping with apiVersion, kind, metadata and spec")
    try:
        return EnvGenRun.model_validate(doc, by_name=False)  # camelCase only, as the CRD
    except ValidationError as exc:
        raise SpecError(f"{source} is invalid:\n{describe_validation_error(exc)}") from None


def load_run(path: str | Path) -> EnvGenRun:
    """Read and validate a run.yaml: one document, bounded in size and depth, no aliases or duplicate keys."""
    p = Path(path)
    try:
        doc = safeyaml.load(p)
    except OSError as exc:
        raise SpecError(f"cannot read {p}: {exc.strerror}") from None
    except safeyaml.UnsafeYAMLError as exc:
        raise SpecError(f"{p} is refused: {exc}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{p} is not valid YAML: {exc}") from None
    return parse_run(doc, str(p))
