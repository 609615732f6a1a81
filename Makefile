# The two set-up commands of the README. Both install whatever is missing first (scripts/setup.sh, cached).
# `make test-fast` is the edit loop's tier: the tests that need no real component beyond Python (no embedded
# LLM, no real API server or Prometheus, no training; markers from tests/conftest.py, README "Tests and benchmarks").
.PHONY: demo test test-fast lint setup

FAST_EXCLUDES = not slow and not llm and not real_server and not prometheus and not training

setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/envgen run examples/quickstart.yaml

test: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy
	.venv/bin/pytest -n 2 --maxschedchunk 1 --durations=25

test-fast: setup
	.venv/bin/pytest -n 2 --maxschedchunk 1 --durations=10 -m "$(FAST_EXCLUDES)"

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy
