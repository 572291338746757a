/*
 * sphere_ppp.c: E[W_1] and E[sum_k W_k^2] of the critical limit of Paper 2 (THEORY.md 3.4),
 * the normalised Poisson point process, by numerical integration (ats_ppp_expect).
 *
 * The process in "r" coordinates [D]. With Gamma_k the points of a unit-rate Poisson process,
 * a = tau'/2 and p = 2/(d-1), the unnormalised weights are exp(-a Gamma_k^p) = e^{-r_k} with
 * r_k = a Gamma_k^p. The r_k form a Poisson process on (0, inf) of intensity
 *   omega(r) dr = d((r/a)^{1/p}) = C r^m dr,   m = 1/p - 1 = (d-3)/2,
 *   C = 1/(p a^{1/p}) = ((d-1)/2) (2/tau')^{(d-1)/2},
 * so tau' enters only through C. (For d = 3: m = 0, C = 2/tau' = theta of THEORY.md.)
 * Laplace functional: E exp(-lam Z) = exp(-J_0(lam)), Z = sum_k e^{-r_k},
 *   J_R(lam) = int_R^inf (1 - exp(-lam e^{R-r})) omega(r) dr.
 *
 * E[sum W_k^2] [D]: 1/Z^2 = int_0^inf lam e^{-lam Z} dlam and the Mecke formula
 * (E sum_k g(r_k, Z) = int omega(r) E g(r, Z + e^{-r}) dr) give
 *   E[sum W_k^2] = int_0^inf lam e^{-J_0(lam)} int e^{-2r} e^{-lam e^{-r}} omega(r) dr dlam
 *               = int_{-inf}^{inf} e^{-J_0(e^t)} Psi(t) dt,
 *   Psi(t) = int_0^inf exp(2(t-r) - e^{t-r}) omega(r) dr           (lam = e^t),
 * which is THEORY.md's formula (there in tau units; tau' = tau/kappa_d^{2/(d-1)}).
 *
 * E[W_1] [D]: condition on the top point r_1 = R. Gamma_1 = (R/a)^{1/p} is Exp(1); the other
 * points are the process restricted to (R, inf), so with 1/(1+S) = int_0^inf e^{-lam(1+S)} dlam,
 * S = sum_{k>=2} e^{-(r_k - R)}:
 *   E[W_1 | R] = M(R) = int_0^inf exp(-lam - J_R(lam)) dlam = int exp(t - e^t - J_R(e^t)) dt.
 * Integrating Gamma_1 = e^u (density e^{u - e^u} du, smooth for every d, unlike dGamma_1 at 0):
 *   E[W_1] = int_{-inf}^{inf} e^{u - e^u} M(a e^{p u}) du.
 * This is THEORY.md's general-d formula: its x is the radius with kappa_d x^{d-1} = Gamma_1,
 * its lambda is ours and its inner integral (over z >= x, in tau = kappa_d^{2/(d-1)} tau' units)
 * is J_R. For d = 3, J_R(lam) = theta Ein(lam) for every R and the Ein forms of THEORY.md follow;
 * they are used directly (ppp_d3), the general route serves every other d.
 *
 * Evaluating J_R(lam), L = log lam. For lam <= 1: int_0^S -expm1(-lam e^{-s}) omega(R+s) ds.
 * For lam > 1 split at s = L, where the integrand turns from ~1 to ~e^{L-s}:
 *   J_R = int_R^{R+L} omega - int_{max(0,L-7)}^{L} exp(-e^{L-s}) omega(R+s) ds
 *         + int_L^{L+Y} -expm1(-e^{L-s}) omega(R+s) ds,
 * int_R^{R+L} omega = ((R+L)/a)^{1/p} - (R/a)^{1/p} in closed form (formed as
 * ((R+L)/a)^{1/p} (1 - (R/(R+L))^{1/p}) with expm1/log1p); below L - 7 the dropped
 * integrand is < e^{-1096}. S and Y are chosen so the tail beyond them is < e^-42 of the
 * integral (they grow with m). Where the range touches r < 1 and m is not an integer (d even),
 * the integral is taken in z = sqrt(r) (omega(r) dr = 2 C z^{d-2} dz), which removes the r^m
 * endpoint singularity. Psi(t) is split the same way. Integrands are formed as
 * exp(log F + log omega), so large m (where C r^m alone overflows) costs nothing; an integral
 * that truly overflows is +inf, and exp(-J) is then 0.
 *
 * Quadrature: adaptive Gauss-Kronrod 10/21 (bisect the worst interval; error estimate as in
 * QUADPACK [Piessens et al. 1983]: I_abs min(1, (200 |K21 - G10|/I_abs)^1.5)), nested three
 * deep for E[W_1] (relative tolerances: outer 1e-10, M(R) 3e-12, J_R 1e-13) and two deep for
 * E[sum W^2] (1e-10, 1e-13). The left tails, which decay like e^t in the log variables, are
 * integrated in lam and w = Gamma_1^{1/(d-1)} instead (see mfun). Ranges: Gamma_1 <= 60 (the
 * rest has probability e^-60); lam <= 60 for M(R) (e^-lam); Psi's t up to where J_0 >= 50,
 * found by doubling. If a tolerance is not met within 400 intervals, or a value is NaN, the
 * result is ATS_STATUS_ENUM.
 *
 * Accuracy (the contract is 1e-8 relative): against mpmath (d = 3 closed forms, d = 5 by an
 * independent reduction, tests/data/gen_sphere_reference.py) within 6e-16; against this code
 * with every tolerance 10x tighter, within 3e-13 for d <= 20 and tau' in [1e-2, 1e4]; the d = 3
 * general route against the closed forms, within 1e-14. Cost: ~0.1 s per call for d <= 10, ~1 s
 * at d = 100 (the integrands sharpen with m); expectations below ~1e-300 (large d, small tau')
 * come out as 0.
 *
 * Build: part of libattnscale (make lib); tested by tests/test_sphere_theory.c.
 */
#include <float.h>
#include <math.h>

#include "core/internal.h"
#include "theory/cf.h"

#define PPP_EULER 0.577215664901532860606512090082402431
#define PPP_GK_MAX 400
// d served by the Ein closed forms (a development build sets it to 0 to check the general
// route against them).
#ifndef PPP_D3_CLOSED_FORM
#define PPP_D3_CLOSED_FORM 3
#endif

// ----------------------------------------------------------------------------
// Adaptive Gauss-Kronrod 10/21

// Kronrod nodes (the odd entries 1, 3, ... are the 10-point Gauss nodes) on [0, 1), largest
// first, and weights; recomputed with mpmath to 36 digits (they agree with QUADPACK's qk21).
static const double gk_x[11] = {0.995657163025808080735527280689002848,
                                0.973906528517171720077964012084452053,
                                0.930157491355708226001207180059508346,
                                0.865063366688984510732096688423493049,
                                0.780817726586416897063717578345042377,
                                0.679409568299024406234327365114873576,
                                0.562757134668604683339000099272694141,
                                0.433395394129247190799265943165784162,
                                0.294392862701460198131126603103865566,
                                0.148874338981631210884826001129719985,
                                0.0};
static const double gk_wk[11] = {
    0.0116946388673718742780643960621920484, 0.0325581623079647274788189724593897606,
    0.0547558965743519960313813002445801764, 0.0750396748109199527670431409161900094,
    0.0931254545836976055350654650833663444, 0.10938715880229764189921059032580496,
    0.12349197626206585107795810983107416,   0.134709217311473325928054001771706833,
    0.142775938577060080797094273138717061,  0.147739104901338491374841515972068046,
    0.149445554002916905664936468389821204};
static const double gk_wg[5] = { // Gauss weights of the nodes gk_x[1], gk_x[3], ..., gk_x[9]
    0.0666713443086881375935688098933317929, 0.149451349150580593145776339657697332,
    0.219086362515982043995534934228163192, 0.269266719309996355091226921569469353,
    0.295524224714752870173892994651338329};

typedef double ppp_fn(double x, void *ctx);

struct gk_seg {
    double a, b, r, e;
};

// One GK21 panel on [a, b]: result, error estimate. Returns 0, or -1 on a non-finite value
// (+inf, a value that overflows, is passed on: every integrand here is >= 0).
static int gk21(ppp_fn *f, void *ctx, double a, double b, double *res, double *err) {
    double c = 0.5 * (a + b), h = 0.5 * (b - a);
    double fv[21];
    fv[10] = f(c, ctx);
    for (int i = 0; i < 10; i++) {
        fv[i] = f(c - h * gk_x[i], ctx);
        fv[20 - i] = f(c + h * gk_x[i], ctx);
    }
    double rk = gk_wk[10] * fv[10], rg = 0, rabs = fabs(rk);
    for (int i = 0; i < 10; i++) {
        double s = fv[i] + fv[20 - i];
        rk += gk_wk[i] * s;
        rabs += gk_wk[i] * (fabs(fv[i]) + fabs(fv[20 - i]));
        if (i % 2 == 1)
            rg += gk_wg[i / 2] * s;
    }
    double mean = 0.5 * rk, asc = gk_wk[10] * fabs(fv[10] - mean);
    for (int i = 0; i < 10; i++)
        asc += gk_wk[i] * (fabs(fv[i] - mean) + fabs(fv[20 - i] - mean));
    double e = fabs((rk - rg) * h);
    asc *= fabs(h);
    if (asc != 0 && e != 0)
        e = asc * fmin(1, pow(200 * e / asc, 1.5));
    e = fmax(e, 50 * DBL_EPSILON * rabs * fabs(h));
    *res = rk * h;
    *err = e;
    if (isinf(*res) && *res > 0 && !isnan(rg)) { // the integrands are >= 0: a true overflow
        *err = 0;
        return 0;
    }
    return isfinite(*res) && isfinite(e) ? 0 : -1;
}

// Integral of f over [a, b] to max(epsabs, epsrel |I|), starting from n0 equal intervals.
// Returns 0, or -1 (and *res = NAN) when the tolerance is not met within PPP_GK_MAX intervals or a value is not
// finite.
static int gk_integrate(double *res, ppp_fn *f, void *ctx, double a, double b, int n0,
                        double epsrel, double epsabs) {
    struct gk_seg seg[PPP_GK_MAX];
    *res = NAN; // on failure
    if (n0 < 1)
        n0 = 1;
    if (n0 > PPP_GK_MAX / 2)
        n0 = PPP_GK_MAX / 2;
    int n = n0;
    for (int i = 0; i < n0; i++) {
        seg[i].a = a + (b - a) * i / n0;
        seg[i].b = i == n0 - 1 ? b : a + (b - a) * (i + 1) / n0;
        if (gk21(f, ctx, seg[i].a, seg[i].b, &seg[i].r, &seg[i].e))
            return -1;
    }
    for (;;) {
        double r = 0, e = 0;
        int worst = 0;
        for (int i = 0; i < n; i++) {
            r += seg[i].r;
            e += seg[i].e;
            if (seg[i].e > seg[worst].e)
                worst = i;
        }
        if (e <= fmax(epsabs, epsrel * fabs(r))) {
            *res = r;
            return 0;
        }
        if (n == PPP_GK_MAX)
            return -1;
        double lo = seg[worst].a, hi = seg[worst].b, mid = 0.5 * (lo + hi);
        if (!(mid > lo && mid < hi))
            return -1; // interval exhausted at double resolution
        seg[worst].b = mid;
        seg[n].a = mid;
        seg[n].b = hi;
        if (gk21(f, ctx, lo, mid, &seg[worst].r, &seg[worst].e) ||
            gk21(f, ctx, mid, hi, &seg[n].r, &seg[n].e))
            return -1;
        n++;
    }
}

// ----------------------------------------------------------------------------
// The process: omega(r) = C r^m, r = a Gamma^p (C = 1/(p a^{1/p}), log C = log(1/(p a)) - m log a)

struct ppp {
    double a, p, m, d;
    double log_w0; // log(1/(p a)): omega(r) = exp(log_w0 + m log(r/a))
    int m_int;     // m is an integer (d odd): no endpoint singularity in r
    int fail;      // set when an inner integral fails
};

// log omega(r) = log C + m log r.
static double log_omega(const struct ppp *P, double r) {
    if (P->m == 0)
        return P->log_w0;
    return P->log_w0 + P->m * log(r / P->a);
}

// Gamma(r) = (r/a)^{1/p}; Gamma(R + L) - Gamma(R) = Gamma(R + L) (1 - (R/(R+L))^{1/p}) without
// cancellation, overflow to +inf only with the result, and no 0 * inf.
static double gamma_diff(const struct ppp *P, double R, double L) {
    double q = 1 / P->p, g = exp(q * log((R + L) / P->a));
    if (R == 0)
        return g;
    return g * -expm1(-q * log1p(L / R));
}

enum { F_ONE_MINUS, F_LOW, F_PSI };

// The logarithms of the integrand factors F(y), y = L - s: 1 - exp(-e^y), exp(-e^y),
// exp(2y - e^y). The integrands are formed as exp(log F + log omega): omega alone overflows
// for large m where the product does not.
static double log_ffac(int kind, double y) {
    switch (kind) {
    case F_ONE_MINUS:
        // log(e^y (1 - e^y/2 + e^2y/6 - ...)): the e^2y term is < 1e-26 below y = -30.
        return y < -30 ? y - 0.5 * exp(y) : log(-expm1(-exp(y)));
    case F_LOW:
        return -exp(y);
    default:
        return 2 * y - exp(y);
    }
}

struct inner_ctx {
    const struct ppp *P;
    int kind;
    double L, R;
};

static double inner_s(double s, void *vctx) { // F(L - s) omega(R + s)
    const struct inner_ctx *c = vctx;
    return exp(log_ffac(c->kind, c->L - s) + log_omega(c->P, c->R + s));
}

static double inner_z(double z, void *vctx) { // s = z^2 - R: F omega ds = F 2 z omega(z^2) dz
    const struct inner_ctx *c = vctx;
    return 2 * z * exp(log_ffac(c->kind, c->L + c->R - z * z) + log_omega(c->P, z * z));
}

// int_{sa}^{sb} F(L - s) omega(R + s) ds, in z = sqrt(R + s) where R + s < 1 and m is not an
// integer. The s range starts cut into pieces of length <= 8, on which one GK21 panel
// already resolves the e^{-s} decay to 1e-13 (so the bisection wastes no panels getting there).
static double inner_piece(struct ppp *P, int kind, double L, double R, double sa, double sb) {
    const double tol = 1e-13;
    struct inner_ctx c = {P, kind, L, R};
    double total = 0, part;
    if (!P->m_int && R + sa < 1) {
        double sc = fmin(sb, 1 - R);
        if (gk_integrate(&part, inner_z, &c, sqrt(R + sa), sqrt(R + sc), 1, tol, 0))
            P->fail = 1;
        total += part;
        sa = sc;
    }
    if (sb > sa) {
        if (gk_integrate(&part, inner_s, &c, sa, sb, (int)ceil((sb - sa) / 8), tol, 0))
            P->fail = 1;
        total += part;
    }
    return total;
}

// Length of the range beyond which e^{-rate y} (1 + y/base)^m < e^-42.
static double tail_length(const struct ppp *P, double rate, double base) {
    double y = 42 / rate;
    if (P->m > 0)
        while (-rate * y + P->m * log1p(y / fmax(base, 1)) > -42)
            y += 2;
    return y;
}

// J_R(e^L) = int_0^inf (1 - exp(-e^{L - s})) omega(R + s) ds.
static double jfun(struct ppp *P, double R, double L) {
    if (L <= 0) {
        double S = tail_length(P, 1, R);
        return inner_piece(P, F_ONE_MINUS, L, R, 0, S);
    }
    double head = gamma_diff(P, R, L);
    if (isinf(head))
        return head;
    double low = inner_piece(P, F_LOW, L, R, fmax(0, L - 7), L);
    double high = inner_piece(P, F_ONE_MINUS, L, R, L, L + tail_length(P, 1, R + L));
    return head - low + high;
}

// Psi(t) = int_0^inf exp(2(t - r) - e^{t-r}) omega(r) dr.
static double psifun(struct ppp *P, double t) {
    double lo = fmax(0, t - 7);
    return inner_piece(P, F_PSI, t, 0, lo, fmax(t, 0) + tail_length(P, 2, fmax(t, 0)));
}

// ----------------------------------------------------------------------------
// E[sum W^2] and E[W_1], general d
//
// The left tails (lam -> 0, Gamma_1 -> 0) decay like e^t or e^u in the log variables, which
// would cost several panels each; there the integrands are smooth in lam itself (J_R and Psi
// are analytic at lam = 0) and in w = Gamma_1^{1/(d-1)} (R = a w^2, density
// (d-1) w^{d-2} e^{-w^{d-1}}), so those ranges are integrated in lam and w:
//   M(R) = int_0^{lam1} e^{-lam - J_R(lam)} dlam + int_{log lam1}^{log 60} e^{t - e^t - J_R(e^t)}
//   dt, lam1 = 1/max(1, 2 J_R(1)) (J_R(lam) <= lam J_R'(0) <= 2 lam J_R(1) <= 1 below lam1), E[W_1]
//   = int_0^1 (d-1) w^{d-2} e^{-w^{d-1}} M(a w^2) dw + int_0^{log 60} e^{u-e^u} M(a e^{pu}) du,
//   E[sum W^2] = int_0^{lam1} e^{-J_0(lam)} Psi(log lam)/lam dlam + int_{log lam1}^{t_hi} ... dt.

static double esw2_lam_integrand(double lam, void *vctx) {
    struct ppp *P = vctx;
    double t = log(lam), j = jfun(P, 0, t);
    if (j > 745)
        return 0;
    return exp(-j) * psifun(P, t) / lam;
}

static double esw2_integrand(double t, void *vctx) {
    struct ppp *P = vctx;
    double j = jfun(P, 0, t);
    if (j > 745)
        return 0;
    return exp(-j) * psifun(P, t);
}

struct mid_ctx {
    struct ppp *P;
    double R;
};

static double m_lam_integrand(double lam, void *vctx) {
    const struct mid_ctx *c = vctx;
    return exp(-lam - jfun(c->P, c->R, log(lam)));
}

static double m_integrand(double t, void *vctx) {
    const struct mid_ctx *c = vctx;
    double e = exp(t), j = jfun(c->P, c->R, t);
    return exp(t - e - j);
}

// M(R) = E[W_1 | r_1 = R].
static double mfun(struct ppp *P, double R) {
    const double tol = 3e-12;
    struct mid_ctx c = {P, R};
    double j1 = jfun(P, R, 0);
    if (isinf(j1)) // M(R) < 1/J_R'(0) <= 1/J_R(1): below the double range
        return 0;
    double lam1 = 1 / fmax(1, 2 * j1);
    double r1 = NAN, r2 = NAN;
    if (gk_integrate(&r1, m_lam_integrand, &c, 0, lam1, 1, tol, 0) ||
        gk_integrate(&r2, m_integrand, &c, log(lam1), log(60.0), 1, tol, 0))
        P->fail = 1;
    return r1 + r2;
}

static double w1_w_integrand(double w, void *vctx) {
    struct ppp *P = vctx;
    double wd2 = pow(w, P->d - 2);
    return (P->d - 1) * wd2 * exp(-wd2 * w) * mfun(P, P->a * w * w);
}

static double w1_u_integrand(double u, void *vctx) {
    struct ppp *P = vctx;
    return exp(u - exp(u)) * mfun(P, P->a * exp(P->p * u));
}

static int ppp_general(double *ew1, double *esw2, int64_t d, double tau) {
    const double tol = 1e-10;
    struct ppp P;
    P.d = (double)d;
    P.a = 0.5 * tau;
    P.p = 2 / (P.d - 1);
    P.m = 0.5 * (P.d - 3);
    P.m_int = d % 2 == 1;
    P.log_w0 = -log(P.p * P.a);
    P.fail = 0;
    if (ew1) {
        double r1, r2;
        if (gk_integrate(&r1, w1_w_integrand, &P, 0, 1, 1, tol, 0) ||
            gk_integrate(&r2, w1_u_integrand, &P, 0, log(60.0), 1, tol, 0) || P.fail)
            return -1;
        *ew1 = r1 + r2;
    }
    if (esw2) {
        double j1 = jfun(&P, 0, 0);
        if (isinf(j1)) { // E[sum W^2] < 1/J_0(1) (Laplace scale), below the double range
            *esw2 = 0;
            return P.fail ? -1 : 0;
        }
        double lam1 = 1 / fmax(1, 2 * j1), t1 = log(lam1);
        double hi = 1;
        while (jfun(&P, 0, hi) < 50 && hi < 1e300)
            hi = 2 * hi + 1;
        // The integrand peaks within a few units of t1 and may then decay slowly (d = 2, 3 and
        // large tau'): split there so the long tail does not dilute the error control.
        double mid = fmin(t1 + 10, hi);
        double r0, r1, r2;
        if (gk_integrate(&r0, esw2_lam_integrand, &P, 0, lam1, 1, tol, 0) ||
            gk_integrate(&r1, esw2_integrand, &P, t1, mid, 1, tol, 0) ||
            gk_integrate(&r2, esw2_integrand, &P, mid, hi, 1, tol, 0) || P.fail)
            return -1;
        *esw2 = r0 + r1 + r2;
    }
    return 0;
}

// ----------------------------------------------------------------------------
// d = 3: the Ein closed forms of THEORY.md 3.4 (theta = 2/tau')

// E_1(x) for x >= 2 by Legendre's fraction e^-x/(x + 1 - 1/(x + 3 - 4/(x + 5 - ...)))
// (DLMF 8.9.2 with s = 0), modified Lentz.
static void e1_coef(long k, double *a, double *b, const void *ctx) {
    const double *x = ctx;
    *a = -(double)k * (double)k;
    *b = *x + 2 * (double)k + 1;
}

static double e1_cf(double x) {
    return exp(-x) / ats_cf_lentz(x + 1, e1_coef, &x, 10000, DBL_EPSILON, NULL);
}

// Ein(x) = int_0^x (1 - e^-t)/t dt = sum_{k>=1} (-1)^{k+1} x^k/(k k!)  (x < 2.5; the largest
// term is < 2.5 times the sum, so the alternating series costs no digits), and
// log x + gamma + E_1(x) beyond (DLMF 6.2.3; E_1 < 0.03 there, no cancellation).
static double ein(double x) {
    if (x < 2.5) {
        double sum = 0, term = -1;
        for (int k = 1; k < 200; k++) {
            term *= -x / k; // (-1)^{k+1} x^k / k!
            double u = term / k;
            sum += u;
            if (fabs(u) <= 0.25 * DBL_EPSILON * fabs(sum))
                break;
        }
        return sum;
    }
    return log(x) + PPP_EULER + e1_cf(x);
}

// P(2, x) = 1 - e^-x (1 + x), by its series at small x.
static double p2(double x) {
    if (x > 0.5)
        return -expm1(-x) - x * exp(-x);
    double sum = 0, term = 1; // sum_{k>=2} (-1)^k (k-1) x^k / k!
    for (int k = 1; k < 60; k++) {
        term *= -x / k;
        if (k >= 2) {
            double u = (k - 1) * term;
            sum += u;
            if (fabs(u) <= 0.25 * DBL_EPSILON * fabs(sum))
                break;
        }
    }
    return sum;
}

static double d3_w1(double t, void *vctx) {
    double th = *(const double *)vctx, l = exp(t);
    return exp(t - l - th * ein(l));
}

static double d3_sw2(double t, void *vctx) {
    double th = *(const double *)vctx, l = exp(t);
    return th * exp(-th * ein(l)) * p2(l);
}

static int ppp_d3(double *ew1, double *esw2, double tau) {
    double th = 2 / tau;
    double lo = -42 - log(fmax(1, th)); // the integrands are ~ lam (W_1) and ~ lam^2 below
    if (ew1 && gk_integrate(ew1, d3_w1, &th, lo, log(60.0), 1, 1e-11, 0))
        return -1;
    if (esw2) {
        // Beyond t = T = 4.5 (lam = 90): Ein = t + gamma + E_1 (E_1 < 1e-40) and P(2, .) = 1
        // to 1e-37, so the rest is int_T^inf theta e^{-theta (t + gamma)} dt = e^{-theta(T+gamma)}.
        const double T = 4.5;
        double r1, r2;
        double mid = fmin(T, -log(fmax(1, th)) + 10);
        if (gk_integrate(&r1, d3_sw2, &th, -23 - log(fmax(1, th)), mid, 1, 1e-11, 0))
            return -1;
        r2 = 0;
        if (mid < T && gk_integrate(&r2, d3_sw2, &th, mid, T, 1, 1e-11, 0))
            return -1;
        *esw2 = r1 + r2 + exp(-th * (T + PPP_EULER));
    }
    return 0;
}

int ats_ppp_expect(double *ew1, double *esw2, int64_t d, double tau_prime) {
    if (d < 2)
        ATS_ERROR(ATS_STATUS_EDOM, "d = %lld must be at least 2", (long long)d);
    if (!(tau_prime > 0) || !isfinite(tau_prime))
        ATS_ERROR(ATS_STATUS_EDOM, "tau' = %g must be finite and > 0", tau_prime);
    double w1 = NAN, sw2 = NAN;
    int rc = d == PPP_D3_CLOSED_FORM
                 ? ppp_d3(ew1 ? &w1 : NULL, esw2 ? &sw2 : NULL, tau_prime)
                 : ppp_general(ew1 ? &w1 : NULL, esw2 ? &sw2 : NULL, d, tau_prime);
    if (rc || (ew1 && !isfinite(w1)) || (esw2 && !isfinite(sw2)))
        ATS_ERROR(ATS_STATUS_ENUM, "quadrature did not converge at d = %lld, tau' = %g",
                  (long long)d, tau_prime);
    if (ew1)
        *ew1 = w1;
    if (esw2)
        *esw2 = sw2;
    return ATS_STATUS_OK;
}
