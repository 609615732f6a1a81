"""A configurable Crafter: ``crafter.Env`` subclass driven by a ``CrafterEnvConfig``, no fork, no patched globals.

``reset`` and ``_balance_chunk``/``_balance_object`` follow Crafter 1.8.3's ``env.py``
(https://github.com/danijar/crafter), Copyright (c) 2021 Danijar Hafner, MIT License.

With ``CrafterEnvConfig()`` the worlds (materials, creatures, first observation) are identical to
``crafter.Env`` for the same seed, and every frame is bit-identical to Crafter's renderer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import crafter
import numpy as np
import numpy.typing as npt
from crafter import constants, objects

from envgen.envconfig import CrafterEnvConfig
from envgen.games import SEED_MODULUS

from .crafter_render import FastRenderer, Frame
from .crafter_worldgen import WorldGenSettings, generate_world, make_creature

PLANT_NEARLY_RIPE = 295  # a pre-placed plant is ripe a few steps after reset
MOB_TRIES = 100
# Cells around the player, nearest first (Crafter's L1 distance), for pre-placed table/furnace/plant.
_NEAR_OFFSETS = sorted(
    ((dx, dy) for dx in range(-3, 4) for dy in range(-3, 4) if (dx, dy) != (0, 0)),
    key=lambda d: (abs(d[0]) + abs(d[1]), d),
)


def _position(obj: Any) -> tuple[int, int]:
    return int(obj.pos[0]), int(obj.pos[1])


def worldgen_settings(config: CrafterEnvConfig) -> WorldGenSettings:
    """The world-generation knobs of a config (rarity -> spawn threshold, biome, peaceful)."""
    env = config.environment_settings
    return WorldGenSettings(
        biome=env.target_biome,
        tree=env.threshold("tree"),
        coal=env.threshold("coal"),
        iron=env.threshold("iron"),
        diamond=env.threshold("diamond"),
        peaceful=env.peaceful_mode,
    )


class ConfigurableCrafter(crafter.Env):
    """Crafter with EnvGen's knobs: biome, rarities, inventory, extra mobs, peaceful, pre-placed objects,
    episode length, area and spawn-rate percents. Uses the fast renderer; the old gym API of ``crafter.Env``.

    Pre-placed table/furnace/plant are part of the world, not the agent's doing: they credit no achievement.
    ``semantic=False`` leaves ``info["semantic"]`` (the whole map with creatures, which the trainer never reads) out
    of every step's info; everything else is unchanged.
    """

    _episode: int  # Crafter's episode counter: episode k's world is seeded from (seed, k)

    def __init__(self, config: CrafterEnvConfig | None = None, seed: int | None = None, semantic: bool = True) -> None:
        self.config = config or CrafterEnvConfig()
        self._semantic = semantic
        world = self.config.world_settings
        super().__init__(area=(world.area, world.area), length=world.length, seed=seed)
        env = self.config.environment_settings
        self._gen = worldgen_settings(self.config)
        self._inventory = self.config.inventory_settings.items()
        self._spawn_scale = {
            objects.Zombie: 0.0 if env.peaceful_mode else world.zombie_spawn_percent / 100,
            objects.Skeleton: 0.0 if env.peaceful_mode else world.skeleton_spawn_percent / 100,
            objects.Cow: world.cow_spawn_percent / 100,
        }
        self._renderer = FastRenderer(self._world, self._textures, self._view, self._size, self._item_view)

    def reset(self) -> Frame:
        """Crafter's reset with the config's world generator, inventory, mobs and pre-placed objects."""
        center = (self._world.area[0] // 2, self._world.area[1] // 2)
        self._episode += 1
        self._step = 0
        self._world.reset(seed=hash((self._seed, self._episode)) % SEED_MODULUS)
        self._update_time()
        self._player = objects.Player(self._world, center)
        for item, amount in self._inventory.items():
            self._player.inventory[item] = amount
        self._last_health = self._player.health
        self._world.add(self._player)
        self._unlocked: set[str] = set()
        generate_world(self._world, self._player, self._gen)
        self._add_start_extras()
        return self._obs()

    def follow(self, other: ConfigurableCrafter) -> None:
        """Make this env's next reset start the episode after ``other``'s current one (both built with the same
        config and seed): a spare env generates the next world while ``other`` is still playing."""
        self._episode = other._episode

    def step(self, action: int) -> tuple[Frame, float, bool, dict[str, Any]]:
        """Crafter's step, with the "objects near the player" filter computed for all objects at once.

        Only the player moves the player and no creature moves another, so measuring the distances after
        the player's update gives the same set, in the same order, as Crafter's one-by-one check.
        """
        self._step += 1
        self._update_time()
        self._player.action = constants.actions[action]
        snapshot = self._world.objects
        player, others = snapshot[0], snapshot[1:]
        player.update()
        if others:
            positions = np.array([obj.pos for obj in others])
            near = np.abs(positions - player.pos).sum(axis=1) < 2 * max(self._view)
            for obj, is_near in zip(others, near.tolist(), strict=True):
                if is_near:
                    obj.update()
        if self._step % 10 == 0:
            self._balance()
        obs = self._obs()
        reward = (self._player.health - self._last_health) / 10
        self._last_health = self._player.health
        unlocked = {
            name for name, count in self._player.achievements.items() if count > 0 and name not in self._unlocked
        }
        if unlocked:
            self._unlocked |= unlocked
            reward += 1.0
        dead = self._player.health <= 0
        over = self._length and self._step >= self._length
        info = {
            "inventory": self._player.inventory.copy(),
            "achievements": self._player.achievements.copy(),
            "discount": 1 - float(dead),
            "player_pos": self._player.pos,
            "reward": reward,
        }
        if self._semantic:
            info["semantic"] = self._sem_view()
        if not self._reward:
            reward = 0.0
        return obs, reward, bool(dead or over), info

    def render(self, size: Any = None) -> Frame:
        """The observation; the fast renderer for the native size, Crafter's renderer otherwise."""
        if size is None or tuple(np.broadcast_to(size, 2)) == tuple(self._size):
            return self._renderer.render(self._player)
        return super().render(size)

    # ---- start-of-episode extras -----------------------------------------------------------------------
    def _add_start_extras(self) -> None:
        env = self.config.environment_settings
        world = self._world
        for kind, count in (("cow", env.spawn_cows), ("zombie", env.spawn_zombies), ("skeleton", env.spawn_skeletons)):
            for _ in range(count):
                self._spawn_near(kind)
        for name, wanted in (("table", env.place_table), ("furnace", env.place_furnace)):
            if wanted:
                pos = self._free_near(("grass", "sand", "path"))
                if pos is not None:
                    world[pos] = name
        if env.place_plant:
            pos = self._free_near(("grass",))
            if pos is not None:
                plant = objects.Plant(world, pos)
                plant.grown = PLANT_NEARLY_RIPE
                world.add(plant)

    def _free_near(self, materials: tuple[str, ...]) -> tuple[int, int] | None:
        px, py = (int(v) for v in self._player.pos)
        for dx, dy in _NEAR_OFFSETS:
            material, obj = self._world[(px + dx, py + dy)]
            if material in materials and obj is None:
                return px + dx, py + dy
        return None

    def _spawn_near(self, kind: str) -> None:
        """Put one creature on a free walkable cell within 5x4 of the player, at distance >= 3."""
        world, player = self._world, self._player
        for _ in range(MOB_TRIES):
            offset = np.array((world.random.randint(-5, 6), world.random.randint(-4, 5)))
            pos = player.pos + offset
            material, obj = world[pos]
            if obj is None and material in constants.walkable and np.abs(offset).sum() >= 3:
                world.add(make_creature(kind, world, pos, player))
                return

    # ---- creature balancing ----------------------------------------------------------------------------
    def _balance(self) -> None:
        """Crafter's balancing of every chunk, in Crafter's chunk order. Balancing moves no material, so each
        chunk's grass and path cells are counted up front, from one summed-area table per material."""
        world = self._world
        tables = {}
        for material in ("grass", "path"):
            table = np.zeros((world.area[0] + 1, world.area[1] + 1), np.int64)
            table[1:, 1:] = (world._mat_map == world._mat_ids[material]).cumsum(0).cumsum(1)
            tables[material] = table
        for chunk, objs in world.chunks.items():
            xmin, xmax, ymin, ymax = chunk
            space = {m: int(t[xmax, ymax] - t[xmin, ymax] - t[xmax, ymin] + t[xmin, ymin]) for m, t in tables.items()}
            self._balance_chunk(chunk, objs, space)

    def _balance_chunk(self, chunk: tuple[int, int, int, int], objs: set[Any], space: dict[str, int]) -> None:
        light = self._world.daylight
        zs, ss, cs = (self._spawn_scale[c] for c in (objects.Zombie, objects.Skeleton, objects.Cow))
        groups: dict[type, list[Any]] = {objects.Zombie: [], objects.Skeleton: [], objects.Cow: []}
        for obj in objs:
            group = groups.get(type(obj))
            if group is not None:
                group.append(obj)
        grass, path = space["grass"], space["path"]
        self._balance_object(
            chunk,
            groups[objects.Zombie],
            "grass",
            6,
            0,
            0.3,
            0.4,
            lambda pos: objects.Zombie(self._world, pos, self._player),
            ((0 if grass < 50 else 3.5 - 3 * light) * zs, (3.5 - 3 * light) * zs),
        )
        self._balance_object(
            chunk,
            groups[objects.Skeleton],
            "path",
            7,
            7,
            0.1,
            0.1,
            lambda pos: objects.Skeleton(self._world, pos, self._player),
            ((0 if path < 6 else 1) * ss, 2 * ss),
        )
        self._balance_object(
            chunk,
            groups[objects.Cow],
            "grass",
            5,
            5,
            0.01,
            0.1,
            lambda pos: objects.Cow(self._world, pos),
            ((0 if grass < 30 else 1) * cs, (1.5 + light) * cs),
        )

    def _balance_object(
        self,
        chunk: tuple[int, int, int, int],
        creatures: list[Any],
        material: str,
        span_dist: float,
        despan_dist: float,
        spawn_prob: float,
        despawn_prob: float,
        ctor: Callable[[npt.NDArray[np.int64]], Any],
        target: tuple[float, float],
    ) -> None:
        """Crafter's ``_balance_object`` with the creatures sorted by position, so episodes are replayable."""
        xmin, xmax, ymin, ymax = chunk
        random = self._world.random
        creatures = sorted(creatures, key=_position)
        target_min, target_max = target
        if len(creatures) < int(target_min) and random.uniform() < spawn_prob:
            mask = self._world.mask(*chunk, material)
            xs = np.tile(np.arange(xmin, xmax)[:, None], [1, ymax - ymin])
            ys = np.tile(np.arange(ymin, ymax)[None, :], [xmax - xmin, 1])
            xs, ys = xs[mask], ys[mask]
            i = random.randint(0, len(xs))
            pos = np.array((xs[i], ys[i]))
            empty = self._world[pos][1] is None
            away = self._player.distance(pos) >= span_dist
            if empty and away:
                self._world.add(ctor(pos))
        elif len(creatures) > int(target_max) and random.uniform() < despawn_prob:
            obj = creatures[random.randint(0, len(creatures))]
            away = self._player.distance(obj.pos) >= despan_dist
            if away:
                self._world.remove(obj)
