# Baton: `make demo` and `make test` are the two commands a fresh machine needs.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The browser tests drive Debian's Chromium through Playwright; no browser is ever downloaded.
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install demo test test-fast lint bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "the browser tests need Debian's chromium at $(CHROMIUM)" >&2; exit 1; }
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium \
	  || { $(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

demo: $(STAMP)
	$(BIN)/baton demo --workspace .baton --host 127.0.0.1 --port 8000

test: $(STAMP) $(CHROMIUM)
	$(BIN)/pytest -q -n 2

test-fast: $(STAMP) $(CHROMIUM)
	$(BIN)/pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy src

bench: $(STAMP)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/timers.py
	$(BIN)/python bench/policy.py
	$(BIN)/python bench/import.py
	$(BIN)/python bench/replay.py
	$(BIN)/python bench/outbox.py

clean:
	rm -rf $(VENV) .baton .pytest_cache .mypy_cache .ruff_cache
