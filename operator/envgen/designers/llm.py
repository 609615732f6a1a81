"""EnvGen's LLM designer: prompt, validate, repair once, criticise, repair once more.

Stateless: the chat for cycle k is rebuilt from ``request.history``. The recorded chat is the clean
conversation (prompt, then the accepted answer); repairs and critic verdicts go to ``notes``.
"""

from __future__ import annotations

from typing import Any

from ..contracts import ChatMessage, CycleDesign, DesignRequest
from ..envconfig import DesignedEnv
from ..llm import CallLog, LLMClient, LLMError, LLMUnavailable
from ..spec import DesignerType
from .base import DesignError, DesignUnavailable, unique_names
from .critic import critique
from .prompts import build_chat, critic_prompt, repair_prompt
from .schema import answer_schema, parse_answer


class LLMDesigner:
    """Designs environments with an OpenAI-compatible LLM (the paper's method)."""

    def __init__(self, client: LLMClient, *, critic: bool = True, name: DesignerType = "llm") -> None:
        self.client = client
        self.critic = critic
        self.name: DesignerType = name

    def close(self) -> None:
        """Close the LLM client."""
        self.client.close()

    def design(self, request: DesignRequest) -> CycleDesign:
        log = CallLog()
        chat, kind = build_chat(request)
        log.notes.append(f"prompt: {kind} ({self.client.settings.model}, response_format {self.client.rung})")
        try:
            envs, text = self._valid_answer(chat, request, log)
            envs, text = self._criticised(chat, envs, text, request, log)
        except LLMUnavailable as exc:
            raise DesignUnavailable(
                f"{self.name} designer, cycle {request.cycle}: {exc}",
                self._record(request, chat, [], log),
                exc.retry_after,
            ) from None
        except LLMError as exc:
            raise DesignError(
                f"{self.name} designer, cycle {request.cycle}: {exc}", self._record(request, chat, [], log)
            ) from None
        accepted = [*chat, ChatMessage(role="assistant", content=text)]
        design = self._record(request, accepted, envs, log)
        design.findings = critique(envs, request)
        return design

    def _ask(
        self, messages: list[ChatMessage], request: DesignRequest, log: CallLog
    ) -> tuple[list[DesignedEnv], list[str], str]:
        schema = answer_schema(request.game, request.num_envs)
        answer = self.client.chat(messages, schema, f"envgen_{request.game}_design", log)
        envs, problems = parse_answer(answer.text, answer.finish_reason, request.game, request.num_envs, schema)
        return unique_names(envs), problems, answer.text

    def _valid_answer(
        self, chat: list[ChatMessage], request: DesignRequest, log: CallLog
    ) -> tuple[list[DesignedEnv], str]:
        envs, problems, text = self._ask(chat, request, log)
        if not problems:
            return envs, text
        log.notes.append(f"answer invalid, asked for one repair: {'; '.join(problems)}")
        repair = [
            *chat,
            ChatMessage(role="assistant", content=text or "(empty answer)"),
            ChatMessage(role="user", content=repair_prompt(request.num_envs, problems)),
        ]
        envs, problems, text = self._ask(repair, request, log)
        if problems:
            message = f"the LLM's answer is still invalid after one repair: {'; '.join(problems)}"
            log.notes.append(message)
            raise DesignError(
                f"{self.name} designer, cycle {request.cycle}: {message}", self._record(request, chat, [], log)
            )
        log.notes.append("repaired answer is valid")
        return envs, text

    def _criticised(
        self, chat: list[ChatMessage], envs: list[DesignedEnv], text: str, request: DesignRequest, log: CallLog
    ) -> tuple[list[DesignedEnv], str]:
        findings = critique(envs, request)
        if not findings:
            log.notes.append("critic: no findings")
            return envs, text
        verdict = f"{len(findings)} findings ({', '.join(sorted({f.code for f in findings}))})"
        if not self.critic:
            log.notes.append(f"critic (report only): {verdict}")
            return envs, text
        log.notes.append(f"critic: {verdict}; asked for one repair")
        revise = [
            *chat,
            ChatMessage(role="assistant", content=text),
            ChatMessage(role="user", content=critic_prompt(request.num_envs, [f.message for f in findings])),
        ]
        revised, problems, revised_text = self._ask(revise, request, log)
        if problems:
            log.notes.append(f"critic repair unusable, kept the first valid set: {'; '.join(problems)}")
            return envs, text
        after = critique(revised, request)
        codes = ", ".join(sorted({f.code for f in after}))
        verdict = f"{len(after)} findings ({codes}), accepted" if after else "no findings"
        log.notes.append(f"critic after repair: {verdict}")
        return revised, revised_text

    def _record(
        self, request: DesignRequest, chat: list[ChatMessage], envs: list[DesignedEnv], log: CallLog
    ) -> CycleDesign:
        attempts: list[dict[str, Any]] = list(log.attempts)
        return CycleDesign(
            cycle=request.cycle,
            designer=self.name,
            envs=envs,
            chat=chat,
            notes=list(log.notes),
            usage=log.usage,
            attempts=attempts,
        )
