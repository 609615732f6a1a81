"""What an endpoint's failure means: the LLM errors, and the one function that classifies a failed request."""

from __future__ import annotations

import email.utils
import re
import time
from typing import Any, Literal

import openai

_FORMAT_RE = re.compile(r"response_format|json_schema|json_object", re.IGNORECASE)
_STREAM_RE = re.compile(r"\bstream", re.IGNORECASE)
_CONTEXT_RE = re.compile(r"context (length|size|window)|too many tokens|too long|exceeds", re.IGNORECASE)

Failure = Literal["stream-rejected", "format-rejected", "unavailable", "refused", "failed"]
"""``stream-rejected``: ask again without streaming; ``format-rejected``: ask again one rung down the
response-format ladder; ``unavailable``: unreachable or overloaded, worth waiting for (:class:`LLMUnavailable`);
``refused``: the endpoint refused the request itself (no retry helps); ``failed``: no answer after the retries."""


class LLMError(Exception):
    """The endpoint gave no usable answer (after the SDK's retries and the response_format ladder)."""


class LLMUnavailable(LLMError):
    """The endpoint is unreachable or overloaded (connection, timeout, 408/409/429, 5xx): worth waiting for.

    ``retry_after`` is the last answer's ``Retry-After`` in seconds, when it sent one.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def classify(exc: openai.APIError, *, streaming: bool, can_step_down: bool) -> Failure:
    """What a failed request means, given whether it was streamed and whether a lower rung is left.

    A 400/422 (unless it complains about the context length), or a 5xx whose body names ``response_format``,
    rejects the response format; an error naming ``stream`` (and no response format) rejects streaming.
    """
    if isinstance(exc, openai.APIStatusError):
        body = f"{exc.message} {exc.body}"
        status = exc.status_code
        names_format = names_response_format(body)
        if streaming and (status in (400, 422) or status >= 500) and _STREAM_RE.search(body) and not names_format:
            return "stream-rejected"
        rejects_format = status >= 500 and names_format
        if status in (400, 422):
            rejects_format = not _CONTEXT_RE.search(body)
        if can_step_down and rejects_format:
            return "format-rejected"
        return "unavailable" if status in (408, 409, 429) or status >= 500 else "refused"
    if isinstance(exc, openai.APIConnectionError | openai.APITimeoutError):
        return "unavailable"
    return "failed"


def names_response_format(text: str) -> bool:
    """Whether an error body speaks of the response format (a 5xx that does is not worth retrying)."""
    return bool(_FORMAT_RE.search(text))


def describe(exc: openai.APIError) -> str:
    """One line naming the error: ``HTTP 503 (InternalServerError): ...`` or ``APIConnectionError: ...``."""
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code} ({type(exc).__name__}): {str(exc.message)[:300]}"
    return f"{type(exc).__name__}: {str(exc)[:300]}"


def retry_after_seconds(headers: Any) -> float | None:
    """``Retry-After`` (seconds, or an HTTP date) of a response's headers; None when absent or unreadable."""
    value = headers.get("retry-after") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
