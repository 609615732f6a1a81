"""A catalogue of Procgen Heist levels: which level seed has how many keys and which maze size.

Procgen cannot be told the maze size or key count, but a level's serialized state holds both: the tail of
``env.get_state()`` is ``[grid size, grid..., num_keys, world_dim, len(has_keys), has_keys..., end marker]``
(int32). The maze size is the extent of the non-wall cells of the grid. The catalogue keeps each level's
initial state, so a config runs as "set_state to a matching level" at every reset. It is cached on disk under
``$ENVGEN_CACHE/heist-catalogue/`` (default ``~/.cache/envgen``) and written atomically.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from envgen.atomic import atomic_file

WALL = 51
SCAN_BATCH = 64
SCAN_RAND_SEED = 12345  # level seeds drawn for the catalogue are the same on every machine
MIN_MATCHES = 16
MAX_LEVELS = 4096


@dataclass(frozen=True)
class LevelInfo:
    """What the catalogue knows about one level."""

    seed: int
    num_keys: int
    world_dim: int
    maze_size: int


def decode_state(state: bytes) -> tuple[int, int, int]:
    """``(num_keys, world_dim, maze_size)`` of a Heist state from ``get_state()``."""
    ints = np.frombuffer(state[len(state) % 4 :], dtype=np.int32)
    for keys in range(4):
        if ints[-2 - keys] != keys or ints[-4 - keys] != keys:
            continue
        world_dim = int(ints[-3 - keys])
        cells = world_dim * world_dim
        if not 0 < world_dim <= 64 or ints[-5 - keys - cells] != cells:
            continue
        grid = ints[-4 - keys - cells : -4 - keys].reshape(world_dim, world_dim)
        open_cells = np.argwhere(grid != WALL)
        extent = open_cells.max(axis=0) - open_cells.min(axis=0) + 1
        return keys, world_dim, int(extent.max())
    raise ValueError("not a Heist state")


def cache_dir() -> Path:
    """``$ENVGEN_CACHE/heist-catalogue`` (default ``~/.cache/envgen/heist-catalogue``)."""
    root = os.environ.get("ENVGEN_CACHE") or str(Path.home() / ".cache" / "envgen")
    return Path(root) / "heist-catalogue"


class HeistCatalogue:
    """Levels of one distribution mode with their initial states, grown on demand and cached on disk."""

    def __init__(self, mode: str, directory: Path | None = None) -> None:
        self.mode = mode
        self.path = (directory or cache_dir()) / f"{mode}.npz"
        self.levels: list[LevelInfo] = []
        self._states: list[bytes] = []
        self._batches = 0
        self._load()

    def _load(self) -> None:
        try:
            with np.load(self.path, allow_pickle=False) as data:
                info, blob, offsets = data["info"], data["states"].tobytes(), data["offsets"]
                batches = int(data["batches"])
        except (OSError, KeyError, ValueError):
            return
        self.levels = [LevelInfo(*(int(v) for v in row)) for row in info]
        self._states = [blob[offsets[i] : offsets[i + 1]] for i in range(len(self.levels))]
        self._batches = batches

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        info = np.array([[lv.seed, lv.num_keys, lv.world_dim, lv.maze_size] for lv in self.levels], np.int64)
        offsets = np.cumsum([0, *(len(s) for s in self._states)]).astype(np.int64)
        states = np.frombuffer(b"".join(self._states), np.uint8)
        with atomic_file(self.path) as fh:
            np.savez_compressed(fh, info=info, states=states, offsets=offsets, batches=self._batches)

    def _scan_batch(self) -> None:
        from procgen import ProcgenGym3Env

        env = ProcgenGym3Env(
            num=SCAN_BATCH,
            env_name="heist",
            distribution_mode=self.mode,
            start_level=0,
            num_levels=0,
            rand_seed=SCAN_RAND_SEED + self._batches,
        )
        known = {lv.seed for lv in self.levels}
        for info, state in zip(env.get_info(), env.callmethod("get_state"), strict=True):
            seed = int(info["level_seed"])
            if seed in known:
                continue
            known.add(seed)
            self.levels.append(LevelInfo(seed, *decode_state(bytes(state))))
            self._states.append(bytes(state))
        env.close()
        self._batches += 1

    def matching(
        self, num_keys: int | None, maze_size: int | None, minimum: int = MIN_MATCHES
    ) -> list[tuple[LevelInfo, bytes]]:
        """Levels with the asked key count and maze size (None = any), scanning more levels if too few."""

        def select() -> list[tuple[LevelInfo, bytes]]:
            return [
                (lv, st)
                for lv, st in zip(self.levels, self._states, strict=True)
                if (num_keys is None or lv.num_keys == num_keys) and (maze_size is None or lv.maze_size == maze_size)
            ]

        found = select()
        grew = False
        while len(found) < minimum and len(self.levels) < MAX_LEVELS:
            self._scan_batch()
            grew = True
            found = select()
        if grew:
            self._save()
        return found

    def states(self, num_keys: int | None, maze_size: int | None) -> list[bytes]:
        """Initial states of the matching levels (raises if the catalogue holds none)."""
        found = self.matching(num_keys, maze_size)
        if not found:
            raise ValueError(f"no Heist {self.mode} level has {num_keys} keys and maze size {maze_size}")
        return [st for _, st in found]
