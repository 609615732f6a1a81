"""Build the designer a run asks for."""

from __future__ import annotations

from ..llm.client import LLMClient, LLMSettings, ProgressCallback
from ..llm.records import RecordStore
from ..spec import EnvGenRunSpec
from .base import Designer
from .baselines import AdversarialDesigner, EasyToHardDesigner, FixedDesigner, NoDesigner
from .constrained import ConstrainedLLMDesigner
from .heuristic import HeuristicDesigner
from .learning_progress import LearningProgressDesigner
from .llm import LLMDesigner


def make_designer(
    spec: EnvGenRunSpec,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    records: RecordStore | None = None,
    on_progress: ProgressCallback | None = None,
) -> Designer:
    """The designer of ``spec.designer.type``; ``base_url`` overrides ``spec.llm.baseURL``.

    Only ``llm`` and ``fixed`` need an endpoint; ``api_key`` is already resolved by the caller; ``on_progress``
    sees each LLM answer as it streams in.
    """
    kind = spec.designer.type
    if kind in ("llm", "fixed"):
        settings = LLMSettings.from_spec(spec.llm, base_url=base_url, api_key=api_key)
        client = LLMClient(settings, records=records, on_progress=on_progress)
        llm: Designer = (
            ConstrainedLLMDesigner(client)
            if spec.designer.mode == "constrained"
            else LLMDesigner(client, critic=spec.designer.critic)
        )
        return llm if kind == "llm" else FixedDesigner(llm)
    if kind == "easy-to-hard":
        return EasyToHardDesigner(spec.cycles)
    if kind == "adversarial":
        return AdversarialDesigner()
    if kind == "heuristic":
        return HeuristicDesigner()
    if kind == "learning-progress":
        return LearningProgressDesigner()
    return NoDesigner()
