# anesbench developer entry points. `make demo` and `make test` do all setup on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast protos protos-check bench lint clean

setup: $(STAMP) .tools/.installed

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

.tools/.installed: scripts/install-tools.sh $(STAMP)
	PYTHON=$(BIN)/python bash scripts/install-tools.sh
	touch $@

demo: $(STAMP)
	bash scripts/demo.sh

protos: $(STAMP)
	$(BIN)/python scripts/gen_protos.py

protos-check: $(STAMP)
	$(BIN)/python scripts/gen_protos.py --check

test: setup protos-check lint
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -x tests/unit

bench: $(STAMP)
	$(BIN)/python bench/run_bench.py

lint: $(STAMP)
	$(BIN)/ruff check services tests scripts bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .tools build services/*.egg-info .pytest_cache
