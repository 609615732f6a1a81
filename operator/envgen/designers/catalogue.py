"""Hand-written environments for the LLM-free designers: each game's catalogue, easy to hard."""

from __future__ import annotations

from ..games import CatalogueEnv, GameName, game

__all__ = ["CatalogueEnv", "ladder", "spread"]


def ladder(name: GameName) -> tuple[CatalogueEnv, ...]:
    """Every catalogue env of a game, easy to hard."""
    return game(name).catalogue


def spread(items: tuple[CatalogueEnv, ...], n: int) -> list[CatalogueEnv]:
    """``n`` items spread evenly over ``items``, first and last included (repeating when there are fewer)."""
    if not items or n <= 0:
        return []
    if n >= len(items):
        return [items[i % len(items)] for i in range(n)]
    if n == 1:
        return [items[0]]
    return [items[round(i * (len(items) - 1) / (n - 1))] for i in range(n)]
