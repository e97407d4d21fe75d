# The two commands a fresh machine needs: `make run` and `make test`.
PYTHON ?= python3

# Optional local settings (see .env.example).
-include .env
export
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: haproxy run test lint browser bench soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --editable .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --editable '.[test,bench]'
	touch $(VENV)/.installed $@

## run: install into .venv if needed, then run the whole system on the embedded store
run: $(VENV)/.installed
	$(BIN)/desks up

## lint: ruff (lint + format) and mypy
lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## browser: Debian's chromium for the browser tests, installed when missing and running as root
browser:
	@command -v chromium >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1 || \
	  { echo "installing Debian's chromium for the browser tests"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y -qq --no-install-recommends chromium >/dev/null; } || \
	    echo "chromium could not be installed: the browser tests will skip"; }

## haproxy: Debian's haproxy for the load balancer's test, installed when missing and root
haproxy:
	@command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || [ "$$(id -u)" != 0 ] || \
	  ! command -v apt-get >/dev/null 2>&1 || \
	  { echo "installing Debian's haproxy for the load balancer's test"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y -qq --no-install-recommends haproxy >/dev/null; } || \
	    echo "haproxy could not be installed: the load balancer's test will skip"; }

## test: install test extras (and chromium, haproxy), lint, then run the whole suite
test: lint browser haproxy
	$(BIN)/python -m pytest

## soak: writers in several processes while every process is killed, then the oracle
## (SOAK_SECONDS=600 of faults, SOAK_SEED=1; DESKS_TEST_MONGODB_URI soaks a replica set)
SOAK_SECONDS ?= 600
SOAK_SEED ?= 1
soak: $(VENV)/.installed-test
	$(BIN)/python -m tests.soak --seconds $(SOAK_SECONDS) --seed $(SOAK_SEED)

## bench: the benchmarks whose results are in BENCHMARKS.md
bench: $(VENV)/.installed-test
	$(BIN)/python -m bench.store writes --desks 0
	$(BIN)/python -m bench.store writes --desks 10000
	$(BIN)/python -m bench.store writes --desks 100000
	$(BIN)/python -m bench.store catchup --backlog 100000
	$(BIN)/python -m bench.store events --events 1000000
	$(BIN)/python -m bench.store wakeup --writes 500
	$(BIN)/python -m bench.store registry --desks 100000
	$(BIN)/python -m bench.store registry --desks 20000 --by-page
	$(BIN)/python -m bench.fanout --mode flood --clients 100,1000,5000 --events 200
	$(BIN)/python -m bench.fanout --mode paced --clients 100 --rate 500 --seconds 10
	$(BIN)/python -m bench.fanout --mode paced --clients 1000 --rate 50 --seconds 10
	$(BIN)/python -m bench.fanout --mode paced --clients 5000 --rate 10 --seconds 10
	$(BIN)/python -m bench.fanout_cost --clients 5000 --events 600 --rate 20 --measure-all
	$(BIN)/python -m bench.fanout --mode flood --clients 5000 --events 200 --client c --client-pause-us 250000 --servers ours,broadcast
	$(BIN)/python -m bench.fanout --mode flood --clients 5000 --events 200 --client c --client-pause-us 250000 --servers ours --ours-processes 2
	$(BIN)/python -m bench.idle --clients 60000 --broadcasters 6 --client-processes 8 --seconds 30 --client-pause-us 20000
	$(BIN)/python -m bench.idle --clients 100000 --broadcasters 6 --client-processes 8 --seconds 30 --client-pause-us 20000
	$(BIN)/python -m bench.decoupling --dashboards 1000 --posts 300 --rounds 2
	$(BIN)/python -m bench.e2e --desks 0 --dashboards 100 --rates 100,200,400,800
	$(BIN)/python -m bench.e2e --desks 10000 --dashboards 100 --rates 100,200,400,800
	$(BIN)/python -m bench.e2e --desks 100000 --dashboards 100 --rates 100,200,400,800
	$(BIN)/python -m bench.e2e --desks 100000 --dashboards 100 --rates 400 --client c
	$(BIN)/python -m bench.takeover --ttl 2 --rounds 5
	$(BIN)/python -m bench.write_path --reps 3 --writes 3000
	$(BIN)/python -m bench.write_path --reps 3 --writes 3000 --settle 8
	$(BIN)/python -m bench.dashboard --desks 0 20000 100000 --reps 3
	$(BIN)/python -m bench.http_load --connections 500 --seconds 20 --rate 1
	$(BIN)/python -m bench.charts

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
