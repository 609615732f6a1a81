"""Environment designers: the LLM (EnvGen, free-form or constrained), the paper's curriculum baselines, a heuristic,
a learning-progress curriculum, and none."""

from .base import Designer, DesignError, DesignUnavailable
from .baselines import AdversarialDesigner, EasyToHardDesigner, FixedDesigner, NoDesigner
from .constrained import ConstrainedLLMDesigner
from .critic import critique
from .factory import make_designer
from .heuristic import HeuristicDesigner
from .learning_progress import LearningProgressDesigner
from .llm import LLMDesigner

__all__ = [
    "AdversarialDesigner",
    "ConstrainedLLMDesigner",
    "DesignError",
    "DesignUnavailable",
    "Designer",
    "EasyToHardDesigner",
    "FixedDesigner",
    "HeuristicDesigner",
    "LLMDesigner",
    "LearningProgressDesigner",
    "NoDesigner",
    "critique",
    "make_designer",
]
