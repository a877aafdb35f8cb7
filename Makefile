# Developer and CI entry points. `make test` is what .ci/run calls on a fresh clone.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
VENV_STAMP := $(VENV)/.installed
# Exact versions of every dependency (dev and rehearsal included), from pyproject.toml by `make lock`.
LOCK := requirements.lock
NPM_STAMP := node_modules/.npm-ci-installed

# Node dependencies only when the project has a package.json.
NODE_DEPS := $(if $(wildcard package.json),$(NPM_STAMP))
# `make run` also works without Node: the local workspace then says Cosmos is not configured.
RUN_NODE_DEPS := $(if $(shell command -v npm 2>/dev/null),$(NODE_DEPS))

.PHONY: help venv run test test-fast lint lock bench bench-audit db-upgrade clean

help:
	@echo "make venv        create .venv and install the project with dev dependencies"
	@echo "make run         Slack with credentials in .env; without them the local workspace in the browser"
	@echo "make test        make lint, then every test against the real parts (starts a local PostgreSQL)"
	@echo "make test-fast   the unit tests only (tests/unit: no network, no database server), under a minute"
	@echo "make lint        ruff check, ruff format --check, mypy --strict and the import contracts"
	@echo "make lock        re-pin requirements.lock from pyproject.toml (pip-compile)"
	@echo "make bench       acknowledgement latency benchmark (bench/ack.py)"
	@echo "make bench-audit audit append/verify/export rates on 1,000,000 rows (bench/audit.py)"
	@echo "make db-upgrade  apply database migrations (opsbot db upgrade)"
	@echo "make clean       remove .venv, node_modules and caches (keeps opsbot.db)"

venv: $(VENV_STAMP)

# Re-installs only when pyproject.toml or the lock is newer than the stamp: the locked versions first,
# then the project itself (editable, no further resolution).
$(VENV_STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -r $(LOCK)
	$(BIN)/python -m pip install --disable-pip-version-check -q --no-deps -e .
	touch $@

lock: venv
	$(BIN)/pip-compile -q --extra dev --extra rehearsal --strip-extras --no-header --no-emit-index-url --no-emit-find-links -o $(LOCK) pyproject.toml

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# Slack when SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET are set; otherwise the local workspace (a
# rehearsal channel in the browser, on loopback). Never the local workspace with OPSBOT_ENV=production.
# RUN_ARGS passes flags on, e.g. `make run RUN_ARGS="--port 0 --no-open"` (see `opsbot run --help`).
RUN_ARGS ?=
run: venv $(RUN_NODE_DEPS)
	$(BIN)/opsbot run $(RUN_ARGS)

# PostgreSQL: in CI, or when OPSBOT_TEST_PG_URL is not given, scripts/pg-up.sh starts a local
# server and provides the URL. Outside CI, if it cannot (no root), the PostgreSQL tests are skipped.
test: lint $(NODE_DEPS)
	@set -euo pipefail; \
	if [ -n "$${CI:-}" ] || [ -z "$${OPSBOT_TEST_PG_URL:-}" ]; then \
	  if url=$$(bash scripts/pg-up.sh); then \
	    export OPSBOT_TEST_PG_URL="$$url"; \
	  elif [ -n "$${CI:-}" ]; then \
	    echo "make test: scripts/pg-up.sh failed; CI needs PostgreSQL" >&2; exit 1; \
	  else \
	    echo "make test: no local PostgreSQL (scripts/pg-up.sh failed); PostgreSQL tests will be skipped" >&2; \
	  fi; \
	fi; \
	echo "OPSBOT_TEST_PG_URL=$${OPSBOT_TEST_PG_URL:-(unset)}"; \
	bash scripts/chromium-up.sh; \
	bash scripts/prometheus-up.sh; \
	set -x; \
	$(BIN)/pytest -q --reruns 1

test-fast: venv
	$(BIN)/pytest -q tests/unit

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: venv
	$(BIN)/python bench/ack.py

bench-audit: venv
	$(BIN)/python bench/audit.py

db-upgrade: venv
	$(BIN)/opsbot db upgrade

clean:
	rm -rf $(VENV) node_modules .mypy_cache .ruff_cache .pytest_cache build *.egg-info
	find . -path ./.git -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
