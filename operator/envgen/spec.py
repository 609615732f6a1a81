"""The EnvGenRun document: one YAML format for ``envgen run run.yaml`` and ``kubectl apply -f run.yaml``.

Kubernetes conventions: camelCase keys, no floats (decimals are quoted strings), units in field names.
Every problem is reported with its field path and what is allowed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from . import safeyaml
from .games import GAMES, GameName
from .models import CamelModel, DecimalString, as_float, describe_validation_error

DesignerType = Literal["llm", "fixed", "easy-to-hard", "adversarial", "heuristic", "learning-progress", "none"]
DesignMode = Literal["auto", "free", "constrained"]

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

    name: Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH)] = Field(
        description="The run's name: a DNS-1035 label of at most 40 characters (its Jobs are named "
        "<run>-c<cycle>-s<seed>-r<attempt>)."
    )
    namespace: Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL)] | None = Field(
        default=None, description="The namespace of the run in the cluster; ignored by local mode."
    )
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="Kubernetes labels of the run (kueue.x-k8s.io/queue-name selects a Kueue queue).",
    )
    annotations: dict[str, str] = Field(
        default_factory=dict, description="Kubernetes annotations of the run; not read by EnvGen."
    )

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

    name: Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)] = Field(
        description="Name of the Secret in the run's namespace."
    )
    key: Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")] = Field(
        description="Key within the Secret whose value is the API key."
    )


class ApiKeySource(SpecModel):
    """Where the LLM API key comes from: an environment variable (local) or a Secret (cluster). Never inline."""

    env: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] | None = Field(
        default=None, description="Name of the environment variable holding the API key (local mode)."
    )
    secret_key_ref: SecretKeyRef | None = Field(
        default=None, description="The Secret key holding the API key (cluster mode)."
    )


class LLMSpec(SpecModel):
    """An OpenAI-compatible endpoint. With no baseURL, local mode starts the embedded model."""

    base_url: Annotated[str, Field(max_length=2048)] | None = Field(
        default=None,
        alias="baseURL",
        description="OpenAI-compatible endpoint, e.g. http://llm:8080/v1 (no credentials in it); unset locally starts"
        " the embedded SmolLM2-135M.",
    )
    model: Annotated[str, Field(min_length=1, max_length=256, pattern=MODEL_NAME)] = Field(
        default="smollm2-135m",
        description="Model name the endpoint serves, e.g. gpt-4o-mini or Qwen/Qwen2.5-7B-Instruct.",
    )
    api_key: ApiKeySource | None = Field(
        default=None, description="Where the API key comes from (an environment variable or a Secret); never inline."
    )
    temperature: DecimalString = Field(
        default="0", description='Sampling temperature, "0" to "2"; "0" is greedy and reproducible.'
    )
    timeout_seconds: Annotated[int, Field(ge=1, le=3600)] = Field(
        default=120, description="Seconds one LLM request may take before it is abandoned."
    )
    max_retries: Annotated[int, Field(ge=0, le=10)] = Field(
        default=2, description="Retries of a request that failed at the HTTP level, within one design attempt."
    )
    max_tokens: Annotated[int, Field(ge=64, le=32768)] = Field(
        default=2048, description="Most tokens the LLM may write per answer."
    )
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

    type: DesignerType = Field(
        default="llm",
        description="Who writes the environments: llm (the paper), fixed (one LLM design reused every cycle), easy-"
        "to-hard, adversarial, heuristic or learning-progress (no LLM), or none (train on the game only, the "
        "baseline).",
    )
    critic: bool = Field(
        default=True, description="Check each LLM design for degenerate environments and ask the LLM for one repair."
    )
    mode: DesignMode = Field(
        default="auto",
        description="How the llm and fixed designers ask: free (the paper: the LLM writes every setting of each "
        "environment; for capable endpoints), constrained (the LLM only picks one skill to practise per "
        "environment from the catalogue's enums, no two alike; for small local models), or auto (constrained "
        "for the embedded model, free for an endpoint).",
    )


class TrainingSpec(SpecModel):
    """Environment steps per phase (per seed). Designed-env steps are shared by the N envs."""

    designed_env_steps: NonNegInt = Field(
        default=120_000,
        description="Environment steps per cycle in the designed environments, shared by the envsPerCycle "
        "environments (per seed).",
    )
    game_steps: NonNegInt = Field(
        default=120_000,
        description="Environment steps per cycle in the original game after the designed ones (per seed).",
    )
    final_steps: NonNegInt = Field(
        default=1_000_000,
        description="Environment steps of the final phase in the original game after the last cycle (per seed).",
    )
    eval_episodes: PosInt = Field(default=10, description="Episodes per evaluation run in the original game.")
    eval_runs: Annotated[int, Field(ge=1, le=10)] = Field(
        default=3,
        description="Evaluation runs per evaluation; success rates are their mean, with the standard deviation across"
        " runs.",
    )
    designed_env_length: Annotated[int, Field(ge=16, le=100_000)] = Field(
        default=1024, description="Episode length limit in designed environments, in steps."
    )


class AgentSpec(SpecModel):
    """The settings of CleanRL's ``ppo_atari.py`` PPO under the spec's own names (the trainer's ``PPOArgs`` maps
    them onto CleanRL's; README: "PPO settings"). Decimals are strings."""

    network: Literal["nature", "impala"] = Field(
        default="nature",
        description="Policy network: nature (the CNN of Mnih et al.) or impala (the residual CNN of Espeholt et al.).",
    )
    learning_rate: DecimalString = Field(default="3e-4", description='Adam learning rate, e.g. "3e-4".')
    num_envs: Annotated[int, Field(ge=1, le=256)] = Field(
        default=8, description="Parallel environments per training process."
    )
    rollout_steps: Annotated[int, Field(ge=8, le=8192)] = Field(
        default=512, description="Steps per environment in each rollout; the batch is numEnvs*rolloutSteps."
    )
    epochs: Annotated[int, Field(ge=1, le=32)] = Field(default=3, description="PPO update epochs per rollout.")
    minibatches: Annotated[int, Field(ge=1, le=256)] = Field(
        default=8, description="Minibatches per epoch; must divide numEnvs*rolloutSteps."
    )
    gamma: DecimalString = Field(default="0.95", description='Discount factor, e.g. "0.95".')
    gae_lambda: DecimalString = Field(default="0.65", description='GAE lambda, e.g. "0.65".')
    clip_coef: DecimalString = Field(default="0.2", description='PPO clipping coefficient, e.g. "0.2".')
    entropy_coef: DecimalString = Field(default="0.01", description='Entropy bonus coefficient, e.g. "0.01".')
    value_coef: DecimalString = Field(default="0.5", description='Value loss coefficient, e.g. "0.5".')
    clip_value_loss: bool = Field(
        default=True,
        description="Clip the value update to clipCoef around the old value (CleanRL's default); false is the plain "
        "squared error of stable-baselines3.",
    )
    max_grad_norm: DecimalString = Field(default="0.5", description='Gradient norm clipping, e.g. "0.5".')
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", description="Where the agent trains: auto (a GPU when there is one), cpu or cuda."
    )
    precision: Literal["float32", "bfloat16"] = Field(
        default="float32",
        description="Precision of the network's forward passes: float32, or bfloat16 (autocast, for GPUs with bf16; "
        "the losses, gradients, weights and optimizer stay float32).",
    )
    env_groups: Annotated[int, Field(ge=1, le=2)] = Field(
        default=1,
        description="1: every environment steps on one batch of actions; 2: two groups of environment workers "
        "alternate, one stepping while the other's actions are inferred (the same transitions per environment, "
        "other random draws of the actions than with 1).",
    )
    overlap: bool = Field(
        default=False,
        description="Collect the next rollout while the update runs, with the policy from before that update (one "
        "update of policy lag; PPO's clipping bounds it). Off: every rollout uses the newest policy (CleanRL's PPO). "
        "Worth it when the update runs on a GPU while CPU workers step the envs.",
    )

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

    goal_score: DecimalString | None = Field(
        default=None,
        description='Stop with Succeeded once the evaluation score (percent, e.g. "40") reaches it; unset runs every '
        "cycle.",
    )


class Toleration(SpecModel):
    """A pod toleration (subset of core/v1 Toleration)."""

    key: Annotated[str, Field(max_length=253)] | None = Field(
        default=None, description="Taint key the toleration matches; empty with operator Exists matches every taint."
    )
    operator: Literal["Exists", "Equal"] | None = Field(
        default=None, description="Exists or Equal (the default) between key and value."
    )
    value: Annotated[str, Field(max_length=253)] | None = Field(
        default=None, description="Taint value to match with operator Equal."
    )
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect to match: NoSchedule, PreferNoSchedule or NoExecute; empty matches all."
    )
    toleration_seconds: int | None = Field(
        default=None, description="How long a NoExecute taint is tolerated before eviction, in seconds."
    )


PodId = Annotated[int, Field(ge=1, le=2147483647)]


class PodSecuritySpec(SpecModel):
    """Who the training Pods run as. Unset fields take the operator's defaults (the chart's
    ``trainer.podSecurity``); unset there too, the image's user and the cluster's choice (OpenShift assigns both)."""

    run_as_user: PodId | None = Field(
        default=None, description="UID of the trainer container; unset uses the image's user (10001) or the cluster's."
    )
    run_as_group: PodId | None = Field(default=None, description="Primary GID of the trainer container.")
    fs_group: PodId | None = Field(
        default=None,
        description="Group that owns the checkpoint volume's files, so the trainer can write a fresh volume; "
        "leave unset where the cluster assigns one (OpenShift restricted-v2).",
    )


class ResourcesSpec(SpecModel):
    """Resources and placement of training Jobs (ignored by local mode)."""

    image: Annotated[str, Field(min_length=1, max_length=512, pattern=r"^[^\s]+$")] | None = Field(
        default=None, description="Trainer container image; unset uses the operator's default."
    )
    requests: dict[str, Annotated[str, Field(max_length=64)]] = Field(
        description="Resource requests of each training container, e.g. cpu, memory, nvidia.com/gpu.",
        default_factory=lambda: {"cpu": "2", "memory": "4Gi"},
        max_length=MAX_ENTRIES,
    )
    limits: dict[str, Annotated[str, Field(max_length=64)]] = Field(
        default_factory=dict, max_length=MAX_ENTRIES, description="Resource limits of each training container."
    )
    node_selector: dict[str, Annotated[str, Field(max_length=253)]] = Field(
        description="Node labels a training pod must match.", default_factory=dict, max_length=MAX_ENTRIES
    )
    tolerations: Annotated[list[Toleration], Field(max_length=32)] = Field(
        default_factory=list, description="Tolerations of the training pods."
    )
    backoff_limit: Annotated[int, Field(ge=0, le=10)] = Field(
        default=1, description="Pod retries of one training Job before it counts as failed."
    )
    job_active_deadline_seconds: Annotated[int, Field(ge=60)] | None = Field(
        default=None, description="Seconds a training Job may run before Kubernetes stops it."
    )
    ttl_seconds_after_finished: Annotated[int, Field(ge=0)] | None = Field(
        default=3600, description="Seconds a finished Job is kept before Kubernetes deletes it."
    )
    pod_security: PodSecuritySpec = Field(
        default_factory=PodSecuritySpec,
        description="UID, GID and fsGroup of the training Pods (they always run non-root, without privilege "
        "escalation or capabilities, with seccomp RuntimeDefault and a read-only root filesystem).",
    )


class CheckpointSpec(SpecModel):
    """Where checkpoints live in the cluster: an existing claim, or one the operator creates."""

    claim_name: Annotated[str, Field(max_length=253, pattern=DNS_SUBDOMAIN)] | None = Field(
        default=None,
        description="An existing PersistentVolumeClaim for checkpoints, mounted by every seed (ReadWriteMany when "
        "seeds run at once on several nodes); unset, the operator creates them (see accessMode).",
    )
    storage_class_name: Annotated[str, Field(max_length=253, pattern=DNS_SUBDOMAIN)] | None = Field(
        default=None, description="StorageClass of the claim the operator creates; unset uses the cluster default."
    )
    size: Annotated[str, Field(max_length=32)] = Field(
        default="5Gi", description="Size of the claim the operator creates, e.g. 5Gi."
    )
    access_mode: Literal["ReadWriteOnce", "ReadWriteMany"] = Field(
        default="ReadWriteOnce",
        description="Claims the operator creates: ReadWriteOnce makes one claim per seed (parallel seeds may "
        "run on different nodes); ReadWriteMany makes one claim that every seed shares (needs a storage class "
        "that offers it).",
    )


QueueName = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")]


class EnvGenRunSpec(SpecModel):
    """What a run does. Defaults follow the paper's schedule."""

    game: GameName = Field(
        default="crafter",
        description=f"The game the agent learns and is evaluated in: {' or '.join(GAMES)}.",
    )
    designer: DesignerSpec = Field(default_factory=DesignerSpec, description="Who writes the training environments.")
    llm: LLMSpec = Field(default_factory=LLMSpec, description="The LLM endpoint the llm and fixed designers ask.")
    envs_per_cycle: Annotated[int, Field(ge=1, le=16)] = Field(
        default=4, description="Environments designed per cycle (the paper's N)."
    )
    cycles: Annotated[int, Field(ge=1, le=50)] = Field(
        default=4, description="Design-train-feedback cycles before the final phase (the paper's NCycle)."
    )
    training: TrainingSpec = Field(
        default_factory=TrainingSpec, description="Environment steps of each phase and the evaluation budget."
    )
    seeds: Annotated[int, Field(ge=1, le=16)] = Field(
        default=1,
        description="Independent training seeds; each cycle trains one agent per seed and pools their feedback.",
    )
    first_seed: Annotated[int, Field(ge=0, le=999)] = Field(
        default=0,
        description="Number of the first seed: the run trains seeds firstSeed .. firstSeed + seeds - 1 (task names "
        "end in -s<seed>). Another firstSeed repeats an experiment on new seeds: other worlds, initial weights and "
        "samples.",
    )
    agent: AgentSpec = Field(default_factory=AgentSpec, description="PPO hyperparameters of CleanRL's PPO.")
    objective: ObjectiveSpec = Field(default_factory=ObjectiveSpec, description="When the run may stop early.")
    max_failed_tasks: Annotated[int, Field(ge=1, le=100)] = Field(
        default=3, description="Failed designs or training tasks after which the run fails (MaxFailedTasksReached)."
    )
    suspend: bool = Field(default=False, description="true stops creating new Jobs and designs; false continues.")
    active_deadline_seconds: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="Seconds the whole run may take before it fails (DeadlineExceeded)."
    )
    resources: ResourcesSpec = Field(
        default_factory=ResourcesSpec,
        description="Resources and placement of the training Jobs (cluster only; ignored by local mode).",
    )
    checkpoints: CheckpointSpec = Field(
        default_factory=CheckpointSpec, description="Where the cluster keeps checkpoints between cycles."
    )
    queue_name: QueueName | None = Field(
        default=None,
        description="Kueue LocalQueue for the training Jobs (label kueue.x-k8s.io/queue-name; they are created "
        "suspended until Kueue admits them). The same label on the EnvGenRun works too. Ignored by local mode.",
    )

    @property
    def seed_numbers(self) -> range:
        """The run's seeds: firstSeed .. firstSeed + seeds - 1."""
        return range(self.first_seed, self.first_seed + self.seeds)


# Top-level spec fields that may change while a run exists: the CRD lets them change (every other field has an
# immutability CEL rule) and ``envgen run`` resumes a run directory whose spec differs only in them. They decide how
# long and how far a run goes and which endpoint designs (cycles, llm, maxFailedTasks, suspend,
# activeDeadlineSeconds, objective), or place training Jobs in the cluster only (resources, queueName); none changes
# what one cycle trains. The fields that shape training (game, designer, envsPerCycle, seeds, firstSeed, training,
# agent, checkpoints) are fixed: changing them mid-run would mix incompatible cycles and checkpoints.
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


class Document(SpecModel):
    """A whole envgen.dev document (``apiVersion``, ``kind``, ``metadata``, ``spec``; ``status`` is ignored): what
    EnvGenRun and EnvGenExperiment share; each names its ``kind`` and its ``spec``."""

    model_config = SpecModel.model_config | {"extra": "forbid"}

    api_version: Literal["envgen.dev/v1alpha1"] = Field(
        default="envgen.dev/v1alpha1", alias="apiVersion", description="envgen.dev/v1alpha1."
    )
    kind: str
    metadata: Metadata = Field(description="The object's name and namespace.")
    spec: SpecModel
    status: dict[str, Any] | None = Field(
        default=None, description="Written by the operator; ignored when reading a document."
    )

    @property
    def name(self) -> str:
        return self.metadata.name

    @classmethod
    def parse(cls, doc: Any, source: str) -> Self:
        """Validate a parsed YAML/JSON document (camelCase only, as the CRD); raise SpecError naming each bad
        field."""
        if not isinstance(doc, dict):
            raise SpecError(f"{source}: expected a mapping with apiVersion, kind, metadata and spec")
        try:
            return cls.model_validate(doc, by_name=False)
        except ValidationError as exc:
            raise SpecError(f"{source} is invalid:\n{describe_validation_error(exc)}") from None


class EnvGenRun(Document):
    """A whole EnvGenRun document."""

    kind: Literal["EnvGenRun"] = Field(default="EnvGenRun", description="EnvGenRun.")
    spec: EnvGenRunSpec = Field(
        description="What the run does; required (spec: {} takes every default, the paper's schedule)."
    )


def parse_run(doc: Any, source: str = "run") -> EnvGenRun:
    """Validate a parsed EnvGenRun document; raise SpecError naming each bad field."""
    return EnvGenRun.parse(doc, source)


def load_document(path: str | Path) -> Any:
    """Read one bounded YAML document (no aliases, duplicate keys or second documents)."""
    p = Path(path)
    try:
        return safeyaml.load(p)
    except OSError as exc:
        raise SpecError(f"cannot read {p}: {exc.strerror}") from None
    except safeyaml.UnsafeYAMLError as exc:
        raise SpecError(f"{p} is refused: {exc}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{p} is not valid YAML: {exc}") from None


def load_run(path: str | Path) -> EnvGenRun:
    """Read and validate a run.yaml."""
    return parse_run(load_document(path), str(path))
