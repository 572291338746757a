#!/usr/bin/env python3
"""Paper 1, Figure 1 (arXiv 2510.05554; THEORY.md 2.11) redrawn with matplotlib from attnscale.

Heat maps of the forward angle ratio lambda over (rho, gamma), beta = gamma log n: the exact
simplex layer (closed forms, THEORY.md 2.2) and almost-simplex Monte Carlo tokens at
d = 512, 32 and 2, each with the dashed critical curve gamma = 1/(1 - rho). Expected: a sharp
transition on the curve at large d, a smeared band at d = 32, a middle phase at d = 2.

    PYTHONPATH=build/python python3 examples/paper1_lambda_map.py [--out FILE.png]
        [--n 256] [--rho-points 25] [--gamma-points 51] [--trials 1] [--seed 1]

The defaults are the quick grid of `attnscale reproduce paper1 --quick` (a few seconds on
2 cores); --n 1024 --rho-points 49 --gamma-points 101 --trials 4 is the full one.
Needs NumPy and matplotlib (Debian: python3-numpy python3-matplotlib).
"""

import argparse
import os

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import attnscale  # noqa: E402


def grid(result, rho, gamma):
    """The records' values as a (rho, gamma) matrix: gamma varies fastest in the records."""
    values = np.asarray(result["value"] if "value" in result else result["lambda"])
    return values.reshape(len(rho), len(gamma))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="out/paper1_lambda_map.png")
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--rho-points", type=int, default=25)
    ap.add_argument("--gamma-points", type=int, default=51)
    ap.add_argument("--trials", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    # The CLI's own range text, so the grid is exactly `--rho 0.02:0.98:K --gamma 0:10:K`.
    rho_text = f"0.02:0.98:{args.rho_points}"
    gamma_text = f"0:10:{args.gamma_points}"
    exact = attnscale.simplex(n=args.n, rho=rho_text, gamma=gamma_text)
    rho = np.unique(exact["rho"])
    gamma = np.unique(exact["gamma"])
    panels = [(f"exact simplex (closed form), n = {args.n}", grid(exact, rho, gamma))]
    for d in (512, 32, 2):
        mc = attnscale.phase(metric="lambda", config="almost-simplex", n=args.n, d=d,
                             rho=rho_text, gamma=gamma_text, trials=args.trials,
                             seed=args.seed)
        panels.append((f"almost-simplex, n = {args.n}, d = {d}", grid(mc, rho, gamma)))

    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8),
                             sharey=True, constrained_layout=True)
    curve_rho = np.linspace(rho[0], rho[-1], 400)
    curve_gamma = 1 / (1 - curve_rho)
    keep = curve_gamma <= gamma[-1]
    for ax, (title, z) in zip(axes, panels):
        im = ax.pcolormesh(gamma, rho, z, shading="nearest", cmap="viridis", vmin=0, vmax=1)
        ax.plot(curve_gamma[keep], curve_rho[keep], "w--", lw=1.5,
                label=r"$\gamma = 1/(1-\rho)$")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(r"$\gamma$  ($\beta = \gamma \log n$)")
    axes[0].set_ylabel(r"$\rho$")
    axes[0].legend(loc="lower right", fontsize=8)
    fig.colorbar(im, ax=axes, label=r"$\lambda = (1-\rho')/(1-\rho)$", shrink=0.9)
    fig.suptitle("Critical attention scaling: forward angle ratio (attnscale "
                 f"{attnscale.__version__})", fontsize=11)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
