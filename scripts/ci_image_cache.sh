#!/usr/bin/env bash
# Keep built images between CI runs (the images and compose jobs; actions/cache holds the dir).
#   ci_image_cache.sh save DIR IMAGE...   docker save the images into DIR/images.tar
#   ci_image_cache.sh load DIR            docker load DIR/images.tar when a cache was restored
# `make images` then rebuilds only the images whose input-hash label no longer matches, so a
# restored cache costs a `docker load` and saves every unchanged image's build.
set -euo pipefail

action="${1:?usage: ci_image_cache.sh save|load DIR [IMAGE...]}"
dir="${2:?usage: ci_image_cache.sh save|load DIR [IMAGE...]}"
shift 2
tarball="$dir/images.tar"
case "$action" in
  save)
    (($#)) || { echo "ci_image_cache.sh save: no image given" >&2; exit 2; }
    mkdir -p "$dir"
    docker save -o "$tarball.tmp" "$@"
    mv "$tarball.tmp" "$tarball"
    echo "saved $* to $tarball ($(du -h "$tarball" | cut -f1))"
    ;;
  load)
    if [[ -f "$tarball" ]]; then
      docker load -q -i "$tarball"
    else
      echo "no cached images in $dir"
    fi
    ;;
  *) echo "ci_image_cache.sh: unknown action $action (save or load)" >&2; exit 2 ;;
esac
