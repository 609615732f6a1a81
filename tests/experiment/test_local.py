"""An experiment end to end on this machine: 2 arms x 2 seeds with the real trainer at a tiny budget, the report
with the comparison, and a second run that trains nothing again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from bench.science.run import PROFILES
from envgen.achievements import ACHIEVEMENTS
from envgen.cli import main

pytestmark = pytest.mark.slow(minutes=5)

SMOKE = PROFILES["smoke"]
TINY = {
    "apiVersion": "envgen.dev/v1alpha1",
    "kind": "EnvGenExperiment",
    "metadata": {"name": "tiny"},
    "spec": {
        "seeds": 2,
        "template": {
            "game": "crafter",
            "envsPerCycle": 2,
            "cycles": 1,
            "training": SMOKE["training"],  # the science smoke profile's budget: the least that proves the pipeline
            "agent": {"numEnvs": 4, "rolloutSteps": 128, "epochs": 1, "minibatches": 4, "device": "cpu"},
        },
        "arms": [
            {"name": "none", "designer": {"type": "none"}},
            {"name": "heuristic", "designer": {"type": "heuristic"}},
        ],
    },
}


def test_two_arms_two_seeds_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(TINY))
    root = tmp_path / "exp"
    assert main(["run", str(path), "--run-dir", str(root), "-q"]) == 0
    out = capsys.readouterr().out
    assert "tiny: 2/2 arms finished" in out and "vs none" in out

    # one run directory per arm, every seed's final phase finished, the same steps in both arms
    for arm in ("none", "heuristic"):
        finals = sorted((root / "arms" / arm / "metrics").glob(f"tiny-{arm}-final-s*.json"))
        assert [p.name for p in finals] == [f"tiny-{arm}-final-s0.json", f"tiny-{arm}-final-s1.json"]
        assert {json.loads(p.read_text())["globalStep"] for p in finals} == {2560}

    status = json.loads((root / "report" / "status.json").read_text())
    assert status["armCount"] == 2 and status["armsFinished"] == 2
    none, heuristic = status["arms"]
    assert (none["name"], none["phase"], none["seedsFinished"]) == ("none", "Succeeded", 2)
    assert "difference" not in none  # the baseline is not compared with itself
    assert heuristic["seedsFinished"] == 2
    diff = float(heuristic["score"]) - float(none["score"])
    assert float(heuristic["difference"]) == pytest.approx(diff, abs=0.011)
    assert 0.0 <= float(heuristic["p"]) <= 1.0
    assert float(heuristic["ciLow"]) <= float(heuristic["difference"]) <= float(heuristic["ciHigh"])
    assert status["bestArm"] == "heuristic" and status["bestDifference"] == heuristic["difference"]

    raw = json.loads((root / "report" / "results.json").read_text())
    assert sorted(raw) == ["heuristic", "none"] and sorted(raw["none"]) == ["0", "1"]
    assert raw["none"]["0"]["final"]["phase"] == "final" and len(raw["none"]["0"]["cycles"]) == 1

    report = (root / "report" / "report.md").read_text()
    assert "## Comparison with `none`" in report and "| heuristic | 2 |" in report
    assert "heuristic vs none: " in report and "Welch t =" in report
    assert "## Power" in report and "## Per-achievement differences" in report
    assert report.count("| collect_wood |") == 1 and len(ACHIEVEMENTS) == 22
    for png in ("achievements.png", "curves.png"):
        assert (root / "report" / png).read_bytes()[:4] == b"\x89PNG"

    # a finished experiment is not trained again; its report is rewritten from the run directories
    (root / "report" / "report.md").unlink()
    assert main(["run", str(path), "--run-dir", str(root), "-q"]) == 0
    assert "arm none:" not in capsys.readouterr().out
    assert (root / "report" / "report.md").read_text() == report
    assert main(["report", str(root)]) == 0
    assert "heuristic" in capsys.readouterr().out


def test_a_changed_experiment_is_refused_in_its_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from envgen.experiment.local import prepare
    from envgen.experiment.model import parse_experiment
    from envgen.spec import SpecError

    prepare(parse_experiment(TINY), tmp_path)
    changed = json.loads(json.dumps(TINY))
    changed["spec"]["seeds"] = 3
    changed["spec"]["baseline"] = "heuristic"
    with pytest.raises(SpecError, match=r"changed: seeds\)"):
        prepare(parse_experiment(changed), tmp_path)
    changed["spec"]["seeds"] = 2  # another baseline only changes the comparison
    prepare(parse_experiment(changed), tmp_path)
    # arms may be added and an arm not started yet may change; an arm that has started may not
    changed["spec"]["arms"].append({"name": "lp", "designer": {"type": "learning-progress"}})
    changed["spec"]["arms"][1]["designedShare"] = "0.5"
    prepare(parse_experiment(changed), tmp_path)
    (tmp_path / "arms" / "heuristic").mkdir(parents=True)
    changed["spec"]["arms"][1]["designedShare"] = "0.9"
    with pytest.raises(SpecError, match=r"changed: arms\[1\] \(heuristic\), which has started\)"):
        prepare(parse_experiment(changed), tmp_path)
    # --arms names arms of the experiment, before anything runs
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(TINY))
    assert main(["run", str(path), "--run-dir", str(tmp_path / "other"), "--arms", "none", "lp"]) == 2
    assert "--arms: lp is not an arm of tiny (arms: none, heuristic)" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()
    run = tmp_path / "run.yaml"
    run.write_text(yaml.safe_dump(parse_experiment(TINY).arm_run("none").dump()))
    assert main(["run", str(run), "--run-dir", str(tmp_path / "other"), "--arms", "none"]) == 2
    assert "is an EnvGenRun, not an EnvGenExperiment" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()
