# Modelyard — the commands README.md promises. Everything installs what it needs when missing.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV     ?= .venv
PY       := $(VENV)/bin/python
STATE    ?= .local/cluster
KUBEBIN   = $(shell hack/kube-binaries.sh | tail -n 1)

.PHONY: help setup lint test test-unit test-runtime test-image test-cluster up down deploy bench

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(PY): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(PY)

setup: $(PY) ## create .venv with every component and the dev tools

lint: setup ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy operator/modelyard serving_image/modelyard_runtime

test: setup ## every tier: unit, runtime, image (Docker), cluster (local kube-apiserver), e2e (real kubelet)
	hack/dockerd.sh
	hack/build-runtime-image.sh
	hack/node/prereqs.sh
	KUBE_EXTRA_CMDS="kubelet kube-proxy" hack/kube-binaries.sh
	$(PY) -m pytest tests

test-unit: setup ## the pure core only
	$(PY) -m pytest tests/unit

up: setup ## start a local cluster, run the operator, apply the samples
	$(PY) -m tests.cluster.localcluster up --dir $(STATE)

down: ## stop what `make up` started
	$(PY) -m tests.cluster.localcluster down --dir $(STATE)

deploy: ## install CRDs, operator and RBAC into the cluster kubectl points at
	kubectl apply -k manifests/

bench: setup ## benchmarks against peers (prints ratios)
	$(PY) benchmarks/run.py
