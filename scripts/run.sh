#!/bin/sh
# The main job of `make run`: the exact simplex layer (THEORY.md 2.2-2.6) over the grids of
# paper 1's figures, drawn as PNG with the CSV of every record beside each figure.
#   usage: scripts/run.sh BINARY OUTDIR
set -eu
bin=$1
out=$2
mkdir -p "$out"

# run NAME METRIC ARGS...: NAME.csv with every record and NAME.png drawing METRIC.
run() {
    name=$1
    metric=$2
    shift 2
    "$bin" simplex "$@" --format csv --output "$out/$name.csv" --plot "$out/$name.png" \
        --metric "$metric"
    echo "  $out/$name.png, $out/$name.csv: $(($(wc -l < "$out/$name.csv") - 1)) records ($*)"
}

echo "attnscale: exact simplex layer, closed forms (arXiv 2510.05554; THEORY.md 2.2-2.6)"
# Figure 1/2 grid of THEORY.md 2.11 (rho x gamma at n = 1024), exact instead of Monte Carlo.
grid="--n 1024 --d 1025 --rho 0.02:0.98:49 --gamma 0:10:101"
run simplex_lambda_n1024 lambda $grid
run simplex_eta_n1024 eta $grid
# How the transition sharpens with n: the logistic width is about 1/((1 - rho) log n).
run simplex_sharpening a_self --n 1e2,1e3,1e4,1e6,1e9,1e12 --rho 0.5 --gamma 0:6:121
# A residual does not replace correct scaling: still contractive below gamma_c.
run simplex_residual rho_out --n 1024 --rho 0.5 --alpha 0,0.25,0.5,1 --gamma 0:6:61

echo "critical point gamma = 1/(1 - rho) at n = 1024, rho = 0.5 (limits: rho' -> 0.8, eta -> 0.25):"
"$bin" simplex --n 1024 --d 1025 --rho 0.5 --gamma 1,2,3 --format csv

echo "attnscale: production scaling policies (THEORY.md section 5), last row of n tokens"
# The relative policies (multipliers of the trained logit scale); log-n, ssmax and
# sqrt-2-log-n are absolute scales and sit far above them (attnscale policies --list).
"$bin" policies --policy yarn,yarn-dynamic,gpt-oss,deepseek,longrope,qwen-logn,llama4,mistral,grok2,inkling,su,critical \
    --n 1e3:1e7:200:log --format csv --output "$out/policies.csv" --plot "$out/policies.png" -q
echo "  $out/policies.png, $out/policies.csv: $(($(wc -l < "$out/policies.csv") - 1)) records"
