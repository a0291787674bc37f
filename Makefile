# The two commands a newcomer needs: `make demo` and `make test`. Both bootstrap .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test lint types pytest test-system test-compat test-ui bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy

# `make sdk-venv`: the official Predibase SDK in a test-only virtualenv, the oracle of
# tests/sdk_oracle (docs/platform.md). Never a dependency of the package.
SDK_VENV ?= .venv-sdk
SDK_STAMP := $(SDK_VENV)/.installed-stamp

$(SDK_STAMP):
	@test -x $(SDK_VENV)/bin/python || $(PYTHON) -m venv $(SDK_VENV)
	$(SDK_VENV)/bin/python -m pip install --disable-pip-version-check -q 'predibase==2025.10.3'
	@touch $(SDK_STAMP)

.PHONY: sdk-venv
sdk-venv: $(SDK_STAMP)

# The system suite (real Airflow: tests/system) and the rest run side by side, each in its own
# pytest process: both spend most of their time waiting (on Airflow's processes, on the
# emulator's lifecycles), so together they take about as long as the longer one alone. Each
# one's output is printed whole when it ends; either failing fails the target.
.PHONY: pytest-system pytest-rest
pytest: $(STAMP) $(SDK_STAMP)
	@$(MAKE) --no-print-directory -j2 --output-sync=target pytest-system pytest-rest

pytest-system: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/system

pytest-rest: $(STAMP) $(SDK_STAMP)
	$(BIN)/python -m pytest -q --ignore=tests/ui --ignore=tests/system

test: sdk-venv lint types pytest dist-check

# `make test-dialects`: the operator, sensor and `dags test` suites again, unchanged and with
# the default connection settings, against an emulator that speaks only the seed spec and
# then only production's wire format (`make test` runs them against one that speaks both).
# See docs/platform.md.
.PHONY: test-dialects
test-dialects: $(STAMP)
	PREDIBASE_EMULATOR_DIALECT=spec $(BIN)/python -m pytest -q tests/operators tests/sensors tests/dags
	PREDIBASE_EMULATOR_DIALECT=platform $(BIN)/python -m pytest -q tests/operators tests/sensors tests/dags

# `make dist-check`: build the sdist, and the wheel from it, into a temp dir; check both as a
# package index would (`twine check --strict`: metadata and the README as long description);
# then test what they contain (tests/distributions, on these very files).
.PHONY: dist-check
dist-check: $(STAMP)
	@set -e; dir=$$(mktemp -d); trap 'rm -rf "$$dir"' EXIT; \
	$(BIN)/python -m build --outdir "$$dir/dist" . > "$$dir/build.log" 2>&1 \
		|| { tail -n 40 "$$dir/build.log"; exit 1; }; \
	$(BIN)/twine check --strict "$$dir"/dist/*; \
	PREDIBASE_DIST_DIR="$$dir/dist" $(BIN)/python -m pytest -q -p no:cacheprovider tests/distributions

# `make test-compat`: the unit and `dags test` suites on each older Airflow line the provider
# supports (apache-airflow>=3.1), one virtualenv per version under $(COMPAT_ROOT)/<version>.
# Left out: tests/client, tests/emulator and tests/sdk_oracle, which test Airflow-free layers
# (tests/test_import_graph.py holds them to it; every operator test still drives both).
# Each line also plays one API dialect (docs/platform.md): the emulator speaks only the seed
# spec's on 3.1 and only production's on 3.2, while `make test` runs 3.3 against both.
# Airflow is installed first and then pinned (with its core and task SDK) as a constraint, so the
# dev extra cannot upgrade it. The real-Airflow suites (tests/system, tests/ui) run on the main
# venv only. One version: `make test-compat-3.2.2`. See docs/compatibility.md.
COMPAT_AIRFLOW_VERSIONS ?= 3.1.8 3.2.2
COMPAT_ROOT ?= .venv-compat
# What Airflow's published constraints would hold back (they are not on PyPI): with fastapi
# 0.137+ (and the cadwyn it pulls) 3.2.2's execution API fails to build its TIStateUpdate schema
# (3.3 caps fastapi itself); svcs 26.2 detaches the service registry when the in-process execution
# API is garbage-collected mid-run, so `airflow dags test` fails on 3.2.2 (3.3 keeps it alive).
COMPAT_CONSTRAINTS_3.2.2 := fastapi<0.137 svcs<26.2
COMPAT_DIALECT_3.1.8 := spec
COMPAT_DIALECT_3.2.2 := platform

$(COMPAT_ROOT)/%/.installed-stamp: pyproject.toml
	@test -x $(COMPAT_ROOT)/$*/bin/python || $(PYTHON) -m venv $(COMPAT_ROOT)/$*
	printf '%s\n' $(foreach c,$(COMPAT_CONSTRAINTS_$*),'$(c)') > $(COMPAT_ROOT)/$*/constraints.txt
	$(COMPAT_ROOT)/$*/bin/python -m pip install --disable-pip-version-check -q \
		-c $(COMPAT_ROOT)/$*/constraints.txt 'apache-airflow==$*'
	$(COMPAT_ROOT)/$*/bin/python -m pip freeze --disable-pip-version-check \
		| grep -iE '^apache-airflow(-core|-task-sdk)?==' >> $(COMPAT_ROOT)/$*/constraints.txt
	$(COMPAT_ROOT)/$*/bin/python -m pip install --disable-pip-version-check -q \
		-c $(COMPAT_ROOT)/$*/constraints.txt -e '.[dev]'
	@touch $@

# Kept: make would otherwise delete it as an intermediate of test-compat-%.
.PRECIOUS: $(COMPAT_ROOT)/%/.installed-stamp

test-compat: $(addprefix test-compat-,$(COMPAT_AIRFLOW_VERSIONS))

test-compat-%: $(COMPAT_ROOT)/%/.installed-stamp
	@$(COMPAT_ROOT)/$*/bin/python -c 'import airflow; print("test-compat: Airflow", airflow.__version__, "emulator dialect: $(or $(COMPAT_DIALECT_$*),default)")'
	PREDIBASE_EMULATOR_DIALECT=$(or $(COMPAT_DIALECT_$*),default) $(COMPAT_ROOT)/$*/bin/python -m pytest -q \
		--ignore=tests/system --ignore=tests/ui --ignore=tests/sdk_oracle \
		--ignore=tests/client --ignore=tests/emulator

# `make test-ui`: the provider in Airflow's React UI, in a real browser (docs/ui_test.md). Debian's
# Chromium (installed here when missing; CI runs as root), driven by Playwright's Python package
# over CDP; a real api-server, scheduler, dag-processor and triggerer with the emulator.
# Screenshots and page HTML of a failed test land in test-artifacts/ui/.
test-ui: ui-deps
	PREDIBASE_UI_REQUIRED=1 $(BIN)/python -m pytest -q -s tests/ui

# What test-ui needs beyond the venv. A target of its own so that CI installs it (apt) before it
# runs test-ui and test-celery side by side: two apt-get runs at once would fight over dpkg's lock.
.PHONY: ui-deps
ui-deps: $(STAMP)
	@command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)
	@$(BIN)/python -c 'import playwright' 2>/dev/null \
		|| $(BIN)/python -m pip install --disable-pip-version-check -q playwright

bench: $(STAMP)
	@for f in benchmarks/[!_]*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) $(COMPAT_ROOT) .pytest_cache .mypy_cache .ruff_cache .demo

# `make test-celery`: the CeleryExecutor campaign (docs/system_tests.md): PostgreSQL, a private
# Redis (Debian's redis-server, installed here when missing; CI runs as root), two Celery workers
# and two triggerers. PREDIBASE_CELERY_REQUIRED=1 turns a missing redis/celery into a failure;
# without it (`make test`) these tests are skipped.
.PHONY: test-celery celery-deps
test-celery: celery-deps
	PREDIBASE_CELERY_REQUIRED=1 $(BIN)/python -m pytest -q -s -m celery tests/system/celery

celery-deps: $(STAMP)
	@command -v redis-server >/dev/null || (apt-get update -q && apt-get install -y -q redis-server)
	@$(BIN)/python -c 'import airflow.providers.celery' 2>/dev/null \
		|| $(BIN)/python -m pip install --disable-pip-version-check -q -e '.[dev,test-celery]'
