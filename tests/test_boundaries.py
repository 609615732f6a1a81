"""Architecture boundaries: the operator imports no training stack, the engine no I/O libraries."""

from __future__ import annotations

import subprocess
import sys

BLOCKER = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {blocked!r}:
            raise ImportError('boundary violated: ' + name)
sys.meta_path.insert(0, Block())
{imports}
"""


def imports_without(blocked: set[str], modules: list[str]) -> subprocess.CompletedProcess[str]:
    code = BLOCKER.format(blocked=blocked, imports="\n".join(f"import {m}" for m in modules))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_operator_imports_no_training_stack() -> None:
    result = imports_without(
        {"torch", "crafter", "procgen", "numba", "gym", "gym3", "numpy", "tqdm", "matplotlib", "envgen_trainer"},
        ["envgen.cli", "envgen.k8s.operator", "envgen.driver", "envgen.designers"],
    )
    assert result.returncode == 0, result.stderr


def test_engine_imports_no_io_libraries() -> None:
    result = imports_without(
        {"kopf", "kubernetes", "openai", "httpx", "aiohttp", "subprocess", "envgen_trainer"},
        ["envgen.engine"],
    )
    assert result.returncode == 0, result.stderr


def test_driver_imports_no_llm_stack() -> None:
    """The driver needs the designer protocol only (in contracts), not the designers package's LLM client."""
    result = imports_without(
        {"openai", "httpx", "httpx2", "kopf", "kubernetes", "subprocess", "envgen_trainer"},
        ["envgen.driver"],
    )
    assert result.returncode == 0, result.stderr
