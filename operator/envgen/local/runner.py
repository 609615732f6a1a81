"""``envgen run run.yaml``: drive a whole run on this machine and resume it after any interruption."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import yaml

from .. import atomic
from ..contracts import CycleDesign, DesignRequest
from ..designers.factory import DesignerSession, local_plan, open_session
from ..driver import step
from ..engine import Observed, WaitForLLM
from ..spec import MUTABLE_FIELDS, EnvGenRun, EnvGenRunSpec, SpecError
from .backend import LocalBackend
from .progress import Progress
from .report import summary_table, write_report
from .rundir import RunDir, read_json, write_json

EXIT_SUCCEEDED, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


def prepare_run_dir(run: EnvGenRun, root: Path) -> RunDir:
    """Create the run directory, or check that an existing one belongs to the same run."""
    rundir = RunDir(root)
    if rundir.spec.exists():
        previous = EnvGenRunSpec.model_validate((yaml.safe_load(rundir.spec.read_text()) or {}).get("spec", {}))
        changed = sorted(
            field
            for field in EnvGenRunSpec.model_fields
            if field not in MUTABLE_FIELDS and getattr(previous, field) != getattr(run.spec, field)
        )
        if changed:
            names = ", ".join(EnvGenRunSpec.model_fields[f].alias or f for f in changed)
            raise SpecError(
                f"{root} holds a run started with a different spec (changed: {names}). "
                "Use another --run-dir, or restore the original values to resume."
            )
    root.mkdir(parents=True, exist_ok=True)
    atomic.write_text(rundir.spec, yaml.safe_dump(run.dump(), sort_keys=False))
    if read_json(rundir.info) is None:
        write_json(rundir.info, {"name": run.name, "startedAt": time.time()})
    return rundir


class LocalDesigner:
    """The run's designer session, opened lazily: the embedded LLM only runs when a design is actually needed."""

    def __init__(self, run: EnvGenRun, rundir: RunDir, progress: Progress) -> None:
        self.run, self.rundir, self.progress = run, rundir, progress
        self.name = run.spec.designer.type
        self._session: DesignerSession | None = None

    def design(self, request: DesignRequest) -> CycleDesign:
        if self._session is None:
            self._session = self._open()
        self.progress.note(f"designing cycle {request.cycle} with the {self.name} designer")
        design = self._session.design(request)
        self.progress.note(_design_line(design))
        return design

    def _open(self) -> DesignerSession:
        from ..llm.records import DirectoryRecordStore
        from ..llm.shared import shared_dir

        plan = local_plan(self.run.spec, embedded=shared_dir())
        if plan.embedded:
            self.progress.note("starting or joining the embedded LLM (SmolLM2-135M on llama.cpp)")
        return open_session(plan, records=DirectoryRecordStore(self.rundir.llm_records), on_progress=self.progress.llm)

    def close(self) -> None:
        """Close the session (its LLM client and the embedded model)."""
        if self._session is not None:
            self._session.close()
            self._session = None


def _design_line(design: CycleDesign) -> str:
    envs = ", ".join(e.name for e in design.envs) or "the real game only"
    usage = design.usage
    llm = f"; LLM {usage.calls} call(s), {usage.prompt_tokens}+{usage.completion_tokens} tokens" if usage.calls else ""
    flagged = f"; {len(design.findings)} finding(s)" if design.findings else ""
    return f"cycle {design.cycle} envs: {envs}{llm}{flagged}"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _drive(
    run: EnvGenRun, designer: LocalDesigner, backend: LocalBackend, progress: Progress, poll_seconds: float
) -> Observed:
    """Step the engine until the run ends (or is suspended); returns what exists at that point."""
    while True:
        result = step(run, designer, backend)
        progress.update(result.summary, backend.processes)
        if result.observed.finished:
            return result.observed
        wait = next((a for a in result.actions if isinstance(a, WaitForLLM)), None)
        if wait is not None:
            at = time.strftime("%H:%M:%S", time.localtime(wait.retry_at))
            progress.note(f"LLM unavailable: {wait.reason}; retrying cycle {wait.cycle} at {at}")
            while time.time() < wait.retry_at:
                backend.poll()
                progress.update(None, backend.processes)
                time.sleep(min(poll_seconds, max(0.0, wait.retry_at - time.time())))
            continue
        if not result.actions and not backend.processes:
            if run.spec.suspend:
                progress.note("spec.suspend is true: no new tasks; set it to false and re-run to continue")
                return result.observed
            raise RuntimeError("the engine asked for nothing while no task is running")
        while backend.processes and not backend.poll():
            progress.update(None, backend.processes)
            time.sleep(poll_seconds)


def run_local(
    run: EnvGenRun,
    root: Path,
    *,
    quiet: bool = False,
    poll_seconds: float = 0.5,
    trainer_command: list[str] | None = None,
    retry: bool = False,
) -> int:
    """Run (or resume) a run to its end; ``retry`` continues a Failed run. Returns the process exit code."""
    rundir = prepare_run_dir(run, root)
    backend = LocalBackend(rundir, trainer_command, parallel_tasks=run.spec.seeds)
    resumed = backend.discard_interrupted()
    progress = Progress(run, rundir, quiet=quiet)
    ended = read_json(rundir.finished) or {}
    if ended.get("outcome") == "Failed":
        if retry:
            progress.note(f"retrying: {ended.get('reason')} ({ended.get('message')}); finished cycles are kept")
            backend.forgive(backend.observe())
        else:
            reason = ended.get("reason")
            print(f"this run failed ({reason}); add --retry to continue it from its last good state")
    if resumed:
        inside = [name for name in resumed if backend.resumable(name)]
        restarted = [name for name in resumed if name not in inside]
        if inside:
            progress.note(f"resuming: continuing interrupted task(s) {', '.join(inside)} from their last checkpoint")
        if restarted:
            progress.note(f"resuming: restarting interrupted task(s) {', '.join(restarted)}")
    designer = LocalDesigner(run, rundir, progress)
    previous = signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops as cleanly as Ctrl-C
    try:
        observed = _drive(run, designer, backend, progress, poll_seconds)
    except KeyboardInterrupt:
        observed = None
    finally:
        # a second Ctrl-C or SIGTERM must not cut the clean-up short
        sigint = signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        designer.close()
        backend.stop_all()
        progress.close()
        signal.signal(signal.SIGINT, sigint)
        signal.signal(signal.SIGTERM, previous)
    if observed is None:
        print(f"\ninterrupted: re-run the same command to resume from {root}")
        return EXIT_INTERRUPTED
    if not observed.finished:
        return EXIT_SUCCEEDED  # suspended
    outcome = read_json(rundir.finished) or {}
    files = write_report(run, observed, rundir.report, outcome)
    print(f"\n{run.name}: {outcome.get('outcome')} ({outcome.get('reason')}) - {outcome.get('message')}\n")
    print(summary_table(run, observed))
    print("\nreport: " + ", ".join(str(f) for f in files))
    return EXIT_SUCCEEDED if outcome.get("outcome") == "Succeeded" else EXIT_FAILED
