/*
 * query_kernel.c: one chunk of keys of the single-query exact sampler (THEORY.md 3.1), reduced
 * to the partial sums of struct ats_query_partial; the merge of two partials; and one batch of
 * points of the critical-limit (PPP) sampler (THEORY.md 3.4, words in query_kernel.h).
 *
 * The law. q = e_1; each key k = s q + sqrt(1 - s^2) theta with s = 1 - 2B,
 * B ~ Beta((d-1)/2, (d-1)/2), and of theta (uniform on the sphere of q-perp) only one
 * coordinate u is drawn, whose law is that of one coordinate of a uniform point of S^{d-2}.
 * The kernel produces, per key, B, C = 1 - B (both without cancellation) and
 * t = sqrt(1 - s^2) u = 2 sqrt(B C) u; every word a key consumes is fixed by its index:
 *
 *   d = 2  key j uses Philox block j of the stream: V = uniform(w0, w1); u = +1 if the top bit
 *          of w2 is 0, else -1 (w3 unused). s = cos(pi V): B = sin^2(pi V/2),
 *          C = sin^2(pi (1 - V)/2), t = 2 sin(pi V/2) sin(pi (1 - V)/2) u.
 *   d = 3  key j uses block j: B = uniform(w0, w1) (Beta(1, 1)), V = uniform(w2, w3),
 *          u = cos(pi V) (arcsine law), computed as sin(pi (1/2 - V)).
 *   d >= 4 key j uses blocks 2j and 2j + 1: U = uniform_pos(w0, w1), V = uniform(w2, w3) of
 *          block 2j; U', V' likewise of block 2j + 1. Ulrich's symmetric-beta method (G. Ulrich,
 *          "Computer generation of distributions on the m-sphere", Appl. Statist. 33, 1984):
 *          for a > 1/2, R = sqrt(1 - U^(1/(a - 1/2))) and T = R cos(2 pi V) give
 *          (1 + T)/2 ~ Beta(a, a). [Proof: (R cos, R sin) then has density
 *          ∝ (1 - x^2 - y^2)^(a - 3/2) on the unit disc; integrating y out leaves
 *          ∝ (1 - x^2)^(a - 1).] For s: a = (d-1)/2, so with g = U^(2/(d-2)) and R = sqrt(1-g),
 *            B = (1 - s)/2 = g/(2(1 + R)) + R sin^2(pi V),  C = g/(2(1 + R)) + R cos^2(pi V)
 *          (sums of non-negative terms: 1 - R cos 2x = (1 - R^2)/(1 + R) + 2 R sin^2 x), with
 *          1 - g = -expm1((2/(d-2)) log U) and sin, cos of pi min(V, 1 - V) in [0, pi/2].
 *          For u: a = (d-2)/2, u = sqrt(-expm1((2/(d-3)) log U')) cos(2 pi V').
 *          Exact in law for every d >= 4, a fixed number of words and of operations per key:
 *          the cost per key does not grow with d (~30 ns per key on one core here, against
 *          ~170 ns for the two ats_rng_beta draws it replaces).
 *
 * Here uniform(hi, lo) = ((hi 2^32 + lo) >> 11) 2^-53, exactly ats_rng_uniform's value from the
 * same two words, and uniform_pos adds 2^-53 (ats_rng_uniform_pos). So a test can regenerate
 * every key with ats_rng_init(seed, stream) and the ats_rng_ calls in the order above.
 *
 * The reduction. Keys are processed in sub-blocks of QK_L = 256 (QK_S = 16 when at most 16
 * keys are left, so that tiny n is cheap): Philox words for the whole
 * sub-block (structure of arrays), then B, C, t, then a scalar pass for the sub-block minimum
 * and the top-k smallest B, then the weights e = exp(-2 beta (B - m)) relative to the running
 * minimum m (rescaling the running sums by exp(-2 beta (m_old - m_new)) when it drops), each
 * weighted sum reduced by a fixed pairwise tree. Every loop except the scalar pass has a
 * compile-time trip count and no cross-iteration dependence, so gcc vectorises it at -O2
 * (very-cheap cost model) without reassociating anything: the result is the same with or
 * without vectorisation (and -std=c11 keeps gcc from contracting to FMA), so default and
 * NATIVE=1 builds agree bit for bit, for any thread count. The element-wise math comes from
 * query_kernel.h (polynomials and bit tricks, no libm in the vector loops): libm's calls stop
 * gcc from vectorising (sqrt sets errno), and -ffast-math is not an option.
 *
 * Build: part of build/libattnscale.a (make lib); tested by tests/test_query.c.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>

#include "core/internal.h"
#include "kernels/query_kernel.h"

// Keys per sub-block: the working set (words, B, C, t, five weighted-sum arrays) is ~22 KiB,
// inside a 32 KiB L1.
#define QK_L 256
#define QK_S 16 // the short sub-block, for up to QK_S keys

// ----------------------------------------------------------------------------
// Philox4x32-10, QK_L (or 2 QK_L) consecutive blocks at once, structure of arrays. The same
// rounds and constants as src/rng/philox.c (checked there against Random123's KAT vectors);
// tests/test_query.c regenerates keys from ats_rng_u32's words and compares.

#define QK_M0 UINT32_C(0xD2511F53)
#define QK_M1 UINT32_C(0xCD9E8D57)
#define QK_W0 UINT32_C(0x9E3779B9)
#define QK_W1 UINT32_C(0xBB67AE85)

#define QK_ROUND(c0, c1, c2, c3, k0, k1)                                                           \
    do {                                                                                           \
        uint64_t p0 = (uint64_t)QK_M0 * (c0);                                                      \
        uint64_t p1 = (uint64_t)QK_M1 * (c2);                                                      \
        (c0) = (uint32_t)(p1 >> 32) ^ (c1) ^ (k0);                                                 \
        (c1) = (uint32_t)p1;                                                                       \
        (c2) = (uint32_t)(p0 >> 32) ^ (c3) ^ (k1);                                                 \
        (c3) = (uint32_t)p0;                                                                       \
    } while (0)

// The words of nb consecutive blocks. Two blocks per iteration: one block's
// ten rounds are a chain of dependent multiplies, two independent chains fill the pipeline
// (twice the speed of one block at a time; three chains spill registers). Without AVX2 gcc
// cannot vectorise the 32x32->64 products, so this is scalar at the default flags.
#define QK_PHILOX_BODY(NB)                                                                         \
    for (int i = 0; i < (NB); i += 2) {                                                            \
        uint32_t a0 = b_lo + (uint32_t)i, a1 = b_hi, a2 = s_lo, a3 = s_hi;                         \
        uint32_t c0 = b_lo + (uint32_t)i + 1, c1 = b_hi, c2 = s_lo, c3 = s_hi;                     \
        for (int r = 0; r < 10; r++) {                                                             \
            QK_ROUND(a0, a1, a2, a3, k[2 * r], k[2 * r + 1]);                                      \
            QK_ROUND(c0, c1, c2, c3, k[2 * r], k[2 * r + 1]);                                      \
        }                                                                                          \
        w0[i] = a0;                                                                                \
        w1[i] = a1;                                                                                \
        w2[i] = a2;                                                                                \
        w3[i] = a3;                                                                                \
        w0[i + 1] = c0;                                                                            \
        w1[i + 1] = c1;                                                                            \
        w2[i + 1] = c2;                                                                            \
        w3[i + 1] = c3;                                                                            \
    }

// Round keys: k[2r], k[2r+1] for round r (the key bumped r times).
static void qk_round_keys(uint32_t k[20], uint64_t seed) {
    uint32_t k0 = (uint32_t)seed;
    uint32_t k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        k[2 * r] = k0;
        k[2 * r + 1] = k1;
        k0 += QK_W0;
        k1 += QK_W1;
    }
}

// Blocks b0 .. b0 + nb - 1 (b0 a multiple of nb, a power of two, so the high half of the
// block index is the same for all of them).
ATS_QK_INLINE void qk_philox(uint32_t *restrict w0, uint32_t *restrict w1, uint32_t *restrict w2,
                             uint32_t *restrict w3, const uint32_t k[20], uint64_t b0,
                             uint64_t stream, int nb) {
    uint32_t b_lo = (uint32_t)b0;
    uint32_t b_hi = (uint32_t)(b0 >> 32);
    uint32_t s_lo = (uint32_t)stream;
    uint32_t s_hi = (uint32_t)(stream >> 32);
    QK_PHILOX_BODY(nb)
}

// ----------------------------------------------------------------------------
// Per-key B, C = 1 - B, t = sqrt(1 - s^2) u for the three layouts of the file comment.

// Every loop below runs over nb keys, a compile-time constant after inlining (QK_L, or QK_S
// for the last few keys of a chunk, so that n = 1 does not pay for 256 keys).
struct qk_block {
    uint32_t w0[2 * QK_L], w1[2 * QK_L], w2[2 * QK_L], w3[2 * QK_L];
    double b[QK_L], c[QK_L], t[QK_L];
    double e[QK_L], ex[QK_L], e2[QK_L], eb[QK_L], et[QK_L];
};

ATS_QK_INLINE void qk_keys_d2(struct qk_block *restrict k, int nb) {
    for (int i = 0; i < nb; i++) {
        double v = ats_qk_u01(k->w0[i], k->w1[i]);
        double sgn = 1.0 - 2.0 * ats_qk_u52_to_double(k->w2[i] >> 31);
        double sa = ats_qk_sin(0.5 * ATS_QK_PI * v);
        double ca = ats_qk_sin(0.5 * ATS_QK_PI * (1.0 - v)); // 1 - v is exact
        k->b[i] = sa * sa;
        k->c[i] = ca * ca;
        k->t[i] = 2.0 * sa * ca * sgn;
    }
}

ATS_QK_INLINE void qk_keys_d3(struct qk_block *restrict k, int nb) {
    for (int i = 0; i < nb; i++) {
        double b = ats_qk_u01(k->w0[i], k->w1[i]);
        double v = ats_qk_u01(k->w2[i], k->w3[i]);
        double c = 1.0 - b;
        double u = ats_qk_sin(ATS_QK_PI * (0.5 - v)); // cos(pi v); 0.5 - v is exact
        k->b[i] = b;
        k->c[i] = c;
        k->t[i] = 2.0 * ats_qk_sqrt(b * c) * u;
    }
}

// cs = 2/(d-2), cu = 2/(d-3).
ATS_QK_INLINE void qk_keys_ulrich(struct qk_block *restrict k, double cs, double cu, int nb) {
    for (int i = 0; i < nb; i++) {
        double uu = ats_qk_u01(k->w0[2 * i], k->w1[2 * i]) + 0x1p-53;
        double v = ats_qk_u01(k->w2[2 * i], k->w3[2 * i]);
        double uu2 = ats_qk_u01(k->w0[2 * i + 1], k->w1[2 * i + 1]) + 0x1p-53;
        double v2 = ats_qk_u01(k->w2[2 * i + 1], k->w3[2 * i + 1]);
        double g, gm1, g2, g2m1;
        ats_qk_exp_expm1(cs * ats_qk_log(uu), &g, &gm1);
        ats_qk_exp_expm1(cu * ats_qk_log(uu2), &g2, &g2m1);
        double r = ats_qk_sqrt(-gm1);
        double vh = 0.5 - fabs(v - 0.5); // min(v, 1 - v), exactly
        double sa = ats_qk_sin(ATS_QK_PI * vh);
        double ca = ats_qk_sin(ATS_QK_PI * (0.5 - vh));
        double h = g / (2.0 * (1.0 + r));
        double b = h + r * (sa * sa);
        double c = h + r * (ca * ca);
        double aw = fabs(2.0 * v2 - 1.0); // cos(2 pi v2) = -sin(pi (1/2 - |2 v2 - 1|))
        double u = -ats_qk_sqrt(-g2m1) * ats_qk_sin(ATS_QK_PI * (0.5 - aw));
        k->b[i] = b;
        k->c[i] = c;
        k->t[i] = 2.0 * ats_qk_sqrt(b * c) * u;
    }
}

// ----------------------------------------------------------------------------
// Reduction of one sub-block

// Pairwise sum of x[0..nb-1] in a fixed tree (destroys x). Each level is a loop with a
// constant trip count, so it vectorises without changing the order of additions.
#define QK_LEVEL(x, w)                                                                             \
    if (nb > (w))                                                                                  \
        for (int i = 0; i < (w); i++)                                                              \
            x[i] += x[i + (w)];

ATS_QK_INLINE double qk_tree_sum(double *restrict x, int nb) {
    QK_LEVEL(x, 128)
    QK_LEVEL(x, 64)
    QK_LEVEL(x, 32)
    QK_LEVEL(x, 16)
    QK_LEVEL(x, 8)
    QK_LEVEL(x, 4)
    QK_LEVEL(x, 2)
    QK_LEVEL(x, 1)
    return x[0];
}

_Static_assert(QK_L == 256 && QK_S == 16, "qk_tree_sum is written for powers of two <= 256");

// From the clamped exponents in k->ex and the keep mask in k->e2 (qk_weights, and the PPP
// weights below): e = exp(-x) (0 where flushed), then e x, e^2, e v and e t for the sums.
ATS_QK_INLINE void qk_moments(struct qk_block *restrict k, const double *restrict v, int nb) {
    for (int i = 0; i < nb; i++) {
        double x = k->ex[i];
        double e = ats_qk_expneg_core(x) * k->e2[i];
        k->e[i] = e;
        k->ex[i] = e * x;
        k->e2[i] = e * e;
        k->eb[i] = e * v[i];
        k->et[i] = e * k->t[i];
    }
}

// e = exp(-2 beta (B - m)) and its products, for all nb entries (the caller zeroes the ones
// past the chunk's last key, whose B, drawn but unused, may lie below m: hence x >= 0 is
// enforced too). beta (2 (B - m)) rather than (2 beta)(B - m): no inf * 0 for beta near
// DBL_MAX. Two loops: the clamp and flush mask first (selects only), then the exponential.
ATS_QK_INLINE void qk_weights(struct qk_block *restrict k, double m, double beta, int nb) {
    for (int i = 0; i < nb; i++) {
        double x = beta * (2.0 * (k->b[i] - m));
        x = x > 0 ? x : 0;
        int keep = x < ATS_QK_EXP_FLUSH;
        k->ex[i] = keep ? x : ATS_QK_EXP_FLUSH; // x clamped (e = 0 beyond: no 0 * inf)
        k->e2[i] = keep ? 1.0 : 0.0;
    }
    qk_moments(k, k->b, nb);
}

// Running sums relative to a new minimum m_new <= p->bmin.
static void qk_rescale(struct ats_query_partial *p, double m_new, double beta) {
    if (p->keys == 0 || p->bmin == m_new) {
        p->bmin = m_new;
        return;
    }
    double delta = beta * (2.0 * (p->bmin - m_new));
    double f = exp(-delta);
    if (f == 0) {
        p->z = p->ex = p->e2 = p->eb = p->et = 0;
    } else {
        p->ex = f * (p->ex + delta * p->z); // each x grows by delta
        p->z *= f;
        p->e2 *= f * f;
        p->eb *= f;
        p->et *= f;
    }
    p->bmin = m_new;
}

// Inserts b into the ascending list top[0..*ntop) keeping at most topk entries.
static void qk_top_insert(double *top, int64_t *ntop, int64_t topk, double b) {
    int64_t i = *ntop < topk ? *ntop : topk - 1;
    if (*ntop < topk)
        (*ntop)++;
    while (i > 0 && top[i - 1] > b) {
        top[i] = top[i - 1];
        i--;
    }
    top[i] = b;
}

// Keys below this enter the top list: +inf while it has room, -inf when topk = 0.
static double qk_top_threshold(const struct ats_query_partial *p, int64_t topk) {
    if (topk == 0)
        return -HUGE_VAL;
    return p->ntop < topk ? HUGE_VAL : p->top[topk - 1];
}

// ----------------------------------------------------------------------------
// Public (internal) entry points

void ats_query_partial_empty(struct ats_query_partial *p) {
    p->bmin = HUGE_VAL;
    p->z = p->ex = p->e2 = p->eb = p->et = 0;
    p->keys = 0;
    p->ntop = 0;
    for (int i = 0; i < ATS_QUERY_TOPK_MAX; i++)
        p->top[i] = NAN;
}

// Keys j0 .. j0 + nv - 1 (nv <= nb) of the chunk into out.
ATS_QK_INLINE void qk_subblock(struct ats_query_partial *out, struct qk_block *restrict k,
                               const uint32_t rk[20], uint64_t stream, int64_t d, int64_t j0,
                               int nv, double beta, int64_t topk, int nb) {
    if (d >= 4) {
        qk_philox(k->w0, k->w1, k->w2, k->w3, rk, (uint64_t)(2 * j0), stream, 2 * nb);
        qk_keys_ulrich(k, 2.0 / (double)(d - 2), 2.0 / (double)(d - 3), nb);
    } else {
        qk_philox(k->w0, k->w1, k->w2, k->w3, rk, (uint64_t)j0, stream, nb);
        if (d == 2)
            qk_keys_d2(k, nb);
        else
            qk_keys_d3(k, nb);
    }
    // Scalar pass: sub-block minimum and the top-k smallest (rarely taken branches).
    double bm = HUGE_VAL;
    double thr = qk_top_threshold(out, topk);
    for (int i = 0; i < nv; i++) {
        double b = k->b[i];
        if (b < bm)
            bm = b;
        if (b < thr) {
            qk_top_insert(out->top, &out->ntop, topk, b);
            thr = qk_top_threshold(out, topk);
        }
    }
    if (bm < out->bmin)
        qk_rescale(out, bm, beta);
    qk_weights(k, out->bmin, beta, nb);
    for (int i = nv; i < nb; i++)
        k->e[i] = k->ex[i] = k->e2[i] = k->eb[i] = k->et[i] = 0;
    out->z += qk_tree_sum(k->e, nb);
    out->ex += qk_tree_sum(k->ex, nb);
    out->e2 += qk_tree_sum(k->e2, nb);
    out->eb += qk_tree_sum(k->eb, nb);
    out->et += qk_tree_sum(k->et, nb);
    out->keys += nv;
}

// The two instances (constant nb), compiled separately.
static void qk_subblock_long(struct ats_query_partial *out, struct qk_block *restrict k,
                             const uint32_t rk[20], uint64_t stream, int64_t d, int64_t j0, int nv,
                             double beta, int64_t topk) {
    qk_subblock(out, k, rk, stream, d, j0, nv, beta, topk, QK_L);
}

static void qk_subblock_short(struct ats_query_partial *out, struct qk_block *restrict k,
                              const uint32_t rk[20], uint64_t stream, int64_t d, int64_t j0, int nv,
                              double beta, int64_t topk) {
    qk_subblock(out, k, rk, stream, d, j0, nv, beta, topk, QK_S);
}

void ats_query_chunk(struct ats_query_partial *out, uint64_t seed, uint64_t stream, int64_t d,
                     int64_t keys, double beta, int64_t topk) {
    ATS_ASSERT(out && d >= 2 && keys >= 1 && beta >= 0 && topk >= 0 && topk <= ATS_QUERY_TOPK_MAX);
    struct qk_block blk;
    uint32_t rk[20];
    qk_round_keys(rk, seed);
    ats_query_partial_empty(out);
    for (int64_t j0 = 0; j0 < keys; j0 += QK_L) {
        int nv = keys - j0 < QK_L ? (int)(keys - j0) : QK_L;
        if (nv <= QK_S)
            qk_subblock_short(out, &blk, rk, stream, d, j0, nv, beta, topk);
        else
            qk_subblock_long(out, &blk, rk, stream, d, j0, nv, beta, topk);
    }
}

// ----------------------------------------------------------------------------
// The PPP sampler: one batch of points

void ats_query_ppp_init(struct ats_query_ppp *st) {
    st->g = st->y1 = 0;
    st->z = st->ex = st->e2 = st->eg = st->ep = 0;
    st->k = 0;
    for (int i = 0; i < ATS_QUERY_TOPK_MAX; i++)
        st->top[i] = NAN;
}

_Static_assert(ATS_QUERY_PPP_BATCH <= QK_L && ATS_QUERY_PPP_BATCH >= ATS_QUERY_TOPK_MAX &&
                   (ATS_QUERY_PPP_BATCH & (ATS_QUERY_PPP_BATCH - 1)) == 0,
               "a PPP batch fits a block, holds the top weights, and is a power of two");

static void qk_ppp_batch(struct ats_query_ppp *st, struct qk_block *restrict k,
                         const uint32_t rk[20], uint64_t stream, int64_t d, double a, double logk) {
    enum { nb = ATS_QUERY_PPP_BATCH };
    // E_k into b, u_k into c (the words as ats_query_chunk's keys).
    if (d >= 4) {
        qk_philox(k->w0, k->w1, k->w2, k->w3, rk, (uint64_t)(2 * st->k), stream, 2 * nb);
        double cu = 2.0 / (double)(d - 3);
        for (int i = 0; i < nb; i++) {
            double uu = ats_qk_u01(k->w0[2 * i], k->w1[2 * i]) + 0x1p-53;
            double uu2 = ats_qk_u01(k->w2[2 * i], k->w3[2 * i]) + 0x1p-53;
            double v2 = ats_qk_u01(k->w0[2 * i + 1], k->w1[2 * i + 1]);
            double g2, g2m1;
            ats_qk_exp_expm1(cu * ats_qk_log(uu2), &g2, &g2m1);
            double aw = fabs(2.0 * v2 - 1.0);
            k->b[i] = -ats_qk_log(uu);
            k->c[i] = -ats_qk_sqrt(-g2m1) * ats_qk_sin(ATS_QK_PI * (0.5 - aw));
        }
    } else {
        qk_philox(k->w0, k->w1, k->w2, k->w3, rk, (uint64_t)st->k, stream, nb);
        for (int i = 0; i < nb; i++)
            k->b[i] = -ats_qk_log(ats_qk_u01(k->w0[i], k->w1[i]) + 0x1p-53);
        if (d == 2) {
            for (int i = 0; i < nb; i++)
                k->c[i] = 1.0 - 2.0 * ats_qk_u52_to_double(k->w2[i] >> 31);
        } else {
            for (int i = 0; i < nb; i++)
                k->c[i] = ats_qk_sin(ATS_QK_PI * (0.5 - ats_qk_u01(k->w2[i], k->w3[i])));
        }
    }
    // Gamma_k: running sums, in order (scalar). A point at Gamma = 0 (E_1 = 0, probability
    // 2^-53) is taken at DBL_MIN for its logarithm below: Gamma^p and X then ~1e-300, not 0.
    double g = st->g;
    for (int i = 0; i < nb; i++) {
        g += k->b[i];
        k->b[i] = g > DBL_MIN ? g : DBL_MIN;
    }
    st->g = g;
    // Gamma^p into c... and X u into t: p = 2/(d-1), X = exp((log Gamma - log kappa)/(d-1)).
    double pw = 2.0 / (double)(d - 1);
    double inv = 1.0 / (double)(d - 1);
    for (int i = 0; i < nb; i++) {
        double lg = ats_qk_log(k->b[i]);
        double x, xm1;
        ats_qk_exp_expm1((lg - logk) * inv, &x, &xm1);
        k->t[i] = x * k->c[i];
    }
    if (d == 3) {
        for (int i = 0; i < nb; i++)
            k->c[i] = k->b[i];
    } else if (d == 2) {
        for (int i = 0; i < nb; i++)
            k->c[i] = k->b[i] * k->b[i];
    } else {
        for (int i = 0; i < nb; i++) {
            double gp, gm1;
            ats_qk_exp_expm1(pw * ats_qk_log(k->b[i]), &gp, &gm1);
            k->c[i] = gp;
        }
    }
    if (st->k == 0)
        st->y1 = a * k->c[0];
    double y1 = st->y1;
    for (int i = 0; i < nb; i++) {
        double x = a * k->c[i] - y1; // >= 0: Gamma^p increases
        int keep = x < ATS_QK_EXP_FLUSH;
        k->ex[i] = keep ? x : ATS_QK_EXP_FLUSH;
        k->e2[i] = keep ? 1.0 : 0.0;
    }
    qk_moments(k, k->c, nb);
    if (st->k == 0)
        for (int i = 0; i < ATS_QUERY_TOPK_MAX; i++)
            st->top[i] = k->e[i];
    st->z += qk_tree_sum(k->e, nb);
    st->ex += qk_tree_sum(k->ex, nb);
    st->e2 += qk_tree_sum(k->e2, nb);
    st->eg += qk_tree_sum(k->eb, nb);
    st->ep += qk_tree_sum(k->et, nb);
    st->k += nb;
}

void ats_query_ppp_batch(struct ats_query_ppp *st, uint64_t seed, uint64_t stream, int64_t d,
                         double a, double logk) {
    ATS_ASSERT(st && d >= 2 && a > 0 && st->k % ATS_QUERY_PPP_BATCH == 0);
    struct qk_block blk;
    uint32_t rk[20];
    qk_round_keys(rk, seed);
    qk_ppp_batch(st, &blk, rk, stream, d, a, logk);
}

// ----------------------------------------------------------------------------
// Merging partials

void ats_query_partial_merge(struct ats_query_partial *acc, const struct ats_query_partial *part,
                             double beta, int64_t topk) {
    ATS_ASSERT(acc && part && acc != part);
    if (part->keys == 0)
        return;
    if (acc->keys == 0) {
        *acc = *part;
        return;
    }
    struct ats_query_partial q = *part;
    double m = acc->bmin < q.bmin ? acc->bmin : q.bmin;
    qk_rescale(acc, m, beta);
    qk_rescale(&q, m, beta);
    acc->z += q.z;
    acc->ex += q.ex;
    acc->e2 += q.e2;
    acc->eb += q.eb;
    acc->et += q.et;
    acc->keys += q.keys;
    // Merge the two ascending top lists, keeping the topk smallest.
    double top[ATS_QUERY_TOPK_MAX];
    int64_t i = 0, j = 0, n = 0;
    while (n < topk && (i < acc->ntop || j < q.ntop)) {
        if (j >= q.ntop || (i < acc->ntop && acc->top[i] <= q.top[j]))
            top[n++] = acc->top[i++];
        else
            top[n++] = q.top[j++];
    }
    for (int64_t l = 0; l < n; l++)
        acc->top[l] = top[l];
    acc->ntop = n;
}
