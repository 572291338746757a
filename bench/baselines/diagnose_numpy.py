#!/usr/bin/python3
"""Baseline for bench: the per-row gap statistics of THEORY.md 4.1 with NumPy, as a user's
script would compute them: gaps sorted per row, beta_hat (k0 = 2 and 10), entropy and max
weight at beta = 1, for causal rows of a (rows, n) .npy of logits; CSV to stdout. (No
beta_half: attnscale's root-finding has no one-line NumPy form; the baseline does less work.)
usage: diagnose_numpy.py LOGITS.npy"""
import sys

import numpy as np

s = np.load(sys.argv[1], mmap_mode="r")
out = ["row,n,beta_hat,beta_hat_k10,entropy,w1"]
for i in range(s.shape[0]):
    row = np.asarray(s[i, : i + 1], dtype=np.float64)
    g = np.sort(row.max() - row)
    k = np.arange(1, g.size + 1, dtype=np.float64)
    with np.errstate(divide="ignore"):
        v = np.log(k[1:]) / g[1:]
    bh = v.max() if v.size else np.nan
    bh10 = v[8:].max() if v.size > 8 else np.nan
    e = np.exp(-g)
    z = e.sum()
    h = np.log(z) + (e * g).sum() / z
    out.append(f"{i},{g.size},{bh!r},{bh10!r},{h!r},{1 / z!r}")
sys.stdout.write("\n".join(out) + "\n")
