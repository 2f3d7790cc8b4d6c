# Every target creates .venv and installs what it needs: nothing is installed by hand.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# AWS SAM CLI in a virtual environment of its own: its pins clash with the function's (pyproject.toml).
SAM_VENV ?= .venv-sam
SAM := $(SAM_VENV)/bin/sam
SAM_STAMP := $(SAM_VENV)/.installed-stamp
export SAM_CLI_TELEMETRY := 0

.PHONY: install lint format typecheck unit integration local stack e2e deploy-checks test run validate build clean soak bench

# The function's dependency tree at the versions its artifact packages (functions/token_url/requirements.txt).
FUNCTION_PINS := functions/token_url/requirements.txt

$(STAMP): pyproject.toml $(FUNCTION_PINS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' --constraint $(FUNCTION_PINS)
	touch $(STAMP)

$(SAM_STAMP): pyproject.toml
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/python -m pip install --quiet --group sam
	touch $(SAM_STAMP)

install: $(STAMP) $(SAM_STAMP)

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP)
	$(BIN)/mypy functions/token_url devtools emulator importer bench testkit

unit: $(STAMP)
	$(BIN)/pytest tests/unit

integration: $(STAMP)
	$(BIN)/pytest tests/integration

# The full counts of what `make test` runs small: 10,000 warm invocations of every flow and bad input in
# one process (CI: 600), 5,000 hostile events (CI: 300), schemathesis with 2,000 examples per operation (CI: 50).
soak: $(STAMP)
	SOAK_INVOCATIONS=10000 FUZZ_EXAMPLES=5000 $(BIN)/pytest tests/soak tests/integration/test_hostile_input.py -q -s
	FUZZ_EXAMPLES=2000 $(BIN)/pytest tests/fuzz -q -s

# What runs on this machine only (tests/local): the local stack over HTTP, the demo in headless
# Chromium, the local gateway and the Identity Cloud emulator; `stack` and `e2e` are its two slow parts.
local: $(STAMP)
	$(BIN)/pytest tests/local

stack: $(STAMP)
	$(BIN)/pytest tests/local/test_stack_over_http.py

e2e: $(STAMP)
	$(BIN)/pytest tests/local/test_demo_browser.py

# The SAM application (tests/infra): the template's rules, IAM against the calls the flows make,
# `sam validate --lint`, `sam build` (where a python3.13 is found), the artifact, events/.
deploy-checks: $(STAMP) $(SAM_STAMP)
	$(BIN)/pytest tests/infra

# The README's one test command: lint, types, then every test.
test: lint typecheck $(SAM_STAMP)
	$(BIN)/pytest

# `sam validate --lint` and `sam build` from the repository root (samconfig.toml names infra/template.yaml).
validate: $(SAM_STAMP)
	$(SAM) validate --lint

build: $(SAM_STAMP) $(STAMP)
	python_dir="$$($(BIN)/python -m devtools.sam_cli python-dir)" && PATH="$$python_dir:$$PATH" $(SAM) build

# The whole service on this machine: moto, the Identity Cloud emulator, the function behind a local
# HTTP API gateway, and the demo site. Settings from the environment (docs/configuration.md, docs/local-development.md).
run: $(STAMP)
	$(BIN)/python -m devtools.local_stack

# Cold start, the first request after a SnapStart restore, warm overhead, calls, connections, memory and
# artifact, each beside its floor (docs/performance.md):
# prints the table, writes test-output/bench.json, exits 1 if a budget does not hold.
# A few minutes; `make test` runs it once with tiny counts (tests/bench).
bench: $(STAMP) $(SAM_STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(SAM_VENV) .bench .aws-sam .pytest_cache .mypy_cache .ruff_cache .hypothesis test-output
