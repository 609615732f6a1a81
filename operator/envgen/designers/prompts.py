"""EnvGen's prompts for Crafter and Heist, following the paper's structure (Zala et al. 2024, §4).

* Cycle 1, one user turn: role and task, the game's objectives, the controllable settings, the world's rules,
  and the output template.
* Cycle 2, the first feedback prompt: the same skeleton plus the agent's success table (``skill: M% +/- S%``,
  integers), the N environments it trained in, the sleep rules, and the request to state explicitly which
  information motivated each environment.
* Cycle 3 on: the previous chat, ending with the accepted answer, plus a short turn with the new scores.

The settings list is generated from the env-config models (names and allowed values); only the one-line
descriptions live here, and a test keeps them in step with the models.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..contracts import ChatMessage, CycleFeedback, CycleHistory, DesignRequest
from ..envconfig import DesignedEnv
from ..games import GAMES, GameName
from ..games import game as game_of
from .schema import NAME_MAX, PURPOSE_MAX, answer_env_model, for_constrained_decoding

SYSTEM = "You design training environments for a reinforcement-learning agent. You reply with JSON only."


def game_title(game: GameName) -> str:
    return game_of(game).title


def _values(node: dict[str, Any]) -> str:
    if "anyOf" in node:
        options = [_values(n) for n in node["anyOf"] if n.get("type") != "null"]
        return " or ".join(options) + ", or null"
    if node.get("type") == "boolean":
        return "true or false"
    enum = node.get("enum", [])
    if node.get("type") == "integer" and not enum:  # a range too wide to list stays minimum/maximum
        bounds = [node.get("minimum"), node.get("maximum")]
        return "an integer" + ("" if None in bounds else f" {bounds[0]}-{bounds[1]}")
    if node.get("type") == "integer" and enum == list(range(enum[0], enum[-1] + 1)):
        return f"an integer {enum[0]}-{enum[-1]}"
    return "one of " + ", ".join(json.dumps(v) for v in enum)


def _lines(props: dict[str, Any], text: Mapping[str, str]) -> list[str]:
    lines = []
    for name, node in props.items():
        if "properties" in node:
            note = f" ({text[name]})" if text[name] else ""
            lines += [f"{name}{note}:", *_lines(node["properties"], text)]
        else:
            lines.append(f"- {name} ({_values(node)}): {text[name]}")
    return lines


def settings_text(game: GameName) -> str:
    """The controllable settings, generated from the env-config models."""
    g = game_of(game)
    props = for_constrained_decoding(answer_env_model(game).model_json_schema())["properties"]
    return "\n".join(_lines({n: props[n] for n in g.answer_fields}, g.setting_text))


def env_json(env: DesignedEnv) -> str:
    """An env in the answer format (compact JSON), as shown back to the model."""
    doc: dict[str, Any] = {"name": env.name, "purpose": env.purpose}
    doc.update(env.config.model_dump(include=set(game_of(env.config.game).answer_fields)))
    return json.dumps(doc, separators=(", ", ": "))


def _template(game: GameName) -> str:
    example = DesignedEnv(
        name="<short title>",
        purpose="<one or two sentences: the skills this environment teaches>",
        config=game_of(game).config_model(),
    )
    return '{"environments": [' + env_json(example) + ", ...]}"


def _output_instruction(game: GameName, n: int, feedback: bool) -> str:
    lines = [
        f"Answer with one JSON object of this form, with exactly {n} environments, and nothing else:",
        _template(game),
        "Every setting must be given; use null, 0 or false to keep the standard game.",
        f"Names have at most {NAME_MAX} characters, purposes at most {PURPOSE_MAX}.",
        "Each purpose names the skills the environment teaches.",
    ]
    if feedback:
        lines.append(
            "In each purpose, explicitly state which information (for example the current success rate of a "
            "task) motivated the environment."
        )
    return "\n".join(lines)


def _skills(game: GameName) -> str:
    return game_of(game).skill_text


def _rules(game: GameName, feedback: bool) -> str:
    g = game_of(game)
    return "\n".join(f"- {r}" for r in g.rules + (g.feedback_rules if feedback else ()))


def _role(game: GameName, n: int) -> str:
    g = game_of(game)
    return (
        f'You are an environment designer for the game "{g.title}". Design {n} environments that teach an '
        f"agent to play {g.title}. The environments should not make the game trivially easy: they should put the "
        f"agent in situations where it learns skills it can use in the original game. You control {g.control}."
    )


def success_table(feedback: CycleFeedback) -> str:
    """``skill: M% +/- S%`` lines with integers, achievements in Crafter's order."""
    order = {name: i for i, name in enumerate(s for g in GAMES.values() for s in g.skills)}
    names = sorted(feedback.success, key=lambda k: (order.get(k, len(order)), k))
    return "\n".join(f"{k}: {round(feedback.success[k].mean)}% +/- {round(feedback.success[k].std)}%" for k in names)


def initial_prompt(game: GameName, n: int) -> str:
    """Cycle 1: the paper's initial generation prompt."""
    return "\n\n".join(
        [
            _role(game, n),
            f"The game's objectives (the skills the agent should learn):\n{_skills(game)}",
            f"What you can set for each environment:\n{settings_text(game)}",
            f"Rules of the world:\n{_rules(game, feedback=False)}",
            _output_instruction(game, n, feedback=False),
        ]
    )


def first_feedback_prompt(game: GameName, n: int, previous: CycleHistory) -> str:
    """Cycle 2 (or after a chat-less cycle): the paper's first feedback prompt."""
    envs = "\n".join(f"Environment {i}: {env_json(e)}" for i, e in enumerate(previous.design.envs, 1))
    return "\n\n".join(
        [
            _role(game, n),
            "The agent trained in the environments below and then in the original game. It already knows how "
            "to do some tasks and still has to learn the others. How can we update the training environments "
            "to improve the agent's performance overall?",
            "How well the agent does each task in the original game (success rate, mean +/- std over "
            f"evaluation runs):\n{success_table(previous.feedback)}",
            f"The environments the agent trained in:\n{envs or '(none)'}",
            f"What you can set for each environment:\n{settings_text(game)}",
            f"Rules of the world:\n{_rules(game, feedback=True)}",
            _output_instruction(game, n, feedback=True),
        ]
    )


def update_prompt(n: int, feedback: CycleFeedback) -> str:
    """Cycle 3 on: the short turn with the new scores."""
    return (
        "Those environments resulted in the agent improving up to these scores:\n"
        f"{success_table(feedback)}\n\n"
        f"Could you generate new environments based on these scores? Answer with the same JSON format: exactly "
        f"{n} environments, and in each purpose state which scores motivated it."
    )


def repair_prompt(n: int, problems: list[str]) -> str:
    """One repair turn: the validation problems of the previous answer."""
    listed = "\n".join(f"- {p}" for p in problems)
    return (
        f"Your answer could not be used:\n{listed}\n\n"
        f"Answer again with the complete JSON object ({n} environments) and fix these problems."
    )


def critic_prompt(n: int, reasons: list[str]) -> str:
    """One repair turn for a valid but degenerate set: the critic's reasons."""
    listed = "\n".join(f"- {r}" for r in reasons)
    return (
        f"These environments are valid but weak as a training set:\n{listed}\n\n"
        f"Revise them and answer again with the complete JSON object ({n} environments): keep what works and "
        "fix these problems."
    )


def build_chat(request: DesignRequest) -> tuple[list[ChatMessage], str]:
    """The chat for a cycle (ending with a user turn) and which prompt it used."""
    game, n, history = request.game, request.num_envs, request.history
    if not history:
        first = initial_prompt(game, n)
        return [ChatMessage(role="system", content=SYSTEM), ChatMessage(role="user", content=first)], "initial"
    previous = history[-1]
    chat = previous.design.chat
    if len(history) >= 2 and chat and chat[-1].role == "assistant":
        return [*chat, ChatMessage(role="user", content=update_prompt(n, previous.feedback))], "update"
    return [
        ChatMessage(role="system", content=SYSTEM),
        ChatMessage(role="user", content=first_feedback_prompt(game, n, previous)),
    ], "first-feedback"
