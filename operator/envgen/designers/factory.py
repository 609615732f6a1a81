"""Build the designer a run asks for: whether it uses an LLM, which endpoint, which API key, and the session.

Only ``llm`` and ``fixed`` use an LLM. The endpoint is ``spec.llm.baseURL``, else a default: locally the caller's
``base_url`` or the embedded model, in the cluster the operator's ``ENVGEN_DEFAULT_LLM_BASE_URL``. The API key
comes from the environment variable ``spec.llm.apiKey.env`` names (local mode) or from the Secret
``spec.llm.apiKey.secretKeyRef`` names (cluster). A :class:`DesignerPlan` holds these decisions;
:func:`open_session` builds its designer, and the :class:`DesignerSession` it returns holds the LLM client (and the
embedded model) until ``close()``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..contracts import CycleDesign, DesignRequest
from ..llm.client import LLMClient, LLMSettings
from ..llm.progress import ProgressCallback
from ..llm.records import RecordStore
from ..spec import DesignerSpec, DesignerType, EnvGenRunSpec, LLMSpec, SpecError
from .base import Designer, DesignError
from .baselines import AdversarialDesigner, EasyToHardDesigner, FixedDesigner, NoDesigner
from .constrained import ConstrainedLLMDesigner
from .heuristic import HeuristicDesigner
from .learning_progress import LearningProgressDesigner
from .llm import LLMDesigner

LLM_DESIGNERS: frozenset[DesignerType] = frozenset({"llm", "fixed"})
BASE_URL_ENV = "ENVGEN_DEFAULT_LLM_BASE_URL"
SecretReader = Callable[[str, str], str | None]  # (Secret name, key) -> value, None when missing


class SetupError(DesignError):
    """The run's designer cannot be built; ``reason`` says why (``NoEndpoint``, ``SecretUnavailable``)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Embedded:
    """The embedded model as the endpoint: the machine's shared server (one per user, ``SharedEmbeddedLLM``),
    joined or started when the session opens; its keeper's record, locks and log live in ``state_dir``."""

    state_dir: Path


@dataclass(frozen=True)
class LLMPlan:
    """The LLM a designer calls: its settings, the endpoint, and the API key (held in memory only)."""

    spec: LLMSpec
    endpoint: str | Embedded
    api_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class DesignerPlan:
    """Everything a run's designer is built from, resolved: equal plans build the same designer."""

    designer: DesignerSpec
    cycles: int
    llm: LLMPlan | None = None  # None: the designer uses no LLM

    @property
    def embedded(self) -> bool:
        """Opening the session starts the embedded model."""
        return self.llm is not None and isinstance(self.llm.endpoint, Embedded)


def uses_llm(designer: DesignerSpec) -> bool:
    """Whether this designer calls an LLM."""
    return designer.type in LLM_DESIGNERS


def local_plan(spec: EnvGenRunSpec, *, embedded: Path | None = None, base_url: str | None = None) -> DesignerPlan:
    """The plan on this machine: ``spec.llm.baseURL``, else ``base_url``, else the embedded model (its state in
    ``embedded``); the key from the environment. Raises :class:`~envgen.spec.SpecError` for a key it cannot get."""
    if not uses_llm(spec.designer):
        return DesignerPlan(spec.designer, spec.cycles)
    url = spec.llm.base_url or base_url
    endpoint: str | Embedded
    if url:
        endpoint = url
    elif embedded is not None:
        endpoint = Embedded(embedded)
    else:
        raise SetupError("NoEndpoint", "no LLM endpoint: set spec.llm.baseURL or start the embedded model")
    return DesignerPlan(spec.designer, spec.cycles, LLMPlan(spec.llm, endpoint, _env_key(spec.llm)))


def cluster_plan(spec: EnvGenRunSpec, secrets: SecretReader, namespace: str) -> DesignerPlan:
    """The plan in the operator: ``spec.llm.baseURL``, else the operator's ``ENVGEN_DEFAULT_LLM_BASE_URL``; the
    key from the Secret in ``namespace``. Raises :class:`SetupError` when either is missing."""
    if not uses_llm(spec.designer):
        return DesignerPlan(spec.designer, spec.cycles)
    url = spec.llm.base_url or os.environ.get(BASE_URL_ENV)
    if not url:
        raise SetupError("NoEndpoint", f"no LLM endpoint: set spec.llm.baseURL or the operator's {BASE_URL_ENV}")
    return DesignerPlan(spec.designer, spec.cycles, LLMPlan(spec.llm, url, _secret_key(spec.llm, secrets, namespace)))


def _env_key(llm: LLMSpec) -> str | None:
    source = llm.api_key
    if source is None or (source.env is None and source.secret_key_ref is None):
        return None
    if source.env is None:
        raise SpecError(
            "spec.llm.apiKey.secretKeyRef works only in a cluster; locally set spec.llm.apiKey.env "
            "to the name of an environment variable holding the key"
        )
    value = os.environ.get(source.env)
    if not value:
        raise SpecError(f"spec.llm.apiKey.env names {source.env}, but that environment variable is not set")
    return value


def _secret_key(llm: LLMSpec, secrets: SecretReader, namespace: str) -> str | None:
    source = llm.api_key
    if source is None or source.secret_key_ref is None:
        return None
    ref = source.secret_key_ref
    key = secrets(ref.name, ref.key)
    if key is None:
        raise SetupError("SecretUnavailable", f"Secret {ref.name!r} has no key {ref.key!r} in namespace {namespace}")
    return key


class DesignerSession:
    """A run's designer with what it holds open: the designer's LLM client (one per session, so the
    response-format rung it found is kept; ``client`` until closed) and the embedded model. ``close()`` closes
    the designer and stops the embedded model."""

    def __init__(self, plan: DesignerPlan, designer: Designer, client: LLMClient | None, server: Any) -> None:
        self.plan = plan
        self.designer = designer
        self.client = client
        self.name: DesignerType = designer.name
        self._server = server
        self._closed = False

    def design(self, request: DesignRequest) -> CycleDesign:
        """One cycle's design by the session's designer."""
        return self.designer.design(request)

    def close(self) -> None:
        """Close the designer (and so its LLM client) and stop the embedded model (idempotent)."""
        try:
            if not self._closed:
                self._closed = True
                self.client = None
                self.designer.close()
        finally:
            server, self._server = self._server, None
            if server is not None:
                server.stop()


def open_session(
    plan: DesignerPlan, *, records: RecordStore | None = None, on_progress: ProgressCallback | None = None
) -> DesignerSession:
    """Build the plan's designer (starting the embedded model when it is the endpoint); ``records`` replay and
    record LLM answers, ``on_progress`` sees each answer as it streams in."""
    llm = plan.llm
    if llm is None:
        return DesignerSession(plan, _baseline(plan), None, None)
    server: Any = None
    url = llm.endpoint
    constrained = plan.designer.mode == "constrained" or (plan.designer.mode == "auto" and isinstance(url, Embedded))
    if isinstance(url, Embedded):
        from ..llm.shared import SharedEmbeddedLLM

        server = SharedEmbeddedLLM(url.state_dir).start()
        url = server.base_url
    try:
        settings = LLMSettings.from_spec(llm.spec, base_url=url, api_key=llm.api_key)
        client = LLMClient(settings, records=records, on_progress=on_progress)
    except BaseException:
        if server is not None:
            server.stop()
        raise
    designer: Designer = (
        ConstrainedLLMDesigner(client) if constrained else LLMDesigner(client, critic=plan.designer.critic)
    )
    return DesignerSession(plan, designer if plan.designer.type == "llm" else FixedDesigner(designer), client, server)


def _baseline(plan: DesignerPlan) -> Designer:
    kind = plan.designer.type
    if kind == "easy-to-hard":
        return EasyToHardDesigner(plan.cycles)
    if kind == "adversarial":
        return AdversarialDesigner()
    if kind == "heuristic":
        return HeuristicDesigner()
    if kind == "learning-progress":
        return LearningProgressDesigner()
    return NoDesigner()


def make_designer(
    spec: EnvGenRunSpec,
    *,
    base_url: str | None = None,
    records: RecordStore | None = None,
    on_progress: ProgressCallback | None = None,
) -> Designer:
    """The designer of ``spec`` on its own (``base_url``: the endpoint when ``spec.llm.baseURL`` is unset); its
    ``close()`` closes its LLM client. Runs hold a :class:`DesignerSession` instead."""
    return open_session(local_plan(spec, base_url=base_url), records=records, on_progress=on_progress).designer
