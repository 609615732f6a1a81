"""Reading untrusted YAML safely: one document, bounded size and depth, no aliases, no duplicate keys.

PyYAML's ``safe_load`` builds no objects but still expands aliases (a few hundred bytes can grow into gigabytes),
keeps the last of two equal keys without a word, and reads a second document only to fail late. Here every
such file is refused before it becomes data, with the key path of the problem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_BYTES = 1024 * 1024  # Kubernetes stores an object of at most ~1.5 MiB; a run.yaml is a few KiB
MAX_DEPTH = 32


class UnsafeYAMLError(ValueError):
    """A YAML file refused before parsing finished; ``path`` is the dotted key path where it was found."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


class _Loader(yaml.SafeLoader):
    """A SafeLoader that refuses aliases and nesting deeper than MAX_DEPTH while composing."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._path: list[str] = []

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if isinstance(parent, MappingNode) and isinstance(index, ScalarNode):
            self._path.append(f".{index.value}")
        elif isinstance(parent, SequenceNode):
            self._path.append(f"[{index}]")
        else:
            self._path.append("")
        try:
            where = "".join(self._path).lstrip(".")
            if self.check_event(AliasEvent):
                mark = self.peek_event().start_mark
                raise UnsafeYAMLError(
                    f"YAML aliases (*name) are not allowed (line {mark.line + 1}); write the value out", where
                )
            if len(self._path) > MAX_DEPTH:
                raise UnsafeYAMLError(f"nested deeper than {MAX_DEPTH} levels", where)
            return super().compose_node(parent, index)
        finally:
            self._path.pop()


def _check_keys(node: Node, path: str) -> None:
    """Refuse a mapping that has the same key twice, naming the key's path."""
    if isinstance(node, MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            name = str(key.value)
            where = f"{path}.{name}" if path else name
            if name in seen:
                raise UnsafeYAMLError(
                    f"duplicate key (lines {seen[name] + 1} and {key.start_mark.line + 1}); keep one", where
                )
            seen[name] = key.start_mark.line
            _check_keys(value, where)
    elif isinstance(node, SequenceNode):
        for i, item in enumerate(node.value):
            _check_keys(item, f"{path}[{i}]")


def loads(text: str) -> Any:
    """The single document of ``text`` as plain data (None when empty)."""
    if len(text.encode()) > MAX_BYTES:
        raise UnsafeYAMLError(f"larger than {MAX_BYTES // 1024} KiB")
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_keys(node, "")
        return loader.construct_document(node)
    except yaml.composer.ComposerError as exc:
        if "expected a single document" in str(exc):
            raise UnsafeYAMLError("holds more than one YAML document (---); put one run in a file") from None
        raise
    finally:
        loader.dispose()


def load(path: Path) -> Any:
    """Read ``path`` (refused over MAX_BYTES before reading it) and return its single document."""
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise UnsafeYAMLError(f"{size} bytes is larger than the {MAX_BYTES // 1024} KiB a run.yaml may have")
    with path.open("rb") as f:
        data = f.read(MAX_BYTES + 1)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnsafeYAMLError(f"not UTF-8 text (byte {exc.start})") from None
    return loads(text)
