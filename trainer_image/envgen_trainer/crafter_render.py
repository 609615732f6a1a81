"""Vectorised Crafter renderer: bit-identical frames to ``crafter.Env.render``, several times faster.

Ported from ``crafter/engine.py`` and ``crafter/env.py`` of Crafter 1.8.3 (https://github.com/danijar/crafter),
Copyright (c) 2021 Danijar Hafner, MIT License.

Material tiles are precomputed per material id; one compiled loop draws them and alpha-blends the creatures with
the same float32 arithmetic as Crafter; the inventory strip is cached per inventory. Daylight, night noise
(drawn from ``world.random`` exactly like Crafter) and the sleep tint run in one compiled per-pixel loop that
repeats Crafter's float64 operations and Pillow's ``ImageEnhance.Color`` integer/float32 arithmetic (grey
``L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16``, blend ``(uint8)(grey + alpha * (value - grey))``), and
writes the frame in its final (transposed) layout.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from crafter import constants, engine, objects
from numba import njit

Frame = npt.NDArray[np.uint8]
_OUTSIDE_VALUE = 127
_ITEM_CACHE_LIMIT = 512
_NIGHT_TINT = (0.0, 16.0, 64.0)
_SLEEP_TINT = (0.0, 0.0, 16.0)


@njit(cache=True, inline="always")
def _grey(r: float, g: float, b: float) -> int:  # pragma: no cover - compiled
    """Pillow's RGB -> L conversion of three uint8 values."""
    return (int(r) * 19595 + int(g) * 38470 + int(b) * 7471 + 0x8000) >> 16


def _enhance_table() -> npt.NDArray[np.uint8]:
    """Pillow's ``ImageEnhance.Color(...).enhance(0.4)`` of a channel value given its pixel's grey, as
    ``table[grey, value]``: ``(uint8)(grey + 0.4f * (value - grey))`` in float32."""
    grey = np.arange(256, dtype=np.int64)[:, None]
    value = np.arange(256, dtype=np.int64)[None, :]
    return (grey.astype(np.float32) + np.float32(0.4) * (value - grey).astype(np.float32)).astype(np.uint8)


_ENHANCE = _enhance_table()


@njit(cache=True)
def _light_into(
    out: Frame,
    base: Frame,
    x0: int,
    y0: int,
    daylight: float,
    noise: npt.NDArray[np.float64],
    mask: npt.NDArray[np.float64],
    sleeping: bool,
) -> None:  # pragma: no cover - compiled
    """Crafter's ``_light`` (and ``_sleep``) of the local view ``base`` (x, y, rgb), written into ``out`` (y, x, rgb)
    at (x0, y0) with Crafter's float -> uint8 truncation. ``noise``/``mask`` are empty by day."""
    night_noise = noise.shape[0] > 0
    shade = 1 - daylight
    for i in range(base.shape[0]):
        for j in range(base.shape[1]):
            r, g, b = float(base[i, j, 0]), float(base[i, j, 1]), float(base[i, j, 2])
            nr, ng, nb = r, g, b
            if night_noise:
                m, n = mask[i, j], noise[i, j]
                nr = float(np.uint8((1 - m) * r + m * n))
                ng = float(np.uint8((1 - m) * g + m * n))
                nb = float(np.uint8((1 - m) * b + m * n))
            grey = _grey(nr, ng, nb)
            lr = daylight * r + shade * ((1 - 0.5) * _ENHANCE[grey, int(nr)] + 0.5 * _NIGHT_TINT[0])
            lg = daylight * g + shade * ((1 - 0.5) * _ENHANCE[grey, int(ng)] + 0.5 * _NIGHT_TINT[1])
            lb = daylight * b + shade * ((1 - 0.5) * _ENHANCE[grey, int(nb)] + 0.5 * _NIGHT_TINT[2])
            if sleeping:
                grey = _grey(float(np.uint8(lr)), float(np.uint8(lg)), float(np.uint8(lb)))
                lr = (1 - 0.5) * float(grey) + 0.5 * _SLEEP_TINT[0]
                lg = (1 - 0.5) * float(grey) + 0.5 * _SLEEP_TINT[1]
                lb = (1 - 0.5) * float(grey) + 0.5 * _SLEEP_TINT[2]
            out[y0 + j, x0 + i, 0] = np.uint8(lr)
            out[y0 + j, x0 + i, 1] = np.uint8(lg)
            out[y0 + j, x0 + i, 2] = np.uint8(lb)


@njit(cache=True)
def _view_into(
    canvas: Frame,
    mat_map: npt.NDArray[np.uint8],
    x0: int,
    y0: int,
    tiles: Frame,
    outside: int,
    cells: npt.NDArray[np.int64],
    fronts: npt.NDArray[np.float32],
    backs: npt.NDArray[np.float32],
    opaque: Frame,
    blend: npt.NDArray[np.bool_],
) -> None:  # pragma: no cover - compiled
    """Crafter's local view before lighting into ``canvas`` (x, y, rgb): each cell's material tile (``outside``
    beyond the map), and where ``cells`` names a sprite, that sprite over it with Crafter's float32 alpha blend."""
    w, h = mat_map.shape
    ux, uy = tiles.shape[1], tiles.shape[2]
    for cx in range(cells.shape[0]):
        for cy in range(cells.shape[1]):
            x, y = x0 + cx, y0 + cy
            tile = mat_map[x, y] if 0 <= x < w and 0 <= y < h else outside
            sprite = cells[cx, cy]
            for u in range(ux):
                for v in range(uy):
                    for c in range(3):
                        value = tiles[tile, u, v, c]
                        if sprite >= 0:
                            if blend[sprite]:
                                current = np.float32(value) / np.float32(255)
                                mixed = fronts[sprite, u, v, c] + backs[sprite, u, v, 0] * current
                                value = np.uint8(np.float32(255) * mixed)
                            else:
                                value = opaque[sprite, u, v, c]
                        canvas[cx * ux + u, cy * uy + v, c] = value


class _Sprites:
    """Creature textures by name, stacked for ``_view_into`` and prepared for Crafter's ``_draw_alpha`` blend
    (``alpha * rgb`` and ``1 - alpha`` in float32, as Crafter computes them)."""

    def __init__(self, textures: engine.Textures, unit: tuple[int, int]) -> None:
        self._textures, self._unit = textures, unit
        self.index: dict[str, int] = {}
        self._parts: tuple[list[npt.NDArray[Any]], ...] = ([], [], [])
        self._blend: list[bool] = []
        self.fronts = np.zeros((0, *unit, 3), np.float32)
        self.backs = np.zeros((0, *unit, 1), np.float32)
        self.opaque = np.zeros((0, *unit, 3), np.uint8)
        self.blend = np.zeros(0, np.bool_)

    def __getitem__(self, name: str) -> int:
        index = self.index.get(name)
        if index is None:
            texture = self._textures.get(name, self._unit)
            fronts, backs, opaque = self._parts
            if texture.shape[-1] == 4:
                alpha = texture[..., 3:].astype(np.float32) / 255
                fronts.append(alpha * (texture[..., :3].astype(np.float32) / 255))
                backs.append(1 - alpha)
                self._blend.append(True)
            else:
                fronts.append(np.zeros((*self._unit, 3), np.float32))
                backs.append(np.zeros((*self._unit, 1), np.float32))
                self._blend.append(False)
            opaque.append(texture[..., :3])
            self.fronts, self.backs, self.opaque = np.stack(fronts), np.stack(backs), np.stack(opaque)
            self.blend = np.array(self._blend, np.bool_)
            index = self.index[name] = len(self.index)
        return index


class FastRenderer:
    """Renders the same frame as ``crafter.Env.render()`` for a world, a player and an item view."""

    def __init__(
        self,
        world: engine.World,
        textures: engine.Textures,
        view: npt.NDArray[np.int64],
        size: npt.NDArray[np.int64],
        item_view: engine.ItemView,
    ) -> None:
        self._world = world
        self._textures = textures
        self._view = np.asarray(view)
        self._size = np.asarray(size)
        self._item_view = item_view
        self._unit = self._size // self._view
        item_rows = int(np.ceil(len(constants.items) / self._view[0]))
        self._grid = np.array([self._view[0], self._view[1] - item_rows])
        self._offset = self._grid // 2
        unit = (int(self._unit[0]), int(self._unit[1]))
        names = [world._mat_names[i] for i in range(len(world._mat_names))]
        tiles = [textures.get(name, unit)[..., :3] for name in names]
        tiles.append(np.full((*unit, 3), _OUTSIDE_VALUE, np.uint8))
        self._tiles = np.stack(tiles)
        self._outside = len(tiles) - 1
        self._sprites = _Sprites(textures, unit)
        self._cells = np.full((int(self._grid[0]), int(self._grid[1])), -1, np.int64)
        self._items: dict[tuple[int, ...], Frame] = {}
        shape = (int(self._grid[0] * unit[0]), int(self._grid[1] * unit[1]))
        xs, ys = np.meshgrid(np.linspace(-1, 1, shape[0]), np.linspace(-1, 1, shape[1]))
        self._vignette = 1 - np.exp(-0.5 * (xs**2 + ys**2) / (0.5**2)).T
        self._no_noise = np.zeros((0, 0))

    def render(self, player: objects.Player) -> Frame:
        """The observation for the current state (consumes ``world.random`` at night, as Crafter does)."""
        local = self._local_view(player)
        items = self._inventory(player.inventory)
        frame = np.zeros((int(self._size[1]), int(self._size[0]), 3), np.uint8)
        border = (self._size - self._unit * self._view) // 2
        x, y = int(border[0]), int(border[1])
        lw, lh = local.shape[:2]
        daylight = float(self._world.daylight)
        noise, mask = self._no_noise, self._no_noise
        if daylight < 0.5:
            noise = self._world.random.uniform(32, 127, local.shape[:2])
            mask = 2 * (0.5 - daylight) * self._vignette
        _light_into(frame, local, x, y, daylight, noise, mask, bool(player.sleeping))
        frame[y + lh : y + lh + items.shape[1], x : x + lw] = items.transpose(1, 0, 2)
        return frame

    def _local_view(self, player: objects.Player) -> Frame:
        """The local view before lighting: material tiles and creatures, (x, y, rgb)."""
        world, grid, unit = self._world, self._grid, self._unit
        x0, y0 = (int(v) for v in player.pos - self._offset)
        cells = self._cells
        cells.fill(-1)
        region = world._obj_map[max(x0, 0) : max(x0 + int(grid[0]), 0), max(y0, 0) : max(y0 + int(grid[1]), 0)]
        for index in region[region > 0].tolist():
            obj = world._objects[index]
            cells[int(obj.pos[0]) - x0, int(obj.pos[1]) - y0] = self._sprites[obj.texture]
        canvas = np.empty((int(grid[0] * unit[0]), int(grid[1] * unit[1]), 3), np.uint8)
        sprites = self._sprites
        _view_into(
            canvas,
            world._mat_map,
            x0,
            y0,
            self._tiles,
            self._outside,
            cells,
            sprites.fronts,
            sprites.backs,
            sprites.opaque,
            sprites.blend,
        )
        return canvas

    def _inventory(self, inventory: dict[str, int]) -> Frame:
        key = tuple(inventory.values())
        frame = self._items.get(key)
        if frame is None:
            if len(self._items) >= _ITEM_CACHE_LIMIT:
                self._items.clear()
            frame = self._items[key] = self._item_view(inventory, self._unit)
        return frame
