"""The EnvGenRun format: defaults, examples, and errors that name the field and leave nothing behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from envgen.spec import EnvGenRun, SpecError, load_run, parse_run

ROOT = Path(__file__).resolve().parents[2]
# the EnvGenRun examples (examples/experiment*.yaml are EnvGenExperiments: tests/experiment)
EXAMPLES = sorted(p for p in (ROOT / "examples").rglob("*.yaml") if not p.name.startswith("experiment"))


def doc(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "envgen.dev/v1alpha1", "kind": "EnvGenRun", "metadata": {"name": "r1"}, "spec": spec}


def test_defaults_follow_the_paper() -> None:
    run = parse_run(doc())
    assert run.spec.envs_per_cycle == 4 and run.spec.cycles == 4 and run.spec.seeds == 1
    assert run.spec.designer.type == "llm" and run.spec.game == "crafter"
    assert run.spec.training.final_steps == 1_000_000


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_are_valid(path: Path) -> None:
    run = load_run(path)
    assert isinstance(run, EnvGenRun) and run.kind == "EnvGenRun"


def test_round_trip_is_stable() -> None:
    run = load_run(ROOT / "examples" / "crafter-paper.yaml")
    assert parse_run(run.dump()) == run


@pytest.mark.parametrize(
    ("spec", "field", "hint"),
    [
        ({"gaem": "crafter"}, "spec.gaem", "unknown field"),
        ({"game": "pong"}, "spec.game", "'crafter' or 'heist'"),
        ({"designer": {"type": "genius"}}, "spec.designer.type", "'heuristic'"),
        ({"training": {"gameSteps": -5}}, "spec.training.gameSteps", "greater than or equal to 0"),
        ({"cycles": "four"}, "spec.cycles", "integer"),
        ({"llm": {"temperature": 0.7}}, "spec.llm.temperature", 'quote it: "0.7"'),
        ({"llm": {"baseURL": "ftp://x"}}, "spec.llm.baseURL", "http://"),
        ({"agent": {"numEnvs": 3, "rolloutSteps": 10, "minibatches": 4}}, "spec.agent", "divisible"),
        ({"agent": {"overlap": "yes"}}, "spec.agent.overlap", "must be a boolean"),
        ({"agent": {"overlap": 1}}, "spec.agent.overlap", "must be a boolean"),
        ({"objective": {"goalScore": "high"}}, "spec.objective.goalScore", "decimal string"),
    ],
)
def test_errors_name_the_field(spec: dict[str, Any], field: str, hint: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_run(doc(**spec))
    message = str(info.value)
    line = next((ln for ln in message.splitlines() if ln.startswith(field)), None)
    assert line is not None, message
    assert hint in line


def test_agent_overlap_is_opt_in() -> None:
    assert parse_run(doc()).spec.agent.overlap is False
    assert parse_run(doc(agent={"overlap": True})).spec.agent.overlap is True
    both = parse_run(doc(agent={"overlap": True, "envGroups": 2})).spec.agent
    assert both.overlap is True and both.env_groups == 2


def test_wrong_kind_and_bad_name() -> None:
    bad = doc()
    bad["kind"] = "Pod"
    bad["metadata"]["name"] = "Not_A_Name"
    with pytest.raises(SpecError) as info:
        parse_run(bad)
    message = str(info.value)
    assert "kind:" in message and "metadata.name:" in message and "DNS-1035" in message


def test_cli_rejects_bad_yaml_and_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "run.yaml"
    bad.write_text(yaml.safe_dump(doc(training={"designedEnvSteps": -1}, unknownKey=1)))
    run_dir = tmp_path / "rd"
    result = subprocess.run(
        [sys.executable, "-m", "envgen", "run", str(bad), "--run-dir", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "spec.training.designedEnvSteps" in result.stderr and "spec.unknownKey" in result.stderr
    assert "Traceback" not in result.stderr
    assert not run_dir.exists()


def test_cli_rejects_unparseable_yaml(tmp_path: Path) -> None:
    bad = tmp_path / "run.yaml"
    bad.write_text("spec: [unclosed\n")
    result = subprocess.run([sys.executable, "-m", "envgen", "validate", str(bad)], capture_output=True, text=True)
    assert result.returncode == 2 and "not valid YAML" in result.stderr
