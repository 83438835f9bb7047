# quantops — two commands on a fresh machine: `make up` and `make test`.
# Both create .venv and install what they need; nothing is installed by hand.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: up test test-fast bench soak lint format clean status promtool

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

test: $(STAMP) promtool
	$(BIN)/python -m pytest -q -p no:cacheprovider

# The alert tests (tests/deploy/test_observability.py) need promtool, from Debian's prometheus
# package: installed here when missing and running as root; otherwise those tests skip. The
# package's own Prometheus daemon is not wanted, so it is stopped and disabled where systemd runs.
promtool:
	@command -v promtool >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing promtool (Debian package prometheus)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends prometheus >/dev/null && \
	    { systemctl disable --now prometheus >/dev/null 2>&1 || true; }; \
	  else echo "promtool missing (not root, or no apt-get): the alert tests will skip"; fi; }

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	@set -e; for b in bench/bench_*.py; do \
		m=$$(basename $$b .py); echo "== $$m"; $(BIN)/python -m bench.$$m; echo; \
	done

# The soak benchmark (bench/soak.py, not a test): 30 minutes by default; SOAK_ARGS="--minutes 3"
# for a short run. Prints a line a minute, a verdict, and the path of its PNG.
SOAK_ARGS ?=
soak: $(STAMP)
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
