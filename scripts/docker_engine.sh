#!/usr/bin/env bash
# Make a docker engine usable on this machine, idempotently:
#   1. install docker.io, docker-compose (v1.29) and debootstrap from Debian if missing;
#   2. start dockerd without bridge/iptables (only loopback and the registries are reachable, so
#      every container runs with host networking) unless an engine already answers;
#   3. build the Debian base image $BASE_IMAGE_TAG with debootstrap, because no image can be
#      pulled here; the machine's CA bundle goes into it so pip/uv work through the TLS proxy.
# Every step is skipped when already done; a base image (and cached rootfs) of an older recipe
# (BASE_RECIPE, its label) is rebuilt. Needs root (apt, dockerd, debootstrap).
#
# Env: BASE_IMAGE_TAG (credit-risk-base:bookworm), DEBIAN_MIRROR (http://deb.debian.org/debian),
#      DOCKER_ENGINE_LOG (/var/log/dockerd.log), CACHE_DIR (.cache/docker), SKIP_BASE_IMAGE=1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BASE_IMAGE_TAG="${BASE_IMAGE_TAG:-credit-risk-base:bookworm}"
DEBIAN_SUITE="${DEBIAN_SUITE:-bookworm}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CACHE_DIR="${CACHE_DIR:-$ROOT/.cache/docker}"
LOG="${DOCKER_ENGINE_LOG:-/var/log/dockerd.log}"
CA_BUNDLE="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
# Bump when the rootfs recipe below changes, so existing machines rebuild their base.
BASE_RECIPE=2
RECIPE_LABEL=org.credit-risk.base-recipe

log() { printf '[docker-engine] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (apt-get, dockerd and debootstrap need it)"

# --- 1. packages ----------------------------------------------------------------------------
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >/dev/null
fi

# --- 2. engine ------------------------------------------------------------------------------
if docker info >/dev/null 2>&1; then
  log "engine already running"
else
  touch "$LOG" 2>/dev/null || LOG=/tmp/dockerd.log
  log "starting dockerd (log: $LOG)"
  # setsid + nohup: the engine outlives this script and the make/pytest process that ran it.
  setsid nohup dockerd --bridge=none --iptables=false --ip-masq=false >>"$LOG" 2>&1 </dev/null &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { tail -n 30 "$LOG" >&2; die "dockerd did not answer within 60 s"; }
  log "engine up"
fi

# --- 3. Debian base image -------------------------------------------------------------------
if [[ "${SKIP_BASE_IMAGE:-0}" == 1 ]]; then
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
