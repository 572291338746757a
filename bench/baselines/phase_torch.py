#!/usr/bin/python3
"""Baseline for bench: one pre-LN softmax self-attention layer on almost-simplex tokens
(x_i = sqrt(rho) z_0 + sqrt(1-rho) z_i, z ~ N(0, I_d/d)) with PyTorch, as a researcher's
script would compute it: for every (rho, gamma) point, beta = gamma log n, everything is
recomputed with full n x n tensors (normalise, G = Y Y^T, softmax, A Y, output Gram), and
  lambda = mean over i<j of (1 - <y_i',y_j'>)/(1 - <y_i,y_j>)
  eta    = ||J||_F^2/(n d), J = dX'/dX, by Hutchinson with Rademacher probes V, one probe
           at a time, J V by the analytic JVP (dY, dG = dY Y^T + Y dY^T, dA, dA Y + A dY + alpha V),
eta_se the standard error over probes. Tokens (drawn once per rho and trial, in float64 and
then cast to --dtype) and probes come from torch's generator seeded from --seed; with
--trials > 1, lambda is the mean over trials and eta, eta_se are over all trials' probes.
CSV rho,gamma,beta,lambda,eta,eta_se to stdout (nan for a metric not asked for); time to stderr.
usage: phase_torch.py [--n N] [--d D] [--rho R,..] [--gamma G,..] [--alpha A] [--probes P]
                      [--trials T] [--seed S] [--threads K] [--dtype float32|float64]
                      [--metrics lambda,eta]"""
import argparse
import math
import sys
import time

import torch

p = argparse.ArgumentParser(description="PyTorch baseline: lambda and eta of one attention layer")
p.add_argument("--n", type=int, default=2048)
p.add_argument("--d", type=int, default=512)
p.add_argument("--rho", default="0.5")
p.add_argument("--gamma", default="0.5,1,1.5,2,2.5,3,3.5,4")
p.add_argument("--alpha", type=float, default=0.0)
p.add_argument("--probes", type=int, default=16)
p.add_argument("--trials", type=int, default=1)
p.add_argument("--seed", type=int, default=1)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--dtype", choices=["float32", "float64"], default="float64")
p.add_argument("--metrics", default="lambda,eta")
args = p.parse_args()

torch.set_num_threads(args.threads)
dtype = getattr(torch, args.dtype)
n, d, alpha = args.n, args.d, args.alpha
rhos = [float(s) for s in args.rho.split(",")]
gammas = [float(s) for s in args.gamma.split(",")]
metrics = set(args.metrics.split(","))
gen = torch.Generator().manual_seed(args.seed)
upper = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)

print("rho,gamma,beta,lambda,eta,eta_se")
t0 = time.perf_counter()
for rho in rhos:
    tokens = []
    for t in range(args.trials):
        z = torch.randn(n + 1, d, dtype=torch.float64, generator=gen) / math.sqrt(d)
        tokens.append((math.sqrt(rho) * z[0] + math.sqrt(1 - rho) * z[1:]).to(dtype))
    for gamma in gammas:
        beta = gamma * math.log(n)
        lams, samples = [], []
        for X in tokens:
            r = X.norm(dim=1, keepdim=True)
            Y = X / r
            G = Y @ Y.T
            A = torch.softmax(beta * G, dim=1)
            if "lambda" in metrics:
                Xo = A @ Y + alpha * X
                Yo = Xo / Xo.norm(dim=1, keepdim=True)
                Go = Yo @ Yo.T
                lams.append(((1 - Go[upper]) / (1 - G[upper])).mean().item())
            if "eta" in metrics:
                for k in range(args.probes):
                    V = (torch.randint(0, 2, (n, d), generator=gen) * 2 - 1).to(dtype)
                    dY = (V - (Y * V).sum(dim=1, keepdim=True) * Y) / r
                    dG = dY @ Y.T + Y @ dY.T
                    da = beta * dG
                    dA = A * (da - (A * da).sum(dim=1, keepdim=True))
                    JV = dA @ Y + A @ dY + alpha * V
                    samples.append((JV * JV).sum().item() / (n * d))
        lam = sum(lams) / len(lams) if lams else math.nan
        eta = eta_se = math.nan
        if samples:
            s = torch.tensor(samples, dtype=torch.float64)
            eta = s.mean().item()
            eta_se = (s.std() / math.sqrt(len(samples))).item() if len(samples) > 1 else math.nan
        print(f"{rho!r},{gamma!r},{beta!r},{lam!r},{eta!r},{eta_se!r}", flush=True)
dt = time.perf_counter() - t0
points = len(rhos) * len(gammas)
print(f"torch {torch.__version__} {args.dtype} {args.threads} threads: {dt:.3f} s total, "
      f"{points} points, {dt / points:.4g} s/point", file=sys.stderr)
