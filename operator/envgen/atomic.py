"""Atomic file writes: readers see the old content or the new, never a torn file, even after a kill."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[IO[bytes]]:
    """A binary file to write ``path``'s new content into; it replaces ``path`` only when the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def write_text(path: str | Path, text: str) -> None:
    """Atomically replace a text file."""
    with atomic_file(path) as fh:
        fh.write(text.encode())


def write_json(path: str | Path, doc: Any, indent: int = 2, sort_keys: bool = False) -> None:
    """Atomically replace a JSON file."""
    write_text(path, json.dumps(doc, indent=indent, sort_keys=sort_keys, ensure_ascii=False) + "\n")
