# Khala — the two commands: `make run` starts a local cluster, `make test` runs every test.
PYTHON ?= $(shell scripts/find-python)
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 7000
# Test files run in TEST_JOBS parallel pytest workers (one file stays on one worker), beside the
# cgroup v2 guest suite (tests/guest), which runs from the start (scripts/run-tests).
TEST_JOBS ?= 3

# The judge image (docs/images.md): its tar, and the Debian packages kept for a rebuild.
JUDGE_TAR ?= images/out/judge.tar
APT_CACHE ?= images/out/apt-cache

.PHONY: install run test test-deps lint typecheck unit bench images clean

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
	$(BIN)/python -m benchmarks.streaming

# Builds the judge image from images/judge.toml (as root: mmdebstrap; minutes, a download of
# ~750 MB the first time), then imports it into the cluster at $$KHALA_URL when one is set.
# tests/judgeimage (part of `make test`) runs once the tar exists.
images: install
	bash scripts/install-deps.sh images
	@mkdir -p $(dir $(JUDGE_TAR))
	$(BIN)/khala image build --recipe images/judge.toml --apt-cache $(APT_CACHE) \
		--output $(JUDGE_TAR) $(if $(KHALA_URL),,--no-import)

clean:
	rm -rf $(VENV) khala-data .pytest_cache .mypy_cache .ruff_cache
