# Tapio: `make run` runs the whole product on an embedded JetStream; `make test` runs every test.
# Both install what is missing first (tools/setup/bootstrap.sh) and are safe to repeat.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
BAZEL ?= bazel
BENCH_SECONDS ?= 30
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help setup run test lint unit integration e2e bench lock clean

help:
	@echo "make run          bootstrap, then run the product on an embedded JetStream (tapio-admin up; Ctrl-C stops)"
	@echo "make test         bootstrap, then ruff, mypy --strict, import contracts, bazel test //..., integration"
	@echo "make lint | unit | integration    one part of make test"
	@echo "make e2e          the end-to-end suite alone (tests/integration/e2e); writes e2e-report.json"
	@echo "make bench        run the benchmarks (BENCH_SECONDS=$(BENCH_SECONDS))"
	@echo "make lock         re-pin requirements.lock from requirements.in (needs PyPI)"

setup:
	@tools/setup/bootstrap.sh

# The whole product (tapio-admin up): every component that can run on this host, each its own
# process, on one embedded JetStream; alerts print as they fire. `bazel run //components/correlator`
# runs the correlator alone. Extra flags: make run ARGS="--only correlator,pipeline,siem-exporter".
run: setup
	$(PY) -m tapio_admin up $(ARGS)

# A skip for a missing tool or privilege fails make test (docs/DEVELOPING.md, "Skips").
test: export TAPIO_STRICT_SKIPS = 1
test: setup lint unit integration
	@echo "make test: all checks passed"

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(PY) tools/check_layers.py
	$(PY) tools/check_repo.py
	tools/check_infra.sh

unit: setup
	$(BAZEL) test //...

integration: setup
	tools/setup/integration.sh

# The end-to-end suite alone (also part of `make integration`): the product as real processes on
# real JetStream, faults included; writes e2e-report.json (docs/E2E.md). Extra pytest flags: ARGS=.
e2e: export TAPIO_STRICT_SKIPS = 1
e2e: setup
	TAPIO_TEST_PATH=tests/integration/e2e tools/setup/integration.sh $(ARGS)

bench: setup
	$(BAZEL) run //bench:publisher -- --seconds $(BENCH_SECONDS)
	$(BAZEL) run //bench:correlator -- --seconds $(BENCH_SECONDS)
	$(BAZEL) run //bench:ebpf -- --seconds $(BENCH_SECONDS)

lock:
	$(VENV)/bin/pip install -q pip-tools
	$(VENV)/bin/pip-compile --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
	  --no-emit-find-links -o requirements.lock requirements.in

clean:
	rm -rf build .mypy_cache .ruff_cache
	$(BAZEL) clean
