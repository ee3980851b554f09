PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install test check bench demo

$(BIN)/lobbybot: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

install: $(BIN)/lobbybot

# Tests need a Redis server: REDIS_URL, or redis-server on 127.0.0.1:6379 (.ci/run starts one when none answers).
test: install
	$(BIN)/pytest -q

check: install
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: install
	for bench in bench/*.py; do $(BIN)/python $$bench || exit 1; done

demo: install
	$(BIN)/lobbybot demo
