#!/usr/bin/env bash
# The training run behind models/mnist.bfn: starts it, or resumes it from
# runs/mnist.ckpt when that exists. Safe to stop (Ctrl-C or kill) and rerun.
#   scripts/train_mnist.sh [--threads N]     (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
threads=2
[ "${1:-}" = "--threads" ] && threads=${2:?}
[ -x build/bfn ] || scripts/setup.sh
[ -f data/mnist/train-images-idx3-ubyte ] || build/bfn data fetch
mkdir -p runs
args=(--data mnist --ckpt runs/mnist.ckpt --out runs/mnist.bfn --threads "$threads"
      --steps 20500 --val-every 250 --val-batches 5 --ckpt-every 250)
if [ -f runs/mnist.ckpt ]; then
  exec nice -n 10 build/bfn train "${args[@]}" --resume
fi
exec nice -n 10 build/bfn train "${args[@]}" --batch 64 --lr 1e-3 --lr-min 2e-5 --warmup 500 \
  --beta1 3 --dropout 0 --ema 0.999 --notes "28x28 default U-Net, beta1 3, batch 64"
