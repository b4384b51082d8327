# DVC: the data pipeline (dvc.yaml) and its own environment (docs/data.md). Included by the
# top-level Makefile (BIN, PYTHON come from there).
#
# Why its own environment: dvc-s3 needs aiobotocore, which pins botocore to a narrow range
# (dvc 3.67.1 + dvc-s3 3.3.0 resolve to botocore 1.43.117 today) while the application's uv.lock
# holds boto3/botocore 1.44 for MLflow and the AWS adapters; one lock cannot hold both. So DVC
# lives in $(DVC_VENV), installed from dvc-env/requirements.txt (every package pinned and
# hashed), and the application runs its `dvc` executable through ml/adapters/dvc.py, never imports it.
#
# Every target sets AWS_REQUEST_CHECKSUM_CALCULATION=WHEN_REQUIRED: botocore >= 1.36 adds CRC
# checksums to uploads, which S3-compatible stores (MinIO, Ceph, emulators) refuse with errors
# such as "XAmzContentSHA256Mismatch" or "InvalidArgument: x-amz-checksum-crc32"; DVC addresses
# objects by md5, so the extra checksum buys nothing on AWS either.

DVC_VENV ?= .venv-dvc
DVC_LOCK := dvc-env/requirements.txt
DVC_STAMP := $(DVC_VENV)/.installed
DVC := $(DVC_VENV)/bin/dvc
DVC_ENV := AWS_REQUEST_CHECKSUM_CALCULATION=WHEN_REQUIRED AWS_RESPONSE_CHECKSUM_VALIDATION=WHEN_REQUIRED \
  DVC_NO_ANALYTICS=1 PATH=$(CURDIR)/$(BIN):$$PATH
# Compare the pipeline's metrics and params with this revision (PR CI: the base branch).
DVC_BASE ?= origin/main

$(DVC_STAMP): $(DVC_LOCK) | $(BIN)/uv
	rm -rf $(DVC_VENV)
	$(BIN)/uv venv --quiet --python $(PYTHON) $(DVC_VENV)
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(DVC_VENV)/bin/python --require-hashes \
	  $(DVC_LOCK)
	touch $@

##@ Data & training
.PHONY: dvc-install
dvc-install: $(DVC_STAMP) ## dvc 3 + dvc-s3 into .venv-dvc from the hashed lock dvc-env/requirements.txt

##@ Development
.PHONY: dvc-lock
dvc-lock: $(BIN)/uv ## Re-compile dvc-env/requirements.txt (hashed) after editing dvc-env/requirements.in
	$(BIN)/uv pip compile dvc-env/requirements.in --universal --python-version 3.11 \
	  --generate-hashes --custom-compile-command "make dvc-lock" -o $(DVC_LOCK)

##@ Data & training
.PHONY: dvc-pull
dvc-pull: install dvc-install ## dvc pull: the data of dvc.lock from the remote (credentials from the environment)
	$(DVC_ENV) $(BIN)/mlops data pull

.PHONY: dvc-repro
dvc-repro: install dvc-install ## dvc repro: run the stages whose data, params or command changed
	$(DVC_ENV) $(BIN)/mlops data repro

.PHONY: dvc-push
dvc-push: install dvc-install ## dvc push: the pipeline's data to the remote
	$(DVC_ENV) $(BIN)/mlops data push

.PHONY: dvc-status
dvc-status: install dvc-install ## Fail when dvc.lock is stale (names the stage and what changed)
	$(DVC_ENV) $(BIN)/mlops data status

.PHONY: dvc-diff
dvc-diff: install dvc-install ## dvc metrics diff + params diff against DVC_BASE as markdown (build/pipeline-diff.md)
	$(DVC_ENV) $(BIN)/mlops data diff --base $(DVC_BASE) --output build/pipeline-diff.md

.PHONY: dvc-register
dvc-register: install ## Register the pipeline's champion run (build/pipeline/run.json) as a new version
	$(BIN)/mlops data register

##@ Benchmarks
.PHONY: bench-dvc
bench-dvc: install dvc-install ## No-op dvc repro, the whole pipeline on 30k rows, push + pull against moto
	$(DVC_ENV) $(PY) scripts/bench_dvc.py

# The DVC tests (tests/integration/test_dvc_*.py) run in `make pytest` (so `make test`) and
# `make integration` (CI): both put the environment they start in place first.
pytest integration: dvc-install

# `make promotion-pr` (mk/workflows.mk) commits these with promotions.yaml: the retrain's new
# dvc.lock and reports (unchanged files add nothing to the commit).
PROMOTION_PR_INCLUDE := --include dvc.lock --include reports

##@ Promote & deploy
.PHONY: dvc-diff-plan
dvc-diff-plan: install dvc-install ## dvc-diff against origin/BASE_REF, appended to the promotion plan (build/promotion-plan.md)
	$(DVC_ENV) $(BIN)/mlops data diff --base "origin/$${BASE_REF:-main}" --output build/pipeline-diff.md
	mkdir -p build && cat build/pipeline-diff.md >> build/promotion-plan.md
