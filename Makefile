# Two set-up commands for a new user: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/pip install --constraint constraints.txt
DATA   ?= ../shared/data
CORE   := $(VENV)/.core-installed
DEV    := $(VENV)/.dev-installed

.PHONY: venv dev-venv demo test system-deps lint typecheck bench bench-quick bench-ingest bench-ingest-ray clean

# The package and its runtime needs: enough for `make demo` and `vectorseam serve`.
$(CORE): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, from the constraints file, so nothing later drags in a CUDA build.
	$(PIP) --quiet torch==2.13.0
	$(PIP) --quiet -e .
	touch $(CORE)

# Tests and benchmarks add the store adapters, the test tools (the local LLM server compiles once,
# about 8 minutes on 2 cores; pip caches the wheel) and the benchmark baselines.
$(DEV): $(CORE) $(wildcard adapters/*/pyproject.toml)
	$(PIP) --quiet -e '.[dev,bench]'
	@for a in adapters/*/; do \
	  if [ -f $$a/pyproject.toml ]; then echo "installing adapter $$a"; $(PIP) --quiet -e "$$a[test]" || exit 1; fi; \
	done
	touch $(DEV)

venv: $(CORE)
dev-venv: $(DEV)

demo: venv
	$(BIN)/vectorseam ingest $(DATA)/cookbook/fine_food_reviews_1k.csv --collection reviews \
	  --text-template 'Title: {Summary}; Content: {Text}' \
	  --metadata-fields Score,ProductId,UserId,Time
	$(BIN)/vectorseam search --collection reviews -k 3 \
	  "delicious beans" "whole wheat pasta" "bad delivery" "spoilt" "pet food"

# What the tests need beyond Python packages: a PostgreSQL server with pgvector (built from Debian's
# source package when apt has none) and Chromium for the browser test. Each script is idempotent.
system-deps:
	bash scripts/install-pgvector.sh
	@if [ -f scripts/install-browser.sh ]; then bash scripts/install-browser.sh; fi

# The import contracts first (seconds): a layer violation fails before the long test run.
test: dev-venv system-deps
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

lint: dev-venv
	$(BIN)/ruff check src tests adapters benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: dev-venv
	$(BIN)/python -m benchmarks.run

bench-quick: dev-venv
	$(BIN)/python -m benchmarks.run --quick

# About an hour on 2 cores: embeds SciFact and 100k rows with the real model, four times each.
bench-ingest: dev-venv system-deps
	$(BIN)/python -m benchmarks.ingest_bench

# A few minutes: the load job on a local Ray cluster (1 and 2 embedding workers) against the local job.
bench-ingest-ray: dev-venv system-deps
	$(BIN)/python -m benchmarks.ingest_ray --limit 300

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
