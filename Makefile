# Modelyard — the commands README.md promises. Everything installs what it needs when missing.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV     ?= .venv
PY       := $(VENV)/bin/python
# down/status must work without .venv too (PyYAML is in the system python here)
PYANY     = $(if $(wildcard $(PY)),$(PY),python3)
STATE    ?= .local/cluster

.PHONY: help setup lint test test-unit up down status deploy bench

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# Both images' locks as constraints: the dev venv runs the versions the images ship.
$(PY): pyproject.toml serving_image/requirements.txt operator/requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]' -c serving_image/requirements.txt -c operator/requirements.txt
	touch $(PY)

setup: $(PY) ## create .venv with every component and the dev tools

lint: setup ## ruff (lint and format) and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy operator/modelyard serving_image/modelyard_runtime

# The image builds (network- and disk-bound when cold: base image, pip downloads) run beside
# the Go builds (CPU-bound), which saves their ~9 minutes on a cold machine. apt goes first.
test: setup lint ## lint, then every tier: unit, runtime, image (Docker), cluster (local kube-apiserver), e2e (real kubelet)
	hack/dockerd.sh
	hack/node/prereqs.sh
	@mkdir -p .local
	{ hack/build-runtime-image.sh && hack/build-operator-image.sh; } >.local/image-builds.log 2>&1 & \
	  images=$$!; \
	  KUBE_EXTRA_CMDS="kubelet kube-proxy" hack/kube-binaries.sh && hack/coredns-binaries.sh && \
	    hack/prometheus-binaries.sh; built=$$?; \
	  wait $$images; imaged=$$?; echo "--- image builds (.local/image-builds.log)"; \
	  cat .local/image-builds.log; [ $$built -eq 0 ] && [ $$imaged -eq 0 ]
	$(PY) -m pytest tests

test-unit: setup ## the pure core only
	$(PY) -m pytest tests/unit

up: setup ## the main job: local cluster + real node, operator pod from manifests/, samples trained and served (root)
	$(PY) hack/mainjob.py up --dir $(STATE)

down: ## stop what `make up` started (node, control plane, CoreDNS); restore host state
	$(PYANY) hack/mainjob.py down --dir $(STATE)

status: ## what `make up` left running
	@$(PYANY) hack/mainjob.py status --dir $(STATE)

deploy: ## install CRDs, RBAC and the operator into the cluster your kubeconfig points at
	@kubectl config current-context >/dev/null 2>&1 || \
	 { echo "no current kubectl context: point KUBECONFIG at a cluster (e.g. kind)"; exit 1; }
	@echo "deploying to context $$(kubectl config current-context)"
	kubectl apply -k manifests/
	kubectl wait --for=condition=Established --timeout=60s \
	  crd/trainingjobs.modelyard.io crd/modeldeployments.modelyard.io

bench: setup ## benchmarks against peers (prints ratios)
	$(PY) benchmarks/run.py $(BENCH_ARGS)
