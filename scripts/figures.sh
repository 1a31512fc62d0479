#!/usr/bin/env bash
# Remakes the figures in docs/ from the shipped models, the way the README and
# the model cards say they were made: the sample grids and evolution strips
# (bfn sample, n = 100, seed 1; the grids also guided by models/guides/) and
# the app's screenshots (bfnviz --headless running the scripts in src/viz/demo/).
#   scripts/figures.sh [samples|screenshots|all]      (default all)
# The training screenshot trains a tiny model for half a minute (runs/).
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
case "$what" in samples|screenshots|all) ;;
  *) echo "usage: scripts/figures.sh [samples|screenshots|all]" >&2; exit 2 ;;
esac
{ [ -x build/bfn ] && [ -x build/bfnviz ]; } || scripts/setup.sh
if [ "$what" != screenshots ]; then
  build/bfn sample --model models/mnist.bfn --count 100 --cols 10 --steps 100 --seed 1 \
    --out docs/samples_mnist.png --strip docs/strip_mnist.png
  build/bfn sample --model models/twodigit.bfn --count 16 --cols 4 --steps 100 --seed 1 \
    --out docs/samples_twodigit.png --strip docs/strip_twodigit.png
  # the same seeds with autoguidance by the shipped guides (models/guides/README.md)
  build/bfn sample --model models/mnist.bfn --guide models/guides/mnist.bfn --guidance 1.5 \
    --count 100 --cols 10 --steps 100 --seed 1 --out docs/samples_mnist_guided.png
  build/bfn sample --model models/twodigit.bfn --guide models/guides/twodigit.bfn --guidance 2 \
    --count 16 --cols 4 --steps 100 --seed 1 --out docs/samples_twodigit_guided.png
fi
if [ "$what" != samples ]; then
  build/bfnviz --headless --steps 50 --script src/viz/demo/main.txt
  for demo in inspector teach teach_inpaint training; do
    build/bfnviz --headless --script "src/viz/demo/$demo.txt"
  done
fi
echo "figures.sh: docs/ figures remade ($what)"
