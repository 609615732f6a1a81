"""Every game descriptor is complete: its catalogue, prompt text and answer fields fit its config and skills."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, TypeAdapter

from envgen.designers.critic import names_a_skill
from envgen.designers.schema import answer_env_model
from envgen.envconfig import check
from envgen.games import GAMES, Game, GameName


def test_the_registry_names_every_game() -> None:
    assert set(GAMES) == set(TypeAdapter(GameName).json_schema()["enum"])
    assert all(name == g.name for name, g in GAMES.items())


@pytest.mark.parametrize("game", GAMES.values(), ids=list(GAMES))
def test_descriptor_is_complete(game: Game) -> None:
    assert game.title and game.skills and len(set(game.skills)) == len(game.skills) and game.num_actions > 1
    assert all(s in game.skill_text for s in game.skills)
    assert game.control and game.rules and game.skill_words and game.given_away_text
    standard = game.config_model()
    assert standard.game == game.name and not game.gives_away(standard)
    assert 0.0 == game.score({}) <= game.score(dict.fromkeys(game.skills, 50.0)) <= 100.0
    assert set(game.prerequisites) <= set(game.skills)
    assert all(set(p) <= set(game.skills) for p in game.prerequisites.values())


@pytest.mark.parametrize("game", GAMES.values(), ids=list(GAMES))
def test_every_answer_field_is_described(game: Game) -> None:
    fields = game.config_model.model_fields
    described = set(game.answer_fields)
    for name in game.answer_fields:
        kind = fields[name].annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            described |= set(kind.model_fields)
    assert set(game.setting_text) == described
    assert set(answer_env_model(game.name).model_fields) == {"name", "purpose", *game.answer_fields}


@pytest.mark.parametrize("game", GAMES.values(), ids=list(GAMES))
def test_catalogue_fits_the_game(game: Game) -> None:
    entries = game.catalogue
    assert entries and len({game.choice(e) for e in entries}) == len(entries)
    for entry in entries:
        assert entry.env.config.game == game.name and set(entry.skills) <= set(game.skills)
        assert names_a_skill(entry.env)
        assert not [f for f in check(entry.env.config) if f.severity == "error"]
    if game.curriculum == "skills":
        assert sorted(e.skills[0] for e in entries) == sorted(game.skills)
    else:
        assert {s for e in entries for s in e.skills} == {game.skills[0]}
