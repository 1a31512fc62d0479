#!/usr/bin/env bash
# Sets up, builds and runs the main job: samples digits from the shipped MNIST
# model into samples.png (with an evolution strip in evolution.png). Without a
# shipped model it fetches MNIST and trains a short model first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BFN=build/bfn
MODEL=models/mnist.bfn
if [ ! -f "$MODEL" ]; then
  echo "run: no shipped model at $MODEL; fetching MNIST and training a short model (a few minutes)"
  "$BFN" data fetch
  MODEL=runs/quick.bfn
  if [ -f runs/quick.ckpt ]; then resume=--resume; else resume=; fi
  nice "$BFN" train --ckpt runs/quick.ckpt --out "$MODEL" --steps 1500 $resume
fi
"$BFN" sample --model "$MODEL" --steps 100 --count 64 --out samples.png --strip evolution.png
echo "run: open samples.png and evolution.png"
