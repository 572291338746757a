/*
 * test_heat.c: the backward heat equation Monte Carlo (src/experiments/heat.h, THEORY.md 3.6)
 * against theory.
 *
 * References (no number here comes from the program's own output):
 *   - the vMF(kappa) sampler on S^2: w = <v, e_3> has density kappa e^{kappa w}/(2 sinh kappa)
 *     on [-1, 1], so E[w] = A_3(kappa) = coth kappa - 1/kappa, E[w^2] = 1 - 2 A_3(kappa)/kappa
 *     (integration by parts: E[1 - w^2] = 2 E[w]/kappa), and by the uniform azimuth
 *     E[v_1] = E[v_1 v_2] = 0, E[v_1^2] = E[1 - w^2]/2 = A_3(kappa)/kappa; |v| = 1.
 *   - the n = infinity map x -> t/|t|, t = beta x + kappa0 e_3. For x = (s cos phi, s sin phi,
 *     w), |t|^2 = beta^2 + 2 beta kappa0 w + kappa0^2 and |P_perp t|^2 = beta^2 (1 - w^2), so the
 *     per-query statistics depend on w only:
 *         before(w) = (1 - w^2)/2,  after(w) = (1 - w^2)/2 beta^2/|t|^2,
 *         drop(w)   = (1 - w^2)/2 (2 beta kappa0 w + kappa0^2)/|t|^2,
 *     and their exact expectations (and variances, for the exact standard errors) are
 *     one-dimensional integrals over the law of w, computed here in long double by composite
 *     Simpson over u = 1 - w in [0, 2] with density kappa e^{-kappa u}/(1 - e^{-2 kappa}).
 *     2^18 panels (h = 2^-17): the fourth-derivative error bound (2/180) h^4 max|f''''| with
 *     f'''' ~ kappa^4 f gives a relative error below 4e-11 for kappa <= 1000 (1e-15 at
 *     kappa = 50), far below every tolerance it meets.
 *   - the first-order law (THEORY.md 3.6) and its corrections: with eps = kappa0/beta,
 *     (2 eps w + eps^2)/(1 + 2 eps w + eps^2) = 2 eps w + eps^2 - 4 eps^2 w^2 - 4 eps^3 w
 *     + 8 eps^3 w^3 + O(eps^4), and u = 1 - w has the moments of Exp(kappa0) up to e^{-2 kappa0}
 *     (E u^k = k!/kappa0^k), so with 1 - w^2 = u (2 - u):
 *         E[drop] (beta/2) = 1 - 3/kappa0 - (3/2) eps + R,
 *         R = 3/kappa0^2 + (19/2) eps/kappa0 + 2 eps^2 + O((1/kappa0 + eps)^3).
 *     Checked on the exact integral (no Monte Carlo): |R - R_2| <= 10 (1/kappa0 + eps)^3 for
 *     the second-order R_2 above. The third-order coefficients come from the next terms of the
 *     same expansions (moments up to 4!/kappa0^4, eps^4 terms up to 16 w^4); at the points
 *     tested the remainder is 2.3 to 6 times (1/kappa0 + eps)^3, so 10 bounds it with margin.
 *     At kappa0 = 50, beta = 1000 the law gives 0.879 of 2/beta, THEORY.md's 0.017850 against
 *     0.018 for the variance after.
 *
 * Monte Carlo tolerances (THEORY.md 1): 4 standard errors. The drop's standard error comes
 * from the same samples (the result's drop_*_se); the variances' from the exact law.
 *   - the finite-n drop against the exact n = infinity expectation at beta = 200, kappa0 = 50,
 *     5000 keys, 2000 queries: about n kappa0/(2 beta) = 625 keys sit in the 1/sqrt(beta)
 *     neighbourhood that sets y. Finite n adds the noise of y/|y| to the after-variance: per
 *     tangent coordinate about 1/(|t| n_eff) with n_eff = n kappa0 (2 beta + kappa0)/
 *     (beta + kappa0)^2 (the vMF normalisers' ratio), ~2e-6 here against a standard error of
 *     ~1.5e-4; that allowance is added to the 4 standard errors.
 * Also: the result's fields are consistent (drop = before - after bit for bit), the run is
 * deterministic, the limit queries come first on the stream (finite_queries = 0 leaves them
 * unchanged), parameter errors (ATS_STATUS_EDOM) and cancellation (ATS_STATUS_ECANCEL).
 *
 * Run: make build/tests/test_heat && build/tests/test_heat (about 2 s)
 */
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attnscale.h"
#include "experiments/heat.h"
#include "test.h"

// ---------------------------------------------------------------------------
// The law of w = <x, e_3> under vMF(kappa) on S^2, and integrals over it.

enum { PANELS = 1 << 18 };

// What to integrate against the law of w.
enum stat { BEFORE, AFTER, DROP };

static long double stat_of(enum stat which, long double w, long double beta, long double k0) {
    long double half = (1 - w * w) / 2, t2 = beta * beta + 2 * beta * k0 * w + k0 * k0;
    switch (which) {
    case BEFORE:
        return half;
    case AFTER:
        return half * beta * beta / t2;
    default:
        return half * (2 * beta * k0 * w + k0 * k0) / t2;
    }
}

// E[g(w)^p] for p = 1, 2 under vMF(kappa), by composite Simpson over u = 1 - w in [0, 2].
static long double expect(enum stat which, int p, long double beta, long double kappa) {
    const long double h = 2.0L / PANELS, norm = kappa / (1 - expl(-2 * kappa));
    long double sum = 0;
    for (int64_t i = 0; i <= PANELS; i++) {
        long double u = h * (long double)i, w = 1 - u;
        long double g = stat_of(which, w, beta, kappa), f = norm * expl(-kappa * u);
        long double v = (p == 1 ? g : g * g) * f;
        sum += (i == 0 || i == PANELS ? 1 : i % 2 ? 4 : 2) * v;
    }
    return sum * h / 3;
}

static long double a3(long double kappa) {
    return coshl(kappa) / sinhl(kappa) - 1 / kappa;
}

// ---------------------------------------------------------------------------
// Mean and standard error of m values (long double, two-pass), for the sampler checks.

static void mean_se(long double *mean, long double *se, const double *x, int64_t m) {
    long double s = 0, v = 0;
    for (int64_t i = 0; i < m; i++)
        s += x[i];
    *mean = s / m;
    for (int64_t i = 0; i < m; i++)
        v += (x[i] - *mean) * (x[i] - *mean);
    *se = sqrtl(v / (m - 1) / m);
}

static void test_sampler(double kappa, uint64_t stream) {
    enum { M = 400000 };
    double *w = malloc(M * sizeof *w), *w2 = malloc(M * sizeof *w2);
    double *v1 = malloc(M * sizeof *v1), *v11 = malloc(M * sizeof *v11);
    double *v12 = malloc(M * sizeof *v12);
    if (!w || !w2 || !v1 || !v11 || !v12) {
        ATS_CHECK(0, "out of memory");
        return;
    }
    struct ats_rng r;
    ats_rng_init(&r, 20240611, stream);
    double worst_norm = 0;
    for (int64_t i = 0; i < M; i++) {
        double v[3];
        ats_heat_vmf3(v, kappa, &r);
        w[i] = v[2];
        w2[i] = v[2] * v[2];
        v1[i] = v[0];
        v11[i] = v[0] * v[0];
        v12[i] = v[0] * v[1];
        double nrm = sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
        worst_norm = fmax(worst_norm, fabs(nrm - 1));
    }
    long double A = a3(kappa), m, se;
    // 4 standard errors (THEORY.md 1), the SE from the same draws.
    mean_se(&m, &se, w, M);
    ATS_CHECK_CLOSE(m, A, 4 * se, 0, "vMF(%g): E[w] = coth kappa - 1/kappa (4 SE = %.2Lg)", kappa,
                    4 * se);
    mean_se(&m, &se, w2, M);
    ATS_CHECK_CLOSE(m, 1 - 2 * A / kappa, 4 * se, 0, "vMF(%g): E[w^2] = 1 - 2 A_3/kappa", kappa);
    mean_se(&m, &se, v1, M);
    ATS_CHECK_CLOSE(m, 0, 4 * se, 0, "vMF(%g): E[v_1] = 0", kappa);
    mean_se(&m, &se, v11, M);
    ATS_CHECK_CLOSE(m, A / kappa, 4 * se, 0, "vMF(%g): E[v_1^2] = A_3/kappa", kappa);
    mean_se(&m, &se, v12, M);
    ATS_CHECK_CLOSE(m, 0, 4 * se, 0, "vMF(%g): E[v_1 v_2] = 0", kappa);
    // |v| = 1 up to the rounding of s = sqrt(1 - w^2), cos, sin and the norm: a few ulps
    // (1 - w^2 cancels near the pole, but only in s, whose square still adds up with w^2).
    ATS_CHECK(worst_norm <= 8 * 2.220446049250313e-16, "vMF(%g): |v| = 1 within 8 ulp (worst %.3g)",
              kappa, worst_norm);
    free(w);
    free(w2);
    free(v1);
    free(v11);
    free(v12);
}

// ---------------------------------------------------------------------------
// The n = infinity map against its exact expectations.

static void test_limit(double kappa0, double beta) {
    struct ats_heat_params p = ats_heat_params_default();
    p.kappa0 = kappa0;
    p.queries = 200000;
    p.finite_queries = 0;
    p.seed = 7;
    struct ats_heat_result r;
    int rc = ats_heat_run(&r, &p, beta, 11 + (uint64_t)beta); // independent draws per beta
    if (!ATS_CHECK(rc == ATS_STATUS_OK, "heat kappa0 = %g beta = %g runs", kappa0, beta))
        return;
    long double eb = expect(BEFORE, 1, beta, kappa0), ea = expect(AFTER, 1, beta, kappa0);
    long double ed = expect(DROP, 1, beta, kappa0);
    long double sb = sqrtl((expect(BEFORE, 2, beta, kappa0) - eb * eb) / p.queries);
    long double sa = sqrtl((expect(AFTER, 2, beta, kappa0) - ea * ea) / p.queries);
    long double sd = sqrtl((expect(DROP, 2, beta, kappa0) - ed * ed) / p.queries);
    // The quadrature itself: E[before] = A_3(kappa0)/kappa0 in closed form; Simpson's error
    // bound (header) is below 1e-13 relative.
    ATS_CHECK_CLOSE(eb, a3(kappa0) / kappa0, 0, 1e-12,
                    "quadrature: E[(1 - w^2)/2] = A_3/kappa0 at kappa0 = %g", kappa0);
    ATS_CHECK_CLOSE(r.var_before, eb, 4 * sb, 0,
                    "kappa0 = %g beta = %g: var_before within 4 exact SE", kappa0, beta);
    ATS_CHECK_CLOSE(r.var_after_limit, ea, 4 * sa, 0,
                    "kappa0 = %g beta = %g: var_after_limit within 4 exact SE", kappa0, beta);
    ATS_CHECK_CLOSE(r.drop_limit, ed, 4 * r.drop_limit_se, 0,
                    "kappa0 = %g beta = %g: drop_limit = E[drop] (quadrature %.9Lg) within 4 SE",
                    kappa0, beta, ed);
    // The sample SE against the exact one: the relative error of a sample sd over m draws is
    // about sqrt((kurtosis - 1)/(4 m)); the drop is close to (1 - w^2) times a constant, an
    // Exp-like variable (kurtosis ~9), so ~3e-3 at m = 2e5: 5% is 15 of those.
    ATS_CHECK_CLOSE(r.drop_limit_se, sd, 0, 0.05, "kappa0 = %g beta = %g: drop SE vs exact", kappa0,
                    beta);
    ATS_CHECK(r.drop_limit == r.var_before - r.var_after_limit,
              "drop_limit = var_before - var_after_limit exactly");
    ATS_CHECK(isnan(r.var_before_n_keys) && isnan(r.drop_n_keys) && isnan(r.drop_n_keys_se),
              "no finite queries: the n-keys fields are NAN");
}

// The first-order law and its second-order corrections on the exact integral (no Monte Carlo).
static void test_first_order(double kappa0, double beta) {
    long double ed = expect(DROP, 1, beta, kappa0), k = kappa0;
    long double eps = k / beta, x = 1 / k + eps;
    long double R = ed * beta / 2 - (1 - 3 / k - 1.5L * eps);
    long double R2 = 3 / (k * k) + 9.5L * eps / k + 2 * eps * eps, tol = 10 * x * x * x;
    ATS_CHECK(fabsl(R - R2) <= tol,
              "kappa0 = %g beta = %g: E[drop] beta/2 = %.6Lg = 1 - 3/kappa0 - 1.5 eps + R, "
              "R = %.4Lg against the second order %.4Lg within 10 (1/kappa0 + eps)^3 = %.2Lg",
              kappa0, beta, ed * beta / 2, R, R2, tol);
}

// ---------------------------------------------------------------------------
// n keys against the limit.

static void test_finite(void) {
    const double kappa0 = 50, beta = 200;
    struct ats_heat_params p = ats_heat_params_default();
    p.kappa0 = kappa0;
    p.queries = 1000;
    p.finite_queries = 2000;
    p.n_keys = 5000;
    p.seed = 3;
    struct ats_heat_result r;
    int rc = ats_heat_run(&r, &p, beta, 5);
    if (!ATS_CHECK(rc == ATS_STATUS_OK, "heat with %lld keys runs", (long long)p.n_keys))
        return;
    long double ed = expect(DROP, 1, beta, kappa0), eb = expect(BEFORE, 1, beta, kappa0);
    long double sb = sqrtl((expect(BEFORE, 2, beta, kappa0) - eb * eb) / p.finite_queries);
    double n = (double)p.n_keys, t = beta + kappa0;
    double n_eff = n * kappa0 * (2 * beta + kappa0) / (t * t), bias = 1 / (t * n_eff);
    ATS_CHECK_CLOSE(
        r.drop_n_keys, ed, 4 * r.drop_n_keys_se + bias, 0,
        "%lld keys, beta = %g: drop_n_keys = E[drop at n = inf] within 4 SE (SE %.2g) + "
        "%.2g (finite-n noise)",
        (long long)p.n_keys, beta, r.drop_n_keys_se, bias);
    ATS_CHECK_CLOSE(r.var_before_n_keys, eb, 4 * sb, 0,
                    "%lld keys: var_before_n_keys within 4 exact SE", (long long)p.n_keys);
    ATS_CHECK(r.drop_n_keys == r.var_before_n_keys - r.var_after_n_keys,
              "drop_n_keys = var_before_n_keys - var_after_n_keys exactly");
    ATS_CHECK(r.drop_n_keys_se > 0 && isfinite(r.drop_n_keys_se), "drop_n_keys_se > 0");

    // Determinism, and the limit queries first on the stream.
    struct ats_heat_result r2, r3;
    ats_heat_run(&r2, &p, beta, 5);
    ATS_CHECK(memcmp(&r, &r2, sizeof r) == 0, "same parameters and stream: identical bits");
    p.finite_queries = 0;
    ats_heat_run(&r3, &p, beta, 5);
    ATS_CHECK(r3.var_before == r.var_before && r3.var_after_limit == r.var_after_limit &&
                  r3.drop_limit_se == r.drop_limit_se,
              "the limit queries come first: finite_queries does not change them");
    ats_heat_run(&r3, &p, beta, 6);
    ATS_CHECK(r3.var_before != r.var_before, "another stream: other draws");
}

static void test_errors(void) {
    struct ats_heat_params p = ats_heat_params_default();
    p.queries = 10;
    p.finite_queries = 2;
    p.n_keys = 10;
    struct ats_heat_result r;
    ATS_CHECK(ats_heat_run(&r, &p, 0, 1) == ATS_STATUS_EDOM, "beta = 0: EDOM");
    ATS_CHECK(ats_heat_run(&r, &p, INFINITY, 1) == ATS_STATUS_EDOM, "beta = inf: EDOM");
    ATS_CHECK(ats_heat_run(&r, &p, NAN, 1) == ATS_STATUS_EDOM, "beta = nan: EDOM");
    struct ats_heat_params q = p;
    q.kappa0 = -1;
    ATS_CHECK(ats_heat_run(&r, &q, 100, 1) == ATS_STATUS_EDOM, "kappa0 < 0: EDOM");
    q = p;
    q.kappa0 = NAN;
    ATS_CHECK(ats_heat_run(&r, &q, 100, 1) == ATS_STATUS_EDOM, "kappa0 = nan: EDOM");
    q = p;
    q.queries = 0;
    ATS_CHECK(ats_heat_run(&r, &q, 100, 1) == ATS_STATUS_EDOM, "queries = 0: EDOM");
    q = p;
    q.finite_queries = -1;
    ATS_CHECK(ats_heat_run(&r, &q, 100, 1) == ATS_STATUS_EDOM, "finite_queries < 0: EDOM");
    q = p;
    q.n_keys = 0;
    ATS_CHECK(ats_heat_run(&r, &q, 100, 1) == ATS_STATUS_EDOM, "n_keys = 0: EDOM");
    ATS_CHECK(strstr(ats_last_error(), "n_keys") != NULL, "the message names n_keys ('%s')",
              ats_last_error());
    volatile sig_atomic_t flag = 1;
    q = p;
    q.cancel = &flag;
    ATS_CHECK(ats_heat_run(&r, &q, 100, 1) == ATS_STATUS_ECANCEL, "cancel flag set: ECANCEL");
    flag = 0;
    ATS_CHECK(ats_heat_run(&r, &q, 100, 1) == ATS_STATUS_OK, "cancel flag clear: runs");
    struct ats_heat_params d = ats_heat_params_default();
    ATS_CHECK(d.kappa0 == 50 && d.queries == 4000 && d.finite_queries == 100 && d.n_keys == 20000 &&
                  d.seed == 1 && d.cancel == NULL,
              "defaults: reproduce --quick's heat parameters");
}

int main(void) {
    test_sampler(50, 1);
    test_sampler(2.385, 2);
    test_sampler(700, 3); // e^{-2 kappa} underflows to 0: w = 1 + log(u)/kappa, still exact
    test_limit(50, 200);
    test_limit(50, 1000);
    test_limit(50, 20000);
    test_limit(2.385, 10);
    test_first_order(50, 1000);
    test_first_order(50, 5000);
    test_first_order(50, 20000);
    test_first_order(200, 20000);
    test_first_order(200, 100000);
    test_first_order(20, 2000);
    test_first_order(1000, 1e6);
    test_finite();
    test_errors();
    return ats_test_summary();
}
