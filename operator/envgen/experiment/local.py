"""``envgen run experiment.yaml``: every arm's seeds on this machine, one arm after another (an arm's seeds in
parallel, sharing the cores as a run does), each arm a resumable run directory; then the experiment report.

```
<experiment-dir>/
  experiment.yaml      the experiment as started
  arms/<arm>/          the arm's run directory (see envgen.local.rundir)
  report/              report.md, achievements.png, curves.png, results.json (raw per-seed), status.json
```
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import yaml

from .. import atomic
from ..local.rundir import RunDir, read_json
from ..spec import SpecError
from . import report as rep
from .model import EnvGenExperiment, EnvGenExperimentSpec
from .results import Arm, arm_of
from .status import ArmPhase, ExperimentStatus, aggregate

EXIT_SUCCEEDED, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


class ExperimentDir:
    """Paths inside one experiment directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def spec(self) -> Path:
        return self.root / "experiment.yaml"

    @property
    def report(self) -> Path:
        return self.root / "report"

    def arm(self, name: str) -> RunDir:
        return RunDir(self.root / "arms" / name)


def is_experiment_dir(root: Path) -> bool:
    return ExperimentDir(root).spec.exists()


def prepare(exp: EnvGenExperiment, root: Path) -> ExperimentDir:
    """Create the experiment directory, or check that an existing one holds the same experiment: the same
    template and seeds, and every arm that has started unchanged (arms may be added or removed, and the baseline
    may change: they only change the comparison)."""
    d = ExperimentDir(root)
    if d.spec.exists():
        previous = EnvGenExperimentSpec.model_validate((yaml.safe_load(d.spec.read_text()) or {}).get("spec", {}))
        changed = [
            EnvGenExperimentSpec.model_fields[f].alias or f
            for f in ("template", "seeds", "first_seed")
            if getattr(previous, f) != getattr(exp.spec, f)
        ]
        before = {a.name: a for a in previous.arms}
        changed += [
            f"arms[{i}] ({a.name}), which has started"
            for i, a in enumerate(exp.spec.arms)
            if a.name in before and before[a.name] != a and d.arm(a.name).root.is_dir()
        ]
        if changed:
            raise SpecError(
                f"{root} holds an experiment started with a different spec (changed: {', '.join(changed)}). "
                "Use another --run-dir, or restore the original values to resume."
            )
    root.mkdir(parents=True, exist_ok=True)
    # as written (the template leaves seeds and firstSeed to the experiment), so it reads back as the same experiment
    written = exp.model_dump(mode="json", by_alias=True, exclude_unset=True, exclude_none=True)
    atomic.write_text(d.spec, yaml.safe_dump(written, sort_keys=False))
    return d


def load_arm(rundir: RunDir) -> tuple[Arm, ArmPhase]:
    """An arm's results from its run directory, and its phase."""
    tasks = [m for p in sorted(rundir.metrics.glob("*.json")) if (m := read_json(p))]
    designs = [d for p in sorted(rundir.designs.glob("c*.json")) if "failed" not in p.name and (d := read_json(p))]
    ended = read_json(rundir.finished) or {}
    outcome = ended.get("outcome")
    phase: ArmPhase = outcome if outcome in ("Succeeded", "Failed") else ("Running" if tasks else "Pending")
    return arm_of(tasks, designs, finished=outcome is not None), phase


def load(exp: EnvGenExperiment, d: ExperimentDir) -> tuple[dict[str, Arm], dict[str, ArmPhase]]:
    """Every arm that has started: results and phases."""
    arms: dict[str, Arm] = {}
    phases: dict[str, ArmPhase] = {}
    for a in exp.spec.arms:
        rundir = d.arm(a.name)
        if rundir.root.is_dir():
            arms[a.name], phases[a.name] = load_arm(rundir)
    return arms, phases


def run_experiment(
    exp: EnvGenExperiment,
    root: Path,
    *,
    quiet: bool = False,
    retry: bool = False,
    trainer_command: list[str] | None = None,
    arms: Sequence[str] | None = None,
) -> int:
    """Run (or resume) every arm, or only the ``arms`` named (the others wait for a later run), then write the
    report of every arm that has started. Returns the process exit code."""
    from ..local.runner import EXIT_INTERRUPTED as RUN_INTERRUPTED
    from ..local.runner import run_local

    names = [a.name for a in exp.spec.arms]
    unknown = [n for n in arms or () if n not in names]
    if unknown:
        raise SpecError(
            f"--arms: {', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not an arm of {exp.name} "
            f"(arms: {', '.join(names)})"
        )
    d = prepare(exp, root)
    for a in exp.spec.arms:
        if arms is not None and a.name not in arms:
            continue
        rundir = d.arm(a.name)
        ended = read_json(rundir.finished) or {}
        if ended.get("outcome") == "Succeeded" or (ended.get("outcome") == "Failed" and not retry):
            continue
        print(f"[{exp.name}] arm {a.name}: {exp.spec.seeds} seed(s) from {exp.spec.first_seed}", flush=True)
        code = run_local(exp.arm_run(a.name), rundir.root, quiet=quiet, retry=retry, trainer_command=trainer_command)
        if code == RUN_INTERRUPTED:
            print(f"\ninterrupted: re-run the same command to resume the experiment from {root}")
            return EXIT_INTERRUPTED
    status = write_report(exp, d)
    print(f"\n{exp.name}: {status.arms_finished}/{status.arm_count} arms finished\n")
    print(summary_table(status, exp.spec.baseline))
    print(f"\nreport: {d.report / 'report.md'}")
    failed = [r.name for r in status.arms if r.phase == "Failed"]
    return EXIT_FAILED if failed else EXIT_SUCCEEDED


def summary_table(status: ExperimentStatus, baseline: str) -> str:
    """A plain-text table: one row per arm with its score and the comparison with the baseline."""
    rows = [("arm", "seeds", "score", "eval", f"vs {baseline}", "p", "95% CI", "MDE", "lost")]
    for r in status.arms:
        ci = f"[{r.ci_low}, {r.ci_high}]" if r.ci_low is not None else "-"
        score = f"{r.score} ± {r.score_std}" if r.score is not None else "-"
        rows.append(
            (
                r.name,
                str(r.seeds_finished),
                score,
                r.eval_score or "-",
                r.difference or "-",
                r.p or "-",
                ci,
                r.mde or "-",
                ", ".join(r.lost) or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def comparison_table(status: ExperimentStatus, baseline: str) -> list[str]:
    """The report's comparison table: every arm against the baseline."""
    lines = [
        f"| arm | seeds | score | eval score | vs {baseline} | Welch p | 95% bootstrap CI | MDE (80 %) | paired p "
        "| lost |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in status.arms:
        ci = f"[{float(r.ci_low):+.2f}, {float(r.ci_high):+.2f}]" if r.ci_low and r.ci_high else "–"
        score = f"{r.score} ± {r.score_std}" if r.score is not None else "–"
        diff = f"{float(r.difference):+.2f}" if r.difference is not None else "–"
        cells = [r.name, str(r.seeds_finished), score, r.eval_score or "–", diff, r.p or "–", ci]
        cells += [r.mde or "–", r.paired_p or "–", ", ".join(r.lost) or "–"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def raw_results(arms: dict[str, Arm]) -> dict[str, object]:
    """Per arm and seed: the final phase's and each cycle's metrics, as the trainer wrote them."""
    return {
        name: {str(seed): {"cycles": list(rec.cycles), "final": rec.final} for seed, rec in sorted(arm.seeds.items())}
        for name, arm in arms.items()
    }


def write_report(exp: EnvGenExperiment, d: ExperimentDir) -> ExperimentStatus:
    """Write report.md, the plots, results.json and status.json; return the status."""
    arms, phases = load(exp, d)
    status = aggregate(exp, arms, phases)
    out = d.report
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_text(out / "results.json", json.dumps(raw_results(arms), indent=1) + "\n")
    atomic.write_text(out / "status.json", json.dumps(status.dump(), indent=1) + "\n")
    base = exp.spec.baseline
    t = exp.spec.template.training
    lines = [
        f"# Experiment `{exp.name}`",
        "",
        f"{len(exp.spec.arms)} arms x {exp.spec.seeds} seeds (from {exp.spec.first_seed}), baseline `{base}`. "
        f"Every arm trains {exp.spec.template.cycles} cycle(s) x {t.designed_env_steps + t.game_steps:,} steps + "
        f"{t.final_steps:,} final steps per seed (equal steps). Score = Crafter score over the final phase's "
        "training episodes; eval = the score in the unmodified game on held-out evaluation seeds.",
        "",
        *rep.RESULTS_HEADER,
        *[rep.results_row(name, arm) for name, arm in arms.items()],
        "",
        f"## Comparison with `{base}`",
        "",
        *comparison_table(status, base),
        "",
        *[rep.significance(n, a, base, arms.get(base)) for n, a in arms.items() if n != base],
        "",
    ]
    closing, _ = rep.closing_sections(arms, arms, base, out)
    lines += [*closing, "Raw per-seed metrics: [results.json](results.json); status: [status.json](status.json).", ""]
    atomic.write_text(out / "report.md", "\n".join(lines))
    return status
