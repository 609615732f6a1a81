"""ConfigurableCrafter: identical to stock Crafter by default, and each knob changes the world as intended."""

from __future__ import annotations

from typing import Any

import crafter
import numpy as np
import pytest

from envgen.envconfig import CrafterEnvConfig
from envgen_trainer.crafter_env import ConfigurableCrafter, _position
from envgen_trainer.games import trainer_game


def _objects(env: crafter.Env) -> list[tuple[str, tuple[int, int]]]:
    return sorted((type(o).__name__, (int(o.pos[0]), int(o.pos[1]))) for o in env._world.objects)


def _config(**env: object) -> CrafterEnvConfig:
    world = env.pop("world", {})
    inventory = env.pop("inventory", {})
    return CrafterEnvConfig.model_validate(
        {"environment_settings": env, "inventory_settings": inventory, "world_settings": world}
    )


def _count(env: ConfigurableCrafter, material: str) -> int:
    return int(env._world.count(material))


@pytest.mark.parametrize("seed", [0, 7, 123])
def test_default_worlds_identical_to_stock(seed: int) -> None:
    stock, ours = crafter.Env(seed=seed), ConfigurableCrafter(seed=seed)
    for _ in range(2):
        obs_stock, obs_ours = stock.reset(), ours.reset()
        assert np.array_equal(stock._world._mat_map, ours._world._mat_map)
        assert _objects(stock) == _objects(ours)
        assert np.array_equal(obs_stock, obs_ours)
        assert np.array_equal(stock._world.random.get_state()[1], ours._world.random.get_state()[1])
        assert stock._world.random.get_state()[2] == ours._world.random.get_state()[2]


def test_frames_bit_identical_to_crafter_renderer_day_night_and_sleep() -> None:
    env = ConfigurableCrafter(seed=3)
    env.reset()
    rng = np.random.default_rng(0)
    sleep = crafter.constants.actions.index("sleep")
    checked_night = checked_sleep = 0
    env._step = 200  # start near dusk so night frames (which draw noise) are covered
    for step in range(400):
        action = sleep if step % 50 < 10 else int(rng.integers(17))
        _, _, done, _ = env.step(action)
        state = env._world.random.get_state()
        reference = crafter.Env.render(env)
        env._world.random.set_state(state)
        assert np.array_equal(env.render(), reference), step
        env._world.random.set_state(state)
        checked_night += env._world.daylight < 0.5
        checked_sleep += bool(env._player.sleeping)
        if done:
            env.reset()
    assert checked_night > 0 and checked_sleep > 0


@pytest.mark.parametrize("daylight", [1.0, 0.93, 0.5, 0.31, 0.02])
def test_light_kernel_matches_crafter_on_random_canvases(daylight: float) -> None:
    """Every colour, not only those of Crafter's textures: the compiled light/sleep equals Crafter's numpy + Pillow."""
    env = ConfigurableCrafter(seed=0)
    env.reset()
    env._world.daylight = daylight
    view, renderer = env._local_view, env._renderer
    rng = np.random.default_rng(int(daylight * 100))
    for sleeping in (False, True):
        canvas = rng.integers(0, 256, (63, 49, 3), dtype=np.uint8)
        state = env._world.random.get_state()
        reference = view._light(canvas, daylight)
        if sleeping:
            reference = view._sleep(reference)
        after = env._world.random.get_state()
        expected = np.zeros((64, 64, 3), np.uint8)
        expected[:63, :49] = reference
        env._world.random.set_state(state)
        env._player.sleeping = sleeping
        renderer._local_view = lambda player, canvas=canvas: canvas  # type: ignore[method-assign,misc]
        frame = renderer.render(env._player)
        assert np.array_equal(frame[:49, :63], expected.transpose(1, 0, 2)[:49, :63]), sleeping
        assert np.array_equal(env._world.random.get_state()[1], after[1])  # the same noise draws


def test_grassland_has_no_water_or_mountains() -> None:
    env = ConfigurableCrafter(_config(target_biome="grassland"), seed=1)
    env.reset()
    assert _count(env, "water") == 0 and _count(env, "stone") == 0
    assert _count(env, "grass") > 2000


def test_mountain_biome_has_more_stone_and_no_water() -> None:
    stock, mountain = ConfigurableCrafter(seed=2), ConfigurableCrafter(_config(target_biome="mountain"), seed=2)
    stock.reset(), mountain.reset()
    assert _count(mountain, "water") == 0
    assert _count(mountain, "stone") > _count(stock, "stone")


def test_coal_rarity_changes_coal_count_including_very_common() -> None:
    counts = {}
    for rarity in ("rare", "common", "very common"):
        env = ConfigurableCrafter(_config(coal_rarity=rarity), seed=4)
        counts[rarity] = sum(_count(env, "coal") for _ in range(3) if env.reset() is not None)
    assert counts["rare"] < counts["common"] < counts["very common"]
    assert counts["very common"] > 1.3 * counts["common"]


def test_inventory_appears_in_info_and_unlocks_nothing() -> None:
    env = ConfigurableCrafter(_config(inventory={"wood": 5, "stone_pickaxe": 1}), seed=0)
    env.reset()
    _, _, _, info = env.step(0)
    assert info["inventory"]["wood"] == 5 and info["inventory"]["stone_pickaxe"] == 1
    assert not any(info["achievements"].values())


def test_preplaced_table_furnace_plant_near_spawn() -> None:
    env = ConfigurableCrafter(_config(place_table=True, place_furnace=True, place_plant=True), seed=5)
    env.reset()
    near, objs = env._world.nearby(env._player.pos, 3)
    assert "table" in near and "furnace" in near
    assert any(isinstance(o, crafter.objects.Plant) for o in objs)


def test_peaceful_mode_has_no_zombies_or_skeletons() -> None:
    env = ConfigurableCrafter(_config(peaceful_mode=True, target_biome="mountain"), seed=6)
    for _ in range(2):
        env.reset()
        for _ in range(60):
            env.step(0)
        kinds = {type(o).__name__ for o in env._world.objects}
        assert "Zombie" not in kinds and "Skeleton" not in kinds


def test_extra_cows_near_start() -> None:
    base, extra = ConfigurableCrafter(seed=8), ConfigurableCrafter(_config(spawn_cows=5), seed=8)
    base.reset(), extra.reset()

    def near_cows(env: ConfigurableCrafter) -> int:
        return sum(isinstance(o, crafter.objects.Cow) and env._player.distance(o) <= 9 for o in env._world.objects)

    assert near_cows(extra) >= near_cows(base) + 5


def test_length_and_area() -> None:
    env = ConfigurableCrafter(_config(world={"length": 20, "area": 32}), seed=0)
    obs = env.reset()
    assert env._world.area == (32, 32) and obs.shape == (64, 64, 3)
    dones = [env.step(0)[2] for _ in range(20)]
    assert dones[-1] and not any(dones[:-1])


class _ReplayableStock(crafter.Env):  # type: ignore[misc]
    """Stock Crafter, except that the creature to despawn is drawn from a list sorted by position.

    Stock Crafter draws it from a set, whose order follows memory addresses, so two stock envs with the same seed
    and actions drift apart; ConfigurableCrafter sorts (the same uniform draw, replayable)."""

    def _balance_object(self, chunk: Any, objs: Any, *args: Any) -> None:
        ordered = sorted(objs, key=_position)
        super()._balance_object(chunk, ordered, *args)


@pytest.mark.parametrize("seed", [1, 42])
def test_default_trajectories_identical_to_stock(seed: int) -> None:
    """The same actions give the same frames, rewards, dones, infos and world RNG draws as stock Crafter; the
    trainer's env (no ``info["semantic"]``) gives the same too, minus that key."""
    stock = _ReplayableStock(seed=seed, length=300)
    config = _config(world={"length": 300})
    ours = ConfigurableCrafter(config, seed=seed)
    trainer = trainer_game("crafter").make_env(config, seed)
    first = stock.reset()
    assert np.array_equal(first, ours.reset()) and np.array_equal(first, trainer.reset())
    rng, episodes = np.random.default_rng(seed), 0
    for step in range(900):
        action = int(rng.integers(17))
        obs_stock, reward_stock, done_stock, info_stock = stock.step(action)
        for env in (ours, trainer):
            obs, reward, done, info = env.step(action)
            assert np.array_equal(obs_stock, obs), step
            assert (reward_stock, done_stock) == (reward, done), step
            for key in ("inventory", "achievements", "discount", "reward"):
                assert info_stock[key] == info[key], (step, key)
            assert np.array_equal(info_stock["player_pos"], info["player_pos"]), step
            assert stock._world.random.get_state()[2] == env._world.random.get_state()[2], step  # type: ignore[attr-defined]
            if env is ours:
                assert np.array_equal(info_stock["semantic"], info["semantic"]), step
            else:
                assert "semantic" not in info
        if done_stock:
            episodes += 1
            first = stock.reset()
            assert np.array_equal(first, ours.reset()) and np.array_equal(first, trainer.reset())
    assert episodes >= 2
