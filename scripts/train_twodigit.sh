#!/usr/bin/env bash
# The first training run behind models/twodigit.bfn (recipe in scripts/train_model.sh;
# the model is its weights after three more decays, scripts/train_model.sh
# twodigit-wide-more, twodigit-third then twodigit-fourth, see models/twodigit.md).
#   scripts/train_twodigit.sh [--threads N]     (default 2)
exec "$(dirname "$0")/train_model.sh" twodigit-wide "$@"
