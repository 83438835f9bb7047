# quantops — two commands on a fresh machine: `make up` and `make test`.
# Both create .venv and install what they need, exactly as locked: nothing is resolved on a
# user's machine, so what a new user installs is what CI tested.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Everything `make` installs (runtime, test and dev tools) and the runtime subset the container
# image installs; both from one resolution (`make lock`), with hashes.
LOCK         := requirements/dev.lock
RUNTIME_LOCK := requirements/runtime.lock
# The venv is rebuilt from scratch when the lock changes (so nothing dropped from the lock
# lingers); the project alone is reinstalled when pyproject.toml changes.
DEPS    := $(VENV)/.deps
STAMP   := $(VENV)/.installed
UV_COMPILE = $(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	--index-url https://pypi.org/simple --no-header --annotation-style line

.PHONY: up test test-fast test-cluster fuzz bench soak lint audit lock format clean status promtool chromium

$(DEPS): $(LOCK)
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
		-r $(LOCK)
	@touch $(DEPS)

# --no-deps and no build isolation: the project's dependencies and its build backend
# (setuptools) come from the lock above, never from a second resolution.
$(STAMP): $(DEPS) pyproject.toml
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps \
		--no-build-isolation -e .
	$(BIN)/python -m pip check
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

test: $(STAMP) promtool chromium
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

# Minutes, not seconds: a three-member NATS cluster killed, paused and restarted under load.
test-cluster: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -m cluster tests/cluster

test-fast: $(STAMP) chromium
	$(BIN)/python -m pytest -q -m "not slow"

# Longer hostile-input run: 100 schemathesis examples per operation and mode (make test: 3).
fuzz: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/fuzz --fuzz-examples=100

bench: $(STAMP)
	@set -e; for b in bench/bench_*.py; do \
		m=$$(basename $$b .py); echo "== $$m"; $(BIN)/python -m bench.$$m; echo; \
	done

# The soak benchmark (bench/soak.py, not a test): 30 minutes by default; SOAK_ARGS="--minutes 3"
# for a short run. Prints a line a minute, a verdict, and the path of its PNG.
SOAK_ARGS ?=
soak: $(STAMP)
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

lint: $(STAMP) audit
	$(BIN)/ruff check .
	$(BIN)/mypy

# Known vulnerabilities in the locked versions (.ci/audit says when the database is unreachable).
audit: $(STAMP)
	$(BIN)/python .ci/audit.py $(LOCK)

# Re-resolve every dependency to the newest versions pyproject.toml allows, with hashes. Run it
# after changing dependencies in pyproject.toml, and to take updates (see CONTRIBUTING.md).
# The runtime lock is resolved first and constrains the full one, so the image and the test
# environment share every runtime version.
lock: $(STAMP)
	@$(BIN)/python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['build-system']['requires'], sep='\n')" > $(VENV)/build-requires.in
	$(UV_COMPILE) pyproject.toml $(VENV)/build-requires.in -o $(VENV)/runtime.lock
	$(UV_COMPILE) pyproject.toml $(VENV)/build-requires.in --all-extras -c $(VENV)/runtime.lock \
		-o $(VENV)/dev.lock
	@# Replace a lock only when it changed: a rewritten but equal lock would rebuild the venv.
	@for f in runtime dev; do sed -i 's| $(VENV)/build-requires.in| build-system|; s|$(VENV)/runtime.lock|$(RUNTIME_LOCK)|' $(VENV)/$$f.lock; \
		cmp -s $(VENV)/$$f.lock requirements/$$f.lock || { mv $(VENV)/$$f.lock requirements/$$f.lock; echo "updated requirements/$$f.lock"; }; done

format: $(STAMP)
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
