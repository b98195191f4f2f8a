# One command to run the bot, one to run the tests (see README).
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: install run test test-all chaos bench lint format check clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

run: install  ## run the bot with SQLite (settings from the environment or .env)
	$(VENV)/bin/incidentbot serve

test: install  ## the CI suite: everything but the long chaos/benchmark-sized runs
	$(VENV)/bin/pytest -m "not slow" $(PYTEST_ARGS)

test-all: install  ## everything, including the full-size chaos runs
	$(VENV)/bin/pytest $(PYTEST_ARGS)

chaos: install
	$(VENV)/bin/pytest -m slow $(PYTEST_ARGS)

bench: install
	$(PY) -m bench

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

check: install  ## validate runbooks/ and rotations/
	$(VENV)/bin/incidentbot check

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache incidentbot.db*
