#!/usr/bin/env bash
# The training run behind models/mnist.bfn (recipe in scripts/train_model.sh).
#   scripts/train_mnist.sh [--threads N]     (default 2)
exec "$(dirname "$0")/train_model.sh" mnist "$@"
