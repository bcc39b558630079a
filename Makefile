# Khala — the two commands: `make run` starts a local cluster, `make test` runs every test.
PYTHON ?= $(shell scripts/find-python)
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 7000
# Test files run in TEST_JOBS parallel pytest workers (one file stays on one worker), beside the
# cgroup v2 guest suite (tests/guest), which runs from the start (scripts/run-tests).
TEST_JOBS ?= 3

.PHONY: install run test test-deps lint typecheck unit bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -n "$(PYTHON)" || { echo "make: no Python 3.11+ found" >&2; exit 1; }
	@echo "make: Python environment in $(VENV) from $(PYTHON) (first time ~1 min) ..."
	@$(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install -q --upgrade pip
	@$(BIN)/pip install -q -e '.[dev]'
	@touch $@

run: install
	bash scripts/install-deps.sh run
	$(BIN)/khala up --port $(PORT)

test-deps: install
	bash scripts/install-deps.sh test

lint: install
	$(BIN)/ruff check khala tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/python scripts/check_imports.py

typecheck: lint

test: test-deps lint
	bash scripts/run-tests $(TEST_JOBS)

unit: install
	$(BIN)/pytest -q -m "not integration"

bench: install
	bash scripts/install-deps.sh bench
	$(BIN)/pip install -q -e '.[dev,bench]'
	$(BIN)/python -m benchmarks $(BENCH_ARGS)
	$(BIN)/python -m benchmarks.judging
	$(BIN)/python -m benchmarks.streaming

clean:
	rm -rf $(VENV) khala-data .pytest_cache .mypy_cache .ruff_cache
