"""The LLM side of EnvGen: a robust OpenAI-compatible client, record/replay, and the embedded local model."""

from .client import RUNGS, Answer, CallLog, LLMClient, LLMError, LLMSettings
from .records import DirectoryRecordStore, MemoryRecordStore, RecordStore, request_key

__all__ = [
    "RUNGS",
    "Answer",
    "CallLog",
    "DirectoryRecordStore",
    "LLMClient",
    "LLMError",
    "LLMSettings",
    "MemoryRecordStore",
    "RecordStore",
    "request_key",
]
