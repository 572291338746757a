/*
 * gaps.c: the gap-counting diagnostic of one row of attention logits (THEORY.md 4.1-4.2).
 *
 * The gaps D_j = s_max - s_j are sorted once (LSD radix sort on the IEEE bits, which order
 * non-negative doubles like integers: O(n)); then
 *   beta_hat   = max_{k >= k0} log k / D_(k)                  (k0 = 2 and 10)
 *   beta_half  : sum_{j >= 2} exp(-beta D_(j)) = 1, by safeguarded Newton on a convex,
 *                decreasing rewriting of the equation (half_eq), started at the lower bound
 *                max_{k >= 3} log(k - 1)/D_(k) (f(beta) >= (k - 1) exp(-beta D_(k)) for every k).
 *   Z, entropy and w1 at the applied beta, summed over the sorted gaps (smallest first) until
 *   the terms underflow.
 */
#include <math.h>
#include <string.h>

#include "core/internal.h"

int64_t ats_row_stats_workspace(int64_t n) {
    return 2 * (n > 0 ? n : 1);
}

static uint64_t key_of(double x) {
    uint64_t k;
    memcpy(&k, &x, sizeof k);
    return k;
}

// Sorts x: (n,) of non-negative doubles ascending; tmp: (n,) scratch.
static void sort_gaps(double *x, double *tmp, int64_t n) {
    if (n < 64) {
        for (int64_t i = 1; i < n; i++) {
            double v = x[i];
            int64_t j = i;
            for (; j > 0 && x[j - 1] > v; j--)
                x[j] = x[j - 1];
            x[j] = v;
        }
        return;
    }
    double *src = x, *dst = tmp;
    for (int shift = 0; shift < 64; shift += 8) {
        int64_t count[257] = {0};
        for (int64_t i = 0; i < n; i++)
            count[((key_of(src[i]) >> shift) & 255) + 1]++;
        if (count[((key_of(src[0]) >> shift) & 255) + 1] == n)
            continue; // every key shares this byte
        for (int b = 0; b < 256; b++)
            count[b + 1] += count[b];
        for (int64_t i = 0; i < n; i++)
            dst[count[(key_of(src[i]) >> shift) & 255]++] = src[i];
        double *t = src;
        src = dst;
        dst = t;
    }
    if (src != x)
        memcpy(x, src, (size_t)n * sizeof *x);
}

// Neumaier's compensated sum: s + c carries the running total to about one rounding, so
// rows of 10^5+ equal terms keep full precision.
struct csum {
    double s, c;
};

static void csum_add(struct csum *a, double x) {
    double t = a->s + x;
    a->c += fabs(a->s) >= fabs(x) ? (a->s - t) + x : (x - t) + a->s;
    a->s = t;
}

static double csum_value(const struct csum *a) {
    return a->s + a->c;
}

// The half-mass equation f(beta) = sum_{j >= 2} exp(-beta D_(j)) = 1 written as
//   G(beta) = log R(beta) - log(1 - exp(-beta D_(2))) = 0,   R = sum_{j >= 3} exp(-beta D_(j)),
// a difference that stays well scaled however small beta D_(2) is (1 - exp(-x) is formed as
// -expm1(-x)) and whose terms are both convex and decreasing, so Newton converges fast and,
// started left of the root, monotonically. R is summed shifted by D_(3) (no underflow) and
// stops once the remaining terms are below 2^-60 of the sum. Needs n >= 3 and D_(2) > 0.
static void half_eq(double *G, double *dG, const double *g, int64_t n, double beta) {
    struct csum r = {0, 0}, r1 = {0, 0};
    for (int64_t j = 2; j < n; j++) {
        double t = exp(-beta * (g[j] - g[2]));
        csum_add(&r, t);
        csum_add(&r1, g[j] * t);
        if (t * (double)(n - j) < 0x1p-60 * r.s)
            break;
    }
    double x2 = beta * g[1], rs = csum_value(&r);
    *G = -beta * g[2] + log(rs) - log(-expm1(-x2));
    *dG = -csum_value(&r1) / rs - g[1] / expm1(x2);
}

// The root of G in [lo, hi] (bounds proved by the caller): Newton, with bisection in log beta
// whenever rounding would take an iterate outside the shrinking bracket.
static double solve_half(const double *g, int64_t n, double lo, double hi) {
    double beta = lo;
    for (int it = 0; it < 400; it++) {
        double G, dG;
        half_eq(&G, &dG, g, n, beta);
        if (G > 0)
            lo = beta;
        else
            hi = beta;
        if (G == 0 || hi - lo <= 0x1p-52 * hi)
            break;
        double next = beta - G / dG;
        if (!(next > lo && next < hi))
            next = sqrt(lo * hi); // bisection in log beta (lo > 0)
        int done = fabs(next - beta) <= 0x1p-52 * beta;
        beta = next;
        if (done)
            break;
    }
    return beta;
}

// Entropy and max weight at beta from the sorted gaps (THEORY.md 1):
// Z = sum exp(-beta D), w1 = 1/Z, H = log Z + beta sum w D.
static void softmax_stats(struct ats_row_stats *out, const double *g, int64_t n, double beta) {
    if (beta == 0) { // uniform weights, even when a gap overflows to inf (0 * inf is NaN)
        out->w1 = 1 / (double)n;
        out->entropy = log((double)n);
        return;
    }
    // Z = 1 + (the rest): the maximum's own term is exactly 1 (D_(1) = 0), and keeping Z - 1
    // apart lets log1p resolve the entropy of a nearly one-hot row.
    struct csum zs = {0, 0}, zds = {0, 0};
    for (int64_t j = 1; j < n; j++) {
        double x = beta * g[j];
        if (x > 746) // exp(-x) is 0 in double from here on (gaps are sorted)
            break;
        double t = exp(-x);
        csum_add(&zs, t);
        csum_add(&zds, t * g[j]);
    }
    double zm1 = csum_value(&zs), zd = csum_value(&zds), z = 1 + zm1;
    out->w1 = 1 / z;
    out->entropy = log1p(zm1) + beta * zd / z;
}

static void classify(struct ats_row_stats *out, double beta, double w) {
    out->beta = beta;
    out->ratio = beta / out->beta_hat_k10;
    if (isnan(out->ratio))
        out->regime = -1;
    else if (out->ratio < 1 / w)
        out->regime = ATS_REGIME_SUBCRITICAL;
    else if (out->ratio > w)
        out->regime = ATS_REGIME_SUPERCRITICAL;
    else
        out->regime = ATS_REGIME_CRITICAL;
}

static int check_beta(double beta, double w) {
    if (!(beta >= 0 && isfinite(beta)))
        ATS_ERROR(ATS_STATUS_EDOM, "beta = %g must be finite and >= 0", beta);
    if (!(w > 1 && isfinite(w)))
        ATS_ERROR(ATS_STATUS_EDOM, "window = %g must be finite and > 1", w);
    return ATS_STATUS_OK;
}

int ats_row_stats(struct ats_row_stats *out, const double *s, int64_t n, double beta, double w,
                  double *ws) {
    ATS_ASSERT(out && s && ws);
    if (n < 1)
        ATS_ERROR(ATS_STATUS_EDOM, "a row needs at least one logit (n = %lld)", (long long)n);
    int rc = check_beta(beta, w);
    if (rc != ATS_STATUS_OK)
        return rc;
    double smax = s[0];
    for (int64_t j = 0; j < n; j++) {
        if (!isfinite(s[j]))
            ATS_ERROR(ATS_STATUS_EDOM, "logit %lld is not finite", (long long)j);
        smax = s[j] > smax ? s[j] : smax;
    }
    double *g = ws;
    for (int64_t j = 0; j < n; j++)
        g[j] = smax - s[j];
    sort_gaps(g, ws + n, n);

    out->n = n;
    // max_k log k / D_(k) as fractions num/den compared by cross-multiplication (no division
    // in the loop); log(k - 1) for the Newton start is the previous log k. Ties at the
    // maximum (D_(k) = 0) make the scales infinite.
    double n2 = 0, d2 = 1, n10 = 0, d10 = 1, nlo = 0, dlo = 1, lprev = log(1.0);
    for (int64_t k = 2; k <= n; k++) { // 1-based k: g[k - 1] = D_(k)
        double d = g[k - 1], lk = log((double)k);
        if (lk * d2 > n2 * d) {
            n2 = lk;
            d2 = d;
        }
        if (k >= 10 && lk * d10 > n10 * d) {
            n10 = lk;
            d10 = d;
        }
        if (k >= 3 && lprev * dlo > nlo * d) {
            nlo = lprev;
            dlo = d;
        }
        lprev = lk;
    }
    out->beta_hat = n >= 2 ? (d2 > 0 ? n2 / d2 : HUGE_VAL) : NAN;
    out->beta_hat_k10 = n >= 10 ? (d10 > 0 ? n10 / d10 : HUGE_VAL) : NAN;
    double lo = dlo > 0 ? nlo / dlo : HUGE_VAL;
    // f(0) = n - 1 and f decreases to #{ties at the maximum}: no root for n = 1 (the weight is
    // 1 at every beta), the root 0 for n = 2, none finite with a tie at the maximum. The
    // bracket: f >= (k - 1) exp(-beta D_(k)) for every k gives lo, f <= (n - 1) exp(-beta
    // D_(2)) gives hi.
    if (n == 1)
        out->beta_half = NAN;
    else if (n == 2)
        out->beta_half = 0;
    else if (g[1] == 0)
        out->beta_half = HUGE_VAL;
    else
        out->beta_half = solve_half(g, n, lo, log((double)(n - 1)) / g[1]);
    softmax_stats(out, g, n, beta);
    classify(out, beta, w);
    return ATS_STATUS_OK;
}

int ats_row_stats_rebeta(struct ats_row_stats *out, int64_t n, double beta, double w,
                         const double *ws) {
    ATS_ASSERT(out && ws && n == out->n);
    int rc = check_beta(beta, w);
    if (rc != ATS_STATUS_OK)
        return rc;
    softmax_stats(out, ws, n, beta);
    classify(out, beta, w);
    return ATS_STATUS_OK;
}
