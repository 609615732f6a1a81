# The two set-up commands of the README. Both install whatever is missing first (scripts/setup.sh, cached).
.PHONY: demo test lint setup

setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/envgen run examples/quickstart.yaml

test: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy
	.venv/bin/pytest -n 2 --maxschedchunk 1 --durations=25

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy
