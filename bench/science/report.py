"""RESULTS.md, summary.json, the per-achievement and learning-curve plots, from the raw per-task metrics JSON."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from envgen.achievements import ACHIEVEMENTS

from . import run as bench
from .sb3 import SB3_ARM

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


def load(profile: str) -> dict[str, dict[str, Any]]:
    """Per arm: its seeds' records (final and cycle metrics), LLM usage, critic findings, finished or not."""
    arms: dict[str, dict[str, Any]] = {}
    for arm in (*bench.ARMS, SB3_ARM):
        folder = bench.RESULTS / profile / arm
        if not folder.is_dir():
            continue
        tasks = [m for p in sorted(folder.glob("sci-*.json")) if (m := _read(p)) and not m.get("error")]
        # every batch of seeds: design-c1.json (seeds from 0), s3-design-c1.json (the batch from seed 3), ...
        designs = [d for p in sorted(folder.glob("*design-c*.json")) if (d := _read(p)) and "failed" not in p.name]
        seeds: dict[int, dict[str, Any]] = {}
        for m in sorted(tasks, key=lambda m: (m.get("seed", 0), m.get("globalStep", 0))):
            rec = seeds.setdefault(m.get("seed", 0), {"cycles": [], "final": None})
            rec["final" if m.get("phase") == "final" else "cycles"] = (
                m if m.get("phase") == "final" else [*rec["cycles"], m]
            )
        arms[arm] = {
            "seeds": seeds,
            "llmCalls": sum(d.get("usage", {}).get("calls", 0) for d in designs),
            "findings": sum(len(d.get("findings", [])) for d in designs),
            "designs": len(designs),
            "finished": all(
                (folder / run.name.replace("run.json", "finished.json")).exists()
                for run in [folder / "run.json", *folder.glob("s*-run.json")]
            ),
        }
    return arms


def _final(arm: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    return [(s, r["final"]) for s, r in sorted(arm["seeds"].items()) if r["final"] is not None]


def _tasks(rec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*rec["cycles"], *([rec["final"]] if rec["final"] else [])]


def _mean_std(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f}"


# ---- statistics ---------------------------------------------------------------------------------------------
def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (Numerical Recipes)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-12:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b)."""
    if x <= 0.0 or x >= 1.0:
        return max(0.0, min(1.0, x))
    lbeta = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1.0 - x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(lbeta) * _betacf(a, b, x) / a
    return 1.0 - math.exp(lbeta) * _betacf(b, a, 1.0 - x) / b


def welch(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """Welch's t-test of mean(a) - mean(b): (t, degrees of freedom, two-sided p)."""
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    diff = statistics.fmean(a) - statistics.fmean(b)
    if va + vb == 0:
        return (math.inf if diff else 0.0), float(len(a) + len(b) - 2), (0.0 if diff else 1.0)
    t = diff / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return t, df, _betainc(df / 2.0, 0.5, df / (df + t * t))


def bootstrap_ci(a: list[float], b: list[float], n: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """95% bootstrap interval of mean(a) - mean(b), seeds resampled within each arm."""
    rng = np.random.default_rng(seed)
    xa = rng.choice(np.asarray(a), (n, len(a))).mean(axis=1)
    xb = rng.choice(np.asarray(b), (n, len(b))).mean(axis=1)
    lo, hi = np.percentile(xa - xb, [2.5, 97.5])
    return float(lo), float(hi)


# ---- outputs ------------------------------------------------------------------------------------------------
def summary(profile: str, arms: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """summary.json: final-phase training score and evaluation score per seed, and the budget."""
    prof = bench.PROFILES[profile]
    t = prof["training"]
    out: dict[str, Any] = {"arms": {}}
    for name, arm in arms.items():
        final = _final(arm)
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
    """One line per arm that splits its cycles' steps otherwise than the profile (same steps per cycle)."""
    lines = []
    for arm in bench.DESIGNED_SHARE:
        t = bench.training_of(arm, profile)
        lines.append(
            f"`{arm}` splits each cycle into {t['designedEnvSteps']:,} designed-env + {t['gameSteps']:,} Crafter "
            "steps (the same steps per cycle and seed)."
        )
    return ["", *lines] if lines else []


def _train_scores(arm: dict[str, Any] | None) -> list[float]:
    """The final-phase training scores of an arm's finished seeds."""
    return [m["trainScore"] for _, m in _final(arm) if m.get("trainScore") is not None] if arm else []


def _row(name: str, arm: dict[str, Any]) -> str:
    final = _final(arm)
    scores = _train_scores(arm)
    evals = [m["score"] for _, m in final if m.get("score") is not None]
    rewards = [m["rewardMean"] for _, m in final if m.get("rewardMean") is not None]
    tasks = [t for r in arm["seeds"].values() for t in _tasks(r)]
    steps, wall = sum(t.get("steps", 0) for t in tasks), sum(t.get("wallTimeSeconds", 0.0) for t in tasks)
    seeds = len(final)
    state = "finished" if arm["finished"] else f"running ({len(tasks)} tasks done)"
    return (
        f"| {name} | {seeds} | {_mean_std(scores)} | {_mean_std(evals)} | {_mean_std(rewards)} | {arm['llmCalls']} "
        f"| {arm['findings']} | {wall / 60 / max(seeds, 1):.0f} | {steps / wall if wall else 0:.0f} | {state} "
        f"| {PAPER.get(name, '–')} |"
    )


def _significance(arms: dict[str, dict[str, Any]]) -> list[str]:
    base = _train_scores(arms.get("none"))
    lines = []
    for name, arm in arms.items():
        if name in bench.REFERENCE_ARMS:
            lines.append(_against_sb3(name, arm, arms.get(SB3_ARM)))
            continue
        if name == SB3_ARM:
            lines.append(_sb3_against_issue(arm))
            continue
        if name == "none":
            continue
        scores = _train_scores(arm)
        if len(scores) < 2 or len(base) < 2:
            lines.append(f"- {name} vs none: not enough finished seeds yet ({len(scores)} vs {len(base)}).")
            continue
        text, significant = _difference(scores, base)
        verdict = "significant" if significant else "not significant"
        lines.append(f"- {name} vs none: {text} -> {verdict} at 5%.")
    return lines


def _difference(scores: list[float], base: list[float]) -> tuple[str, bool]:
    """The mean difference with its Welch test and bootstrap CI, as text; and whether it is a significant gain."""
    t, df, p = welch(scores, base)
    lo, hi = bootstrap_ci(scores, base)
    diff = statistics.fmean(scores) - statistics.fmean(base)
    text = f"{diff:+.2f} points; Welch t = {t:.2f} (df {df:.1f}), p = {p:.3f}; 95% bootstrap CI [{lo:+.2f}, {hi:+.2f}]"
    return text, p < 0.05 and lo > 0


def _versus(name: str, scores: list[float], label: str, base: list[float]) -> str:
    if len(scores) < 2:
        return f"- {name} vs {label}: not enough finished seeds yet ({len(scores)})."
    return f"- {name} vs {label}: {_difference(scores, base)[0]}."


def _against_sb3(name: str, arm: dict[str, Any], sb3_arm: dict[str, Any] | None = None) -> str:
    """Our PPO alone (a reference arm) against SB3, same budget and protocol.

    SB3 is the ``sb3-250k`` arm measured here once it has 2 finished seeds, else the issue's run (``SB3_SCORES``).
    """
    measured = _train_scores(sb3_arm)
    if len(measured) >= 2:
        sb3, label = measured, f"measured here, {len(measured)} seeds: {', '.join(f'{x:.2f}' for x in measured)}"
    else:
        sb3, label = bench.SB3_SCORES, f"the issue's run: {', '.join(f'{x:g}' for x in bench.SB3_SCORES)}"
    return _versus(name, _train_scores(arm), f"SB3 PPO ({label})", sb3)


def _sb3_against_issue(arm: dict[str, Any]) -> str:
    """SB3 measured here against the issue's SB3 run: does the reference reproduce?"""
    issue = ", ".join(f"{x:g}" for x in bench.SB3_SCORES)
    return _versus(SB3_ARM, _train_scores(arm), f"the issue's SB3 run ({issue})", bench.SB3_SCORES)


def _checkpoints(arms: dict[str, dict[str, Any]]) -> list[str]:
    """Evaluation score at each cycle's end, every seed of the arm at the same step count (equal-step points)."""
    lines = ["| arm | after | agent steps | seeds | eval score | unlocked |", "|---|---|---|---|---|---|"]
    for name, arm in arms.items():
        by_cycle: dict[str, list[dict[str, Any]]] = {}
        for rec in arm["seeds"].values():
            for t in _tasks(rec):
                by_cycle.setdefault("final" if t.get("phase") == "final" else f"cycle {t.get('cycle')}", []).append(t)
        for label, tasks in by_cycle.items():
            scores = [t["score"] for t in tasks if t.get("score") is not None]
            unlocked = [float(sum(1 for s in t.get("success", {}).values() if s["mean"] > 0)) for t in tasks]
            lines.append(
                f"| {name} | {label} | {tasks[0].get('globalStep', 0):,} | {len(tasks)} | {_mean_std(scores)} "
                f"| {_mean_std(unlocked)} |"
            )
    return lines if len(lines) > 2 else []


def _colors(names: list[str]) -> dict[str, Any]:
    """One distinct colour per arm in both plots (tab20 once tab10's ten run out), ``none`` in black."""
    import matplotlib

    others = [n for n in names if n != "none"]
    cmap = matplotlib.colormaps["tab10" if len(others) <= 10 else "tab20"]
    return {"none": "black", **{n: cmap(i % cmap.N) for i, n in enumerate(others)}}


def _achievement_plot(arms: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [(n, a) for n, a in arms.items() if _final(a) and n not in bench.REFERENCE_ARMS and n not in NO_EVAL]
    fig, ax = plt.subplots(figsize=(14, 5))
    colors = _colors([n for n, _ in shown])
    width = 0.8 / max(len(shown), 1)
    x = np.arange(len(ACHIEVEMENTS))
    for i, (name, arm) in enumerate(shown):
        rates = [[m.get("trainSuccess", {}).get(k, 0.0) for _, m in _final(arm)] for k in ACHIEVEMENTS]
        ax.bar(
            x + i * width,
            [statistics.fmean(r) for r in rates],
            width,
            label=name,
            color=colors[name],
        )
    ax.set_xticks(x + 0.4 - width / 2, [k.replace("_", " ") for k in ACHIEVEMENTS], rotation=60, ha="right")
    ax.set_ylabel("success rate (%), final-phase training episodes")
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_title("Per-achievement success: each arm vs none (mean over seeds)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _curve_plot(arms: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.5))
    colors = _colors(list(arms))
    for name, arm in arms.items():
        runs = [_tasks(r) for r in arm["seeds"].values()]
        n = min((len(r) for r in runs), default=0)
        if n == 0:
            continue
        steps = np.array([[t.get("globalStep", 0) for t in r[:n]] for r in runs]).mean(axis=0)
        score = np.array([[t.get("score") or 0.0 for t in r[:n]] for r in runs])
        unlocked = np.array(
            [[sum(1 for s in t.get("success", {}).values() if s["mean"] > 0) for t in r[:n]] for r in runs]
        )
        for ax, values in ((ax1, score), (ax2, unlocked)):
            mean, std = values.mean(axis=0), values.std(axis=0)
            ax.plot(steps, mean, marker="o", color=colors[name], label=f"{name} ({len(runs)} seeds)")
            ax.fill_between(steps, mean - std, mean + std, color=colors[name], alpha=0.2)
    ax1.set(xlabel="agent steps", ylabel="Crafter score (%), evaluation in Crafter", title="Score")
    ax2.set(xlabel="agent steps", ylabel="achievements unlocked in evaluation", title="Unlocked achievements")
    ax1.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report_dir(profile: str) -> Path:
    """The CPU profile's report is bench/science/ itself; other profiles report under results/<profile>/."""
    return bench.ROOT if profile == "cpu" else bench.RESULTS / profile


def write_report(profile: str) -> list[Path]:
    """Write RESULTS.md, summary.json, achievements.png and curves.png; return their paths."""
    arms = load(profile)
    evaluated = {n: a for n, a in arms.items() if n not in NO_EVAL}
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
        f"[`results/{profile}/`](results/{profile}/) (one JSON per training task and seed).",
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
        "| arm | seeds | score | eval score | eval reward | LLM calls | critic findings | min/seed | steps/s "
        "| state | paper |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *[_row(name, arm) for name, arm in arms.items()],
        "",
        "## Significance (final-phase training score vs `none`; our PPO alone vs SB3)",
        "",
        *(_significance(arms) or ["- no arm has results yet."]),
        "",
        "## Equal-step checkpoints (evaluation in Crafter at the end of each finished task)",
        "",
        *(_checkpoints(evaluated) or ["No task has finished yet."]),
        "",
    ]
    if any(_final(a) for a in evaluated.values()):
        _achievement_plot(arms, out / "achievements.png")
        _curve_plot(evaluated, out / "curves.png")
        files += [out / "achievements.png", out / "curves.png"]
        lines += ["![per-achievement success](achievements.png)", "", "![learning curves](curves.png)", ""]
    notes = out / "NOTES.md"
    if notes.exists():
        lines += [notes.read_text()]
    files[1].write_text("\n".join(lines))
    return files
