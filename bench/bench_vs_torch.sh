#!/usr/bin/env bash
# Side-by-side speed of the C engine and its PyTorch twin on the same model,
# batch and thread count: build/bench_engine and tools/twin/bench.py are run
# alternately (C, torch, C, torch, ...) so a change in machine load hits both
# alike, and each one's peak RSS is taken by /usr/bin/time. Prints the
# conditions (CPU, load, busiest other processes), every repetition, and a
# table of medians with the C/PyTorch ratios.
#
# usage: bench/bench_vs_torch.sh [--reps N] [--seconds S] [--threads T] [--batch B]
#                                [--build DIR] [--python PY] [-- model flags]
#   defaults: 3 repetitions, 5 s per measurement, 2 threads, batch 64,
#   build dir "build", /usr/bin/python3; model flags (--base-ch C, --n-res N,
#   --attn 0|1) go to both programs (default: the engine's default 28x28 model).
# Environment: RAW_DIR=dir keeps every raw output there. OMP_WAIT_POLICY
# (default PASSIVE) is passed to PyTorch: with libgomp's default spinning,
# 2 OpenMP threads on a machine with other busy processes lose 10-25x at
# batch 1 (threads spin while the one they wait for is descheduled); the
# engine's threads do not read it.
set -euo pipefail

reps=3 seconds=5 threads=2 batch=64 build=build py=/usr/bin/python3
omp_wait=${OMP_WAIT_POLICY:-PASSIVE}
model=()
while [ $# -gt 0 ]; do
    case "$1" in
        --reps) reps=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --batch) batch=$2; shift 2 ;;
        --build) build=$2; shift 2 ;;
        --python) py=$2; shift 2 ;;
        --) shift; model=("$@"); break ;;
        -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench_vs_torch: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

here=$(cd "$(dirname "$0")/.." && pwd)
engine="$build/bench_engine"
twin="$here/tools/twin/bench.py"
[ -x "$engine" ] || { echo "bench_vs_torch: $engine not built (cmake --build $build)" >&2; exit 1; }
"$py" -c 'import torch' 2>/dev/null || {
    echo "bench_vs_torch: $py cannot import torch (apt-get install python3-torch)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench_vs_torch: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }

raw=${RAW_DIR:-$(mktemp -d)}
mkdir -p "$raw"
[ -n "${RAW_DIR:-}" ] || trap 'rm -rf "$raw"' EXIT

conditions() {
    echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "busiest processes (%CPU, nice, command):"
    ps -eo pcpu=,ni=,comm= --sort=-pcpu | head -4 | sed 's/^/    /'
}

echo "== bench_vs_torch $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) online cores"
echo "torch: $("$py" -c 'import torch; print(torch.__version__)'), engine: $engine"
echo "threads $threads, batch $batch, $seconds s per measurement, $reps repetitions, model: ${model[*]:-default}"
echo "PyTorch with OMP_WAIT_POLICY=$omp_wait"
conditions

# run <c|torch> <rep>: one measurement into $raw/<which>.<rep>.{out,rss}
run() {
    local which=$1 rep=$2 out="$raw/$1.$2"
    if [ "$which" = c ]; then
        /usr/bin/time -f '%M' -o "$out.rss" "$engine" --batch "$batch" --seconds "$seconds" \
            --threads "$threads" "${model[@]}" > "$out.out"
    else
        OMP_NUM_THREADS=$threads OMP_WAIT_POLICY=$omp_wait \
            /usr/bin/time -f '%M' -o "$out.rss" "$py" "$twin" \
            --batch "$batch" --seconds "$seconds" --threads "$threads" "${model[@]}" > "$out.out"
    fi
}

# field <file> <regex>: the number before "images/s" on the first matching line
ips() { sed -n "s/^$2.* \([0-9.]*\) images\/s.*/\1/p" "$1" | head -1; }

for r in $(seq 1 "$reps"); do
    for which in c torch; do
        run "$which" "$r"
        printf '%-6s rep %d: train %8s  fwd1 %8s  fwd16 %8s  fwd64 %8s img/s  rss %6d MiB\n' \
            "$which" "$r" "$(ips "$raw/$which.$r.out" 'train: batch')" \
            "$(ips "$raw/$which.$r.out" 'forward: batch  1')" \
            "$(ips "$raw/$which.$r.out" 'forward: batch 16')" \
            "$(ips "$raw/$which.$r.out" 'forward: batch 64')" \
            $(( $(cat "$raw/$which.$r.rss") / 1024 ))
    done
done
conditions
sed -n 's/^model: /model: /p' "$raw/c.1.out"

# "median (min-max)" of the values of one metric over the repetitions
summary() { sort -g | awk '{v[NR]=$1} END {
    if (NR == 0) { print "-"; exit }
    m = NR % 2 ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2
    if (NR == 1) print m; else printf "%g (%g-%g)\n", m, v[1], v[NR] }'; }
values() { # values <which> <regex|rss>
    for r in $(seq 1 "$reps"); do
        if [ "$2" = rss ]; then echo $(( $(cat "$raw/$1.$r.rss") / 1024 )); else ips "$raw/$1.$r.out" "$2"; fi
    done
}

echo
printf '| %-26s | %20s | %20s | %9s |\n' "median (min-max) of $reps" "C engine" "PyTorch twin" "C/PyTorch"
printf '|%s|%s|%s|%s|\n' "----------------------------" "----------------------" "----------------------" "-----------"
for row in "train images/s (batch $batch)|train: batch" "forward images/s, batch 1|forward: batch  1" \
           "forward images/s, batch 16|forward: batch 16" "forward images/s, batch 64|forward: batch 64" \
           "peak RSS (MiB)|rss"; do
    name=${row%%|*} key=${row#*|}
    c=$(values c "$key" | summary) t=$(values torch "$key" | summary)
    ratio=$(awk -v a="${c%% *}" -v b="${t%% *}" \
        'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }')
    printf '| %-26s | %20s | %20s | %9s |\n' "$name" "$c" "$t" "$ratio"
done
