#!/usr/bin/env bash
# A parallel sweep: two learning rates x two layer shapes, queued as four DVC experiments
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
dvc exp run --queue -S 'train.learning_rate=0.001,0.003' -S 'model.hidden_units=[256],[512,512]' "$@"
dvc queue start --jobs "$jobs"
while true; do
  status=$(dvc queue status)
  grep -qE 'Queued|Running' <<<"$status" || break
  sleep 15
done
echo "$status"
if grep -q Failed <<<"$status"; then
  echo "error: the queue holds failed experiments; see dvc queue logs <task>" >&2
  exit 1
fi

dvc exp show --no-pager --md --hide-workspace --hide-queued --precision 4 \
  --sort-by best_val_accuracy --sort-order desc \
  --drop '.*' \
  --keep '^Experiment$|^accuracy$|best_val_accuracy|epochs_run|fit_seconds|model.hidden_units|params.yaml:train.learning_rate'
echo "Pick by best_val_accuracy (the test set is for reporting, not choosing); compare two with:"
echo "  dvc plots diff <experiment> <experiment>"
