# One obvious way to run things. `make test` sets up from nothing and runs the suite.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: setup redis-server test lint typecheck check run bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

redis-server:
	@scripts/ensure-redis-server

test: setup redis-server
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup
	$(VENV)/bin/mypy

check: lint typecheck test

# Install, make sure a Redis answers on localhost:6379, and run one pass (needs .env).
run: setup redis-server
	@scripts/ensure-local-redis
	$(VENV)/bin/tgstats collect --once

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
