"""Environment configurations: the one typed model the LLM's JSON schema, the designers and the trainer share.

Crafter follows EnvGen's schema (``environment_settings`` + ``inventory_settings``) with the knobs the original
code had but never offered the LLM (mobs near the start, peaceful mode, pre-placed objects), plus
``world_settings`` that only the engine sets (episode length, world area, spawn-rate scales). The default
``CrafterEnvConfig()`` is stock Crafter. Semantic checks return named findings, never raise.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, PlainValidator, SerializeAsAny

from .models import StrictModel

Biome = Literal["natural", "grassland", "mountain", "beaches"]
Rarity = Literal["very common", "common", "rare"]
Resource = Literal["tree", "coal", "iron", "diamond"]

# Spawn thresholds: a cell gets the resource when uniform() > threshold. None = stock Crafter.
RARITY_THRESHOLDS: dict[Resource, dict[Rarity, float]] = {
    "coal": {"very common": 0.75, "common": 0.85, "rare": 0.95},
    "iron": {"very common": 0.65, "common": 0.75, "rare": 0.85},
    "diamond": {"very common": 0.85, "common": 0.9, "rare": 0.994},
    "tree": {"very common": 0.7, "common": 0.8, "rare": 0.9},
}
STOCK_THRESHOLDS: dict[Resource, float] = {"tree": 0.8, "coal": 0.85, "iron": 0.75, "diamond": 0.994}

Material = Annotated[int, Field(ge=0, le=9)]
Tool = Annotated[int, Field(ge=0, le=1)]
MobCount = Annotated[int, Field(ge=0, le=9)]
Percent = Annotated[int, Field(ge=0, le=1000)]

MATERIALS: tuple[str, ...] = ("sapling", "wood", "stone", "coal", "iron", "diamond")
TOOLS: tuple[str, ...] = (
    "wood_pickaxe",
    "stone_pickaxe",
    "iron_pickaxe",
    "wood_sword",
    "stone_sword",
    "iron_sword",
)


class GameConfig(StrictModel):
    """The base of every game's env config: ``game`` names the game (``envgen.games``) and selects the model.

    A game's model narrows ``game`` to its name (``Literal["crafter"] = "crafter"``), so its default instance is
    the unmodified game.
    """

    game: str = ""

    def findings(self) -> list[Finding]:
        """World-logic checks of the config (none unless the game has some)."""
        return []


class CrafterEnvironmentSettings(StrictModel):
    """World knobs the designer may set. Rarity None keeps stock Crafter's density."""

    target_biome: Biome = "natural"
    tree_rarity: Rarity | None = None
    coal_rarity: Rarity | None = None
    iron_rarity: Rarity | None = None
    diamond_rarity: Rarity | None = None
    spawn_cows: MobCount = 0
    spawn_zombies: MobCount = 0
    spawn_skeletons: MobCount = 0
    peaceful_mode: bool = False
    place_table: bool = False
    place_furnace: bool = False
    place_plant: bool = False

    def threshold(self, resource: Resource) -> float:
        """Spawn threshold for a resource (lower means more of it)."""
        rarity = getattr(self, f"{resource}_rarity")
        return STOCK_THRESHOLDS[resource] if rarity is None else RARITY_THRESHOLDS[resource][rarity]


class CrafterInventorySettings(StrictModel):
    """Starting inventory: materials 0-9, tools 0-1."""

    sapling: Material = 0
    wood: Material = 0
    stone: Material = 0
    coal: Material = 0
    iron: Material = 0
    diamond: Material = 0
    wood_pickaxe: Tool = 0
    stone_pickaxe: Tool = 0
    iron_pickaxe: Tool = 0
    wood_sword: Tool = 0
    stone_sword: Tool = 0
    iron_sword: Tool = 0

    def items(self) -> dict[str, int]:
        """Non-zero items only."""
        return {k: v for k, v in self.model_dump().items() if v}


class CrafterWorldSettings(StrictModel):
    """Set by the engine, not offered to the designer. Defaults are stock Crafter."""

    length: Annotated[int, Field(ge=16, le=100_000)] = 10_000
    area: Annotated[int, Field(ge=16, le=128)] = 64
    zombie_spawn_percent: Percent = 100
    skeleton_spawn_percent: Percent = 100
    cow_spawn_percent: Percent = 100


class CrafterEnvConfig(GameConfig):
    """One Crafter environment. ``CrafterEnvConfig()`` is stock Crafter."""

    game: Literal["crafter"] = "crafter"
    environment_settings: CrafterEnvironmentSettings = Field(default_factory=CrafterEnvironmentSettings)
    inventory_settings: CrafterInventorySettings = Field(default_factory=CrafterInventorySettings)
    world_settings: CrafterWorldSettings = Field(default_factory=CrafterWorldSettings)

    def findings(self) -> list[Finding]:
        return check_crafter(self)


HeistMode = Literal["easy", "hard", "memory"]
WORLD_DIM: dict[HeistMode, int] = {"easy": 9, "hard": 13, "memory": 23}


class HeistEnvConfig(GameConfig):
    """One Heist environment: a distribution mode and, optionally, the maze size and key count to select."""

    game: Literal["heist"] = "heist"
    distribution_mode: HeistMode = "easy"
    num_keys: Annotated[int, Field(ge=0, le=3)] | None = None
    maze_size: Literal[5, 7, 9, 11, 13, 15, 17, 19, 21, 23] | None = None

    def is_stock(self) -> bool:
        """True when the config is the standard distribution of its mode."""
        return self.num_keys is None and self.maze_size is None

    def findings(self) -> list[Finding]:
        return check_heist(self)


def _registered_config(value: Any) -> GameConfig:
    from .games.base import registered_config  # the registry imports this module: looked up when validating

    return registered_config(value)


EnvConfig = Annotated[SerializeAsAny[GameConfig], PlainValidator(_registered_config)]
"""Any registered game's env config, told apart by its ``game`` field."""


class DesignedEnv(StrictModel):
    """An environment as a designer returns it: a name, the purpose it serves, and its config."""

    name: Annotated[str, Field(min_length=1, max_length=80)]
    purpose: Annotated[str, Field(max_length=600)] = ""
    config: EnvConfig


class Finding(StrictModel):
    """A semantic problem in a config. ``error`` makes the env unusable; ``warning`` makes it weak."""

    code: str
    severity: Literal["error", "warning"]
    message: str


def check_crafter(cfg: CrafterEnvConfig) -> list[Finding]:
    """World-logic checks for a Crafter config (what the LLM cannot see from the schema alone)."""
    env, inv = cfg.environment_settings, cfg.inventory_settings
    found: list[Finding] = []

    def add(code: str, severity: Literal["error", "warning"], message: str) -> None:
        found.append(Finding(code=code, severity=severity, message=message))

    no_mountain = env.target_biome in ("grassland", "beaches")
    if env.target_biome in ("grassland", "mountain"):
        add(
            "no-water",
            "warning",
            f"biome {env.target_biome} has no water: collect_drink is impossible and thirst will kill the agent",
        )
    if no_mountain:
        for res in ("coal", "iron", "diamond"):
            if getattr(env, f"{res}_rarity") is not None:
                add(
                    f"{res}-without-mountains",
                    "warning",
                    f"{res}_rarity is set but biome {env.target_biome} has no mountains, so no {res} spawns",
                )
        if not (inv.wood_pickaxe or inv.stone):
            add(
                "no-stone-source",
                "warning",
                f"biome {env.target_biome} has no stone and the inventory has none: stone skills are impossible",
            )
    if env.target_biome == "mountain" and env.tree_rarity == "rare" and not inv.wood:
        add("scarce-wood", "warning", "mountain biome with rare trees and no starting wood: crafting stalls")
    if env.iron_rarity is not None and not (inv.stone_pickaxe or inv.wood_pickaxe or inv.stone or inv.wood):
        add(
            "iron-without-pickaxe-path",
            "warning",
            "iron_rarity is set but the agent has no way to a stone pickaxe (no wood, stone or pickaxe in hand)",
        )
    if env.diamond_rarity is not None and no_mountain:
        add(
            "diamond-in-biome-without-diamonds",
            "error",
            f"diamond_rarity is set but diamonds never spawn in biome {env.target_biome}",
        )
    if env.peaceful_mode and env.spawn_zombies:
        add("peaceful-with-zombies", "warning", "peaceful_mode removes zombies, spawn_zombies has no lasting effect")
    if env.peaceful_mode and env.spawn_skeletons:
        add(
            "peaceful-with-skeletons",
            "warning",
            "peaceful_mode removes skeletons, spawn_skeletons has no lasting effect",
        )
    return found


def check_heist(cfg: HeistEnvConfig) -> list[Finding]:
    """Checks for a Heist config: the maze must fit in the mode's world."""
    found: list[Finding] = []
    if cfg.maze_size is not None and cfg.maze_size > WORLD_DIM[cfg.distribution_mode]:
        found.append(
            Finding(
                code="maze-larger-than-world",
                severity="error",
                message=(
                    f"maze_size {cfg.maze_size} does not fit distribution_mode {cfg.distribution_mode} "
                    f"(world {WORLD_DIM[cfg.distribution_mode]}x{WORLD_DIM[cfg.distribution_mode]})"
                ),
            )
        )
    if cfg.maze_size is not None and cfg.num_keys is not None:
        difficulty = (cfg.maze_size - 5) // 2
        if cfg.distribution_mode != "memory" and not difficulty <= cfg.num_keys <= min(3, difficulty + 1):
            found.append(
                Finding(
                    code="no-such-levels",
                    severity="error",
                    message=(
                        f"Heist levels with maze_size {cfg.maze_size} have {difficulty} or "
                        f"{min(3, difficulty + 1)} keys, not {cfg.num_keys}"
                    ),
                )
            )
    return found


def check(cfg: GameConfig) -> list[Finding]:
    """Semantic findings for any env config."""
    return cfg.findings()
