# Two set-up commands for a new user: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/pip install --constraint constraints.txt
DATA   ?= ../shared/data
CORE   := $(VENV)/.core-installed
DEV    := $(VENV)/.dev-installed
DOCSENV := $(VENV)/.docs-installed

.PHONY: venv dev-venv demo test system-deps lint typecheck docs docs-check screenshots bench bench-quick bench-ingest bench-ingest-ray clean

# The package with the extras `make demo` and `vectorseam serve` need (`all`: the local model, the
# service, analysis, Parquet); `pip install vectorseam` alone is the light core (see pyproject.toml).
$(CORE): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, from the constraints file, so nothing later drags in a CUDA build.
	$(PIP) --quiet torch==2.13.0
	$(PIP) --quiet -e '.[all]'
	touch $(CORE)

# Tests and benchmarks add the store adapters, the test tools (the local LLM server compiles once,
# about 8 minutes on 2 cores; pip caches the wheel) and the benchmark baselines.
# LLAMA_CMAKE: llama.cpp (the tests' local LLM server) built for any x86-64 with AVX2, not for this very
# CPU: a native build on a CPU with AMX crashed on its first prompt of more than one token.
LLAMA_CMAKE ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
  -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
$(DEV): $(CORE) $(wildcard adapters/*/pyproject.toml)
	CMAKE_ARGS="$(LLAMA_CMAKE)" $(PIP) --quiet -e '.[all,dev,bench]'
	@for a in adapters/*/; do \
	  if [ -f $$a/pyproject.toml ]; then echo "installing adapter $$a"; $(PIP) --quiet -e "$$a[test]" || exit 1; fi; \
	done
	touch $(DEV)

venv: $(CORE)
dev-venv: $(DEV)

# The site's tools (the `docs` extra) beside the package with `all`: the reference pages are generated from
# its settings models, its CLI and its service.
$(DOCSENV): $(CORE)
	$(PIP) --quiet -e '.[all,docs]'
	touch $(DOCSENV)

# The documentation site into site/ (open site/index.html). Strict: a broken link or reference fails.
docs: $(DOCSENV)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# The same build into a temporary folder, as a check: part of `make test` (seconds, no network).
docs-check: $(DOCSENV)
	@out=$$(mktemp -d); NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir "$$out"; \
	  status=$$?; rm -rf "$$out"; exit $$status

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

# The import contracts and the docs build first (seconds): a layer violation or a broken link fails
# before the long test run.
test: dev-venv system-deps
	$(BIN)/lint-imports
	$(MAKE) --no-print-directory docs-check
	$(BIN)/python -m pytest -q

lint: dev-venv
	$(BIN)/ruff check src tests adapters benchmarks docs/hooks
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

# The search page and its cluster map, photographed for the docs (docs/images/); a few minutes.
screenshots: dev-venv system-deps
	$(BIN)/python scripts/page_screenshots.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
