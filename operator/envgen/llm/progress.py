"""Progress of a streamed answer: what the client reports while tokens arrive, and a logger that shows it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

PROGRESS_INTERVAL_SECONDS = 0.5


@dataclass(frozen=True)
class StreamProgress:
    """How far the answer being streamed has come."""

    tokens: int  # completion tokens received so far
    seconds: float  # since the request was sent
    decode_seconds: float  # since the first token arrived (0 before it)
    done: bool = False

    @property
    def tokens_per_second(self) -> float:
        """Generation speed since the first token."""
        return self.tokens / self.decode_seconds if self.decode_seconds > 0 else 0.0

    def describe(self) -> str:
        """``812 tokens, 41.3 tokens/s`` (or ``reading the prompt, 12 s`` before the first token)."""
        if self.tokens == 0:
            return f"reading the prompt, {self.seconds:.0f} s"
        return f"{self.tokens} tokens, {self.tokens_per_second:.1f} tokens/s"


ProgressCallback = Callable[[StreamProgress], None]


class StreamTracker:
    """Counts the tokens of one streamed answer and calls ``on_progress`` about twice a second and at the end."""

    def __init__(self, on_progress: ProgressCallback | None, started: float) -> None:
        self.on_progress = on_progress
        self.started = self._reported = started  # time.monotonic() when the request was sent
        self.first: float | None = None
        self.tokens = 0

    def chunk(self, has_text: bool) -> None:
        """One streamed chunk arrived (``has_text``: it carried answer text, counted as one token)."""
        now = time.monotonic()
        if has_text:
            self.tokens += 1
            self.first = self.first or now
        if self.on_progress is not None and now - self._reported >= PROGRESS_INTERVAL_SECONDS:
            self._reported = now
            self.on_progress(self._progress(self.tokens, now))

    def done(self, tokens: int) -> None:
        """The answer is complete with ``tokens`` completion tokens (the server's count when it sent one)."""
        if self.on_progress is not None:
            self.on_progress(self._progress(tokens, time.monotonic(), done=True))

    def _progress(self, tokens: int, now: float, done: bool = False) -> StreamProgress:
        decode = now - self.first if self.first is not None else 0.0
        return StreamProgress(
            tokens=tokens, seconds=round(now - self.started, 3), decode_seconds=round(decode, 3), done=done
        )


class ProgressLog:
    """A :data:`ProgressCallback` that logs one line per ``every_seconds`` while streaming, and one at the end."""

    def __init__(self, logger: logging.Logger, label: str, every_seconds: float = 15.0) -> None:
        self.logger, self.label, self.every_seconds = logger, label, every_seconds
        self._next = every_seconds

    def relabel(self, label: str) -> None:
        """Log under ``label`` from now on, starting the interval afresh."""
        self.label, self._next = label, self.every_seconds

    def __call__(self, progress: StreamProgress) -> None:
        if progress.done:
            self.logger.info("%s: LLM answer of %s in %.1f s", self.label, progress.describe(), progress.seconds)
            self._next = self.every_seconds
        elif progress.seconds >= self._next:
            self.logger.info("%s: LLM answering, %s", self.label, progress.describe())
            self._next = progress.seconds + self.every_seconds
