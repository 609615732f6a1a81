"""The corpus of invalid run.yaml files: each must be refused, naming the field it expects.

Every ``invalid/*.yaml`` starts with ``# expect: FIELD`` (the dotted path the error names; ``(file)`` when the
file as a whole is refused) and ``# refused-by: KIND``:

- ``schema``: the API server must refuse it too: the CRD schema or its CEL rules (422), or for ``metadata``
  cases its own object-metadata validation;
- ``unknown-field``: an unknown field, which the API server refuses under strict field validation
  (``kubectl apply --validate=strict``, the default since 1.27) and otherwise prunes;
- ``file``: only ``envgen`` refuses it (duplicate keys, aliases, several documents, size, wrong apiVersion or
  kind, and ``4.0`` for an integer, which the API server reads as 4).

Cases too large to commit are made by ``generated()`` into a folder. ``manifest()`` reads a schema case as the
object to send to an API server.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

INVALID = Path(__file__).resolve().parent / "invalid"
RefusedBy = Literal["schema", "unknown-field", "file"]
TEN_MB = 10 * 1024 * 1024


@dataclass(frozen=True)
class Case:
    """One invalid file: where it is, the field its error must name (None: the whole file), who refuses it."""

    path: Path
    field: str | None
    refused_by: RefusedBy

    @property
    def name(self) -> str:
        return self.path.stem

    def manifest(self) -> dict[str, Any]:
        """The document as an API client would send it (schema and unknown-field cases only)."""
        assert self.refused_by != "file", f"{self.name} is refused by the loader only"
        doc = yaml.safe_load(self.path.read_text())
        assert isinstance(doc, dict)
        return doc


def _header(path: Path) -> Case:
    head = dict(
        line[2:].split(": ", 1)
        for line in path.read_text().splitlines()[:3]
        if line.startswith(("# expect: ", "# refused-by: "))
    )
    field = head["expect"].strip()
    refused_by = head["refused-by"].strip()
    assert refused_by in ("schema", "unknown-field", "file"), f"{path.name}: refused-by {refused_by}"
    return Case(path, None if field == "(file)" else field, refused_by)  # type: ignore[arg-type]


def committed(folder: Path = INVALID) -> list[Case]:
    """The cases in ``invalid/`` (or another corpus folder of the same format)."""
    return [_header(p) for p in sorted(folder.glob("*.yaml"))]


def generated(folder: Path) -> list[Case]:
    """Cases too big to commit, written into ``folder``: a 10 MB run.yaml (a huge annotation)."""
    folder.mkdir(parents=True, exist_ok=True)
    big = folder / "ten-megabytes.yaml"
    with big.open("w") as f:
        f.write("apiVersion: envgen.dev/v1alpha1\nkind: EnvGenRun\nmetadata:\n  name: big\n  annotations:\n")
        f.write("    note: " + "x" * TEN_MB + "\n")
        f.write("spec: {}\n")
    return [Case(big, None, "file")]


def all_cases(folder: Path) -> list[Case]:
    """Committed and generated cases."""
    return committed() + generated(folder)
