#!/usr/bin/env bash
# Install the system packages the test suite starts for real: the docker engine and compose v1,
# debootstrap (the offline base image), PostgreSQL 15 (an MLflow backend), wrk (benchmarks),
# Prometheus + promtool, Alertmanager + amtool and the Pushgateway (monitoring tests, as processes),
# redis-server (the online feature store's tests and bench-features).
# Idempotent: installs only what is missing. Needs root (CI and the dev machines run as root).
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

if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
echo "system dependencies present"
