# dgov — the two commands: `make run` and `make test`. Everything else is a helper of those.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.dgov-installed
PYTEST_WORKERS ?= 2
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup run serve test test-pg test-e2e lint bench demo clean

$(STAMP): pyproject.toml package.json package-lock.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	npm ci --no-audit --no-fund --loglevel=error
	$(BIN)/dgov i18n_compile
	touch $(STAMP)

## setup: create .venv, install Python and npm dependencies, compile translations
setup: $(STAMP)

## run: migrate the embedded database, seed the demo province once, serve on 127.0.0.1:8000
run: setup
	$(BIN)/dgov serve --demo

## test: ruff and the whole suite on SQLite (browser tests excluded; see test-e2e)
test: setup
	$(BIN)/ruff check .
	$(BIN)/pytest -m "not e2e" -n $(PYTEST_WORKERS) -q

## test-pg: the same suite on PostgreSQL (DATABASE_URL must point at a server)
test-pg: setup
	@test -n "$$DATABASE_URL" || { echo "DATABASE_URL is not set (e.g. postgres://postgres@127.0.0.1:5432/dgov)"; exit 2; }
	$(BIN)/pytest -m "not e2e" -n $(PYTEST_WORKERS) -q

## test-e2e: browser tests (Playwright driving Debian's chromium at /usr/bin/chromium)
test-e2e: setup
	$(BIN)/pytest -m e2e -q

lint: setup
	$(BIN)/ruff check .

## bench: the benchmarks in bench/ (figures go to docs/benchmarks.md)
bench: setup
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) node_modules var .pytest_cache .ruff_cache
