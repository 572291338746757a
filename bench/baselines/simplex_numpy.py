#!/usr/bin/python3
"""Baseline for bench: THEORY.md 2.2 and 2.6 evaluated literally with NumPy over a
(rho, gamma) grid, written as CSV to stdout, as a user's script would do it.
usage: simplex_numpy.py N RHO_LO RHO_HI RHO_K GAMMA_LO GAMMA_HI GAMMA_K"""
import sys

import numpy as np

n, rlo, rhi, rk, glo, ghi, gk = sys.argv[1:8]
n = float(n)
d = n
rho, gamma = np.meshgrid(np.linspace(float(rlo), float(rhi), int(rk)),
                         np.linspace(float(glo), float(ghi), int(gk)), indexing="ij")
om = 1 - rho
beta = gamma * np.log(n)
with np.errstate(over="ignore"):
    E = np.exp(beta * om)
a = E / (E + n - 1)
b = 1 / (E + n - 1)
s1 = 1 + (n - 1) * rho
c = a - b
qo = c * c + 2 * c * b * s1 + b * b * n * s1
rho_out = (c * c * rho + 2 * c * b * s1 + b * b * n * s1) / qo
lam = c * c / qo
Q2 = a * a + (n - 1) * b * b
Q3 = a ** 3 + (n - 1) * b ** 3
T1 = om * (1 - Q2) - om * om * a * (1 - a)
T2 = om * om * (Q2 - 2 * Q3 + Q2 * Q2) - om ** 3 * (a * a * (1 - a) ** 2 + (n - 1) * a * a * b * b)
Jd = a * a * (d - 1) + 2 * a * beta * T1 + beta * beta * T2
uw = -(a - b) * (1 - rho * rho) - b * s1 * om
uu = 1 - 2 * ((a - b) * rho + b * s1) + (a - b) ** 2 + 2 * (a - b) * b * s1 + b * b * n * s1
Jo = b * b * ((d - 1) + 2 * beta * uw + beta * beta * uu * (1 - rho * rho))
eta = (Jd + (n - 1) * Jo) / d
out = np.column_stack([rho.ravel(), gamma.ravel(), a.ravel(), rho_out.ravel(), lam.ravel(), eta.ravel()])
sys.stdout.write("rho,gamma,a_self,rho_out,lambda,eta\n")
np.savetxt(sys.stdout, out, delimiter=",", fmt="%.17g")
