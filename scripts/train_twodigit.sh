#!/usr/bin/env bash
# The training run behind models/twodigit.bfn (two MNIST digits side by side
# on a 64x64 canvas): starts it, or resumes it from runs/twodigit.ckpt when
# that exists. Safe to stop (Ctrl-C or kill) and rerun.
#   scripts/train_twodigit.sh [--threads N]     (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
threads=2
[ "${1:-}" = "--threads" ] && threads=${2:?}
[ -x build/bfn ] || scripts/setup.sh
[ -f data/mnist/train-images-idx3-ubyte ] || build/bfn data fetch
mkdir -p runs
args=(--data twodigit --ckpt runs/twodigit.ckpt --out runs/twodigit.bfn --threads "$threads"
      --steps 30000 --val-every 500 --val-batches 4 --ckpt-every 250)
if [ -f runs/twodigit.ckpt ]; then
  exec nice -n 10 build/bfn train "${args[@]}" --resume
fi
exec nice -n 10 build/bfn train "${args[@]}" --batch 32 --lr 1e-3 --lr-min 2e-5 --warmup 500 \
  --beta1 3 --dropout 0 --ema 0.999 --base-ch 16 --mult 1,2,4,4 \
  --notes "64x64 two-digit U-Net 16/32/64/64, attention at 8x8, beta1 3, batch 32"
