# The two commands a fresh machine needs: `make run` and `make test`.
PYTHON ?= python3

# Optional local settings (see .env.example).
-include .env
export
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --editable .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --editable '.[test]'
	touch $(VENV)/.installed $@

## run: install into .venv if needed, then run the whole system on the embedded store
run: $(VENV)/.installed
	$(BIN)/desks up

## lint: ruff (lint + format) and mypy
lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## test: install test extras, lint, then run the whole suite
test: lint
	$(BIN)/python -m pytest

## bench: the benchmarks whose results are in BENCHMARKS.md
bench: $(VENV)/.installed-test
	$(BIN)/python -m bench.store writes --desks 0
	$(BIN)/python -m bench.store writes --desks 10000
	$(BIN)/python -m bench.store writes --desks 100000
	$(BIN)/python -m bench.store catchup --backlog 100000
	$(BIN)/python -m bench.store events --events 1000000
	$(BIN)/python -m bench.store wakeup --writes 500
	$(BIN)/python -m bench.latency --writes 500 --clients 1
	$(BIN)/python -m bench.latency --writes 500 --clients 10
	$(BIN)/python -m bench.fanout --clients 200 --events 2000
	$(BIN)/python -m bench.takeover --ttl 2 --rounds 5
	$(BIN)/python -m bench.http_load --connections 500 --seconds 20 --rate 1

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
