# Seizure Relay. `make run` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run serve test test-sqlite lint format bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

## Serve on SQLite with a live demo operation (keys and address are printed).
run: install
	$(BIN)/relay demo --host $(HOST) --port $(PORT)

## Serve whatever RELAY_* says, migrating first.
serve: install
	$(BIN)/relay serve

## Every test, on SQLite and on PostgreSQL.
test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check app tests bench migrations
	$(BIN)/ruff format --check app tests bench migrations
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix app tests bench migrations
	$(BIN)/ruff format app tests bench migrations

bench: install
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.fanout
	$(BIN)/python -m bench.million

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache relay.db relay.db-wal relay.db-shm relay.db-writer.lock demo.db demo.db-wal demo.db-shm demo.db-writer.lock
