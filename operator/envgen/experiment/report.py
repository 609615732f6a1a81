"""The comparison's tables, sections and plots, shared by the experiment report and the science benchmark."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..achievements import ACHIEVEMENTS
from . import stats
from .results import Arm, mean_std, unlocked

RESULTS_HEADER = [
    "| arm | seeds | score | eval score | eval reward | LLM calls | critic findings | min/seed | steps/s | state |",
    "|---|---|---|---|---|---|---|---|---|---|",
]


def results_row(name: str, arm: Arm, extra: Sequence[str] = ()) -> str:
    """One arm's row of the results table (``RESULTS_HEADER``), with ``extra`` cells after the state."""
    final = arm.final()
    rewards = [m["rewardMean"] for _, m in final if m.get("rewardMean") is not None]
    tasks = [t for r in arm.seeds.values() for t in r.tasks]
    steps, wall = sum(t.get("steps", 0) for t in tasks), sum(t.get("wallTimeSeconds", 0.0) for t in tasks)
    seeds = len(final)
    state = "finished" if arm.finished else f"running ({len(tasks)} tasks done)"
    cells = [
        name,
        str(seeds),
        mean_std(arm.train_scores()),
        mean_std(arm.eval_scores()),
        mean_std(rewards),
        str(arm.llm_calls),
        str(arm.findings),
        f"{wall / 60 / max(seeds, 1):.0f}",
        f"{steps / wall if wall else 0:.0f}",
        state,
        *extra,
    ]
    return "| " + " | ".join(cells) + " |"


def difference(scores: Sequence[float], base: Sequence[float]) -> tuple[str, bool]:
    """The mean difference with its Welch test and bootstrap CI, as text; and whether it is a significant gain."""
    c = stats.compare(scores, base)
    assert c is not None, "difference needs 2 seeds a side"
    w, (lo, hi) = c.welch, c.ci
    text = (
        f"{c.diff:+.2f} points; Welch t = {w.t:.2f} (df {w.df:.1f}), p = {w.p:.3f}; "
        f"95% bootstrap CI [{lo:+.2f}, {hi:+.2f}]"
    )
    return text, c.significant


def versus(name: str, scores: Sequence[float], label: str, base: Sequence[float]) -> str:
    """A bullet: ``name`` against ``label``'s scores, without a verdict."""
    if len(scores) < 2:
        return f"- {name} vs {label}: not enough finished seeds yet ({len(scores)})."
    return f"- {name} vs {label}: {difference(scores, base)[0]}."


def significance(name: str, arm: Arm, baseline: str, base: Arm | None) -> str:
    """A bullet: an arm against the baseline, with the verdict at 5 %."""
    scores, ref = arm.train_scores(), base.train_scores() if base else []
    if len(scores) < 2 or len(ref) < 2:
        return f"- {name} vs {baseline}: not enough finished seeds yet ({len(scores)} vs {len(ref)})."
    text, significant = difference(scores, ref)
    return f"- {name} vs {baseline}: {text} -> {'significant' if significant else 'not significant'} at 5%."


def power_lines(arms: Mapping[str, Arm], baseline: str) -> list[str]:
    """Per arm: the minimum detectable effect at 80 % power for the seeds finished, beside the observed one."""
    base = arms.get(baseline)
    ref = base.train_scores() if base else []
    lines = []
    if len(ref) >= 2:
        sd = statistics.stdev(ref)
        n = len(ref)
        sizes = sorted({n, 3, 6, 10})
        lines.append(
            f"- {baseline} alone: seed-to-seed sd {sd:.2f} over {n} seeds; with that sd, "
            + ", ".join(f"{k} seeds a side detect {stats.mde(sd, k, k):.2f}" for k in sizes)
            + " points."
        )
    for name, arm in arms.items():
        if name == baseline:
            continue
        c = stats.compare(arm.train_scores(), ref)
        if c is None:
            continue
        verdict = "larger" if abs(c.diff) >= c.mde else "smaller"
        lines.append(
            f"- {name} ({c.n} seeds) vs {baseline} ({c.n_base}): pooled sd {c.sd:.2f}; minimum detectable effect "
            f"{c.mde:.2f} points; observed {c.diff:+.2f}, {verdict} than that."
        )
    return lines


def paired_lines(arms: Mapping[str, Arm], baseline: str) -> list[str]:
    """Per arm sharing at least 3 seeds with the baseline: the paired t-test, and whether pairing helps."""
    base = arms.get(baseline)
    lines = []
    for name, arm in arms.items():
        if name == baseline or base is None:
            continue
        p = stats.paired(arm.train_scores_by_seed(), base.train_scores_by_seed())
        if p is None:
            continue
        helps = "pairing helps" if p.helps else "pairing does not help"
        lines.append(
            f"- {name} vs {baseline}, seeds {_seed_list(p.seeds)}: per-seed difference {p.diff:+.2f} ± "
            f"{p.sd_diff:.2f}; paired t = {p.t:.2f}, p = {p.p:.3f}; {helps} (sd of the per-seed differences "
            f"{p.sd_diff:.2f} vs {p.sd_unpaired:.2f} for independent seeds, r = {p.correlation:+.2f})."
        )
    return lines


def _seed_list(seeds: Sequence[int]) -> str:
    if list(seeds) == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}-{seeds[-1]}"
    return ", ".join(map(str, seeds))


def achievement_table(arms: Mapping[str, Arm], baseline: str) -> list[str]:
    """Per achievement: the baseline's mean, seed range and sd, and each arm's difference to its mean; a
    difference whose arm mean lies outside the baseline's range is marked (▼ below, ▲ above)."""
    base = arms.get(baseline)
    others = [(n, a) for n, a in arms.items() if n != baseline and a.final()]
    if base is None or not base.final() or not others:
        return []
    diffs = {n: stats.achievement_diffs(a.train_success(), base.train_success(), ACHIEVEMENTS) for n, a in others}
    lines = [
        f"| achievement | {baseline} mean | {baseline} range | {baseline} sd | "
        + " | ".join(n for n, _ in others)
        + " |",
        "|---|---|---|---|" + "---|" * len(others),
    ]
    for i, k in enumerate(ACHIEVEMENTS):
        b = diffs[others[0][0]][i]
        cells = [
            f"{d.diff:+.1f}{' ▼' if d.lost else ' ▲' if d.gained else ''}" for d in (diffs[n][i] for n, _ in others)
        ]
        lines.append(
            f"| {k} | {b.base_mean:.1f} | {b.base_min:.1f}-{b.base_max:.1f} | {b.base_sd:.1f} | "
            + " | ".join(cells)
            + " |"
        )
    return lines


def loss_lines(arms: Mapping[str, Arm], baseline: str) -> list[str]:
    """Per arm: the achievements it lost (mean below the baseline's lowest seed)."""
    base = arms.get(baseline)
    if base is None or not base.final():
        return []
    lines = []
    for name, arm in arms.items():
        if name == baseline or not arm.final():
            continue
        lost = [d for d in stats.achievement_diffs(arm.train_success(), base.train_success(), ACHIEVEMENTS) if d.lost]
        text = "; ".join(
            f"{d.name} {d.arm_mean:.1f} % vs {d.base_min:.1f}-{d.base_max:.1f} % ({d.seeds_below} of {d.seeds} "
            "seeds below)"
            for d in lost
        )
        lines.append(f"- {name}: {text or 'none'}.")
    return lines


def checkpoints(arms: Mapping[str, Arm]) -> list[str]:
    """Evaluation score at each cycle's end, every seed of the arm at the same step count (equal-step points)."""
    lines = ["| arm | after | agent steps | seeds | eval score | unlocked |", "|---|---|---|---|---|---|"]
    for name, arm in arms.items():
        by_cycle: dict[str, list[Any]] = {}
        for rec in arm.seeds.values():
            for t in rec.tasks:
                by_cycle.setdefault("final" if t.get("phase") == "final" else f"cycle {t.get('cycle')}", []).append(t)
        for label, tasks in by_cycle.items():
            scores = [t["score"] for t in tasks if t.get("score") is not None]
            opened = [float(unlocked(t)) for t in tasks]
            lines.append(
                f"| {name} | {label} | {tasks[0].get('globalStep', 0):,} | {len(tasks)} | {mean_std(scores)} "
                f"| {mean_std(opened)} |"
            )
    return lines if len(lines) > 2 else []


def _colors(names: list[str], baseline: str) -> dict[str, Any]:
    """One distinct colour per arm in both plots (tab20 once tab10's ten run out), the baseline in black."""
    import matplotlib

    others = [n for n in names if n != baseline]
    cmap = matplotlib.colormaps["tab10" if len(others) <= 10 else "tab20"]
    return {baseline: "black", **{n: cmap(i % cmap.N) for i, n in enumerate(others)}}


def achievement_plot(arms: Mapping[str, Arm], baseline: str, path: Path) -> None:
    """Per-achievement success of each arm (mean over seeds), the baseline's bars with its seed range."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    shown = [(n, a) for n, a in arms.items() if a.final()]
    fig, ax = plt.subplots(figsize=(14, 5))
    colors = _colors([n for n, _ in shown], baseline)
    width = 0.8 / max(len(shown), 1)
    x = np.arange(len(ACHIEVEMENTS))
    for i, (name, arm) in enumerate(shown):
        rates = [[s.get(k, 0.0) for s in arm.train_success()] for k in ACHIEVEMENTS]
        means = [statistics.fmean(r) for r in rates]
        ax.bar(x + i * width, means, width, label=name, color=colors[name])
        if name == baseline and len(rates[0]) > 1:
            spread = [
                [m - min(r) for m, r in zip(means, rates, strict=True)],
                [max(r) - m for m, r in zip(means, rates, strict=True)],
            ]
            ax.errorbar(x + i * width, means, yerr=spread, fmt="none", ecolor="grey", capsize=2, lw=1)
    ax.set_xticks(x + 0.4 - width / 2, [k.replace("_", " ") for k in ACHIEVEMENTS], rotation=60, ha="right")
    ax.set_ylabel("success rate (%), final-phase training episodes")
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_title(
        f"Per-achievement success: each arm vs {baseline} (mean over seeds; whiskers: {baseline}'s seed range)"
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def curve_plot(arms: Mapping[str, Arm], baseline: str, path: Path) -> None:
    """Evaluation score and unlocked achievements against agent steps, mean ± sd over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.5))
    colors = _colors(list(arms), baseline)
    for name, arm in arms.items():
        runs = [r.tasks for r in arm.seeds.values()]
        n = min((len(r) for r in runs), default=0)
        if n == 0:
            continue
        steps = np.array([[t.get("globalStep", 0) for t in r[:n]] for r in runs]).mean(axis=0)
        score = np.array([[t.get("score") or 0.0 for t in r[:n]] for r in runs])
        opened = np.array([[unlocked(t) for t in r[:n]] for r in runs])
        for ax, values in ((ax1, score), (ax2, opened)):
            mean, std = values.mean(axis=0), values.std(axis=0)
            ax.plot(steps, mean, marker="o", color=colors[name], label=f"{name} ({len(runs)} seeds)")
            ax.fill_between(steps, mean - std, mean + std, color=colors[name], alpha=0.2)
    ax1.set(xlabel="agent steps", ylabel="Crafter score (%), evaluation in Crafter", title="Score")
    ax2.set(xlabel="agent steps", ylabel="achievements unlocked in evaluation", title="Unlocked achievements")
    ax1.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def statistics_sections(arms: Mapping[str, Arm], baseline: str) -> list[str]:
    """The sections a reader needs to trust a comparison: power, pairing by seed, per-achievement differences
    beside the baseline's seed spread, and the achievements each arm lost."""
    return [
        "## Power (what the seeds finished can detect: two-sided t-test at 5 %, 80 % power)",
        "",
        *(power_lines(arms, baseline) or ["- not enough finished seeds yet."]),
        "",
        f"## Paired by seed (arms sharing seeds with `{baseline}`: same initial weights and worlds)",
        "",
        *(paired_lines(arms, baseline) or ["- no arm shares 3 finished seeds with the baseline yet."]),
        "",
        f"## Per-achievement differences vs `{baseline}`'s seed-to-seed spread (final-phase training success, %)",
        "",
        f"Each arm's mean minus `{baseline}`'s mean; ▼ marks an arm mean below every `{baseline}` seed, ▲ above.",
        "",
        *(achievement_table(arms, baseline) or ["No finished seeds yet."]),
        "",
        f"## Lost achievements (arm mean below `{baseline}`'s seed-to-seed range)",
        "",
        *(loss_lines(arms, baseline) or ["- no finished seeds yet."]),
        "",
    ]


def closing_sections(
    compared: Mapping[str, Arm], evaluated: Mapping[str, Arm], baseline: str, out: Path, evaluation: str = ""
) -> tuple[list[str], list[Path]]:
    """The end of a comparison report: the statistics sections of the ``compared`` arms, the equal-step
    checkpoints of the ``evaluated`` ones (evaluated ``evaluation``, e.g. " in Crafter") and, once an arm has
    finished, the two plots written into ``out``; the lines and the plot files."""
    lines = [
        *statistics_sections(compared, baseline),
        f"## Equal-step checkpoints (evaluation{evaluation} at the end of each finished task)",
        "",
        *(checkpoints(evaluated) or ["No task has finished yet."]),
        "",
    ]
    if not any(a.final() for a in evaluated.values()):
        return lines, []
    plots = [out / "achievements.png", out / "curves.png"]
    achievement_plot(compared, baseline, plots[0])
    curve_plot(evaluated, baseline, plots[1])
    return [*lines, "![per-achievement success](achievements.png)", "", "![learning curves](curves.png)", ""], plots
