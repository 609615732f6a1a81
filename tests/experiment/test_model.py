"""The EnvGenExperiment model: arms become EnvGenRuns with equal steps; every invalid experiment of the corpus is
refused by ``envgen validate`` and ``envgen run`` naming its field, and nothing is written."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from spec.corpus import Case, committed
from spec.test_invalid_corpus import refused

from envgen.cli import main
from envgen.experiment.model import EnvGenExperiment, parse_experiment
from envgen.explain import explain
from envgen.spec import SpecError

ROOT = Path(__file__).resolve().parents[2]
INVALID = Path(__file__).resolve().parent / "invalid"
CASES = committed(INVALID)


def experiment(**spec: object) -> EnvGenExperiment:
    doc = {
        "apiVersion": "envgen.dev/v1alpha1",
        "kind": "EnvGenExperiment",
        "metadata": {"name": "exp", "namespace": "team-a"},
        "spec": {
            "template": {
                "designer": {"type": "heuristic"},
                "queueName": "gpu",
                "training": {"designedEnvSteps": 24576, "gameSteps": 24576, "finalSteps": 8192},
            },
            "arms": [{"name": "none", "designer": {"type": "none"}}, {"name": "heuristic"}],
            **spec,
        },
    }
    return parse_experiment(doc)


def test_the_corpus_covers_the_rules() -> None:
    assert len(CASES) >= 15
    assert {c.refused_by for c in CASES} == {"schema", "unknown-field"}
    assert all(c.manifest()["kind"] == "EnvGenExperiment" for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_validate_refuses(case: Case, capsys: pytest.CaptureFixture[str]) -> None:
    refused(case, capsys, "validate")


@pytest.mark.parametrize("case", CASES[:5], ids=lambda c: c.name)
def test_run_refuses_and_writes_nothing(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    refused(case, capsys, "run", "-q", "--run-dir", str(tmp_path / "explicit"))
    assert list(tmp_path.iterdir()) == []


def test_an_arm_whose_steps_differ_is_refused_with_the_numbers() -> None:
    with pytest.raises(SpecError) as err:
        experiment(
            arms=[{"name": "none"}, {"name": "more", "training": {"designedEnvSteps": 40960, "gameSteps": 16384}}]
        )
    said = str(err.value)
    assert "spec.arms: arms[1] (more)" in said
    assert "40,960 designed-env + 16,384 game steps = 57,344" in said and "49,152 (24,576 + 24,576)" in said


def test_arms_become_runs_with_equal_steps() -> None:
    exp = experiment(
        seeds=2,
        firstSeed=3,
        arms=[
            {"name": "none", "designer": {"type": "none"}},
            {"name": "heuristic"},
            {"name": "five-to-one", "designedShare": "0.8333"},
            {"name": "split", "training": {"designedEnvSteps": 8192, "gameSteps": 40960}},
            {"name": "gpt", "designer": {"type": "llm"}, "llm": {"baseURL": "http://llm:8000/v1", "model": "m"}},
        ],
    )
    runs = {a.name: exp.arm_run(a.name) for a in exp.spec.arms}
    assert [r.name for r in runs.values()] == ["exp-none", "exp-heuristic", "exp-five-to-one", "exp-split", "exp-gpt"]
    for r in runs.values():
        t = r.spec.training
        assert t.designed_env_steps + t.game_steps == 49152 and t.final_steps == 8192  # equal steps
        assert (r.spec.seeds, r.spec.first_seed, r.metadata.namespace) == (2, 3, "team-a")
        assert r.spec.queue_name == "gpu"
    # 12 updates of 8 x 512 a cycle; 5/6 of them is 10 updates in the designed envs
    assert (runs["five-to-one"].spec.training.designed_env_steps, runs["five-to-one"].spec.training.game_steps) == (
        40960,
        8192,
    )
    assert runs["split"].spec.training.game_steps == 40960
    assert runs["none"].spec.designer.type == "none" and runs["heuristic"].spec.designer.type == "heuristic"
    assert runs["gpt"].spec.llm.base_url == "http://llm:8000/v1" and runs["heuristic"].spec.llm.base_url is None


def test_defaults() -> None:
    exp = experiment()
    assert (exp.spec.baseline, exp.spec.seeds, exp.spec.first_seed) == ("none", 3, 0)


@pytest.mark.parametrize("example", ["experiment.yaml", "experiment-endpoint.yaml"])
def test_the_examples_are_valid(example: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(ROOT / "examples" / example)]) == 0
    assert "valid EnvGenExperiment" in capsys.readouterr().out
    doc = yaml.safe_load((ROOT / "examples" / example).read_text())
    assert parse_experiment(doc).spec.baseline in [a["name"] for a in doc["spec"]["arms"]]


def test_explain_describes_experiment_fields() -> None:
    text = explain("egx.spec.arms.designedShare")
    assert "FIELD: spec.arms.designedShare" in text and "whole PPO updates" in text
    assert "must be between" in text
    assert "The arm every other arm is compared with" in explain("envgenexperiments.baseline")
    assert "bootstrap" in explain("egx.status.arms.ciLow")
