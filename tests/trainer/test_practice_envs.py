"""Every practice env reaches its target and none is a death trap, played in the trainer's own Crafter.

A scripted player (walk to the nearest target, face it, act; press a recipe's key) must reach each catalogue env's
skill; a random player must live, on average, at least a third as long in every earn level of every practice env as
in stock Crafter on the same seeds (four zombies at the start ended episodes after about 14 steps, a tenth); and
every earn level of every practice env keeps water within the scripted player's reach (ore practice in the
waterless mountain biome ended episodes by thirst before the first night, and the agent lost sleep in the real game).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import pytest
from crafter import constants, objects

from envgen.achievements import ACHIEVEMENTS
from envgen.envconfig import CrafterEnvConfig
from envgen.games.crafter import PRACTICE, earn_ladder
from envgen_trainer.crafter_env import ConfigurableCrafter

ACTION = {name: i for i, name in enumerate(constants.actions)}
MOVES = {(-1, 0): "move_left", (1, 0): "move_right", (0, -1): "move_up", (0, 1): "move_down"}
COLLECT = {
    "collect_wood": "tree",
    "collect_stone": "stone",
    "collect_coal": "coal",
    "collect_iron": "iron",
    "collect_diamond": "diamond",
    "collect_drink": "water",
    "collect_sapling": "grass",
}
HUNT = {
    "eat_cow": objects.Cow,
    "defeat_zombie": objects.Zombie,
    "defeat_skeleton": objects.Skeleton,
    "eat_plant": objects.Plant,
}
KEY = {"wake_up": "sleep", **{s: s for s in ACHIEVEMENTS if s.startswith(("place_", "make_"))}}
SEARCH_RADIUS = 20
SCRIPTED_STEPS = 400
EPISODES = 3


def _is_target(env: ConfigurableCrafter, skill: str, pos: tuple[int, int]) -> bool:
    material, obj = env._world[pos]
    if skill in COLLECT:
        return material == COLLECT[skill] and obj is None
    return isinstance(obj, HUNT[skill])


def _walk_to_target(env: ConfigurableCrafter, skill: str, rng: np.random.Generator) -> int:
    """The move towards the nearest cell next to a target (breadth-first over free cells), or ``do`` when facing one."""
    player = env._player
    start = (int(player.pos[0]), int(player.pos[1]))
    facing = (start[0] + int(player.facing[0]), start[1] + int(player.facing[1]))
    if _is_target(env, skill, facing):
        return ACTION["do"]
    first: dict[tuple[int, int], tuple[int, int] | None] = {start: None}
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        for step in MOVES:
            nxt = (cell[0] + step[0], cell[1] + step[1])
            if _is_target(env, skill, nxt):  # stand on ``cell``, face ``nxt``
                move = first[cell] or step
                return ACTION[MOVES[move]]
            near = abs(nxt[0] - start[0]) + abs(nxt[1] - start[1]) <= SEARCH_RADIUS
            material, obj = env._world[nxt]
            if nxt in first or not near or material not in constants.walkable or obj is not None:
                continue
            first[nxt] = first[cell] or step
            queue.append(nxt)
    return ACTION[MOVES[list(MOVES)[rng.integers(4)]]]


def scripted_action(env: ConfigurableCrafter, skill: str, rng: np.random.Generator) -> int:
    """What a player who knows the skill does next."""
    if skill in KEY:  # a recipe or sleep: press its key, now and then turn to find a free cell to place on
        return ACTION[KEY[skill]] if skill == "wake_up" or rng.random() < 0.7 else int(rng.integers(1, 5))
    return _walk_to_target(env, skill, rng)


def played(config: CrafterEnvConfig, policy: str, skill: str, episodes: int, seed: int = 0) -> tuple[bool, float]:
    """Whether any episode reached ``skill``, and the mean episode length, for the scripted or random player."""
    env = ConfigurableCrafter(config, seed=seed)
    rng = np.random.default_rng(seed)
    reached, lengths = False, []
    for _ in range(episodes):
        env.reset()
        done, steps, info = False, 0, dict[str, Any]()
        while not done and steps < SCRIPTED_STEPS:
            action = scripted_action(env, skill, rng) if policy == "scripted" else int(rng.integers(17))
            _, _, done, info = env.step(action)
            steps += 1
            if policy == "scripted" and info["achievements"][skill]:
                break
        reached |= bool(info["achievements"][skill])
        lengths.append(steps)
    return reached, float(np.mean(lengths))


@pytest.mark.parametrize("skill", ACHIEVEMENTS)
def test_each_practice_env_reaches_its_target(skill: str) -> None:
    config = PRACTICE[skill].env.config
    assert isinstance(config, CrafterEnvConfig)
    reached, _ = played(config, "scripted", skill, EPISODES)
    assert reached, f"{PRACTICE[skill].env.name}: a scripted player never reached {skill}"


def test_no_practice_env_is_a_death_trap() -> None:
    _, stock = played(CrafterEnvConfig(), "random", "collect_wood", EPISODES)
    short = {}
    for skill in ACHIEVEMENTS:
        for entry in earn_ladder(skill):
            assert isinstance(entry.env.config, CrafterEnvConfig)
            _, length = played(entry.env.config, "random", skill, EPISODES)
            if length < stock / 3:
                short[entry.env.name] = length
    assert not short, f"random episodes last {stock:.0f} steps in stock Crafter, far less in {short}"


def test_every_practice_env_keeps_water_to_drink() -> None:
    dry = []
    for skill in ACHIEVEMENTS:
        for entry in earn_ladder(skill):
            assert isinstance(entry.env.config, CrafterEnvConfig)
            reached, _ = played(entry.env.config, "scripted", "collect_drink", 1)
            if not reached:
                dry.append(entry.env.name)
    assert not dry, f"a scripted player found no water to drink in {dry}"
