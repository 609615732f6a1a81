"""Terminal progress for a local run: a bar for phases, one bar per running training task, and the LLM's answer
(tokens so far and tokens/s) while a design is being written."""

from __future__ import annotations

from typing import Any

from tqdm import tqdm

from ..engine import RunSummary
from ..llm.progress import StreamProgress
from ..spec import EnvGenRun
from .rundir import RunDir, read_json

tqdm.monitor_interval = 0  # no monitor thread: trainers are started with a preexec_fn


class Progress:
    """tqdm bars fed from the run summary and the trainers' progress.json files."""

    def __init__(self, run: EnvGenRun, rundir: RunDir, quiet: bool = False) -> None:
        self.rundir = rundir
        self.quiet = quiet
        self.phases = tqdm(total=run.spec.cycles + 1, desc="phases", unit="phase", disable=quiet, position=0)
        self.tasks: dict[str, tqdm[Any]] = {}
        self.answer: tqdm[Any] | None = None

    def note(self, message: str) -> None:
        """A line above the bars."""
        if not self.quiet:
            tqdm.write(message)

    def llm(self, progress: StreamProgress) -> None:
        """The LLM answer being streamed: one line, removed when the answer is complete."""
        if self.quiet:
            return
        if self.answer is None:
            self.answer = tqdm(bar_format="{desc}", position=len(self.tasks) + 1, leave=False)
        self.answer.set_description_str(f"LLM: {progress.describe()}", refresh=True)
        if progress.done:
            self.answer.close()
            self.answer = None

    def update(self, summary: RunSummary | None, running: dict[str, Any]) -> None:
        """Refresh bars: phases from the summary, task bars from progress.json."""
        if summary is not None:
            done = summary.cycles_completed + int(summary.final_completed)
            self.phases.n = done
            self.phases.set_postfix_str(summary.message, refresh=False)
            self.phases.refresh()
        for name in list(self.tasks):
            if name not in running:
                self.tasks.pop(name).close()
        for name in running:
            doc = read_json(self.rundir.task(name) / "progress.json") or {}
            bar = self.tasks.get(name)
            if bar is None:
                bar = tqdm(desc=name, unit="step", disable=self.quiet, position=len(self.tasks) + 1, leave=False)
                self.tasks[name] = bar
            total, steps = doc.get("totalSteps"), doc.get("steps")
            if isinstance(total, int) and bar.total != total:
                bar.total = total
            if isinstance(steps, int):
                bar.n = steps
            phase = doc.get("phase")
            if phase:
                bar.set_postfix_str(str(phase), refresh=False)
            bar.refresh()

    def close(self) -> None:
        if self.answer is not None:
            self.answer.close()
            self.answer = None
        for bar in self.tasks.values():
            bar.close()
        self.tasks.clear()
        self.phases.close()
