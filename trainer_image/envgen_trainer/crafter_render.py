"""Vectorised Crafter renderer: bit-identical frames to ``crafter.Env.render``, several times faster.

Ported from ``crafter/engine.py`` and ``crafter/env.py`` of Crafter 1.8.3 (https://github.com/danijar/crafter),
Copyright (c) 2021 Danijar Hafner, MIT License.

Material tiles are precomputed per material id and drawn with one gather per frame; creatures are alpha-blended
with the same float32 arithmetic as Crafter; the inventory strip is cached per inventory; daylight, night noise
(which draws from ``world.random`` exactly like Crafter) and the sleep tint use the same operations.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from crafter import constants, engine, objects
from PIL import Image, ImageEnhance

Frame = npt.NDArray[np.uint8]
_OUTSIDE_VALUE = 127
_ITEM_CACHE_LIMIT = 512


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

    def render(self, player: objects.Player) -> Frame:
        """The observation for the current state (consumes ``world.random`` at night, as Crafter does)."""
        local = self._local_view(player)
        items = self._inventory(player.inventory)
        canvas = np.zeros((*tuple(self._size), 3), np.uint8)
        border = (self._size - self._unit * self._view) // 2
        x, y = int(border[0]), int(border[1])
        lw, lh = local.shape[:2]
        canvas[x : x + lw, y : y + lh] = local
        canvas[x : x + lw, y + lh : y + lh + items.shape[1]] = items
        return canvas.transpose((1, 0, 2))

    def _local_view(self, player: objects.Player) -> npt.NDArray[np.floating]:
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
        light = self._light(canvas, world.daylight)
        if player.sleeping:
            light = self._sleep(light)
        return light

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

    def _light(self, canvas: Frame, daylight: float) -> npt.NDArray[np.floating]:
        night: npt.NDArray[Any] = canvas
        if daylight < 0.5:
            amount = 2 * (0.5 - daylight)
            noise = self._world.random.uniform(32, 127, canvas.shape[:2])[..., None]
            mask = amount * self._vignette[..., None]
            night = (1 - mask) * canvas + mask * noise
        night = np.array(ImageEnhance.Color(Image.fromarray(night.astype(np.uint8))).enhance(0.4))
        night = (1 - 0.5) * night + 0.5 * np.array((0, 16, 64))
        return daylight * canvas + (1 - daylight) * night

    @staticmethod
    def _sleep(canvas: npt.NDArray[np.floating]) -> npt.NDArray[np.floating]:
        gray = np.array(ImageEnhance.Color(Image.fromarray(canvas.astype(np.uint8))).enhance(0.0))
        return (1 - 0.5) * gray + 0.5 * np.array((0, 0, 16))
