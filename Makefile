# Baton: `make demo` and `make test` are the two commands a fresh machine needs.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast lint bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/baton demo --workspace .baton --host 127.0.0.1 --port 8000

test: $(STAMP)
	$(BIN)/pytest -q -n 2

test-fast: $(STAMP)
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
