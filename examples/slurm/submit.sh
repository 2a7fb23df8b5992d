#!/usr/bin/env bash
# A whole sweep on Slurm: set-up once here, the manifest's per-model preparation (head profiles) once, N shards as a
# job array, and the merge queued behind them with --dependency=afterok. Prints the two job ids.
#
#   examples/slurm/submit.sh <manifest> <shards> <results folder> [sbatch options…]
#
# Run it from the repository root on a login node whose checkout the compute nodes see at the same path (and the same
# ~/.cache/razorkv and Hugging Face cache, as with a shared home). Extra arguments go to both sbatch calls
# (e.g. --partition=gpu --time=4:00:00).
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 <manifest> <shards> <results folder> [sbatch options…]" >&2
  exit 2
fi
manifest=$1 shards=$2 out=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
# the set-up (pnpm, dependencies, the native addon's build) runs here, once: array tasks would race on it
node tools/bootstrap.mjs setup >&2
# per-model preparation once, before the shards, so no two tasks prepare the same model at once
node packages/eval-runner/dist/cli.js prepare --manifest "$manifest" >&2
array=$(RAZORKV_SHARD_COUNT=$shards sbatch --parsable --array="0-$((shards - 1))" "$@" "$here/sweep.sbatch" "$manifest" --out "$out")
merge=$(sbatch --parsable --dependency="afterok:${array%%;*}" "$@" "$here/merge.sbatch" "$out")
echo "{\"array\":\"${array%%;*}\",\"merge\":\"${merge%%;*}\",\"results\":\"$out\"}"
