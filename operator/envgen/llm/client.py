"""A robust OpenAI-compatible chat client for structured (JSON) answers.

* Built on the ``openai`` SDK: base URL, model, API key, temperature, request timeout, and the SDK's own retries
  (429, 408, 409, 5xx, timeouts and connection errors, honouring ``retry-after``).
* Structured output falls down the :mod:`~envgen.llm.ladder` when the endpoint rejects a ``response_format``;
  a 5xx whose body names the response format is marked not-retryable, so it burns no retries. What a failure
  means is decided in one place, :func:`envgen.llm.errors.classify`.
* Answers are streamed (``stream=True``, same ``response_format``), so a slow server shows progress: an optional
  callback gets a :class:`~envgen.llm.progress.StreamProgress` about twice a second and once at the end, and the
  request timeout bounds the silence between tokens, not the whole answer. An endpoint that rejects streaming or
  answers a streamed request in one JSON body is asked without streaming from then on.
* Every HTTP attempt is logged (rung, status, error class, latency, tokens, record key; never the API key),
  and answers go through an optional :class:`~envgen.llm.records.RecordStore` for record/replay.

Validation of the answer's content belongs to the caller: :meth:`LLMClient.chat` returns the text as sent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, cast

import httpx2
import openai
from openai.types.chat import ChatCompletion

from ..contracts import ChatMessage, LLMUsage
from ..models import as_float
from ..spec import LLMSpec
from .errors import LLMError, LLMUnavailable, classify, describe, names_response_format, retry_after_seconds
from .ladder import Ladder, Rung, response_format
from .progress import ProgressCallback, StreamTracker
from .records import RecordStore, rejection_record, request_key, response_record

NO_API_KEY = "not-needed"  # OpenAI-compatible local servers accept any key; the SDK insists on one


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
            if names_response_format(response.text):
                response.headers["x-should-retry"] = "false"
        if "retry-after" in response.headers:
            attempt["retryAfter"] = response.headers["retry-after"]
        self.attempts.append(attempt)
        return response

    def close(self) -> None:
        self.inner.close()


def _secs(started: float) -> float:
    return round(time.monotonic() - started, 3)


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
        self._ladder = Ladder()
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
        return self._ladder.rung

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._sdk.close()

    def chat(self, messages: list[ChatMessage], schema: dict[str, Any], schema_name: str, log: CallLog) -> Answer:
        """One answer for ``messages``, constrained to ``schema`` as far as the endpoint allows.

        Raises :class:`LLMError` when no answer comes back; every attempt is in ``log`` either way.
        """
        msgs = [{"role": m.role, "content": m.content} for m in messages]
        while True:
            rung = self._ladder.rung
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
                log.notes.append(self._ladder.step_down(f"HTTP {record['rejected'].get('status')}, recorded"))
                continue
            if record is not None and "response" in record:
                return self._replay(record["response"], rung, key, log)
            try:
                return self._call(request, rung, key, log)
            except openai.APIError as exc:
                if isinstance(exc, openai.APIStatusError) and log.attempts:
                    log.attempts[-1]["error"] = type(exc).__name__
                failure = classify(exc, streaming=self._stream, can_step_down=self._ladder.can_step_down)
                if failure == "stream-rejected":
                    assert isinstance(exc, openai.APIStatusError)
                    self._no_stream(log, f"HTTP {exc.status_code}")
                    continue
                if failure == "format-rejected":
                    assert isinstance(exc, openai.APIStatusError)
                    if self.records is not None:
                        rejected = rejection_record(request, status=exc.status_code, error=type(exc).__name__)
                        self.records.put(key, rejected)
                    log.notes.append(self._ladder.step_down(f"HTTP {exc.status_code}"))
                    continue
                if failure == "unavailable":
                    wait = retry_after_seconds(exc.response.headers) if isinstance(exc, openai.APIStatusError) else None
                    raise LLMUnavailable(self._failure(exc, retried=True), wait) from None
                raise LLMError(self._failure(exc, retried=failure == "failed")) from None
            except ValueError as exc:  # a 200 whose body is not JSON
                raise LLMError(f"{self.settings.base_url}: malformed response body ({exc})") from None

    def _failure(self, exc: openai.APIError, retried: bool) -> str:
        tries = f"no answer after {self.settings.max_retries + 1} tries: " if retried else ""
        return f"{self.settings.base_url}: {tries}{describe(exc)}"

    def _no_stream(self, log: CallLog, why: str) -> None:
        self._stream = False
        log.notes.append(f"endpoint does not stream ({why}); asking without streaming from now on")

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
            record = response_record(
                request,
                content=answer.text,
                finish_reason=answer.finish_reason,
                prompt_tokens=answer.prompt_tokens,
                completion_tokens=answer.completion_tokens,
                latency_seconds=latency,
            )
            self.records.put(key, record)
        return answer

    def _streamed(self, kwargs: dict[str, Any], started: float, log: CallLog) -> tuple[str, str | None, int, int]:
        """Stream one answer, reporting progress; an answer sent in one JSON body is taken as it is."""
        stream = self._sdk.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True})
        tracker = StreamTracker(self.on_progress, started)
        with stream:
            if not stream.response.headers.get("content-type", "").startswith("text/event-stream"):
                self._no_stream(log, "it answered a streamed request in one body")
                stream.response.read()
                return _parts(ChatCompletion.model_validate(stream.response.json()))
            parts: list[str] = []
            finish: str | None = None
            usage = None
            for chunk in stream:
                if chunk.usage is not None:
                    usage = chunk.usage
                text = ""
                for choice in chunk.choices[:1]:
                    text = choice.delta.content or ""
                    finish = choice.finish_reason or finish
                if text:
                    parts.append(text)
                tracker.chunk(bool(text))
        tokens = usage.completion_tokens if usage is not None else len(parts)
        tracker.done(tokens)
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
