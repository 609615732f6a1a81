"""Environment designers: the LLM (EnvGen), the paper's curriculum baselines, a heuristic, and none."""

from .base import Designer, DesignError, DesignUnavailable
from .baselines import AdversarialDesigner, EasyToHardDesigner, FixedDesigner, NoDesigner
from .critic import critique
from .factory import make_designer
from .heuristic import HeuristicDesigner
from .llm import LLMDesigner

__all__ = [
    "AdversarialDesigner",
    "DesignError",
    "DesignUnavailable",
    "Designer",
    "EasyToHardDesigner",
    "FixedDesigner",
    "HeuristicDesigner",
    "LLMDesigner",
    "NoDesigner",
    "critique",
    "make_designer",
]
