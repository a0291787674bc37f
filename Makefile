# The two commands a newcomer needs: `make demo` and `make test`. Both bootstrap .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test lint types pytest test-system test-compat bench clean

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

pytest: $(STAMP)
	$(BIN)/python -m pytest -q

test: lint types pytest

# `make test-compat`: the unit and `dags test` suites against the oldest Airflow line the provider
# declares (apache-airflow>=3.1), in its own virtualenv. Airflow is installed first and then pinned
# (with its core and task SDK) as a constraint, so the dev extra cannot upgrade it. The real-Airflow
# system suite (tests/system) runs on the main venv only. See docs/compatibility.md.
COMPAT_AIRFLOW ?= 3.1.8
COMPAT_VENV ?= .venv-compat
COMPAT_BIN := $(COMPAT_VENV)/bin
COMPAT_STAMP := $(COMPAT_VENV)/.installed-stamp-$(COMPAT_AIRFLOW)

$(COMPAT_STAMP): pyproject.toml
	@test -x $(COMPAT_BIN)/python || $(PYTHON) -m venv $(COMPAT_VENV)
	$(COMPAT_BIN)/python -m pip install --disable-pip-version-check -q 'apache-airflow==$(COMPAT_AIRFLOW)'
	$(COMPAT_BIN)/python -m pip freeze --disable-pip-version-check \
		| grep -iE '^apache-airflow(-core|-task-sdk)?==' > $(COMPAT_VENV)/airflow-pins.txt
	$(COMPAT_BIN)/python -m pip install --disable-pip-version-check -q \
		-c $(COMPAT_VENV)/airflow-pins.txt -e '.[dev]'
	@rm -f $(COMPAT_VENV)/.installed-stamp-*
	@touch $(COMPAT_STAMP)

test-compat: $(COMPAT_STAMP)
	@$(COMPAT_BIN)/python -c 'import airflow; print("test-compat: Airflow", airflow.__version__)'
	$(COMPAT_BIN)/python -m pytest -q --ignore=tests/system

bench: $(STAMP)
	@for f in benchmarks/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) $(COMPAT_VENV) .pytest_cache .mypy_cache .ruff_cache .demo
