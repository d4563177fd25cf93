#!/usr/bin/env bash
# A parallel sweep: two learning rates x two dropout rates, queued as four DVC experiments
# and run N at a time; then the table to pick the winner from.
#
#   DATA_MIRROR=../shared/datasets bash experiments/sweep.sh [jobs] [-S key=value ...]
#
# Extra -S arguments apply to every experiment (e.g. -S epochs=5 for a quick look).
# Each queued experiment runs in its own temporary copy of the workspace (.dvc/tmp/exps),
# so parallel runs share no outputs, temporary files or download folders.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=2
if [[ ${1:-} =~ ^[1-9][0-9]*$ ]]; then
  jobs=$1
  shift
fi

# N runs share the cores: give each 1/N of them rather than letting every run start a
# thread per core. The queue's workers inherit this environment.
threads=$(($(nproc) / jobs))
threads=$((threads > 0 ? threads : 1))
export TF_NUM_INTRAOP_THREADS=$threads TF_NUM_INTEROP_THREADS=1 OMP_NUM_THREADS=$threads

# DVC expands comma-separated values into every combination (Hydra's sweep syntax).
queued=$(dvc exp run --queue -S 'train.learning_rate=0.001,0.003' -S 'model.dropout=0.3,0.5' "$@")
echo "$queued"
# Only this sweep's tasks count: the queue also lists earlier runs, failed ones included.
names=$(sed -n "s/^Queued experiment '\(.*\)' for future execution\.$/\1/p" <<<"$queued")
[[ -n $names ]] || { echo "error: dvc exp run --queue queued nothing" >&2; exit 1; }
ours() { dvc queue status | awk 'NR == FNR { name[$1]; next } $2 in name' <(echo "$names") -; }
dvc queue start --jobs "$jobs"
while ours | grep -qE 'Queued|Running'; do
  sleep 15
done
status=$(ours)
echo "$status"
if grep -q Failed <<<"$status"; then
  echo "error: an experiment of this sweep failed; see dvc queue logs <task>" >&2
  exit 1
fi

dvc exp show --no-pager --md --hide-workspace --hide-queued --precision 4 \
  --sort-by best_val_accuracy --sort-order desc \
  --drop '.*' \
  --keep '^Experiment$|^accuracy$|best_val_accuracy|epochs_run|fit_seconds|model.dropout|params.yaml:train.learning_rate'
echo "Pick by best_val_accuracy (the test set is for reporting, not choosing); compare two with:"
echo "  dvc plots diff <experiment> <experiment>"
