"""The constrained LLM design mode: the model only chooses, the catalogue builds the environments.

A small model cannot invent good configurations, but it can pick from a short menu. Each environment slot gets a
menu, and the JSON schema gives slot k a string ``enum`` of menu k only; the menus are disjoint, so every answer
the grammar allows is N valid, distinct practice environments.

* A game with one practice env per skill (Crafter): the menus are the agent's frontier, the heuristic designer's
  candidates (skills it can reach now or one step beyond, most valuable first, stalled skills last), without last
  cycle's choices while enough others are left, dealt round-robin over the slots. The menu moves with the
  feedback, so even a model that always picks the first option follows it, and a repeat is never on offer.
* A level ladder (Heist): the ladder cut into N consecutive stages, easy to hard.

The prompt shows the agent's success per skill; the model picks, per slot, what the agent should practise next. A
schema-invalid answer gets one repair; if it is still invalid, each unusable slot gets its menu's first option.
"""

from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft202012Validator

from ..contracts import ChatMessage, CycleDesign, DesignRequest
from ..games import GameName
from ..games import game as game_of
from ..llm import CallLog, LLMClient, LLMError, LLMUnavailable
from ..spec import DesignerType
from .base import DesignError, DesignUnavailable, unique_names
from .catalogue import CatalogueEnv, ladder, spread
from .critic import critique
from .heuristic import practice_env, practised_skills, targets
from .progress import latest_success
from .prompts import SYSTEM, game_title, success_table
from .schema import extract_json


def stages(game: GameName, n: int) -> list[tuple[CatalogueEnv, ...]]:
    """The catalogue cut into ``n`` consecutive, disjoint, non-empty stages (fewer when it has fewer entries)."""
    envs = ladder(game)
    n = max(1, min(n, len(envs)))
    return [envs[k * len(envs) // n : (k + 1) * len(envs) // n] for k in range(n)]


def frontier(request: DesignRequest) -> list[CatalogueEnv]:
    """The heuristic's candidates (lost skills first), most valuable first, each at its earn level, without last
    cycle's skills while ``num_envs`` others remain."""
    game, history = game_of(request.game), list(request.history)
    ranked = targets(game, history, len(game.skills))
    last = practised_skills(game, [e.name for e in history[-1].design.envs]) if history else set()
    fresh = [s for s in ranked if s not in last]
    return [practice_env(game, history, s) for s in (fresh if len(fresh) >= request.num_envs else ranked)]


def menus(request: DesignRequest) -> list[tuple[CatalogueEnv, ...]]:
    """One disjoint, non-empty menu per slot (fewer slots when there are fewer options), best option first."""
    if game_of(request.game).curriculum != "skills":
        return stages(request.game, request.num_envs)
    options = frontier(request)
    n = max(1, min(request.num_envs, len(options)))
    return [tuple(options[k::n]) for k in range(n)]


def choice(entry: CatalogueEnv, game: GameName) -> str:
    """The enum value the model writes for a catalogue entry: its skill or its level name (see ``Game.choice``)."""
    return game_of(game).choice(entry)


def slot(k: int) -> str:
    """The answer field of slot ``k`` (0-based)."""
    return f"env{k + 1}"


def constrained_schema(game: GameName, menu: list[tuple[CatalogueEnv, ...]]) -> dict[str, Any]:
    """One required string field per slot, each an enum of its own menu: distinct choices by construction."""
    props = {slot(k): {"type": "string", "enum": [choice(e, game) for e in options]} for k, options in enumerate(menu)}
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


def constrained_prompt(request: DesignRequest, menu: list[tuple[CatalogueEnv, ...]]) -> str:
    """The menus, the agent's success so far, and how to choose."""
    game, feedback = request.game, request.history[-1].feedback if request.history else None
    success = latest_success(list(request.history))
    per_skill = game_of(game).curriculum == "skills"

    def option(e: CatalogueEnv) -> str:
        now = f" (now {success[e.skills[0]]:.0f}%)" if per_skill else ""
        return f"  - {choice(e, game)}{now}: {e.env.purpose.split(': ', 1)[-1]}"

    listed = [f"{slot(k)}:\n" + "\n".join(option(e) for e in options) for k, options in enumerate(menu)]
    table = success_table(feedback) if feedback else "(no training yet: every skill is at 0%)"
    last = request.history[-1].design.envs if request.history else []
    practised = [f"Last cycle the agent practised: {', '.join(e.name for e in last)}."] if last else []
    return "\n\n".join(
        [
            f'You choose training environments for an agent learning "{game_title(game)}". Each environment '
            "practises one skill and hands out only that skill's prerequisites.",
            f"How well the agent does each skill in the real game (success rate):\n{table}",
            *practised,
            "For each slot, choose the option the agent should practise next: a skill it rarely succeeds at "
            "whose prerequisites it already manages. Each slot lists its options most useful first.",
            "The options per slot:\n" + "\n\n".join(listed),
            f"Reply with one JSON object with the keys {', '.join(slot(k) for k in range(len(menu)))}.",
        ]
    )


def parse_choices(text: str, schema: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """The slot choices of an answer and the schema problems (slots with a problem are left out)."""
    try:
        doc = extract_json(text)
    except ValueError as exc:
        return {}, [str(exc)]
    if not isinstance(doc, dict):
        return {}, ["the answer must be a JSON object"]
    problems = [
        f"{'.'.join(str(p) for p in e.absolute_path) or '(top level)'}: {e.message}"
        for e in Draft202012Validator(schema).iter_errors(doc)
    ]
    allowed = schema["properties"]
    good = {k: v for k, v in doc.items() if k in allowed and v in allowed[k]["enum"]}
    return good, problems


class ConstrainedLLMDesigner:
    """The LLM picks one catalogue skill per slot (enum-constrained JSON); the catalogue builds the envs."""

    def __init__(self, client: LLMClient, *, name: DesignerType = "llm") -> None:
        self.client = client
        self.name: DesignerType = name

    def close(self) -> None:
        """Close the LLM client."""
        self.client.close()

    def design(self, request: DesignRequest) -> CycleDesign:
        log = CallLog()
        menu = menus(request)
        chat = [
            ChatMessage(role="system", content=SYSTEM),
            ChatMessage(role="user", content=constrained_prompt(request, menu)),
        ]
        log.notes.append(f"prompt: constrained ({self.client.settings.model}, response_format {self.client.rung})")
        try:
            text, picks = self._ask(chat, menu, request, log)
        except LLMUnavailable as exc:
            raise DesignUnavailable(
                f"{self.name} designer (constrained), cycle {request.cycle}: {exc}",
                self._record(request, chat, log),
                exc.retry_after,
            ) from None
        except LLMError as exc:
            raise DesignError(
                f"{self.name} designer (constrained), cycle {request.cycle}: {exc}", self._record(request, chat, log)
            ) from None
        design = self._record(request, [*chat, ChatMessage(role="assistant", content=text)], log)
        design.envs = unique_names([p.env for p in spread(tuple(picks), request.num_envs)])
        design.findings = critique(design.envs, request)
        log.notes.append("constrained: " + ", ".join(p.env.name for p in picks))
        design.notes = list(log.notes)
        return design

    def _ask(
        self, chat: list[ChatMessage], menu: list[tuple[CatalogueEnv, ...]], request: DesignRequest, log: CallLog
    ) -> tuple[str, list[CatalogueEnv]]:
        schema = constrained_schema(request.game, menu)
        answer = self.client.chat(chat, schema, f"envgen_{request.game}_choice", log)
        good, problems = parse_choices(answer.text, schema)
        text = answer.text
        if problems:
            log.notes.append(f"answer invalid, asked for one repair: {'; '.join(problems)}")
            repair = [
                *chat,
                ChatMessage(role="assistant", content=answer.text or "(empty answer)"),
                ChatMessage(
                    role="user",
                    content="That answer is not valid: " + "; ".join(problems) + ". Reply with one JSON object "
                    "whose keys are the slots and whose values are options listed for that slot.",
                ),
            ]
            second = self.client.chat(repair, schema, f"envgen_{request.game}_choice", log)
            again, problems = parse_choices(second.text, schema)
            if len(again) >= len(good):
                good, text = again, second.text
        picks = []
        for k, options in enumerate(menu):
            by_choice = {choice(e, request.game): e for e in options}
            if slot(k) in good:
                picks.append(by_choice[good[slot(k)]])
            else:
                picks.append(options[0])
                log.notes.append(f"{slot(k)}: no valid choice, used the slot's first option")
        if not good:
            text = json.dumps({slot(k): choice(p, request.game) for k, p in enumerate(picks)})
        return text, picks

    def _record(self, request: DesignRequest, chat: list[ChatMessage], log: CallLog) -> CycleDesign:
        return CycleDesign(
            cycle=request.cycle,
            designer=self.name,
            envs=[],
            chat=chat,
            notes=list(log.notes),
            usage=log.usage,
            attempts=list(log.attempts),
        )
