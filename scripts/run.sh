#!/bin/sh
# The main job of `make run` (DESIGN.md set-up contract): every figure attnscale draws, quick
# settings, as PNG with the CSV of the plotted numbers beside each.
#   usage: scripts/run.sh BINARY OUTDIR
set -eu
bin=$1
out=$2
echo "attnscale reproduce all --quick --outdir $out"
"$bin" reproduce all --quick --outdir "$out"
echo "figures and their CSV in $out/:"
ls "$out"
