# One Dockerfile, three images (docs/compose.md), a fourth on top of train (docs/airflow.md) and
# the compose stack's Redis:
#   --target train   batch job: `mlops train` registers a new version, then the container exits
#   --target serve   FastAPI server only (`mlops serve`); no training libraries, uid 10001
#   --target mlflow  MLflow tracking server with its basic-auth app (full mlflow[auth] + psycopg2
#                    + boto3), uid 10001
#   --target airflow the train image + Airflow 3 in its own venv, the DAGs, git and gh:
#                    `airflow standalone` (compose profile `airflow`), uid 10001
#   --target redis   Debian's redis-server for the compose profile `features`, uid 10001
# Dependencies come from uv.lock only. Builder stages make a venv in /opt/venv; final stages copy
# it onto the same base, so no compiler, uv or pip cache reaches a final image.
#
# BASE_IMAGE must provide python3 (3.11) with the venv module. Default: the official slim image,
# pinned by digest so a rebuild cannot silently change the base (the tag moves; Renovate or
# Dependabot's docker ecosystem bumps the pin by PR). The digest is the multi-platform index of
# python:3.11.13-slim-bookworm as pinned in several public Dockerfiles (found with the search
# tool; nothing can be pulled on the machine this was written on, so it is not re-verified here).
# Where nothing can be pulled, scripts/docker_engine.sh builds credit-risk-base:bookworm with
# debootstrap (Debian's python3 is 3.11 too): --build-arg BASE_IMAGE=credit-risk-base:bookworm.
# GIT_SHA (the commit) reaches the serve, train and airflow images: the OCI revision label, and
# the serve image's SERVE_GIT_COMMIT that /metadata shows. It is declared last in each final
# stage so the heavy layers above it stay cached from one commit to the next. The mlflow image
# carries no commit, so its digest changes only with its inputs.
# Kept compatible with the classic builder (docker SDK, docker-compose v1): no BuildKit syntax.
ARG BASE_IMAGE=python:3.11.13-slim-bookworm@sha256:86adf8dbadc3d6e82ee5dd2c74bec2e1c2467cdad47886280501df722372d2e1

# ---------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LANG=C.UTF-8 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/app \
      --shell /usr/sbin/nologin app

# ---------------------------------------------------------------------------------------------
FROM base AS builder
ARG UV_VERSION=0.13.9
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/opt/venv
# uv in its own venv: Debian's python refuses system-wide pip installs (PEP 668).
# binutils: `strip` for the serve venv's extension modules (debug symbols are ~30 MB).
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends binutils >/dev/null \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/uv \
 && /opt/uv/bin/pip install --quiet "uv==${UV_VERSION}" \
 && ln -s /opt/uv/bin/uv /usr/local/bin/uv
WORKDIR /src
# Only the lock and the metadata first, so source edits do not reinstall the dependencies.
# README.md* : pyproject names a readme; the glob keeps the build working before it exists.
COPY pyproject.toml uv.lock README.md* ./
# Stage order matters to the classic builder, which builds every stage before the target:
# each final image follows its own builder stage, and train (the default) comes last.
# ---------------------------------------------------------------------------------------------
FROM builder AS build-serve
# Size matters here (goal <= 350 MB): no bytecode (a non-root server cannot write it back anyway,
# it only costs start-up time), no test suites, stubs, C headers or debug symbols; then prove
# that the app imports and a booster predicts. Native XGBoost only: no scikit-learn (and only the
# part of SciPy xgboost imports); config/gates.yaml's servable_flavors keeps other flavors out.
# Removed although locked, as the serving path (MLflow client over HTTP, alias lookup, artifact
# download, xgboost) imports none of them: mlflow-skinny's Databricks client chain
# (databricks-sdk, google-auth, cryptography, cffi, pyasn1; ~23 MB), gitpython (useless without a
# git executable; mlflow skips it when absent) and rich's pygments (only for syntax/tracebacks).
ARG SERVE_SKIP="databricks-sdk google-auth cryptography cffi pycparser pyasn1 pyasn1-modules \
  gitpython gitdb smmap pygments"
# Dead weight for a server: C headers, numpy's build and test helpers, and the SciPy subpackages
# nothing here imports (xgboost needs only scipy.sparse, which loads scipy.special; ~45 MB).
ARG SERVE_PRUNE="numpy/_core/include numpy/distutils numpy/_core/_simd.*.so \
  scipy/stats scipy/optimize scipy/io scipy/spatial scipy/signal scipy/interpolate \
  scipy/integrate scipy/ndimage scipy/fftpack scipy/cluster scipy/odr scipy/datasets scipy/misc \
  scipy/differentiate"
# The `features` extra: redis-py + hiredis (~1.5 MB), for POST /predict/by-id when configured.
RUN uv sync --frozen --no-dev --extra serve --extra features --no-install-project --python python3
COPY ml/ ml/
COPY serve/ serve/
# find_spec("databricks.agents") in mlflow.genai imports the parent: keep `databricks` importable.
# hardlink: wheels vendor byte-identical copies of shared libraries (libgfortran, libgomp).
RUN uv sync --frozen --no-dev --extra serve --extra features --no-editable --python python3 \
 && uv pip uninstall --quiet $SERVE_SKIP \
 && mkdir -p /opt/venv/lib/python3.11/site-packages/databricks \
 && (cd /opt/venv/lib/python3.11/site-packages && rm -rf $SERVE_PRUNE) \
 && find /opt/venv -depth -type d \( -name tests -o -name test -o -name __pycache__ \) \
      -exec rm -rf {} + \
 && find /opt/venv \( -name '*.pyc' -o -name '*.pyi' -o -name '*.pxd' -o -name '*.pyx' \) -delete \
 && find /opt/venv -name '*.so' -not -path '*.libs/*' -exec strip --strip-unneeded {} + \
 && hardlink --content --quiet /opt/venv \
 && python -c "import ml, serve.app, serve.server, uvloop, redis, hiredis, mlflow.artifacts, mlflow.tracking, \
numpy as np, xgboost as xgb; from serve.tree_ensemble import compile_ensemble; \
x = np.random.rand(64, 3); y = (x[:, 0] > 0.5).astype(int); \
b = xgb.train({'objective': 'binary:logistic'}, xgb.DMatrix(x, label=y), 2); \
b.predict(xgb.DMatrix(x)); assert compile_ensemble(b) is not None"

FROM base AS serve
COPY --from=build-serve /opt/venv /opt/venv
WORKDIR /home/app
# ServeSettings reads SERVE_*; MLFLOW_TRACKING_URI comes from the deployment (compose, ECS).
ENV SERVE_HOST=0.0.0.0 \
    SERVE_PORT=8000 \
    SERVE_MODEL_NAME=credit-risk \
    SERVE_MODEL_ALIAS=production
USER 10001:10001
EXPOSE 8000
# python, not curl: the image has no curl. /health is 200 while the process runs.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('SERVE_PORT', '8000'), timeout=4)"]
# `python -m serve` is `mlops serve` without the CLI: ml.cli imports the training verbs, whose
# modules import matplotlib at import time, and matplotlib is not in this image.
ENTRYPOINT ["python", "-m", "serve"]
ARG GIT_SHA=unknown
LABEL org.opencontainers.image.title="credit-risk-serve" \
      org.opencontainers.image.revision="${GIT_SHA}"
ENV SERVE_GIT_COMMIT=${GIT_SHA}

# ---------------------------------------------------------------------------------------------
FROM builder AS build-mlflow
# The server needs full mlflow with its auth extra (Flask-WTF, for `--app-name basic-auth`), a
# PostgreSQL driver and boto3 for S3 artifacts, nothing of ours: install just those, with every
# version pinned by uv.lock (exported as constraints).
RUN uv export --frozen --no-dev --extra dev --no-emit-project --no-hashes -o /tmp/locked.txt \
 && uv venv /opt/venv --python python3 \
 && uv pip install --python /opt/venv/bin/python -c /tmp/locked.txt \
      --compile-bytecode "mlflow[auth]" psycopg2-binary boto3 \
 && /opt/venv/bin/python -c "import flask_wtf, mlflow.server.auth"

FROM base AS mlflow
COPY --from=build-mlflow /opt/venv /opt/venv
# /mlflow holds the SQLite store and the served artifacts; a named volume mounted here inherits
# this ownership, so the server can write as uid 10001.
RUN mkdir -p /mlflow/artifacts && chown -R 10001:10001 /mlflow
# Entrypoint: MLflow's basic-auth app unless MLFLOW_AUTH=none (the local compose stack only);
# arguments are passed to `mlflow server`, unless the first is a command (ECS's task command
# `/bin/sh -c ...` that builds the backend URI from injected secrets), which then runs as is.
# Nothing secret is baked in: MLflow reads the admin's bootstrap password from
# MLFLOW_AUTH_ADMIN_PASSWORD and the CSRF key from MLFLOW_FLASK_SERVER_SECRET_KEY (on ECS both
# come from Secrets Manager) and refuses to start without them. The auth config is written at
# start from MLFLOW_AUTH_DATABASE_URI (users and grants; default SQLite under /mlflow, use the
# PostgreSQL URI on ECS), MLFLOW_AUTH_DEFAULT_PERMISSION (READ) and MLFLOW_AUTH_CACHE_TTL_SECONDS
# (60: a verified password is cached per worker instead of re-hashed with PBKDF2 on every
# request, which made a promotion apply ~1.6x slower here; a rotated password may keep working
# on another worker for that long), unless MLFLOW_AUTH_CONFIG_PATH names a file; `%` is doubled
# for configparser.
RUN printf '%s\n' \
    '#!/bin/sh' \
    'set -eu' \
    'case "${1:--}" in -*) ;; *) exec "$@" ;; esac' \
    'case "${MLFLOW_AUTH:-basic-auth}" in' \
    '  none) exec mlflow server "$@" ;;' \
    '  basic-auth) ;;' \
    '  *) echo "MLFLOW_AUTH must be basic-auth or none (got ${MLFLOW_AUTH})" >&2; exit 2 ;;' \
    'esac' \
    'if [ -z "${MLFLOW_AUTH_CONFIG_PATH:-}" ]; then' \
    '  umask 077' \
    '  export MLFLOW_AUTH_CONFIG_PATH="${TMPDIR:-/tmp}/mlflow-basic-auth.ini"' \
    '  db=$(printf "%s" "${MLFLOW_AUTH_DATABASE_URI:-sqlite:////mlflow/basic_auth.db}" | sed "s/%/%%/g")' \
    '  printf "[mlflow]\ndefault_permission = %s\ndatabase_uri = %s\nadmin_username = admin\n" \' \
    '    "${MLFLOW_AUTH_DEFAULT_PERMISSION:-READ}" "$db" >"$MLFLOW_AUTH_CONFIG_PATH"' \
    '  printf "auth_cache_ttl_seconds = %s\n" "${MLFLOW_AUTH_CACHE_TTL_SECONDS:-60}" \' \
    '    >>"$MLFLOW_AUTH_CONFIG_PATH"' \
    'fi' \
    'exec mlflow server --app-name basic-auth "$@"' \
    >/usr/local/bin/mlflow-server \
 && chmod 0755 /usr/local/bin/mlflow-server
WORKDIR /mlflow
# The GenAI job workers (~10 processes) are unused by a model registry, and their polling of the
# store slows every registry call (bench-promote: 3.8 s with them off, 10-14 s on).
ENV PORT=5000 \
    MLFLOW_AUTH=basic-auth \
    MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false
USER 10001:10001
EXPOSE 5000
# /health answers without credentials, with or without the auth app.
HEALTHCHECK --interval=5s --timeout=5s --start-period=30s --retries=10 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '5000'), timeout=4)"]
ENTRYPOINT ["mlflow-server"]
CMD ["--host", "0.0.0.0", "--port", "5000", \
     "--backend-store-uri", "sqlite:////mlflow/mlflow.db", \
     "--artifacts-destination", "/mlflow/artifacts", "--serve-artifacts"]
# No GIT_SHA here: the server's digest changes only when its inputs do (the stages above, the
# lock), so a merge that touches none of them redeploys nothing (ml/deploy/images.py pushes it
# as inputs-<hash>).
LABEL org.opencontainers.image.title="credit-risk-mlflow"

# ---------------------------------------------------------------------------------------------
# The compose stack's online feature store (profile `features`): Debian's redis-server on the same
# digest-pinned base (no Docker Hub image: nothing can be pulled where the stack is tested, and the
# tests start the same Debian package). After the mlflow image and before the train stages: the
# classic builder builds every stage before the target, so building serve or mlflow never builds it. No persistence (snapshots are rebuilt by `mlops features materialize`);
# noeviction: a full Redis refuses writes (materialize fails, nothing switches) instead of
# dropping current vectors; protected mode off because the api reaches it from another container
# (the port is published on the host's loopback only). Redis 7.0, the line the tests run; the
# build fails if Debian's package leaves it. Security updates come from bookworm-security (the
# debootstrap base lists only the main suite).
FROM base AS redis
RUN if ! grep -rqs bookworm-security /etc/apt/sources.list /etc/apt/sources.list.d; then \
      echo "deb http://deb.debian.org/debian-security bookworm-security main" \
        >/etc/apt/sources.list.d/security.list; \
    fi \
 && apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null \
 && rm -rf /var/lib/apt/lists/* /etc/redis \
 && redis-server --version | grep -q " v=7\.0\." \
 && mkdir -p /data && chown 10001:10001 /data
WORKDIR /data
USER 10001:10001
EXPOSE 6379
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=10 \
  CMD ["redis-cli", "ping"]
ENTRYPOINT ["redis-server"]
CMD ["--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction", "--protected-mode", "no"]
LABEL org.opencontainers.image.title="credit-risk-redis"

# ---------------------------------------------------------------------------------------------
FROM builder AS build-train
RUN uv sync --frozen --no-dev --extra train --no-install-project --python python3 --compile-bytecode
COPY ml/ ml/
COPY serve/ serve/
# Compile only our packages here: --compile-bytecode would recompile the whole venv (~9k files).
RUN uv sync --frozen --no-dev --extra train --no-editable --python python3 \
 && python -m compileall -q /opt/venv/lib/python3.11/site-packages/ml \
      /opt/venv/lib/python3.11/site-packages/serve

# A plain `docker build .` gives the batch job (train-default, the last stage, is this image).
FROM base AS train
COPY --from=build-train /opt/venv /opt/venv
WORKDIR /app
# The reviewed inputs of a run: training config, promotions and the pinned data snapshot (1 MB,
# checked against its sha256 by ingest). Mount another file and set ML_DATA_SOURCE to override.
COPY config/ config/
COPY data/uci_credit_card.csv.gz data/
COPY pyproject.toml promotions.yaml* ./
RUN chown -R 10001:10001 /app
ENV MPLCONFIGDIR=/tmp/matplotlib \
    ML_HOME=/tmp/mlops
USER 10001:10001
ENTRYPOINT ["mlops"]
CMD ["train"]
# No .git in the image: gitinfo reads GITHUB_SHA, so the build's commit is recorded on each run.
ARG GIT_SHA=unknown
LABEL org.opencontainers.image.title="credit-risk-train" \
      org.opencontainers.image.revision="${GIT_SHA}"
ENV GITHUB_SHA=${GIT_SHA}

# ---------------------------------------------------------------------------------------------
# Airflow (docs/airflow.md): after train, so building train (or serve, mlflow) never builds it.
# Airflow's pins clash with uv.lock: it gets its own venv from its own hashed lock, next to the
# application's /opt/venv, whose `mlops` the DAGs run (CREDIT_RISK_MLOPS).
FROM builder AS build-airflow
COPY airflow/requirements.txt /tmp/airflow-requirements.txt
RUN uv venv /opt/airflow-venv --python python3 \
 && uv pip sync --python /opt/airflow-venv/bin/python --require-hashes --compile-bytecode \
      /tmp/airflow-requirements.txt \
 && /opt/airflow-venv/bin/airflow version

FROM train AS airflow
USER root
# git and gh: the promotion PR task (`mlops pr open --clone`) clones, pushes and opens the PR.
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      git gh ca-certificates >/dev/null \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build-airflow /opt/airflow-venv /opt/airflow-venv
COPY dags/ /opt/airflow/dags/
RUN mkdir -p /opt/airflow/home /opt/airflow/work && chown -R 10001:10001 /opt/airflow
# /opt/venv first: `python` and `mlops` are the application's; `airflow` comes from its own venv.
ENV PATH=/opt/venv/bin:/opt/airflow-venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    AIRFLOW_HOME=/opt/airflow/home \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/airflow/dags \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    CREDIT_RISK_MLOPS=/opt/venv/bin/mlops \
    CREDIT_RISK_PROJECT_DIR=/app \
    CREDIT_RISK_WORK_DIR=/opt/airflow/work \
    HOME=/opt/airflow/home
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=90s --retries=12 \
  CMD ["/opt/airflow-venv/bin/python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/api/v2/monitor/health' % os.environ.get('AIRFLOW__API__PORT', '8080'), timeout=4)"]
ENTRYPOINT ["/opt/airflow-venv/bin/airflow"]
CMD ["standalone"]
ARG GIT_SHA=unknown
LABEL org.opencontainers.image.title="credit-risk-airflow" \
      org.opencontainers.image.revision="${GIT_SHA}"

# The last stage is what a plain `docker build .` gives: still the batch job.
FROM train AS train-default
