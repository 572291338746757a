/*
 * test_ref.c: tests of the long-double reference layer (src/kernels/ref/, THEORY.md 2.1, 2.4,
 * 2.5, 2.10): softmax and forward-pass invariants, eta from the Jacobian blocks against eta
 * from finite differences on random tokens, and the THEORY.md 2.10 test vectors.
 *
 *   make build/tests/test_ref && ./build/tests/test_ref
 *
 * Tokens come from a small xorshift64* + Box-Muller generator defined here, so this test does
 * not depend on src/rng. Tolerances are written in units of LDBL_EPSILON (E below) where they
 * come from rounding, so they hold where long double is double; each has its reason beside it.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/internal.h"
#include "kernels/ref/ref.h"
#include "test.h"

#define E LDBL_EPSILON

// ----------------------------------------------------------------------------
// Helpers

struct gen {
    uint64_t s;
};

// xorshift64* (Vigna 2016): enough for test inputs, not for statistics.
static uint64_t gen_u64(struct gen *g) {
    g->s ^= g->s >> 12;
    g->s ^= g->s << 25;
    g->s ^= g->s >> 27;
    return g->s * UINT64_C(2685821657736338717);
}

// Uniform on (0, 1): 53 random bits, centred in their cell so 0 never occurs.
static long double gen_u01(struct gen *g) {
    return ((long double)(gen_u64(g) >> 11) + 0.5L) * 0x1p-53L;
}

static long double gen_uniform(struct gen *g, long double lo, long double hi) {
    return lo + (hi - lo) * gen_u01(g);
}

static int64_t gen_int(struct gen *g, int64_t lo, int64_t hi) {
    return lo + (int64_t)(gen_u64(g) % (uint64_t)(hi - lo + 1));
}

// Box-Muller, one normal per call.
static long double gen_normal(struct gen *g) {
    long double u1 = gen_u01(g), u2 = gen_u01(g);
    return sqrtl(-2 * logl(u1)) * cosl(2 * 3.14159265358979323846264338327950288L * u2);
}

// Non-simplex tokens: x_i = s_i (sqrt(c) z_0 + sqrt(1 - c) z_i), z standard normal, a random
// shared fraction c in [0, 0.9] (so attention is not uniform) and norms s_i in [0.3, 3] (so the
// 1/r_k factors of the Jacobian are exercised).
static void gen_tokens(long double *x, int64_t n, int64_t d, struct gen *g) {
    long double c = gen_uniform(g, 0, 0.9L);
    long double z0[64];
    ATS_ASSERT(d <= 64);
    for (int64_t l = 0; l < d; l++)
        z0[l] = gen_normal(g);
    for (int64_t i = 0; i < n; i++) {
        long double s = gen_uniform(g, 0.3L, 3);
        for (int64_t l = 0; l < d; l++)
            x[i * d + l] = s * (sqrtl(c) * z0[l] + sqrtl(1 - c) * gen_normal(g));
    }
}

static long double cosine(const long double *a, const long double *b, int64_t d) {
    long double ab = 0, aa = 0, bb = 0;
    for (int64_t l = 0; l < d; l++) {
        ab += a[l] * b[l];
        aa += a[l] * a[l];
        bb += b[l] * b[l];
    }
    return ab / sqrtl(aa * bb);
}

// Value equality, element by element (memcmp would also compare the padding bytes of an
// 80-bit long double).
static int same_ld(const long double *a, const long double *b, int64_t count) {
    for (int64_t t = 0; t < count; t++)
        if (a[t] != b[t])
            return 0;
    return 1;
}

static long double *alloc_ld(int64_t count) {
    long double *p = malloc((size_t)count * sizeof *p);
    if (!p) {
        fprintf(stderr, "test_ref: out of memory\n");
        exit(2);
    }
    return p;
}

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

// ----------------------------------------------------------------------------
// Softmax and forward-pass invariants

static void test_softmax_rows(void) {
    struct gen g = {UINT64_C(0x9e3779b97f4a7c15)};
    const int64_t n = 7, d = 5;
    long double x[7 * 5], p[7], G[7 * 7], y[7 * 5], r[7], q[7];
    long double *ws = alloc_ld(ats_ref_layer_ws_len(n, d));
    gen_tokens(x, n, d, &g);
    const long double betas[3] = {0, 2.385L, 1e4L};
    long double worst = 0;
    int same = 1;
    ATS_CHECK(ats_ref_normalize(y, r, x, n, d) == ATS_STATUS_OK, "normalize random tokens");
    ats_ref_gram(G, y, n, d);
    for (int b = 0; b < 3; b++) {
        for (int64_t i = 0; i < n; i++) {
            ATS_CHECK(ats_ref_attn_row(p, x, n, d, i, betas[b], ws) == ATS_STATUS_OK,
                      "attn_row beta %Lg row %lld", betas[b], (long long)i);
            long double s = 0;
            for (int64_t j = 0; j < n; j++)
                s += p[j];
            if (fabsl(s - 1) > worst)
                worst = fabsl(s - 1);
            ats_ref_softmax(q, G + i * n, n, betas[b]);
            same &= same_ld(p, q, n);
        }
    }
    // Each p_j = w_j / z carries ~(n + 2) roundings (exp, n-term sum, division) and summing n
    // of them adds n more: |sum - 1| <= (2n + 2) E.
    ATS_CHECK_CLOSE(worst, 0, (2 * n + 2) * E, 0, "softmax rows sum to 1 (beta 0, 2.385, 1e4)");
    ATS_CHECK(same, "attn_row equals softmax(beta G_i.) bit for bit (same dot loop)");

    // beta = 0: uniform weights, exactly representable sum of equal terms.
    ats_ref_attn_row(p, x, n, d, 3, 0, ws);
    ATS_CHECK_CLOSE(p[5], 1.0L / 7, 0, 2 * E, "beta = 0 gives 1/n (2 roundings)");

    // Two identical tokens at huge beta share the weight equally; no overflow at beta 1e6.
    long double x2[3 * 2] = {1, 2, 2, 4, -1, 0.5L};
    ATS_CHECK(ats_ref_attn_row(p, x2, 3, 2, 0, 1e6L, ws) == ATS_STATUS_OK, "attn_row beta 1e6");
    ATS_CHECK_CLOSE(p[0], 0.5L, 0, 4 * E, "tied tokens get 1/2 each at beta 1e6 (few roundings)");
    ATS_CHECK_CLOSE(p[1], 0.5L, 0, 4 * E, "tied tokens get 1/2 each at beta 1e6 (few roundings)");
    ATS_CHECK(p[2] == 0, "far token underflows to exactly 0 at beta 1e6");
    free(ws);
}

static void test_forward_small(void) {
    long double ws[64], xo[8];
    // n = 1: A = [1], x' = y + alpha x.
    long double x1[3] = {3, -4, 12}; // |x| = 13
    ATS_CHECK(ats_ref_layer_forward(xo, x1, 1, 3, 2.385L, 0.7L, ws) == ATS_STATUS_OK, "n = 1");
    long double e1 = 0;
    for (int l = 0; l < 3; l++)
        e1 = fmaxl(e1, fabsl(xo[l] - (x1[l] / 13 + 0.7L * x1[l])));
    // y_l and alpha x_l each have a few roundings, |x'_l| <= 8.5.
    ATS_CHECK_CLOSE(e1, 0, 8 * 9 * E, 0, "n = 1: x' = y + alpha x");

    // n = 2 orthogonal tokens: A_00 = e^beta / (e^beta + 1), x0' = A_00 y_0 + A_01 y_1.
    long double x2[2 * 2] = {2.5L, 0, 0, 0.25L};
    const long double beta = 2.385L, a = expl(beta) / (expl(beta) + 1);
    ATS_CHECK(ats_ref_layer_forward(xo, x2, 2, 2, beta, 0, ws) == ATS_STATUS_OK, "n = 2");
    // a from a handful of correctly rounded operations.
    ATS_CHECK_CLOSE(xo[0], a, 0, 8 * E, "n = 2 orthogonal: x0'_0 = e^b/(e^b+1)");
    ATS_CHECK_CLOSE(xo[1], 1 - a, 0, 8 * E, "n = 2 orthogonal: x0'_1 = 1/(e^b+1)");
}

static void test_forward_invariants(void) {
    struct gen g = {UINT64_C(0x243f6a8885a308d3)};
    const int64_t n = 9, d = 6;
    long double x[9 * 6], xs[9 * 6], o1[9 * 6], o2[9 * 6];
    long double *ws = alloc_ld(ats_ref_layer_ws_len(n, d));
    gen_tokens(x, n, d, &g);
    const long double beta = 4.385L, alpha = 0.65L;

    // Permutation equivariance: forward(P x) = P forward(x).
    const int64_t perm[9] = {4, 0, 8, 2, 7, 1, 3, 6, 5};
    for (int64_t t = 0; t < n; t++)
        memcpy(xs + t * d, x + perm[t] * d, (size_t)d * sizeof *x);
    ats_ref_layer_forward(o1, x, n, d, beta, alpha, ws);
    ats_ref_layer_forward(o2, xs, n, d, beta, alpha, ws);
    long double e = 0, omax = 0;
    for (int64_t t = 0; t < n; t++)
        for (int64_t l = 0; l < d; l++) {
            e = fmaxl(e, fabsl(o2[t * d + l] - o1[perm[t] * d + l]));
            omax = fmaxl(omax, fabsl(o1[t * d + l]));
        }
    // Reordering the n-term sums (softmax denominator and sum_j p_j y_j) changes each output by
    // at most ~2n roundings of terms bounded by max|x'|.
    ATS_CHECK_CLOSE(e, 0, 2 * n * E * omax, 0, "permutation equivariance (max abs diff)");

    // Row subset = the same rows of the full pass, bit for bit.
    const int64_t rows[3] = {7, 0, 7};
    long double sub[3 * 6];
    ATS_CHECK(ats_ref_layer_rows(sub, x, rows, 3, n, d, beta, alpha, ws) == ATS_STATUS_OK,
              "layer_rows");
    int same = 1;
    for (int64_t t = 0; t < 3; t++)
        same &= same_ld(sub + t * d, o1 + rows[t] * d, d);
    ATS_CHECK(same, "layer_rows equals layer_forward rows bit for bit");

    // Scale invariance of the pre-LN attention part (alpha = 0): x -> c x.
    ats_ref_layer_forward(o1, x, n, d, beta, 0, ws);
    for (int64_t t = 0; t < n * d; t++)
        xs[t] = 0x1p-40L * x[t];
    ats_ref_layer_forward(o2, xs, n, d, beta, 0, ws);
    ATS_CHECK(same_ld(o1, o2, n * d),
              "alpha = 0: x -> 2^-40 x leaves the output unchanged bit for bit (exact scaling)");
    for (int64_t t = 0; t < n * d; t++)
        xs[t] = 2.385L * x[t];
    ats_ref_layer_forward(o2, xs, n, d, beta, 0, ws);
    e = 0;
    for (int64_t t = 0; t < n * d; t++)
        e = fmaxl(e, fabsl(o2[t] - o1[t]));
    // y_i changes by a few ulp, so scores by ~2d E, logits by beta 2d E, weights relatively by
    // twice that, and |x'| <= 1: bound 4 (beta + 1) d E.
    ATS_CHECK_CLOSE(e, 0, 4 * (beta + 1) * (long double)d * E, 0,
                    "alpha = 0: x -> 2.385 x leaves the output unchanged (max abs diff)");
    free(ws);
}

static void test_forward_extreme_norms(void) {
    // Tokens at the ends of the exponent range: the scaled norm keeps them exact, so the
    // output equals that of the same tokens at scale 1 bit for bit (3-4-5 rows: exact norms).
    long double ws[64], ref[3 * 2], out[3 * 2];
    const long double base[3 * 2] = {3, 4, -4, 3, -6, -8};
    long double x[3 * 2];
    ats_ref_layer_forward(ref, base, 3, 2, 2.385L, 0, ws);
    const long double scales[2] = {LDBL_TRUE_MIN, ldexpl(1, LDBL_MAX_EXP - 4)};
    const char *names[2] = {"subnormal (smallest long double)", "near LDBL_MAX"};
    for (int s = 0; s < 2; s++) {
        for (int t = 0; t < 6; t++)
            x[t] = base[t] * scales[s];
        int rc = ats_ref_layer_forward(out, x, 3, 2, 2.385L, 0, ws);
        ATS_CHECK(rc == ATS_STATUS_OK && same_ld(out, ref, 6),
                  "tokens %s: same output as at scale 1, bit for bit", names[s]);
    }
}

static void test_errors(void) {
    long double ws[64], xo[8], p[4];
    long double xz[2 * 2] = {1, 2, 0, 0};
    long double x[2 * 2] = {1, 2, 3, -1};
    ATS_CHECK(ats_ref_layer_forward(xo, xz, 2, 2, 1, 0, ws) == ATS_STATUS_EDOM,
              "zero-norm token -> EDOM");
    long double xn[2 * 2] = {1, NAN, 3, -1};
    ATS_CHECK(ats_ref_layer_forward(xo, xn, 2, 2, 1, 0, ws) == ATS_STATUS_EDOM,
              "NaN token -> EDOM");
    long double xi[2 * 2] = {1, 2, INFINITY, -1};
    ATS_CHECK(ats_ref_layer_forward(xo, xi, 2, 2, 1, 0, ws) == ATS_STATUS_EDOM,
              "infinite token -> EDOM");
    ATS_CHECK(ats_ref_layer_forward(xo, x, 2, 2, -0.5L, 0, ws) == ATS_STATUS_EDOM,
              "beta < 0 -> EDOM");
    ATS_CHECK(ats_ref_layer_forward(xo, x, 2, 2, INFINITY, 0, ws) == ATS_STATUS_EDOM,
              "beta = inf -> EDOM");
    ATS_CHECK(ats_ref_layer_forward(xo, x, 2, 2, 1, NAN, ws) == ATS_STATUS_EDOM,
              "alpha = NaN -> EDOM");
    const int64_t rows[1] = {1};
    ATS_CHECK(ats_ref_layer_rows(xo, xz, rows, 1, 2, 2, 1, 0, ws) == ATS_STATUS_EDOM,
              "layer_rows zero-norm token -> EDOM");
    ATS_CHECK(ats_ref_attn_row(p, x, 2, 2, 0, NAN, ws) == ATS_STATUS_EDOM,
              "attn_row beta NaN -> EDOM");
    ATS_CHECK(isnan(ats_ref_eta_fd(xz, 2, 2, 1, 0, 0, ws)), "eta_fd zero-norm token -> NaN");
    ATS_CHECK(isnan(ats_ref_eta_blocks(xz, 2, 2, 1, 0, ws)), "eta_blocks zero-norm -> NaN");
    ATS_CHECK(isnan(ats_ref_eta_blocks(x, 2, 2, -1, 0, ws)), "eta_blocks beta < 0 -> NaN");
    ATS_CHECK(isnan(ats_ref_eta_fd(x, 2, 2, 1, INFINITY, 0, ws)), "eta_fd alpha inf -> NaN");
    long double s[4 * 5];
    ATS_CHECK(ats_ref_simplex_tokens(s, 4, 4, 0.5L, 1) == ATS_STATUS_EINVAL,
              "simplex d < n + 1 -> EINVAL");
    ATS_CHECK(ats_ref_simplex_tokens(s, 4, 5, 1, 1) == ATS_STATUS_EDOM, "simplex rho = 1 -> EDOM");
    ATS_CHECK(ats_ref_simplex_tokens(s, 4, 5, -0.1L, 1) == ATS_STATUS_EDOM,
              "simplex rho < 0 -> EDOM");
    ATS_CHECK(ats_ref_simplex_tokens(s, 4, 5, 0.5L, 0) == ATS_STATUS_EDOM, "simplex q = 0 -> EDOM");
    ATS_CHECK(ats_ref_simplex_tokens(s, 4, 5, NAN, 1) == ATS_STATUS_EDOM,
              "simplex rho NaN -> EDOM");
}

// ----------------------------------------------------------------------------
// eta: Jacobian blocks against finite differences

// Relative tolerance of FD against the blocks. The 4-point FD error (see
// ats_ref_eta_fd_h_default) is ~ (1 + beta) E^(4/5) relative (3.8e-15 at beta = 6 in x87 long
// double, whose E = 1.1e-19); the block formulas are good to ~n E. Measured worst over the
// random cases: ~1e-15 (INFO line). K = 100 leaves a factor 25+ over that and scales with E:
// 4e-13 here at beta = 6, 2e-10 where long double is double.
static long double fd_rtol(long double beta) {
    return 100 * (1 + beta) * powl(E, 0.8L);
}

static void test_eta_n1(void) {
    // n = 1: C = 0 and A = 1, so J = P/r + alpha I and ||J||^2 = (d-1)/r^2 + 2 alpha (d-1)/r +
    // alpha^2 d exactly.
    long double x[4] = {0.3L, -1.2L, 2.2L, 0.9L};
    long double ws[64];
    const int64_t d = 4;
    const long double alpha = 0.83L, beta = 2.385L;
    long double r = sqrtl(0.09L + 1.44L + 4.84L + 0.81L);
    long double want = (3 / (r * r) + 2 * alpha * 3 / r + alpha * alpha * 4) / 4;
    // Few-rounding formula on both sides.
    ATS_CHECK_CLOSE(ats_ref_eta_blocks(x, 1, d, beta, alpha, ws), want, 0, 16 * E,
                    "eta_blocks n = 1 closed form");
    ATS_CHECK_CLOSE(ats_ref_eta_fd(x, 1, d, beta, alpha, 0, ws), want, 0, fd_rtol(beta),
                    "eta_fd n = 1 closed form (FD error model)");
}

static void test_eta_random(void) {
    struct gen g = {UINT64_C(0xb7e151628aed2a6b)};
    const int cases = 30;
    long double x[10 * 8];
    long double *ws = alloc_ld(ats_ref_eta_fd_ws_len(10, 8) + ats_ref_eta_blocks_ws_len(10, 8));
    long double worst = 0;
    for (int c = 0; c < cases; c++) {
        int64_t n = gen_int(&g, 5, 10), d = gen_int(&g, 3, 8);
        // The ends of the ranges are the hardest cases: force them on the first two.
        long double beta = c == 0 ? 6 : gen_uniform(&g, 0, 6);
        long double alpha = c == 0 ? 1.5L : c == 1 ? 0 : gen_uniform(&g, 0, 1.5L);
        gen_tokens(x, n, d, &g);
        long double eb = ats_ref_eta_blocks(x, n, d, beta, alpha, ws);
        long double ef = ats_ref_eta_fd(x, n, d, beta, alpha, 0, ws);
        long double rel = fabsl(eb - ef) / fabsl(ef);
        if (rel > worst)
            worst = rel;
        ATS_CHECK_CLOSE(eb, ef, 0, fd_rtol(beta),
                        "eta blocks = FD, n %lld d %lld beta %.4Lf alpha %.4Lf", (long long)n,
                        (long long)d, beta, alpha);
    }
    ats_test_info("eta blocks vs FD: worst relative difference %.3Lg over %d random cases", worst,
                  cases);
    free(ws);
}

// ----------------------------------------------------------------------------
// THEORY.md 2.10 test vectors

static void test_simplex_n6(void) {
    const int64_t n = 6, d = 9;
    long double x[6 * 9], xo[6 * 9];
    long double *ws = alloc_ld(ats_ref_eta_fd_ws_len(n, d) + ats_ref_eta_blocks_ws_len(n, d));
    static const struct {
        long double rho, alpha, beta, rho_out, eta;
    } tab[5] = {
        {0.2L, 0, 3, 0.4731715173L, 0.59659789L},    {0.5L, 0, 3, 0.8945788907L, 0.37137636L},
        {0.5L, 0.7L, 3, 0.7364081197L, 1.58873183L}, {0.8L, 0, 9, 0.9518867119L, 0.48457913L},
        {0.8L, 0.7L, 9, 0.8982579655L, 1.82663760L},
    };
    long double rho_q1 = 0, eta_q1 = 0;
    for (int t = 0; t < 5; t++) {
        ats_ref_simplex_tokens(x, n, d, tab[t].rho, 1);
        ats_ref_layer_forward(xo, x, n, d, tab[t].beta, tab[t].alpha, ws);
        long double lo = 2, hi = -2;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = i + 1; j < n; j++) {
                long double c = cosine(xo + i * d, xo + j * d, d);
                lo = fminl(lo, c);
                hi = fmaxl(hi, c);
            }
        // The table has 10 decimals (rounding 5e-11); every pair must match.
        ATS_CHECK_CLOSE(lo, tab[t].rho_out, 1e-10, 0,
                        "n 6 rho %.1Lf alpha %.1Lf beta %.0Lf: rho' (min over pairs)", tab[t].rho,
                        tab[t].alpha, tab[t].beta);
        ATS_CHECK_CLOSE(hi, tab[t].rho_out, 1e-10, 0,
                        "n 6 rho %.1Lf alpha %.1Lf beta %.0Lf: rho' (max over pairs)", tab[t].rho,
                        tab[t].alpha, tab[t].beta);
        long double eb = ats_ref_eta_blocks(x, n, d, tab[t].beta, tab[t].alpha, ws);
        long double ef = ats_ref_eta_fd(x, n, d, tab[t].beta, tab[t].alpha, 0, ws);
        // The table has 8 decimals (rounding 5e-9).
        ATS_CHECK_CLOSE(eb, tab[t].eta, 1e-8, 0,
                        "n 6 rho %.1Lf alpha %.1Lf beta %.0Lf: eta (blocks)", tab[t].rho,
                        tab[t].alpha, tab[t].beta);
        ATS_CHECK_CLOSE(ef, tab[t].eta, 1e-8, 0, "n 6 rho %.1Lf alpha %.1Lf beta %.0Lf: eta (FD)",
                        tab[t].rho, tab[t].alpha, tab[t].beta);
        ats_test_info(
            "n 6 rho %.1Lf alpha %.1Lf beta %.0Lf: rho' %.12Lf eta blocks %.12Lf FD %.12Lf",
            tab[t].rho, tab[t].alpha, tab[t].beta, lo, eb, ef);
        if (t == 1) {
            rho_q1 = lo;
            eta_q1 = eb;
        }
    }

    // q = 2.5, alpha = 0: pre-LN removes q from the output, eta scales by 1/q.
    ats_ref_simplex_tokens(x, n, d, 0.5L, 2.5L);
    ats_ref_layer_forward(xo, x, n, d, 3, 0, ws);
    long double c = cosine(xo, xo + 5 * d, d);
    // y_i differs from the q = 1 tokens by a few ulp (sqrt(q) rounding); the cosine
    // inherits ~beta d E of that: 32 (beta + 1) d E.
    ATS_CHECK_CLOSE(c, rho_q1, 32 * 4 * 9 * E, 0, "n 6 q 2.5: rho' unchanged from q = 1");
    ATS_CHECK_CLOSE(c, 0.8945788907L, 1e-10, 0, "n 6 q 2.5: rho' table value (10 decimals)");
    long double eb = ats_ref_eta_blocks(x, n, d, 3, 0, ws);
    long double ef = ats_ref_eta_fd(x, n, d, 3, 0, 0, ws);
    // Same argument, relative.
    ATS_CHECK_CLOSE(eb, eta_q1 / 2.5L, 0, 32 * 4 * 9 * E, "n 6 q 2.5: eta = eta(q = 1) / q");
    ATS_CHECK_CLOSE(eb, 0.14855054L, 1e-8, 0, "n 6 q 2.5: eta (blocks) table (8 decimals)");
    ATS_CHECK_CLOSE(ef, 0.14855054L, 1e-8, 0, "n 6 q 2.5: eta (FD) table (8 decimals)");
    ats_test_info("n 6 q 2.5: rho' %.12Lf eta blocks %.12Lf FD %.12Lf", c, eb, ef);
    free(ws);
}

static void test_simplex_n1024(void) {
    const int64_t n = 1024, d = 1025;
    const long double gam[3] = {0.5L, 1, 1.5L};
    const long double a_tab[3] = {0.03033175L, 0.50024426L, 0.96972567L};
    static const struct {
        long double rho, rho_out[3];
    } rho_tab[3] = {
        {0.2L, {0.99657157L, 0.50097591L, 0.21006792L}},
        {0.5L, {0.99913817L, 0.80027341L, 0.51539600L}},
        {0.8L, {0.99978425L, 0.94124068L, 0.80966796L}},
    };
    const long double lam_tab[3] = {0.00172366L, 0.39945319L, 0.96920801L};
    const long double eta_tab[3] = {0.00206776L, 0.25596802L, 0.94038161L};
    const long double rho_a5[3] = {0.88932528L, 0.69252731L, 0.51021308L};
    const long double eta_a5[3] = {0.28569519L, 1.00994744L, 2.15961718L};

    long double *x = alloc_ld(n * d), *y = alloc_ld(n * d), *r = alloc_ld(n);
    long double *G = alloc_ld(n * n), *p = alloc_ld(n), *xo = alloc_ld(3 * d);
    long double *lws = alloc_ld(ats_ref_layer_ws_len(n, d));
    long double *rws = alloc_ld(ats_ref_eta_blocks_row_ws_len(n, d));
    const int64_t rows[3] = {0, 1, n - 1};

    // Forward pass: a and rho' for every rho (O(n d) per row, no Gram matrix needed).
    for (int t = 0; t < 3; t++) {
        const long double rho = rho_tab[t].rho;
        ats_ref_simplex_tokens(x, n, d, rho, 1);
        for (int k = 0; k < 3; k++) {
            const long double beta = gam[k] / (1 - rho) * logl((long double)n);
            ats_ref_attn_row(p, x, n, d, 0, beta, lws);
            // 8 decimals in the table.
            ATS_CHECK_CLOSE(p[0], a_tab[k], 1e-8, 0, "n 1024 rho %.1Lf gamma %.1Lf gamma_c: a", rho,
                            gam[k]);
            ats_ref_layer_rows(xo, x, rows, 3, n, d, beta, 0, lws);
            long double c01 = cosine(xo, xo + d, d), c0n = cosine(xo, xo + 2 * d, d);
            ATS_CHECK_CLOSE(c01, rho_tab[t].rho_out[k], 1e-8, 0,
                            "n 1024 rho %.1Lf gamma %.1Lf gamma_c: rho' (rows 0, 1)", rho, gam[k]);
            // Symmetric configuration: every pair has the same cosine, to rounding (the sums
            // over j see permuted but equal terms): n E.
            ATS_CHECK_CLOSE(c0n, c01, (long double)n * E, 0,
                            "n 1024 rho %.1Lf gamma %.1Lf gamma_c: rho' (rows 0, n-1) = (0, 1)",
                            rho, gam[k]);
            ats_test_info("n 1024 rho %.1Lf gamma %.1Lf gamma_c: a %.10Lf rho' %.10Lf", rho, gam[k],
                          p[0], c01);
        }
    }

    // eta at rho = 0.5 from one row of the Jacobian blocks; G computed once for all betas.
    ats_ref_simplex_tokens(x, n, d, 0.5L, 1);
    ats_ref_normalize(y, r, x, n, d);
    double t0 = seconds();
    ats_ref_gram(G, y, n, d);
    ats_test_info("n 1024 d 1025: Gram matrix in %.2f s", seconds() - t0);
    for (int k = 0; k < 3; k++) {
        const long double beta = gam[k] / 0.5L * logl((long double)n);
        ats_ref_layer_rows(xo, x, rows, 2, n, d, beta, 0, lws);
        long double lam = (1 - cosine(xo, xo + d, d)) / 0.5L;
        ATS_CHECK_CLOSE(lam, lam_tab[k], 1e-8, 0, "n 1024 rho 0.5 gamma %.1Lf gamma_c: lambda",
                        gam[k]);
        double t1 = seconds();
        long double e0 = ats_ref_eta_blocks_row(G, y, r, n, d, 0, beta, 0, rws) / (long double)d;
        long double en =
            ats_ref_eta_blocks_row(G, y, r, n, d, n - 1, beta, 0, rws) / (long double)d;
        double t2 = seconds();
        ATS_CHECK_CLOSE(e0, eta_tab[k], 1e-8, 0, "n 1024 rho 0.5 gamma %.1Lf gamma_c: eta", gam[k]);
        // Rows are equivalent; their n^2-term sums differ only in rounding order: n E relative.
        ATS_CHECK_CLOSE(en, e0, 0, (long double)n * E,
                        "n 1024 rho 0.5 gamma %.1Lf gamma_c: eta row n-1 = row 0", gam[k]);

        ats_ref_layer_rows(xo, x, rows, 2, n, d, beta, 0.5L, lws);
        long double c = cosine(xo, xo + d, d);
        long double e5 = ats_ref_eta_blocks_row(G, y, r, n, d, 0, beta, 0.5L, rws) / (long double)d;
        ATS_CHECK_CLOSE(c, rho_a5[k], 1e-8, 0, "n 1024 rho 0.5 alpha 0.5 gamma %.1Lf gamma_c: rho'",
                        gam[k]);
        ATS_CHECK_CLOSE(e5, eta_a5[k], 1e-8, 0, "n 1024 rho 0.5 alpha 0.5 gamma %.1Lf gamma_c: eta",
                        gam[k]);
        ats_test_info(
            "n 1024 rho 0.5 gamma %.1Lf gamma_c: lambda %.10Lf eta %.10Lf | alpha 0.5: rho' "
            "%.10Lf eta %.10Lf (2 eta rows in %.3f s)",
            gam[k], lam, e0, c, e5, t2 - t1);
    }
    free(x);
    free(y);
    free(r);
    free(G);
    free(p);
    free(xo);
    free(lws);
    free(rws);
}

int main(void) {
    double t0 = seconds();
    test_softmax_rows();
    test_forward_small();
    test_forward_invariants();
    test_forward_extreme_norms();
    test_errors();
    test_eta_n1();
    test_eta_random();
    test_simplex_n6();
    ats_test_info("small tests in %.2f s", seconds() - t0);
    test_simplex_n1024();
    ats_test_info("total %.2f s", seconds() - t0);
    return ats_test_summary();
}
