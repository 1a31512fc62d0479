#!/usr/bin/env bash
# Sets up, builds and opens the app on the shipped MNIST model. Without a
# display it samples digits into samples.png (and evolution.png) instead.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  exec build/bfnviz --model models/mnist.bfn
fi
echo "run: no display; sampling into samples.png and evolution.png instead"
build/bfn sample --model models/mnist.bfn --steps 100 --count 64 --out samples.png --strip evolution.png
