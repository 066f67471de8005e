# On a fresh machine with Python 3.11+:
#   make upgrade    set up .venv and upgrade the default database to head
#   make test       set up .venv and run the fast suite (no test marked slow or e2e)
#   make test-all   the whole suite (what CI runs), then all but the slow on DuckDB 1.4
# .venv holds the newest supported DuckDB, .venv-duckdb-1.4 the oldest (the
# Egregora application's): constraints/ pins each end, pyproject.toml the range.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OLDEST := .venv-duckdb-1.4
OLDEST_STAMP := $(OLDEST)/.installed
PYTEST_FAST := -m "not slow and not e2e"
# WORKERS=2: two pytest-xdist workers, a test file's tests on one worker (its module
# fixtures built once), each worker with its own PostgreSQL server. Off by default:
# on two loaded cores test_concurrent_deploys_upgrade_once's three deploys then
# outwait the 5 s lock timeout (failed 3 runs of 3 with -n 2, passes alone)
WORKERS ?= 0
PYTEST := -m pytest -n $(WORKERS) --dist loadfile

.PHONY: setup setup-duckdb-1.4 upgrade test test-all test-slow test-duckdb-1.4 lint bench clean

$(STAMP): pyproject.toml constraints/duckdb-2.0.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints/duckdb-2.0.txt -e '.[dev]'
	touch $(STAMP)

$(OLDEST_STAMP): pyproject.toml constraints/duckdb-1.4.txt
	$(PYTHON) -m venv $(OLDEST)
	$(OLDEST)/bin/python -m pip install --quiet --upgrade pip
	$(OLDEST)/bin/python -m pip install --quiet -c constraints/duckdb-1.4.txt -e '.[dev]'
	touch $(OLDEST_STAMP)

setup: $(STAMP)

setup-duckdb-1.4: $(OLDEST_STAMP)

upgrade: $(STAMP)
	$(BIN)/alembic upgrade head

test: $(STAMP)
	$(BIN)/python $(PYTEST) $(PYTEST_FAST)

# everything, on both ends of the DuckDB range (the slow tests, which build the
# environments, on the newest only; the end-to-end ones on both)
test-all: $(STAMP) $(OLDEST_STAMP)
	$(BIN)/python $(PYTEST)
	$(MAKE) test-duckdb-1.4

test-slow: $(STAMP)
	$(BIN)/python $(PYTEST) -m slow

test-duckdb-1.4: $(OLDEST_STAMP)
	$(OLDEST)/bin/python $(PYTEST) -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check src tests alembic benchmarks
	$(BIN)/ruff format --check src tests alembic benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/copy_swap.py

clean:
	rm -rf $(VENV) $(OLDEST)
