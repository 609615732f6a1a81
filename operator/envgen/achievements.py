"""Crafter's 22 achievements, their prerequisite graph, and the Crafter score."""

from __future__ import annotations

import math
from collections.abc import Mapping

ACHIEVEMENTS: tuple[str, ...] = (
    "collect_coal",
    "collect_diamond",
    "collect_drink",
    "collect_iron",
    "collect_sapling",
    "collect_stone",
    "collect_wood",
    "defeat_skeleton",
    "defeat_zombie",
    "eat_cow",
    "eat_plant",
    "make_iron_pickaxe",
    "make_iron_sword",
    "make_stone_pickaxe",
    "make_stone_sword",
    "make_wood_pickaxe",
    "make_wood_sword",
    "place_furnace",
    "place_plant",
    "place_stone",
    "place_table",
    "wake_up",
)

# Direct prerequisites: what must be achievable before each achievement can be unlocked (Crafter's data.yaml).
PREREQUISITES: Mapping[str, tuple[str, ...]] = {
    "collect_wood": (),
    "collect_sapling": (),
    "collect_drink": (),
    "eat_cow": (),
    "defeat_zombie": (),
    "defeat_skeleton": (),
    "wake_up": (),
    "place_table": ("collect_wood",),
    "make_wood_pickaxe": ("place_table",),
    "make_wood_sword": ("place_table",),
    "collect_stone": ("make_wood_pickaxe",),
    "collect_coal": ("make_wood_pickaxe",),
    "place_stone": ("collect_stone",),
    "place_furnace": ("collect_stone", "place_table"),
    "make_stone_pickaxe": ("collect_stone", "place_table"),
    "make_stone_sword": ("collect_stone", "place_table"),
    "collect_iron": ("make_stone_pickaxe",),
    "make_iron_pickaxe": ("collect_iron", "collect_coal", "place_furnace"),
    "make_iron_sword": ("collect_iron", "collect_coal", "place_furnace"),
    "collect_diamond": ("make_iron_pickaxe",),
    "place_plant": ("collect_sapling",),
    "eat_plant": ("place_plant",),
}


def depth(achievement: str) -> int:
    """Length of the longest prerequisite chain below an achievement (0 for independent ones)."""
    parents = PREREQUISITES[achievement]
    return 0 if not parents else 1 + max(depth(p) for p in parents)


def crafter_score(success_percent: Mapping[str, float]) -> float:
    """Crafter score in percent: exp(mean_i ln(1 + s_i)) - 1 over the 22 success rates s_i (percent, 0-100).

    Missing achievements count as 0 % success.
    """
    total = sum(math.log(1.0 + float(success_percent.get(name, 0.0))) for name in ACHIEVEMENTS)
    return math.exp(total / len(ACHIEVEMENTS)) - 1.0
