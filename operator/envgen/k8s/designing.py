"""The run's designer inside the operator: made on first use, with the API key from the run's Secret, metered.

It records the outcome of the last LLM design (for the ``LLMAvailable`` condition) and feeds the LLM metrics.
The key is read per design, held in memory only, never logged and never written to status.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import NoReturn

from ..contracts import CycleDesign, DesignRequest
from ..designers import DesignError, DesignUnavailable, make_designer
from ..llm.client import ProgressLog
from ..spec import DesignerType, EnvGenRun
from . import metrics
from .kube import Kube

log = logging.getLogger(__name__)
BASE_URL_ENV = "ENVGEN_DEFAULT_LLM_BASE_URL"
LLM_DESIGNERS: frozenset[str] = frozenset({"llm", "fixed"})


@dataclass(frozen=True)
class LLMOutcome:
    """How the last design request to the LLM went."""

    available: bool
    reason: str
    message: str


class RunDesigner:
    """A ``Designer`` for one reconcile of one run."""

    def __init__(self, run: EnvGenRun, kube: Kube) -> None:
        self.run = run
        self.kube = kube
        self.name: DesignerType = run.spec.designer.type
        self.outcome: LLMOutcome | None = None

    @property
    def uses_llm(self) -> bool:
        return self.name in LLM_DESIGNERS

    def design(self, request: DesignRequest) -> CycleDesign:
        """Design one cycle; failures are DesignErrors (the engine counts them towards maxFailedTasks)."""
        base_url = self.run.spec.llm.base_url or os.environ.get(BASE_URL_ENV)
        if self.uses_llm and not base_url:
            self._failed("NoEndpoint", f"no LLM endpoint: set spec.llm.baseURL or the operator's {BASE_URL_ENV}")
        ns = self.kube.ns
        progress = ProgressLog(log, f"run {ns}/{self.run.metadata.name} cycle {request.cycle}")
        designer = make_designer(self.run.spec, base_url=base_url, api_key=self._api_key(), on_progress=progress)
        started = time.monotonic()
        try:
            design = designer.design(request)
        except DesignError as exc:
            if self.uses_llm:
                metrics.LLM_DURATION.labels(ns).observe(time.monotonic() - started)
                calls = exc.design.usage.calls if exc.design else 0
                metrics.LLM_REQUESTS.labels(ns, "error").inc(max(calls, 1))
                why = "Unavailable" if isinstance(exc, DesignUnavailable) else "DesignFailed"
                self.outcome = LLMOutcome(False, why, str(exc))
            raise
        finally:
            close = getattr(designer, "close", None)
            if callable(close):
                close()
        if self.uses_llm:
            metrics.LLM_DURATION.labels(ns).observe(time.monotonic() - started)
            metrics.LLM_REQUESTS.labels(ns, "success").inc(design.usage.calls)
            metrics.LLM_TOKENS.labels(ns, "prompt").inc(design.usage.prompt_tokens)
            metrics.LLM_TOKENS.labels(ns, "completion").inc(design.usage.completion_tokens)
            message = f"cycle {request.cycle} designed with {design.usage.calls} call(s)"
            self.outcome = LLMOutcome(True, "Responded", message)
        return design

    def _api_key(self) -> str | None:
        source = self.run.spec.llm.api_key
        if source is None or source.secret_key_ref is None:
            return None
        ref = source.secret_key_ref
        key = self.kube.secret_value(ref.name, ref.key)
        if key is None:
            self._failed("SecretUnavailable", f"Secret {ref.name!r} has no key {ref.key!r} in namespace {self.kube.ns}")
        return key

    def _failed(self, reason: str, message: str) -> NoReturn:
        self.outcome = LLMOutcome(False, reason, message)
        raise DesignError(message)
