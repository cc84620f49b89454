# Order & provisioning service: developer commands.
#
#   make run     venv + install + migrate, then catalog mock, fake DigitalOcean and the
#                service together (mocks/dev_stack/); prints a curl walkthrough
#   make test    venv + install, then pytest (extra arguments: PYTEST_ARGS='-k foo -x')
#
# The venv is created on first use; the package is (re)installed only when
# pyproject.toml or constraints.txt changed since the last install.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: help install run test lint format migrate seed openapi config-docs docs bench clean distclean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(PY):
	$(PYTHON) -m venv $(VENV)

# The stamp is newer than pyproject.toml and constraints.txt after a successful install.
$(STAMP): pyproject.toml constraints.txt | $(PY)
	PIP_DISABLE_PIP_VERSION_CHECK=1 $(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $@

install: $(STAMP) ## create .venv and install the package with its dev tools (pinned)

# The bench extra (py-spy, matplotlib for the storm picture), only for `make bench`.
BENCH_STAMP := $(VENV)/.installed-bench
$(BENCH_STAMP): $(STAMP)
	PIP_DISABLE_PIP_VERSION_CHECK=1 $(PY) -m pip install -q -c constraints.txt -e '.[dev,bench]'
	@touch $@

run: $(STAMP) ## migrate, start catalog mock + fake DigitalOcean + service, print a walkthrough
	$(PY) -m mocks.dev_stack

test: $(STAMP) ## run the tests (database: see tests/database.py); PYTEST_ARGS passes through
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP) ## ruff check + ruff format --check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## ruff format + ruff check --fix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

migrate: $(STAMP) ## upgrade DATABASE_URL (default: ./order-service.db) to the latest schema
	$(BIN)/order-service migrate

seed: migrate ## add sample orders in every state
	$(BIN)/order-service seed

openapi: $(STAMP) ## write docs/openapi.json (order-service openapi)
	$(BIN)/order-service openapi --output docs/openapi.json

config-docs: $(STAMP) ## write docs/configuration.md and .env.example from the settings
	$(BIN)/order-service config-docs --output docs/configuration.md --env-example .env.example

docs: openapi config-docs ## regenerate every generated document (openapi, config-docs)

bench: $(BENCH_STAMP) ## run the benchmarks in bench/ (BENCH_ARGS passes through)
	$(PY) -m bench $(BENCH_ARGS)

clean: ## remove caches and build output (keeps .venv and the dev database)
	rm -rf build dist src/*.egg-info .pytest_cache .ruff_cache .hypothesis
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -print0 | xargs -0 rm -rf

distclean: clean ## also remove .venv and the SQLite dev database
	rm -rf $(VENV) order-service.db order-service.db-journal order-service.db-wal order-service.db-shm
