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
from typing import Any

from ..contracts import ChatMessage, CycleFeedback, CycleHistory, DesignRequest
from ..envconfig import (
    CrafterEnvConfig,
    CrafterEnvironmentSettings,
    CrafterInventorySettings,
    DesignedEnv,
    Game,
    HeistEnvConfig,
)
from ..games import GAMES
from ..games import game as game_of
from .schema import HEIST_SETTINGS, NAME_MAX, PURPOSE_MAX, HeistAnswerEnv, for_constrained_decoding

SYSTEM = "You design training environments for a reinforcement-learning agent. You reply with JSON only."

CRAFTER_DESCRIPTIONS: dict[str, str] = {
    "target_biome": "the world's main biome; natural is the standard world with every biome",
    "tree_rarity": "how common trees are; null keeps the standard amount",
    "coal_rarity": "how common coal is; null keeps the standard amount",
    "iron_rarity": "how common iron is; null keeps the standard amount",
    "diamond_rarity": "how common diamonds are; null keeps the standard amount",
    "spawn_cows": "extra cows placed near the agent's start",
    "spawn_zombies": "extra zombies placed near the agent's start",
    "spawn_skeletons": "extra skeletons placed near the agent's start",
    "peaceful_mode": "true removes all zombies and skeletons",
    "place_table": "true puts a crafting table next to the agent's start",
    "place_furnace": "true puts a furnace next to the agent's start",
    "place_plant": "true puts a ripening sapling next to the agent's start",
    "sapling": "saplings the agent starts with",
    "wood": "wood the agent starts with",
    "stone": "stone the agent starts with",
    "coal": "coal the agent starts with",
    "iron": "iron the agent starts with",
    "diamond": "diamonds the agent starts with",
    "wood_pickaxe": "1 = the agent starts with a wood pickaxe",
    "stone_pickaxe": "1 = the agent starts with a stone pickaxe",
    "iron_pickaxe": "1 = the agent starts with an iron pickaxe",
    "wood_sword": "1 = the agent starts with a wood sword",
    "stone_sword": "1 = the agent starts with a stone sword",
    "iron_sword": "1 = the agent starts with an iron sword",
}

HEIST_DESCRIPTIONS: dict[str, str] = {
    "distribution_mode": "easy = 9x9 world, hard = 13x13 world, memory = 23x23 world seen through a small window",
    "num_keys": "number of keys (each opens the lock of its colour) in the level; null = any",
    "maze_size": "side of the maze in tiles; null = any size the mode allows",
}

CRAFTER_RULES = (
    "natural has all biomes.",
    "Coal, iron and diamonds only appear in mountains.",
    "Trees and cows only appear in grasslands.",
    "Skeletons only live in mountain caves and shoot arrows.",
    "Zombies appear anywhere, mostly at night, and chase the agent.",
    "The agent can only drink water; grassland and mountain worlds have no water.",
    "Collecting stone needs a wood_pickaxe, iron needs a stone_pickaxe, diamonds need an iron_pickaxe.",
    "Crafting needs a nearby table; iron tools also need a nearby furnace, coal and wood.",
)
CRAFTER_SLEEP_RULES = (
    "The agent must sleep to get wake_up.",
    "While asleep the agent cannot move; it wakes up when it has rested, at sunrise, or when a monster attacks.",
)
HEIST_RULES = (
    "The agent must steal the gem; collecting it gives reward 10 and ends the episode.",
    "Locks (blue, green, red) block the way to the gem; each opens with the key of its colour.",
    "A maze of size m has difficulty d = (m - 5) / 2 and d or d + 1 keys (at most 3), except in memory mode.",
    "maze_size must fit in the world of the distribution_mode (9, 13 or 23 tiles).",
    "Episodes time out after 1000 steps.",
)


def game_title(game: Game) -> str:
    return game_of(game).title


def _values(node: dict[str, Any]) -> str:
    if "anyOf" in node:
        options = [_values(n) for n in node["anyOf"] if n.get("type") != "null"]
        return " or ".join(options) + ", or null"
    if node.get("type") == "boolean":
        return "true or false"
    enum = node.get("enum", [])
    if node.get("type") == "integer" and enum == list(range(enum[0], enum[-1] + 1)):
        return f"an integer {enum[0]}-{enum[-1]}"
    return "one of " + ", ".join(json.dumps(v) for v in enum)


def _lines(model: type[Any], descriptions: dict[str, str], only: tuple[str, ...] | None = None) -> list[str]:
    props = for_constrained_decoding(model.model_json_schema())["properties"]
    return [f"- {n} ({_values(props[n])}): {descriptions[n]}" for n in (only or tuple(props))]


def settings_text(game: Game) -> str:
    """The controllable settings, generated from the env-config models."""
    if game == "crafter":
        return "\n".join(
            [
                "environment_settings:",
                *_lines(CrafterEnvironmentSettings, CRAFTER_DESCRIPTIONS),
                "inventory_settings (what the agent starts with):",
                *_lines(CrafterInventorySettings, CRAFTER_DESCRIPTIONS),
            ]
        )
    return "\n".join(_lines(HeistAnswerEnv, HEIST_DESCRIPTIONS, HEIST_SETTINGS))


def env_json(env: DesignedEnv) -> str:
    """An env in the answer format (compact JSON), as shown back to the model."""
    doc: dict[str, Any] = {"name": env.name, "purpose": env.purpose}
    if isinstance(env.config, CrafterEnvConfig):
        doc["environment_settings"] = env.config.environment_settings.model_dump()
        doc["inventory_settings"] = env.config.inventory_settings.model_dump()
    else:
        doc.update(env.config.model_dump(include=set(HEIST_SETTINGS)))
    return json.dumps(doc, separators=(", ", ": "))


def _template(game: Game) -> str:
    example = DesignedEnv(
        name="<short title>",
        purpose="<one or two sentences: the skills this environment teaches>",
        config=CrafterEnvConfig() if game == "crafter" else HeistEnvConfig(),
    )
    return '{"environments": [' + env_json(example) + ", ...]}"


def _output_instruction(game: Game, n: int, feedback: bool) -> str:
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


def _skills(game: Game) -> str:
    return game_of(game).skill_text


def _rules(game: Game, feedback: bool) -> str:
    rules = CRAFTER_RULES + (CRAFTER_SLEEP_RULES if feedback else ()) if game == "crafter" else HEIST_RULES
    return "\n".join(f"- {r}" for r in rules)


def _role(game: Game, n: int) -> str:
    title = game_title(game)
    control = (
        "what the world looks like and what the agent starts with"
        if game == "crafter"
        else "the world size, the maze size and the number of keys"
    )
    return (
        f'You are an environment designer for the game "{title}". Design {n} environments that teach an '
        f"agent to play {title}. The environments should not make the game trivially easy: they should put the "
        f"agent in situations where it learns skills it can use in the original game. You control {control}."
    )


def success_table(feedback: CycleFeedback) -> str:
    """``skill: M% +/- S%`` lines with integers, achievements in Crafter's order."""
    order = {name: i for i, name in enumerate(s for g in GAMES.values() for s in g.skills)}
    names = sorted(feedback.success, key=lambda k: (order.get(k, len(order)), k))
    return "\n".join(f"{k}: {round(feedback.success[k].mean)}% +/- {round(feedback.success[k].std)}%" for k in names)


def initial_prompt(game: Game, n: int) -> str:
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


def first_feedback_prompt(game: Game, n: int, previous: CycleHistory) -> str:
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
