"""The LLM side of EnvGen, one module per concern.

``client`` (the OpenAI-compatible chat client), ``ladder`` (the response-format fallbacks), ``errors`` (what a
failure means), ``progress`` (a streamed answer's progress), ``records`` (record/replay), ``embedded`` (the local
llama.cpp server) and ``shared`` (one embedded server per machine, shared by leases).
"""

from .client import Answer, CallLog, LLMClient, LLMSettings
from .errors import LLMError, LLMUnavailable
from .ladder import RUNGS
from .records import DirectoryRecordStore, MemoryRecordStore, RecordStore, request_key

__all__ = [
    "RUNGS",
    "Answer",
    "CallLog",
    "DirectoryRecordStore",
    "LLMClient",
    "LLMError",
    "LLMSettings",
    "LLMUnavailable",
    "MemoryRecordStore",
    "RecordStore",
    "request_key",
]
