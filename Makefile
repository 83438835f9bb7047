# quantops — two commands on a fresh machine: `make up` and `make test`.
# Both create .venv and install what they need; nothing is installed by hand.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: up test test-fast bench lint format clean status chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the dependency list changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

up: $(STAMP)
	$(BIN)/quantops up

status: $(STAMP)
	$(BIN)/quantops status

# The dashboard tests drive a real headless browser: Debian's chromium, installed here (never
# from inside a test) when it is missing.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -qq chromium || { apt-get update -qq && apt-get install -y -qq chromium; }; }

test: $(STAMP) chromium
	$(BIN)/python -m pytest -q -p no:cacheprovider

test-fast: $(STAMP) chromium
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	@set -e; for b in bench/bench_*.py; do \
		m=$$(basename $$b .py); echo "== $$m"; $(BIN)/python -m bench.$$m; echo; \
	done

lint: $(STAMP)
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
