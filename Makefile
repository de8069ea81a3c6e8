# Everyday commands. `make run` and `make test` install what they need on first use.
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= python3
PORT ?= 8000

.PHONY: run test test-fast test-no-browser test-later lint format bench lock clean

# Exactly the locked versions, checked by hash; then dripcare itself, editable, built with the
# locked setuptools (no download).
$(BIN)/.installed: requirements-dev.lock requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

run: $(BIN)/.installed  ## dripcare on SQLite with an embedded broker; emails land in var/outbox/
	$(BIN)/dripcare dev --port $(PORT)

test: $(BIN)/.installed  ## the whole suite, on SQLite and PostgreSQL, with Redis and SMTP servers
	$(BIN)/pytest

# The markers come from tests/markers.py (by fixture and file) and from the tests themselves.
FAST_MARKERS := not (slow or browser or postgres or redis or workers)

# DRIPCARE_TEST_FAST (tests/fast_loop.py): an in-memory broker instead of Redis, few examples.
# Bytecode is cached even where PYTHONDONTWRITEBYTECODE is set: otherwise every run compiles
# src/ again and rewrites the asserts of every test module (5 of 16 CPU-s of collecting).
test-fast: $(BIN)/.installed  ## the quick loop: SQLite only, no services but SMTP, stop at the first failure
	PYTHONDONTWRITEBYTECODE= DRIPCARE_TEST_FAST=1 $(BIN)/pytest -q -x -m "$(FAST_MARKERS)"

test-no-browser: $(BIN)/.installed  ## SQLite and PostgreSQL, no browser, stop at the first failure
	$(BIN)/pytest -q -x -m "not browser"

# The whole suite with every clock a year ahead, in the test process and in every server,
# worker and command it starts (tests/clock_ahead/sitecustomize.py): a test that depends on
# today's date fails here the day it is written. The monotonic clock stays real.
test-later: $(BIN)/.installed
	DRIPCARE_TEST_DAYS_AHEAD=365 PYTHONPATH=$(CURDIR)/tests/clock_ahead $(BIN)/pytest -q

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy src

format: $(BIN)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(BIN)/.installed  ## end-to-end throughput on PostgreSQL + Redis + Celery (see bench/)
	$(BIN)/python bench/throughput.py

# After changing dependencies in pyproject.toml. Versions already locked stay unless
# `make lock LOCK_FLAGS=--upgrade`. One resolution for every platform (--universal), so the
# python:3.11-slim image on x86_64 or arm64 installs from the same files.
LOCK_FLAGS ?=
UV_COMPILE = $(BIN)/uv pip compile --quiet --generate-hashes --universal --python-version 3.11 \
	--custom-compile-command "make lock" $(LOCK_FLAGS)
lock: $(BIN)/.installed  ## requirements.lock (runtime), -flower (+ Flower), -build, -dev
	$(UV_COMPILE) pyproject.toml -o requirements.lock
	$(UV_COMPILE) pyproject.toml --extra flower -c requirements.lock -o requirements-flower.lock
	$(BIN)/python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")' \
		| $(UV_COMPILE) - -o requirements-build.lock
	$(UV_COMPILE) pyproject.toml requirements-build.lock --extra dev --extra flower \
		-c requirements.lock -o requirements-dev.lock

clean:
	rm -rf var .pytest_cache .ruff_cache build dist
