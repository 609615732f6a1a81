"""The run's designer inside the operator: one session per run, kept across reconciles, metered.

The session (its LLM client, and so the response-format rung it found) lives as long as the run's plan is
unchanged: a new llm or designer block, endpoint or API key opens a new one. Sessions are an optimisation only:
a restarted operator opens them again. The key is read from the run's Secret per design, held in memory only,
never logged and never written to status. :class:`RunDesigner` records the outcome of the last LLM design (for
the ``LLMAvailable`` condition) and feeds the LLM metrics.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from ..contracts import CycleDesign, DesignRequest
from ..designers import DesignError, DesignUnavailable
from ..designers.factory import DesignerPlan, DesignerSession, SetupError, cluster_plan, open_session, uses_llm
from ..llm.progress import ProgressLog
from ..spec import DesignerType, EnvGenRun
from . import metrics
from .kube import Kube
from .status import LLMOutcome

log = logging.getLogger(__name__)


@dataclass
class _Open:
    uid: str
    session: DesignerSession
    progress: ProgressLog


class DesignerSessions:
    """The open designer session of each run, by namespace and name (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[tuple[str, str], _Open] = {}

    def get(self, namespace: str, name: str, uid: str, plan: DesignerPlan) -> tuple[DesignerSession, ProgressLog]:
        """The run's session for ``plan``: the open one when it was built from the same plan, else a new one."""
        with self._lock:
            held = self._open.get((namespace, name))
            if held is not None and held.uid == uid and held.session.plan == plan:
                return held.session, held.progress
            self._open.pop((namespace, name), None)
        if held is not None:
            held.session.close()
        progress = ProgressLog(log, f"run {namespace}/{name}")
        session = open_session(plan, on_progress=progress)
        with self._lock:
            self._open[(namespace, name)] = _Open(uid, session, progress)
        return session, progress

    def close(self, namespace: str, name: str) -> None:
        """Close the run's session, if one is open."""
        with self._lock:
            held = self._open.pop((namespace, name), None)
        if held is not None:
            held.session.close()

    def close_all(self) -> None:
        """Close every open session (operator shutdown)."""
        with self._lock:
            held, self._open = list(self._open.values()), {}
        for h in held:
            h.session.close()

    def held(self, namespace: str, name: str) -> DesignerSession | None:
        """The run's open session, if any."""
        with self._lock:
            held = self._open.get((namespace, name))
        return held.session if held is not None else None


class RunDesigner:
    """A ``Designer`` for one reconcile of one run, designing with the run's session."""

    def __init__(self, run: EnvGenRun, kube: Kube, sessions: DesignerSessions, uid: str) -> None:
        self.run = run
        self.kube = kube
        self.sessions = sessions
        self.uid = uid
        self.name: DesignerType = run.spec.designer.type
        self.uses_llm = uses_llm(run.spec.designer)
        self.outcome: LLMOutcome | None = None

    def design(self, request: DesignRequest) -> CycleDesign:
        """Design one cycle; failures are DesignErrors (the engine counts them towards maxFailedTasks)."""
        ns = self.kube.ns
        try:
            plan = cluster_plan(self.run.spec, self.kube.secret_value, ns)
        except SetupError as exc:
            self.outcome = LLMOutcome(False, exc.reason, str(exc))
            raise
        session, progress = self.sessions.get(ns, self.run.metadata.name, self.uid, plan)
        progress.relabel(f"run {ns}/{self.run.metadata.name} cycle {request.cycle}")
        started = time.monotonic()
        try:
            design = session.design(request)
        except DesignError as exc:
            if self.uses_llm:
                metrics.LLM_DURATION.labels(ns).observe(time.monotonic() - started)
                calls = exc.design.usage.calls if exc.design else 0
                metrics.LLM_REQUESTS.labels(ns, "error").inc(max(calls, 1))
                why = "Unavailable" if isinstance(exc, DesignUnavailable) else "DesignFailed"
                self.outcome = LLMOutcome(False, why, str(exc))
            raise
        if self.uses_llm:
            metrics.LLM_DURATION.labels(ns).observe(time.monotonic() - started)
            metrics.LLM_REQUESTS.labels(ns, "success").inc(design.usage.calls)
            metrics.LLM_TOKENS.labels(ns, "prompt").inc(design.usage.prompt_tokens)
            metrics.LLM_TOKENS.labels(ns, "completion").inc(design.usage.completion_tokens)
            message = f"cycle {request.cycle} designed with {design.usage.calls} call(s)"
            self.outcome = LLMOutcome(True, "Responded", message)
        return design

    def close(self) -> None:
        """Nothing to release: the run's session outlives a reconcile (``DesignerSessions`` closes it)."""
