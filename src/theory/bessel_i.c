/*
 * bessel_i.c: ratios and logarithms of the modified Bessel functions I_nu (THEORY.md 3.3):
 * ats_bessel_ratio (public) and the internal helpers of bessel_i.h, used by sphere.c.
 *
 * Ratio r_nu(x) = I_{nu+1}(x)/I_nu(x) [Gautschi & Slavik, Math. Comp. 32 (1978) 865-875]:
 *   - x <= nu + 2: Gauss's continued fraction, from the backward recurrence
 *     r_nu = x/(2(nu+1) + x r_{nu+1})  (DLMF 10.29.1), i.e.
 *     r_nu = x/(2(nu+1) + x^2/(2(nu+2) + x^2/(2(nu+3) + ...))). All terms positive; it
 *     converges in a few dozen terms when x is at most of the order of nu.
 *   - x > nu + 2: Perron's continued fraction
 *     r_nu = x/(2nu+2+x - (2nu+3)x/(2nu+3+2x - (2nu+5)x/(2nu+4+2x - ...))),
 *     which converges in a handful of terms for x >> nu (Gauss's would need about x terms).
 *     It is used divided through by x (an equivalence transformation), so the terms are
 *     O(1) for any x: A_k = -(2nu+1+2k)/x, B_k = 2 + (2nu+2+k)/x, B_0 = 1 + (2nu+2)/x.
 *   Each fraction is first run forward with the modified Lentz method only to find how many
 *   terms K converge to 2 DBL_EPSILON, then evaluated backward (which rounds less) from
 *   K + 8 terms (Gauss) or K + K/2 + 8 terms started at the recurrence's fixed point (Perron:
 *   Lentz tests 1 + Y_1/x, below, while 1 - r needs Y_1 itself).
 *
 * 1 - r and the vMF variance var = r' = 1 - r^2 - (2nu+1) r/x lose everything if formed from r
 * at large x (both are differences of O(1) terms, of size 1/x and 1/x^2). Perron's fraction
 * can be run without any subtraction: with a = 2nu+1 and X_k = (a+k)/x + T_k (T_k its tails,
 * T_k = A_k/(B_k + T_{k+1}), so B_k + T_{k+1} = 2 + X_{k+1}), Y_k = x X_k obeys
 *   Y_k = (a x + (a+k) Y_{k+1}) / (2x + Y_{k+1})           (all terms positive),
 *   1/r = 1 + Y_1/x  =>  r = x/(x + Y_1),  1 - r = Y_1/(x + Y_1),
 * and substituting Y_1 = (a x + (a+1) Y_2)/(2x + Y_2), Y_2 likewise, into
 * var = r^2 [(1+u)^2 - 1 - a(1+u)/x] (u = Y_1/x) gives
 *   var = r^2 S/(2x + Y_2)^2,
 *   S = (4ax + (a^2+8a+8) Y_3)/(2x + Y_3) + Y_2((a+2) Y_2 - a^2)/x + (a+1) Y_2^2/x^2,
 * whose terms cancel by at most a factor ~ a^2/(8x) < nu/4 (x > nu + 2 here).
 * In the Gauss range, with t = r_{nu+1}: var = (1 + x t)/(2nu+2 + x t) - r^2 (no cancellation
 * for small x; at x ~ nu the two terms agree to a factor ~ nu, costing log10(nu) digits).
 * Measured against mpmath (nu in [0, 2047.5], x in [1e-6, 2e8]): r within 2.2e-16 relative,
 * 1 - r within 3.5e-16, var within 7e-14 in the Perron range and 3.4e-13 in the Gauss range
 * (both worst near x ~ nu at nu ~ 2047: ~ nu eps).
 *
 * Logarithms. G_nu(x) = Gamma(nu+1) (2/x)^nu I_nu(x) = sum_k (x^2/4)^k / (k! (nu+1)_k)
 * (DLMF 10.25.2) is summed directly while x^2/4 <= 150 (nu+1) (positive terms, G <= e^150,
 * at most a few hundred terms for nu <= 2047). Beyond that,
 *   log(I_nu(x) e^-x) = log(I_nu0(x) e^-x) + sum_{j<m} log r_{nu0+j}(x),  nu = nu0 + m,
 * nu0 in [0, 1): I_{1/2}(x) = sqrt(2/(pi x)) sinh x exactly, other nu0 by Hankel's expansion
 * (DLMF 10.40.1; here x > 24.4, where its smallest term is ~ e^-2x < 1e-21). The product of
 * the ratios is renormalised with frexp, so nothing overflows or underflows, and the
 * combinations sphere.c needs (log M(2b) - 2 log M(b)) never subtract the large x terms.
 *
 * Build: part of libattnscale (make lib); tested by tests/test_sphere_theory.c.
 */
#include <float.h>
#include <math.h>

#include "core/internal.h"
#include "theory/cf.h"
#include "theory/bessel_i.h"

#define BESSEL_PI 3.14159265358979323846264338327950288
#define BESSEL_LN2 0.693147180559945309417232121458176568

// Terms beyond the forward (Lentz) convergence point used in the backward evaluation.
#define BESSEL_CF_EXTRA 8
// Safety cap on continued-fraction terms: the counts stay below ~100 on the whole domain (the
// largest is near x ~ nu); reaching the cap means a non-finite argument slipped through.
#define BESSEL_CF_MAX 100000
// Series range for G_nu: x^2/4 <= BESSEL_SERIES_Q (nu + 1), so G_nu(x) <= e^BESSEL_SERIES_Q.
#define BESSEL_SERIES_Q 150.0

// ----------------------------------------------------------------------------
// Continued fractions for r_nu(x), x > 0

// Gauss: number of terms for convergence of F = b_0 + a/(b_1 + a/(b_2 + ...)),
// b_k = 2(nu+1+k), a = x^2, by the modified Lentz method (Thompson & Barnett,
// J. Comput. Phys. 64 (1986) 490).
struct nu_x {
    double nu, x;
};

static void gauss_coef(long k, double *a, double *b, const void *ctx) {
    const struct nu_x *p = ctx;
    *a = p->x * p->x;
    *b = 2 * (p->nu + 1 + (double)k);
}

static long gauss_terms(double nu, double x) {
    struct nu_x p = {nu, x};
    long terms;
    ats_cf_lentz(2 * (nu + 1), gauss_coef, &p, BESSEL_CF_MAX, 2 * DBL_EPSILON, &terms);
    return terms;
}

// Perron (scaled by x): number of terms for F = B_0 + A_1/(B_1 + A_2/(B_2 + ...)).
static void perron_coef(long k, double *a, double *b, const void *ctx) {
    const struct nu_x *p = ctx;
    double kk = (double)k;
    *a = -(2 * p->nu + 1 + 2 * kk) / p->x;
    *b = 2 + (2 * p->nu + 2 + kk) / p->x;
}

static long perron_terms(double nu, double x) {
    struct nu_x p = {nu, x};
    long terms;
    ats_cf_lentz(1 + (2 * nu + 2) / x, perron_coef, &p, BESSEL_CF_MAX, 2 * DBL_EPSILON, &terms);
    return terms;
}

void ats_bessel_ratio_ext(struct ats_bessel_ratio_ext *out, double nu, double x) {
    ATS_ASSERT(out);
    if (!(nu >= 0) || !(x >= 0) || !isfinite(nu)) {
        out->r = out->one_minus_r = out->var = NAN;
        return;
    }
    if (x == 0) {
        out->r = 0;
        out->one_minus_r = 1;
        out->var = 1 / (2 * nu + 2);
        return;
    }
    if (isinf(x)) {
        out->r = 1;
        out->one_minus_r = 0;
        out->var = 0;
        return;
    }
    if (x <= nu + 2) {
        long kmax = gauss_terms(nu, x);
        if (kmax < 0) {
            out->r = out->one_minus_r = out->var = NAN;
            return;
        }
        double t = 0; // r_{nu+k}, from r_{nu+kmax+EXTRA+1} = 0 down to r_{nu+1}
        for (long k = kmax + BESSEL_CF_EXTRA; k >= 1; k--)
            t = x / (2 * (nu + 1 + (double)k) + x * t);
        double den = 2 * nu + 2 + x * t;
        double r = x / den;
        out->r = r;
        out->one_minus_r = 1 - r; // r < 0.75 here (r_0(2) = 0.698 is the largest), no loss
        out->var = (1 + x * t) / den - r * r;
        return;
    }
    long kmax = perron_terms(nu, x);
    if (kmax < 0) {
        out->r = out->one_minus_r = out->var = NAN;
        return;
    }
    // Y_k = x X_k from Y_{K+1} down to Y_1, K = kmax + kmax/2 + EXTRA (the Lentz test is on
    // F = 1 + Y_1/x, so Y_1 itself needs the further terms), starting from the fixed point
    // of the recurrence at k = K + 1: Y^2 + (2x - a - k) Y - a x = 0.
    double a = 2 * nu + 1;
    long kk = kmax + kmax / 2 + BESSEL_CF_EXTRA;
    double c = 2 * x - a - (double)(kk + 1);
    double disc = sqrt(c * c + 4 * a * x);
    double y = c < 0 ? 0.5 * (disc - c) : 2 * a * x / (c + disc);
    double y2 = 0, y3 = 0;
    for (long k = kk; k >= 1; k--) {
        y = (a * x + (a + (double)k) * y) / (2 * x + y);
        if (k == 3)
            y3 = y;
        if (k == 2)
            y2 = y;
    }
    double r = x / (x + y);
    out->r = r;
    out->one_minus_r = y / (x + y);
    double s = (4 * a * x + y3 * (a * a + 8 * a + 8)) / (2 * x + y3) +
               y2 * ((a + 2) * y2 - a * a) / x + (a + 1) * y2 * y2 / (x * x);
    double den = 2 * x + y2;
    out->var = r * r * s / (den * den);
}

double ats_bessel_ratio(double nu, double x) {
    struct ats_bessel_ratio_ext e;
    ats_bessel_ratio_ext(&e, nu, x);
    return e.r;
}

// ----------------------------------------------------------------------------
// Logarithms

static int in_series_range(double nu, double x) {
    return 0.25 * x * x <= BESSEL_SERIES_Q * (nu + 1);
}

// log G_nu(x) by the power series (in_series_range only), as log1p of the terms after the
// first (full relative accuracy when G - 1 is tiny). The terms rise to a peak at
// k ~ (sqrt(nu^2 + x^2) - nu)/2 and then fall; once past the peak, a term below eps * sum
// ends it (before the peak every term exceeds sum/(k+1)).
static double log_g_series(double nu, double x) {
    double y = 0.25 * x * x, term = 1, tail = 0;
    for (long k = 1; k < BESSEL_CF_MAX; k++) {
        double kk = (double)k;
        term *= y / (kk * (nu + kk));
        tail += term;
        if (term <= 0.5 * DBL_EPSILON * (1 + tail))
            break;
    }
    return log1p(tail);
}

// log(I_nu0(x) e^-x) for 0 <= nu0 < 1 and x > 24 (outside the series range): exact for
// nu0 = 1/2, Hankel's expansion otherwise.
static double log_ie_base(double nu0, double x) {
    if (nu0 == 0.5) // sqrt(2/(pi x)) sinh(x) e^-x = (1 - e^-2x)/sqrt(2 pi x)
        return log(-expm1(-2 * x)) - 0.5 * log(2 * BESSEL_PI * x);
    double mu = 4 * nu0 * nu0, term = 1, sum = 1, prev = INFINITY;
    for (int k = 1; k < 400; k++) {
        double odd = 2.0 * k - 1;
        term *= -(mu - odd * odd) / (8.0 * k * x);
        if (fabs(term) > prev) // the asymptotic series turned; not reached for x > 24
            break;
        sum += term;
        prev = fabs(term);
        if (prev <= 0.5 * DBL_EPSILON * fabs(sum))
            break;
    }
    return log(sum) - 0.5 * log(2 * BESSEL_PI * x);
}

// log(I_nu(x) e^-x) outside the series range, through the ratios down to nu0 = nu - floor(nu).
static double log_ie_far(double nu, double x) {
    double m = floor(nu), nu0 = nu - m;
    double mant = 1;
    long expo = 0;
    for (double j = 0; j < m; j++) {
        struct ats_bessel_ratio_ext e;
        ats_bessel_ratio_ext(&e, nu0 + j, x);
        int ex;
        mant = frexp(mant * e.r, &ex);
        expo += ex;
    }
    return log_ie_base(nu0, x) + log(mant) + (double)expo * BESSEL_LN2;
}

double ats_bessel_log_i(double nu, double x) {
    if (!(nu >= 0) || !(x >= 0) || !isfinite(nu))
        return NAN;
    if (x == 0)
        return nu == 0 ? 0 : -INFINITY;
    if (isinf(x))
        return INFINITY;
    if (in_series_range(nu, x))
        return log_g_series(nu, x) + nu * log(0.5 * x) - lgamma(nu + 1);
    return x + log_ie_far(nu, x);
}

double ats_bessel_log_g_minus_x(double nu, double x) {
    if (!(nu >= 0) || !(x >= 0) || !isfinite(nu))
        return NAN;
    if (x == 0)
        return 0;
    if (isinf(x))
        return -INFINITY; // log G ~ x - (nu + 1/2) log x
    if (in_series_range(nu, x))
        return log_g_series(nu, x) - x;
    return lgamma(nu + 1) + nu * log(2 / x) + log_ie_far(nu, x);
}
