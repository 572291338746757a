/*
 * test_diagnose.c: the gap-counting diagnostic (THEORY.md section 4).
 *   - row statistics against a long-double brute force from the definitions (sort by qsort,
 *     beta_hat as the maximum over k, beta_half by bisection, entropy by direct summation) on
 *     random and adversarial rows, and against closed forms on simplex rows;
 *   - the law fits recovering the families of THEORY.md 4.3: simplex rows (log n exactly),
 *     i.i.d. Gaussian rows (polylog), uniform keys on the sphere (power n^(2/(d-1)));
 *   - medians of beta_hat_k10 against THEORY.md 4.3's table within their sampling error.
 * Run: make build/tests/test_diagnose && build/tests/test_diagnose (ATS_TEST_LONG=1: n = 10^5)
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attnscale.h"
#include "test.h"

static int test_long(void) {
    const char *l = getenv("ATS_TEST_LONG");
    return l && l[0] == '1';
}

static int cmp_ld(const void *x, const void *y) {
    long double a = *(const long double *)x, b = *(const long double *)y;
    return (a > b) - (a < b);
}

struct ref_stats {
    long double bh2, bh10, half, entropy, w1;
};

// Definitions of THEORY.md 4.1 evaluated naively in long double.
static struct ref_stats reference(const double *s, int64_t n, long double beta) {
    struct ref_stats r;
    long double *g = malloc((size_t)n * sizeof *g), smax = s[0];
    for (int64_t j = 0; j < n; j++)
        smax = s[j] > smax ? s[j] : smax;
    for (int64_t j = 0; j < n; j++)
        g[j] = smax - s[j];
    qsort(g, (size_t)n, sizeof *g, cmp_ld);
    r.bh2 = r.bh10 = -1;
    for (int64_t k = 2; k <= n; k++) {
        long double v = g[k - 1] > 0 ? logl((long double)k) / g[k - 1] : HUGE_VALL;
        if (v > r.bh2)
            r.bh2 = v;
        if (k >= 10 && v > r.bh10)
            r.bh10 = v;
    }
    // beta_half by bisection on f(b) = sum_{j >= 2} exp(-b g_j) - 1 (decreasing in b).
    r.half = n == 1 ? NAN : 0;
    if (n > 2 && g[1] > 0) {
        long double lo = 0, hi = 1;
        for (;;) {
            long double f = -1;
            for (int64_t j = 1; j < n; j++)
                f += expl(-hi * g[j]);
            if (f < 0)
                break;
            hi *= 2;
        }
        for (int it = 0; it < 200; it++) {
            long double mid = (lo + hi) / 2, f = -1;
            for (int64_t j = 1; j < n; j++)
                f += expl(-mid * g[j]);
            if (f > 0)
                lo = mid;
            else
                hi = mid;
        }
        r.half = (lo + hi) / 2;
    } else if (n > 2) {
        r.half = HUGE_VALL;
    }
    // H = -sum w log w, the definition itself.
    long double z = 0;
    for (int64_t j = 0; j < n; j++)
        z += expl(-beta * g[j]);
    r.w1 = 1 / z;
    r.entropy = 0;
    for (int64_t j = 0; j < n; j++) {
        long double w = expl(-beta * g[j]) / z;
        if (w > 0)
            r.entropy -= w * logl(w);
    }
    free(g);
    return r;
}

static uint64_t mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

static void test_rows_vs_reference(void) {
    struct ats_rng r;
    ats_rng_init(&r, 2385, 1);
    const int64_t sizes[] = {1, 2, 3, 9, 10, 11, 63, 64, 65, 1000, 4097};
    int bad = 0, cases = 0;
    double worst = 0;
    for (int is = 0; is < 11; is++) {
        int64_t n = sizes[is];
        double *s = malloc((size_t)n * sizeof *s), *ws = malloc((size_t)ats_row_stats_workspace(n) * sizeof *ws);
        for (int kind = 0; kind < 4; kind++) {
            for (int64_t j = 0; j < n; j++) {
                switch (kind) {
                case 0: // Gaussian logits
                    s[j] = 3 * ats_rng_normal(&r);
                    break;
                case 1: // heavy ties: a few distinct levels
                    s[j] = (double)(mix((uint64_t)j + 7) % 5);
                    break;
                case 2: // huge and tiny magnitudes
                    s[j] = ldexp(ats_rng_uniform(&r) - 0.5, (int)(mix((uint64_t)j) % 40) - 20);
                    break;
                default: // near-duplicates of the maximum
                    s[j] = 1 - ldexp(1, -40) * (double)(mix((uint64_t)j + 99) % 1000);
                    break;
                }
            }
            const double betas[3] = {0, 0.7, 25};
            for (int ib = 0; ib < 3; ib++) {
                struct ats_row_stats st;
                int rc = ats_row_stats(&st, s, n, betas[ib], 2, ws);
                struct ref_stats ref = reference(s, n, betas[ib]);
                cases++;
                // The fast path sums in double in another order: a few ulps per term, so
                // 1e-12 relative for the sums over up to 4097 terms; beta_hat is one log and
                // one division, identical maxima: 4 ulp.
                double got[5] = {st.beta_hat, st.beta_hat_k10, st.beta_half, st.entropy, st.w1};
                long double want[5] = {n >= 2 ? ref.bh2 : NAN, n >= 10 ? ref.bh10 : NAN, ref.half,
                                       ref.entropy, ref.w1};
                double tol[5] = {4 * DBL_EPSILON, 4 * DBL_EPSILON, 1e-12, 1e-12, 1e-12};
                for (int k = 0; k < 5; k++) {
                    int ok;
                    if (isnan(want[k]) || isinf(want[k]))
                        ok = isnan(want[k]) ? isnan(got[k]) : isinf(got[k]);
                    else {
                        double rel = want[k] != 0 ? (double)fabsl((got[k] - want[k]) / want[k])
                                                  : fabs(got[k]);
                        // The reference's -w log w near w = 1 resolves only about
                        // 64 LDBL_EPSILON = 7e-18 in absolute terms: the entropy of a nearly
                        // one-hot row (1e-34 .. 1e-10 here) is compared to that floor.
                        double atol = k == 3 ? 64 * (double)LDBL_EPSILON : 0;
                        ok = rel <= tol[k] || fabsl(got[k] - want[k]) <= atol;
                        if (fabsl(want[k]) >= 1e-6)
                            worst = fmax(worst, rel);
                    }
                    if (!ok || rc != ATS_STATUS_OK) {
                        bad++;
                        ATS_CHECK_CLOSE(got[k], want[k], 0, tol[k], "n=%lld kind=%d beta=%g stat %d",
                                        (long long)n, kind, betas[ib], k);
                    }
                }
            }
        }
        free(s);
        free(ws);
    }
    ATS_CHECK(bad == 0,
              "%d rows (n 1..4097, Gaussian, tied, multi-scale, near-duplicate): beta_hat, "
              "beta_hat_k10, beta_half, entropy, w1 match the long-double definitions (worst %.2g)",
              cases, worst);
}

static void test_simplex_rows(void) {
    // Self logit 1, the others rho: every gap is 1 - rho (THEORY.md 4.3: log n/(1 - rho)).
    const int64_t ns[3] = {16, 1000, 100000};
    for (int i = 0; i < 3; i++) {
        int64_t n = ns[i];
        double rho = 0.3, *s = malloc((size_t)n * sizeof *s),
               *ws = malloc((size_t)ats_row_stats_workspace(n) * sizeof *ws);
        for (int64_t j = 0; j < n; j++)
            s[j] = j == 5 ? 1 : rho;
        double beta = 2.385;
        struct ats_row_stats st;
        ats_row_stats(&st, s, n, beta, 2, ws);
        double om = 1 - 0.3; // the gap as the row holds it: 1 - 0.3 in double
        ATS_CHECK_CLOSE(st.beta_hat, log((double)n) / om, 0, 4 * DBL_EPSILON,
                        "simplex row n=%lld: beta_hat = log n/(1-rho)", (long long)n);
        ATS_CHECK_CLOSE(st.beta_half, log((double)(n - 1)) / om, 0, 1e-14,
                        "simplex row: beta_half = log(n-1)/(1-rho)");
        // Z = 1 + (n-1) e^{-beta om}; H = log Z + beta om (n-1) e^{-beta om}/Z.
        double e = exp(-beta * om), z = 1 + (double)(n - 1) * e;
        ATS_CHECK_CLOSE(st.w1, 1 / z, 0, 1e-14, "simplex row: w1");
        ATS_CHECK_CLOSE(st.entropy, log(z) + beta * om * (double)(n - 1) * e / z, 0, 1e-14,
                        "simplex row: entropy");
        free(s);
        free(ws);
    }
}

static void test_edges(void) {
    double ws[256], s[4] = {1, 1, 0, -1}; // workspace for rows of up to 128 logits
    struct ats_row_stats st;
    ATS_CHECK(ats_row_stats(&st, s, 4, 1, 2, ws) == ATS_STATUS_OK && isinf(st.beta_hat) &&
                  isinf(st.beta_half) && isnan(st.beta_hat_k10) && st.regime == -1,
              "a tie at the maximum: beta_hat and beta_half infinite; k10 undefined below n=10");
    ATS_CHECK(ats_row_stats(&st, s, 1, 1, 2, ws) == ATS_STATUS_OK && st.w1 == 1 &&
                  st.entropy == 0 && isnan(st.beta_hat) && isnan(st.beta_half),
              "one logit: w1 = 1, H = 0, no half-mass scale (the weight is 1 at every beta)");
    // A gap that overflows: beta = 0 still gives uniform weights.
    double wide[3] = {1e308, -1e308, 0};
    ATS_CHECK(ats_row_stats(&st, wide, 3, 0, 2, ws) == ATS_STATUS_OK && st.w1 == 1.0 / 3 &&
                  fabs(st.entropy - log(3.0)) < 1e-15,
              "beta = 0 with an overflowing gap: w1 = 1/n, H = log n");
    // A second logit a hair below the maximum: exp(-beta D_(2)) rounds to 1, yet the root of
    // sum exp(-beta D) = 1 is set by the other 98 at gap 1: exp(-beta) = (1 - exp(-beta
    // 1e-200)) / 98 ~ 1e-200 beta / 98, beta ~ 459.
    double near[100];
    near[0] = 0;
    near[1] = -1e-200;
    for (int j = 2; j < 100; j++)
        near[j] = -1;
    ats_row_stats(&st, near, 100, 1, 2, ws);
    // The root solves -expm1(-beta 1e-200) = 98 exp(-beta): the fixed point of
    // beta = log 98 - log(-expm1(-beta 1e-200)), a contraction (slope about -1/beta).
    long double root = 400;
    for (int it = 0; it < 100; it++)
        root = logl(98) - logl(-expm1l(-root * 1e-200L));
    ATS_CHECK_CLOSE(st.beta_half, root, 0, 1e-12,
                    "beta_half with a near-tie at the maximum (D_(2) = 1e-200)");
    ATS_CHECK(ats_row_stats(&st, s + 1, 2, 0, 2, ws) == ATS_STATUS_OK && st.beta_half == 0 &&
                  st.w1 == 0.5,
              "two logits: beta_half = 0 (w1 = 1/2 already at beta = 0)");
    double bad[3] = {0, NAN, 1};
    ATS_CHECK(ats_row_stats(&st, bad, 3, 1, 2, ws) == ATS_STATUS_EDOM, "NaN logit refused");
    bad[1] = HUGE_VAL;
    ATS_CHECK(ats_row_stats(&st, bad, 3, 1, 2, ws) == ATS_STATUS_EDOM, "Inf logit refused");
    ATS_CHECK(ats_row_stats(&st, s, 0, 1, 2, ws) == ATS_STATUS_EDOM, "n = 0 refused");
    ATS_CHECK(ats_row_stats(&st, s, 4, -1, 2, ws) == ATS_STATUS_EDOM, "beta < 0 refused");
    ATS_CHECK(ats_row_stats(&st, s, 4, 1, 1, ws) == ATS_STATUS_EDOM, "window <= 1 refused");
    // Regime by ratio (window 2): 10 logits, beta_hat_k10 = log 10 / gap.
    double row[10];
    for (int j = 0; j < 10; j++)
        row[j] = j == 0 ? 1 : 0;
    double bh = log(10.0);
    const double rs[5] = {0.49, 0.51, 1, 1.99, 2.01};
    const int want[5] = {ATS_REGIME_SUBCRITICAL, ATS_REGIME_CRITICAL, ATS_REGIME_CRITICAL,
                         ATS_REGIME_CRITICAL, ATS_REGIME_SUPERCRITICAL};
    for (int i = 0; i < 5; i++) {
        ats_row_stats(&st, row, 10, rs[i] * bh, 2, ws);
        ATS_CHECK(st.regime == want[i] && fabs(st.ratio - rs[i]) < 1e-15,
                  "ratio %g is %s", rs[i], ats_regime_name((enum ats_regime)want[i]));
    }
    ats_row_stats(&st, row, 10, 1, 2, ws);
    struct ats_row_stats again = st;
    ats_row_stats_rebeta(&again, 10, 3, 2, ws);
    struct ats_row_stats direct;
    ats_row_stats(&direct, row, 10, 3, 2, ws);
    ATS_CHECK(again.entropy == direct.entropy && again.w1 == direct.w1 &&
                  again.beta_hat == direct.beta_hat && again.ratio == direct.ratio,
              "rebeta equals a fresh evaluation");
}

// ---------------------------------------------------------------------------
// Families with known laws (THEORY.md 4.3).

enum family { GAUSS, SPHERE4, BOUNDED };

// One row of n logits of a family; the sphere row is <q, k_j> for uniform keys on S^3, drawn
// from its law 1 - 2 Beta(3/2, 3/2) (THEORY.md 3.1).
static void family_row(double *s, int64_t n, enum family f, struct ats_rng *r) {
    for (int64_t j = 0; j < n; j++) {
        if (f == GAUSS)
            s[j] = ats_rng_normal(r);
        else if (f == SPHERE4)
            s[j] = 1 - 2 * ats_rng_beta(r, 1.5, 1.5);
        else
            s[j] = 1 - 1 / -log(ats_rng_uniform_pos(r)); // 1 - 1/E, E ~ Exp(1)
    }
}

struct medians {
    double med, se;
};

static int cmp_d(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

// Median of beta_hat_k10 over m rows and its standard error from order statistics: the
// order statistics at m/2 -+ sqrt(m)/2 bound a +-1 SE interval of the median.
static struct medians family_median(enum family f, int64_t n, int m, uint64_t stream,
                                    double *bh_out) {
    struct ats_rng r;
    double *s = malloc((size_t)n * sizeof *s), *ws = malloc((size_t)ats_row_stats_workspace(n) * sizeof *ws);
    double *bh = malloc((size_t)m * sizeof *bh);
    for (int i = 0; i < m; i++) {
        ats_rng_init(&r, 7, stream * 100000 + (uint64_t)i);
        family_row(s, n, f, &r);
        struct ats_row_stats st;
        ats_row_stats(&st, s, n, 1, 2, ws);
        bh[i] = st.beta_hat_k10;
    }
    if (bh_out)
        memcpy(bh_out, bh, (size_t)m * sizeof *bh);
    qsort(bh, (size_t)m, sizeof *bh, cmp_d);
    int h = (int)ceil(sqrt((double)m) / 2);
    struct medians md = {bh[m / 2], (bh[m / 2 + h] - bh[m / 2 - h]) / 2};
    free(s);
    free(ws);
    free(bh);
    return md;
}

static void test_table_medians(void) {
    // THEORY.md 4.3 (101 rows per n there, so its own SE is about 2x ours at 401 rows): the
    // difference has SE sqrt(1 + 4) SE_ours; accept 4 of those.
    const struct {
        enum family f;
        int64_t n;
        double table;
        const char *name;
    } rows[] = {{GAUSS, 1000, 2.78, "Gaussian"},   {GAUSS, 10000, 3.57, "Gaussian"},
                {SPHERE4, 1000, 42.7, "sphere d=4"}, {SPHERE4, 10000, 208, "sphere d=4"},
                {BOUNDED, 1000, 31.7, "1 - 1/E"},    {BOUNDED, 10000, 62.6, "1 - 1/E"}};
    for (int i = 0; i < 6; i++) {
        struct medians md = family_median(rows[i].f, rows[i].n, 401, (uint64_t)i + 1, NULL);
        double tol = 4 * sqrt(5.0) * md.se;
        ATS_CHECK(fabs(md.med - rows[i].table) <= tol,
                  "%s rows, n = %lld: median beta_hat_k10 %.4g vs THEORY.md %.4g (tolerance %.3g)",
                  rows[i].name, (long long)rows[i].n, md.med, rows[i].table, tol);
    }
}

static void test_fits(void) {
    int long_run = test_long();
    const int64_t ns_short[4] = {300, 1000, 3000, 10000}, ns_long[5] = {1000, 3000, 10000, 30000, 100000};
    const int64_t *ns = long_run ? ns_long : ns_short;
    int nn = long_run ? 5 : 4, m = 101;
    double *n = malloc((size_t)(nn * m) * sizeof *n), *b = malloc((size_t)(nn * m) * sizeof *b);
    struct ats_law_fits fits;
    double bn[8], bb[8];

    // Simplex rows: beta_hat = log n/(1 - rho) exactly, so the log law is exact and the
    // polylog exponent is exactly 1 (log beta_hat = log log n - log(1 - rho)).
    for (int i = 0; i < nn; i++)
        for (int k = 0; k < m; k++) {
            n[i * m + k] = (double)ns[i];
            b[i * m + k] = log((double)ns[i]) / 0.7;
        }
    ATS_CHECK(ats_fit_laws(&fits, bn, bb, n, b, nn * m) == ATS_STATUS_OK && fits.buckets == nn,
              "simplex rows fitted over %d buckets", nn);
    ATS_CHECK_CLOSE(fits.log_law.slope, 1 / 0.7, 0, 1e-12, "simplex: log law slope 1/(1-rho)");
    ATS_CHECK_CLOSE(fits.polylog.slope, 1, 0, 1e-12, "simplex: polylog xi = 1");
    ATS_CHECK(fits.log_law.r2 > 1 - 1e-12, "simplex: R^2 of the log law is 1");
    ATS_CHECK(fits.log_law.log_rmse < 1e-12 && fits.polylog.log_rmse < 1e-12,
              "simplex: log and polylog laws exact (log rmse %.2g, %.2g), power not (%.2g)",
              fits.log_law.log_rmse, fits.polylog.log_rmse, fits.power.log_rmse);

    // Ranking (THEORY.md 4.5) on the simplex law beta_hat = log n/0.7: critical (log n/log L)
    // and log-n (log n) keep beta m/beta_hat constant, slope 0 up to rounding; a static
    // policy leaves the slope of -log beta_hat, negative. ratio at the largest n for
    // critical: beta 0.7/log L with the default L = 4096.
    struct ats_policy_params pp = ats_policy_params_default();
    struct ats_policy_rank rk;
    int64_t crit = ats_policy_find("critical"), logn = ats_policy_find("log-n"),
            gptoss = ats_policy_find("gpt-oss");
    ATS_CHECK(ats_rank_policy(&rk, crit, &pp, &fits, bn, fits.buckets, 1.5) == ATS_STATUS_OK &&
                  fabs(rk.slope) < 1e-12,
              "critical policy on log-law rows: slope %.2g ~ 0", rk.slope);
    ATS_CHECK_CLOSE(rk.ratio_at_max, 1.5 * 0.7 / log(4096.0), 0, 1e-12,
                    "critical policy: ratio at the largest n");
    ats_rank_policy(&rk, logn, &pp, &fits, bn, fits.buckets, 1.5);
    ATS_CHECK(fabs(rk.slope) < 1e-12, "log-n policy: slope %.2g ~ 0", rk.slope);
    ats_rank_policy(&rk, gptoss, &pp, &fits, bn, fits.buckets, 1.5);
    ATS_CHECK(rk.slope < -0.05, "a static policy drifts subcritical as n grows (slope %.3f)",
              rk.slope);
    ATS_CHECK(ats_rank_policy(&rk, crit, &pp, &fits, bn, 2, 1.5) == ATS_STATUS_EDOM &&
                  ats_rank_policy(&rk, crit, &pp, &fits, bn, fits.buckets, 0) == ATS_STATUS_EDOM,
              "ranking refuses two lengths or beta = 0");

    // Sphere rows, d = 4: beta_hat ~ n^(2/(d-1)), the power law with e = 2/3. THEORY.md 4.3's
    // medians give a local slope of 0.68 between 1e3 and 1e6; 101 rows per length and a
    // median's 10% scatter give a slope error of about 0.05 over one and a half decades.
    for (int i = 0; i < nn; i++)
        family_median(SPHERE4, ns[i], m, 50 + (uint64_t)i, b + i * m);
    for (int i = 0; i < nn; i++)
        for (int k = 0; k < m; k++)
            n[i * m + k] = (double)ns[i];
    ats_fit_laws(&fits, bn, bb, n, b, nn * m);
    ATS_CHECK(fabs(fits.power.slope - 2.0 / 3.0) < 0.12 && strcmp(fits.best, "power") == 0,
              "sphere d=4 rows: power law best, exponent %.3f ~ 2/3 (alpha = %.2f ~ 3)",
              fits.power.slope, 2 / fits.power.slope);

    // Gaussian rows: beta_hat ~ sqrt(2 log n), polylog with xi -> 1/2; at these n the
    // medians of THEORY.md 4.3 give a local xi of 0.69 (finite-n), so accept [0.4, 0.9].
    for (int i = 0; i < nn; i++)
        family_median(GAUSS, ns[i], m, 80 + (uint64_t)i, b + i * m);
    ats_fit_laws(&fits, bn, bb, n, b, nn * m);
    ATS_CHECK(fits.polylog.slope > 0.4 && fits.polylog.slope < 0.9 && fits.power.slope < 0.15,
              "Gaussian rows: polylog xi %.3f in [0.4, 0.9], power exponent %.3f near 0",
              fits.polylog.slope, fits.power.slope);

    // Bounded rows 1 - 1/E (THEORY.md 4.3): beta_hat ~ (log n)^2, polylog xi -> 2. The
    // table's medians give local exponents 2.4 (1e3..1e4) and 2.0 (1e4..1e5): accept
    // [1.5, 2.8] over these lengths.
    for (int i = 0; i < nn; i++)
        family_median(BOUNDED, ns[i], m, 120 + (uint64_t)i, b + i * m);
    ats_fit_laws(&fits, bn, bb, n, b, nn * m);
    ATS_CHECK(fits.polylog.slope > 1.5 && fits.polylog.slope < 2.8,
              "1 - 1/E rows: polylog xi %.3f ~ 2 ((log n)^2 law)", fits.polylog.slope);

    // Errors: too few lengths.
    ATS_CHECK(ats_fit_laws(&fits, NULL, NULL, n, b, 2 * m) == ATS_STATUS_EDOM,
              "two lengths are not enough to fit");
    free(n);
    free(b);
}

int main(void) {
    test_rows_vs_reference();
    test_simplex_rows();
    test_edges();
    test_table_medians();
    test_fits();
    return ats_test_summary();
}
