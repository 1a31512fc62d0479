#!/usr/bin/env bash
# End to end through the command line, on a tiny synthetic MNIST-format data
# set: train a tiny model a few steps, save, resume, inspect, sample (grid and
# strip), evaluate; and bad input gives a clear error and a non-zero exit.
#   cli_e2e.sh <path to bfn> <source dir>
set -u
BFN=${1:?bfn executable}
BFN=$(readlink -f "$BFN") # some checks run it from another directory
SRC=${2:-.}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0; passes=0
ok()   { passes=$((passes+1)); echo "ok   $1"; }
bad()  { fails=$((fails+1)); echo "FAIL $1"; }
# expect CODE DESCRIPTION -- command...: the command's exit status must be CODE
expect() {
  local want=$1 what=$2; shift 3
  "$@" >"$T/out" 2>"$T/err"; local got=$?
  if [ "$got" = "$want" ]; then ok "$what"; else bad "$what: exit $got, expected $want"; sed 's/^/    /' "$T/err" | head -5; fi
}
be32() { printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1>>24&255)) $(($1>>16&255)) $(($1>>8&255)) $(($1&255)))"; }
mk_images() { { printf '\x00\x00\x08\x03'; be32 "$2"; be32 28; be32 28; head -c $(($2*784)) /dev/urandom; } > "$1"; }
mk_labels() { { printf '\x00\x00\x08\x01'; be32 "$2"; for ((i=0; i<$2; i++)); do printf "\\x0$((i%10))"; done; } > "$1"; }

D="$T/mnist"; mkdir -p "$D"
mk_images "$D/train-images-idx3-ubyte" 200; mk_labels "$D/train-labels-idx1-ubyte" 200
mk_images "$D/t10k-images-idx3-ubyte" 40;   mk_labels "$D/t10k-labels-idx1-ubyte" 40

TINY=(--base-ch 8 --mult 1,2 --n-res 1 --heads 2 --temb 16 --groups 4 --batch 8)
expect 0 "train 6 steps" -- "$BFN" train --data-dir "$D" --ckpt "$T/run.ckpt" --out "$T/run.bfn" \
  --steps 6 --ckpt-every 3 --val-every 3 --val-batches 1 --quiet --notes "tiny e2e run" "${TINY[@]}"
[ -s "$T/run.ckpt" ] && [ -s "$T/run.bfn" ] && ok "checkpoint and model written" || bad "checkpoint and model written"
[ "$(grep -c '^[0-9]' "$T/run.ckpt.csv")" = 6 ] && ok "CSV log has 6 step rows" || bad "CSV log has 6 step rows ($(grep -c '^[0-9]' "$T/run.ckpt.csv"))"
long=$(printf 'x%.0s' $(seq 200))
# an output that cannot be written fails before the first step, not at the first save
mkdir -p "$T/ckdir"
for o in "--out $T/no/dir/x.bfn" "--ckpt $T/ckdir"; do
  # shellcheck disable=SC2086
  expect 1 "train refuses an output it cannot write ($o)" -- "$BFN" train --data-dir "$D" --ckpt "$T/w.ckpt" --out "$T/w.bfn" $o --steps 2 --quiet "${TINY[@]}"
  grep -q "cannot write" "$T/err" && [ ! -e "$T/w.ckpt.csv" ] && ! grep -q "^step" "$T/err" && ok "  ... says so before any step" || bad "  ... says so before any step: $(cat "$T/err")"
done
expect 2 "refuses notes too long for the file before training" -- "$BFN" train --data-dir "$D" --ckpt "$T/nl.ckpt" --out "$T/nl.bfn" --steps 2 --notes "$long" --quiet "${TINY[@]}"
grep -q -- "--notes: .*at most 191" "$T/err" && [ ! -e "$T/nl.ckpt.csv" ] && ok "  ... says so, and writes nothing" || bad "  ... says so, and writes nothing: $(cat "$T/err"; ls "$T" | grep nl)"
expect 2 "refuses to overwrite a checkpoint without --resume/--force" -- "$BFN" train --data-dir "$D" --ckpt "$T/run.ckpt" --out "$T/run.bfn" --steps 8 --quiet "${TINY[@]}"
expect 0 "resume to 8 steps" -- "$BFN" train --data-dir "$D" --ckpt "$T/run.ckpt" --out "$T/run.bfn" --steps 8 --resume --quiet
grep -q "resuming" "$T/err" && ok "resume announced" || bad "resume announced"
# without --steps a resume keeps the run's own end (here reached: nothing to train)
expect 0 "a resume without --steps" -- timeout 60 "$BFN" train --data-dir "$D" --ckpt "$T/run.ckpt" --out "$T/run.bfn" --resume --quiet
s=$("$BFN" info --model "$T/run.ckpt" | awk '/^step:/ {print $2}')
grep -q "done, step 8;" "$T/err" && [ "$s" = 8 ] && ok "  ... ends where the run was going to (step 8)" || bad "  ... ends where the run was going to (step 8; checkpoint at $s): $(cat "$T/err")"
cp "$T/run.ckpt" "$T/held.ckpt"
expect 2 "a resume refuses recipe and network options other than the checkpoint's" -- "$BFN" train --data-dir "$D" --ckpt "$T/run.ckpt" --out "$T/run.bfn" --steps 9 --resume "${TINY[@]}" --lr 0.5 --base-ch 16 --mult 1,2,2 --quiet
grep -q -- "differ from it: --lr 0.5 (checkpoint: 0.001), --base-ch 16 (checkpoint: 8), --mult 1,2,2 (checkpoint: 1,2)\." "$T/err" && cmp -s "$T/run.ckpt" "$T/held.ckpt" && ok "  ... names them with the checkpoint's values and leaves it alone" || bad "  ... names them with the checkpoint's values and leaves it alone: $(cat "$T/err")"
expect 2 "a resume refuses another data set than the checkpoint's" -- "$BFN" train --data fashion --data-dir "$D" --ckpt "$T/run.ckpt" --out "$T/run.bfn" --steps 9 --resume --quiet
grep -q -- "differ from it: --data fashion (checkpoint: mnist)\." "$T/err" && ok "  ... and says which" || bad "  ... and says which: $(cat "$T/err")"
expect 2 "a resume refuses an end at or before the checkpoint's step" -- "$BFN" train --data-dir "$D" --ckpt "$T/run.ckpt" --out "$T/run.bfn" --steps 5 --resume --quiet
grep -q -- "--steps 5: .* is at step 8 already" "$T/err" && cmp -s "$T/run.ckpt" "$T/held.ckpt" && ok "  ... says so and leaves the checkpoint alone" || bad "  ... says so and leaves the checkpoint alone: $(cat "$T/err")"
expect 2 "--mult with a trailing comma" -- "$BFN" train --data-dir "$D" --ckpt "$T/m.ckpt" --out "$T/m.bfn" --steps 1 --quiet "${TINY[@]}" --mult 1,2,
[ ! -e "$T/m.ckpt" ] && ok "  ... writes nothing" || bad "  ... writes nothing"
# a checkpoint path longer than 600 characters gets its log beside it, not at a cut-off name
P="$T"; for c in a b c d; do P="$P/$(printf "$c%.0s" $(seq 180))"; done; mkdir -p "$P"
expect 0 "a run whose checkpoint path is ${#P} characters long" -- "$BFN" train --data-dir "$D" --ckpt "$P/x.ckpt" --out "$T/x.bfn" --steps 1 --val-every 0 --quiet "${TINY[@]}"
[ "$(grep -c '^[0-9]' "$P/x.ckpt.csv" 2>/dev/null)" = 1 ] && ok "  ... logs to its own path + .csv" || bad "  ... logs to its own path + .csv: $(ls "$P" "$T")"
expect 1 "a checkpoint path too long" -- "$BFN" train --data-dir "$D" --ckpt "$T/$(printf 'y%.0s' $(seq 4100))" --out "$T/y.bfn" --steps 1 --quiet "${TINY[@]}"
grep -q "path too long" "$T/err" && [ ! -e "$T/y.bfn" ] && ok "  ... says so, and writes nothing" || bad "  ... says so, and writes nothing: $(head -c 300 "$T/err")"
# a resume without --data continues on the checkpoint's data set, and its model
# file defaults to runs/<that data set>.bfn, not the MNIST one
mkdir -p "$T/cwd" "$T/d2"
mk_images "$T/d2/train-images-idx3-ubyte" 3000; mk_labels "$T/d2/train-labels-idx1-ubyte" 3000
expect 0 "a tiny two-digit run" -- "$BFN" train --data twodigit --data-dir "$T/d2" --ckpt "$T/td.ckpt" --out "$T/td.bfn" --steps 1 --val-every 0 --quiet "${TINY[@]}"
expect 0 "  ... resumed without --data and --out" -- bash -c "cd \"$T/cwd\" && exec \"$BFN\" train --data-dir \"$T/d2\" --ckpt \"$T/td.ckpt\" --resume --steps 2 --quiet"
[ -s "$T/cwd/runs/twodigit.bfn" ] && [ ! -e "$T/cwd/runs/mnist.bfn" ] && ok "  ... writes runs/twodigit.bfn" || bad "  ... writes runs/twodigit.bfn: $(ls -R "$T/cwd"; cat "$T/err")"
for f in run.ckpt run.bfn; do
  n=$("$BFN" info --model "$T/$f" | grep "notes=")
  [ "$n" = "note:         notes=tiny e2e run" ] && ok "the resumed run's $f keeps its --notes" || bad "the resumed run's $f keeps its --notes (has: '$n')"
done
# --init: a new run from a model file's network and weights (fresh optimizer and schedule)
expect 0 "a new run from a model file (--init, --dropout changed)" -- "$BFN" train --data-dir "$D" --init "$T/run.bfn" --ckpt "$T/init.ckpt" --out "$T/init.bfn" --steps 1 --warmup 0 --lr 1e-8 --lr-min 0 --batch 8 --dropout 0.3 --val-every 0 --quiet
"$BFN" info --model "$T/run.bfn" > "$T/info_a"; "$BFN" info --model "$T/init.bfn" > "$T/info_b"
seen_a=$(awk '/^images seen:/ {print $3}' "$T/info_a"); seen_b=$(awk '/^images seen:/ {print $3}' "$T/info_b")
[ "$seen_b" = $((seen_a + 8)) ] && grep -q "^dropout: *0.3" "$T/info_b" && diff <(grep -v "^file:\|^step:\|^images seen:\|^dropout:\|^note:\|^section:" "$T/info_a") <(grep -v "^file:\|^step:\|^images seen:\|^dropout:\|^note:\|^section:" "$T/info_b") >/dev/null &&
  ok "  ... same network, dropout 0.3, images seen carried on ($seen_a + 8)" || bad "  ... same network, dropout 0.3, images seen carried on: $seen_a -> $seen_b; $(diff "$T/info_a" "$T/info_b" | head -8 | tr '\n' ' ')"
# one step at lr 1e-8 moves each weight by about 1e-8 (Adam's step is lr times about one), a
# float's last bit or two: the same bound to within 0.01 nats (a fresh network is hundreds off)
# ev MODEL: the three figures bfn eval prints (L^10, L^r, total), one a line
ev() { "$BFN" eval --model "$1" --data-dir "$D" --steps 10 --limit 8 --seed 2 --threads 1 |
       awk '/nats\/image/ { for (i = 2; i <= NF; i++) if ($i == "+-") print $(i - 1) }'; }
ev_run=$(ev "$T/run.bfn"); ev_init=$(ev "$T/init.bfn")
paste <(echo "$ev_run") <(echo "$ev_init") |
  awk 'NF == 2 { n++; d = $1 - $2; if (d < 0) d = -d; if (d > 0.01) far = 1 } END { exit !(n == 3 && !far) }' &&
  ok "  ... starts from the model's weights (bfn eval prints the same bound, to 0.01 nats)" || bad "  ... starts from the model's weights: $(echo $ev_run) vs $(echo $ev_init)"
expect 0 "a run from scratch for comparison" -- "$BFN" train --data-dir "$D" --ckpt "$T/scr.ckpt" --out "$T/scr.bfn" --steps 1 --warmup 0 --lr 1e-8 --lr-min 0 --val-every 0 --quiet "${TINY[@]}"
[ "$ev_run" != "$(ev "$T/scr.bfn")" ] && ok "  ... which a run from scratch does not" || bad "  ... which a run from scratch does not"
expect 2 "--init refuses network options other than --dropout" -- "$BFN" train --data-dir "$D" --init "$T/run.bfn" --ckpt "$T/init2.ckpt" --out "$T/init2.bfn" --steps 1 --base-ch 16 --quiet
grep -q -- "--base-ch" "$T/err" && ok "  ... and names them" || bad "  ... and names them: $(cat "$T/err")"
# --init with --attn adds attention at more levels; the new blocks start as identities
expect 0 "--init with --attn 2 adds attention at the level above" -- "$BFN" train --data-dir "$D" --init "$T/run.bfn" --attn 2 --ckpt "$T/grow.ckpt" --out "$T/grow.bfn" --steps 1 --warmup 0 --lr 1e-8 --lr-min 0 --batch 8 --val-every 0 --quiet
grep -q "attention added in the lowest 2 levels" "$T/err" && "$BFN" info --model "$T/grow.bfn" | grep -q "^attention: *middle and lowest 2 levels" &&
  ok "  ... says so, and the file has it" || bad "  ... says so, and the file has it: $(cat "$T/err"; "$BFN" info --model "$T/grow.bfn" | grep attention)"
ev_grow=$(ev "$T/grow.bfn")
paste <(echo "$ev_run") <(echo "$ev_grow") |
  awk 'NF == 2 { n++; d = $1 - $2; if (d < 0) d = -d; if (d > 0.01) far = 1 } END { exit !(n == 3 && !far) }' &&
  ok "  ... and starts computing what the model did (same bound, to 0.01 nats)" || bad "  ... and starts computing what the model did: $(echo $ev_run) vs $(echo $ev_grow)"
expect 2 "--init cannot take attention away" -- "$BFN" train --data-dir "$D" --init "$T/grow.bfn" --attn 1 --ckpt "$T/shrink.ckpt" --out "$T/shrink.bfn" --steps 1 --quiet
grep -q "can add attention, not remove it" "$T/err" && [ ! -e "$T/shrink.ckpt" ] && ok "  ... says so, and writes nothing" || bad "  ... says so, and writes nothing: $(cat "$T/err")"
expect 2 "--init with attention at more levels than the network has" -- "$BFN" train --data-dir "$D" --init "$T/run.bfn" --attn 3 --ckpt "$T/deep.ckpt" --out "$T/deep.bfn" --steps 1 --quiet
grep -q "attn_levels = 3, must be in \[0, n_levels = 2\]" "$T/err" && [ ! -e "$T/deep.ckpt" ] && ok "  ... names the field, and writes nothing" || bad "  ... names the field, and writes nothing: $(cat "$T/err")"
expect 2 "--init with --resume" -- "$BFN" train --data-dir "$D" --init "$T/run.bfn" --ckpt "$T/run.ckpt" --out "$T/run.bfn" --steps 9 --resume --quiet
expect 1 "--init of a file that is not a model" -- "$BFN" train --data-dir "$D" --init "$T/err" --ckpt "$T/init3.ckpt" --out "$T/init3.bfn" --steps 1 --quiet
# Ctrl-C: saves a checkpoint and exits 130; the run resumes from it
"$BFN" train --data-dir "$D" --ckpt "$T/int.ckpt" --out "$T/int.bfn" --steps 1000000 --quiet "${TINY[@]}" 2>"$T/int.err" &
pid=$!
for _ in $(seq 100); do [ -s "$T/int.ckpt.csv" ] && [ "$(wc -l < "$T/int.ckpt.csv")" -gt 3 ] && break; sleep 0.1; done
kill -INT $pid; wait $pid; code=$?
[ "$code" = 130 ] && ok "Ctrl-C exits 130" || bad "Ctrl-C exits 130 (got $code)"
grep -q "interrupted at step" "$T/int.err" && ok "Ctrl-C reports the saved step" || bad "Ctrl-C reports the saved step: $(cat "$T/int.err")"
expect 0 "checkpoint saved on Ctrl-C loads" -- "$BFN" info --model "$T/int.ckpt"
s=$("$BFN" info --model "$T/int.ckpt" | awk '/^step:/ {print $2}')
expect 0 "resume after Ctrl-C" -- "$BFN" train --data-dir "$D" --ckpt "$T/int.ckpt" --out "$T/int.bfn" --resume --steps $((s + 2)) --quiet
ls "$T"/*.tmp-* >/dev/null 2>&1 && bad "temporary files left behind" || ok "no temporary files left behind"

# a write that cannot complete (file-size limit, as on a full disk) leaves the previous checkpoint intact
cp "$T/run.ckpt" "$T/before.ckpt"
expect 1 "save beyond the file-size limit fails cleanly" -- bash -c "ulimit -f 64; exec \"$BFN\" train --data-dir \"$D\" --ckpt \"$T/run.ckpt\" --out \"$T/run.bfn\" --steps 9 --resume --quiet"
grep -q "intact" "$T/err" && ok "the error says the previous checkpoint is intact" || bad "the error says the previous checkpoint is intact: $(cat "$T/err")"
cmp -s "$T/run.ckpt" "$T/before.ckpt" && ok "previous checkpoint unchanged" || bad "previous checkpoint unchanged"
ls "$T"/*.tmp-* >/dev/null 2>&1 && bad "no temporary file after a failed save" || ok "no temporary file after a failed save"

expect 0 "info" -- "$BFN" info --model "$T/run.bfn"
grep -qi "beta" "$T/out" && ok "info shows beta1" || bad "info shows beta1"
grep -q "8" "$T/out" && ok "info shows the step" || bad "info shows the step"
expect 0 "info FILE" -- "$BFN" info "$T/run.bfn"
grep -qi "beta" "$T/out" && ok "info FILE shows the same header" || bad "info FILE shows the same header"
expect 2 "info with two files" -- "$BFN" info "$T/run.bfn" "$T/run.bfn"
expect 0 "sample grid + strip" -- "$BFN" sample --model "$T/run.bfn" --steps 10 --count 4 --seed 3 --out "$T/s.png" --strip "$T/strip.png" --strip-rows 2 --strip-cols 5
head -c 8 "$T/s.png" | od -An -c | grep -q 'P   N   G' && ok "grid is a PNG" || bad "grid is a PNG"
[ -s "$T/strip.png" ] && ok "strip written" || bad "strip written"
expect 0 "sample again, same seed" -- "$BFN" sample --model "$T/run.bfn" --steps 10 --count 4 --seed 3 --out "$T/s2.png"
cmp -s "$T/s.png" "$T/s2.png" && ok "same seed gives the same PNG bytes" || bad "same seed gives the same PNG bytes"
# another machine: the AVX2 kernels (BFN_ISA caps them) give the same images
expect 0 "sample with the AVX2 kernels" -- env BFN_ISA=avx2 "$BFN" sample --model "$T/run.bfn" --steps 10 --count 4 --seed 3 --out "$T/s_avx2.png" --strip "$T/strip_avx2.png" --strip-rows 2 --strip-cols 5
cmp -s "$T/s.png" "$T/s_avx2.png" && cmp -s "$T/strip.png" "$T/strip_avx2.png" && ok "  ... the same PNG bytes (grid and strip)" || bad "  ... the same PNG bytes (grid and strip)"
# --idx: the samples as an IDX3 ubyte file like MNIST's (header 0 0 8 3, count, 28, 28; pixels 0/255)
expect 0 "sample --idx" -- "$BFN" sample --model "$T/run.bfn" --steps 10 --count 5 --seed 3 --out "$T/s3.png" --idx "$T/s.idx"
hdr=$(od -An -tu1 -N16 "$T/s.idx" 2>/dev/null | tr -s ' ' | sed 's/^ //; s/ $//')
[ "$hdr" = "0 0 8 3 0 0 0 5 0 0 0 28 0 0 0 28" ] && ok "IDX header: ubyte, 3 dims, 5 x 28 x 28" || bad "IDX header: ubyte, 3 dims, 5 x 28 x 28 (got '$hdr')"
[ "$(stat -c %s "$T/s.idx" 2>/dev/null)" = $((16 + 5 * 784)) ] && ok "IDX size is 16 + 5*784 bytes" || bad "IDX size is 16 + 5*784 bytes (got $(stat -c %s "$T/s.idx" 2>/dev/null))"
vals=$(tail -c +17 "$T/s.idx" | od -An -v -tu1 | tr -s ' ' '\n' | grep -v '^$' | sort -un | tr '\n' ' ')
case "$vals" in "0 " | "255 " | "0 255 ") ok "IDX pixels are only 0/255 ($vals)" ;; *) bad "IDX pixels are only 0/255 (got $vals)" ;; esac
ls "$T"/*.tmp-* >/dev/null 2>&1 && bad "no temporary file after --idx" || ok "no temporary file after --idx"
expect 1 "unwritable --idx" -- "$BFN" sample --model "$T/run.bfn" --count 1 --steps 2 --out "$T/s4.png" --idx "$T/no/dir/x.idx"
grep -q "cannot write $T/no/dir/x.idx" "$T/err" && [ ! -e "$T/s4.png" ] && ok "  ... found before sampling (no grid written)" || bad "  ... found before sampling (no grid written): $(cat "$T/err")"
expect 1 "a directory as --strip" -- "$BFN" sample --model "$T/run.bfn" --count 1 --steps 2 --out "$T/s4.png" --strip "$T"
grep -q "it is a directory" "$T/err" && ok "  ... says so" || bad "  ... says so: $(cat "$T/err")"
# --guide: autoguidance by a weaker model of the same shape (here another tiny run)
expect 0 "a tiny guide model" -- "$BFN" train --data-dir "$D" --ckpt "$T/guide.ckpt" --out "$T/guide.bfn" --steps 2 --seed 5 --val-every 0 --quiet "${TINY[@]}"
expect 0 "sample --guide, w = 1" -- "$BFN" sample --model "$T/run.bfn" --steps 10 --count 4 --seed 3 --out "$T/g1.png" --guide "$T/guide.bfn" --guidance 1
cmp -s "$T/s2.png" "$T/g1.png" && ok "  ... w = 1 gives the unguided PNG bytes" || bad "  ... w = 1 gives the unguided PNG bytes"
expect 0 "sample --guide (default w = 2)" -- "$BFN" sample --model "$T/run.bfn" --steps 10 --count 4 --seed 3 --out "$T/g2.png" --idx "$T/g2.idx" --guide "$T/guide.bfn"
grep -q "guided away from $T/guide.bfn with w = 2" "$T/out" && ok "  ... says it is guided, w = 2" || bad "  ... says it is guided, w = 2: $(cat "$T/out")"
cmp -s "$T/s2.png" "$T/g2.png" && bad "  ... and the samples change" || ok "  ... and the samples change"
expect 0 "sample --guide again" -- "$BFN" sample --model "$T/run.bfn" --steps 10 --count 4 --seed 3 --out "$T/g3.png" --guide "$T/guide.bfn" --guidance 2
cmp -s "$T/g2.png" "$T/g3.png" && ok "  ... the same PNG bytes" || bad "  ... the same PNG bytes"
expect 2 "--guidance without --guide" -- "$BFN" sample --model "$T/run.bfn" --count 1 --steps 2 --out "$T/g4.png" --guidance 2
expect 2 "--guidance above the maximum" -- "$BFN" sample --model "$T/run.bfn" --count 1 --steps 2 --out "$T/g4.png" --guide "$T/guide.bfn" --guidance 11
expect 1 "a guide of another shape (64x64)" -- "$BFN" sample --model "$T/run.bfn" --count 1 --steps 2 --out "$T/g4.png" --guide "$T/td.bfn"
grep -q "the guide is a K = 2 64x64 network" "$T/err" && [ ! -e "$T/g4.png" ] && ok "  ... says so, writes nothing" || bad "  ... says so, writes nothing: $(cat "$T/err")"
expect 1 "a missing guide" -- "$BFN" sample --model "$T/run.bfn" --count 1 --steps 2 --out "$T/g4.png" --guide "$T/nope.bfn"
expect 0 "eval discrete" -- "$BFN" eval --model "$T/run.bfn" --data-dir "$D" --steps 10 --limit 20 --repeats 2
grep -q "total" "$T/out" && ok "eval prints the total" || bad "eval prints the total"
cp "$T/out" "$T/eval1"
expect 0 "eval again" -- "$BFN" eval --model "$T/run.bfn" --data-dir "$D" --steps 10 --limit 20 --repeats 2
diff <(sed 's/, [0-9.]* s$//' "$T/eval1") <(sed 's/, [0-9.]* s$//' "$T/out") >/dev/null && ok "eval reproducible" || bad "eval reproducible"
expect 0 "eval with the AVX2 kernels" -- env BFN_ISA=avx2 "$BFN" eval --model "$T/run.bfn" --data-dir "$D" --steps 10 --limit 20 --repeats 2
diff <(sed 's/, [0-9.]* s$//' "$T/eval1") <(sed 's/, [0-9.]* s$//' "$T/out") >/dev/null && ok "  ... the same numbers" || bad "  ... the same numbers: $(diff "$T/eval1" "$T/out" | head -4 | tr '\n' ' ')"
expect 0 "eval continuous" -- "$BFN" eval --model "$T/run.bfn" --data-dir "$D" --continuous --limit 10
cp "$T/out" "$T/eval_inf"
# a list of step counts: one block per row, each the numbers of its own run
expect 0 "eval --steps 10,inf" -- "$BFN" eval --model "$T/run.bfn" --data-dir "$D" --steps 3,10,inf --limit 20 --repeats 2
l10=$(grep '^L^10 ' "$T/eval1"); lrow=$(grep '^L^10 ' "$T/out")
[ -n "$l10" ] && [ "$l10" = "$lrow" ] && ok "row n = 10 equals the run of n = 10 ($lrow)" || bad "row n = 10 equals the run of n = 10 ('$lrow' vs '$l10')"
[ "$(grep -c '^total' "$T/out")" = 3 ] && grep -q '^L_inf' "$T/out" && grep -q '^L^3 ' "$T/out" && ok "three rows: L^3, L^10, L_inf" || bad "three rows: L^3, L^10, L_inf"
expect 2 "eval --steps 10,0" -- "$BFN" eval --model "$T/run.bfn" --data-dir "$D" --steps 10,0
grep -q "comma-separated" "$T/err" && ok "bad step list explained" || bad "bad step list explained"
expect 2 "eval --steps 10,x" -- "$BFN" eval --model "$T/run.bfn" --data-dir "$D" --steps 10,x
for l in "10,10" "inf,3,inf" "+5" " 5"; do
  expect 2 "eval --steps '$l' (a repeated or unsigned-looking entry)" -- "$BFN" eval --model "$T/run.bfn" --data-dir "$D" --steps "$l" --limit 2
done
expect 2 "eval --steps 3,inf --continuous (the same row twice)" -- "$BFN" eval --model "$T/run.bfn" --data-dir "$D" --steps 3,inf --continuous --limit 2
# Ctrl-C stops an evaluation with a message and exit 130
"$BFN" eval --model "$T/run.bfn" --data-dir "$D" --steps 10 --repeats 100000 --limit 40 --threads 1 >/dev/null 2>"$T/ev_int.err" &
pid=$!; sleep 1; kill -INT $pid
for _ in $(seq 300); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
kill -KILL $pid 2>/dev/null # a build that ignores Ctrl-C would run on
wait $pid; code=$?
[ "$code" = 130 ] && grep -q "cancelled" "$T/ev_int.err" && ok "Ctrl-C cancels an evaluation (exit 130, says so)" || bad "Ctrl-C cancels an evaluation: exit $code, $(cat "$T/ev_int.err")"
# sample: two outputs on one file, and a grid too large, are refused before any sampling
expect 2 "sample --idx naming the --out file" -- "$BFN" sample --model "$T/run.bfn" --count 2 --steps 2 --out "$T/same.png" --idx "$T/same.png"
[ ! -e "$T/same.png" ] && ok "  ... writes nothing" || bad "  ... writes nothing"
expect 2 "sample of a grid image over 2^31 bytes (64x64 images)" -- timeout 60 "$BFN" sample --model "$T/td.bfn" --count 10000 --steps 100000 --scale 16 --out "$T/huge.png"
grep -q "too large" "$T/err" && [ ! -e "$T/huge.png" ] && ok "  ... says so before sampling" || bad "  ... says so before sampling: $(cat "$T/err")"
expect 0 "sample --cols above --count" -- "$BFN" sample --model "$T/run.bfn" --count 2 --cols 1000 --steps 2 --scale 1 --out "$T/wide.png"
wpng=$(od -An -tu1 -j16 -N8 "$T/wide.png" | awk '{print $1*16777216+$2*65536+$3*256+$4, $5*16777216+$6*65536+$7*256+$8}')
[ "$wpng" = "62 32" ] && ok "  ... makes a grid of 2 columns (62 x 32)" || bad "  ... makes a grid of 2 columns (62 x 32): $wpng"
for v in " -1" "+3" " 7"; do
  expect 2 "sample --seed '$v' (only digits)" -- "$BFN" sample --model "$T/run.bfn" --count 1 --steps 2 --seed "$v" --out "$T/seed.png"
done
expect 0 "data preview" -- "$BFN" data preview --data-dir "$D" --count 9 --out "$T/p.png" --binarize
expect 0 "help" -- "$BFN" --help
for c in train sample eval info data; do expect 0 "$c --help" -- "$BFN" $c --help; done

# bad input: one clear line, non-zero exit, no crash
expect 2 "unknown command" -- "$BFN" frobnicate
expect 2 "unknown option" -- "$BFN" sample --model "$T/run.bfn" --bogus 1
expect 2 "BFN_ISA naming no kernel set" -- env BFN_ISA=avx "$BFN" info --model "$T/run.bfn"
grep -q "avx512, avx2 or none" "$T/err" && ok "  ... says which values it takes" || bad "  ... says which values it takes: $(cat "$T/err")"
# the default model and data are found from any working directory: under the
# directory above the executable's (a build directory in the repository, or a
# copy beside models/ and data/), else under the source tree
mkdir -p "$T/inst/bin" "$T/inst/models" "$T/inst/data/mnist" "$T/lone/bin" "$T/elsewhere"
cp "$BFN" "$T/inst/bin/bfn"; cp "$BFN" "$T/lone/bin/bfn"
cp "$T/run.bfn" "$T/inst/models/mnist.bfn"; cp "$D"/*-ubyte "$T/inst/data/mnist/"
expect 0 "info finds the default model above the executable's directory" -- bash -c "cd '$T/elsewhere' && exec '$T/inst/bin/bfn' info"
grep -q "^file: *$T/inst/models/mnist.bfn" "$T/out" && ok "  ... and names it" || bad "  ... and names it: $(head -1 "$T/out")"
expect 0 "eval finds the default model and data" -- bash -c "cd '$T/elsewhere' && exec '$T/inst/bin/bfn' eval --limit 4 --steps 3"
expect 0 "sample finds the default model, writes where it runs" -- bash -c "cd '$T/elsewhere' && exec '$T/inst/bin/bfn' sample --count 1 --steps 2 --out s.png"
[ -s "$T/elsewhere/s.png" ] && ok "  ... the PNG is in the working directory" || bad "  ... the PNG is in the working directory"
if [ -f "$SRC/models/mnist.bfn" ]; then
  expect 0 "a lone executable falls back to the source tree's model" -- bash -c "cd '$T/elsewhere' && exec '$T/lone/bin/bfn' info"
  grep -q "^file: *$SRC/models/mnist.bfn" "$T/out" && ok "  ... and names it" || bad "  ... and names it: $(head -1 "$T/out")"
fi
mkdir -p "$T/elsewhere/models"; head -c 50 "$T/run.bfn" > "$T/elsewhere/models/mnist.bfn"
expect 1 "models/mnist.bfn under the working directory comes first" -- bash -c "cd '$T/elsewhere' && exec '$T/inst/bin/bfn' sample --count 1 --steps 2 --out s2.png"

expect 2 "bad number" -- "$BFN" sample --model "$T/run.bfn" --steps ten
expect 2 "out of range" -- "$BFN" sample --model "$T/run.bfn" --steps 0
expect 1 "missing model" -- "$BFN" sample --model "$T/nope.bfn"
grep -q "nope.bfn" "$T/err" && ok "error names the missing file" || bad "error names the missing file"
head -c 100 "$T/run.bfn" > "$T/trunc.bfn"
expect 1 "truncated model" -- "$BFN" info --model "$T/trunc.bfn"
cp "$T/run.bfn" "$T/corrupt.bfn"; printf '\xff\xff\xff\xff' | dd of="$T/corrupt.bfn" bs=1 seek=300 conv=notrunc 2>/dev/null
expect 1 "corrupt model" -- "$BFN" sample --model "$T/corrupt.bfn" --count 1
expect 1 "missing data" -- "$BFN" eval --model "$T/run.bfn" --data-dir "$T/none"
printf 'garbage' > "$D/t10k-images-idx3-ubyte"
expect 1 "malformed IDX" -- "$BFN" eval --model "$T/run.bfn" --data-dir "$D"
expect 1 "unwritable output" -- "$BFN" sample --model "$T/run.bfn" --count 1 --steps 2 --out "$T/no/dir/x.png"

echo "$passes passed, $fails failed"
[ "$fails" = 0 ]
