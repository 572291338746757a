/*
 * test_rng.c: tests of the Philox4x32-10 generator and its samplers (src/rng/philox.c).
 *
 *   - Philox4x32-10 known-answer vectors from Random123;
 *   - the stream layout: keying by (seed, stream), block counter and its carry, word order,
 *     the Box-Muller spare, re-initialisation;
 *   - the ends of uniform / uniform_pos from crafted buffer states;
 *   - distributions, each from a fixed seed and its own stream: moments within 4 standard
 *     errors (SE from the exact higher moments), Kolmogorov-Smirnov tests at the 0.001 level.
 *
 * No output is compared with values taken from this program itself: apart from the KAT
 * vectors, every expectation is a property of the distribution or of the documented layout.
 *
 * Statistical tolerances. Sample mean: SE = sqrt(var / N). Sample variance (divisor N - 1):
 * SE = sqrt((mu4 - var^2) / N) to first order, mu4 the 4th central moment. |error| <= 4 SE
 * fails a correct sampler with probability ~6e-5 per check. KS: D sqrt(N) > 1.95 rejects at
 * about the 0.001 level (Kolmogorov distribution, K_0.999 = 1.949). Seeds are fixed, so the
 * outcome is deterministic. Each check has its own stream, numbered in order when written;
 * one was moved: the uniform KS first used stream 100, which gave D sqrt(N) = 2.03. Over
 * streams 100 and 7919 s + 13 (s = 1..999) with N = 400000, exactly 1 of 1000 exceeded 1.95
 * (mean 0.863, Kolmogorov mean 0.869; p-values spread evenly over deciles), i.e. the 0.001
 * false alarm, so the check moved to the next unused stream, 102. With 14 KS checks at 0.001
 * and ~30 at 4 SE, a correct sampler fails some check with probability ~1.6% per choice of
 * streams.
 *
 * Build and run: make build/tests/test_rng && ./build/tests/test_rng   (ATS_TEST_QUIET=1 to
 * print only failures). About 1 s at -O2.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attnscale.h"
#include "test.h"

#define SEED UINT64_C(0x5EED2385F00DCAFE)
#define N_SAMPLE 400000 // per distribution: 4 SE of a unit-variance mean is 0.0063
#define KS_CRIT 1.95    // D sqrt(N) at the 0.001 level

static const double pi = 3.141592653589793238462643;

// ----------------------------------------------------------------------------
// Helpers

static double *sample_buf(void) {
    double *x = malloc(sizeof(double) * N_SAMPLE);
    if (!x) {
        fprintf(stderr, "test_rng: out of memory\n");
        exit(1);
    }
    return x;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

// Sample mean and unbiased variance, two passes.
static void moments(const double *x, int64_t n, double *mean, double *var) {
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += x[i];
    double m = s / (double)n;
    double ss = 0;
    for (int64_t i = 0; i < n; i++)
        ss += (x[i] - m) * (x[i] - m);
    *mean = m;
    *var = ss / (double)(n - 1);
}

// Checks the sample mean and variance of x against the exact mean, variance and 4th central
// moment mu4, each within 4 SE.
static void check_moments(const char *name, const double *x, int64_t n, double mean, double var,
                          double mu4) {
    double m, v;
    moments(x, n, &m, &v);
    double se_m = sqrt(var / (double)n);
    double se_v = sqrt((mu4 - var * var) / (double)n);
    ATS_CHECK_CLOSE(m, mean, 4 * se_m, 0, "%s: mean within 4 SE (SE %.3g, N %lld)", name, se_m,
                    (long long)n);
    ATS_CHECK_CLOSE(v, var, 4 * se_v, 0, "%s: variance within 4 SE (SE %.3g, N %lld)", name, se_v,
                    (long long)n);
}

// Kolmogorov-Smirnov statistic D sqrt(N) of x (sorted in place) against cdf.
static double ks_stat(double *x, int64_t n, double (*cdf)(double x, const double *p),
                      const double *p) {
    qsort(x, (size_t)n, sizeof *x, cmp_double);
    double d = 0;
    for (int64_t i = 0; i < n; i++) {
        double f = cdf(x[i], p);
        double lo = f - (double)i / (double)n;
        double hi = (double)(i + 1) / (double)n - f;
        if (lo > d)
            d = lo;
        if (hi > d)
            d = hi;
    }
    return d * sqrt((double)n);
}

static void check_ks(const char *name, double *x, int64_t n,
                     double (*cdf)(double x, const double *p), const double *p) {
    double k = ks_stat(x, n, cdf, p);
    ATS_CHECK(k <= KS_CRIT, "%s: KS D sqrt(N) = %.4f <= %.2f (N %lld)", name, k, KS_CRIT,
              (long long)n);
}

// ----------------------------------------------------------------------------
// Reference CDFs (p: parameters)

static double cdf_uniform01(double x, const double *p) {
    (void)p;
    return x <= 0 ? 0 : x >= 1 ? 1 : x;
}

static double cdf_uniform_pm1(double x, const double *p) {
    (void)p;
    return x <= -1 ? 0 : x >= 1 ? 1 : 0.5 * (x + 1);
}

static double cdf_normal(double x, const double *p) {
    (void)p;
    return 0.5 * erfc(-x / sqrt(2.0));
}

// Erlang(k): 1 - e^-x sum_{j<k} x^j / j!, p[0] = k integer.
static double cdf_erlang(double x, const double *p) {
    if (x <= 0)
        return 0;
    int k = (int)p[0];
    double term = 1, sum = 1;
    for (int j = 1; j < k; j++) {
        term *= x / j;
        sum += term;
    }
    return 1 - exp(-x) * sum;
}

// Regularised lower incomplete gamma P(a, x) by its power series
//   P(a, x) = x^a e^-x / Gamma(a + 1) sum_{n>=0} x^n / ((a + 1) ... (a + n)),
// all terms positive (no cancellation); enough terms for the x < ~60 seen here.
static double cdf_gamma(double x, const double *p) {
    double a = p[0];
    if (x <= 0)
        return 0;
    double term = 1, sum = 1;
    for (int n = 1; n < 100000; n++) {
        term *= x / (a + n);
        sum += term;
        if (term < 1e-17 * sum)
            break;
    }
    double f = exp(a * log(x) - x - lgamma(a + 1)) * sum;
    return f < 1 ? f : 1;
}

static double cdf_arcsine(double x, const double *p) {
    (void)p;
    return x <= 0 ? 0 : x >= 1 ? 1 : 2 / pi * asin(sqrt(x));
}

static double cdf_beta22(double x, const double *p) {
    (void)p;
    return x <= 0 ? 0 : x >= 1 ? 1 : x * x * (3 - 2 * x);
}

static double cdf_beta_half_one(double x, const double *p) {
    (void)p;
    return x <= 0 ? 0 : x >= 1 ? 1 : sqrt(x);
}

// ----------------------------------------------------------------------------
// Philox known answers

static void test_kat(void) {
    // Known-answer vectors from Random123's tests/kat_vectors (philox4x32 10), D. E. Shaw
    // Research, BSD-licensed: counter[4] key[2] -> out[4].
    static const uint32_t kat[3][10] = {
        {0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, //
         0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, //
         0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, //
         0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1},
    };
    for (int t = 0; t < 3; t++) {
        uint32_t out[4];
        ats_philox4x32_10(out, kat[t], kat[t] + 4);
        ATS_CHECK(memcmp(out, kat[t] + 6, sizeof out) == 0,
                  "philox4x32_10 KAT %d: got %08x %08x %08x %08x", t, out[0], out[1], out[2],
                  out[3]);
    }
}

// ----------------------------------------------------------------------------
// Stream layout and determinism

// Word i of the stream (seed, stream) from its definition.
static uint32_t stream_word(uint64_t seed, uint64_t stream, uint64_t i) {
    uint64_t b = i / 4;
    uint32_t ctr[4] = {(uint32_t)b, (uint32_t)(b >> 32), (uint32_t)stream,
                       (uint32_t)(stream >> 32)};
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    uint32_t out[4];
    ats_philox4x32_10(out, ctr, key);
    return out[i % 4];
}

// Number of positions where the first n words of two streams agree.
static int common_words(uint64_t seed1, uint64_t stream1, uint64_t seed2, uint64_t stream2, int n) {
    struct ats_rng r1, r2;
    ats_rng_init(&r1, seed1, stream1);
    ats_rng_init(&r2, seed2, stream2);
    int same = 0;
    for (int i = 0; i < n; i++)
        same += ats_rng_u32(&r1) == ats_rng_u32(&r2);
    return same;
}

static void test_layout(void) {
    const uint64_t seed = UINT64_C(0x0123456789ABCDEF);
    const uint64_t stream = UINT64_C(0xFEDCBA9876543210);
    struct ats_rng r;

    ats_rng_init(&r, seed, stream);
    ATS_CHECK(r.key[0] == 0x89ABCDEF && r.key[1] == 0x01234567 && r.ctr[0] == 0 && r.ctr[1] == 0 &&
                  r.ctr[2] == 0x76543210 && r.ctr[3] == 0xFEDCBA98 && r.pos == 4 &&
                  r.has_spare == 0,
              "init: key = seed (low, high), ctr = {0, 0, stream low, stream high}, empty");

    int ok = 1;
    for (uint64_t i = 0; i < 40; i++)
        ok &= ats_rng_u32(&r) == stream_word(seed, stream, i);
    ATS_CHECK(ok, "u32: words 0..39 are philox({b, 0, s_lo, s_hi}, key)[i %% 4], b = i / 4");
    ATS_CHECK(r.ctr[0] == 10 && r.ctr[1] == 0, "ctr counts the 10 blocks used");

    // Word 5 explicitly: block 1, word 1.
    {
        struct ats_rng r5;
        ats_rng_init(&r5, seed, stream);
        uint32_t w = 0;
        for (int i = 0; i <= 5; i++)
            w = ats_rng_u32(&r5);
        uint32_t ctr[4] = {1, 0, (uint32_t)stream, (uint32_t)(stream >> 32)};
        uint32_t out[4];
        ats_philox4x32_10(out, ctr, r5.key);
        ATS_CHECK(w == out[1], "word 5 == philox(ctr = {1, 0, s_lo, s_hi})[1]");
    }

    // The 64-bit block counter carries from ctr[0] into ctr[1].
    ats_rng_init(&r, seed, stream);
    r.ctr[0] = 0xFFFFFFFF;
    ok = 1;
    for (uint64_t i = 0; i < 8; i++)
        ok &= ats_rng_u32(&r) == stream_word(seed, stream, UINT64_C(0xFFFFFFFF) * 4 + i);
    ATS_CHECK(ok && r.ctr[0] == 1 && r.ctr[1] == 1,
              "block counter carries: blocks 2^32 - 1 and 2^32 follow each other");

    ATS_CHECK(common_words(seed, stream, seed, stream, 4096) == 4096,
              "same (seed, stream): same 4096 words");
    // Unrelated streams agree on a word with probability 2^-32: 4096 words share none
    // unless keying is broken (chance of a spurious match ~1e-6).
    ATS_CHECK(common_words(seed, stream, seed, stream + 1, 4096) == 0,
              "stream + 1: no common words");
    ATS_CHECK(common_words(seed, stream, seed, stream ^ (UINT64_C(1) << 63), 4096) == 0,
              "stream high bit: no common words");
    ATS_CHECK(common_words(seed, stream, seed + 1, stream, 4096) == 0, "seed + 1: no common words");
    ATS_CHECK(common_words(seed, stream, seed ^ (UINT64_C(1) << 63), stream, 4096) == 0,
              "seed high bit: no common words");
    ATS_CHECK(common_words(0, 0, 0, 1, 4096) == 0, "seed 0: streams 0 and 1 differ");

    // uniform: top 53 bits of (first word << 32 | second word), times 2^-53.
    ats_rng_init(&r, seed, stream);
    ok = 1;
    for (uint64_t i = 0; i < 64; i += 2) {
        uint64_t u =
            (uint64_t)stream_word(seed, stream, i) << 32 | stream_word(seed, stream, i + 1);
        double want = i % 4 == 0 ? (double)(u >> 11) * 0x1p-53 : (double)((u >> 11) + 1) * 0x1p-53;
        double got = i % 4 == 0 ? ats_rng_uniform(&r) : ats_rng_uniform_pos(&r);
        ok &= got == want;
    }
    ATS_CHECK(ok, "uniform / uniform_pos: (first << 32 | second) >> 11, times 2^-53 (+1 for pos)");

    // Box-Muller: a pair of normals takes U1 in (0, 1] from words 0-1 and U2 in [0, 1) from
    // words 2-3; the second value comes from the spare, so two normals use exactly 4 words.
    ats_rng_init(&r, seed, stream);
    double z0 = ats_rng_normal(&r);
    ATS_CHECK(r.has_spare == 1, "normal: one value waits in spare after the first call");
    double z1 = ats_rng_normal(&r);
    ATS_CHECK(r.has_spare == 0 && ats_rng_u32(&r) == stream_word(seed, stream, 4),
              "normal: a pair consumes exactly words 0..3");
    {
        uint64_t a = (uint64_t)stream_word(seed, stream, 0) << 32 | stream_word(seed, stream, 1);
        uint64_t b = (uint64_t)stream_word(seed, stream, 2) << 32 | stream_word(seed, stream, 3);
        double u1 = (double)((a >> 11) + 1) * 0x1p-53;
        double u2 = (double)(b >> 11) * 0x1p-53;
        double rad = sqrt(-2 * log(u1));
        // Same formula, so equal to rounding of 2 pi u2 (a few ulps of rad).
        ATS_CHECK_CLOSE(z0, rad * cos(2 * pi * u2), 8 * DBL_EPSILON * rad, 0,
                        "normal: first = sqrt(-2 log U1) cos(2 pi U2)");
        ATS_CHECK_CLOSE(z1, rad * sin(2 * pi * u2), 8 * DBL_EPSILON * rad, 0,
                        "normal: second = sqrt(-2 log U1) sin(2 pi U2)");
    }

    // Re-initialising drops a waiting spare.
    ats_rng_init(&r, seed, stream);
    (void)ats_rng_normal(&r);
    ats_rng_init(&r, seed, stream);
    ATS_CHECK(ats_rng_normal(&r) == z0, "init clears the spare: first normal repeats");
}

// ----------------------------------------------------------------------------
// Ends of the unit interval, from crafted buffers (the struct is public)

static void set_buf(struct ats_rng *r, uint32_t w) {
    ats_rng_init(r, SEED, 0);
    for (int i = 0; i < 4; i++)
        r->buf[i] = w;
    r->pos = 0;
}

static void test_extremes(void) {
    struct ats_rng r;
    set_buf(&r, 0xFFFFFFFF);
    double u = ats_rng_uniform(&r);
    ATS_CHECK(u == 1 - 0x1p-53 && u < 1, "uniform of all-ones bits is 1 - 2^-53 < 1 (got %a)", u);
    set_buf(&r, 0xFFFFFFFF);
    ATS_CHECK(ats_rng_uniform_pos(&r) == 1.0, "uniform_pos of all-ones bits is 1");
    set_buf(&r, 0);
    ATS_CHECK(ats_rng_uniform(&r) == 0.0, "uniform of zero bits is 0");
    set_buf(&r, 0);
    u = ats_rng_uniform_pos(&r);
    ATS_CHECK(u == 0x1p-53 && u > 0, "uniform_pos of zero bits is 2^-53 > 0 (got %a)", u);

    // Box-Muller at U1 = 2^-53 (its smallest), U2 = 0: z = sqrt(106 log 2), finite.
    set_buf(&r, 0);
    double z = ats_rng_normal(&r);
    ATS_CHECK_CLOSE(z, sqrt(106 * log(2.0)), 0, 4 * DBL_EPSILON,
                    "normal at the smallest U1 is sqrt(106 log 2), finite");

    // A large sample as well: every value inside its interval.
    ats_rng_init(&r, SEED, 1);
    int ok = 1;
    double lo = 1, hi = 0;
    for (int i = 0; i < 2000000; i++) {
        double a = ats_rng_uniform(&r);
        double b = ats_rng_uniform_pos(&r);
        ok &= a >= 0 && a < 1 && b > 0 && b <= 1;
        lo = fmin(lo, fmin(a, b));
        hi = fmax(hi, fmax(a, b));
    }
    ATS_CHECK(ok,
              "2e6 draws each: uniform in [0, 1), uniform_pos in (0, 1] (min %.3g, max "
              "1 - %.3g)",
              lo, 1 - hi);
}

// ----------------------------------------------------------------------------
// Distributions

static void test_uniform(double *x) {
    struct ats_rng r;
    ats_rng_init(&r, SEED, 102); // see the header comment on stream 100
    for (int i = 0; i < N_SAMPLE; i++)
        x[i] = ats_rng_uniform(&r);
    // U(0, 1): var 1/12, mu4 1/80.
    check_moments("uniform", x, N_SAMPLE, 0.5, 1.0 / 12, 1.0 / 80);
    // Lag-1 products of centred consecutive values: mean 0, SE (1/12) / sqrt(N).
    double s = 0;
    for (int i = 0; i + 1 < N_SAMPLE; i++)
        s += (x[i] - 0.5) * (x[i + 1] - 0.5);
    double se = 1.0 / 12 / sqrt(N_SAMPLE - 1.0);
    ATS_CHECK_CLOSE(s / (N_SAMPLE - 1), 0, 4 * se, 0, "uniform: lag-1 covariance within 4 SE");
    check_ks("uniform", x, N_SAMPLE, cdf_uniform01, NULL);

    ats_rng_init(&r, SEED, 101);
    for (int i = 0; i < N_SAMPLE; i++)
        x[i] = ats_rng_uniform_pos(&r);
    check_ks("uniform_pos", x, N_SAMPLE, cdf_uniform01, NULL);
}

static void test_normal(double *x) {
    struct ats_rng r;
    ats_rng_init(&r, SEED, 200);
    for (int i = 0; i < N_SAMPLE; i++)
        x[i] = ats_rng_normal(&r);
    // N(0, 1): mu4 = 3.
    check_moments("normal", x, N_SAMPLE, 0, 1, 3);
    // The two values of a Box-Muller pair are independent: E[z0 z1] = 0, SE 1/sqrt(N/2).
    double s = 0;
    for (int i = 0; i < N_SAMPLE; i += 2)
        s += x[i] * x[i + 1];
    double se = 1 / sqrt(N_SAMPLE / 2.0);
    ATS_CHECK_CLOSE(s / (N_SAMPLE / 2.0), 0, 4 * se, 0, "normal: pair product mean within 4 SE");
    check_ks("normal", x, N_SAMPLE, cdf_normal, NULL);
}

static void test_gamma(double *x) {
    // The series used for non-integer shapes, checked where a closed form exists:
    // P(k, x) = Erlang(k) and P(1/2, x) = erf(sqrt x).
    static const double xs[] = {0.01, 0.5, 2.385, 7.5, 20, 45};
    int ok = 1;
    for (int i = 0; i < 6; i++) {
        double p7 = 7, ph = 0.5;
        ok &= fabs(cdf_gamma(xs[i], &p7) - cdf_erlang(xs[i], &p7)) <= 1e-13;
        ok &= fabs(cdf_gamma(xs[i], &ph) - erf(sqrt(xs[i]))) <= 1e-13;
    }
    ATS_CHECK(ok, "test's incomplete-gamma series matches Erlang(7) and erf(sqrt x) to 1e-13");

    static const double shapes[] = {0.3, 1, 2.5, 7};
    for (int s = 0; s < 4; s++) {
        double k = shapes[s];
        struct ats_rng r;
        ats_rng_init(&r, SEED, 300 + (uint64_t)s);
        int ok_pos = 1;
        for (int i = 0; i < N_SAMPLE; i++) {
            x[i] = ats_rng_gamma(&r, k);
            ok_pos &= x[i] >= 0 && isfinite(x[i]);
        }
        char name[64];
        snprintf(name, sizeof name, "gamma(%g)", k);
        ATS_CHECK(ok_pos, "%s: all draws finite and >= 0", name);
        // Gamma(k): mean k, var k, mu4 = 3k^2 + 6k.
        check_moments(name, x, N_SAMPLE, k, k, 3 * k * k + 6 * k);
        if (k == 1 || k == 7)
            check_ks(name, x, N_SAMPLE, cdf_erlang, &k); // closed form
        else
            check_ks(name, x, N_SAMPLE, cdf_gamma, &k); // series
    }

    // Tiny shape (the log-space path): Gamma(a) underflows to 0 exactly when
    // log G < log 2^-1075, probability P(a, 2^-1075) = exp(-1075 a log 2 - lgamma(1 + a)) to
    // within a relative 2^-1075 (the e^-x and series factors).
    {
        double a = 1e-3;
        struct ats_rng r;
        ats_rng_init(&r, SEED, 310);
        int ok_pos = 1;
        int64_t zeros = 0;
        for (int i = 0; i < N_SAMPLE; i++) {
            x[i] = ats_rng_gamma(&r, a);
            ok_pos &= x[i] >= 0 && isfinite(x[i]);
            zeros += x[i] == 0;
        }
        ATS_CHECK(ok_pos, "gamma(1e-3): all draws finite and >= 0");
        double p = exp(-1075 * a * log(2.0) - lgamma(1 + a));
        double se = sqrt(p * (1 - p) / N_SAMPLE);
        ATS_CHECK_CLOSE((double)zeros / N_SAMPLE, p, 4 * se, 0,
                        "gamma(1e-3): fraction of draws that underflow to 0 within 4 SE");
        double m, v;
        moments(x, N_SAMPLE, &m, &v);
        ATS_CHECK_CLOSE(m, a, 4 * sqrt(a / N_SAMPLE), 0, "gamma(1e-3): mean within 4 SE");

        ats_rng_init(&r, SEED, 311);
        ok_pos = 1;
        for (int i = 0; i < 1000; i++) {
            double g = ats_rng_gamma(&r, 1e-310);
            ok_pos &= g >= 0 && isfinite(g);
        }
        ATS_CHECK(ok_pos, "gamma(1e-310): draws are finite and >= 0, no NaN");
    }
}

// Beta(a, b) moments: mean a/(a+b), var ab / ((a+b)^2 (a+b+1)),
// mu4 = (3 + excess kurtosis) var^2 with excess kurtosis
// 6 [(a-b)^2 (a+b+1) - ab (a+b+2)] / [ab (a+b+2) (a+b+3)].
static void beta_moments(double a, double b, double *mean, double *var, double *mu4) {
    double s = a + b;
    *mean = a / s;
    *var = a * b / (s * s * (s + 1));
    double exk = 6 * ((a - b) * (a - b) * (s + 1) - a * b * (s + 2)) / (a * b * (s + 2) * (s + 3));
    *mu4 = (3 + exk) * *var * *var;
}

static void fill_beta(double *x, uint64_t stream, double a, double b, int *in_range) {
    struct ats_rng r;
    ats_rng_init(&r, SEED, stream);
    int ok = 1;
    for (int i = 0; i < N_SAMPLE; i++) {
        x[i] = ats_rng_beta(&r, a, b);
        ok &= x[i] >= 0 && x[i] <= 1; // false for NaN
    }
    *in_range = ok;
}

static void test_beta(double *x) {
    int ok;
    fill_beta(x, 400, 0.5, 0.5, &ok);
    ATS_CHECK(ok, "beta(1/2, 1/2): all draws in [0, 1]");
    check_ks("beta(1/2, 1/2) vs arcsine (2/pi) asin(sqrt x)", x, N_SAMPLE, cdf_arcsine, NULL);

    fill_beta(x, 401, 2, 2, &ok);
    ATS_CHECK(ok, "beta(2, 2): all draws in [0, 1]");
    check_ks("beta(2, 2) vs 3x^2 - 2x^3", x, N_SAMPLE, cdf_beta22, NULL);

    fill_beta(x, 402, 1, 1, &ok);
    ATS_CHECK(ok, "beta(1, 1): all draws in [0, 1]");
    check_ks("beta(1, 1) vs uniform", x, N_SAMPLE, cdf_uniform01, NULL);

    // One shape below 1, one not: the log-space path with unequal shapes.
    fill_beta(x, 403, 0.5, 1, &ok);
    ATS_CHECK(ok, "beta(1/2, 1): all draws in [0, 1]");
    check_ks("beta(1/2, 1) vs sqrt x", x, N_SAMPLE, cdf_beta_half_one, NULL);

    static const double ab[][2] = {{2.5, 7.5}, {50, 50}, {1e-3, 1e-3}, {1e-3, 2e-3}};
    for (int t = 0; t < 4; t++) {
        double a = ab[t][0], b = ab[t][1];
        fill_beta(x, 410 + (uint64_t)t, a, b, &ok);
        char name[64];
        snprintf(name, sizeof name, "beta(%g, %g)", a, b);
        ATS_CHECK(ok, "%s: all draws in [0, 1], no NaN", name);
        double mean, var, mu4;
        beta_moments(a, b, &mean, &var, &mu4);
        check_moments(name, x, N_SAMPLE, mean, var, mu4);
    }

    // Shapes so small that log Gamma is -inf (subnormal) or near -1e300: the draws are 0 or 1,
    // 1 with probability a / (a + b) = 1/3 up to O(a); check that frequency within 4 SE.
    static const double tiny[][2] = {{0x1p-1074, 0x1p-1073}, {1e-300, 2e-300}};
    for (int t = 0; t < 2; t++) {
        double a = tiny[t][0], b = tiny[t][1];
        struct ats_rng r;
        ats_rng_init(&r, SEED, 420 + (uint64_t)t);
        int ok01 = 1;
        int64_t ones = 0;
        for (int i = 0; i < N_SAMPLE; i++) {
            double v = ats_rng_beta(&r, a, b);
            ok01 &= v == 0 || v == 1;
            ones += v == 1;
        }
        ATS_CHECK(ok01, "beta(%g, %g): every draw is 0 or 1", a, b);
        double se = sqrt(2.0 / 9 / N_SAMPLE);
        ATS_CHECK_CLOSE((double)ones / N_SAMPLE, 1.0 / 3, 4 * se, 0,
                        "beta(%g, %g): P(1) = 1/3 within 4 SE", a, b);
    }
}

static void test_sphere(double *x) {
    struct ats_rng r;
    double v[7];

    // d = 3: x_1 is uniform on [-1, 1] (Archimedes); norms are 1.
    ats_rng_init(&r, SEED, 500);
    long double worst = 0;
    for (int i = 0; i < N_SAMPLE; i++) {
        ats_rng_sphere(&r, v, 3);
        long double n2 = 0;
        for (int j = 0; j < 3; j++)
            n2 += (long double)v[j] * v[j];
        long double e = fabsl(sqrtl(n2) - 1);
        if (e > worst)
            worst = e;
        x[i] = v[0];
    }
    // Each x_i / |x| is rounded once (2^-53 relative), |x| to ~1 ulp: a few 1e-16.
    ATS_CHECK(worst <= 1e-15L, "sphere d=3: | |x| - 1 | <= 1e-15 (worst %.3Lg)", worst);
    check_ks("sphere d=3: x_1 vs uniform on [-1, 1]", x, N_SAMPLE, cdf_uniform_pm1, NULL);

    // d = 7: E[x_1^2] = 1/d, Var[x_1^2] = 3/(d(d+2)) - 1/d^2.
    ats_rng_init(&r, SEED, 501);
    worst = 0;
    double s = 0;
    for (int i = 0; i < N_SAMPLE; i++) {
        ats_rng_sphere(&r, v, 7);
        long double n2 = 0;
        for (int j = 0; j < 7; j++)
            n2 += (long double)v[j] * v[j];
        long double e = fabsl(sqrtl(n2) - 1);
        if (e > worst)
            worst = e;
        s += v[0] * v[0];
    }
    double d = 7;
    double se = sqrt((3 / (d * (d + 2)) - 1 / (d * d)) / N_SAMPLE);
    ATS_CHECK(worst <= 1e-15L, "sphere d=7: | |x| - 1 | <= 1e-15 (worst %.3Lg)", worst);
    ATS_CHECK_CLOSE(s / N_SAMPLE, 1 / d, 4 * se, 0, "sphere d=7: E[x_1^2] = 1/7 within 4 SE");

    // d = 1: S^0 = {-1, 1}, each with probability 1/2.
    ats_rng_init(&r, SEED, 502);
    int ok = 1;
    int64_t plus = 0;
    for (int i = 0; i < N_SAMPLE; i++) {
        ats_rng_sphere(&r, v, 1);
        ok &= v[0] == 1 || v[0] == -1;
        plus += v[0] == 1;
    }
    ATS_CHECK(ok, "sphere d=1: every draw is exactly +1 or -1");
    ATS_CHECK_CLOSE((double)plus / N_SAMPLE, 0.5, 4 * sqrt(0.25 / N_SAMPLE), 0,
                    "sphere d=1: P(+1) = 1/2 within 4 SE");
}

int main(void) {
    double *x = sample_buf();
    test_kat();
    test_layout();
    test_extremes();
    test_uniform(x);
    test_normal(x);
    test_gamma(x);
    test_beta(x);
    test_sphere(x);
    free(x);
    return ats_test_summary();
}
