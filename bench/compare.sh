#!/bin/sh
# Whole-process comparisons against the baselines in bench/baselines/, run by `make bench`:
# each pair is timed alternately (A B A B ...) and the median wall times and their ratio are
# printed as CSV. usage: bench/compare.sh BUILD_DIR
set -eu
build=${1:-build}
runs=5

# median of the numbers on stdin
median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

wall() { # seconds of one run of "$@", output discarded
    s=$(date +%s.%N)
    "$@" >/dev/null
    e=$(date +%s.%N)
    awk -v s="$s" -v e="$e" 'BEGIN { printf "%.4f\n", e - s }' 
}

compare() { # name, then the two commands as strings
    name=$1 a=$2 b=$3 ta="" tb=""
    for i in $(seq $runs); do
        ta="$ta $(wall sh -c "$a")"
        tb="$tb $(wall sh -c "$b")"
    done
    ma=$(echo $ta | tr ' ' '\n' | median)
    mb=$(echo $tb | tr ' ' '\n' | median)
    printf '%s,%s,%s,%s\n' "$name" "$ma" "$mb" "$(awk -v a="$ma" -v b="$mb" 'BEGIN { printf "%.3f", a / b }')"
}

echo "comparison,attnscale_wall_s,baseline_wall_s,ratio"
compare simplex_grid_49x101 \
    "$build/attnscale simplex --n 1024 --rho 0.02:0.98:49 --gamma 0:10:101 --format csv" \
    "/usr/bin/python3 bench/baselines/simplex_numpy.py 1024 0.02 0.98 49 0 10 101"
compare simplex_grid_1000x1000 \
    "$build/attnscale simplex --n 1024 --rho 0.001:0.999:1000 --gamma 0:10:1000 --format csv" \
    "/usr/bin/python3 bench/baselines/simplex_numpy.py 1024 0.001 0.999 1000 0 10 1000"

# diagnose: 4000 causal rows of Gaussian logits (8 million logits seen).
logits=$(mktemp /tmp/ats_bench_XXXXXX.npy)
trap 'rm -f "$logits"' EXIT
/usr/bin/python3 -c "import numpy as np; np.save('$logits', np.random.default_rng(3).standard_normal((4000, 4000), dtype=np.float32))"
compare diagnose_causal_4000 \
    "$build/attnscale diagnose --scores $logits --causal --format csv -q" \
    "/usr/bin/python3 bench/baselines/diagnose_numpy.py $logits"

# query: one trial of 10^8 keys at d = 3 (the NumPy script streams 4-million-key chunks).
compare query_d3_1e8 \
    "$build/attnscale query --d 3 --n 1e8 --beta 100 --trials 1 -q" \
    "/usr/bin/python3 bench/baselines/query_numpy.py 1e8 100"

# phase: lambda and Hutchinson eta (16 probes) at n = 2048, d = 512, rho = 0.5, 8 gammas,
# against the straightforward PyTorch implementation on the same threads (f32 and f64).
for prec in f32 f64; do
    dt=float32
    [ $prec = f64 ] && dt=float64
    compare phase_lambda_eta_n2048_$prec \
        "$build/attnscale phase --n 2048 --d 512 --rho 0.5 --gamma 0.5:4:8 --metric lambda,eta --precision $prec -q" \
        "/usr/bin/python3 bench/baselines/phase_torch.py --n 2048 --d 512 --rho 0.5 --gamma 0.5,1,1.5,2,2.5,3,3.5,4 --dtype $dt"
done
