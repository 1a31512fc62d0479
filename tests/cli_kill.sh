#!/usr/bin/env bash
# Training survives SIGKILL. A tiny model is trained on a synthetic
# MNIST-format data set with a checkpoint every K steps, and `bfn train` is
# killed with SIGKILL at random moments (during start-up, a step or a save),
# then resumed with --resume, again and again. After every kill:
#   - the checkpoint and the model file, when present, load (`bfn info`);
#   - the checkpoint's step never goes backwards, and at most one checkpoint
#     interval of the steps the log shows as done is lost; the model file's
#     step never goes backwards and never passes the checkpoint's;
#   - no file is left under any other name than the checkpoint, the model,
#     the log and, from a kill during a save (or while a resume trims the
#     log), "<file>.tmp-<pid>" of a killed (dead) process; the next good save
#     (or trim) removes those.
# Finally the interrupted run, finished, must equal an uninterrupted run of
# the same length byte for byte (model file and checkpoint: weights, EMA,
# Adam moments, rng, step, images seen), its log must hold each step once
# with the uninterrupted run's numbers, and a two-digit run with a
# non-default seed must resume exactly without repeating --data or --seed.
# Also a full disk (a real 64 KiB-ish tmpfs, where mounting one is allowed):
# the failed save exits 1, keeps the previous checkpoint loadable and leaves
# no temporary file.
#   cli_kill.sh <path to bfn> <source dir> [kills (20)] [random seed] [ckpt-every (2)]
# scripts/kill_test.sh runs it with 100 kills. Exit 0 when every check passed.
set -u
BFN=${1:?bfn executable}
KILLS=${3:-20}
SEED=${4:-$(( $(date +%s) % 100000 ))}
K=${5:-2}
RANDOM=$SEED
# Larger intervals would let stdio flush a partial log row on its own, which
# the log-based loss check cannot read.
[[ $K =~ ^[0-9]+$ ]] && [ "$K" -ge 1 ] && [ "$K" -le 10 ] || { echo "cli_kill: ckpt-every must be 1..10" >&2; exit 2; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0; passes=0
ok()  { passes=$((passes+1)); }
bad() { fails=$((fails+1)); echo "FAIL $1"; }
check() { if eval "$1"; then ok; else bad "$2"; fi; }
echo "cli_kill: $KILLS kills, checkpoint every $K steps, random seed $SEED (rerun: $0 $1 ${2:-.} $KILLS $SEED $K)"

be32() { printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1>>24&255)) $(($1>>16&255)) $(($1>>8&255)) $(($1&255)))"; }
mk_images() { { printf '\x00\x00\x08\x03'; be32 "$2"; be32 28; be32 28; head -c $(($2*784)) /dev/urandom; } > "$1"; }
mk_labels() {
  local one; one=$(printf '\\x%02x' 0 1 2 3 4 5 6 7 8 9)
  { printf '\x00\x00\x08\x01'; be32 "$2"; for ((i=0; i<$2; i+=10)); do printf "$one"; done; } > "$1"
}
D="$T/data"; mkdir -p "$D"
mk_images "$D/train-images-idx3-ubyte" 200; mk_labels "$D/train-labels-idx1-ubyte" 200

# Every trial makes at most about 3K+4 steps of progress before its kill, so
# N leaves room for all kills; dropout and validation stay on, so their
# random draws are part of what must resume exactly.
N=$(( 2 * KILLS * (3*K + 6) + 20 ))
TINY=(--base-ch 4 --mult 1,1 --n-res 0 --heads 1 --temb 8 --groups 2 --batch 4 --attn 0
      --dropout 0.1 --val-every 7 --val-batches 1 --threads 1 --quiet --data-dir "$D")
RUN=(--steps "$N" --ckpt-every "$K")

# Polling uses shell builtins only, so a loaded machine does not delay the kill
# by process start-ups (bash >= 5 for EPOCHREALTIME).
now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo $(( 10#$t / 1000 )); }
step_of() { "$BFN" info --model "$1" 2>/dev/null | awk '/^step:/ {print $2}'; }
# Last step the log shows as done (rows are flushed before each save), into
# LOG_STEP. A run only appends to the log, so it is read incrementally from
# one open descriptor: a poll costs the new rows, not the whole file, and
# keeps up with fast steps on a loaded machine. A resume that drops rows past
# its checkpoint renames a new log over the old one: then it is read again
# from the start. Call it directly, not in $( ): a subshell would lose what
# it read.
LOG_STEP=0 log_open=0 log_part=""
log_step() {
  local line f
  if [ $log_open = 1 ] && ! [ "$T/run.ckpt.csv" -ef /dev/fd/3 ]; then
    exec 3<&-; log_open=0; LOG_STEP=0; log_part=""
  fi
  if [ $log_open = 0 ]; then
    [ -f "$T/run.ckpt.csv" ] || return 0
    exec 3< "$T/run.ckpt.csv"; log_open=1
  fi
  while IFS= read -r line <&3; do
    line=$log_part$line; log_part=""
    f=${line%%,*}
    [[ $f =~ ^[0-9]+$ ]] && LOG_STEP=$f
  done
  log_part+=$line   # a row not yet complete
}

# ---- the reference: one uninterrupted run ----
t0=$(now_ms)
"$BFN" train "${TINY[@]}" "${RUN[@]}" --ckpt "$T/ref.ckpt" --out "$T/ref.bfn" 2>"$T/err.txt"
code=$?
t_ref=$(( $(now_ms) - t0 ))
check '[ $code = 0 ]' "uninterrupted run exits 0 (got $code: $(head -3 "$T/err.txt"))"
ms_per_step=$(( t_ref / N + 1 ))
echo "cli_kill: reference run: $N steps in ${t_ref} ms"

# ---- the interrupted run ----
kills=0 prev=0 prev_model=0 lag=0 max_lost=0 stale=0 killed_pids=" "
for ((trial = 1; kills < KILLS; trial++)); do
  flag=(); [ -f "$T/run.ckpt" ] && flag=(--resume)
  log_step; start=$LOG_STEP
  "$BFN" train "${TINY[@]}" "${RUN[@]}" --ckpt "$T/run.ckpt" --out "$T/run.bfn" "${flag[@]}" 2>"$T/err.txt" &
  pid=$!
  # A random moment: after 0..3K more steps show in the log (0: during
  # start-up), then 0..2 step times more, so kills land in steps and saves.
  want=$(( start + RANDOM % (3*K + 1) ))
  deadline=$(( $(now_ms) + 60000 ))
  while kill -0 "$pid" 2>/dev/null && log_step && [ "$LOG_STEP" -lt "$want" ] && [ "$(now_ms)" -lt "$deadline" ]; do
    sleep 0.002
  done
  sleep "0.$(printf '%03d' $(( RANDOM % (2 * ms_per_step + 1) % 1000 )))"
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null; code=$?
  if [ "$code" = 0 ]; then
    bad "the run finished after only $kills kills (N = $N too small?)"; break
  fi
  if [ "$code" != 137 ]; then
    bad "trial $trial: bfn train exited $code by itself: $(head -3 "$T/err.txt")"; break
  fi
  kills=$((kills + 1)); killed_pids+="$pid "

  # the files under their own names load
  for f in run.ckpt run.bfn; do
    [ -e "$T/$f" ] && { "$BFN" info --model "$T/$f" >/dev/null 2>"$T/info.err" && ok ||
      bad "kill $kills: $f does not load: $(cat "$T/info.err")"; }
  done
  now=0; [ -e "$T/run.ckpt" ] && now=$(step_of "$T/run.ckpt")
  now=${now:-0}
  check '[ "$now" -ge "$prev" ]' "kill $kills: checkpoint step went back from $prev to $now"
  log_step; done_steps=$LOG_STEP
  lost=$(( done_steps - now )); [ $lost -gt $max_lost ] && max_lost=$lost
  check '[ $lost -le $K ]' "kill $kills: log shows step $done_steps done but the checkpoint has $now (more than $K lost)"
  # The model file is written just after the checkpoint, so it may lag it
  # (by more than K when several kills in a row land between the two saves).
  if [ -e "$T/run.bfn" ]; then
    m=$(step_of "$T/run.bfn"); m=${m:-0}
    check '[ "$m" -le "$now" ] && [ "$m" -ge "$prev_model" ]' "kill $kills: model step $m (before: $prev_model), checkpoint step $now"
    prev_model=$m
    [ "$m" -lt "$now" ] && lag=$((lag + 1))
  fi
  # nothing but the run's files, and temporaries of killed processes
  for f in "$T"/run.*; do
    [ -e "$f" ] || continue   # no files yet: killed during start-up
    b=${f##*/}
    case "$b" in
      run.ckpt|run.bfn|run.ckpt.csv) ;;
      run.ckpt.tmp-*|run.bfn.tmp-*|run.ckpt.csv.tmp-*)
        p=${b##*.tmp-}
        if [[ "$killed_pids" == *" $p "* ]] && ! kill -0 "$p" 2>/dev/null; then ok; else bad "kill $kills: temporary $b is not from a killed process"; fi ;;
      *) bad "kill $kills: unexpected file $b" ;;
    esac
  done
  prev=$now
done
stale=$(ls "$T"/run.*.tmp-* 2>/dev/null | wc -l)

# ---- finish the interrupted run and compare ----
"$BFN" train "${TINY[@]}" "${RUN[@]}" --ckpt "$T/run.ckpt" --out "$T/run.bfn" --resume 2>"$T/err.txt"
code=$?
check '[ $code = 0 ]' "final resume exits 0 (got $code: $(head -3 "$T/err.txt"))"
final=$(step_of "$T/run.ckpt")
check '[ "$final" = "$N" ]' "finished at step $N (checkpoint says ${final:-nothing})"
check 'cmp -s "$T/run.bfn" "$T/ref.bfn"' "resumed model file equals the uninterrupted one byte for byte"
check 'cmp -s "$T/run.ckpt" "$T/ref.ckpt"' "resumed checkpoint equals the uninterrupted one byte for byte"
if ! cmp -s "$T/run.bfn" "$T/ref.bfn"; then
  diff <("$BFN" info --model "$T/ref.bfn") <("$BFN" info --model "$T/run.bfn") | head -10
fi
# The log holds each step once, in order, with the numbers of the
# uninterrupted run (all but the smoothed loss, which restarts on resume, and
# the elapsed time).
cols() { cut -d, -f1,2,3,5,6,7 "$1"; }
rows=$(tail -n +2 "$T/run.ckpt.csv" | awk -F, -v n="$N" '$1 != NR || NF != 8 {bad++} END {print NR - n + 0, bad + 0}')
check '[ "$rows" = "0 0" ]' "the log holds steps 1..$N once each, in order (rows beyond $N, rows out of place: $rows)"
check 'cmp -s <(cols "$T/run.ckpt.csv") <(cols "$T/ref.ckpt.csv")' "the log equals the uninterrupted run's: $(diff <(cols "$T/ref.ckpt.csv") <(cols "$T/run.ckpt.csv") | head -4 | tr '\n' ' ')"
left=$(ls "$T"/run.*.tmp-* 2>/dev/null | tr '\n' ' ')
check '[ -z "$left" ]' "the finishing run leaves no temporary file, and clears those of killed runs ($stale were there): $left"

# ---- two-digit MNIST: the checkpoint's seed picks the images, not --seed's default ----
# 3000 images: the fixed validation split of that many holds every class,
# which two-digit MNIST needs.
mk_images "$D/train-images-idx3-ubyte" 3000; mk_labels "$D/train-labels-idx1-ubyte" 3000
TD=(--data twodigit --base-ch 4 --mult 1,1 --n-res 0 --heads 1 --temb 8 --groups 2 --batch 2
    --attn 0 --val-every 0 --threads 1 --quiet --data-dir "$D" --steps 40 --ckpt-every 1)
"$BFN" train "${TD[@]}" --seed 7 --ckpt "$T/td_ref.ckpt" --out "$T/td_ref.bfn" 2>"$T/err.txt"
code=$?
check '[ $code = 0 ]' "two-digit reference run exits 0 (got $code: $(head -3 "$T/err.txt"))"
"$BFN" train "${TD[@]}" --seed 7 --ckpt "$T/td.ckpt" --out "$T/td.bfn" 2>"$T/err.txt" &
pid=$!
deadline=$(( $(now_ms) + 60000 ))
while kill -0 "$pid" 2>/dev/null && [ ! -e "$T/td.bfn" ] && [ "$(now_ms)" -lt "$deadline" ]; do
  sleep 0.005
done
kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
td_step=$(step_of "$T/td.ckpt")
check '[ -n "$td_step" ] && [ "$td_step" -lt 40 ]' "two-digit run killed before its end (checkpoint at step ${td_step:-none})"
# resumed without --data and --seed: both come from the checkpoint
"$BFN" train "${TD[@]:2}" --resume --ckpt "$T/td.ckpt" --out "$T/td.bfn" 2>"$T/err.txt"
code=$?
check '[ $code = 0 ]' "two-digit resume without --data and --seed exits 0 (got $code: $(head -3 "$T/err.txt"))"
check 'cmp -s "$T/td.bfn" "$T/td_ref.bfn"' "two-digit resume (seed 7 from the checkpoint, killed at step ${td_step:-none}) equals the uninterrupted run"

# ---- a full disk: a real tmpfs too small for the next checkpoint ----
# Needs a private mount namespace (root, as in CI); skipped when not permitted.
mk_images "$D/train-images-idx3-ubyte" 200; mk_labels "$D/train-labels-idx1-ubyte" 200
FULL=("${TINY[@]}" --val-every 0 --steps 4 --ckpt-every 2)
"$BFN" train "${FULL[@]}" --ckpt "$T/full_ref.ckpt" --out "$T/full_ref.bfn" 2>"$T/err.txt"
# room for one checkpoint, its model file and the log, not for a second checkpoint
kb() { echo $(( ($(stat -c %s "$1") + 4095) / 4096 * 4 )); }
size=$(( $(kb "$T/full_ref.ckpt") + $(kb "$T/full_ref.bfn") + 12 ))
mkdir -p "$T/full"
unshare -m --propagation private bash -c '
  M=$1 BFN=$2 OUT=$3; shift 3
  mount -t tmpfs -o size='"$size"'k tmpfs "$M" 2>/dev/null || exit 77
  "$BFN" train "$@" --ckpt "$M/r.ckpt" --out "$M/r.bfn" 2>"$OUT/full.err"; echo $? > "$OUT/full.code"
  "$BFN" info --model "$M/r.ckpt" > "$OUT/full.info" 2>&1; echo $? >> "$OUT/full.code"
  "$BFN" info --model "$M/r.bfn" > /dev/null 2>&1; echo $? >> "$OUT/full.code"
  ls "$M" > "$OUT/full.ls"
  cp "$M/r.ckpt" "$OUT/full.ckpt"
' _ "$T/full" "$BFN" "$T" "${FULL[@]}" 2>/dev/null
code=$?
if [ $code = 77 ] || [ ! -s "$T/full.code" ]; then
  echo "cli_kill: skipped the full-disk test (cannot mount a tmpfs in a private namespace here)"
else
  codes=$(tr '\n' ' ' < "$T/full.code")
  check '[ "$codes" = "1 0 0 " ]' "full disk: train exits 1, checkpoint and model still load (exit codes: $codes; $(head -2 "$T/full.err"))"
  check 'grep -q "step 2) is intact" "$T/full.err"' "full disk: the error says the step-2 checkpoint is intact: $(head -3 "$T/full.err")"
  check 'grep -q "^step: *2$" "$T/full.info"' "full disk: the kept checkpoint is the one of step 2"
  check '! grep -q "tmp-" "$T/full.ls"' "full disk: no temporary file left: $(tr '\n' ' ' < "$T/full.ls")"
  # the kept checkpoint, moved to a disk with room, finishes the run exactly
  "$BFN" train "${FULL[@]}" --resume --ckpt "$T/full.ckpt" --out "$T/full.bfn" 2>"$T/err.txt"
  code=$?
  check '[ $code = 0 ] && cmp -s "$T/full.ckpt" "$T/full_ref.ckpt"' "full disk: resuming the kept checkpoint elsewhere gives the uninterrupted result (exit $code)"
  echo "cli_kill: full disk ($size KiB tmpfs): $(grep -m1 "bfn train:" "$T/full.err")"
fi

echo "cli_kill: $kills kills; checkpoint steps never went back; at most $max_lost steps redone after a kill (interval $K); $stale stale temporary files from kills during a save (cleared by the next save); model file behind the checkpoint after $lag kills"
echo "$passes passed, $fails failed"
[ "$fails" = 0 ]
