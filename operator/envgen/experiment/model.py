"""The EnvGenExperiment document: arms x seeds of EnvGenRuns that differ only in who designs (and how a cycle's
steps are split), never in the steps they train, compared against a baseline arm.

One YAML format for ``envgen run experiment.yaml`` and ``kubectl apply -f experiment.yaml``; strict like
EnvGenRun, every problem named by its field path.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from ..models import DecimalString, as_float
from ..spec import (
    MAX_NAME_LENGTH,
    NAME_RE,
    DesignerSpec,
    Document,
    EnvGenRun,
    EnvGenRunSpec,
    LLMSpec,
    Metadata,
    NonNegInt,
    SpecModel,
)

KIND = "EnvGenExperiment"
PLURAL = "envgenexperiments"
SHORT_NAMES = ["egx"]
MAX_EXPERIMENT_NAME = 20  # a child run is named <experiment>-<arm>, at most MAX_NAME_LENGTH characters
MAX_ARM_NAME = MAX_NAME_LENGTH - MAX_EXPERIMENT_NAME - 1
MAX_ARMS = 12
# Template fields the experiment sets for every arm itself.
EXPERIMENT_OWNED = ("seeds", "first_seed")


class ArmTraining(SpecModel):
    """An arm's own split of each cycle's steps; the sum must stay the template's steps per cycle."""

    designed_env_steps: NonNegInt = Field(description="Steps per cycle and seed in the designed environments.")
    game_steps: NonNegInt = Field(description="Steps per cycle and seed in the real game.")


class ArmSpec(SpecModel):
    """One arm: the template with another designer, LLM or split of each cycle's steps, never other total steps."""

    name: Annotated[str, Field(min_length=1, max_length=MAX_ARM_NAME, pattern=NAME_RE.pattern)] = Field(
        description=f"The arm's name: a DNS-1035 label of at most {MAX_ARM_NAME} characters; its EnvGenRun is "
        "named <experiment>-<arm>."
    )
    designer: DesignerSpec | None = Field(
        default=None, description="Who designs this arm's environments; unset takes the template's designer."
    )
    llm: LLMSpec | None = Field(
        default=None, description="The LLM endpoint of this arm; unset takes the template's llm."
    )
    designed_share: DecimalString | None = Field(
        default=None,
        description='Share of each cycle\'s steps spent in the designed environments, "0" to "1" (the template '
        "splits it as its training block says); rounded to whole PPO updates, the rest in the real game, so the "
        "arm trains the same steps.",
    )
    training: ArmTraining | None = Field(
        default=None,
        description="This arm's split of each cycle's steps as numbers; designedEnvSteps + gameSteps must equal "
        "the template's (equal steps is the point of an experiment). Not together with designedShare.",
    )

    @field_validator("designed_share")
    @classmethod
    def _share_range(cls, v: str | None) -> str | None:
        if v is not None and not 0.0 <= as_float(v) <= 1.0:
            raise ValueError(f'must be between "0" and "1", got "{v}"')
        return v

    @model_validator(mode="after")
    def _one_split(self) -> ArmSpec:
        if self.designed_share is not None and self.training is not None:
            raise ValueError("set designedShare or training, not both")
        return self


class EnvGenExperimentSpec(SpecModel):
    """What an experiment compares: every arm trains ``seeds`` seeds of the template, with equal steps."""

    template: EnvGenRunSpec = Field(
        default_factory=EnvGenRunSpec,
        description="The EnvGenRun spec every arm starts from (seeds and firstSeed come from the experiment).",
    )
    arms: Annotated[list[ArmSpec], Field(min_length=2, max_length=MAX_ARMS)] = Field(
        description="The arms compared: unique names, one of them the baseline; each may set designer, llm and the "
        "split of a cycle's steps."
    )
    baseline: Annotated[str, Field(min_length=1, max_length=MAX_ARM_NAME)] = Field(
        default="none", description="The arm every other arm is compared with (the equal-step baseline)."
    )
    seeds: Annotated[int, Field(ge=1, le=16)] = Field(
        default=3, description="Seeds per arm: every arm trains seeds firstSeed .. firstSeed + seeds - 1."
    )
    first_seed: Annotated[int, Field(ge=0, le=999)] = Field(
        default=0,
        description="The first seed; arms share seeds (the same initial weights and worlds), so the report can pair "
        "them by seed.",
    )

    @field_validator("template")
    @classmethod
    def _template_leaves_seeds(cls, v: EnvGenRunSpec) -> EnvGenRunSpec:
        owned = [EnvGenRunSpec.model_fields[f].alias or f for f in EXPERIMENT_OWNED if f in v.model_fields_set]
        if owned:
            verb = "is" if len(owned) == 1 else "are"
            raise ValueError(
                f"{' and '.join(owned)} {verb} set by the experiment (spec.seeds, spec.firstSeed); remove it"
            )
        return v

    @field_validator("arms")
    @classmethod
    def _arms(cls, v: list[ArmSpec], info: ValidationInfo) -> list[ArmSpec]:
        names = [a.name for a in v]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(
                f"arm names must be unique: {', '.join(twice)} {'appears' if len(twice) == 1 else 'appear'} twice"
            )
        template = info.data.get("template")
        if template is None:
            return v
        t = template.training
        cycle = t.designed_env_steps + t.game_steps
        for i, arm in enumerate(v):
            split = arm_training(template, arm)
            total = split["designedEnvSteps"] + split["gameSteps"]
            if total != cycle:
                raise ValueError(
                    f"arms[{i}] ({arm.name}) trains {split['designedEnvSteps']:,} designed-env + "
                    f"{split['gameSteps']:,} game steps = {total:,} steps per cycle, the template and the baseline "
                    f"{cycle:,} ({t.designed_env_steps:,} + {t.game_steps:,}): arms split a cycle's steps, they "
                    "never change them"
                )
        return v

    @field_validator("baseline")
    @classmethod
    def _baseline_is_an_arm(cls, v: str, info: ValidationInfo) -> str:
        arms = info.data.get("arms")
        if arms is not None and v not in [a.name for a in arms]:
            raise ValueError(f"{v!r} is not an arm (arms: {', '.join(a.name for a in arms)})")
        return v

    def arm(self, name: str) -> ArmSpec:
        return next(a for a in self.arms if a.name == name)


def arm_training(template: EnvGenRunSpec, arm: ArmSpec) -> dict[str, Any]:
    """The training block (camelCase) of one arm: the template's, with the arm's split of each cycle's steps."""
    training = template.training.model_dump(mode="json", by_alias=True)
    if arm.training is not None:
        training.update(arm.training.model_dump(mode="json", by_alias=True))
    elif arm.designed_share is not None:
        update = template.agent.num_envs * template.agent.rollout_steps
        cycle = training["designedEnvSteps"] + training["gameSteps"]
        share = Decimal(arm.designed_share)
        if cycle % update == 0:
            designed = int((Decimal(cycle // update) * share).to_integral_value()) * update
        else:
            designed = int((Decimal(cycle) * share).to_integral_value())
        training.update(designedEnvSteps=designed, gameSteps=cycle - designed)
    return training


class EnvGenExperiment(Document):
    """A whole EnvGenExperiment document."""

    kind: Literal["EnvGenExperiment"] = Field(default="EnvGenExperiment", description="EnvGenExperiment.")
    spec: EnvGenExperimentSpec = Field(description="The template, the arms, the baseline and the seeds.")

    @field_validator("metadata")
    @classmethod
    def _short_name(cls, v: Metadata) -> Metadata:
        if len(v.name) > MAX_EXPERIMENT_NAME:
            raise ValueError(
                f"name: at most {MAX_EXPERIMENT_NAME} characters (its runs are named <experiment>-<arm>), "
                f"got {len(v.name)}"
            )
        return v

    def run_name(self, arm: str) -> str:
        """The EnvGenRun of one arm: ``<experiment>-<arm>``."""
        return f"{self.name}-{arm}"

    def arm_run(self, arm: str) -> EnvGenRun:
        """The EnvGenRun one arm trains: the template with the arm's designer, llm and split, the experiment's
        seeds."""
        spec = self.spec
        a = spec.arm(arm)
        doc = spec.template.model_dump(mode="json", by_alias=True, exclude_none=True)
        doc.update(seeds=spec.seeds, firstSeed=spec.first_seed, training=arm_training(spec.template, a))
        if a.designer is not None:
            doc["designer"] = a.designer.model_dump(mode="json", by_alias=True, exclude_none=True)
        if a.llm is not None:
            doc["llm"] = a.llm.model_dump(mode="json", by_alias=True, exclude_none=True)
        meta: dict[str, Any] = {"name": self.run_name(arm)}
        if self.metadata.namespace:
            meta["namespace"] = self.metadata.namespace
        return EnvGenRun.model_validate(
            {"apiVersion": "envgen.dev/v1alpha1", "kind": "EnvGenRun", "metadata": meta, "spec": doc}, by_name=False
        )


def is_experiment(doc: Any) -> bool:
    """Whether a parsed document says it is an EnvGenExperiment."""
    return isinstance(doc, dict) and doc.get("kind") == KIND


def parse_experiment(doc: Any, source: str = "experiment") -> EnvGenExperiment:
    """Validate a parsed EnvGenExperiment document; raise SpecError naming each bad field."""
    return EnvGenExperiment.parse(doc, source)
