#!/usr/bin/env bash
# Submits a gridtwin sweep as an array job of TASKS tasks, and a merge job
# that runs when every task has succeeded. Prints both job ids.
#
#   GRIDTWIN=... SCENARIO=... REPLICATIONS=... [VARY="..."] OUT=... \
#       deploy/slurm/submit.sh TASKS [extra sbatch flags...]
#
# Each task gets a contiguous range of runs (a task costs about a second of
# scheduling, so give each many runs). Resubmitting after a failure
# resumes: finished runs are kept in the shard folders.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tasks=${1:?usage: submit.sh TASKS [sbatch flags...]}
shift
: "${SCENARIO:?set SCENARIO}" "${REPLICATIONS:?set REPLICATIONS}" "${OUT:?set OUT}"
# The jobs run in $OUT: make every path absolute.
GRIDTWIN=${GRIDTWIN:-gridtwin}
case $GRIDTWIN in */*) GRIDTWIN=$(realpath "$GRIDTWIN") ;; esac
SCENARIO=$(realpath "$SCENARIO")
OUT=$(realpath -m "$OUT")
export GRIDTWIN SCENARIO REPLICATIONS OUT VARY=${VARY:-}
mkdir -p "$OUT"
array=$(sbatch --parsable --export=ALL --chdir="$OUT" --array="0-$((tasks - 1))" "$@" \
    "$here/sweep.sbatch")
merge=$(sbatch --parsable --export=ALL --chdir="$OUT" --dependency="afterok:${array%%;*}" "$@" \
    "$here/merge.sbatch")
echo "$array $merge"
