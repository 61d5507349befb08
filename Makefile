# The README's commands. Every target creates and reuses a local virtualenv, so a fresh
# clone needs nothing but Python 3.11 (and root or sudo for Debian's prometheus package).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MODEL_DIR ?= models

.PHONY: run test test-fast system-deps venv stack bench clean kubernetes-rules

$(STAMP): setup.cfg pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test,report]'
	touch $(STAMP)

venv: $(STAMP)

# The pinned kubectl (Kustomize built in) that tests/test_kubernetes.py renders the manifests
# with: Debian's is too old (scripts/install_kubectl.py says where this one comes from).
KUBECTL := $(BIN)/kubectl
$(KUBECTL): scripts/install_kubectl.py | $(STAMP)
	$(BIN)/python scripts/install_kubectl.py $(KUBECTL) && touch $(KUBECTL)

system-deps:
	@PYTHON=$(PYTHON) scripts/install-system-deps.sh

## run: the service on http://127.0.0.1:8000 (trains a synthetic-data model first if none exists)
run: $(STAMP)
	@test -f $(MODEL_DIR)/model_card.json || { \
	  echo ">>> No model in $(MODEL_DIR)/: training one on synthetic BAAC-format data (offline default)."; \
	  $(BIN)/accident-api train --synthetic --out $(MODEL_DIR); }
	$(BIN)/accident-api serve --model $(MODEL_DIR)

## test: the whole suite, integration tests with real gunicorn and Prometheus included
test: system-deps $(STAMP) $(KUBECTL)
	$(BIN)/python -m pytest

## test-fast: unit tests only (no gunicorn, Prometheus or nginx processes, nothing slow; the
## Kubernetes manifest tests run when a kubectl is installed, `make test` installs it)
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m 'not integration and not slow'

## bench: side-by-side benchmark (not in CI): seed-style reference, our service, ceiling; see docs/performance.md
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test,bench,report]'
	touch $(BENCH_STAMP)

bench: system-deps $(BENCH_STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

## bench-capacity: load/run.py against the ceiling app at 2,000 req/s, beside the same engine in-process (not in CI)
.PHONY: bench-capacity
bench-capacity: system-deps $(STAMP)
	$(BIN)/python bench/capacity.py $(CAPACITY_ARGS)

## stack: the stack without Docker: REPLICAS API instances (default 1) under gunicorn behind nginx,
## plus a local Prometheus (repo configs), prints URLs; Ctrl-C stops everything. make stack REPLICAS=3
stack: system-deps $(STAMP)
	VENV_BIN=$(BIN) MODEL_DIR=$(MODEL_DIR) scripts/stack.sh

## load: drive the running API with the load generator, e.g. make load LOAD_ARGS='--rate 50 --duration 60 --drift vma=40'
.PHONY: load
LOAD_ARGS ?=
load: $(STAMP)
	$(BIN)/python load/run.py $(LOAD_ARGS)

## audit: known vulnerabilities in the pinned and installed dependencies (pip-audit + PyPI)
.PHONY: audit
audit: $(STAMP)
	$(BIN)/python scripts/audit_deps.py

## soak: 10 min steady load through a worker kill, a model update and a Prometheus restart
.PHONY: soak
SOAK_ARGS ?= --duration 600 --rate 20
soak: $(STAMP)
	$(BIN)/python load/soak.py $(SOAK_ARGS)

## kubernetes-rules: rewrite the PrometheusRule of deploy/kubernetes after a change in prometheus/rules/*.yml
kubernetes-rules: $(STAMP)
	$(BIN)/python scripts/render_prometheus_rule.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info

## lock: after changing a pin in setup.cfg, install it *without* the old constraints (they
## would contradict the new pin; pip keeps the installed transitive versions that still fit)
## and rewrite constraints.txt from the venv
.PHONY: lock
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[test,bench,report]'
	$(BIN)/python scripts/lock_deps.py
	touch $(STAMP)
