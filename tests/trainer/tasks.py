"""Training tasks for the trainer tests: one cycle of a Crafter run on designed environments."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def cycle_task(tmp: Path, run: str, name: str, envs: list[dict[str, Any]], /, **fields: Any) -> dict[str, Any]:
    """Cycle 1, seed 0 of ``run`` on ``envs``, writing its checkpoint, outputs and termination message under
    ``tmp``; ``fields`` add to the document or replace its keys."""
    return {
        "run": run,
        "name": name,
        "phase": "cycle",
        "cycle": 1,
        "seed": 0,
        "game": "crafter",
        "envs": envs,
        "checkpointOut": str(tmp / f"{name}.pt"),
        "outputDir": str(tmp / name),
        "terminationMessagePath": str(tmp / f"{name}.term"),
        **fields,
    }
