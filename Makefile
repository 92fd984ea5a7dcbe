# Two commands on a fresh machine: `make run` (the service on the embedded default) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run import test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)            ## the long-running service: workers + hourly schedule, embedded SQLite + Redis
	$(BIN)/jobimporter run

import: $(STAMP)         ## import every feed once and print the summary
	$(BIN)/jobimporter import

test: $(STAMP)           ## the whole suite against real private Redis, PostgreSQL, SecantusDB; 2 processes
	$(BIN)/pytest -q -p no:cacheprovider -n 2

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

bench: $(STAMP)          ## speed and memory ratios (see bench/README.md)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) data test-artifacts bench/out
