# The two set-up commands from the README: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint venv

$(BIN)/otklik: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(BIN)/otklik

venv: $(BIN)/otklik

run: venv
	$(BIN)/otklik run

lint: venv
	$(BIN)/ruff check otklik tests bench
	$(BIN)/mypy otklik
	$(BIN)/lint-imports

# Two pytest workers (pytest-xdist) on CI's two cores; each gets its own PostgreSQL database (tests/conftest.py).
TEST_WORKERS ?= 2

test: lint
	$(BIN)/pytest -q -p no:cacheprovider -n $(TEST_WORKERS)
