#!/usr/bin/env bash
# The training runs behind the shipped models: starts one, or resumes it from
# runs/<name>.ckpt when that exists. Safe to stop (Ctrl-C or kill) and rerun.
#   scripts/train_model.sh NAME [--threads N]   (default 2; NAME one of recipes= below)
# mnist-more is the fifth cosine decay behind models/mnist.bfn: a new run that
# starts from the weights the mnist run ends with, runs/mnist.bfn (bfn train
# --init; the shipped one started from the step-42,000 file, see the card).
# twodigit and twodigit-more are the two runs behind the earlier two-digit
# model (16/32/64/64 channels, `git show 3915b0b:models/twodigit.bfn`):
# twodigit-more its fourth cosine decay, from runs/twodigit.bfn (that model's
# run started from the step-17,000 file).
# mnist48 and mnist48-cont are the first two runs behind models/mnist48.bfn, a wider
# MNIST U-Net (base 48 channels): run 1 from scratch, run 2 a new run from run
# 1's weights (bfn train --init) that rejoins run 1's cosine; models/mnist48.md
# tells where each was stopped and how the schedule's end was moved.
# mnist48-more is a third run behind models/mnist48.bfn: a second cosine decay
# from the weights mnist48-cont ends with; mnist48-third a third, shorter one
# from the weights mnist48-more ends with (models/mnist48.bfn).
# twodigit-wide (16/32/96/96 channels, twice the parameters at 0.7 times the
# speed) and twodigit-wide-more, a second cosine decay from its weights
# (runs/twodigit-wide.bfn), and twodigit-third, a third decay from the weights
# twodigit-wide-more ends with (runs/twodigit-wide-more.bfn), on new canvases,
# and twodigit-fourth, a fourth decay from the weights twodigit-third ends with,
# twodigit-fifth, a fifth from the weights twodigit-fourth ends with, and
# twodigit-batch128, a sixth from the weights twodigit-fifth ends with at four
# times the batch and a lower peak rate (the MNIST model's mnist-batch256
# recipe, the same number of canvases as a decay at batch 32), and
# twodigit-seventh, one more such decay at batch 128 from the weights
# twodigit-batch128 ends with, on new canvases, are the seven runs behind
# models/twodigit.bfn (models/twodigit.md); twodigit-batch256 one more from
# the weights twodigit-seventh ends with at twice the batch.
# mnist-batch256 is one more cosine decay from the weights mnist-more ends with
# (runs/mnist-more.bfn) at four times the batch; mnist-batch512 one more from
# the weights mnist-batch256 ends with (runs/mnist-batch256.bfn, the file
# models/mnist.bfn) at twice that batch, over as many images.
# mnist-grow starts from the weights mnist-more ends with (runs/mnist-more.bfn)
# and adds attention at 14x14 (--init with --attn 2: the new blocks start as
# identities, so the network starts where that model is), then one cosine decay.
# mnist-attn2 trains the MNIST network with attention at 14x14 too (--attn 2),
# a candidate named in models/mnist.md ("Next"); mnist-mult124 the MNIST network
# with twice the channels at 7x7 (32/64/128: --mult 1,2,4), where a digit's
# overall shape is decided, at 1.55 times the time per training step.
# scripts/train_mnist.sh and scripts/train_twodigit.sh call this one.
# A resumed run keeps its own recipe and description (the notes stored in its
# files); --steps in run=() sets the end of its cosine learning-rate schedule
# (the model cards tell when it was moved).
set -euo pipefail
cd "$(dirname "$0")/.."
recipes='mnist|mnist-more|mnist-batch256|mnist-batch512|mnist-grow|mnist-attn2|mnist-mult124|mnist48|mnist48-cont|mnist48-more|mnist48-third|twodigit|twodigit-more|twodigit-wide|twodigit-wide-more|twodigit-third|twodigit-fourth|twodigit-fifth|twodigit-batch128|twodigit-seventh|twodigit-batch256'
name=${1:-}
shift || true
threads=2
[ "${1:-}" = "--threads" ] && threads=${2:?}
data=$name
# the schedule run 1 of mnist48 followed (warmup, peak, cosine to lr_min at
# step end), which mnist48-cont rejoins
m48_warmup=500 m48_lr=1e-3 m48_lr_min=2e-5 m48_end=24000
# a decay at four times the batch and a lower peak rate (mnist-batch256 adds its
# --init, --batch and --seed; the two-digit ones go through td_big_decay_from;
# mnist-batch512 and twodigit-batch256 share its rates at twice its batch, with
# the warmup and EMA horizon over as many images: big_batch2_decay)
big_batch_lr=(--lr 3e-4 --lr-min 2e-5)
big_batch_decay=("${big_batch_lr[@]}" --warmup 125 --ema 0.998)
big_batch2_decay=("${big_batch_lr[@]}" --warmup 63 --ema 0.996)
# the recipe of the MNIST run from scratch (mnist-attn2 adds its attention)
mnist_recipe=(--batch 64 --lr 1e-3 --lr-min 2e-5 --warmup 500 --beta1 3 --dropout 0 --ema 0.999)
# the recipe both two-digit networks trained from scratch with (each adds its widths),
# and the decay each was continued with from its weights (each adds its --init and --seed)
td_recipe=(--batch 32 --lr 1e-3 --lr-min 2e-5 --warmup 500 --beta1 3 --dropout 0 --ema 0.999
           --base-ch 16)
td_decay_run=(--steps 8000 --val-every 500 --val-batches 4 --ckpt-every 250)
td_decay=(--batch 32 --lr 5e-4 --lr-min 2e-5 --warmup 500 --ema 0.999)
td_big_decay_run=(--steps 2000 --val-every 125 --val-batches 4 --ckpt-every 125)
td_big_decay=(--batch 128 "${big_batch_decay[@]}")
td_net="64x64 two-digit U-Net 16/32/96/96, beta1 3"
td_wide="$td_net, batch 32"
# one such decay: td_decay_from WEIGHTS SEED NOTES (a new seed draws new canvases)
td_decay_from() {
  data=twodigit
  run=("${td_decay_run[@]}")
  recipe=(--init "$1" "${td_decay[@]}" --seed "$2")
  notes=$3
}
# one such decay at batch 128: td_big_decay_from WEIGHTS SEED NOTES
td_big_decay_from() {
  data=twodigit
  run=("${td_big_decay_run[@]}")
  recipe=(--init "$1" "${td_big_decay[@]}" --seed "$2")
  notes=$3
}
case "$name" in
  mnist)
    run=(--steps 42000 --val-every 250 --val-batches 5 --ckpt-every 250)
    recipe=("${mnist_recipe[@]}")
    notes="28x28 default U-Net, beta1 3, batch 64" ;;
  mnist-more)
    data=mnist
    run=(--steps 12500 --val-every 250 --val-batches 5 --ckpt-every 250)
    recipe=(--init runs/mnist.bfn --batch 64 --lr 3e-4 --lr-min 2e-5 --warmup 500 --ema 0.999)
    notes="28x28 default U-Net, beta1 3, batch 64; a fifth cosine decay from the step-42,000 weights" ;;
  mnist-batch256)
    data=mnist
    run=(--steps 1750 --val-every 125 --val-batches 5 --ckpt-every 125)
    recipe=(--init runs/mnist-more.bfn --batch 256 "${big_batch_decay[@]}" --seed 8)
    notes="28x28 default U-Net, beta1 3; a sixth cosine decay from the fifth's weights at batch 256" ;;
  mnist-batch512)
    # the same images as mnist-batch256 (448,000) in half the steps; its
    # warmup and EMA horizon the same number of images as that run's
    data=mnist
    run=(--steps 875 --val-every 125 --val-batches 5 --ckpt-every 125)
    recipe=(--init runs/mnist-batch256.bfn --batch 512 "${big_batch2_decay[@]}" --seed 9)
    notes="28x28 default U-Net, beta1 3; a seventh cosine decay from the sixth's weights at batch 512" ;;
  mnist-grow)
    data=mnist
    run=(--steps 7000 --val-every 250 --val-batches 5 --ckpt-every 250)
    recipe=(--init runs/mnist-more.bfn --attn 2 --batch 64 --lr 5e-4 --lr-min 2e-5 --warmup 500
            --ema 0.999 --seed 6)
    notes="28x28 default U-Net, beta1 3, batch 64; the fifth decay's weights with attention added at 14x14, one more cosine decay" ;;
  mnist-attn2)
    # the mnist recipe with self-attention at 14x14 as well as 7x7 (--attn 2),
    # one cosine to step 30,000
    data=mnist
    run=(--steps 30000 --val-every 250 --val-batches 5 --ckpt-every 250)
    recipe=("${mnist_recipe[@]}" --attn 2)
    notes="28x28 default U-Net with attention at 14x14 and 7x7, beta1 3, batch 64" ;;
  mnist-mult124)
    # the mnist recipe with 128 channels at 7x7, one cosine to step 30,000
    data=mnist
    run=(--steps 30000 --val-every 250 --val-batches 5 --ckpt-every 250)
    recipe=("${mnist_recipe[@]}" --mult 1,2,4)
    notes="28x28 U-Net 32/64/128 (attention at 7x7), beta1 3, batch 64" ;;
  mnist48)
    data=mnist
    run=(--steps "$m48_end" --val-every 250 --val-batches 5 --ckpt-every 250)
    recipe=(--batch 64 --lr "$m48_lr" --lr-min "$m48_lr_min" --warmup "$m48_warmup" --beta1 3
            --dropout 0 --ema 0.999 --base-ch 48)
    notes="28x28 U-Net base 48 (48/96/96), beta1 3, batch 64" ;;
  mnist48-cont)
    # g0: the global step of run 1's weights (images seen / 64, as `bfn info`
    # prints); the learning rate is mnist48's cosine at that step (as
    # bfn_train_lr_at computes it)
    g0=5316
    lr=$(awk -v g="$g0" -v w="$m48_warmup" -v hi="$m48_lr" -v lo="$m48_lr_min" -v end="$m48_end" \
         'BEGIN { printf "%.3g", lo + (hi - lo) * 0.5 * (1 + cos(3.14159265358979 * (g - w) / (end - w))) }')
    data=mnist
    # its length is part of the recipe: a resume keeps the length its run began
    # with (or the one --resume --steps gives it)
    run=(--val-every 250 --val-batches 5 --ckpt-every 250)
    recipe=(--init runs/mnist48.bfn --steps $((m48_end - g0)) --batch 64 --lr "$lr"
            --lr-min "$m48_lr_min" --warmup 250 --ema 0.999 --seed 2)
    notes="28x28 U-Net base 48 (48/96/96), beta1 3, batch 64; continued from its step-$g0 snapshot" ;;
  mnist48-more)
    # a second cosine decay from the weights mnist48-cont ends with (fresh
    # AdamW state, new draws); models/mnist48.md tells where to find them
    data=mnist
    run=(--steps 5000 --val-every 250 --val-batches 5 --ckpt-every 250)
    recipe=(--init runs/mnist48-cont.bfn --batch 64 --lr 4e-4 --lr-min 2e-5 --warmup 250
            --ema 0.999 --seed 3)
    notes="28x28 U-Net base 48 (48/96/96), beta1 3, batch 64; a second cosine decay from its step-20,000 weights" ;;
  mnist48-third)
    # a third cosine decay from the weights mnist48-more ends with (the file
    # models/mnist48.bfn; fresh AdamW state, new draws)
    data=mnist
    run=(--steps 2500 --val-every 250 --val-batches 5 --ckpt-every 250)
    recipe=(--init runs/mnist48-more.bfn --batch 64 --lr 3e-4 --lr-min 2e-5 --warmup 250
            --ema 0.999 --seed 4)
    notes="28x28 U-Net base 48 (48/96/96), beta1 3, batch 64; a third cosine decay from its second decay's weights" ;;
  twodigit)
    run=(--steps 17000 --val-every 500 --val-batches 4 --ckpt-every 250)
    recipe=("${td_recipe[@]}" --mult 1,2,4,4)
    notes="64x64 two-digit U-Net 16/32/64/64, attention at 8x8, beta1 3, batch 32" ;;
  twodigit-more)
    td_decay_from runs/twodigit.bfn 4 \
      "64x64 two-digit U-Net 16/32/64/64, beta1 3, batch 32; a fourth cosine decay from the step-17,000 weights" ;;
  twodigit-wide)
    data=twodigit
    run=(--steps 24000 --val-every 500 --val-batches 4 --ckpt-every 250)
    recipe=("${td_recipe[@]}" --mult 1,2,6,6)
    notes="64x64 two-digit U-Net 16/32/96/96, attention at 8x8, beta1 3, batch 32" ;;
  twodigit-wide-more)
    td_decay_from runs/twodigit-wide.bfn 4 "$td_wide; a second cosine decay from the step-24,000 weights" ;;
  twodigit-third)
    td_decay_from runs/twodigit-wide-more.bfn 5 "$td_wide; a third cosine decay from the second decay's weights" ;;
  twodigit-fourth)
    td_decay_from runs/twodigit-third.bfn 6 "$td_wide; a fourth cosine decay from the third decay's weights" ;;
  twodigit-fifth)
    td_decay_from runs/twodigit-fourth.bfn 7 "$td_wide; a fifth cosine decay from the fourth decay's weights" ;;
  twodigit-batch128)
    td_big_decay_from runs/twodigit-fifth.bfn 8 "$td_net; a sixth cosine decay from the fifth's weights at batch 128" ;;
  twodigit-seventh)
    td_big_decay_from runs/twodigit-batch128.bfn 9 "$td_net; a seventh cosine decay from the sixth's weights at batch 128" ;;
  twodigit-batch256)
    # as many canvases as twodigit-seventh (256,000) at twice the batch; its
    # warmup, EMA horizon and held-out canvases (512) the same numbers of canvases
    data=twodigit
    run=(--steps 1000 --val-every 125 --val-batches 2 --ckpt-every 125)
    recipe=(--init runs/twodigit-seventh.bfn --batch 256 "${big_batch2_decay[@]}" --seed 10)
    notes="$td_net; an eighth cosine decay from the seventh's weights at batch 256" ;;
  *) echo "usage: scripts/train_model.sh $recipes [--threads N]" >&2; exit 2 ;;
esac
[ -x build/bfn ] || scripts/setup.sh
[ -f data/mnist/train-images-idx3-ubyte ] || build/bfn data fetch
mkdir -p runs
args=(--data "$data" --ckpt "runs/$name.ckpt" --out "runs/$name.bfn" --threads "$threads" "${run[@]}")
if [ -f "runs/$name.ckpt" ]; then
  exec nice -n 10 build/bfn train "${args[@]}" --resume
fi
exec nice -n 10 build/bfn train "${args[@]}" "${recipe[@]}" --notes "$notes"
