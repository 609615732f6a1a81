"""Vectorised Crafter renderer: bit-identical frames to ``crafter.Env.render``, several times faster.

Ported from ``crafter/engine.py`` and ``crafter/env.py`` of Crafter 1.8.3 (https://github.com/danijar/crafter),
Copyright (c) 2021 Danijar Hafner, MIT License.

Material tiles are precomputed per material id and drawn with one gather per frame; creatures are alpha-blended
with the same float32 arithmetic as Crafter; the inventory strip is cached per inventory. Daylight, night noise
(drawn from ``world.random`` exactly like Crafter) and the sleep tint run in one compiled per-pixel loop that
repeats Crafter's float64 operations and Pillow's ``ImageEnhance.Color`` integer/float32 arithmetic (grey
``L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16``, blend ``(uint8)(grey + alpha * (value - grey))``), and
writes the frame in its final (transposed) layout.
"""

from __future__ import annotations

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


class _Sprite:
    """A creature texture prepared for Crafter's ``_draw_alpha`` blend."""

    def __init__(self, texture: npt.NDArray[np.uint8]) -> None:
        if texture.shape[-1] == 4:
            alpha = texture[..., 3:].astype(np.float32) / 255
            rgb = texture[..., :3].astype(np.float32) / 255
            self.front: npt.NDArray[np.float32] | None = alpha * rgb
            self.back: npt.NDArray[np.float32] | None = 1 - alpha
            self.opaque = texture[..., :3]
        else:
            self.front = self.back = None
            self.opaque = texture

    def draw(self, canvas: Frame, x: int, y: int) -> None:
        w, h = self.opaque.shape[:2]
        if self.front is None or self.back is None:
            canvas[x : x + w, y : y + h] = self.opaque
            return
        current = canvas[x : x + w, y : y + h].astype(np.float32) / 255
        blended = self.front + self.back * current
        canvas[x : x + w, y : y + h] = (255 * blended).astype(np.uint8)


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
        self._sprites: dict[str, _Sprite] = {}
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
        x0, y0 = player.pos - self._offset
        xs = np.arange(x0, x0 + grid[0])
        ys = np.arange(y0, y0 + grid[1])
        inside = ((xs >= 0) & (xs < world.area[0]))[:, None] & ((ys >= 0) & (ys < world.area[1]))[None, :]
        ids = world._mat_map[np.clip(xs, 0, world.area[0] - 1)[:, None], np.clip(ys, 0, world.area[1] - 1)[None, :]]
        ids = np.where(inside, ids, self._outside)
        canvas = self._tiles[ids].transpose(0, 2, 1, 3, 4).reshape(grid[0] * unit[0], grid[1] * unit[1], 3)
        cx0, cy0 = max(int(x0), 0), max(int(y0), 0)
        region = world._obj_map[cx0 : max(int(x0 + grid[0]), 0), cy0 : max(int(y0 + grid[1]), 0)]
        for index in region[region > 0].tolist():
            obj = world._objects[index]
            px, py = obj.pos - (x0, y0)
            self._sprite(obj.texture).draw(canvas, int(px * unit[0]), int(py * unit[1]))
        return canvas

    def _sprite(self, name: str) -> _Sprite:
        sprite = self._sprites.get(name)
        if sprite is None:
            sprite = self._sprites[name] = _Sprite(self._textures.get(name, self._unit))
        return sprite

    def _inventory(self, inventory: dict[str, int]) -> Frame:
        key = tuple(inventory.values())
        frame = self._items.get(key)
        if frame is None:
            if len(self._items) >= _ITEM_CACHE_LIMIT:
                self._items.clear()
            frame = self._items[key] = self._item_view(inventory, self._unit)
        return frame
