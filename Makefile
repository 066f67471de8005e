# Two commands on a fresh machine with Python 3.11+:
#   make upgrade   set up .venv and upgrade the default database to head
#   make test      set up .venv and run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup upgrade test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

upgrade: $(STAMP)
	$(BIN)/alembic upgrade head

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests alembic benchmarks
	$(BIN)/ruff format --check src tests alembic benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/copy_swap.py

clean:
	rm -rf $(VENV)
