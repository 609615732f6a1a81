"""A third game is one module: a toy game registered from the tests designs, validates and trains end to end."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from llm.stub import StubLLM, completion

from envgen.contracts import DesignRequest, TrainingTask, WeightedEnv
from envgen.designers import make_designer
from envgen.envconfig import DesignedEnv
from envgen.games import GAMES, register
from envgen.games import base as games_base
from envgen.models import describe_validation_error
from envgen.spec import EnvGenRunSpec
from envgen_trainer import games as trainer_games
from envgen_trainer.runner import run_task

from . import toy


@pytest.fixture
def toy_game(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The toy game registered in this process, and through an ``envgen.games`` entry point in the vector env's
    workers (fresh processes that find it as an installed game package is found)."""
    dist = tmp_path / "site" / "envgen_toy-0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: envgen-toy\nVersion: 0\n")
    (dist / "entry_points.txt").write_text(f"[envgen.games]\ntoy = {toy.__name__}\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    register(toy.GAME)
    trainer_games.register(toy.TRAINER_GAME)
    yield
    del games_base._REGISTRY["toy"], trainer_games._GAMES["toy"]


def test_the_registry_is_the_one_list_of_games(toy_game: None) -> None:
    assert list(GAMES) == ["crafter", "heist", "toy"]
    spec = EnvGenRunSpec.model_validate({"game": "toy"})
    assert spec.game == "toy" and EnvGenRunSpec.model_json_schema()["properties"]["game"]["enum"] == list(GAMES)
    env = DesignedEnv.model_validate({"name": "b", "config": {"game": "toy", "button": 2}})
    assert isinstance(env.config, toy.ToyEnvConfig) and env.config.button == 2
    with pytest.raises(ValueError) as bad:
        DesignedEnv.model_validate({"name": "b", "config": {"game": "toy", "button": 9, "maze_size": 5}})
    assert describe_validation_error(bad.value).splitlines() == [
        "config.button: Input should be less than or equal to 3",
        "config.maze_size: unknown field (remove it or check its spelling)",
    ]
    with pytest.raises(ValueError) as unknown:
        EnvGenRunSpec.model_validate({"game": "pong"})
    assert describe_validation_error(unknown.value) == "game: must be one of 'crafter', 'heist' or 'toy', got 'pong'"


def test_unregistered_game_is_refused() -> None:
    with pytest.raises(ValueError) as bad:
        DesignedEnv.model_validate({"name": "b", "config": {"game": "toy", "button": 2}})
    assert describe_validation_error(bad.value) == "config.game: must be one of 'crafter' or 'heist', got 'toy'"


@pytest.mark.training
def test_a_toy_game_designs_and_trains(toy_game: None, stub_llm: StubLLM, tmp_path: Path) -> None:
    envs = [{"name": f"Button {b}", "purpose": "Light the lamp.", "button": b, "length": 8} for b in (1, 3)]
    stub_llm.add(completion(json.dumps({"environments": envs})))
    spec = EnvGenRunSpec.model_validate(
        {"game": "toy", "designer": {"type": "llm", "critic": False}, "llm": {"maxRetries": 0}, "envsPerCycle": 2}
    )
    design = make_designer(spec, base_url=stub_llm.base_url).design(DesignRequest(game="toy", cycle=1, num_envs=2))
    assert [(e.name, e.config) for e in design.envs] == [
        ("Button 1", toy.ToyEnvConfig(button=1, length=8)),
        ("Button 3", toy.ToyEnvConfig(button=3, length=8)),
    ]
    prompt = stub_llm.requests[0]["messages"][1]["content"]
    assert toy.SKILL in prompt and "which button (0-3) lights the lamp" in prompt
    schema = stub_llm.requests[0]["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["environments"]["items"]["properties"]["button"]["enum"] == [0, 1, 2, 3]

    task = TrainingTask(
        run="toy",
        name="toy-c1-s0",
        phase="cycle",
        cycle=1,
        seed=0,
        game="toy",
        envs=[WeightedEnv(name=e.name, config=e.config) for e in design.envs],
        designed_env_steps=64,
        game_steps=32,
        eval_episodes=2,
        eval_runs=1,
        agent=spec.agent.model_copy(update={"num_envs": 2, "rollout_steps": 16, "minibatches": 2, "epochs": 1}),
        checkpoint_out=str(tmp_path / "toy.pt"),
        output_dir=str(tmp_path / "out"),
        termination_message_path=str(tmp_path / "term"),
    )
    assert TrainingTask.model_validate_json(task.model_dump_json()) == task  # the task as a Job reads it
    result = run_task(task)
    assert result.error is None and result.game == "toy" and result.global_step == 96
    assert set(result.success) == {toy.SKILL} and 0.0 <= result.success[toy.SKILL].mean <= 100.0
    assert {r.name for r in result.per_env} == {"Button 1", "Button 3"}
    assert (tmp_path / "toy.pt").exists()
