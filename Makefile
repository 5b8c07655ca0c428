# The two commands a person needs: `make run` and `make test`. Everything else is a helper.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
# Extra pip arguments for torch, e.g. TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
TORCH_PIP_ARGS ?=
PYTEST_ARGS ?=

export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: run test install install-dev services bench load clean

$(VENV)/.stamp-base: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch's CPU build first, so sentence-transformers does not pull the CUDA build
	$(PY) -m pip install --quiet torch==2.13.0 $(TORCH_PIP_ARGS)
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.stamp-dev: $(VENV)/.stamp-base sdk/python/pyproject.toml
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m pip install --quiet -e "sdk/python[langchain]"
	touch $@

install: $(VENV)/.stamp-base

install-dev: $(VENV)/.stamp-dev

## Serve the API on the embedded default (SQLite, in-process buffer, Qdrant Edge) at http://$(HOST):$(PORT).
## Without MEMORY_ADMIN_KEY it runs without API keys (loopback only: `serve` refuses a public address so).
run: install
	@if [ -z "$$MEMORY_ADMIN_KEY" ] && [ -z "$$MEMORY_AUTH_DISABLED" ] && ! grep -qs '^MEMORY_ADMIN_KEY=' .env; then \
	  echo "make run: no MEMORY_ADMIN_KEY, so API keys are off on $(HOST) (set it to require keys)"; \
	  export MEMORY_AUTH_DISABLED=true; fi; \
	exec $(VENV)/bin/memory-service serve --host $(HOST) --port $(PORT)

services:
	@scripts/ensure-test-services.sh

## Run the whole test suite (real Postgres and Redis; under CI=true a missing one fails the run)
test: install-dev services
	@scripts/ensure-browser.sh
	$(PY) -m pytest -q $(PYTEST_ARGS)

## The LoCoMo retrieval benchmark over HTTP, on a throw-away embedded service (or BENCH_URL=...)
bench: install-dev
	scripts/bench-locomo.sh $(BENCH_ARGS)

## Load benchmark: a real service per backend set (embedded, servers) under mixed concurrent load
load: install-dev services
	$(PY) bench/load.py $(LOAD_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache data
