"""The container images: what their Dockerfiles copy exists, their entrypoints resolve, torch is CPU unless asked.

Building the images takes minutes (a Debian root filesystem, torch): set ``ENVGEN_TEST_IMAGES=1`` to build
both with ``scripts/build_images.sh`` and smoke-run their entrypoints.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OPERATOR = ROOT / "Dockerfile"
TRAINER = ROOT / "trainer_image" / "Dockerfile"
DOCKERFILES = (OPERATOR, TRAINER)


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction: its keyword (upper case) and its arguments (continuations joined)."""

    keyword: str
    args: str


def instructions(path: Path) -> list[Instruction]:
    """The instructions of a Dockerfile, comments dropped and continuation lines joined."""
    found: list[Instruction] = []
    pending = ""
    for line in path.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        keyword, _, args = (pending + line).strip().partition(" ")
        found.append(Instruction(keyword.upper(), args.strip()))
        pending = ""
    assert not pending, f"{path}: a continuation line ends the file"
    return found


def args_defaults(path: Path) -> dict[str, str]:
    """Every ARG with its default ('' when it has none)."""
    defaults = {}
    for ins in instructions(path):
        if ins.keyword == "ARG":
            name, _, default = ins.args.partition("=")
            defaults[name] = default
    return defaults


def exec_form(args: str) -> list[str]:
    """An ENTRYPOINT/CMD in exec form (a JSON list)."""
    assert args.startswith("["), f"not exec form: {args}"
    parsed = json.loads(args)
    assert isinstance(parsed, list) and all(isinstance(a, str) for a in parsed)
    return parsed


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_copied_path_exists_in_the_build_context(dockerfile: Path) -> None:
    copies = [i for i in instructions(dockerfile) if i.keyword in ("COPY", "ADD")]
    assert copies, f"{dockerfile} copies nothing"
    for ins in copies:
        words = shlex.split(ins.args)
        if any(w.startswith("--from=") for w in words):
            continue  # from an earlier stage
        sources = [w for w in words if not w.startswith("--")][:-1]
        assert sources, f"COPY without a source: {ins.args}"
        for source in sources:
            assert (ROOT / source).exists(), f"{dockerfile.name} copies {source}, which the repository lacks"


@pytest.mark.parametrize(
    ("dockerfile", "module"), [(OPERATOR, "envgen.cli"), (TRAINER, "envgen_trainer.cli")], ids=["operator", "trainer"]
)
def test_entrypoint_is_an_installed_console_script(dockerfile: Path, module: str) -> None:
    entry = [i for i in instructions(dockerfile) if i.keyword == "ENTRYPOINT"]
    assert len(entry) == 1, f"{dockerfile} needs exactly one ENTRYPOINT"
    command = exec_form(entry[0].args)[0]
    scripts = {ep.name: ep for ep in importlib.metadata.distribution("envgen").entry_points}
    assert command in scripts, f"{command} is not a console script of the envgen distribution"
    ep = scripts[command]
    assert ep.group == "console_scripts" and ep.module == module
    assert callable(ep.load())


def test_operator_image_runs_the_operator_without_the_trainer() -> None:
    ins = instructions(OPERATOR)
    cmd = [i for i in ins if i.keyword == "CMD"]
    assert len(cmd) == 1 and exec_form(cmd[0].args) == ["operator"]
    runs = " ".join(i.args for i in ins if i.keyword == "RUN")
    assert "[trainer]" not in runs, "the operator image must not install the trainer extra (torch)"
    assert [i.args for i in ins if i.keyword == "USER"] == ["10001:10001"]


def test_trainer_installs_cpu_torch_by_default_and_cuda_through_a_build_argument() -> None:
    defaults = args_defaults(TRAINER)
    assert defaults["TORCH_VARIANT"] == "cpu"
    assert defaults["TORCH_INDEX"] == "https://download.pytorch.org/whl/${TORCH_VARIANT}"
    pin = re.search(r"^torch==(\S+)$", (ROOT / "constraints.txt").read_text(), re.M)
    assert pin is not None and defaults["TORCH_VERSION"] == pin.group(1), "the image's torch must be the pinned one"
    runs = [i.args for i in instructions(TRAINER) if i.keyword == "RUN"]
    torch_runs = [r for r in runs if '"torch==${TORCH_VERSION}"' in r]
    assert len(torch_runs) == 1 and '--index-url "${TORCH_INDEX}"' in torch_runs[0]
    trainer_runs = [r for r in runs if ".[trainer]" in r]
    assert len(trainer_runs) == 1 and runs.index(torch_runs[0]) < runs.index(trainer_runs[0]), (
        "torch must be installed from its index before the trainer extra, or pip pulls the registry's build"
    )


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_base_image_is_a_build_argument(dockerfile: Path) -> None:
    ins = instructions(dockerfile)
    assert ins[0].keyword == "ARG" and ins[0].args.startswith("BASE=")
    froms = [i.args.split()[0] for i in ins if i.keyword == "FROM"]
    assert froms and all(f == "${BASE}" for f in froms)


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("ENVGEN_TEST_IMAGES") != "1", reason="set ENVGEN_TEST_IMAGES=1 to build images")
def test_images_build_and_their_entrypoints_run() -> None:
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build_images.sh")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "usage: envgen operator" in proc.stdout
    assert "termination message: {" in proc.stderr, "the trainer wrote no metrics"
