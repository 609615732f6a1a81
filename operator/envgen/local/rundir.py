"""The run directory: every artefact of a local run, laid out so that the directory alone is the run's state.

```
<run-dir>/
  run.yaml                     the spec the run was started with
  run.json                     start time
  designs/c<k>.json            a cycle's design (envs, chat, critic findings, LLM usage)
  designs/c<k>.failed-<n>.json a failed design attempt
  tasks/<task>/task.json       the training task; the trainer writes metrics.json, progress.json, tb/ here
  tasks/<task>/exit-code       written when the process ended on its own
  tasks/<task>/resume.pt       the trainer's resumable checkpoint while the task trains (kept when interrupted)
  tasks/<task>/train.log       the trainer's output
  metrics/<task>.json          recorded metrics of finished tasks
  checkpoints/s<seed>/c<k>.pt  the agent after cycle k (final.pt after the final phase)
  llm-records/<sha256>.json    every LLM request/response, replayed on re-runs
  finished.json                outcome, reason and the final summary
  report/                      report.md and heatmap.png
```
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .. import atomic


def write_json(path: Path, doc: BaseModel | dict[str, Any]) -> None:
    """Atomic JSON write of a model (camelCase) or a dict."""
    data = doc.model_dump(mode="json", by_alias=True, exclude_none=True) if isinstance(doc, BaseModel) else doc
    atomic.write_json(path, data)


def read_json(path: Path) -> Any | None:
    """Parsed JSON, or None when the file is missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


class RunDir:
    """Paths inside one run directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def spec(self) -> Path:
        return self.root / "run.yaml"

    @property
    def info(self) -> Path:
        return self.root / "run.json"

    @property
    def designs(self) -> Path:
        return self.root / "designs"

    def design(self, cycle: int) -> Path:
        return self.designs / f"c{cycle}.json"

    @property
    def tasks(self) -> Path:
        return self.root / "tasks"

    def task(self, name: str) -> Path:
        return self.tasks / name

    @property
    def metrics(self) -> Path:
        return self.root / "metrics"

    @property
    def llm_records(self) -> Path:
        return self.root / "llm-records"

    @property
    def finished(self) -> Path:
        return self.root / "finished.json"

    @property
    def outage(self) -> Path:
        return self.root / "llm-outage.json"

    @property
    def report(self) -> Path:
        return self.root / "report"

    def resolve(self, relative: str) -> str:
        """An engine path (relative to the storage root) as an absolute path in this run directory."""
        return str(self.root / relative)
