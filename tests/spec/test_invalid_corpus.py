"""Every invalid run.yaml of the corpus is refused by ``envgen validate`` and ``envgen run``, naming its field,
and ``envgen run`` writes nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from envgen import safeyaml
from envgen.cli import EXIT_INVALID, main

from .corpus import Case, committed, generated

CASES = committed()


def names_field(message: str, field: str | None) -> bool:
    """The error names ``field`` as a path (``spec.cycles:``, ``spec.objective[0]...``), or the file as a whole."""
    if field is None:
        return "error:" in message
    return re.search(rf"(^|\s){re.escape(field)}[:\[]", message, re.M) is not None


def refused(case: Case, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main([*args, str(case.path)]) == EXIT_INVALID
    err = capsys.readouterr().err
    assert names_field(err, case.field), f"{case.name}: expected {case.field} in\n{err}"
    return err


def test_the_corpus_covers_every_kind() -> None:
    assert len(CASES) >= 40
    assert {c.refused_by for c in CASES} == {"schema", "unknown-field", "file"}
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_validate_refuses(case: Case, capsys: pytest.CaptureFixture[str]) -> None:
    refused(case, capsys, "validate")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_run_refuses_and_writes_nothing(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    refused(case, capsys, "run", "-q")
    refused(case, capsys, "run", "-q", "--run-dir", str(tmp_path / "explicit"))
    assert list(tmp_path.iterdir()) == []


def test_a_ten_megabyte_file_is_refused_before_parsing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (case,) = generated(tmp_path / "corpus")
    assert case.path.stat().st_size > 10 * 1024 * 1024
    parsed: list[str] = []
    monkeypatch.setattr(safeyaml, "loads", lambda text: parsed.append(text))
    assert "larger than" in refused(case, capsys, "validate")
    run_dir = tmp_path / "out"
    refused(case, capsys, "run", "-q", "--run-dir", str(run_dir))
    assert parsed == [] and not run_dir.exists()


def test_schema_cases_read_as_manifests() -> None:
    for case in CASES:
        if case.refused_by != "file":
            assert case.manifest()["kind"] == "EnvGenRun", case.name


@pytest.mark.parametrize(
    "text",
    [
        "a: &x [1, 2]\nb: *x\n",
        "a: 1\na: 2\n",
        "a: 1\n---\na: 2\n",
        "a: " + "[" * (safeyaml.MAX_DEPTH + 1) + "]" * (safeyaml.MAX_DEPTH + 1) + "\n",
        "a: " + "x" * (safeyaml.MAX_BYTES + 1) + "\n",
    ],
    ids=["alias", "duplicate-key", "two-documents", "too-deep", "too-big"],
)
def test_the_loader_refuses_unsafe_text(text: str) -> None:
    with pytest.raises(safeyaml.UnsafeYAMLError):
        safeyaml.loads(text)


def test_the_loader_reads_ordinary_yaml() -> None:
    assert safeyaml.loads("a: [1, {b: c}]\nd: 'x'\n") == {"a": [1, {"b": "c"}], "d": "x"}
    assert safeyaml.loads("") is None
