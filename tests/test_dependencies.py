"""Every distribution the code imports is declared in pyproject.toml (core, trainer or dev)."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("operator", "trainer_image", "tests", "bench", "scripts")
# This project's packages, the repository's script folders (bench) and the test packages (tests/spec, ...).
OWN = {"envgen", "envgen_trainer", "bench"} | {p.parent.name for p in (ROOT / "tests").glob("*/__init__.py")}


def imported_modules() -> set[str]:
    found: set[str] = set()
    for root in SOURCES:
        for path in (ROOT / root).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    found |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - OWN


def declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"]) + [r for group in project["optional-dependencies"].values() for r in group]
    return {normalize(re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0]) for r in reqs}


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_imported_distribution_is_declared() -> None:
    distributions = importlib.metadata.packages_distributions()
    wanted = declared()
    missing = {
        module: distributions.get(module, [])
        for module in imported_modules()
        if not {normalize(d) for d in distributions.get(module, [])} & wanted
    }
    assert missing == {}, f"imported but not declared in pyproject.toml: {missing}"
