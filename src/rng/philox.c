/*
 * philox.c: the Philox4x32-10 counter-based generator and the samplers built on it
 * (include/attnscale.h, "Philox4x32-10 counter-based random numbers").
 *
 * Implements
 *   ats_philox4x32_10     one block, written from Salmon, Moraes, Dror, Shaw, "Parallel random
 *                         numbers: as easy as 1, 2, 3", SC'11 (section 3.3 and Table 2); checked
 *                         against Random123's known-answer vectors in tests/test_rng.c
 *   ats_rng_*             a buffered stream over it, uniform (0/1 open or closed at either end),
 *                         normal (Box-Muller), gamma (Marsaglia-Tsang), beta, uniform on S^{d-1}
 *
 * Stream layout: key = {low32(seed), high32(seed)}, counter = {b_lo, b_hi, low32(stream),
 * high32(stream)} where b is the 64-bit block index, starting at 0. Words come out in order
 * buf[0..3] of block 0, then of block 1, and so on. The block index wraps after 2^64 blocks
 * (2^66 words), far beyond any run.
 *
 * No state outside struct ats_rng: two generators never interfere, so each thread (or each
 * unit of work) owns its own. Nothing here prints, exits or allocates.
 *
 * Build: part of build/libattnscale.a (make lib); tests: make build/tests/test_rng.
 */
#include <math.h>
#include <stdint.h>

#include "core/internal.h"

// ----------------------------------------------------------------------------
// Philox4x32-10

// Round multipliers and Weyl key increments (golden ratio and sqrt(3) - 1 in 0.32 fixed
// point), Salmon et al. Table 2 / Random123 philox.h.
#define PHILOX_M0 UINT32_C(0xD2511F53)
#define PHILOX_M1 UINT32_C(0xCD9E8D57)
#define PHILOX_W0 UINT32_C(0x9E3779B9)
#define PHILOX_W1 UINT32_C(0xBB67AE85)

// One round: two 32x32->64 multiplies; the high halves are xored with the other two counter
// words and the round key, and the words are permuted:
//   (c0, c1, c2, c3) -> (hi(M1 c2) ^ c1 ^ k0, lo(M1 c2), hi(M0 c0) ^ c3 ^ k1, lo(M0 c0)).
static void philox_round(uint32_t c[4], const uint32_t k[2]) {
    uint64_t p0 = (uint64_t)PHILOX_M0 * c[0];
    uint64_t p1 = (uint64_t)PHILOX_M1 * c[2];
    uint32_t hi0 = (uint32_t)(p0 >> 32);
    uint32_t lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32);
    uint32_t lo1 = (uint32_t)p1;
    c[0] = hi1 ^ c[1] ^ k[0];
    c[1] = lo1;
    c[2] = hi0 ^ c[3] ^ k[1];
    c[3] = lo0;
}

void ats_philox4x32_10(uint32_t out[4], const uint32_t ctr[4], const uint32_t key[2]) {
    ATS_ASSERT(out && ctr && key);
    uint32_t c[4] = {ctr[0], ctr[1], ctr[2], ctr[3]};
    uint32_t k[2] = {key[0], key[1]};
    // Ten rounds; the key is bumped between rounds (nine bumps, none after the last round).
    for (int i = 0; i < 10; i++) {
        if (i > 0) {
            k[0] += PHILOX_W0;
            k[1] += PHILOX_W1;
        }
        philox_round(c, k);
    }
    out[0] = c[0];
    out[1] = c[1];
    out[2] = c[2];
    out[3] = c[3];
}

// ----------------------------------------------------------------------------
// The stream

void ats_rng_init(struct ats_rng *r, uint64_t seed, uint64_t stream) {
    ATS_ASSERT(r);
    r->key[0] = (uint32_t)seed;
    r->key[1] = (uint32_t)(seed >> 32);
    r->ctr[0] = 0;
    r->ctr[1] = 0;
    r->ctr[2] = (uint32_t)stream;
    r->ctr[3] = (uint32_t)(stream >> 32);
    for (int i = 0; i < 4; i++)
        r->buf[i] = 0;
    r->pos = 4;
    r->has_spare = 0;
    r->spare = 0.0;
}

uint32_t ats_rng_u32(struct ats_rng *r) {
    if (r->pos >= 4) {
        ats_philox4x32_10(r->buf, r->ctr, r->key);
        // 64-bit block index in ctr[0] (low) and ctr[1] (high).
        r->ctr[0]++;
        if (r->ctr[0] == 0)
            r->ctr[1]++;
        r->pos = 0;
    }
    return r->buf[r->pos++];
}

// 64 bits from two words, the first one high.
static uint64_t rng_u64(struct ats_rng *r) {
    uint64_t hi = ats_rng_u32(r);
    uint64_t lo = ats_rng_u32(r);
    return (hi << 32) | lo;
}

// The top 53 bits, k in [0, 2^53), give k 2^-53 in [0, 1 - 2^-53] and (k + 1) 2^-53 in
// [2^-53, 1]; both are exact in double (every integer up to 2^53 is).
double ats_rng_uniform(struct ats_rng *r) {
    return (double)(rng_u64(r) >> 11) * 0x1p-53;
}

double ats_rng_uniform_pos(struct ats_rng *r) {
    return (double)((rng_u64(r) >> 11) + 1) * 0x1p-53;
}

// Box-Muller: for U1 in (0, 1] and U2 in [0, 1), R = sqrt(-2 log U1) and theta = 2 pi U2
// give two independent N(0, 1) values R cos theta and R sin theta. U1 > 0 keeps the log
// finite; |z| <= sqrt(106 log 2) ~ 8.57 since U1 >= 2^-53. The second value is kept for the
// next call.
double ats_rng_normal(struct ats_rng *r) {
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u1 = ats_rng_uniform_pos(r);
    double u2 = ats_rng_uniform(r);
    double rad = sqrt(-2.0 * log(u1));
    double theta = 6.283185307179586476925 * u2;
    r->spare = rad * sin(theta);
    r->has_spare = 1;
    return rad * cos(theta);
}

// ----------------------------------------------------------------------------
// Gamma and beta

// Marsaglia and Tsang, "A simple method for generating gamma variables", ACM TOMS 26(3), 2000,
// for shape a >= 1: with d = a - 1/3, c = 1/(3 sqrt d), X ~ N(0, 1), U ~ U(0, 1) and
// v = (1 + c X)^3, accept d v when v > 0 and log U < X^2/2 + d (1 - v + log v), after the
// cheap squeeze U < 1 - 0.0331 X^4. Acceptance is above 95% for every a >= 1.
//
// Returns y = c X of the accepted draw (d v = d (1 + y)^3), so that callers needing log(d v)
// get it as log d + 3 log1p(y) without rounding v first. 1 - v + log v is evaluated as
// 3 log1p(y) - y (3 + y (3 + y)): both terms are O(y) with y ~ 1/sqrt(a), so the absolute
// error of d (1 - v + log v) is O(eps sqrt(a) |X|) rather than the O(eps a) of the textbook
// form, which would distort the acceptance test for very large shapes.
static double gamma_mt_y(struct ats_rng *r, double d, double c) {
    for (;;) {
        double x = ats_rng_normal(r);
        double y = c * x;
        if (y <= -1.0)
            continue;
        // U in (0, 1] keeps log U finite. (U = 1 fails both strict tests, whose right sides
        // are at most 1 and 0: an O(2^-53) change of the acceptance probability.)
        double u = ats_rng_uniform_pos(r);
        double x2 = x * x;
        if (u < 1.0 - 0.0331 * x2 * x2)
            return y;
        if (log(u) < 0.5 * x2 + d * (3.0 * log1p(y) - y * (3.0 + y * (3.0 + y))))
            return y;
    }
}

// log of a Gamma(shape) draw. For shape < 1, the boost Marsaglia and Tsang give:
// G(a) = G(a + 1) U^(1/a), so log G(a) = log G(a + 1) + log(U)/a. Kept in log space so that
// tiny shapes, whose draws underflow to 0 in double with high probability (P(G(a) < 2^-1074)
// ~ exp(-744 a) for small a), still carry their magnitude. Returns -inf only when log(U)/a
// overflows (a below ~1e-307).
static double gamma_log(struct ats_rng *r, double shape) {
    double a = shape >= 1.0 ? shape : shape + 1.0;
    double d = a - 1.0 / 3.0;
    double y = gamma_mt_y(r, d, 1.0 / (3.0 * sqrt(d)));
    double lg = log(d) + 3.0 * log1p(y);
    if (shape >= 1.0)
        return lg;
    return lg + log(ats_rng_uniform_pos(r)) / shape;
}

// Shapes that are not finite and positive are programmer errors; release builds (no assert)
// get NaN instead of an endless rejection loop.
double ats_rng_gamma(struct ats_rng *r, double shape) {
    ATS_ASSERT(shape > 0 && shape < HUGE_VAL);
    if (!(shape > 0 && shape < HUGE_VAL))
        return NAN;
    if (shape >= 1.0) {
        double d = shape - 1.0 / 3.0;
        double y = gamma_mt_y(r, d, 1.0 / (3.0 * sqrt(d)));
        double v = (1.0 + y) * (1.0 + y) * (1.0 + y);
        return d * v;
    }
    // Result 0 when it underflows, which is the correctly rounded value.
    return exp(gamma_log(r, shape));
}

// Beta(a, b) = X / (X + Y), X ~ Gamma(a), Y ~ Gamma(b) independent.
//
// Both shapes >= 1: X and Y are at least ~1e-48 (d >= 2/3, 1 + y >= 2^-53), so the quotient
// is formed directly, with both halved (exact) so that X + Y cannot overflow.
//
// Otherwise X and Y can both underflow to 0 (for a = b = 1e-3 about 22% of the pairs do) and
// the quotient would be 0/0. Then we draw log X and log Y and return 1 / (1 + e^t) with
// t = log Y - log X, written as exp(-t - log1p(e^-t)) for t > 0 so that results down to the
// subnormal range keep their value instead of flushing when e^t overflows. The result is
// exactly 0 or 1 only when the true value rounds there. Where both logs are -inf (shapes
// below ~1e-307, see gamma_log) the sign of t is lost; Beta(a, b) then equals
// Bernoulli(a / (a + b)) up to O(max(a, b)), and that is what is drawn.
double ats_rng_beta(struct ats_rng *r, double a, double b) {
    ATS_ASSERT(a > 0 && a < HUGE_VAL && b > 0 && b < HUGE_VAL);
    if (!(a > 0 && a < HUGE_VAL && b > 0 && b < HUGE_VAL))
        return NAN;
    if (a >= 1.0 && b >= 1.0) {
        double x = ats_rng_gamma(r, a);
        double y = ats_rng_gamma(r, b);
        return (0.5 * x) / (0.5 * x + 0.5 * y);
    }
    double lx = gamma_log(r, a);
    double ly = gamma_log(r, b);
    if (lx == -HUGE_VAL && ly == -HUGE_VAL)
        return ats_rng_uniform(r) < a / (a + b) ? 1.0 : 0.0;
    double t = ly - lx;
    if (t > 0)
        return exp(-t - log1p(exp(-t)));
    return 1.0 / (1.0 + exp(t));
}

// ----------------------------------------------------------------------------
// Uniform on the sphere

// x / |x| for x ~ N(0, I_d) is uniform on S^{d-1} (the Gaussian is rotation invariant).
// |x|^2 is summed with Neumaier's compensation so the norm stays exact to ~1 ulp for any d.
// The all-zero vector has no direction; it is redrawn. A normal is exactly 0 only when U1 = 1
// or U2 = 0 in Box-Muller (probability ~2^-52 each), so this matters only for tiny d.
void ats_rng_sphere(struct ats_rng *r, double *x, int64_t d) {
    ATS_ASSERT(r && x && d >= 1);
    for (;;) {
        double s = 0.0;
        double comp = 0.0;
        for (int64_t i = 0; i < d; i++) {
            x[i] = ats_rng_normal(r);
            double t = x[i] * x[i];
            double sum = s + t;
            if (fabs(s) >= fabs(t))
                comp += (s - sum) + t;
            else
                comp += (t - sum) + s;
            s = sum;
        }
        s += comp;
        if (s > 0) {
            double norm = sqrt(s);
            for (int64_t i = 0; i < d; i++)
                x[i] /= norm;
            return;
        }
    }
}
