"""Vectorised, configurable port of Crafter's world generator.

Ported from ``crafter/worldgen.py`` of Crafter 1.8.3 (https://github.com/danijar/crafter),
Copyright (c) 2021 Danijar Hafner, MIT License.

All noise fields are computed as whole grids (one compiled loop per field) and the material/object rules are
evaluated with array masks. The cells that draw from ``world.random`` are walked in Crafter's order (x-major),
so the world's random stream is consumed exactly as in the original: with ``WorldGenSettings()`` the generated
world is identical to ``crafter.worldgen.generate_world``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import opensimplex
from crafter import constants, objects
from crafter.engine import World
from numba import njit
from opensimplex.internals import _noise3

from envgen.games import SEED_MODULUS

FloatGrid = npt.NDArray[np.float64]

COW_THRESHOLD = 0.985
ZOMBIE_THRESHOLD = 0.993
SKELETON_THRESHOLD = 0.95


@dataclass(frozen=True)
class WorldGenSettings:
    """World-generation knobs; the defaults are stock Crafter."""

    biome: str = "natural"
    tree: float = 0.8
    coal: float = 0.85
    iron: float = 0.75
    diamond: float = 0.994
    peaceful: bool = False


@njit(cache=True)
def _grid3(
    xs: FloatGrid, ys: FloatGrid, z: float, perm: npt.NDArray[np.int64], grad: npt.NDArray[np.int64]
) -> FloatGrid:  # pragma: no cover - compiled
    out = np.empty((xs.size, ys.size), dtype=np.float64)
    for i in range(xs.size):
        for j in range(ys.size):
            out[i, j] = _noise3(xs[i], ys[j], z, perm, grad)
    return out


class _Noise:
    """Crafter's ``_simplex`` helper evaluated on the whole grid at once (same float operations)."""

    def __init__(self, seed: int, width: int, height: int) -> None:
        gen = opensimplex.OpenSimplex(seed=seed)
        self._perm = gen._perm
        self._grad = gen._perm_grad_index3
        self.x = np.arange(width)
        self.y = np.arange(height)

    def field(
        self, xs: npt.NDArray[Any], ys: npt.NDArray[Any], z: float, sizes: dict[int, float], normalize: bool = True
    ) -> FloatGrid:
        value: FloatGrid | float = 0
        for size, weight in sizes.items():
            noise = _grid3(xs / size, ys / size, float(z), self._perm, self._grad)
            value = value + weight * noise
        if normalize:
            value = value / sum(sizes.values())
        assert isinstance(value, np.ndarray)
        return value

    def simple(self, z: float, size: int) -> FloatGrid:
        return self.field(self.x, self.y, z, {size: 1})


def generate_world(world: World, player: objects.Player, settings: WorldGenSettings) -> None:
    """Fill ``world`` with materials and creatures like Crafter's ``generate_world``, with ``settings`` applied."""
    random = world.random
    width, height = world.area
    noise = _Noise(random.randint(0, SEED_MODULUS), width, height)
    tunnels = _set_materials(world, player, noise, settings)
    _set_objects(world, player, tunnels, settings)


def _set_materials(world: World, player: objects.Player, noise: _Noise, cfg: WorldGenSettings) -> npt.NDArray[np.bool_]:
    x, y = noise.x[:, None], noise.y[None, :]
    start = 4 - np.sqrt((x - player.pos[0]) ** 2 + (y - player.pos[1]) ** 2)
    start = start + 2 * noise.simple(8, 3)
    start = 1 / (1 + np.exp(-start))
    water = noise.field(noise.x, noise.y, 3, {15: 1, 5: 0.15}, False) + 0.1
    water = water - 2 * start
    mountain = noise.field(noise.x, noise.y, 0, {15: 1, 5: 0.3})
    mountain = mountain - (4 * start + 0.3 * water)
    start_thres, start_material = 0.5, "grass"
    if cfg.biome == "mountain":
        mountain = np.abs(mountain) * 2
        water = water * 0.1
        start_thres, start_material = 0.6, "path"
    elif cfg.biome == "beaches":
        mountain = mountain * 0.1
        start_thres = 0.8
    elif cfg.biome == "grassland":
        water = water * 0.1
        mountain = mountain * 0.1
        start_thres = 0.6

    ids = world._mat_ids
    mat = np.full(world.area, ids["grass"], np.uint8)
    tunnels = np.zeros(world.area, bool)
    is_start = start > start_thres
    is_mountain = ~is_start & (mountain > 0.15)
    cave = is_mountain & (noise.simple(6, 7) > 0.15) & (mountain > 0.3)
    rest = is_mountain & ~cave
    horizontal = rest & (noise.field(2 * noise.x, noise.y / 5, 7, {3: 1}) > 0.4)
    rest &= ~horizontal
    vertical = rest & (noise.field(noise.x / 5, 2 * noise.y, 7, {3: 1}) > 0.4)
    rest &= ~vertical
    tunnels[horizontal | vertical] = True
    mat[cave | horizontal | vertical] = ids["path"]
    mat[is_start] = ids[start_material]

    # Ore cells: Crafter draws uniform() only where the ore's noise condition holds, in order.
    coal_ok = noise.simple(1, 8) > 0
    iron_ok = noise.simple(2, 6) > 0.4
    diamond_ok = mountain > 0.18
    lava = mountain > 0.3
    lava &= noise.simple(6, 5) > 0.35
    other = ~is_start & ~is_mountain
    sand = other & (water > 0.25) & (water <= 0.35) & (noise.simple(4, 9) > -0.2)
    water_cells = other & ~sand & (water > 0.3)
    grassland = other & ~sand & ~water_cells
    tree_ok = grassland & (noise.simple(5, 7) > 0)
    mat[sand] = ids["sand"]
    mat[water_cells] = ids["water"]

    draws_at = rest | tree_ok  # cells that may call uniform(), in x-major order
    cells = np.flatnonzero(draws_at)
    state = world.random.get_state()
    uniforms = world.random.uniform(size=3 * cells.size).tolist()
    used = 0
    flat_rest, flat_tree = rest.ravel(), tree_ok.ravel()
    flat_coal, flat_iron, flat_diamond, flat_lava = coal_ok.ravel(), iron_ok.ravel(), diamond_ok.ravel(), lava.ravel()
    flat_mat = mat.reshape(-1)
    stone, coal, iron, diamond, lava_id, tree = (ids[n] for n in ("stone", "coal", "iron", "diamond", "lava", "tree"))
    for cell in cells.tolist():
        if flat_tree[cell]:
            if uniforms[used] > cfg.tree:
                flat_mat[cell] = tree
            used += 1
            continue
        if flat_rest[cell]:
            if flat_coal[cell]:
                used += 1
                if uniforms[used - 1] > cfg.coal:
                    flat_mat[cell] = coal
                    continue
            if flat_iron[cell]:
                used += 1
                if uniforms[used - 1] > cfg.iron:
                    flat_mat[cell] = iron
                    continue
            if flat_diamond[cell]:
                used += 1
                if uniforms[used - 1] > cfg.diamond:
                    flat_mat[cell] = diamond
                    continue
            flat_mat[cell] = lava_id if flat_lava[cell] else stone
    world.random.set_state(state)
    if used:
        world.random.uniform(size=used)
    world._mat_map[:] = mat
    return tunnels


def _set_objects(world: World, player: objects.Player, tunnels: npt.NDArray[np.bool_], cfg: WorldGenSettings) -> None:
    width, height = world.area
    x, y = np.arange(width)[:, None], np.arange(height)[None, :]
    dist = np.sqrt((x - player.pos[0]) ** 2 + (y - player.pos[1]) ** 2)
    ids = world._mat_ids
    mat = world._mat_map
    walkable = np.isin(mat, [ids[m] for m in constants.walkable])
    grass = mat == ids["grass"]
    cow_ok = walkable & (dist > 3) & grass
    zombie_ok = walkable & (dist > 10)
    skeleton_ok = walkable & (mat == ids["path"]) & tunnels
    cells = np.flatnonzero(cow_ok | zombie_ok | skeleton_ok)
    state = world.random.get_state()
    uniforms = world.random.uniform(size=3 * cells.size).tolist()
    used = 0
    flat_cow, flat_zombie, flat_skeleton = cow_ok.ravel(), zombie_ok.ravel(), skeleton_ok.ravel()
    placed: list[tuple[str, tuple[int, int]]] = []
    for cell in cells.tolist():
        pos = divmod(cell, height)
        if flat_cow[cell]:
            used += 1
            if uniforms[used - 1] > COW_THRESHOLD:
                placed.append(("cow", pos))
                continue
        if flat_zombie[cell]:
            used += 1
            if uniforms[used - 1] > ZOMBIE_THRESHOLD:
                if not cfg.peaceful:
                    placed.append(("zombie", pos))
                continue
        if flat_skeleton[cell]:
            used += 1
            if uniforms[used - 1] > SKELETON_THRESHOLD and not cfg.peaceful:
                placed.append(("skeleton", pos))
    world.random.set_state(state)
    if used:
        world.random.uniform(size=used)
    for kind, pos in placed:
        world.add(make_creature(kind, world, pos, player))


def make_creature(kind: str, world: World, pos: Any, player: objects.Player) -> objects.Object:
    """A cow, zombie or skeleton at ``pos`` (zombies and skeletons hunt ``player``)."""
    if kind == "cow":
        return objects.Cow(world, pos)
    if kind == "zombie":
        return objects.Zombie(world, pos, player)
    return objects.Skeleton(world, pos, player)
