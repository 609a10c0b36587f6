# Two commands on a fresh Debian/Ubuntu machine: `make demo` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PACKAGES := controlplane collectors tuner engine
# Debian packages the tests use; installed only when missing.
# chromium runs the web UI's browser tests; haproxy fronts process-managed engines;
# python3.11(-venv) builds the Triton server's venv.
SYSTEM_PACKAGES := postgresql prometheus prometheus-alertmanager nftables iproute2 chromium \
	haproxy python3.11 python3.11-venv

.PHONY: help
help:
	@echo "make demo   - install, migrate the SQLite store, start a reference engine and the control plane"
	@echo "make test   - install what the tests need (system packages too) and run every check"
	@echo "make lint   - ruff, mypy and the layer contracts only"
	@echo "make docs   - regenerate generated files (docs/settings.md, alerts/canonical.rules.yml)"
	@echo "make dashboards - regenerate the Grafana dashboard JSON (dashboards/json/)"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch is pinned to 2.13.0 in pyproject.toml: an open range would pull a CUDA build.
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

.PHONY: install
install: $(STAMP)

.PHONY: system-deps
system-deps:
	scripts/install_system_packages.sh $(SYSTEM_PACKAGES)
	scripts/ensure_postgres.sh

.PHONY: lint
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# A real Triton Inference Server (CPU) for the triton adapter's tests: see the script.
.PHONY: triton-venv
triton-venv:
	scripts/build_triton_venv.sh .triton-venv

.PHONY: test
# What `make test` installs it also requires: a missing PostgreSQL, promtool or network
# namespaces (root) fail the run instead of skipping tests silently.
test: system-deps $(STAMP) triton-venv lint
	CP_TEST_REQUIRE_TRITON=1 CP_TEST_REQUIRE_POSTGRES=1 CP_TEST_REQUIRE_PROMTOOL=1 CP_TEST_REQUIRE_NETNS=1 $(BIN)/pytest

.PHONY: docs
docs: $(STAMP)
	$(BIN)/python -m controlplane.settings > docs/settings.md
	$(BIN)/python -m controlplane.prometheus > alerts/canonical.rules.yml

.PHONY: dashboards
dashboards: $(STAMP)
	$(BIN)/python -m dashboards.build

.PHONY: demo
demo: $(STAMP)
	scripts/demo.sh
