/*
 * query_kernel.h: the chunk kernel of the single-query exact sampler (THEORY.md 3.1), the
 * batch kernel of the critical-limit (PPP) sampler (THEORY.md 3.4), and the element-wise math
 * both are built from. Internal to the library (src/experiments/query.c) and its tests
 * (tests/test_query.c); not installed.
 *
 * A chunk of keys reduces to a partial (struct ats_query_partial): the log-sum-exp state of
 * the weights exp(-2 beta (B_j - B_min)) and the weighted sums the trial statistics need.
 * Partials merge by rescaling (ats_query_partial_merge), in chunk order, so a trial's result
 * does not depend on which thread ran which chunk.
 *
 * The math functions below are written as straight-line code (bit manipulation, polynomials,
 * selects; no branches, no tables, no libm calls) so that the compiler vectorises the loops
 * that call them at plain -O2 without -ffast-math. Their accuracy (checked against libm in
 * tests/test_query.c) is stated with each; every one is far below what the statistics need.
 */
#ifndef ATS_QUERY_KERNEL_H
#define ATS_QUERY_KERNEL_H

#include <stdint.h>
#include <string.h>

#include "attnscale.h"

#if defined(__GNUC__)
#define ATS_QK_INLINE static inline __attribute__((always_inline))
#else
#define ATS_QK_INLINE static inline
#endif

// ----------------------------------------------------------------------------
// Partials

struct ats_query_partial {
    double bmin;  // smallest B of the keys reduced so far
    double z;     // sum_j e_j, e_j = exp(-2 beta (B_j - bmin)) (terms below e^-700 flushed)
    double ex;    // sum_j e_j 2 beta (B_j - bmin)        (entropy)
    double e2;    // sum_j e_j^2                           (sum of squared weights)
    double eb;    // sum_j e_j B_j                         (1 - <y,q> = 2 sum w B)
    double et;    // sum_j e_j sqrt(1 - s_j^2) u_j         (one tangential coordinate of y)
    int64_t keys; // number of keys reduced
    int64_t ntop; // entries of top: min(topk, keys)
    double top[ATS_QUERY_TOPK_MAX]; // the ntop smallest B, ascending (top[0] = bmin)
};

// The empty partial (no keys): the identity of ats_query_partial_merge.
void ats_query_partial_empty(struct ats_query_partial *p);

// Reduces keys 0..keys-1 of the Philox stream (seed, stream) into out (see query_kernel.c for
// which words each key uses). d >= 2, keys >= 1, 0 <= beta < inf, 0 <= topk <=
// ATS_QUERY_TOPK_MAX. Pure: no allocation, no output, no shared state.
void ats_query_chunk(struct ats_query_partial *out, uint64_t seed, uint64_t stream, int64_t d,
                     int64_t keys, double beta, int64_t topk);

// acc <- acc merged with part (both at the same beta and topk): the statistics of the union
// of their keys. Exact up to rounding; the result depends on the order of merges, so callers
// merge in a fixed (chunk) order.
void ats_query_partial_merge(struct ats_query_partial *acc, const struct ats_query_partial *part,
                             double beta, int64_t topk);

// ----------------------------------------------------------------------------
// The critical-limit (PPP) sampler's running state (THEORY.md 3.4; query.c documents the
// construction). Points come in batches of ATS_QUERY_PPP_BATCH; point k (0-based) of a sample
// uses Philox block k (d <= 3) or blocks 2k, 2k + 1 (d >= 4) of the sample's stream:
// E_k = -log(uniform_pos(w0, w1)) of block k (2k), and the tangential coordinate u_k:
//   d = 2   u = +1 if the top bit of w2 is 0, else -1;
//   d = 3   u = cos(pi uniform(w2, w3));
//   d >= 4  Ulrich (query_kernel.c) with U' = uniform_pos(w2, w3) of block 2k and
//           V' = uniform(w0, w1) of block 2k + 1: u = sqrt(1 - U'^(2/(d-3))) cos(2 pi V').

#define ATS_QUERY_PPP_BATCH 64

struct ats_query_ppp {
    double g;                       // Gamma_K of the last point (0 before the first batch)
    double y1;                      // a Gamma_1^p: weights are e_k = exp(-(a Gamma_k^p - y1)) <= 1
    double z;                       // sum e_k
    double ex;                      // sum e_k (a Gamma_k^p - y1)
    double e2;                      // sum e_k^2
    double eg;                      // sum e_k Gamma_k^p
    double ep;                      // sum e_k X_k u_k, X_k = (Gamma_k/kappa_d)^(1/(d-1))
    int64_t k;                      // points so far (a multiple of ATS_QUERY_PPP_BATCH)
    double top[ATS_QUERY_TOPK_MAX]; // e_1, e_2, ... (the largest weights, in order)
};

void ats_query_ppp_init(struct ats_query_ppp *st);

// Adds the next ATS_QUERY_PPP_BATCH points of the stream (seed, stream) to st, for
// a = tau'/2 > 0, d >= 2, logk = log kappa_d. Pure, like ats_query_chunk.
void ats_query_ppp_batch(struct ats_query_ppp *st, uint64_t seed, uint64_t stream, int64_t d,
                         double a, double logk);

// ----------------------------------------------------------------------------
// Element-wise math (vectorisable)

ATS_QK_INLINE double ats_qk_from_bits(uint64_t b) {
    double x;
    memcpy(&x, &b, sizeof x);
    return x;
}

ATS_QK_INLINE uint64_t ats_qk_to_bits(double x) {
    uint64_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}

// An integer 0 <= k < 2^52 as a double, exactly: 2^52 + k has k in its mantissa.
ATS_QK_INLINE double ats_qk_u52_to_double(uint64_t k) {
    return ats_qk_from_bits(UINT64_C(0x4330000000000000) | k) - 0x1p52;
}

// The uniform of ats_rng_uniform from its two words (hi first): k 2^-53 with
// k = (hi 2^32 + lo) >> 11, formed as hi 2^-32 + (lo >> 11) 2^-53 (both exact, and so is the
// sum). Add 0x1p-53 (exactly) for ats_rng_uniform_pos.
ATS_QK_INLINE double ats_qk_u01(uint32_t hi, uint32_t lo) {
    return ats_qk_u52_to_double(hi) * 0x1p-32 + ats_qk_u52_to_double(lo >> 11) * 0x1p-53;
}

#define ATS_QK_LN2_HI 6.93147180369123816490e-01 // fdlibm ln2_hi: 21 trailing zero bits
#define ATS_QK_LN2_LO 1.90821492927058770002e-10 // ln2 - ln2_hi
#define ATS_QK_LOG2E 1.44269504088896338700e+00
#define ATS_QK_PI 3.14159265358979323846
#define ATS_QK_EXP_FLUSH 700.0

// e^r - 1 for |r| <= ln2/2 (+ rounding): r q(r), q the Taylor polynomial of (e^r - 1)/r to
// degree 12 (truncation < 5e-18 relative), evaluated by Estrin's scheme: a dependency depth
// of 6 multiply-adds instead of Horner's 13, so the loops calling it are not latency-bound.
ATS_QK_INLINE double ats_qk_expm1_core(double r) {
    double r2 = r * r;
    double r4 = r2 * r2;
    double r8 = r4 * r4;
    double q01 = 1.0 + r * (1.0 / 2.0);
    double q23 = 1.0 / 6.0 + r * (1.0 / 24.0);
    double q45 = 1.0 / 120.0 + r * (1.0 / 720.0);
    double q67 = 1.0 / 5040.0 + r * (1.0 / 40320.0);
    double q89 = 1.0 / 362880.0 + r * (1.0 / 3628800.0);
    double qab = 1.0 / 39916800.0 + r * (1.0 / 479001600.0);
    double qc = 1.0 / 6227020800.0;
    double lo = q01 + r2 * q23;
    double mid = q45 + r2 * q67;
    double hi = q89 + r2 * qab + r4 * qc;
    return r * (lo + r4 * mid + r8 * hi);
}

// e^{-x} for 0 <= x <= 700, within 2 ulp of the correctly rounded value (Cody-Waite
// reduction x = k ln2 - r, |r| <= ln2/2, k <= 1010, so the scale 2^-k and the result stay
// normal). Callers clamp x and flush the result themselves, in a separate loop: a select on x
// feeding this code gets split into branches by gcc, and -ftrapping-math then keeps the loop
// from being vectorised.
ATS_QK_INLINE double ats_qk_expneg_core(double x) {
    double t = x * ATS_QK_LOG2E + 0x1.8p52; // round(x / ln2) in the low mantissa bits
    uint64_t kb = ats_qk_to_bits(t);
    double kd = t - 0x1.8p52;
    double r = (kd * ATS_QK_LN2_HI - x) + kd * ATS_QK_LN2_LO; // e^{-x} = 2^-k e^r
    // low 52 bits of kb are 2^51 + k; the exponent field of 2^-k is 1023 - k
    uint64_t ebits = (UINT64_C(1023) + (UINT64_C(1) << 51)) - (kb & ((UINT64_C(1) << 52) - 1));
    double scale = ats_qk_from_bits(ebits << 52);
    return scale + scale * ats_qk_expm1_core(r);
}

// e^{-x} for any x >= 0 (inf included), flushed to 0 for x >= 700. Scalar use only.
ATS_QK_INLINE double ats_qk_expneg(double x) {
    return x < ATS_QK_EXP_FLUSH ? ats_qk_expneg_core(x) : 0.0;
}

// For -700 <= y <= 700: *e = e^y and *em1 = e^y - 1 (expm1), each within 2.5 ulp (expm1
// relative to its value: 2^k q + (2^k - 1) with q = e^r - 1 keeps full relative accuracy at
// k = 0). k = round(y / ln2) stays in [-1010, 1010], so 2^k is a normal double.
ATS_QK_INLINE void ats_qk_exp_expm1(double y, double *e, double *em1) {
    double t = y * ATS_QK_LOG2E + 0x1.8p52;
    uint64_t kb = ats_qk_to_bits(t);
    double kd = t - 0x1.8p52; // k = round(y / ln2)
    double r = (y - kd * ATS_QK_LN2_HI) - kd * ATS_QK_LN2_LO;
    // low 52 bits of kb are 2^51 + k; the exponent field of 2^k is 1023 + k
    uint64_t ebits = (kb & ((UINT64_C(1) << 52) - 1)) - ((UINT64_C(1) << 51) - UINT64_C(1023));
    double scale = ats_qk_from_bits(ebits << 52);
    double q = ats_qk_expm1_core(r);
    *e = scale + scale * q;
    *em1 = scale * q + (scale - 1.0);
}

// log(u) for any positive normal u (the samplers use u in [2^-53, 1] and u in [2^-1022, 1e9]):
// u = 2^k m with m in [sqrt(1/2), sqrt(2)), log m = 2 atanh(f), f = (m - 1)/(m + 1),
// |f| <= 0.1716, series to f^23 (truncation < 1e-19); within 2.5 ulp, and relative accuracy
// near u = 1. k and m come from integer arithmetic on the bits (as in musl's log): subtracting
// the bits of sqrt(1/2) moves the mantissa range, the offset 1024 << 52 keeps the word
// positive for the shift (and cannot overflow: the top bit of a positive double is 0).
ATS_QK_INLINE double ats_qk_log(double u) {
    const uint64_t c = UINT64_C(0x3FE6A09E667F3BCD); // bits of sqrt(1/2)
    uint64_t b = ats_qk_to_bits(u) - c + (UINT64_C(1024) << 52);
    double ex = ats_qk_u52_to_double(b >> 52) - 1024.0;
    double m = ats_qk_from_bits((b & ((UINT64_C(1) << 52) - 1)) + c);
    double f = (m - 1.0) / (m + 1.0);
    double s = f * f; // 2 atanh f = 2f + 2f s p(s), p = sum_k s^k/(2k + 3), Estrin
    double s2 = s * s;
    double s4 = s2 * s2;
    double s8 = s4 * s4;
    double p01 = 1.0 / 3.0 + s * (1.0 / 5.0);
    double p23 = 1.0 / 7.0 + s * (1.0 / 9.0);
    double p45 = 1.0 / 11.0 + s * (1.0 / 13.0);
    double p67 = 1.0 / 15.0 + s * (1.0 / 17.0);
    double p89 = 1.0 / 19.0 + s * (1.0 / 21.0);
    double pa = 1.0 / 23.0;
    double p = (p01 + s2 * p23) + s4 * (p45 + s2 * p67) + s8 * (p89 + s2 * pa);
    double lm = 2.0 * f + 2.0 * f * s * p; // 2 atanh f
    return ex * ATS_QK_LN2_HI + (lm + ex * ATS_QK_LN2_LO);
}

// sin(x) for |x| <= pi/2 (+ rounding): x - x s p(s), s = x^2, p the Taylor polynomial to
// s^9 (x^21; truncation < 2e-18), Estrin's scheme; within 2 ulp and relatively accurate near 0.
ATS_QK_INLINE double ats_qk_sin(double x) {
    double s = x * x;
    double s2 = s * s;
    double s4 = s2 * s2;
    double s8 = s4 * s4;
    double p01 = 1.0 / 6.0 - s * (1.0 / 120.0);
    double p23 = 1.0 / 5040.0 - s * (1.0 / 362880.0);
    double p45 = 1.0 / 39916800.0 - s * (1.0 / 6227020800.0);
    double p67 = 1.0 / 1307674368000.0 - s * (1.0 / 355687428096000.0);
    double p89 = 1.0 / 121645100408832000.0 - s * (1.0 / 51090942171709440000.0);
    double p = (p01 + s2 * p23) + s4 * (p45 + s2 * p67) + s8 * p89;
    return x - x * s * p;
}

// sqrt(x) for x = 0 or normal x >= 0, within 1 ulp: the bit-level guess for 1/sqrt(x)
// (relative error < 3.5%), three Newton steps y <- y (3/2 - (x/2) y^2) (error < 4e-11), then
// one Newton step for sqrt on s = x y: s + (y/2)(x - s^2). Plain arithmetic, so it vectorises
// where libm's sqrt does not (errno). x = 0 gives 0 (x/2 y is evaluated first, and is 0).
ATS_QK_INLINE double ats_qk_sqrt(double x) {
    double y = ats_qk_from_bits(UINT64_C(0x5FE6EB50C7B537A9) - (ats_qk_to_bits(x) >> 1));
    double h = 0.5 * x;
    y = y * (1.5 - h * y * y);
    y = y * (1.5 - h * y * y);
    y = y * (1.5 - h * y * y);
    double s = x * y;
    return s + 0.5 * y * (x - s * s);
}

#endif // ATS_QUERY_KERNEL_H
