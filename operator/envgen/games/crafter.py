"""Crafter: 22 achievements on a prerequisite graph, one practice env per achievement.

Each practice env hands out the prerequisites of its skill (items, pre-placed table/furnace/plant, a fitting biome
or denser resources) and nothing beyond them, so the agent still has to perform the skill itself; a tool's env
also offers what the tool is for (zombies for a sword, the next resource for a pickaxe), so no two practice envs
are alike. The practice envs are ordered from easy to hard.
"""

from __future__ import annotations

from typing import Any

from ..achievements import ACHIEVEMENTS, PREREQUISITES, crafter_score, depth
from ..envconfig import CrafterEnvConfig, CrafterEnvironmentSettings, CrafterInventorySettings, DesignedEnv
from .base import CatalogueEnv, ConfigModel, Game

SETTING_TEXT: dict[str, str] = {
    "environment_settings": "",
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
    "inventory_settings": "what the agent starts with",
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

RULES = (
    "natural has all biomes.",
    "Coal, iron and diamonds only appear in mountains.",
    "Trees and cows only appear in grasslands.",
    "Skeletons only live in mountain caves and shoot arrows.",
    "Zombies appear anywhere, mostly at night, and chase the agent.",
    "The agent can only drink water; grassland and mountain worlds have no water.",
    "Collecting stone needs a wood_pickaxe, iron needs a stone_pickaxe, diamonds need an iron_pickaxe.",
    "Crafting needs a nearby table; iron tools also need a nearby furnace, coal and wood.",
)
SLEEP_RULES = (
    "The agent must sleep to get wake_up.",
    "While asleep the agent cannot move; it wakes up when it has rested, at sunrise, or when a monster attacks.",
)

SKILL_WORDS = (
    *ACHIEVEMENTS,
    *sorted({w for a in ACHIEVEMENTS for w in a.split("_")[1:] if len(w) > 2}),
    "wake",
    "water",
    "tree",
    "sleep",
    "mine",
    "mining",
    "craft",
)


def gives_away(cfg: ConfigModel) -> bool:
    """True when the env hands out the end of the tech tree: an iron pickaxe, an iron sword or diamonds."""
    assert isinstance(cfg, CrafterEnvConfig)
    inv = cfg.inventory_settings
    return bool(inv.iron_pickaxe or inv.iron_sword or inv.diamond)


_TABLE = {"place_table": True}
_PICK = {"wood_pickaxe": 1}
_IRON_TOOLS = {"place_table": True, "place_furnace": True}
# a furnace costs 4 stone (Crafter's data.yaml); a stone tool costs 1 wood and 1 stone, and the extra stone lets
# the agent place some without using up the crafting material
_FURNACE_STONE = 4
_STONE_ITEMS = {"wood": 3, "stone": 5, **_PICK}
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
    "place_furnace": ("a table next to the start, stone in hand", _TABLE, {"stone": _FURNACE_STONE + 1, **_PICK}),
    "make_stone_pickaxe": (
        "a table next to the start, wood and stone in hand, and iron to mine with the new pickaxe",
        {**_TABLE, "iron_rarity": "common"},
        _STONE_ITEMS,
    ),
    "make_stone_sword": (
        "a table next to the start, wood and stone in hand, and zombies to use the sword on",
        {**_TABLE, "spawn_zombies": 2},
        _STONE_ITEMS,
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


PRACTICE: dict[str, CatalogueEnv] = {
    s: _crafter_env(s) for s in sorted(ACHIEVEMENTS, key=lambda a: (depth(a), ACHIEVEMENTS.index(a)))
}

CRAFTER = Game(
    name="crafter",
    title="Crafter",
    skills=ACHIEVEMENTS,
    skill_text="\n".join(ACHIEVEMENTS),
    num_actions=17,
    score_of=crafter_score,
    config_model=CrafterEnvConfig,
    answer_fields=("environment_settings", "inventory_settings"),
    setting_text=SETTING_TEXT,
    control="what the world looks like and what the agent starts with",
    rules=RULES,
    feedback_rules=SLEEP_RULES,
    skill_words=SKILL_WORDS,
    gives_away=gives_away,
    given_away_text="iron tools or diamonds",
    catalogue=tuple(PRACTICE.values()),
    curriculum="skills",
    prerequisites=PREREQUISITES,
    skill_noun="achievement",
)
