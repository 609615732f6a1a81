"""``envgen-train --task task.json``: run one training task and report through files and the exit code.

Exit codes (``envgen.contracts``): 0 ok, 2 invalid task, 3 missing or corrupt checkpoint, 1 anything else.
On failure: a one-line reason on stderr and the compact metrics JSON with ``error`` and ``exitCode`` in the
termination-message file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import ValidationError

from envgen.contracts import (
    EXIT_CHECKPOINT_ERROR,
    EXIT_INVALID_TASK,
    EXIT_OK,
    EXIT_RUNTIME_ERROR,
    TrainingMetrics,
    TrainingTask,
)
from envgen.models import describe_validation_error

from .checkpoint import CheckpointError
from .runner import InvalidTask, Stopped, run_task

DEFAULT_TERMINATION_LOG = "/dev/termination-log"


class TaskError(Exception):
    """A failure with its exit code and, when the task file named one, its termination-message path."""

    def __init__(self, message: str, code: int, termination: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.termination = termination


def load_task(path: str) -> TrainingTask:
    """Read and validate a task file; raise TaskError(EXIT_INVALID_TASK) with a one-line reason."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise TaskError(f"cannot read task file {path}: {exc.strerror}", EXIT_INVALID_TASK) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TaskError(f"task file {path} is not valid JSON: {exc}", EXIT_INVALID_TASK) from None
    if not isinstance(doc, dict):
        raise TaskError(f"task file {path} must hold a JSON object", EXIT_INVALID_TASK)
    try:
        return TrainingTask.model_validate(doc)
    except ValidationError as exc:
        reason = "; ".join(describe_validation_error(exc).splitlines())
        named = doc.get("terminationMessagePath")
        raise TaskError(
            f"invalid task: {reason}", EXIT_INVALID_TASK, named if isinstance(named, str) else None
        ) from None


def _terminate(path: str, metrics: TrainingMetrics) -> None:
    try:
        Path(path).write_text(metrics.compact())
    except OSError as exc:
        print(f"envgen-train: cannot write termination message to {path}: {exc.strerror}", file=sys.stderr)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (also used by ``python -m envgen_trainer``)."""
    parser = argparse.ArgumentParser(prog="envgen-train", description="Run one EnvGen training task.")
    parser.add_argument("--task", required=True, help="TrainingTask JSON file")
    parser.add_argument("--termination-log", help="termination-message file (overrides the task's)")
    args = parser.parse_args(argv)
    termination = args.termination_log or DEFAULT_TERMINATION_LOG
    base = TrainingMetrics()
    try:
        task = load_task(args.task)
        termination = args.termination_log or task.termination_message_path
        base = TrainingMetrics.for_task(task)
        metrics = run_task(task)
    except TaskError as exc:
        code, reason = exc.code, str(exc)
        termination = args.termination_log or exc.termination or termination
    except InvalidTask as exc:
        code, reason = EXIT_INVALID_TASK, f"invalid task: {exc}"
    except CheckpointError as exc:
        code, reason = EXIT_CHECKPOINT_ERROR, str(exc)
    except KeyboardInterrupt:
        code, reason = EXIT_RUNTIME_ERROR, "interrupted"
    except Stopped as exc:
        code, reason = EXIT_RUNTIME_ERROR, str(exc)
    except Exception as exc:
        code, reason = EXIT_RUNTIME_ERROR, f"{type(exc).__name__}: {exc}"
    else:
        _terminate(termination, metrics)
        return EXIT_OK
    reason = _one_line(reason)
    print(f"envgen-train: {reason}", file=sys.stderr)
    _terminate(termination, base.model_copy(update={"error": reason, "exit_code": code}))
    return code
