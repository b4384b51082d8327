#!/usr/bin/env bash
# The main job (`make run`): the whole GitOps loop on the embedded defaults (SQLite MLflow and
# local artifacts under .mlops/). A scratch git repository under .mlops/loop stands in for the
# GitHub repository: each commit there is a merged pull request, each `mlops promote apply` is
# the CD job that follows it. Every step is a command a person or a workflow runs for real.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MLOPS=${MLOPS:-$ROOT/.venv/bin/mlops}
export ML_HOME=${ML_HOME:-$ROOT/.mlops}
export ML_TRAIN_CONFIG=${ML_TRAIN_CONFIG:-$ROOT/config/train.yaml}
# The canary gate replays the reviewed holdout; the scratch repository has no data/ of its own.
export ML_DATA_SOURCE=${ML_DATA_SOURCE:-$ROOT/data/uci_credit_card.csv.gz}
export COLUMNS=${COLUMNS:-120}
LOOP=${LOOP_DIR:-$ML_HOME/loop}
export ML_PROMOTE_GATES_FILE=$ROOT/config/gates.yaml
GATES=$ML_PROMOTE_GATES_FILE
MODEL=credit-risk

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

train() {
  # Prints the training table; returns the registered version on the last line.
  local out
  out=$(cd "$ROOT" && "$MLOPS" train "$@" | tee /dev/stderr)
  grep -oE "Registered $MODEL version [0-9]+" <<<"$out" | grep -oE '[0-9]+$'
}

merge_pr() {
  # $1 version, $2 title: edit promotions.yaml on a branch and merge it, as a reviewed PR would.
  git -C "$LOOP" checkout -q -b "promote-$1"
  sed -i -E "s/^(    version: )[0-9]+/\1$1/; s/^(    note: ).*/\1\"$2\"/" "$LOOP/promotions.yaml"
  git -C "$LOOP" commit -qam "$2"
  ci_checks
  git -C "$LOOP" checkout -q main
  git -C "$LOOP" merge -q --no-ff "promote-$1" -m "Merge pull request: $2"
}

ci_checks() {
  step "CI on the pull request: validate and plan"
  (cd "$LOOP" && "$MLOPS" promote validate --gates "$GATES" && "$MLOPS" promote plan)
}

cd_apply() {
  step "CD after merge: apply staging, then (approved) production"
  (cd "$LOOP" && "$MLOPS" promote apply --env staging --actor local-loop \
    && "$MLOPS" promote apply --env production --actor local-loop \
    && "$MLOPS" promote status)
}

rm -rf "$LOOP"
mkdir -p "$LOOP"
cp "$ROOT/promotions.yaml" "$LOOP/promotions.yaml"
# The reviewed governance file the gates read (config/gates.yaml names it by repository path).
mkdir -p "$LOOP/config"
cp "$ROOT/config/governance.yaml" "$LOOP/config/governance.yaml"
git -C "$LOOP" init -q -b main
git -C "$LOOP" -c user.name=local-loop -c user.email=local-loop@example.invalid \
  commit -q --allow-empty -m "start"
git -C "$LOOP" config user.name local-loop
git -C "$LOOP" config user.email local-loop@example.invalid
git -C "$LOOP" add promotions.yaml && git -C "$LOOP" commit -qm "Add promotions.yaml"

step "1. Retrain: both candidates, the champion registered as a new version"
first=$(train)

step "2. Promote version $first through a pull request"
merge_pr "$first" "Promote $MODEL v$first"
cd_apply

step "3. Retrain (XGBoost only) and promote the new version"
second=$(train --model xgboost)
merge_pr "$second" "Promote $MODEL v$second"
cd_apply

step "4. Roll back: mlops rollback writes the edit to the previous production version"
(cd "$LOOP" && "$MLOPS" rollback "$MODEL" --commit --reason "local loop: rollback drill")
branch=$(git -C "$LOOP" rev-parse --abbrev-ref HEAD)
ci_checks
git -C "$LOOP" checkout -q main
git -C "$LOOP" merge -q --no-ff "$branch" -m "Merge pull request: roll back $MODEL"
cd_apply

step "5. History of $MODEL: git log of promotions.yaml joined with the registry tags"
(cd "$LOOP" && "$MLOPS" history "$MODEL")

printf '\nLocal GitOps loop done: production is back on version %s (MLflow store: %s).\n' \
  "$first" "$ML_HOME"
