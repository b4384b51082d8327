#!/usr/bin/env bash
# Make a docker engine usable, idempotently, here and on GitHub-hosted runners:
#   0. an engine already answers (`docker info`: GitHub's ubuntu-latest, or one started
#      earlier): nothing to install or start, and no root needed;
#   1. else install docker.io and docker-compose (v1.29) from Debian if missing;
#   2. and start dockerd without bridge/iptables (only loopback and the registries are reachable
#      on the project's machines, so every container runs with host networking);
#   3. build the Debian base image $BASE_IMAGE_TAG with debootstrap, because no image can be
#      pulled on those machines; the machine's CA bundle goes into it so pip/uv work through
#      the TLS proxy. Skipped on GitHub Actions (runners pull python:3.11-slim) and with
#      SKIP_BASE_IMAGE=1.
# Every step is skipped when already done; a base image (and cached rootfs) of an older recipe
# (BASE_RECIPE, its label) is rebuilt. The steps that need root (apt-get, dockerd, debootstrap)
# use sudo when not run as root (the runner user has passwordless sudo), and say so when neither
# works.
#
# Env: BASE_IMAGE_TAG (credit-risk-base:bookworm), DEBIAN_MIRROR (http://deb.debian.org/debian),
#      DOCKER_ENGINE_LOG (/var/log/dockerd.log), CACHE_DIR (.cache/docker), SKIP_BASE_IMAGE=1,
#      DOCKER_PIDFILE, CONTAINERD_PIDFILE (where dockerd and its containerd keep their pids).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BASE_IMAGE_TAG="${BASE_IMAGE_TAG:-credit-risk-base:bookworm}"
DEBIAN_SUITE="${DEBIAN_SUITE:-bookworm}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CACHE_DIR="${CACHE_DIR:-$ROOT/.cache/docker}"
LOG="${DOCKER_ENGINE_LOG:-/var/log/dockerd.log}"
CA_BUNDLE="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
DOCKER_PIDFILE="${DOCKER_PIDFILE:-/var/run/docker.pid}"
CONTAINERD_PIDFILE="${CONTAINERD_PIDFILE:-/var/run/docker/containerd/containerd.pid}"
# Bump when the rootfs recipe below changes, so existing machines rebuild their base.
BASE_RECIPE=2
RECIPE_LABEL=org.credit-risk.base-recipe

log() { printf '[docker-engine] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# `as_root CMD...`: CMD as root: directly, or through passwordless sudo (GitHub's runner user).
as_root() {
  if [[ $(id -u) -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo -n "$@"
  else
    die "$1 needs root: run as root or give this user passwordless sudo"
  fi
}

# `install_missing PKG...`: apt-get install what is not installed yet.
install_missing() {
  (($#)) || return 0
  log "installing $*"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" \
    >/dev/null
}

on_github_actions() { [[ "${GITHUB_ACTIONS:-}" == true ]]; }

# One caller at a time (pytest's workers each run this script at once): the others find the
# engine started and the base image built.
mkdir -p "$CACHE_DIR"
exec 9>"$CACHE_DIR/engine.lock"
flock 9

# --- 0. an engine answers: nothing to install or start ---------------------------------------
if docker info >/dev/null 2>&1; then
  log "engine already running"
  if on_github_actions || [[ "${SKIP_BASE_IMAGE:-0}" == 1 ]]; then
    log "nothing to do (no Debian base image needed: images are pulled here)"
    exit 0
  fi
else
  # --- 1. packages --------------------------------------------------------------------------
  missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 \
    || missing+=(docker-compose)
  install_missing "${missing[@]}"

  # --- 2. engine ----------------------------------------------------------------------------
  as_root true # stops here, saying why, when neither root nor passwordless sudo is available
  # An engine killed with its machine leaves its pid files behind. After a restart the pids in
  # them belong to other processes, and dockerd then waits on a containerd that is not there
  # ("containerd is still running" ... "timeout waiting for containerd to start"): a pid file
  # whose process is not the one it names goes first.
  for entry in "$DOCKER_PIDFILE:dockerd" "$CONTAINERD_PIDFILE:containerd"; do
    pidfile="${entry%:*}"
    pid="$(as_root cat "$pidfile" 2>/dev/null || true)"
    [[ -n "$pid" ]] || continue
    if [[ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" != "${entry##*:}" ]]; then
      log "removing stale $pidfile (pid $pid is not ${entry##*:})"
      as_root rm -f "$pidfile"
    fi
  done
  log "starting dockerd (log: $LOG)"
  # setsid + nohup: the engine outlives this script and the make/pytest process that ran it.
  # The background job's own fds are redirected too: the shell that waits on it would otherwise
  # hold the caller's stdout/stderr pipe open for as long as dockerd runs (and the lock's fd 9).
  as_root setsid nohup sh -c 'exec dockerd --bridge=none --iptables=false --ip-masq=false \
    >>"$1" 2>&1 </dev/null' dockerd "$LOG" >/dev/null 2>&1 </dev/null 9>&- &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { tail -n 30 "$LOG" >&2; die "dockerd did not answer within 60 s"; }
  log "engine up"
fi

# --- 3. Debian base image -------------------------------------------------------------------
if [[ "${SKIP_BASE_IMAGE:-0}" == 1 ]] || on_github_actions; then
  exit 0
fi
if docker image inspect "$BASE_IMAGE_TAG" >/dev/null 2>&1; then
  recipe="$(docker image inspect -f "{{index .Config.Labels \"$RECIPE_LABEL\"}}" "$BASE_IMAGE_TAG")"
  if [[ "$recipe" == "$BASE_RECIPE" ]]; then
    log "base image $BASE_IMAGE_TAG exists"
    exit 0
  fi
  log "base image $BASE_IMAGE_TAG is of recipe ${recipe:-1}, not $BASE_RECIPE: rebuilding it"
fi
[[ -r "$CA_BUNDLE" ]] || die "CA bundle $CA_BUNDLE not found"
# debootstrap writes a root-owned tree that the steps below edit and pack: all of it as root.
[[ $(id -u) -eq 0 ]] || die "building the Debian base image needs root (debootstrap); \
SKIP_BASE_IMAGE=1 skips it where images can be pulled"
command -v debootstrap >/dev/null 2>&1 || install_missing debootstrap
mkdir -p "$CACHE_DIR"
tarball="$CACHE_DIR/rootfs-$DEBIAN_SUITE-r$BASE_RECIPE.tar"
if [[ ! -s "$tarball" ]]; then
  start=$(date +%s)
  rootfs="$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")"
  trap 'rm -rf "$rootfs"' EXIT
  log "debootstrap $DEBIAN_SUITE from $DEBIAN_MIRROR (a few minutes)"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$DEBIAN_SUITE" "$rootfs" "$DEBIAN_MIRROR" >"$CACHE_DIR/debootstrap.log" 2>&1 \
    || { tail -n 30 "$CACHE_DIR/debootstrap.log" >&2; die "debootstrap failed"; }
  # Trust what the host trusts (the registries sit behind a TLS-inspecting proxy).
  cp "$CA_BUNDLE" "$rootfs/etc/ssl/certs/ca-certificates.crt"
  # Keep the image small: package lists, caches and docs are not needed at run time; neither are
  # glibc's iconv modules (gconv, 8 MB: Python's codecs are its own), 2to3, pydoc's topics,
  # leap-second time zones, dpkg/debconf backups and the bootstrap logs. apt still works (the
  # builder stages install binutils) and so does `python3 -m venv` (ensurepip's wheels stay).
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
    "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* \
    "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* "$rootfs"/usr/lib/*-linux-gnu/gconv \
    "$rootfs"/usr/lib/python3.*/lib2to3 "$rootfs"/usr/lib/python3.*/pydoc_data \
    "$rootfs"/usr/share/zoneinfo/right "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/lib/dpkg/*-old
  find "$rootfs"/var/log -type f -delete
  tar -C "$rootfs" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  # Rootfs tarballs of older recipes are dead weight in the cache.
  find "$CACHE_DIR" -maxdepth 1 -name "rootfs-$DEBIAN_SUITE*.tar" ! -name "${tarball##*/}" -delete
  rm -rf "$rootfs"
  trap - EXIT
  log "debootstrap rootfs cached in $tarball after $(($(date +%s) - start)) s"
fi
cert=/etc/ssl/certs/ca-certificates.crt
docker import \
  --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  --change "ENV LANG=C.UTF-8" \
  --change "ENV SSL_CERT_FILE=$cert" \
  --change "ENV PIP_CERT=$cert" \
  --change "ENV REQUESTS_CA_BUNDLE=$cert" \
  --change "LABEL $RECIPE_LABEL=$BASE_RECIPE" \
  --change 'CMD ["python3"]' \
  "$tarball" "$BASE_IMAGE_TAG" >/dev/null
log "imported $BASE_IMAGE_TAG ($(docker image inspect -f '{{.Size}}' "$BASE_IMAGE_TAG") bytes)"
