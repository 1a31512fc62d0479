#!/usr/bin/env bash
# The model card's evaluation table: the test NLL bound L^n + L^r for
# n = 10, 25, 50, 100, 784 and continuous time, on the MNIST test images
# (dynamically binarized), next to the published BFN figures.
#   scripts/eval_table.sh [--model PATH] [--limit N] [--threads N] [--seed N]
# Prints a Markdown table; every row's command is shown under it.
set -euo pipefail
cd "$(dirname "$0")/.."
model=models/mnist.bfn limit=10000 threads=2 seed=1
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model=${2:?}; shift 2 ;;
    --limit) limit=${2:?}; shift 2 ;;
    --threads) threads=${2:?}; shift 2 ;;
    --seed) seed=${2:?}; shift 2 ;;
    *) echo "eval_table.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -x build/bfn ] || scripts/setup.sh
declare -A paper=([10]=95.21 [25]=84.40 [50]=81.06 [100]=79.46 [784]=78.02 [inf]=77.87)
echo "| n | L^n (nats) | L^r (nats) | bound L^n + L^r | published BFN |"
echo "|---|---|---|---|---|"
for n in 10 25 50 100 784 inf; do
  if [ "$n" = inf ]; then step=(--continuous); else step=(--steps "$n"); fi
  cmd=(build/bfn eval --model "$model" "${step[@]}" --limit "$limit" --seed "$seed" --threads "$threads")
  out=$("${cmd[@]}" 2>&1) || { echo "eval_table.sh: ${cmd[*]} failed: $out" >&2; exit 1; }
  ln=$(awk '$1 ~ /^L(\^[0-9]+|_inf)$/ {print $2 " ± " $4}' <<<"$out")
  lr=$(awk '$1 == "L^r" {print $2 " ± " $4}' <<<"$out")
  tot=$(awk '$1 == "total" {print $2 " ± " $4}' <<<"$out")
  label=$n; [ "$n" = inf ] && label=∞
  echo "| $label | $ln | $lr | **$tot** | ${paper[$n]} |"
  echo "eval_table: ${cmd[*]}" >&2
done
