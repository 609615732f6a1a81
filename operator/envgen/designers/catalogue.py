"""Hand-written environments for the LLM-free designers.

Crafter: one practice environment per achievement. Each hands out the prerequisites of its skill (items,
pre-placed table/furnace/plant, a fitting biome or denser resources) and nothing beyond them, so the agent
still has to perform the skill itself; a tool's env also offers what the tool is for (zombies for a sword, the
next resource for a pickaxe), so no two practice envs are alike. Heist: a ladder of levels from a 5x5 maze without
keys to the standard hard distribution. Both lists are ordered from easy to hard.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..achievements import ACHIEVEMENTS, depth
from ..envconfig import (
    CrafterEnvConfig,
    CrafterEnvironmentSettings,
    CrafterInventorySettings,
    DesignedEnv,
    Game,
    HeistEnvConfig,
)
from ..games import HEIST_SUCCESS

HEIST_SKILL = HEIST_SUCCESS


@dataclass(frozen=True)
class CatalogueEnv:
    """A designed env and the skills it trains."""

    env: DesignedEnv
    skills: tuple[str, ...]


_TABLE = {"place_table": True}
_PICK = {"wood_pickaxe": 1}
_IRON_TOOLS = {"place_table": True, "place_furnace": True}
_IRON_ITEMS = {"wood": 2, "coal": 2, "iron": 2, "wood_pickaxe": 1, "stone_pickaxe": 1}

# skill: (what the environment offers, environment_settings, inventory_settings)
_CRAFTER: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "collect_wood": ("many trees", {"tree_rarity": "very common"}, {}),
    "collect_sapling": ("open grass with few trees to search for saplings", {"tree_rarity": "rare"}, {}),
    "collect_drink": ("a beach world with water everywhere", {"target_biome": "beaches"}, {}),
    "eat_cow": ("cows next to the start", {"spawn_cows": 6}, {}),
    "defeat_zombie": ("zombies next to the start and a wood sword", {"spawn_zombies": 4}, {"wood_sword": 1}),
    "defeat_skeleton": (
        "skeletons next to the start, a stone sword and a pickaxe to dig",
        {"spawn_skeletons": 4},
        {"stone_sword": 1, **_PICK},
    ),
    "wake_up": ("a peaceful world without monsters to sleep in", {"peaceful_mode": True}, {}),
    "place_table": ("wood in hand and many trees", {"tree_rarity": "very common"}, {"wood": 3}),
    "place_plant": ("saplings in hand", {}, {"sapling": 3}),
    "make_wood_pickaxe": ("a table next to the start and wood in hand", _TABLE, {"wood": 3}),
    "make_wood_sword": (
        "a table next to the start, wood in hand and zombies to use the sword on",
        {**_TABLE, "spawn_zombies": 2},
        {"wood": 3},
    ),
    "eat_plant": ("a ripening plant next to the start, no monsters", {"place_plant": True, "peaceful_mode": True}, {}),
    "collect_stone": ("a wood pickaxe in hand", {}, _PICK),
    "collect_coal": ("a wood pickaxe in hand and plenty of coal", {"coal_rarity": "very common"}, _PICK),
    "place_stone": ("stone and a wood pickaxe in hand", {}, {"stone": 3, **_PICK}),
    "place_furnace": ("a table next to the start, stone in hand", _TABLE, {"stone": 3, **_PICK}),
    "make_stone_pickaxe": (
        "a table next to the start, wood and stone in hand, and iron to mine with the new pickaxe",
        {**_TABLE, "iron_rarity": "common"},
        {"wood": 2, "stone": 2, **_PICK},
    ),
    "make_stone_sword": (
        "a table next to the start, wood and stone in hand, and zombies to use the sword on",
        {**_TABLE, "spawn_zombies": 2},
        {"wood": 2, "stone": 2, **_PICK},
    ),
    "collect_iron": (
        "a stone pickaxe in hand and plenty of iron",
        {"iron_rarity": "very common"},
        {"stone_pickaxe": 1, **_PICK},
    ),
    "make_iron_pickaxe": (
        "a table and a furnace next to the start, wood, coal and iron in hand, and diamonds to mine",
        {**_IRON_TOOLS, "diamond_rarity": "common"},
        _IRON_ITEMS,
    ),
    "make_iron_sword": (
        "a table and a furnace next to the start, wood, coal and iron in hand, and zombies to use the sword on",
        {**_IRON_TOOLS, "spawn_zombies": 2},
        _IRON_ITEMS,
    ),
    "collect_diamond": (
        "an iron pickaxe in hand and plenty of diamonds",
        {"diamond_rarity": "very common"},
        {"iron_pickaxe": 1, "stone_pickaxe": 1, **_PICK},
    ),
}


def _crafter_env(skill: str) -> CatalogueEnv:
    offer, settings, inventory = _CRAFTER[skill]
    env = DesignedEnv(
        name=f"practice-{skill.replace('_', '-')}",
        purpose=f"Practise {skill}: {offer}.",
        config=CrafterEnvConfig(
            environment_settings=CrafterEnvironmentSettings(**settings),
            inventory_settings=CrafterInventorySettings(**inventory),
        ),
    )
    return CatalogueEnv(env=env, skills=(skill,))


CRAFTER_PRACTICE: dict[str, CatalogueEnv] = {
    s: _crafter_env(s) for s in sorted(ACHIEVEMENTS, key=lambda a: (depth(a), ACHIEVEMENTS.index(a)))
}

# (distribution_mode, maze_size, num_keys), easy to hard; each is a level Heist can generate.
_HEIST_LEVELS: tuple[tuple[str, int | None, int | None], ...] = (
    ("easy", 5, 0),
    ("easy", 5, 1),
    ("easy", 7, 1),
    ("easy", 7, 2),
    ("easy", 9, 2),
    ("easy", 9, 3),
    ("hard", 11, 3),
    ("hard", 13, None),
    ("hard", None, None),
)


def _heist_env(mode: str, maze: int | None, keys: int | None) -> CatalogueEnv:
    maze_text = f"{maze}x{maze} maze" if maze else "maze of any size"
    keys_text = "any number of keys" if keys is None else f"{keys} key{'s' if keys != 1 else ''}"
    env = DesignedEnv(
        name=f"{mode}-maze{maze or 'any'}-keys{'any' if keys is None else keys}",
        purpose=f"Steal the gem in a {maze_text} with {keys_text} ({mode} world).",
        config=HeistEnvConfig.model_validate({"distribution_mode": mode, "maze_size": maze, "num_keys": keys}),
    )
    return CatalogueEnv(env=env, skills=(HEIST_SKILL,))


HEIST_LADDER: tuple[CatalogueEnv, ...] = tuple(_heist_env(*level) for level in _HEIST_LEVELS)


def ladder(game: Game) -> tuple[CatalogueEnv, ...]:
    """Every catalogue env of a game, easy to hard."""
    return tuple(CRAFTER_PRACTICE.values()) if game == "crafter" else HEIST_LADDER


def spread(items: tuple[CatalogueEnv, ...], n: int) -> list[CatalogueEnv]:
    """``n`` items spread evenly over ``items``, first and last included (repeating when there are fewer)."""
    if not items or n <= 0:
        return []
    if n >= len(items):
        return [items[i % len(items)] for i in range(n)]
    if n == 1:
        return [items[0]]
    return [items[round(i * (len(items) - 1) / (n - 1))] for i in range(n)]
