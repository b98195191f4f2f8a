# One command to run the bot, one to run the tests (see README).
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# Most tests wait on sockets, timers and subprocesses rather than the CPU: run them in parallel.
PYTEST_WORKERS ?= 4

.PHONY: install test-deps run test test-all chaos bench lint format check clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

run: install  ## run the bot with SQLite (settings from the environment or .env)
	$(VENV)/bin/incidentbot serve

# Binaries and PostgreSQL the tests need: installed and started as root, otherwise the exact
# commands to run (scripts/test-deps; TEST_POSTGRES_URL picks another PostgreSQL).
test-deps: install
	PYTHON=$(PY) scripts/test-deps

test: test-deps  ## the CI suite: everything but the long chaos/benchmark-sized runs
	$(VENV)/bin/pytest -m "not slow" -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

test-all: test-deps  ## everything, including the full-size chaos runs
	$(VENV)/bin/pytest $(PYTEST_ARGS)

chaos: test-deps
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
