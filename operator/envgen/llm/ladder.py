"""The structured-output ladder: the ``response_format`` forms tried in order until the endpoint accepts one.

``json_schema`` -> ``json_object`` + ``schema`` (llama-cpp-python style) -> plain ``json_object`` -> none (the
caller extracts the JSON from the text). A rejected form (see :func:`envgen.llm.errors.classify`) moves one rung
down for good: the working rung is kept for the client's lifetime.
"""

from __future__ import annotations

from typing import Any, Literal

Rung = Literal["json_schema", "json_object+schema", "json_object", "none"]
RUNGS: tuple[Rung, ...] = ("json_schema", "json_object+schema", "json_object", "none")


def response_format(rung: Rung, schema: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The ``response_format`` body of a rung."""
    if rung == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}
    if rung == "json_object+schema":
        return {"type": "json_object", "schema": schema}
    if rung == "json_object":
        return {"type": "json_object"}
    return None


class Ladder:
    """Where on the ladder the next request starts; :meth:`step_down` after a rejection."""

    def __init__(self) -> None:
        self._index = 0

    @property
    def rung(self) -> Rung:
        """The rung the next request uses."""
        return RUNGS[self._index]

    @property
    def can_step_down(self) -> bool:
        """Whether a lower rung is left."""
        return self._index < len(RUNGS) - 1

    def step_down(self, why: str) -> str:
        """Move one rung down because of ``why``; returns the note saying so."""
        rejected = self.rung
        self._index += 1
        return f"endpoint rejected response_format {rejected} ({why}); using {self.rung} from now on"
