"""RESULTS.md, summary.json, the per-achievement and learning-curve plots, from the raw per-task metrics JSON.

The statistics, tables and plots are the product's (``envgen.experiment``); this page adds the benchmark's own
parts: the paper's scores, the budget, the SB3 reference and the notes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from envgen.experiment import report as rep
from envgen.experiment.model import arm_training
from envgen.experiment.results import Arm, arm_of

from . import run as bench
from .sb3 import SB3_ARM

BASELINE = "none"

# The paper's Crafter scores (Zala et al. 2024, Tables 1 and 3) beside our arms; SB3 is issue's reference run.
PAPER = {
    "none": "26.4 (PPO + 0.96M Crafter steps)",
    "llm": "32.2 (EnvGen, GPT-4)",
    "llm-endpoint": "32.2 (EnvGen, GPT-4)",
    "fixed": "29.9 (Table 3)",
    "easy-to-hard": "26.8 (Table 3)",
    "adversarial": "26.8 (Table 3)",
    "ppo-250k": "SB3 PPO 4.3, 4.9 (250k steps); paper PPO 15.5 (1M)",
    "ppo-250k-sb3-value": "SB3 PPO 4.3, 4.9 (250k steps)",
    SB3_ARM: "SB3 PPO 4.3, 4.9 (the issue's run, 250k steps)",
}
# Arms without an evaluation in Crafter (training score only): left out of the checkpoints and the plots.
NO_EVAL = {SB3_ARM}


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def load(profile: str) -> dict[str, Arm]:
    """Per arm: its seeds' records (final and cycle metrics), LLM usage, critic findings, finished or not."""
    arms: dict[str, Arm] = {}
    for name in (*bench.ARMS, SB3_ARM):
        folder = bench.RESULTS / profile / name
        if not folder.is_dir():
            continue
        tasks = [m for p in sorted(folder.glob("sci-*.json")) if (m := _read(p))]
        # every batch of seeds: design-c1.json (seeds from 0), s3-design-c1.json (the batch from seed 3), ...
        designs = [d for p in sorted(folder.glob("*design-c*.json")) if (d := _read(p)) and "failed" not in p.name]
        finished = all(
            (folder / run.name.replace("run.json", "finished.json")).exists()
            for run in [folder / "run.json", *folder.glob("s*-run.json")]
        )
        arms[name] = arm_of(tasks, designs, finished)
    return arms


# ---- outputs ------------------------------------------------------------------------------------------------
def summary(profile: str, arms: dict[str, Arm]) -> dict[str, Any]:
    """summary.json: final-phase training score and evaluation score per seed, and the budget."""
    prof = bench.PROFILES[profile]
    t = prof["training"]
    out: dict[str, Any] = {"arms": {}}
    for name, arm in arms.items():
        final = arm.final()
        out["arms"][name] = {
            "scores": [round(m["trainScore"], 3) for _, m in final if m.get("trainScore") is not None],
            "evalScores": [round(m["score"], 3) for _, m in final if m.get("score") is not None],
            "seeds": [s for s, _ in final],
            **({"versions": final[0][1]["versions"]} if final and "versions" in final[0][1] else {}),
        }
    out["budget"] = {
        "profile": profile,
        "cycles": prof["cycles"],
        "envsPerCycle": prof["envsPerCycle"],
        **t,
        "stepsPerSeed": prof["cycles"] * (t["designedEnvSteps"] + t["gameSteps"]) + t["finalSteps"],
        "referenceSteps": prof["reference_steps"],
        "agent": prof["agent"],
    }
    return out


def _other_splits(profile: str) -> list[str]:
    """One line per arm that splits its cycles' steps otherwise than the profile (same steps per cycle), as the
    experiment splits them."""
    exp = bench.experiment(profile)
    lines = []
    for arm in exp.spec.arms:
        if arm.designed_share is None and arm.training is None:
            continue
        t = arm_training(exp.spec.template, arm)
        lines.append(
            f"`{arm.name}` splits each cycle into {t['designedEnvSteps']:,} designed-env + {t['gameSteps']:,} Crafter "
            "steps (the same steps per cycle and seed)."
        )
    return ["", *lines] if lines else []


def _significance(arms: dict[str, Arm]) -> list[str]:
    lines = []
    for name, arm in arms.items():
        if name in bench.REFERENCE_ARMS:
            lines.append(_against_sb3(name, arm, arms.get(SB3_ARM)))
        elif name == SB3_ARM:
            lines.append(_sb3_against_issue(arm))
        elif name != BASELINE:
            lines.append(rep.significance(name, arm, BASELINE, arms.get(BASELINE)))
    return lines


def _against_sb3(name: str, arm: Arm, sb3_arm: Arm | None = None) -> str:
    """Our PPO alone (a reference arm) against SB3, same budget and protocol.

    SB3 is the ``sb3-250k`` arm measured here once it has 2 finished seeds, else the issue's run (``SB3_SCORES``).
    """
    measured = sb3_arm.train_scores() if sb3_arm else []
    if len(measured) >= 2:
        sb3, label = measured, f"measured here, {len(measured)} seeds: {', '.join(f'{x:.2f}' for x in measured)}"
    else:
        sb3, label = bench.SB3_SCORES, f"the issue's run: {', '.join(f'{x:g}' for x in bench.SB3_SCORES)}"
    return rep.versus(name, arm.train_scores(), f"SB3 PPO ({label})", sb3)


def _sb3_against_issue(arm: Arm) -> str:
    """SB3 measured here against the issue's SB3 run: does the reference reproduce?"""
    issue = ", ".join(f"{x:g}" for x in bench.SB3_SCORES)
    return rep.versus(SB3_ARM, arm.train_scores(), f"the issue's SB3 run ({issue})", bench.SB3_SCORES)


def report_dir(profile: str) -> Path:
    """The CPU profile's report is bench/science/ itself; other profiles report under results/<profile>/."""
    return bench.ROOT if profile == "cpu" else bench.RESULTS / profile


def write_report(profile: str) -> list[Path]:
    """Write RESULTS.md, summary.json, achievements.png and curves.png; return their paths."""
    arms = load(profile)
    evaluated = {n: a for n, a in arms.items() if n not in NO_EVAL}
    # the designers against the equal-step baseline (our PPO alone and SB3 are references at another budget)
    compared = {n: a for n, a in evaluated.items() if n not in bench.REFERENCE_ARMS}
    out = report_dir(profile)
    out.mkdir(parents=True, exist_ok=True)
    doc = summary(profile, arms)
    files = [out / "summary.json", out / "RESULTS.md"]
    files[0].write_text(json.dumps(doc, indent=1) + "\n")
    b = doc["budget"]
    lines = [
        f"# Science benchmark: profile `{profile}`",
        "",
        "Written by `python -m bench.science` from the raw per-task metrics in "
        f"[`results/{profile}/`]({os.path.relpath(bench.RESULTS / profile, out)}/) (one JSON per training task and "
        "seed).",
        "",
        f"Budget per seed: {b['cycles']} cycles x ({b['designedEnvSteps']:,} designed-env + {b['gameSteps']:,} "
        f"Crafter steps) + {b['finalSteps']:,} final Crafter steps = {b['stepsPerSeed']:,} steps; `none` spends "
        "the designed-env steps in Crafter too (equal steps). PPO: "
        + ", ".join(f"{k} {v}" for k, v in b["agent"].items()),
        *_other_splits(profile),
        "",
        "Score = Crafter score over the final phase's training episodes (the paper's protocol); eval = Crafter "
        "score in unmodified Crafter on evaluation seeds never used in training. Wall time is minutes of training "
        "per seed (sum of its tasks), so it depends on the machine's load; scores do not.",
        "",
        rep.RESULTS_HEADER[0] + " paper |",
        rep.RESULTS_HEADER[1] + "---|",
        *[rep.results_row(name, arm, [PAPER.get(name, "–")]) for name, arm in arms.items()],
        "",
        "## Significance (final-phase training score vs `none`; our PPO alone vs SB3)",
        "",
        *(_significance(arms) or ["- no arm has results yet."]),
        "",
    ]
    closing, plots = rep.closing_sections(compared, evaluated, BASELINE, out, " in Crafter")
    lines += closing
    files += plots
    notes = out / "NOTES.md"
    if notes.exists():
        lines += [notes.read_text()]
    files[1].write_text("\n".join(lines))
    return files
