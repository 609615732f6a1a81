"""A robust OpenAI-compatible chat client for structured (JSON) answers.

* Built on the ``openai`` SDK: base URL, model, API key, temperature, request timeout, and the SDK's own retries
  (429, 408, 409, 5xx, timeouts and connection errors, honouring ``retry-after``).
* Structured output falls down a ladder when the endpoint rejects a ``response_format``:
  ``json_schema`` -> ``json_object`` + ``schema`` (llama-cpp-python style) -> plain ``json_object`` -> none.
  A 400/422, or a 5xx whose body names ``response_format``/``json_schema``, moves to the next rung at once
  (the 5xx is marked not-retryable, so it burns no retries); the working rung is kept for the client's lifetime.
* Answers are streamed (``stream=True``, same ``response_format``), so a slow server shows progress: an optional
  callback gets a :class:`StreamProgress` (tokens so far, tokens/s) about twice a second and once at the end,
  and the request timeout bounds the silence between tokens, not the whole answer. An endpoint that rejects
  streaming (an error naming ``stream``) or answers a streamed request in one JSON body is asked without
  streaming from then on.
* Every HTTP attempt is logged (rung, status, error class, latency, tokens, record key; never the API key),
  and answers go through an optional :class:`~envgen.llm.records.RecordStore` for record/replay.

Validation of the answer's content belongs to the caller: :meth:`LLMClient.chat` returns the text as sent.
"""

from __future__ import annotations

import email.utils
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import httpx2
import openai
from openai.types.chat import ChatCompletion

from ..contracts import ChatMessage, LLMUsage
from ..models import as_float
from ..spec import LLMSpec
from .records import RecordStore, canonical_request, request_key

Rung = Literal["json_schema", "json_object+schema", "json_object", "none"]
RUNGS: tuple[Rung, ...] = ("json_schema", "json_object+schema", "json_object", "none")
NO_API_KEY = "not-needed"  # OpenAI-compatible local servers accept any key; the SDK insists on one

_FORMAT_RE = re.compile(r"response_format|json_schema|json_object", re.IGNORECASE)
_STREAM_RE = re.compile(r"\bstream", re.IGNORECASE)
PROGRESS_INTERVAL_SECONDS = 0.5
_CONTEXT_RE = re.compile(r"context (length|size|window)|too many tokens|too long|exceeds", re.IGNORECASE)


class LLMError(Exception):
    """The endpoint gave no usable answer (after the SDK's retries and the response_format ladder)."""


class LLMUnavailable(LLMError):
    """The endpoint is unreachable or overloaded (connection, timeout, 408/409/429, 5xx): worth waiting for.

    ``retry_after`` is the last answer's ``Retry-After`` in seconds, when it sent one.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


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


@dataclass(frozen=True)
class LLMSettings:
    """Where and how to call the model. ``api_key`` is held in memory only."""

    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    temperature: float = 0.0
    timeout_seconds: float = 120.0
    max_retries: int = 2
    max_tokens: int = 2048

    @classmethod
    def from_spec(cls, spec: LLMSpec, *, base_url: str, api_key: str | None = None) -> LLMSettings:
        """Settings from the run spec, calling ``base_url`` (the endpoint the designer factory chose)."""
        return cls(
            base_url=base_url,
            model=spec.model,
            api_key=api_key,
            temperature=as_float(spec.temperature),
            timeout_seconds=float(spec.timeout_seconds),
            max_retries=spec.max_retries,
            max_tokens=spec.max_tokens,
        )


@dataclass
class Answer:
    """One answer: the text as the model wrote it and how it was obtained."""

    text: str
    finish_reason: str | None
    rung: Rung
    key: str
    cached: bool
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_seconds: float = 0.0


@dataclass
class CallLog:
    """What a sequence of calls did: one dict per HTTP attempt, usage, and notes (fallbacks)."""

    attempts: list[dict[str, Any]] = field(default_factory=list)
    usage: LLMUsage = field(default_factory=LLMUsage)
    notes: list[str] = field(default_factory=list)


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


def response_format(rung: Rung, schema: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The ``response_format`` body of a rung."""
    if rung == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}
    if rung == "json_object+schema":
        return {"type": "json_object", "schema": schema}
    if rung == "json_object":
        return {"type": "json_object"}
    return None


class _AttemptTransport(httpx2.BaseTransport):
    """Logs every HTTP attempt (the SDK's retries included) and stops retries of response_format errors."""

    def __init__(self, inner: httpx2.BaseTransport) -> None:
        self.inner = inner
        self.attempts: list[dict[str, Any]] = []

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        started = time.monotonic()
        try:
            response = self.inner.handle_request(request)
        except Exception as exc:
            self.attempts.append({"status": None, "error": type(exc).__name__, "latencySeconds": _secs(started)})
            raise
        attempt: dict[str, Any] = {"status": response.status_code, "latencySeconds": _secs(started)}
        if response.status_code >= 400:
            attempt["error"] = f"HTTP {response.status_code}"
        if response.status_code >= 500:
            response.read()
            if _FORMAT_RE.search(response.text):
                response.headers["x-should-retry"] = "false"
        if "retry-after" in response.headers:
            attempt["retryAfter"] = response.headers["retry-after"]
        self.attempts.append(attempt)
        return response

    def close(self) -> None:
        self.inner.close()


def _secs(started: float) -> float:
    return round(time.monotonic() - started, 3)


def _is_format_rejection(exc: openai.APIStatusError) -> bool:
    body = f"{exc.message} {exc.body}"
    if exc.status_code in (400, 422):
        return not _CONTEXT_RE.search(body)
    return exc.status_code >= 500 and bool(_FORMAT_RE.search(body))


def _is_stream_rejection(exc: openai.APIStatusError) -> bool:
    body = f"{exc.message} {exc.body}"
    return (exc.status_code in (400, 422) or exc.status_code >= 500) and bool(
        _STREAM_RE.search(body) and not _FORMAT_RE.search(body)
    )


def _parts(completion: ChatCompletion) -> tuple[str, str | None, int, int]:
    """Text, finish reason, prompt and completion tokens of a whole (non-streamed) answer."""
    choice = completion.choices[0] if completion.choices else None
    usage = completion.usage
    return (
        (choice.message.content or "") if choice is not None else "",
        choice.finish_reason if choice is not None else None,
        usage.prompt_tokens if usage else 0,
        usage.completion_tokens if usage else 0,
    )


def _progress(tokens: int, started: float, first: float | None, now: float, done: bool = False) -> StreamProgress:
    decode = now - first if first is not None else 0.0
    return StreamProgress(tokens=tokens, seconds=round(now - started, 3), decode_seconds=round(decode, 3), done=done)


def _describe(exc: openai.APIError) -> str:
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code} ({type(exc).__name__}): {str(exc.message)[:300]}"
    return f"{type(exc).__name__}: {str(exc)[:300]}"


class LLMClient:
    """Chat completions with structured-output fallbacks, retries, accounting and record/replay."""

    def __init__(
        self,
        settings: LLMSettings,
        *,
        records: RecordStore | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        self.settings = settings
        self.records = records
        self.on_progress = on_progress
        self._rung = 0
        self._stream = True
        self._transport = _AttemptTransport(httpx2.HTTPTransport())
        self._sdk = openai.OpenAI(
            base_url=settings.base_url,
            api_key=settings.api_key or NO_API_KEY,
            timeout=settings.timeout_seconds,
            max_retries=settings.max_retries,
            http_client=openai.DefaultHttpxClient(transport=self._transport),
        )

    @property
    def rung(self) -> Rung:
        """The response_format rung the next request starts from."""
        return RUNGS[self._rung]

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._sdk.close()

    def chat(self, messages: list[ChatMessage], schema: dict[str, Any], schema_name: str, log: CallLog) -> Answer:
        """One answer for ``messages``, constrained to ``schema`` as far as the endpoint allows.

        Raises :class:`LLMError` when no answer comes back; every attempt is in ``log`` either way.
        """
        msgs = [{"role": m.role, "content": m.content} for m in messages]
        while True:
            rung = RUNGS[self._rung]
            request = {
                "model": self.settings.model,
                "messages": msgs,
                "response_format": response_format(rung, schema, schema_name),
                "temperature": self.settings.temperature,
                "max_tokens": self.settings.max_tokens,
            }
            key = request_key(request)
            record = self.records.get(key) if self.records is not None else None
            if record is not None and "rejected" in record:
                log.attempts.append({"rung": rung, "key": key, "cached": True, **record["rejected"]})
                self._step_down(log, rung, f"HTTP {record['rejected'].get('status')}, recorded")
                continue
            if record is not None and "response" in record:
                return self._replay(record["response"], rung, key, log)
            try:
                return self._call(request, rung, key, log)
            except openai.APIStatusError as exc:
                if log.attempts:
                    log.attempts[-1]["error"] = type(exc).__name__
                if self._stream and _is_stream_rejection(exc):
                    self._no_stream(log, f"HTTP {exc.status_code}")
                    continue
                if _is_format_rejection(exc) and self._rung < len(RUNGS) - 1:
                    rejected = {"status": exc.status_code, "error": type(exc).__name__}
                    if self.records is not None:
                        self.records.put(key, {"request": canonical_request(request), "rejected": rejected})
                    self._step_down(log, rung, f"HTTP {exc.status_code}")
                    continue
                if exc.status_code in (408, 409, 429) or exc.status_code >= 500:
                    wait = retry_after_seconds(exc.response.headers)
                    raise LLMUnavailable(self._failure(exc, retried=True), wait) from None
                raise LLMError(self._failure(exc, retried=False)) from None
            except (openai.APIConnectionError, openai.APITimeoutError) as exc:
                raise LLMUnavailable(self._failure(exc, retried=True)) from None
            except openai.APIError as exc:
                raise LLMError(self._failure(exc, retried=True)) from None
            except ValueError as exc:  # a 200 whose body is not JSON
                raise LLMError(f"{self.settings.base_url}: malformed response body ({exc})") from None

    def _failure(self, exc: openai.APIError, retried: bool) -> str:
        tries = f"no answer after {self.settings.max_retries + 1} tries: " if retried else ""
        return f"{self.settings.base_url}: {tries}{_describe(exc)}"

    def _no_stream(self, log: CallLog, why: str) -> None:
        self._stream = False
        log.notes.append(f"endpoint does not stream ({why}); asking without streaming from now on")

    def _step_down(self, log: CallLog, rung: Rung, why: str) -> None:
        self._rung += 1
        log.notes.append(f"endpoint rejected response_format {rung} ({why}); using {RUNGS[self._rung]} from now on")

    def _drain(self, log: CallLog, rung: Rung, key: str) -> dict[str, Any]:
        drained = [{"rung": rung, "key": key, "cached": False, **a} for a in self._transport.attempts]
        self._transport.attempts.clear()
        log.attempts.extend(drained)
        return drained[-1] if drained else {}

    def _call(self, request: dict[str, Any], rung: Rung, key: str, log: CallLog) -> Answer:
        started = time.monotonic()
        rf = request["response_format"]
        kwargs: dict[str, Any] = {
            "model": request["model"],
            "messages": cast(Any, request["messages"]),
            "temperature": request["temperature"],
            "max_tokens": request["max_tokens"],
            "extra_body": {"response_format": rf} if rf is not None else None,
        }
        try:
            if self._stream:
                text, finish, prompt_tokens, completion_tokens = self._streamed(kwargs, started, log)
            else:
                text, finish, prompt_tokens, completion_tokens = _parts(self._sdk.chat.completions.create(**kwargs))
        finally:
            last = self._drain(log, rung, key)
        latency = round(time.monotonic() - started, 3)
        answer = Answer(
            text=text,
            finish_reason=finish,
            rung=rung,
            key=key,
            cached=False,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            latency_seconds=latency,
        )
        last.update(
            latencySeconds=latency,  # the whole answer, not just its headers (streamed answers)
            finishReason=answer.finish_reason,
            promptTokens=answer.prompt_tokens,
            completionTokens=answer.completion_tokens,
        )
        log.usage += LLMUsage(
            calls=1,
            prompt_tokens=answer.prompt_tokens,
            completion_tokens=answer.completion_tokens,
            latency_seconds=latency,
        )
        if self.records is not None:
            self.records.put(
                key,
                {
                    "request": canonical_request(request),
                    "response": {
                        "content": answer.text,
                        "finishReason": answer.finish_reason,
                        "promptTokens": answer.prompt_tokens,
                        "completionTokens": answer.completion_tokens,
                        "latencySeconds": latency,
                    },
                },
            )
        return answer

    def _streamed(self, kwargs: dict[str, Any], started: float, log: CallLog) -> tuple[str, str | None, int, int]:
        """Stream one answer, reporting progress; an answer sent in one JSON body is taken as it is."""
        stream = self._sdk.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True})
        with stream:
            if not stream.response.headers.get("content-type", "").startswith("text/event-stream"):
                self._no_stream(log, "it answered a streamed request in one body")
                stream.response.read()
                return _parts(ChatCompletion.model_validate(stream.response.json()))
            parts: list[str] = []
            finish: str | None = None
            usage = None
            first: float | None = None
            reported = started
            for chunk in stream:
                if chunk.usage is not None:
                    usage = chunk.usage
                for choice in chunk.choices[:1]:
                    if choice.delta.content:
                        parts.append(choice.delta.content)
                        first = first or time.monotonic()
                    finish = choice.finish_reason or finish
                now = time.monotonic()
                if self.on_progress is not None and now - reported >= PROGRESS_INTERVAL_SECONDS:
                    reported = now
                    self.on_progress(_progress(len(parts), started, first, now))
        tokens = usage.completion_tokens if usage is not None else len(parts)
        if self.on_progress is not None:
            self.on_progress(_progress(tokens, started, first, time.monotonic(), done=True))
        return "".join(parts), finish, usage.prompt_tokens if usage is not None else 0, tokens

    @staticmethod
    def _replay(response: dict[str, Any], rung: Rung, key: str, log: CallLog) -> Answer:
        answer = Answer(
            text=str(response.get("content") or ""),
            finish_reason=response.get("finishReason"),
            rung=rung,
            key=key,
            cached=True,
        )
        log.attempts.append(
            {"rung": rung, "key": key, "cached": True, "status": 200, "finishReason": answer.finish_reason}
        )
        log.usage += LLMUsage(cached_calls=1)
        return answer
