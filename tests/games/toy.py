"""A toy third game, in one module as a game package would ship it: its env config, its descriptor for the
operator (``GAME``) and its trainer side (``TRAINER_GAME``), found through the ``envgen.games`` entry point.

The agent sees a frame whose brightness tells which of four buttons lights the lamp; pressing it is the one
skill (``light_lamp``) and ends the episode, which otherwise times out after ``length`` steps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import Field

from envgen.envconfig import DesignedEnv, GameConfig
from envgen.games import CatalogueEnv, Game
from envgen_trainer.games import TrainerGame

SKILL = "light_lamp"
BUTTONS = 4
OBS_SHAPE = (64, 64, 3)


class ToyEnvConfig(GameConfig):
    """One toy environment: which button lights the lamp, and the episode length."""

    game: Literal["toy"] = "toy"
    button: Annotated[int, Field(ge=0, le=BUTTONS - 1)] = 0
    length: Annotated[int, Field(ge=4, le=16)] = 16


class ToyEnv:
    """The toy game with the old gym interface the trainer's vector env steps."""

    def __init__(self, config: ToyEnvConfig | None, seed: int) -> None:
        self.config = config or ToyEnvConfig(button=seed % BUTTONS)
        self.t = 0

    def _obs(self) -> npt.NDArray[np.uint8]:
        return np.full(OBS_SHAPE, 60 * self.config.button, dtype=np.uint8)

    def reset(self) -> npt.NDArray[np.uint8]:
        self.t = 0
        return self._obs()

    def step(self, action: int) -> tuple[npt.NDArray[np.uint8], float, bool, dict[str, Any]]:
        self.t += 1
        lit = action == self.config.button
        done = lit or self.t >= self.config.length
        info: dict[str, Any] = {"achievements": {SKILL: int(lit)}} if done else {}
        return self._obs(), float(lit), done, info


def _score(success_percent: Mapping[str, float]) -> float:
    return float(success_percent.get(SKILL, 0.0))


def _make_env(config: GameConfig | None, seed: int) -> ToyEnv:
    assert config is None or isinstance(config, ToyEnvConfig)
    return ToyEnv(config, seed)


def _real_game(designed: Sequence[GameConfig]) -> None:
    return None  # the real game: the default config, a button chosen by the env's seed


GAME = Game(
    name="toy",
    title="Toy",
    skills=(SKILL,),
    skill_text=f"{SKILL}: press the button that lights the lamp",
    num_actions=BUTTONS,
    score_of=_score,
    config_model=ToyEnvConfig,
    answer_fields=("button", "length"),
    setting_text={"button": "which button (0-3) lights the lamp", "length": "steps before the episode ends"},
    control="which button lights the lamp and how long an episode lasts",
    rules=("Pressing the lit button ends the episode with reward 1.",),
    feedback_rules=(),
    skill_words=("lamp", "button", "light"),
    gives_away=lambda config: False,
    given_away_text="nothing",
    catalogue=tuple(
        CatalogueEnv(
            env=DesignedEnv(name=f"button-{b}", purpose="Light the lamp.", config=ToyEnvConfig(button=b)),
            skills=(SKILL,),
        )
        for b in range(BUTTONS)
    ),
    curriculum="ladder",
)
TRAINER_GAME = TrainerGame("toy", OBS_SHAPE, _make_env, _make_env, _real_game)
