/*
 * sphere.c: closed forms of Paper 2 (arXiv 2605.08505), one query and n keys uniform on
 * S^(d-1): the constants c_d, kappa_d, beta*, K_d (THEORY.md 3.2, 3.5), A_d and the
 * subcritical predictions (THEORY.md 3.3), and the upper incomplete gamma function of the PPP
 * sampler's tail (THEORY.md 3.4). Bessel functions are in bessel_i.c, the PPP expectations in
 * sphere_ppp.c.
 *
 * Subcritical fields in log space. With nu = d/2 - 1 and G(x) = M_d(x) = E e^{x s}
 * (bessel_i.h), write L(x) = log M_d(x) - x, computed without ever forming the O(x) terms
 * (series for small x, exponentially scaled Bessel functions beyond). Then
 *   w1      = e^beta/(n M(beta))                   = exp(-L(beta) - log n)
 *   n_eff   = n M(beta)^2/M(2 beta)                = exp(log n - (L(2beta) - 2 L(beta)))
 *   H       = log n + log M(beta) - beta A(beta)   = log n + L(beta) + beta (1 - A(beta))
 *   bias    = beta (1 - A(beta)), with 1 - A from the fraction directly (no 1 - r).
 * sigma_perp^2 of THEORY.md 3.3, with I_nu(x) = G(x) (x/2)^nu/Gamma(nu+1), simplifies to
 *   sigma_perp^2 = (A(2beta)/(2beta)) M(2beta)/M(beta)^2          (-> 1/d as beta -> 0),
 * and THEORY.md's bracket of sigma_par^2 is E_{2beta}[s^2] - 2A(beta)A(2beta) + A(beta)^2 with
 * E_k[s^2] = 1 - (d-1)A(k)/k under the vMF(k) law, i.e.
 *   sigma_par^2 = (M(2beta)/M(beta)^2) [Var_{2beta}(s) + (A(2beta) - A(beta))^2],
 * where Var_k(s) = 1 - A^2 - (d-1)A/k = A'(k) comes cancellation-free from bessel_i.c and
 * A(2beta) - A(beta) = (1 - A(beta)) - (1 - A(2beta)) (the bracket as written loses ~log10(beta)
 * digits: its O(1/beta) terms cancel to leave O(1/beta^2)). Products are formed as exp of a sum
 * of logs, so a field overflows (to +inf) or underflows only when its value does.
 *
 * Build: part of libattnscale (make lib); tested by tests/test_sphere_theory.c.
 */
#include <float.h>
#include <math.h>

#include "core/internal.h"
#include "theory/cf.h"
#include "theory/bessel_i.h"

#define SPHERE_PI 3.14159265358979323846264338327950288
#define SPHERE_LN2 0.693147180559945309417232121458176568
#define SPHERE_EULER 0.577215664901532860606512090082402431

// Largest d ats_sphere_subcritical accepts: log M_d costs O(d) Bessel ratios beyond the
// series range (bessel_i.c), about 10 ms at this d.
#define SPHERE_D_MAX (INT64_C(1) << 20)

// ----------------------------------------------------------------------------
// Constants (THEORY.md 3.2, 3.5)

// log(Gamma(z + 1/2)/Gamma(z)) for z >= 1/2. Below z = 20 from tgamma (no overflow there);
// above, from Stirling's series for log Gamma(z + h) (DLMF 5.11.8) at h = 1/2 and h = 0:
//   log Gamma(z + 1/2) - log Gamma(z)
//     = (1/2) log z - sum_{k even} (2 - 2^{1-k}) B_k/(k(k-1) z^{k-1})
// (B_k(1/2) = -(1 - 2^{1-k}) B_k): coefficients 1/8, -1/192, 1/640, -17/14336, 341/202752,
// -2073/540672; the next term is < 1e-17 at z = 20.
static double log_gamma_half_ratio(double z) {
    if (z < 20)
        return log(tgamma(z + 0.5) / tgamma(z));
    double iz = 1 / z, iz2 = iz * iz;
    double s =
        iz * (1.0 / 8 +
              iz2 * (-1.0 / 192 +
                     iz2 * (1.0 / 640 + iz2 * (-17.0 / 14336 + iz2 * (341.0 / 202752 +
                                                                      iz2 * (-2073.0 / 540672))))));
    return 0.5 * log(z) - s;
}

double ats_sphere_c(int64_t d) {
    if (d < 2)
        return NAN;
    double z = 0.5 * ((double)d - 1); // c_d = Gamma(z + 1/2)/(sqrt(pi) Gamma(z))
    return exp(log_gamma_half_ratio(z)) / sqrt(SPHERE_PI);
}

double ats_sphere_kappa(int64_t d) {
    if (d < 2)
        return NAN;
    return ats_sphere_c(d) / ((double)d - 1);
}

double ats_sphere_beta_star(int64_t d, double n) {
    if (d < 2 || !(n > 0))
        return NAN;
    return pow(ats_sphere_kappa(d) * n, 2 / ((double)d - 1));
}

double ats_sphere_K(int64_t d) {
    if (d < 2)
        return NAN;
    double dm1 = (double)d - 1;
    // d = 2: Gamma(0) = inf, K_2 = +inf (E[1 - w_(1)] decays like (log tau')/tau' there).
    return dm1 * tgamma((2 * (double)d - 4) / dm1) * SPHERE_LN2;
}

double ats_sphere_A(int64_t d, double beta) {
    if (d < 2 || !(beta >= 0))
        return NAN;
    return ats_bessel_ratio(0.5 * (double)d - 1, beta);
}

// ----------------------------------------------------------------------------
// Subcritical predictions (THEORY.md 3.3)

int ats_sphere_subcritical(struct ats_sphere_sub *out, int64_t d, double n, double beta) {
    ATS_ASSERT(out);
    if (d < 2 || d > SPHERE_D_MAX)
        ATS_ERROR(ATS_STATUS_EDOM, "d = %lld is outside [2, %lld]", (long long)d,
                  (long long)SPHERE_D_MAX);
    if (!(n >= 1) || !isfinite(n))
        ATS_ERROR(ATS_STATUS_EDOM, "n = %g must be finite and >= 1", n);
    if (!(beta >= 0) || !isfinite(beta))
        ATS_ERROR(ATS_STATUS_EDOM, "beta = %g must be finite and >= 0", beta);
    double dd = (double)d, logn = log(n);
    if (beta == 0) { // uniform weights: E s = 0, E s^2 = Var s = 1/d
        out->A = 0;
        out->bias = 0;
        out->var_perp = 1 / dd;
        out->var_par = 1 / dd;
        out->w1 = 1 / n;
        out->n_eff = n;
        out->entropy = logn;
        return ATS_STATUS_OK;
    }
    double nu = 0.5 * dd - 1;
    struct ats_bessel_ratio_ext a1, a2;
    ats_bessel_ratio_ext(&a1, nu, beta);
    ats_bessel_ratio_ext(&a2, nu, 2 * beta);
    double l1 = ats_bessel_log_g_minus_x(nu, beta);     // log M(beta) - beta
    double l2 = ats_bessel_log_g_minus_x(nu, 2 * beta); // log M(2 beta) - 2 beta
    double lratio = l2 - 2 * l1;                        // log(M(2 beta)/M(beta)^2)
    double da = a1.one_minus_r - a2.one_minus_r;        // A(2 beta) - A(beta) > 0
    out->A = a1.r;
    out->bias = beta * a1.one_minus_r;
    out->var_perp = exp(lratio + log(a2.r / (2 * beta)));
    out->var_par = exp(lratio + log(a2.var + da * da));
    out->w1 = exp(-l1 - logn);
    out->n_eff = exp(logn - lratio);
    out->entropy = logn + l1 + beta * a1.one_minus_r;
    if (!isfinite(out->A) || isnan(out->var_par) || isnan(out->entropy))
        ATS_ERROR(ATS_STATUS_ENUM, "Bessel evaluation failed at d = %lld, beta = %g", (long long)d,
                  beta);
    return ATS_STATUS_OK;
}

// ----------------------------------------------------------------------------
// Upper incomplete gamma Gamma(s, x) = int_x^inf t^(s-1) e^-t dt (THEORY.md 3.4's tail)
//
//   x >= s + 1: Legendre's continued fraction (DLMF 8.9.2)
//       Gamma(s, x) = x^s e^-x / (x + 1 - s - 1(1-s)/(x + 3 - s - 2(2-s)/(x + 5 - s - ...))),
//     by modified Lentz; it converges in a few dozen terms in this range.
//   x < s + 1, s >= 1: Gamma(s) (1 - P(s, x)) with the series (DLMF 8.7.1)
//       P(s, x) = x^s e^-x / Gamma(s+1) sum_k x^k / ((s+1)...(s+k)),
//     where Q(s, x) >= Q(1, 2) = e^-2, so the subtraction costs at most a factor 7.4.
//   x < s + 1, s < 1: Gamma(s) - x^s/s is formed as (Gamma(1+s) - 1 - (x^s - 1))/s with
//     Gamma(1+s) - 1 from log Gamma(1+s) = -gamma s + sum_{k>=2} (-1)^k zeta(k) s^k/k
//     (DLMF 5.7.3; s <= 1/4) and expm1, so nothing is lost as s -> 0, then
//       Gamma(s, x) = (Gamma(s) - x^s/s) - x^s sum_{k>=1} (-x)^k/(k! (s+k))   (DLMF 8.7.3).
// x^s e^-x / Gamma(s+1) is formed for s >= 10 from Stirling's series as
// exp(-s (t - log1p t)) / (sqrt(2 pi s) e^{corr(s)}), t = (x - s)/s, which keeps full relative
// accuracy for x near s (where lgamma differences would lose |log Gamma| ulps); x^s e^-x alone
// by pow and exp, split into 2^j factors when x^s or e^-x leaves the double range. Only where
// the result itself is within a few hundred e-folds of the range ends does a log-space
// fallback cost ~ |log Gamma(s, x)| ulps.

static const double zeta_k[] = {
    1.64493406684822643647, 1.2020569031595942854,  1.08232323371113819152, 1.03692775514336992633,
    1.01734306198444913971, 1.00834927738192282684, 1.00407735619794433938, 1.00200839282608221442,
    1.00099457512781808534, 1.00049418860411946456, 1.0002460865533080483,  1.00012271334757848915,
    1.00006124813505870483, 1.00003058823630702049, 1.00001528225940865187, 1.00000763719763789976,
    1.00000381729326499984, 1.00000190821271655394, 1.0000009539620338728,  1.00000047693298678781,
    1.00000023845050272773, 1.00000011921992596531, 1.00000005960818905126, 1.00000002980350351465,
    1.00000001490155482837, 1.00000000745071178984, 1.00000000372533402479, 1.00000000186265972351,
    1.00000000093132743242}; // zeta(2..30), mpmath.zeta

// Gamma(1 + s) - 1 for 0 < s < 1, with small relative error as s -> 0.
static double gamma1p_minus1(double s) {
    if (s > 0.25)
        return tgamma(1 + s) - 1;          // |result| >= 0.09 here: absolute eps is relative eps
    double lg = -SPHERE_EULER * s, p = -s; // p = (-s)^(k-1), then (-s)^k
    for (int k = 2; k <= 30; k++) {
        p *= -s;
        double term = zeta_k[k - 2] * p / k;
        lg += term;
        if (fabs(term) <= 0.25 * DBL_EPSILON * fabs(lg))
            break;
    }
    return expm1(lg);
}

// log Gamma(s+1) - [(s + 1/2) log s - s + (1/2) log(2 pi)] for s >= 10 (DLMF 5.11.1):
// B_2k/(2k(2k-1) s^(2k-1)), k = 1..8; the first omitted term is < 1e-18 at s = 10.
static double stirling_corr(double s) {
    double is = 1 / s, is2 = is * is;
    return is *
           (1.0 / 12 +
            is2 * (-1.0 / 360 +
                   is2 * (1.0 / 1260 +
                          is2 * (-1.0 / 1680 +
                                 is2 * (1.0 / 1188 +
                                        is2 * (-691.0 / 360360 +
                                               is2 * (1.0 / 156 + is2 * (-3617.0 / 122400))))))));
}

// t - log1p(t) for t > -1, without cancellation at small t.
static double t_minus_log1p(double t) {
    if (fabs(t) > 0.25)
        return t - log1p(t);
    double sum = 0, p = -t;
    for (int k = 2; k < 60; k++) { // sum_{k>=2} (-1)^k t^k / k, p = (-t)^k after the update
        p *= -t;
        double term = p / k;
        sum += term;
        if (fabs(term) <= 0.25 * DBL_EPSILON * fabs(sum))
            break;
    }
    return sum;
}

// x^s e^-x for s > 0, x > 0, as (x^{s/k} e^{-x/k})^k with the smallest k = 1, 2, 4, ..., 64
// whose factors are normal numbers (each step of the squaring doubles the relative error:
// at most ~6k ulps). Returns -1 when no such k exists (the result is then near or beyond
// the double range).
static double xs_exp(double s, double x) {
    for (int k = 1; k <= 64; k *= 2) {
        double p = pow(x, s / k), e = exp(-x / k), q = p * e;
        if (isfinite(q) && p > DBL_MIN && e > DBL_MIN && q > DBL_MIN) {
            for (int j = k; j > 1; j /= 2)
                q *= q;
            return q;
        }
    }
    return -1;
}

// x^s e^-x / Gamma(s + 1), for s > 0, x > 0.
static double gamma_prefix(double s, double x) {
    if (s >= 10) {
        double t = (x - s) / s;
        return exp(-s * t_minus_log1p(t) - stirling_corr(s)) / sqrt(2 * SPHERE_PI * s);
    }
    double q = xs_exp(s, x);
    if (q >= 0)
        return q / tgamma(s + 1);
    return exp(s * log(x) - x - lgamma(s + 1));
}

// Legendre's fraction F with Gamma(s, x) = x^s e^-x / F, by modified Lentz (x >= s + 1).
static void gamma_coef(long k, double *a, double *b, const void *ctx) {
    const double *sx = ctx; // {s, x}
    *a = -(double)k * ((double)k - sx[0]);
    *b = sx[1] + 2 * (double)k + 1 - sx[0];
}

static double gamma_cf(double s, double x) {
    const double sx[2] = {s, x};
    long terms;
    double f = ats_cf_lentz(x + 1 - s, gamma_coef, sx, 100000, 2 * DBL_EPSILON, &terms);
    return terms < 0 ? NAN : f;
}

double ats_gamma_upper(double s, double x) {
    if (!(s > 0) || !isfinite(s) || !(x >= 0))
        return NAN;
    if (x == 0)
        return tgamma(s); // +inf beyond s ~ 171.6
    if (isinf(x))
        return 0;
    if (x >= s + 1) {
        // x^s e^-x / F, with x^s e^-x by xs_exp when it is in range, else as
        // prefix * Gamma(s+1) while both are, else in log space.
        double f = gamma_cf(s, x);
        double q = xs_exp(s, x);
        if (q >= 0)
            return q / f;
        if (s >= 10 && s < 170) {
            q = gamma_prefix(s, x);
            if (q > DBL_MIN)
                return q * tgamma(s + 1) / f;
        }
        return exp(s * log(x) - x - log(f));
    }
    if (s >= 1) {
        double sum = 1, term = 1;
        for (int k = 1; k < 100000; k++) {
            term *= x / (s + k);
            sum += term;
            if (term <= 0.5 * DBL_EPSILON * sum)
                break;
        }
        double p = gamma_prefix(s, x) * sum; // P(s, x) <= 1 - e^-2
        if (s < 170)
            return tgamma(s) * (1 - p);
        return exp(lgamma(s) + log1p(-p)); // +inf: Gamma(s) > DBL_MAX already
    }
    double xs = pow(x, s);
    double head = (gamma1p_minus1(s) - expm1(s * log(x))) / s; // Gamma(s) - x^s/s
    double sum = 0, term = 1;                                  // term = (-x)^k / k!
    for (int k = 1; k < 1000; k++) {
        term *= -x / k;
        double u = term / (s + k);
        sum += u;
        if (fabs(u) <= 0.25 * DBL_EPSILON * fabs(sum))
            break;
    }
    return head - xs * sum;
}
