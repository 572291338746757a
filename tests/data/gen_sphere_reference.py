#!/usr/bin/python3
"""
gen_sphere_reference.py: high-precision references for tests/test_sphere_theory.c (the Paper 2
theory functions of src/theory/sphere.c, THEORY.md 3.2-3.5), computed with mpmath.

Run:  /usr/bin/python3 tests/data/gen_sphere_reference.py > /tmp/ref.h
and paste the printed C tables into tests/test_sphere_theory.c (section "References").

Every value is computed at 50 significant digits (60 where THEORY.md's formulas cancel) and
checked against a second evaluation at 80 digits; a disagreement beyond 1e-30 relative aborts
the script. The values are then rounded to the nearest double (printed with 17 digits).

The formulas are THEORY.md's, taken literally (no rearrangement), so they share nothing with
the C code's log-space and continued-fraction algebra:
  - Bessel ratio I_{nu+1}(x)/I_nu(x) and log I_nu(x): mpmath.besseli;
  - M_d(b) = Gamma(d/2) (2/b)^(d/2-1) I_{d/2-1}(b), and the subcritical fields of THEORY.md 3.3;
  - c_d = Gamma(d/2)/(sqrt(pi) Gamma((d-1)/2)): mpmath.gamma;
  - Gamma(s, x): mpmath.gammainc(s, x) (upper, not regularised);
  - PPP limit (THEORY.md 3.4) for d = 3: the Ein closed forms; for d = 5 (m = 1) an independent
    reduction: the law of the top point's position R has density C R e^{-C R^2/2} (C = 8/tau'^2),
    and E[exp(-C Ein(lam) R)] over it is 1 - b sqrt(pi/(2C)) e^{b^2/(2C)} erfc(b/sqrt(2C)),
    b = C Ein(lam), so E[W_1] is a single integral (the C code integrates over R numerically).
"""
import sys

import mpmath as mp

DPS = 50
CHECK_DPS = 80


def both(f):
    """f() at DPS and at CHECK_DPS digits; abort unless they agree to 1e-30 relative."""
    with mp.workdps(DPS):
        a = f()
    with mp.workdps(CHECK_DPS):
        b = f()
    with mp.workdps(CHECK_DPS):
        if a != 0 and abs((a - b) / b) > mp.mpf("1e-30"):
            sys.exit("precision check failed: %s vs %s" % (mp.nstr(a, 40), mp.nstr(b, 40)))
    return b


def besseli(nu, x):
    """mpmath.besseli with room for the 0F1 series between its asymptotic regimes."""
    return mp.besseli(nu, x, maxterms=10 ** 6)


def c(v):
    return "%.17g" % float(v)


def ratio(nu, x):
    return besseli(nu + 1, x) / besseli(nu, x)


def logM(d, b):
    nu = mp.mpf(d) / 2 - 1
    return mp.log(mp.gamma(mp.mpf(d) / 2) * (2 / b) ** nu * besseli(nu, b))


def sub_fields(d, b):
    """THEORY.md 3.3 literally: A, bias, var_perp, var_par, n*w1, n_eff/n, H - log n."""
    d = mp.mpf(d)
    nu = d / 2 - 1
    I = besseli
    A = lambda k: I(d / 2, k) / I(nu, k)
    M = lambda k: mp.gamma(d / 2) * (2 / k) ** nu * I(nu, k)
    a1, a2 = A(b), A(2 * b)
    vperp = b ** (d / 2 - 2) * I(d / 2, 2 * b) / (2 ** (d - 1) * mp.gamma(d / 2) * I(nu, b) ** 2)
    m2m = b ** (d / 2 - 1) * I(nu, 2 * b) / (2 ** (d - 2) * mp.gamma(d / 2) * I(nu, b) ** 2)
    vpar = m2m * (1 - (d - 1) * a2 / (2 * b) - 2 * a1 * a2 + a1 ** 2)
    return [a1, b * (1 - a1), vperp, vpar, mp.exp(b) / M(b), M(b) ** 2 / M(2 * b),
            mp.log(M(b)) - b * a1]


def ein(z):
    """Ein(z) = int_0^z (1 - e^-t)/t dt."""
    if z < 1:
        return altsum(lambda k, t: t * (-z) / (k + 1), -z, lambda k, t: -t / k, 1)
    return mp.e1(z) + mp.log(z) + mp.euler


def altsum(step, t0, term, k0):
    """sum_{k >= k0} term(k, t_k) where t_{k0} = t0 and t_{k+1} = step(k, t_k), to the working
    precision (with 40 extra digits for the cancellation of alternating series)."""
    with mp.extradps(40):
        t, k, s = mp.mpf(t0), k0, mp.mpf(0)
        eps = mp.mpf(2) ** (-mp.mp.prec)
        while True:
            u = term(k, t)
            s += u
            if abs(u) <= eps * abs(s) and k > 5 and abs(t) < 1:
                break
            t = step(k, t)
            k += 1
    return +s


def ppp_d3(tp):
    th = 2 / tp
    ew1 = mp.quad(lambda l: mp.exp(-l - th * ein(l)), [0, 1 / th, 10 / th, 1, 10, 40, 80])
    # E[sum W^2] in t = log(lam): theta exp(-theta Ein(e^t)) P(2, e^t); beyond t = 5 the
    # integrand is theta e^{-theta (t + gamma)} to 1e-60, integrated exactly.
    g = lambda t: th * mp.exp(-th * ein(mp.exp(t))) * mp.gammainc(2, 0, mp.exp(t), regularized=True)
    t0 = mp.log(min(1, 1 / th)) - 45
    pts = sorted(set([t0, mp.log(min(1, 1 / th)) - 5, mp.log(min(1, 1 / th)), 0, 2, 5]))
    esw2 = mp.quad(g, pts) + mp.exp(-th * (5 + mp.euler))
    return ew1, esw2


def phi1(lam):
    """int_0^inf (1 - exp(-lam e^-s)) s ds (m = 1)."""
    if lam <= 40:
        # t_k = (-1)^(k+1) lam^k / k!
        return altsum(lambda k, t: -t * lam / (k + 1), lam, lambda k, t: t / (k * k), 1)
    # s = L + y (L = log lam): the integrand is (1 - exp(-e^-y)) (L + y), which is L + y to
    # 1e-170 below y = -6. (mpmath.quad's tolerance is absolute: keep the integrands O(1).)
    L = mp.log(lam)
    f = lambda y: -mp.expm1(-mp.exp(-y)) * (L + y)
    return (L - 6) ** 2 / 2 + mp.quad(f, [-6, 0, 6, 60]) + mp.quad(f, [60, mp.inf])


def psi1(lam):
    """int_0^inf e^{-2r} exp(-lam e^-r) r dr (m = 1)."""
    if lam <= 40:
        # t_k = (-lam)^k / k!
        return altsum(lambda k, t: -t * lam / (k + 1), 1, lambda k, t: t / ((k + 2) ** 2), 0)
    # r = L + y: e^{-2L} int e^{-2y - e^-y} (L + y) dy, negligible (< e^-390) below y = -6.
    L = mp.log(lam)
    f = lambda y: mp.exp(-2 * y - mp.exp(-y)) * (L + y)
    return mp.exp(-2 * L) * (mp.quad(f, [-6, 0, 6, 60]) + mp.quad(f, [60, mp.inf]))


def ppp_d5(tp):
    C = 8 / tp ** 2

    def J(lam):
        b = C * ein(lam)
        return 1 - b * mp.sqrt(mp.pi / (2 * C)) * mp.exp(b ** 2 / (2 * C)) * mp.erfc(b / mp.sqrt(2 * C))

    lo = min(1, 1 / C)
    ew1 = mp.quad(lambda l: mp.exp(-l - C * phi1(l)) * J(l), [0, lo / 10, lo, 1, 10, 40, 80])
    g = lambda t: C * mp.exp(2 * t - C * phi1(mp.exp(t))) * psi1(mp.exp(t))
    # Upper end: C phi1 >= C (t^2/2) > 120 beyond t_hi.
    thi = mp.sqrt(240 / C) + 1
    tl = mp.log(lo)
    pts = [tl - 45, tl - 5, tl, 0] + [thi * k / 8 for k in range(1, 9)]
    pts = sorted(set(p for p in pts if p >= tl - 45))
    esw2 = mp.quad(g, pts)
    return ew1, esw2


def main():
    out = []
    w = out.append
    w("// Generated by tests/data/gen_sphere_reference.py (mpmath %s, %d digits, checked at %d)."
      % (mp.__version__, DPS, CHECK_DPS))
    w("// I_{nu+1}(x)/I_nu(x): mpmath.besseli.")
    w("static const struct { double nu, x, r; } ratio_ref[] = {")
    for nu in ["0", "0.5", "1", "1.5", "10", "100.5", "1000", "2047"]:
        for x in ["1e-6", "1e-3", "0.5", "1", "10", "100", "1e3", "1e5", "1e8"]:
            r = both(lambda: ratio(mp.mpf(nu), mp.mpf(x)))
            w("    {%s, %s, %s}," % (nu, x, c(r)))
    w("};")
    w("// A_3(x) = coth x - 1/x.")
    w("static const struct { double x, a; } a3_ref[] = {")
    for x in ["1e-8", "1e-6", "1e-4", "0.01", "0.1", "0.3", "0.7", "1", "2.385", "10", "40", "1e3"]:
        a = both(lambda: mp.coth(mp.mpf(x)) - 1 / mp.mpf(x))
        w("    {%s, %s}," % (x, c(a)))
    w("};")
    w("// log I_nu(x).")
    w("static const struct { double nu, x, logi; } logi_ref[] = {")
    for nu, x in [("0", "1e-6"), ("0", "24"), ("0", "30"), ("0", "1e4"), ("0.5", "0.3"),
                  ("0.5", "100"), ("1", "50"), ("1.5", "2e8"), ("10", "1e5"), ("20.5", "35"),
                  ("100.5", "50"), ("100.5", "400"), ("1000", "1e3"), ("1000", "3e3"),
                  ("2047", "1e-3"), ("2047", "2e3"), ("2047", "2e4"), ("2047", "1e8"),
                  ("0.25", "40"), ("3.75", "7")]:
        v = both(lambda: mp.log(besseli(mp.mpf(nu), mp.mpf(x))))
        w("    {%s, %s, %s}," % (nu, x, c(v)))
    w("};")
    w("// log M_d(beta) - beta, M_d(beta) = Gamma(d/2) (2/beta)^(d/2-1) I_{d/2-1}(beta).")
    w("static const struct { int64_t d; double beta, logm_mb; } logm_ref[] = {")
    for d, b in [(2, "1e-6"), (2, "0.5"), (3, "10"), (3, "1e8"), (4, "2"), (4, "40"), (6, "40"),
                 (7, "1e-3"), (64, "100"), (100, "300"), (4096, "1"), (4096, "3000"),
                 (4096, "1e5"), (4096, "1e8")]:
        v = both(lambda: logM(d, mp.mpf(b)) - mp.mpf(b))
        w("    {%d, %s, %s}," % (d, b, c(v)))
    w("};")
    w("// THEORY.md 3.3 literally: A, bias, var_perp, var_par, n w1, n_eff/n, H - log n.")
    w("static const struct { int64_t d; double beta, f[7]; } sub_ref[] = {")
    for d, b in [(2, "0.5"), (3, "10"), (3, "100"), (3, "1e8"), (4, "2"), (4, "40"), (6, "40"),
                 (7, "1e-3"), (10, "1e6"), (100, "300"), (4096, "1"), (4096, "700")]:
        with mp.workdps(DPS + 10):
            f0 = sub_fields(d, mp.mpf(b))
        with mp.workdps(CHECK_DPS):
            f = sub_fields(d, mp.mpf(b))
            for u, v in zip(f0, f):
                if abs(u - v) > mp.mpf("1e-30") * abs(v):
                    sys.exit("precision check failed at d=%d beta=%s" % (d, b))
        vals = [c(v) for v in f]
        w("    {%d, %s, {%s, %s, %s,\n      %s, %s,\n      %s, %s}}," % ((d, b) + tuple(vals)))
    w("};")
    w("// c_d = Gamma(d/2)/(sqrt(pi) Gamma((d-1)/2)) at large d.")
    w("static const struct { int64_t d; double c; } cd_ref[] = {")
    for d in [7, 39, 40, 41, 42, 100, 1001, 4096, 100001]:
        v = both(lambda: mp.gamma(mp.mpf(d) / 2) / (mp.sqrt(mp.pi) * mp.gamma(mp.mpf(d - 1) / 2)))
        w("    {%d, %s}," % (d, c(v)))
    w("};")
    w("// Gamma(s, x) (upper incomplete gamma, not regularised): mpmath.gammainc.")
    w("static const struct { double s, x, g; } gup_ref[] = {")
    for s, x in [("0.5", "0"), ("0.5", "0.1"), ("0.5", "1.4"), ("0.5", "3"), ("1", "2"),
                 ("1.5", "1e-8"), ("2.5", "1"), ("2.5", "10"), ("10", "5"), ("10", "11"),
                 ("10", "15"), ("0.01", "0.5"), ("0.01", "2"), ("1e-3", "1e-3"), ("50", "40"),
                 ("50", "60"), ("100", "150"), ("3.5", "700"), ("0.3", "0.9"), ("150", "160")]:
        v = both(lambda: mp.gammainc(mp.mpf(s), mp.mpf(x)))
        w("    {%s, %s, %s}," % (s, x, c(v)))
    w("};")
    w("// PPP limit (THEORY.md 3.4) at tau': E[W_1], E[sum W_k^2]; d = 3 closed forms (mpmath.quad")
    w("// at 30 digits, checked at 40 to 1e-20), d = 5 by the erfc reduction (20 digits, checked")
    w("// at 26 to 1e-15).")
    w("static const struct { int64_t d; double tau, ew1, esw2; } ppp_ref[] = {")
    for d, fn, taus, dps, tol in [
            (3, ppp_d3, ["0.01", "0.5", "1", "2", "5", "20", "100", "1e4"], (30, 40), "1e-20"),
            (5, ppp_d5, ["0.5", "1", "5", "100"], (20, 26), "1e-15")]:
        for tp in taus:
            with mp.workdps(dps[0]):
                a = fn(mp.mpf(tp))
            with mp.workdps(dps[1]):
                b = fn(mp.mpf(tp))
                for u, v in zip(a, b):
                    if abs(u / v - 1) > mp.mpf(tol):
                        sys.exit("PPP precision check failed at d=%d tau'=%s" % (d, tp))
            w("    {%d, %s, %s, %s}," % (d, tp, c(b[0]), c(b[1])))
    w("};")
    print("\n".join(out))


if __name__ == "__main__":
    main()
