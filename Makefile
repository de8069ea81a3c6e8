# Everyday commands. `make run` and `make test` install what they need on first use.
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= python3
PORT ?= 8000

.PHONY: run test lint format bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

run: $(BIN)/.installed  ## dripcare on SQLite with an embedded broker; emails land in var/outbox/
	$(BIN)/dripcare dev --port $(PORT)

test: $(BIN)/.installed  ## the whole suite, on SQLite and PostgreSQL, with Redis and SMTP servers
	$(BIN)/pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy src

format: $(BIN)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(BIN)/.installed  ## end-to-end throughput on PostgreSQL + Redis + Celery (see bench/)
	$(BIN)/python bench/throughput.py

clean:
	rm -rf var .pytest_cache .ruff_cache
