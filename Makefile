# loopfree — run `make help` for the list of targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PYLIBDIR := $(shell $(PYTHON) -c "import sysconfig; print(sysconfig.get_config_var('LIBDIR'))")
# cargo test links libpython; point it (and the test binary) at the venv's interpreter.
CARGO_ENV := PYO3_PYTHON=$(abspath $(PY)) LD_LIBRARY_PATH=$(PYLIBDIR):$$LD_LIBRARY_PATH
PYTEST_ARGS ?=

.PHONY: help
help:  ## Show this help
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}'

$(VENV)/.installed: requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

.PHONY: install
install: $(VENV)/.installed  ## Create .venv and install the pinned dev dependencies

.PHONY: build
build: install  ## Build the Rust extension (release) into .venv
	$(VENV)/bin/maturin develop --release --quiet

.PHONY: test
test: build  ## Run every test: cargo test, the httpx-suite ratchet, then pytest
	$(CARGO_ENV) cargo test --quiet
	$(PY) compat/run.py --groups 5
	$(PY) -m pytest $(PYTEST_ARGS)

.PHONY: lint
lint: install  ## cargo fmt --check, clippy (no-panic wall), ruff, mypy
	cargo fmt --check
	$(CARGO_ENV) cargo clippy --all-targets --quiet -- -D warnings
	$(VENV)/bin/ruff check python tests examples benches
	$(VENV)/bin/ruff format --check python tests examples benches
	$(VENV)/bin/mypy

.PHONY: format
format: install  ## Format Rust and Python sources
	cargo fmt
	$(VENV)/bin/ruff format python tests examples benches
	$(VENV)/bin/ruff check --fix python tests examples benches

.PHONY: demo
demo: build  ## The main job: Flask app with one shared AsyncClient under load, loopfree vs httpx
	$(PY) examples/demo.py

.PHONY: bench
bench: build  ## Quick benchmark profile against the peers; writes docs/benchmarks.md
	$(PY) benches/run.py

.PHONY: compat
compat: build  ## Run httpx 0.28.1's own test suite against loopfree
	$(PY) compat/run.py
