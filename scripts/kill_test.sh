#!/usr/bin/env bash
# The longer kill test behind docs/reliability.md: tests/cli_kill.sh with 100
# SIGKILLs, once with a checkpoint every step and once every 2 steps.
#   scripts/kill_test.sh [kills (100)] [path to bfn (build/bfn)] [random seed]
# Takes about a minute per 100 kills on an idle core; prints each run's summary.
set -euo pipefail
cd "$(dirname "$0")/.."
KILLS=${1:-100}
BFN=${2:-build/bfn}
SEED=${3:-$(( $(date +%s) % 100000 ))}
[ -x "$BFN" ] || { echo "kill_test: no bfn at $BFN (build first: scripts/test.sh --fast)" >&2; exit 2; }
status=0
for every in 1 2; do
  echo "== $KILLS kills, checkpoint every $every step(s) =="
  start=$(date +%s)
  if ! bash tests/cli_kill.sh "$BFN" . "$KILLS" "$SEED" "$every"; then status=1; fi
  echo "   ($(( $(date +%s) - start )) s)"
done
exit $status
