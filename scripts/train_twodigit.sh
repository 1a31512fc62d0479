#!/usr/bin/env bash
# The training run behind models/twodigit.bfn (recipe in scripts/train_model.sh).
#   scripts/train_twodigit.sh [--threads N]     (default 2)
exec "$(dirname "$0")/train_model.sh" twodigit-wide "$@"
