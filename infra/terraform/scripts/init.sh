#!/usr/bin/env bash
# Usage: init.sh ROOT_DIR [terraform init arguments...]
#
# `terraform init` for one root, offline when a provider mirror is available:
#   TF_PLUGIN_DIR set and non-empty -> providers come only from that filesystem mirror
#                                      (layout: registry.terraform.io/hashicorp/aws/<version>/<os_arch>/)
#   TF_PLUGIN_DIR empty             -> providers are downloaded from registry.terraform.io
# Either way a clear message says what to do when init cannot get the provider.
set -euo pipefail

root=${1:?usage: init.sh ROOT_DIR [terraform init arguments...]}
shift
terraform=${TERRAFORM:-terraform}

if ! command -v "$terraform" >/dev/null 2>&1; then
  echo "error: '$terraform' is not on PATH; install terraform >= 1.10 (https://developer.hashicorp.com/terraform/install)." >&2
  exit 1
fi

args=(-input=false -no-color)
if [[ -n "${TF_PLUGIN_DIR:-}" ]]; then
  if [[ ! -d "$TF_PLUGIN_DIR/registry.terraform.io/hashicorp/aws" ]]; then
    echo "error: TF_PLUGIN_DIR=$TF_PLUGIN_DIR holds no registry.terraform.io/hashicorp/aws provider." >&2
    echo "       Point TF_PLUGIN_DIR at a filesystem mirror (terraform providers mirror DIR), or set it empty to download from the registry." >&2
    exit 1
  fi
  args+=("-plugin-dir=$TF_PLUGIN_DIR")
fi

if [[ -n "${TF_PLUGIN_CACHE_DIR:-}" ]]; then
  mkdir -p "$TF_PLUGIN_CACHE_DIR"
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! "$terraform" -chdir="$root" init "${args[@]}" "$@" >"$log" 2>&1; then
  cat "$log" >&2
  if [[ -z "${TF_PLUGIN_DIR:-}" ]]; then
    echo "error: terraform init failed in $root without a provider mirror, and the registry was not reachable or refused." >&2
    echo "       Either give network access to registry.terraform.io, or set TF_PLUGIN_DIR to a filesystem mirror of hashicorp/aws (e.g. make ... TF_PLUGIN_DIR=/opt/tf-plugins)." >&2
  else
    echo "error: terraform init failed in $root with TF_PLUGIN_DIR=$TF_PLUGIN_DIR (see above)." >&2
  fi
  exit 1
fi
echo "terraform init: $root (providers from ${TF_PLUGIN_DIR:-registry.terraform.io})" >&2
