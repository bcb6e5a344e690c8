# Herd's developer entry points. `make demo` and `make test` are the README's quick start.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
VENV_STAMP := $(VENV)/.installed
PY := $(VENV)/bin/python
export KUBECONFIG := $(CURDIR)/.cluster/kubeconfig

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(VENV_STAMP): pyproject.toml apps/runtime/pyproject.toml apps/examples/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]' -e apps/runtime -e apps/examples
	touch $@

.PHONY: venv
venv: $(VENV_STAMP) ## create the virtualenv in .venv with Herd and its dev tools

.PHONY: tools
tools: ## build the pinned control-plane binaries (cached outside the repo)
	@hack/build-tools.sh >/dev/null

.PHONY: images
images: ## build the images the real node runs (buildah; cached by their inputs)
	@hack/images.sh import

.PHONY: cluster-up
cluster-up: ## start the local control plane (or reuse the running one)
	@hack/cluster.sh up

.PHONY: cluster-down
cluster-down: ## stop the local control plane and free its ports
	@hack/cluster.sh down

.PHONY: lint
lint: $(VENV_STAMP) ## ruff, the import contracts (pyproject.toml), hadolint over the Dockerfiles
	$(VENV)/bin/ruff check operator tests bench apps
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/ruff format --check operator tests bench apps
	$(VENV)/bin/hadolint Dockerfile apps/examples/Dockerfile apps/examples/Dockerfile.plain \
	  apps/runtime/Dockerfile

.PHONY: test-unit
test-unit: $(VENV_STAMP) ## the fast tier: pure tests, no cluster
	$(PY) -m pytest tests/unit apps/runtime/tests

.PHONY: fuzz
fuzz: $(VENV_STAMP) ## the property test of every spec the schema admits, at length (20,000 examples)
	HERD_FUZZ_EXAMPLES=20000 $(PY) -m pytest -q tests/unit/test_fuzz.py -p no:cacheprovider

.PHONY: test
test: lint tools $(VENV_STAMP) ## everything: lint, unit and integration tests on the local cluster
	$(PY) -m pytest -n 2 --dist loadgroup -m "not stops_cluster and not disrupts_cluster"
	$(PY) -m pytest -m "disrupts_cluster or stops_cluster"

.PHONY: demo
demo: $(VENV_STAMP) cluster-up ## the main job: a local cluster running Herd and the examples
	@hack/demo.sh

.PHONY: demo-down
demo-down: ## stop what `make demo` started
	@hack/cluster.sh down

.PHONY: generate
generate: $(VENV_STAMP) ## regenerate the CRD and the API reference from operator/herd/api.py
	$(VENV)/bin/herd crd > charts/herd/crds/webservices.herd.dev.yaml
	$(VENV)/bin/herd crd --peering > charts/herd/crds/kopfpeerings.kopf.dev.yaml
	$(PY) -m herd.apidocs > docs/api.md

.PHONY: lock
lock: $(VENV_STAMP) ## re-resolve the images' hashed lock files (requirements.lock, apps/examples)
	hack/lock.sh

.PHONY: bench-dataplane
bench-dataplane: $(VENV_STAMP) ## gunicorn defaults vs Herd's tuning vs a grid, with wrk (~12 min)
	$(PY) -m bench.dataplane --write docs/benchmarks.md

.PHONY: bench-memory
bench-memory: $(VENV_STAMP) ## per-worker PSS with and without preload; a leak with and without max-requests (~1 min)
	$(PY) -m bench.memory --write docs/benchmarks.md

.PHONY: bench-saturation
bench-saturation: $(VENV_STAMP) ## what utilization, the in-flight gauge and queue time read past a pod's capacity (~1 min)
	$(PY) -m bench.saturation

.PHONY: bench-utilization
bench-utilization: $(VENV_STAMP) ## the autoscaler's decision after a load step, RPM only vs targetUtilization, no cluster (~4 min)
	$(PY) -m bench.utilization

.PHONY: bench-reconcile
bench-reconcile: $(VENV_STAMP) tools ## apply-to-Ready latency, writes per reconcile, operator memory
	$(PY) -m bench.reconcile --write docs/benchmarks.md

.PHONY: bench-autoscale
bench-autoscale: $(VENV_STAMP) tools ## autoscaler reaction to a load step and stability under steady load
	$(PY) -m bench.autoscale --write docs/benchmarks.md

.PHONY: screenshots
screenshots: $(VENV_STAMP) ## the dashboard's screenshots in docs/images, from its browser tests (no cluster)
	HERD_SCREENSHOTS=docs/images $(PY) -m pytest -q -p no:cacheprovider tests/dashboard/test_browser.py \
	  -k "test_the_list_shows or test_the_webservice_page_shows"

.PHONY: bench-dashboard
bench-dashboard: $(VENV_STAMP) ## herd dashboard: process start to the first list page (no cluster)
	$(PY) -m bench.dashboard --write docs/dashboard.md

.PHONY: bench-canary
bench-canary: $(VENV_STAMP) tools ## canary: image change to first weight, failing canary to rollback
	$(PY) -m bench.canary --write docs/benchmarks.md
