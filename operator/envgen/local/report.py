"""The end-of-run report: a terminal summary table, report.md, and a PNG heatmap of per-skill success."""

from __future__ import annotations

from pathlib import Path

from ..contracts import CycleDesign, CycleFeedback
from ..engine import Observed, feedback_by_cycle, summarize
from ..games import game as game_of
from ..spec import EnvGenRun

PAPER_TARGETS = "paper (1M final Crafter steps): PPO+EnvGen 32.2 ± 0.6, PPO equal-step 26.4 ± 2.1, PPO 15.5 ± 0.6"


def _label(cycle: int, total: int) -> str:
    return "final" if cycle > total else f"c{cycle}"


def summary_table(run: EnvGenRun, observed: Observed) -> str:
    """A plain-text table: one row per completed cycle (and the final phase)."""
    feedback = feedback_by_cycle(run.spec, observed)
    rows = [("phase", "score", "envs trained in", "LLM calls", "tokens")]
    for cycle, fb in feedback.items():
        design = observed.designs.get(cycle)
        envs = ", ".join(e.name for e in design.envs) if design and design.envs else "real game only"
        usage = design.usage if design else None
        rows.append(
            (
                _label(cycle, run.spec.cycles),
                "n/a" if fb.score is None else f"{fb.score:.1f}",
                envs[:60],
                str(usage.calls) if usage else "-",
                str(usage.prompt_tokens + usage.completion_tokens) if usage else "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_report(run: EnvGenRun, observed: Observed, out: Path, outcome: dict[str, object] | None) -> list[Path]:
    """Write report.md and heatmap.png under ``out``; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    feedback = feedback_by_cycle(run.spec, observed)
    files = [_markdown(run, observed, feedback, outcome, out / "report.md")]
    if feedback:
        files.append(_heatmap(run, feedback, out / "heatmap.png"))
    return files


def _markdown(
    run: EnvGenRun,
    observed: Observed,
    feedback: dict[int, CycleFeedback],
    outcome: dict[str, object] | None,
    path: Path,
) -> Path:
    spec = run.spec
    summary = summarize(spec, observed)
    lines = [f"# EnvGen run `{run.name}`", ""]
    if outcome:
        lines += [f"**Outcome:** {outcome.get('outcome')} ({outcome.get('reason')}): {outcome.get('message')}", ""]
    lines += [
        f"- game: {spec.game}, designer: {spec.designer.type}, model: {spec.llm.model}",
        f"- {spec.cycles} cycles x {spec.envs_per_cycle} envs, seeds {_seeds(spec.seed_numbers)}; per cycle "
        f"{spec.training.designed_env_steps} designed-env + {spec.training.game_steps} game steps; "
        f"final {spec.training.final_steps} steps",
        f"- final score (evaluation in the unmodified game): {_fmt(summary.final_score)}; "
        f"best: {_fmt(summary.best_score)}"
        + (f" ({_label(summary.best_cycle, spec.cycles)})" if summary.best_cycle else ""),
        f"- final-phase training score (the paper's definition: over the final phase's training episodes): "
        f"{_fmt(_final_train_score(observed))}",
        f"- LLM: {summary.llm_usage.calls} calls ({summary.llm_usage.cached_calls} replayed), "
        f"{summary.llm_usage.prompt_tokens} prompt + {summary.llm_usage.completion_tokens} completion tokens, "
        f"{summary.llm_usage.latency_seconds:.1f} s",
        f"- {PAPER_TARGETS}",
        "",
        "![per-skill success](heatmap.png)",
        "",
        "## Score per phase",
        "",
        "| phase | score |",
        "|---|---|",
    ]
    lines += [f"| {_label(k, spec.cycles)} | {_fmt(fb.score)} |" for k, fb in feedback.items()]
    game = game_of(spec.game)
    if len(game.skills) > 1 and feedback:
        lines += ["", f"## Success per {game.skill_noun} (%)", ""]
        cols = list(feedback)
        lines.append(f"| {game.skill_noun} | " + " | ".join(_label(k, spec.cycles) for k in cols) + " |")
        lines.append("|---|" + "---|" * len(cols))
        for name in game.skills:
            cells = []
            for k in cols:
                stat = feedback[k].success.get(name)
                cells.append("-" if stat is None else f"{stat.mean:.0f} ± {stat.std:.0f}")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "## Designed environments", ""]
    for cycle in sorted(observed.designs):
        lines += _design_section(observed.designs[cycle], feedback.get(cycle))
    path.write_text("\n".join(lines) + "\n")
    return path


def _design_section(design: CycleDesign, fb: CycleFeedback | None) -> list[str]:
    lines = [f"### Cycle {design.cycle} ({design.designer})", ""]
    if not design.envs:
        lines += ["Trained in the real game only.", ""]
    per_env = {e.name: e for e in fb.per_env} if fb else {}
    for env in design.envs:
        result = per_env.get(env.name)
        trained = f" — score inside it {_fmt(result.score)}" if result and result.score is not None else ""
        lines.append(f"- **{env.name}**{trained}: {env.purpose or '(no purpose given)'}")
        lines.append(f"  `{env.config.model_dump_json(exclude_defaults=True)}`")
    if design.findings:
        lines += ["", "Critic and validation findings:"]
        lines += [f"- {f.severity} `{f.code}`: {f.message}" for f in design.findings]
    if design.notes:
        lines += ["", "Notes:"] + [f"- {n}" for n in design.notes]
    lines.append("")
    return lines


def _final_train_score(observed: Observed) -> float | None:
    """Mean over seeds of the Crafter score over the final phase's training episodes."""
    scores = [
        t.metrics.train_score
        for t in observed.tasks
        if t.phase == "final" and t.usable and t.metrics is not None and t.metrics.train_score is not None
    ]
    return sum(scores) / len(scores) if scores else None


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _heatmap(run: EnvGenRun, feedback: dict[int, CycleFeedback], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    cols = list(feedback)
    skills = list(game_of(run.spec.game).skills)
    grid = np.array(
        [[feedback[k].success[s].mean if s in feedback[k].success else np.nan for k in cols] for s in skills]
    )
    labels = [_label(k, run.spec.cycles) for k in cols]
    fig, (ax, ax2) = plt.subplots(
        2, 1, figsize=(2.2 + 0.9 * len(cols), 3 + 0.32 * len(skills)), gridspec_kw={"height_ratios": [len(skills), 4]}
    )
    im = ax.imshow(grid, aspect="auto", cmap="viridis", vmin=0, vmax=100)
    ax.set_yticks(range(len(skills)), skills, fontsize=8)
    ax.set_xticks(range(len(cols)), labels)
    for i in range(len(skills)):
        for j in range(len(cols)):
            if not np.isnan(grid[i, j]):
                ax.text(
                    j,
                    i,
                    f"{grid[i, j]:.0f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if grid[i, j] < 50 else "black",
                )
    ax.set_title(f"{run.name}: success rate per skill (%)")
    fig.colorbar(im, ax=ax, fraction=0.04)
    scores = [feedback[k].score if feedback[k].score is not None else np.nan for k in cols]
    ax2.plot(range(len(cols)), scores, marker="o")
    ax2.set_xticks(range(len(cols)), labels)
    ax2.set_ylabel("score (%)")
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _seeds(numbers: range) -> str:
    """``0`` or ``3-5``."""
    return str(numbers[0]) if len(numbers) == 1 else f"{numbers[0]}-{numbers[-1]}"
