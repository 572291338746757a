#!/usr/bin/python3
"""Baseline for bench: one trial of the single-query model (THEORY.md 3.1) with NumPy, keys
streamed in chunks with an online log-sum-exp, the same statistics as `attnscale query`
(w1, sum w^2, entropy, <y,q>, one tangential coordinate), d = 3 (B uniform, u = cos(pi V)).
usage: query_numpy.py N BETA [CHUNK]   prints keys/s on stderr and the statistics on stdout"""
import sys
import time

import numpy as np

n, beta = int(float(sys.argv[1])), float(sys.argv[2])
chunk = int(float(sys.argv[3])) if len(sys.argv) > 3 else 1 << 22
rng = np.random.default_rng(1)
t0 = time.perf_counter()
m = np.inf  # running min of B
z = ex = e2 = eb = et = 0.0
done = 0
while done < n:
    k = min(chunk, n - done)
    b = rng.random(k)
    u = np.cos(np.pi * rng.random(k))
    bmin = b.min()
    if bmin < m:  # rescale the running sums to the new minimum
        f = np.exp(-2 * beta * (m - bmin)) if np.isfinite(m) else 0.0
        z, ex, eb, et = z * f, (ex + 2 * beta * (m - bmin) * z) * f if np.isfinite(m) else 0.0, eb * f, et * f
        e2 *= f * f
        m = bmin
    x = 2 * beta * (b - m)
    e = np.exp(-x)
    z += e.sum()
    ex += (e * x).sum()
    e2 += (e * e).sum()
    eb += (e * b).sum()
    et += (e * 2 * np.sqrt(b * (1 - b)) * u).sum()
    done += k
dt = time.perf_counter() - t0
print(f"w1={1 / z!r} sum_w2={e2 / z / z!r} entropy={np.log(z) + ex / z!r} "
      f"cos_yq={1 - 2 * eb / z!r} perp={et / z!r}")
print(f"numpy: {n / dt:.4g} keys/s", file=sys.stderr)
