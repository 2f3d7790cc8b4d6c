# Every target creates .venv and installs what it needs: nothing is installed by hand.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install lint format typecheck unit integration stack e2e test run clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP)
	$(BIN)/mypy functions/token_url devtools emulator

unit: $(STAMP)
	$(BIN)/pytest tests/unit

integration: $(STAMP)
	$(BIN)/pytest tests/integration

# The local stack over HTTP (tests/stack) and the demo in headless Chromium (tests/e2e).
stack: $(STAMP)
	$(BIN)/pytest tests/stack

e2e: $(STAMP)
	$(BIN)/pytest tests/e2e

# The README's one test command: lint, types, then every test.
test: lint typecheck
	$(BIN)/pytest

# The whole service on this machine: moto, the Identity Cloud emulator, the function behind a local
# HTTP API gateway, and the demo site. Settings from the environment (README, "Run it locally").
run: $(STAMP)
	$(BIN)/python -m devtools.local_stack

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis test-output
