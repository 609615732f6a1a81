"""Crafter: 22 achievements on a prerequisite graph, one practice env per achievement.

Each practice env hands out the prerequisites of its skill (items, pre-placed table/furnace/plant, a fitting biome
or denser resources) and nothing beyond them, so the agent still has to perform the skill itself; a tool's env
also offers what the tool is for (zombies for a sword, the next resource for a pickaxe), so no two practice envs
are alike. The practice envs are ordered from easy to hard.

Every practice env keeps what the agent needs to live through a day and a night: water, grass with cows, and
room to sleep. Ore practice therefore happens in the standard world (its mountains lie about 8 steps from the
start) rather than in the mountain biome, which has no water: there episodes ended by thirst after about 300 steps,
before the first night, and an agent that practised there lost sleep in the real game.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from ..achievements import ACHIEVEMENTS, PREREQUISITES, crafter_score, depth
from ..envconfig import (
    MATERIALS,
    TOOLS,
    CrafterEnvConfig,
    CrafterEnvironmentSettings,
    CrafterInventorySettings,
    DesignedEnv,
)
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
    "defeat_zombie": ("a zombie next to the start and a wood sword", {"spawn_zombies": 1}, {"wood_sword": 1}),
    "defeat_skeleton": (
        "a skeleton next to the start, a stone sword and a pickaxe to dig",
        {"spawn_skeletons": 1},
        {"stone_sword": 1, **_PICK},
    ),
    "wake_up": ("a peaceful world without monsters to sleep in", {"peaceful_mode": True}, {}),
    "place_table": ("wood in hand and many trees", {"tree_rarity": "very common"}, {"wood": 3}),
    "place_plant": ("saplings in hand", {}, {"sapling": 3}),
    "make_wood_pickaxe": ("a table next to the start and wood in hand", _TABLE, {"wood": 3}),
    "make_wood_sword": (
        "a table next to the start, wood in hand and a zombie to use the sword on",
        {**_TABLE, "spawn_zombies": 1},
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
        "a table next to the start, wood and stone in hand, and a zombie to use the sword on",
        {**_TABLE, "spawn_zombies": 1},
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
        "a table and a furnace next to the start, wood, coal and iron in hand, and a zombie to use the sword on",
        {**_IRON_TOOLS, "spawn_zombies": 1},
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

# ---- earn-it practice (a reverse curriculum) ------------------------------------------------------------------
# A hand-out (an inventory item or a pre-placed object) and the achievement that earns it in the real game.
EARNED_BY: dict[str, str] = {
    "place_table": "place_table",
    "place_furnace": "place_furnace",
    "place_plant": "place_plant",
    **{m: f"collect_{m}" for m in MATERIALS},
    **{t: f"make_{t}" for t in TOOLS},
}


@dataclass(frozen=True)
class _Handouts:
    """What a practice env gives: pre-placed objects, inventory and the layout (biome, rarities, mobs)."""

    settings: dict[str, Any]
    inventory: dict[str, int]

    def items(self) -> list[str]:
        """The hand-outs, the one earned closest to the skill (the deepest achievement) first."""
        given = [k for k in ("place_table", "place_furnace", "place_plant") if self.settings.get(k)]
        given += list(self.inventory)
        return sorted(given, key=lambda h: (-depth(EARNED_BY[h]), ACHIEVEMENTS.index(EARNED_BY[h])))

    def withdraw(self, item: str) -> _Handouts:
        """Without ``item``, and with what the practice env of earning it gives instead (its objects and layout fill
        unset knobs, not its creatures; materials add up, at most 9): one step earlier in the chain. The extra
        monsters go with the first withdrawal: while the agent earns a chain, a zombie spawned beside the start is
        a threat it cannot answer yet (random play died within about 35 steps), so it meets the real game's
        monsters instead."""
        settings = {k: v for k, v in self.settings.items() if k != item}
        inventory = {k: v for k, v in self.inventory.items() if k != item}
        _, earn_settings, earn_inventory = _CRAFTER[EARNED_BY[item]]
        for key, value in earn_settings.items():
            if not key.startswith("spawn_"):
                settings.setdefault(key, value)
        for key, amount in earn_inventory.items():
            inventory[key] = min(9, inventory.get(key, 0) + amount) if key in MATERIALS else 1
        settings.pop("spawn_zombies", None)
        settings.pop("spawn_skeletons", None)
        return _Handouts(settings, inventory)


@cache
def earn_ladder(skill: str) -> tuple[CatalogueEnv, ...]:
    """A skill's practice envs from its catalogue env (level 0) to nothing handed out (the real game with a denser
    layout). Each level withdraws the hand-out earned closest to the skill and gives instead what earning it needs
    (the pickaxe of the stone env becomes a table and wood), so every level adds one earlier step of the chain.
    Built once per skill (the designers read it for every skill of every past cycle)."""
    _, settings, inventory = _CRAFTER[skill]
    state, withdrawn = _Handouts(dict(settings), dict(inventory)), list[str]()
    ladder, given = [PRACTICE[skill]], state.items()
    while given:
        state, withdrawn = state.withdraw(given[0]), [*withdrawn, given[0]]
        given = state.items()
        env = DesignedEnv(
            name=f"practice-{skill.replace('_', '-')}-earn{len(withdrawn)}",
            purpose=(
                f"Practise {skill} the way the real game asks: earn {', '.join(withdrawn)} in the world first"
                + (f"; given {', '.join(given)}." if given else "; nothing is handed out.")
            ),
            config=CrafterEnvConfig(
                environment_settings=CrafterEnvironmentSettings(**state.settings),
                inventory_settings=CrafterInventorySettings(**state.inventory),
            ),
        )
        ladder.append(CatalogueEnv(env=env, skills=(skill,)))
    return tuple(ladder)


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
    earn_ladder=earn_ladder,
)
