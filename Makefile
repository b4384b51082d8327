# Every command a workflow or a person runs. `make help` lists them by what you do.
# Area-specific targets live in mk/*.mk (serve, docker, workflows, terraform) and are included below.
#
# Groups: a `##@ Group` line puts the targets below it, up to the next such line in that file, in
# that group of `make help`; a target is listed when its rule line ends in `## purpose`. Give a new
# target a group (tests/unit/test_makefile.py fails on one without); HELP_GROUPS is the order.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
UV_VERSION := 0.13.9
# The extra set installed into the development environment.
EXTRAS ?= dev
# pytest workers for `make pytest` (pytest-xdist; tests/conftest.py says what runs together).
# Most tests wait on real services, so more workers than cores still pay.
PYTEST_WORKERS ?= 3

# Checks that `make test` runs besides pytest; mk/*.mk files append to it.
CHECKS :=

HELP_GROUPS := Start here|Data & training|Promote & deploy|Monitoring|Infrastructure|Containers & Airflow|Test|Benchmarks|Development|CI plumbing

-include mk/*.mk

##@ Start here
.PHONY: help
help: ## List every target with its purpose, grouped by what you do (HELP_FORMAT=tsv: group<TAB>target)
	@awk -v order='$(HELP_GROUPS)' -v format='$(HELP_FORMAT)' -v color="$$([ -t 1 ] && echo 1)" \
	  -f mk/help.awk $(MAKEFILE_LIST)

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# The environment is synced when uv.lock or pyproject.toml is newer than its stamp, so every target
# that needs it (`target: install`) costs nothing on an up-to-date .venv instead of a `uv sync` and
# a bytecode check (~5 s, docs/performance.md). `make -W uv.lock install` forces a sync.
# --compile-bytecode: where PYTHONDONTWRITEBYTECODE is set (this project's machines) every process
# would otherwise compile each module it imports (importing mlflow: 5.2 s instead of 1.6 s), and
# the tests start hundreds of them. Once per install: ~30 s.
VENV_STAMP := $(VENV)/.synced-$(EXTRAS)

$(VENV_STAMP): uv.lock pyproject.toml | $(BIN)/uv
	$(BIN)/uv sync --frozen --inexact --compile-bytecode --extra $(EXTRAS) --python $(PY)
	touch $@

.PHONY: install
install: $(VENV_STAMP) ## Create .venv and install the locked dependencies (uv.lock); a no-op when current

.PHONY: system-deps
system-deps: ## Install the system packages the tests start (root or passwordless sudo; idempotent)
	bash scripts/system_deps.sh

.PHONY: run
run: install ## The main job: train, register, promote, roll back (embedded SQLite MLflow)
	bash scripts/local_loop.sh

.PHONY: train
train: install ## Train both candidates and register the champion as a new version
	$(BIN)/mlops train

.PHONY: clean
clean: ## Remove the local MLflow store, caches and build output
	rm -rf .mlops .pytest_cache .mypy_cache .ruff_cache build *.egg-info

##@ Test
.PHONY: lint
lint: install ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

.PHONY: typecheck
typecheck: install ## mypy over ml/, serve/, scripts/ and devtools/
	$(BIN)/mypy ml serve scripts devtools

.PHONY: unit
unit: install ## Unit tests only (fast)
	$(BIN)/pytest tests/unit -q

.PHONY: integration
integration: install ## Integration and e2e tests on real services, no docker (PostgreSQL, mlflow, uvicorn, moto, terraform)
	$(BIN)/pytest tests/integration tests/e2e -m "not docker" -q

.PHONY: pytest
pytest: install ## The whole pytest suite: unit, integration, e2e
	$(BIN)/pytest -q -n $(PYTEST_WORKERS)

.PHONY: test
test: system-deps lint typecheck $(CHECKS) pytest ## Everything CI runs: system packages, lint, types, checks, all tests

##@ Development
.PHONY: lock
lock: $(BIN)/uv ## Re-resolve uv.lock after editing pyproject.toml
	$(BIN)/uv lock

.PHONY: format
format: install ## Apply ruff formatting and autofixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

SPARK_BUNDLE_DIR ?= dist/spark

.PHONY: spark-bundle
spark-bundle: install ## Build the Spark job's code bundle (entry.py, code.zip, project.tar.gz) into SPARK_BUNDLE_DIR; UPLOAD=1 uploads it to ML_SPARK_CODE_URI
	$(BIN)/mlops spark bundle --output $(SPARK_BUNDLE_DIR) $(if $(UPLOAD),--upload)

##@ Benchmarks
.PHONY: bench-train
bench-train: install ## Wall time, peak memory and AUC of train + register on the 30,000 rows
	$(PY) scripts/bench_train.py

SCALE_BENCH_ROWS ?= 10000000

.PHONY: bench-scale
bench-scale: install ## Batch scoring at scale, Parquet in/out: local engine vs Spark local[1]/local[2] (SCALE_BENCH_ROWS, default 10M)
	$(PY) scripts/bench_scale.py --rows $(SCALE_BENCH_ROWS)
