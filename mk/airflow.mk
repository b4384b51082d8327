# Airflow: the DAGs in dags/ and their own environment (docs/airflow.md). Included by the
# top-level Makefile (BIN, PYTHON, CHECKS come from there).
#
# Airflow's pins clash with the application's uv.lock (it is installed against its own
# constraints), so it lives in $(AIRFLOW_VENV), installed from airflow/requirements.txt: every
# package pinned and hashed. That lock is compiled by uv from PyPI for Python >= 3.11 on every
# platform (`make airflow-lock`); Airflow's official constraints file (GitHub) is not reachable
# from the project's machines, so it is not an input (docs/airflow.md says how to use it where
# it is). The application never imports Airflow; the DAGs reach it through the `mlops` executable.

AIRFLOW_VENV ?= .venv-airflow
AIRFLOW_LOCK := airflow/requirements.txt
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.installed
AIRFLOW_BIN := $(AIRFLOW_VENV)/bin
# The standalone instance of `make airflow-standalone` (metadata DB, logs, config).
AIRFLOW_LOCAL_HOME ?= $(CURDIR)/.airflow

$(AIRFLOW_STAMP): $(AIRFLOW_LOCK) | $(BIN)/uv
	rm -rf $(AIRFLOW_VENV)
	$(BIN)/uv venv --quiet --python $(PYTHON) $(AIRFLOW_VENV)
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(AIRFLOW_BIN)/python --require-hashes \
	  $(AIRFLOW_LOCK)
	touch $@

##@ Containers & Airflow
.PHONY: airflow-install
airflow-install: $(AIRFLOW_STAMP) ## Airflow 3 + providers into .venv-airflow from the hashed lock airflow/requirements.txt

##@ Development
.PHONY: airflow-lock
airflow-lock: $(BIN)/uv ## Re-compile airflow/requirements.txt (hashed) after editing airflow/requirements.in
	$(BIN)/uv pip compile airflow/requirements.in --universal --python-version 3.11 \
	  --generate-hashes --custom-compile-command "make airflow-lock" -o $(AIRFLOW_LOCK)

##@ Test
.PHONY: airflow-typecheck
airflow-typecheck: install airflow-install ## mypy over dags/ against the Airflow environment's packages
	$(BIN)/mypy --python-executable $(AIRFLOW_BIN)/python --no-incremental dags

# `make typecheck` covers the DAGs too.
typecheck: airflow-typecheck

.PHONY: dags-exit-codes
dags-exit-codes: install ## Rewrite dags/exit_codes.json (the DAGs' copy of ml/errors.py's exit codes)
	$(PY) -c "from ml.errors import exit_codes_json; print(exit_codes_json(), end='')" > dags/exit_codes.json

.PHONY: airflow-test
airflow-test: install airflow-install ## DAG bag, task graphs, and `airflow dags test` of both outcomes (temp AIRFLOW_HOME)
	$(BIN)/pytest tests/integration/test_airflow_dags.py -q

##@ Containers & Airflow
.PHONY: airflow-standalone
airflow-standalone: install airflow-install ## Airflow standalone on this checkout's DAGs (AIRFLOW_HOME=.airflow, UI on :8080)
	AIRFLOW_HOME=$(AIRFLOW_LOCAL_HOME) AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags \
	  AIRFLOW__CORE__LOAD_EXAMPLES=False CREDIT_RISK_PROJECT_DIR=$(CURDIR) \
	  $(AIRFLOW_BIN)/airflow standalone

# tests/integration/test_airflow_dags.py runs in `make pytest` (so `make test`) and `make
# integration` (CI): both put the environment it starts in place first.
pytest integration: airflow-install

.PHONY: airflow-image
airflow-image: docker-engine ## Build credit-risk-airflow (train image + Airflow venv + DAGs), timed; not part of `make images`
	$(DOCKER_ENV) $(BIN)/mlops images build --target train --target airflow
