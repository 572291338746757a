/*
 * test_phase.c: the paper-1 self-attention engine on general tokens (ats_tokens_draw,
 * ats_tokens_check, ats_tokens_load, ats_layer_metrics; THEORY.md 2.1, 2.4-2.8, 2.10):
 *   1. every metric of the blocked engine (f64 and f32; block sizes 1, 3, 7 and automatic;
 *      pairs = 2, exact eta) against the long-double reference (src/kernels/ref/) on random
 *      almost-simplex tokens with rescaled rows and on sphere tokens, n in {1, 2, 3, 7, 33,
 *      100}, d in {1, 2, 3, 5, 16, 64}, alpha in {0, 0.7}, beta in {0, 0.5, 3, 12, 40}, each
 *      within an error budget derived from the working precision (see "Error budget"; the
 *      summary lines give the worst err/budget);
 *   2. exact eta against the Jacobian blocks (1) and against central finite differences of
 *      the whole reference layer (n, d <= 6);
 *   3. Hutchinson eta: a single probe's value is |J V|^2/(n d) for one of the 2^(nd)
 *      Rademacher V (J from finite differences, every V enumerated), the mean of 400 probes is
 *      within 4 standard errors of exact eta (the exact variance of one probe from J), and the
 *      reported per-probe variance is within 4 of its own standard errors (exact fourth moment
 *      by enumeration);
 *   4. exact simplex tokens against the closed forms of ats_simplex_eval (THEORY.md 2.2, 2.6)
 *      for n in {4, 50, 300}, and THEORY.md 2.10's table (n = 6, d = 9);
 *   5. almost-simplex tokens approach the simplex as d grows (n = 64, d = 64 and 4096);
 *   6. results bit for bit the same for 1, 2 and 3 threads and OpenMP's default;
 *   7. every error path (tokens, layer parameters, .npy files), with the bad row named;
 *   8. token statistics (almost-simplex moments, sphere norms and moments, streams).
 *
 *   make build/tests/test_phase && build/tests/test_phase      (ATS_TEST_QUIET=1: failures only)
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "attnscale.h"
#include "kernels/ref/ref.h"
#include "test.h"

#define E LDBL_EPSILON

// ----------------------------------------------------------------------------
// Helpers

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void *xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "test_phase: out of memory\n");
        exit(2);
    }
    return p;
}
#define ALLOC(p, count) ((p) = xmalloc((size_t)(count) * sizeof *(p)))

static char last_reason[1024]; // the last reason the library reported
static int last_status;

static void capture(const char *reason, const char *file, int line, int status) {
    (void)file;
    (void)line;
    snprintf(last_reason, sizeof last_reason, "%s", reason);
    last_status = status;
}

static void reason_reset(void) {
    last_reason[0] = '\0';
    last_status = -1;
}

// xorshift64* (Vigna 2016) for test inputs that must not come from the library's own RNG.
struct gen {
    uint64_t s;
};

static uint64_t gen_u64(struct gen *g) {
    g->s ^= g->s >> 12;
    g->s ^= g->s << 25;
    g->s ^= g->s >> 27;
    return g->s * UINT64_C(2685821657736338717);
}

static double gen_uniform(struct gen *g, double lo, double hi) {
    return lo + (hi - lo) * ((double)(gen_u64(g) >> 11) + 0.5) * 0x1p-53;
}

static struct ats_layer_params params(int64_t n, int64_t d, double alpha, const double *beta,
                                      int64_t nbeta) {
    struct ats_layer_params p = ats_layer_params_default();
    p.n = n;
    p.d = d;
    p.alpha = alpha;
    p.beta = beta;
    p.nbeta = nbeta;
    // One thread unless a test says otherwise: results do not depend on it (test_threads
    // checks that), and OpenMP's spinning workers next to OpenBLAS's threads make many small
    // calls slow on a loaded machine.
    p.threads = 1;
    return p;
}

// Tokens of a kind that must be drawable: a failure is reported once per call site and the
// tokens are then a fixed non-degenerate pattern, so the test goes on (and fails where it must).
static void draw_ok(double *x, enum ats_tokens kind, int64_t n, int64_t d, double rho,
                    uint64_t seed, uint64_t stream) {
    int rc = ats_tokens_draw(x, kind, n, d, rho, seed, stream);
    if (rc != ATS_STATUS_OK) {
        ATS_CHECK(0, "ats_tokens_draw(%s, n %lld, d %lld, rho %g) failed: %s (%s)",
                  ats_tokens_name(kind), (long long)n, (long long)d, rho, ats_strerror(rc),
                  last_reason);
        for (int64_t t = 0; t < n * d; t++)
            x[t] = 1 + (double)((t * 7919) % 101) / 50;
    }
}

// ----------------------------------------------------------------------------
// Tallies: many comparisons, one summary line. The first TALLY_PRINT failures of a tally are
// printed (and counted) one by one, the summary fails too when any did.

#define TALLY_PRINT 8

struct tally {
    char name[96];
    long count, bad, unbounded;
    long double worst; // largest err / tol seen
    char worst_case[200];
};

static void tally_init(struct tally *t, const char *name) {
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    snprintf(t->worst_case, sizeof t->worst_case, "-");
}

// got against ref with absolute tolerance tol. ref NaN: got must be NaN. tol infinite (an
// ill-conditioned case, see em_lambda): got must only be finite.
#if defined(__GNUC__)
__attribute__((format(printf, 5, 6)))
#endif
static void tally_add(struct tally *t, long double got, long double ref, long double tol,
                      const char *fmt, ...) {
    char label[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(label, sizeof label, fmt, ap);
    va_end(ap);
    t->count++;
    long double err = fabsl(got - ref), ratio = 0;
    int ok;
    if (isnan(ref)) {
        ok = isnan(got) != 0;
        ratio = ok ? 0 : INFINITY;
    } else if (isinf(tol)) {
        t->unbounded++;
        ok = isfinite(got) != 0;
        ratio = ok ? 0 : INFINITY;
    } else {
        ok = isfinite(got) && err <= tol;
        ratio = !isfinite(got) ? INFINITY : tol > 0 ? err / tol : err > 0 ? INFINITY : 0;
    }
    if (ratio > t->worst || (t->count == 1 && !ok)) {
        t->worst = ratio;
        snprintf(t->worst_case, sizeof t->worst_case, "%s", label);
    }
    if (!ok) {
        t->bad++;
        if (t->bad <= TALLY_PRINT)
            ATS_CHECK(0, "%s: %s (got %.17Lg ref %.17Lg err %.3Lg tol %.3Lg)", t->name, label, got,
                      ref, err, tol);
    }
}

static void tally_done(const struct tally *t) {
    ATS_CHECK(t->bad == 0 && t->count > 0,
              "%s: %ld comparisons, %ld outside the budget, %ld ill-conditioned (finite only); "
              "worst err/budget %.3Lg (%s)",
              t->name, t->count, t->bad, t->unbounded, t->worst, t->worst_case);
}

// ----------------------------------------------------------------------------
// Error budget
//
// Absolute error bounds for the engine's metrics, from first-order rounding analysis in the
// working precision u (DBL_EPSILON for f64; FLT_EPSILON for f32, whose tokens are rounded to
// float and whose GEMMs run in float). A length-k dot product or sum carries at most k u
// relative to the sum of the absolute values of its terms (Higham, Accuracy and Stability of
// Numerical Algorithms, 2nd ed., 3.1); every constant below is rounded up.
//   eG = (d + 4) u                 any cosine <y_i, y_j>: rounding x, its norm and the dot
//   eA = 2 beta eG + (n + 4) u     relative error of any A_ij: the logit error beta eG enters
//                                  the numerator and the softmax sum, then exp, an n-term sum
//                                  and a division
//   |err x_i'| <= eA + (n + d + 8) u + 2 alpha r_i u        (A Y: sum_j A_ij = 1, |y_j| = 1)
//   |err y_i'| <= 2 |err x_i'| / |x_i'| + (d + 4) u          (normalising: tangential + radial)
//   err <y_i', y_j'> <= |err y_i'| + |err y_j'| + (2n + d + 8) u (1 + alpha r_i)(1 + alpha r_j)
//                       / (|x_i'| |x_j'|)     (the last term covers an output Gram computed as
//                                              A G A^T, THEORY.md 2.8)
// Row metrics: a_self: eA A_ii; entropy: 2 eA (H_i + 1) (dH = -sum dA_j log A_j with |dA_j| <=
// eA A_j and sum_j A_j |log A_j| = H_i); support 1/sum A^2: (4 eA + n u) S_i. Pair metrics:
// see em_lambda and em_angle. Means add count * DBL_EPSILON (sums in double) and the whole is
// doubled (K = 2) for second-order terms. eta: see em_eta.

struct em {
    long double u, eG, eA, n, d, beta, alpha;
};

static struct em em_make(int64_t n, int64_t d, long double beta, long double alpha,
                         long double u) {
    struct em m;
    m.u = u;
    m.n = (long double)n;
    m.d = (long double)d;
    m.beta = beta;
    m.alpha = alpha;
    m.eG = (m.d + 4) * u;
    m.eA = 2 * beta * m.eG + (m.n + 4) * u;
    return m;
}

// Bound on |err x_i'| for a token of norm r.
static long double em_out(const struct em *m, long double r) {
    return m->eA + (m->n + m->d + 8) * m->u + 2 * m->alpha * r * m->u;
}

// Bound on |err y_i'| for a token of norm r whose output has norm xn.
static long double em_dir(const struct em *m, long double r, long double xn) {
    return 2 * em_out(m, r) / xn + (m->d + 4) * m->u;
}

// Bound on the error of an output cosine <y_i', y_j'>.
static long double em_cos_out(const struct em *m, long double ri, long double xni, long double rj,
                              long double xnj) {
    return em_dir(m, ri, xni) + em_dir(m, rj, xnj) +
           (2 * m->n + m->d + 8) * m->u * (1 + m->alpha * ri) * (1 + m->alpha * rj) / (xni * xnj);
}

// Bound on |acos(c + e') - acos(c)| for |e'| <= e: the derivative bound 1/sqrt(1 - (|c|+e)^2)
// on the interval, and everywhere the 1/2-Hoelder bound pi/sqrt(2) sqrt(e) < 2.25 sqrt(e)
// (its worst case is acos(-1) - acos(1) = pi with |a - b| = 2).
static long double dacos(long double c, long double e) {
    long double hoelder = 2.25L * sqrtl(e), a = fabsl(c) + e;
    if (a < 1)
        return fminl(e / sqrtl((1 - a) * (1 + a)), hoelder);
    return hoelder;
}

// lambda_ij = N/D, N = 1 - <y_i', y_j'> (error ec), D = 1 - <y_i, y_j> (error eG):
// |N'/D' - N/D| <= (ec + lambda_ij eG)/(D - eG). Infinite (not comparable) when D <= 2 eG:
// the pair is parallel to working precision and its lambda_ij is not determined.
static long double em_lambda(const struct em *m, long double ec, long double omc,
                             long double lam) {
    return omc > 2 * m->eG ? (ec + lam * m->eG) / (omc - m->eG) : INFINITY;
}

// The same for lambda_angle_ij = acos<y_i', y_j'>/acos<y_i, y_j> with dacos.
static long double em_angle(const struct em *m, long double ec, long double cout, long double cin,
                            long double thin, long double ang) {
    long double dto = dacos(cout, ec), dti = dacos(cin, m->eG);
    return thin > 2 * dti ? (dto + ang * dti) / (thin - dti) : INFINITY;
}

// eta = (1/(n d)) sum_i [||J_ii||^2 + sum_k ||J_ik||^2] (THEORY.md 2.5). Its Gram-form sums
// (T1, T2, <u, w>, |u|^2, |w|^2) add O(1) terms of G and g = G p with absolute errors ~eG + n u
// and enter multiplied by up to beta^2 times weights A_ik^2/r_k^2 <= S = (max_k 1/r_k +
// alpha)^2; everything else is relative rounding of eta. 16 covers the handful of such terms:
//   |err eta| <= 16 (1 + beta)^2 (eG + n u) (eta + S/d).
static long double em_eta(const struct em *m, long double eta, long double S) {
    return 16 * (1 + m->beta) * (1 + m->beta) * (m->eG + m->n * m->u) * (eta + S / m->d);
}

// ----------------------------------------------------------------------------
// The long-double reference metrics (THEORY.md 2.1, 2.5, 2.8 and the header's definitions)

enum { M_A, M_H, M_S, M_RHO, M_LAM, M_ANG, M_ETA, M_COUNT };
static const char *const mname[M_COUNT] = {"a_self", "entropy", "support", "rho_out",
                                           "lambda", "lambda_angle", "eta"};
static const long double uprec[2] = {DBL_EPSILON, FLT_EPSILON};
static const char *const pname[2] = {"f64", "f32"};
static const enum ats_precision precs[2] = {ATS_PRECISION_F64, ATS_PRECISION_F32};

static double metric(const struct ats_layer_metrics *o, int k) {
    switch (k) {
    case M_A:
        return o->a_self;
    case M_H:
        return o->entropy;
    case M_S:
        return o->support;
    case M_RHO:
        return o->rho_out;
    case M_LAM:
        return o->lambda;
    case M_ANG:
        return o->lambda_angle;
    default:
        return o->eta;
    }
}

// The beta-independent part: tokens, unit rows, norms, Gram matrix, and per pair
// 1 - <y_i, y_j> = |y_i - y_j|^2/2 and the angle 2 asin(|y_i - y_j|/2) (no cancellation).
struct refset {
    int64_t n, d;
    long double *x, *y, *r, *G, *omc, *th;
    long double *xo, *yo, *ro, *p, *lws, *ews;
    long double rinv_max; // max_k 1/r_k
    int ok;
};

static void refset_init(struct refset *t, const double *x, int64_t n, int64_t d) {
    t->n = n;
    t->d = d;
    ALLOC(t->x, n * d);
    ALLOC(t->y, n * d);
    ALLOC(t->r, n);
    ALLOC(t->G, n * n);
    ALLOC(t->omc, n * n);
    ALLOC(t->th, n * n);
    ALLOC(t->xo, n * d);
    ALLOC(t->yo, n * d);
    ALLOC(t->ro, n);
    ALLOC(t->p, n);
    ALLOC(t->lws, ats_ref_layer_ws_len(n, d));
    ALLOC(t->ews, ats_ref_eta_blocks_row_ws_len(n, d));
    for (int64_t k = 0; k < n * d; k++)
        t->x[k] = x[k];
    t->rinv_max = 0;
    t->ok = ats_ref_normalize(t->y, t->r, t->x, n, d) == ATS_STATUS_OK;
    if (!t->ok)
        return;
    ats_ref_gram(t->G, t->y, n, d);
    for (int64_t i = 0; i < n; i++) {
        t->rinv_max = fmaxl(t->rinv_max, 1 / t->r[i]);
        for (int64_t j = i + 1; j < n; j++) {
            long double s = 0;
            for (int64_t l = 0; l < d; l++) {
                long double v = t->y[i * d + l] - t->y[j * d + l];
                s += v * v;
            }
            t->omc[i * n + j] = s / 2;
            t->th[i * n + j] = 2 * asinl(fminl(sqrtl(s) / 2, 1));
        }
    }
}

static void refset_clear(struct refset *t) {
    free(t->x);
    free(t->y);
    free(t->r);
    free(t->G);
    free(t->omc);
    free(t->th);
    free(t->xo);
    free(t->yo);
    free(t->ro);
    free(t->p);
    free(t->lws);
    free(t->ews);
}

// Reference metrics val at (beta, alpha) and their budgets bud[precision] (absolute).
// pairs as in ats_layer_params (1: rho_out and lambda, 2: also lambda_angle); eta: 1 for the
// exact eta. Metrics not asked for are NaN with budget 0.
static void ref_eval(long double val[M_COUNT], long double bud[2][M_COUNT], struct refset *t,
                     long double beta, long double alpha, int pairs, int eta) {
    const int64_t n = t->n, d = t->d;
    const long double nl = (long double)n;
    struct em m[2] = {em_make(n, d, beta, alpha, uprec[0]), em_make(n, d, beta, alpha, uprec[1])};
    for (int k = 0; k < M_COUNT; k++) {
        val[k] = NAN;
        bud[0][k] = bud[1][k] = 0;
    }
    if (!t->ok)
        return;

    // Rows: the softmax of beta G_i. is the reference forward pass's attention row bit for bit.
    long double sa = 0, sh = 0, ss = 0, ba[2] = {0, 0}, bh[2] = {0, 0}, bs[2] = {0, 0};
    for (int64_t i = 0; i < n; i++) {
        ats_ref_softmax(t->p, t->G + i * n, n, beta);
        long double q2 = 0, h = 0;
        for (int64_t j = 0; j < n; j++) {
            long double pj = t->p[j];
            q2 += pj * pj;
            if (pj > 0)
                h -= pj * logl(pj);
        }
        sa += t->p[i];
        sh += h;
        ss += 1 / q2;
        for (int q = 0; q < 2; q++) {
            ba[q] += m[q].eA * t->p[i];
            bh[q] += 2 * m[q].eA * (h + 1);
            bs[q] += (4 * m[q].eA + nl * m[q].u) / q2;
        }
    }
    val[M_A] = sa / nl;
    val[M_H] = sh / nl;
    val[M_S] = ss / nl;
    for (int q = 0; q < 2; q++) {
        bud[q][M_A] = 2 * (ba[q] / nl + nl * DBL_EPSILON * val[M_A]);
        bud[q][M_H] = 2 * (bh[q] / nl + nl * DBL_EPSILON * val[M_H]);
        bud[q][M_S] = 2 * (bs[q] / nl + nl * DBL_EPSILON * val[M_S]);
    }

    if (pairs && n >= 2 &&
        ats_ref_layer_forward(t->xo, t->x, n, d, beta, alpha, t->lws) == ATS_STATUS_OK &&
        ats_ref_normalize(t->yo, t->ro, t->xo, n, d) == ATS_STATUS_OK) {
        long double sr = 0, sl = 0, sg = 0, br[2] = {0, 0}, bl[2] = {0, 0}, bg[2] = {0, 0};
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = i + 1; j < n; j++) {
                long double dd = 0, cc = 0;
                for (int64_t l = 0; l < d; l++) {
                    long double a = t->yo[i * d + l], b = t->yo[j * d + l];
                    dd += (a - b) * (a - b);
                    cc += a * b;
                }
                long double omc = t->omc[i * n + j], th = t->th[i * n + j];
                long double lam = (dd / 2) / omc;
                long double ang = 2 * asinl(fminl(sqrtl(dd) / 2, 1)) / th;
                sr += cc;
                sl += lam;
                sg += ang;
                for (int q = 0; q < 2; q++) {
                    long double ec = em_cos_out(&m[q], t->r[i], t->ro[i], t->r[j], t->ro[j]);
                    br[q] += ec;
                    bl[q] += em_lambda(&m[q], ec, omc, lam);
                    bg[q] += em_angle(&m[q], ec, cc, t->G[i * n + j], th, ang);
                }
            }
        long double np = nl * (nl - 1) / 2;
        val[M_RHO] = sr / np;
        val[M_LAM] = sl / np;
        val[M_ANG] = pairs > 1 ? sg / np : NAN;
        for (int q = 0; q < 2; q++) {
            bud[q][M_RHO] = 2 * (br[q] / np + np * DBL_EPSILON * fabsl(val[M_RHO]));
            bud[q][M_LAM] = 2 * (bl[q] / np + np * DBL_EPSILON * val[M_LAM]);
            bud[q][M_ANG] = 2 * (bg[q] / np + np * DBL_EPSILON * val[M_ANG]);
        }
    }

    if (eta) {
        long double s = 0;
        for (int64_t i = 0; i < n; i++)
            s += ats_ref_eta_blocks_row(t->G, t->y, t->r, n, d, i, beta, alpha, t->ews);
        val[M_ETA] = s / (nl * (long double)d);
        long double S = (t->rinv_max + alpha) * (t->rinv_max + alpha);
        for (int q = 0; q < 2; q++)
            bud[q][M_ETA] = em_eta(&m[q], val[M_ETA], S);
    }
}

// ----------------------------------------------------------------------------
// 1-2. The engine against the reference on random tokens

// Token sets of test 1: almost-simplex (rho 0.3) with every row rescaled by a factor in
// [0.3, 3] (so the residual and the 1/r_k of the Jacobian see different norms), and sphere.
static void tokens_random(double *x, int kind, int64_t n, int64_t d, uint64_t stream) {
    if (kind == 0) {
        draw_ok(x, ATS_TOKENS_ALMOST_SIMPLEX, n, d, 0.3, 2385, stream);
        struct gen g = {UINT64_C(0x9e3779b97f4a7c15) ^ stream};
        for (int64_t i = 0; i < n; i++) {
            double s = gen_uniform(&g, 0.3, 3);
            for (int64_t l = 0; l < d; l++)
                x[i * d + l] *= s;
        }
    } else {
        draw_ok(x, ATS_TOKENS_SPHERE, n, d, 0, 2385, stream);
    }
}

static void test_engine_vs_ref(void) {
    static const int64_t ns[6] = {1, 2, 3, 7, 33, 100}, ds[6] = {1, 2, 3, 5, 16, 64};
    static const double betas[5] = {0, 0.5, 3, 12, 40};
    static const double alphas[2] = {0, 0.7};
    static const int64_t blocks[4] = {1, 3, 7, 0};
    static const char *const kinds[2] = {"almost-simplex (rescaled rows)", "sphere"};
    struct tally tal[2][M_COUNT], status;
    char name[96];
    for (int q = 0; q < 2; q++)
        for (int k = 0; k < M_COUNT; k++) {
            snprintf(name, sizeof name, "engine %s vs long-double reference: %s", pname[q],
                     mname[k]);
            tally_init(&tal[q][k], name);
        }
    tally_init(&status, "engine calls on random tokens return OK");
    long double val[5][M_COUNT], bud[5][2][M_COUNT];
    struct ats_layer_metrics out[5];
    double *x;
    ALLOC(x, 100 * 64);
    for (int kind = 0; kind < 2; kind++)
        for (int in = 0; in < 6; in++)
            for (int id = 0; id < 6; id++) {
                const int64_t n = ns[in], d = ds[id];
                // d = 1: all tokens are +-1, pairs of equal sign are parallel (lambda undefined).
                const int pairs = n >= 2 && d >= 2 ? 2 : 0;
                // The reference eta costs n^3 per beta: at n = 100 only for d = 2 and 64 (the
                // engine computes it everywhere; other n cover the other d).
                const int eta_ref = n <= 33 || d == 2 || d == 64;
                tokens_random(x, kind, n, d, (uint64_t)(1000 * kind + 10 * in + id));
                struct refset t;
                refset_init(&t, x, n, d);
                for (int ia = 0; ia < 2; ia++) {
                    for (int b = 0; b < 5; b++)
                        ref_eval(val[b], bud[b], &t, betas[b], alphas[ia], pairs, eta_ref);
                    for (int q = 0; q < 2; q++)
                        for (int ib = 0; ib < 4; ib++) {
                            struct ats_layer_params p = params(n, d, alphas[ia], betas, 5);
                            p.pairs = pairs;
                            p.eta = ATS_ETA_EXACT;
                            p.precision = precs[q];
                            p.block = blocks[ib];
                            reason_reset();
                            int rc = ats_layer_metrics(out, x, &p);
                            // The engine refuses pairs parallel to its working precision
                            // (header: 1 - cosine <= 8 (d + 4) eps): expect EDOM exactly when
                            // the reference has such a pair (up to a factor 2 either side of
                            // the threshold, where the precision's own rounding decides).
                            long double thr = 8 * (long double)(d + 4) * uprec[q], mo = 2;
                            for (int64_t a = 0; pairs && a < n; a++)
                                for (int64_t c = a + 1; c < n; c++)
                                    mo = fminl(mo, t.omc[a * n + c]);
                            if (pairs && mo <= 2 * thr && mo >= thr / 2)
                                continue;
                            if (pairs && mo < thr / 2) {
                                tally_add(&status, rc, ATS_STATUS_EDOM, 0,
                                          "%s n %lld d %lld %s: a pair at 1 - cosine %.3Lg is "
                                          "refused (%s)",
                                          kinds[kind], (long long)n, (long long)d, pname[q], mo,
                                          last_reason);
                                continue;
                            }
                            tally_add(&status, rc, 0, 0,
                                      "%s n %lld d %lld alpha %g %s block %lld: %s (%s)",
                                      kinds[kind], (long long)n, (long long)d, alphas[ia],
                                      pname[q], (long long)blocks[ib], ats_strerror(rc),
                                      last_reason);
                            if (rc != ATS_STATUS_OK)
                                continue;
                            for (int b = 0; b < 5; b++) {
                                for (int k = 0; k < M_COUNT; k++)
                                    if (k != M_ETA || eta_ref)
                                            tally_add(&tal[q][k], metric(&out[b], k), val[b][k],
                                                  bud[b][q][k],
                                                  "%s n %lld d %lld alpha %g beta %g block %lld",
                                                  kinds[kind], (long long)n, (long long)d,
                                                  alphas[ia], betas[b], (long long)blocks[ib]);
                                // Exact eta reports no variance (the header: 0 for exact).
                                tally_add(&status, out[b].eta_var, 0, 0,
                                          "%s n %lld d %lld %s: eta_var of exact eta is 0",
                                          kinds[kind], (long long)n, (long long)d, pname[q]);
                            }
                        }
                }
                refset_clear(&t);
            }
    tally_done(&status);
    for (int q = 0; q < 2; q++)
        for (int k = 0; k < M_COUNT; k++)
            tally_done(&tal[q][k]);
    free(x);
}

// Metrics not asked for are NaN; beta = 0 is uniform attention: a_self = 1/n, entropy = log n,
// support = n (the reference covers these too; here without it, as a cross-check).
static void test_not_asked(void) {
    const int64_t n = 7, d = 5;
    double x[7 * 5];
    tokens_random(x, 0, n, d, 77);
    const double beta[2] = {0, 2.385};
    struct ats_layer_metrics o[2];
    struct ats_layer_params p = params(n, d, 0.7, beta, 2);
    int rc = ats_layer_metrics(o, x, &p);
    ATS_CHECK(rc == ATS_STATUS_OK, "pairs 0, eta none: OK (%s)", ats_strerror(rc));
    ATS_CHECK(isnan(o[1].rho_out) && isnan(o[1].lambda) && isnan(o[1].lambda_angle),
              "pairs 0: rho_out, lambda, lambda_angle are NaN");
    ATS_CHECK(isnan(o[1].eta) && isnan(o[1].eta_var), "eta none: eta and eta_var are NaN");
    // pairs 1: rho_out and lambda without lambda_angle, the same values as with pairs 2 (the
    // same pass; 4 ulps leave room for a different summation).
    struct ats_layer_metrics o1[2], o2[2];
    p.pairs = 1;
    int rc1 = ats_layer_metrics(o1, x, &p);
    p.pairs = 2;
    int rc2 = ats_layer_metrics(o2, x, &p);
    ATS_CHECK(rc1 == ATS_STATUS_OK && rc2 == ATS_STATUS_OK && isnan(o1[1].lambda_angle) &&
                  isfinite(o2[1].lambda_angle) && isfinite(o1[1].lambda),
              "pairs 1: lambda_angle NaN, rho_out and lambda finite; pairs 2: lambda_angle finite");
    ATS_CHECK_CLOSE(o1[1].lambda, o2[1].lambda, 0, 4 * DBL_EPSILON, "pairs 1 and 2: same lambda");
    ATS_CHECK_CLOSE(o1[1].rho_out, o2[1].rho_out, 0, 4 * DBL_EPSILON,
                    "pairs 1 and 2: same rho_out");
    // 1/n and log n after an n-term softmax: a few n roundings.
    ATS_CHECK_CLOSE(o[0].a_self, 1.0 / 7, 0, 64 * DBL_EPSILON, "beta 0: a_self = 1/n");
    ATS_CHECK_CLOSE(o[0].entropy, log(7.0), 0, 64 * DBL_EPSILON, "beta 0: entropy = log n");
    ATS_CHECK_CLOSE(o[0].support, 7, 0, 64 * DBL_EPSILON, "beta 0: support = n");

    // n = 1: A = [1], so a_self = support = 1 and entropy = 0 (exact in any rounding).
    p = params(1, d, 0, beta + 1, 1);
    rc = ats_layer_metrics(o, x, &p);
    ATS_CHECK(rc == ATS_STATUS_OK && o[0].a_self == 1 && o[0].support == 1 && o[0].entropy == 0,
              "n = 1: a_self = support = 1, entropy = 0 (got %.17g %.17g %.17g)", o[0].a_self,
              o[0].support, o[0].entropy);
}

// Exact eta against the finite-difference Jacobian of the whole reference layer.
static void test_eta_fd(void) {
    static const int64_t ns[4] = {1, 2, 3, 5}, ds[5] = {1, 2, 3, 5, 6};
    static const double betas[4] = {0, 0.5, 3, 12};
    static const double alphas[2] = {0, 0.7};
    struct tally t;
    tally_init(&t, "exact eta (f64) vs finite differences of the reference layer");
    double x[5 * 6];
    long double *ws, *xl;
    ALLOC(ws, ats_ref_eta_fd_ws_len(5, 6));
    ALLOC(xl, 5 * 6);
    struct ats_layer_metrics out[4];
    for (int in = 0; in < 4; in++)
        for (int id = 0; id < 5; id++) {
            const int64_t n = ns[in], d = ds[id];
            tokens_random(x, 0, n, d, (uint64_t)(5000 + 10 * in + id));
            long double rinv = 0;
            for (int64_t i = 0; i < n; i++) {
                long double r = 0;
                for (int64_t l = 0; l < d; l++)
                    r += (long double)x[i * d + l] * x[i * d + l];
                rinv = fmaxl(rinv, 1 / sqrtl(r));
            }
            for (int64_t k = 0; k < n * d; k++)
                xl[k] = x[k];
            for (int ia = 0; ia < 2; ia++) {
                struct ats_layer_params p = params(n, d, alphas[ia], betas, 4);
                p.eta = ATS_ETA_EXACT;
                int rc = ats_layer_metrics(out, x, &p);
                for (int b = 0; b < 4; b++) {
                    long double fd = ats_ref_eta_fd(xl, n, d, betas[b], alphas[ia], 0, ws);
                    struct em m = em_make(n, d, betas[b], alphas[ia], DBL_EPSILON);
                    long double S = (rinv + alphas[ia]) * (rinv + alphas[ia]);
                    // Engine budget plus the FD error (1 + beta) E^(4/5) relative with test_ref's
                    // factor 100 (see ats_ref_eta_fd_h_default), on the scale eta + S/d.
                    long double tol = em_eta(&m, fd, S) + 100 * (1 + betas[b]) * powl(E, 0.8L) *
                                                              (fd + S / (long double)d);
                    tally_add(&t, rc == ATS_STATUS_OK ? out[b].eta : NAN, fd, tol,
                              "n %lld d %lld alpha %g beta %g", (long long)n, (long long)d,
                              alphas[ia], betas[b]);
                }
            }
        }
    tally_done(&t);
    free(ws);
    free(xl);
}

// ----------------------------------------------------------------------------
// 3. Hutchinson

// J: (nd, nd) row-major, J[a * nd + c] = dx'_a/dx_c of the reference layer by the 4-point
// central stencil with step h |x_k| (the scheme of ats_ref_eta_fd; error ~ (1 + beta) E^(4/5)).
static void jacobian_fd(long double *J, const long double *x, int64_t n, int64_t d,
                        long double beta, long double alpha) {
    const int64_t m = n * d;
    static const long double off[4] = {-2, -1, 1, 2}, coef[4] = {1, -8, 8, -1};
    long double *xp, *xo, *col, *ws;
    ALLOC(xp, m);
    ALLOC(xo, m);
    ALLOC(col, m);
    ALLOC(ws, ats_ref_layer_ws_len(n, d));
    for (int64_t k = 0; k < m; k++)
        xp[k] = x[k];
    const long double h = ats_ref_eta_fd_h_default(beta);
    for (int64_t k = 0; k < n; k++) {
        long double rk = 0;
        for (int64_t l = 0; l < d; l++)
            rk += x[k * d + l] * x[k * d + l];
        const long double hk = h * sqrtl(rk);
        for (int64_t l = 0; l < d; l++) {
            const int64_t c = k * d + l;
            for (int64_t a = 0; a < m; a++)
                col[a] = 0;
            for (int s = 0; s < 4; s++) {
                xp[c] = x[c] + off[s] * hk;
                ats_ref_layer_forward(xo, xp, n, d, beta, alpha, ws);
                for (int64_t a = 0; a < m; a++)
                    col[a] += coef[s] * xo[a];
            }
            xp[c] = x[c];
            for (int64_t a = 0; a < m; a++)
                J[a * m + c] = col[a] / (12 * hk);
        }
    }
    free(xp);
    free(xo);
    free(col);
    free(ws);
}

// Moments of one probe's value h = |J v|^2/m, m = nd, v Rademacher: mean ||J||_F^2/m and
// variance 2 (||M||_F^2 - sum_a M_aa^2)/m^2 with M = J^T J (E[v_a v_b v_c v_e] is 1 only for
// paired indices).
static void probe_moments(long double *mean, long double *var, const long double *J, int64_t m) {
    long double fro = 0, off = 0;
    for (int64_t a = 0; a < m * m; a++)
        fro += J[a] * J[a];
    for (int64_t a = 0; a < m; a++)
        for (int64_t b = 0; b < m; b++) {
            if (a == b)
                continue;
            long double s = 0;
            for (int64_t k = 0; k < m; k++)
                s += J[k * m + a] * J[k * m + b];
            off += s * s;
        }
    const long double ml = (long double)m;
    *mean = fro / ml;
    *var = 2 * off / (ml * ml);
}

// Every value |J v|^2/m over v in {+-1}^m with v_0 = +1 (v and -v give the same value):
// h: (2^(m-1)) out.
static void probe_values(long double *h, const long double *J, int64_t m) {
    const int64_t count = (int64_t)1 << (m - 1);
    long double v[32];
    for (int64_t mask = 0; mask < count; mask++) {
        v[0] = 1;
        for (int64_t a = 1; a < m; a++)
            v[a] = (mask >> (a - 1)) & 1 ? -1.0L : 1.0L;
        long double s = 0;
        for (int64_t a = 0; a < m; a++) {
            long double jv = 0;
            for (int64_t c = 0; c < m; c++)
                jv += J[a * m + c] * v[c];
            s += jv * jv;
        }
        h[mask] = s / (long double)m;
    }
}

static void test_hutchinson_enumerated(void) {
    static const struct {
        int64_t n, d;
        double beta, alpha;
    } cases[5] = {
        {1, 3, 2.385, 0.7}, {2, 3, 3, 0}, {3, 3, 0.5, 0.7}, {4, 4, 3, 0.7}, {4, 4, 12, 0}};
    const int64_t probes = 400;
    const int streams = 6;
    for (int c = 0; c < 5; c++) {
        const int64_t n = cases[c].n, d = cases[c].d, m = n * d;
        const double beta = cases[c].beta, alpha = cases[c].alpha;
        double x[16];
        long double xl[16], *J, *h;
        tokens_random(x, 0, n, d, (uint64_t)(7000 + c));
        for (int64_t k = 0; k < m; k++)
            xl[k] = x[k];
        ALLOC(J, m * m);
        const int64_t count = (int64_t)1 << (m - 1);
        ALLOC(h, count);
        jacobian_fd(J, xl, n, d, beta, alpha);
        probe_values(h, J, m);
        long double mean = 0, var = 0, mu4 = 0, hmax = 0;
        for (int64_t k = 0; k < count; k++)
            mean += h[k];
        mean /= (long double)count;
        for (int64_t k = 0; k < count; k++) {
            long double e = h[k] - mean;
            var += e * e;
            mu4 += e * e * e * e;
            hmax = fmaxl(hmax, h[k]);
        }
        var /= (long double)count;
        mu4 /= (long double)count;

        long double *ews, rinv = 0;
        ALLOC(ews, ats_ref_eta_blocks_ws_len(n, d));
        long double eta = ats_ref_eta_blocks(xl, n, d, beta, alpha, ews);
        free(ews);
        for (int64_t i = 0; i < n; i++) {
            long double r = 0;
            for (int64_t l = 0; l < d; l++)
                r += xl[i * d + l] * xl[i * d + l];
            rinv = fmaxl(rinv, 1 / sqrtl(r));
        }
        const long double S = (rinv + alpha) * (rinv + alpha);
        // The harness itself: the mean over all V of |JV|^2/m is ||J||_F^2/m = eta; J from FD
        // (error 100 (1 + beta) E^(4/5), as in test_ref) against the Jacobian blocks (~n E).
        const long double fd_tol = 100 * (1 + beta) * powl(E, 0.8L) * (eta + S / (long double)d);
        ATS_CHECK_CLOSE(mean, eta, fd_tol, 0,
                        "harness: mean of |JV|^2/(nd) over all 2^%lld probes = exact eta "
                        "(n %lld d %lld beta %g alpha %g)",
                        (long long)m, (long long)n, (long long)d, beta, alpha);

        // One probe: the engine's value must be one of the enumerated values. Budget: the
        // engine's (its JVP has eta's rounding structure, on the scale of one value) plus the
        // FD error of J.
        struct em em64 = em_make(n, d, beta, alpha, DBL_EPSILON);
        int matched = 0, nan_var = 0;
        long double worst = 0;
        int64_t ambiguous = 0;
        double got[6];
        for (int s = 0; s < streams; s++) {
            struct ats_layer_metrics o;
            struct ats_layer_params p = params(n, d, alpha, &cases[c].beta, 1);
            p.eta = ATS_ETA_HUTCHINSON;
            p.probes = 1;
            p.stream = (uint64_t)(11 * s + 3);
            int rc = ats_layer_metrics(&o, x, &p);
            got[s] = rc == ATS_STATUS_OK ? o.eta : NAN;
            nan_var += rc == ATS_STATUS_OK && isnan(o.eta_var);
            long double tol = em_eta(&em64, hmax, S) + fd_tol;
            long double best = INFINITY;
            int64_t within = 0;
            for (int64_t k = 0; k < count; k++) {
                long double e = fabsl(h[k] - got[s]);
                best = fminl(best, e);
                within += e <= tol;
            }
            matched += best <= tol;
            worst = fmaxl(worst, best / tol);
            ambiguous = within > ambiguous ? within : ambiguous;
        }
        ATS_CHECK(matched == streams,
                  "n %lld d %lld beta %g alpha %g: %d of %d single-probe Hutchinson values are "
                  "|JV|^2/(nd) for some V in {+-1}^%lld (worst distance/budget %.3Lg; at most "
                  "%lld of %lld values within budget)",
                  (long long)n, (long long)d, beta, alpha, matched, streams, (long long)m, worst,
                  (long long)ambiguous, (long long)count);
        ATS_CHECK(nan_var == streams, "n %lld d %lld: probes = 1 gives eta_var NaN (%d of %d)",
                  (long long)n, (long long)d, nan_var, streams);
        int differ = 0;
        for (int s = 1; s < streams; s++)
            differ += got[s] != got[0];
        // With 2^(m-1) >= 4 distinct values, 6 streams all equal would be a probe not drawn
        // from its stream (probability <= 4^-5 for n = 1, d = 3, far less elsewhere).
        ATS_CHECK(differ > 0, "n %lld d %lld: different streams give different single probes",
                  (long long)n, (long long)d);

        // 400 probes: mean within 4 standard errors of exact eta; the reported per-probe sample
        // variance within 4 of its own standard errors, sqrt(mu4/m - var^2 (m - 3)/(m (m - 1)))
        // with the exact moments of the enumeration.
        struct ats_layer_metrics o;
        struct ats_layer_params p = params(n, d, alpha, &cases[c].beta, 1);
        p.eta = ATS_ETA_HUTCHINSON;
        p.probes = probes;
        p.stream = 99;
        int rc = ats_layer_metrics(&o, x, &p);
        const long double pl = (long double)probes;
        long double se = sqrtl(var / pl);
        long double se_var = sqrtl(mu4 / pl - var * var * (pl - 3) / (pl * (pl - 1)));
        ATS_CHECK(rc == ATS_STATUS_OK, "n %lld d %lld: %lld probes OK", (long long)n,
                  (long long)d, (long long)probes);
        ATS_CHECK_CLOSE(o.eta, eta, 4 * se + fd_tol, 0,
                        "n %lld d %lld beta %g alpha %g: Hutchinson (%lld probes) within 4 SE "
                        "(SE %.3Lg) of exact eta",
                        (long long)n, (long long)d, beta, alpha, (long long)probes, se);
        ATS_CHECK_CLOSE(o.eta_var, var, 4 * se_var, 0,
                        "n %lld d %lld beta %g alpha %g: eta_var within 4 SE (%.3Lg) of the "
                        "exact per-probe variance",
                        (long long)n, (long long)d, beta, alpha, se_var);
        free(J);
        free(h);
    }
}

// Larger n d, where enumeration is out of reach: the mean of 400 probes within 4 standard
// errors of exact eta, the standard error from the exact per-probe variance of J = FD.
static void test_hutchinson_mean(void) {
    const int64_t n = 8, d = 6, m = n * d, probes = 400;
    static const double betas[4] = {0, 0.5, 3, 12};
    static const double alphas[2] = {0, 0.7};
    double x[8 * 6];
    long double xl[8 * 6], *J, *ews;
    ALLOC(J, m * m);
    ALLOC(ews, ats_ref_eta_blocks_ws_len(n, d));
    tokens_random(x, 0, n, d, 8100);
    for (int64_t k = 0; k < m; k++)
        xl[k] = x[k];
    long double rinv = 0;
    for (int64_t i = 0; i < n; i++) {
        long double r = 0;
        for (int64_t l = 0; l < d; l++)
            r += xl[i * d + l] * xl[i * d + l];
        rinv = fmaxl(rinv, 1 / sqrtl(r));
    }
    for (int ia = 0; ia < 2; ia++) {
        long double eta[4], var[4], mean[4];
        for (int b = 0; b < 4; b++) {
            jacobian_fd(J, xl, n, d, betas[b], alphas[ia]);
            probe_moments(&mean[b], &var[b], J, m);
            eta[b] = ats_ref_eta_blocks(xl, n, d, betas[b], alphas[ia], ews);
        }
        for (int q = 0; q < 2; q++) {
            struct ats_layer_metrics o1[4], o2[4];
            struct ats_layer_params p = params(n, d, alphas[ia], betas, 4);
            p.eta = ATS_ETA_HUTCHINSON;
            p.probes = probes;
            p.precision = precs[q];
            p.stream = 1;
            int rc1 = ats_layer_metrics(o1, x, &p);
            p.stream = 2;
            int rc2 = ats_layer_metrics(o2, x, &p);
            ATS_CHECK(rc1 == ATS_STATUS_OK && rc2 == ATS_STATUS_OK,
                      "Hutchinson n 8 d 6 alpha %g %s: OK", alphas[ia], pname[q]);
            for (int b = 0; b < 4; b++) {
                const long double S = (rinv + alphas[ia]) * (rinv + alphas[ia]);
                struct em em = em_make(n, d, betas[b], alphas[ia], uprec[q]);
                // 4 SE of the mean (SE from the exact per-probe variance of J_FD, whose FD
                // error ~1e-15 relative is negligible), plus the working precision's bias,
                // bounded by the budget of exact eta. The harness check first: J_FD against
                // the Jacobian blocks, FD error as in test_ref.
                long double se = sqrtl(var[b] / (long double)probes);
                long double tol = 4 * se + em_eta(&em, eta[b], S);
                ATS_CHECK_CLOSE(mean[b], eta[b], 100 * (1 + betas[b]) * powl(E, 0.8L) *
                                                     (eta[b] + S / (long double)d),
                                0,
                                "harness: ||J_FD||^2/(nd) = exact eta (n 8 d 6 beta %g alpha %g)",
                                betas[b], alphas[ia]);
                ATS_CHECK_CLOSE(o1[b].eta, eta[b], tol, 0,
                                "Hutchinson %s n 8 d 6 beta %g alpha %g stream 1: within 4 SE "
                                "(%.3Lg) of exact eta",
                                pname[q], betas[b], alphas[ia], se);
                ATS_CHECK_CLOSE(o2[b].eta, eta[b], tol, 0,
                                "Hutchinson %s n 8 d 6 beta %g alpha %g stream 2: within 4 SE "
                                "(%.3Lg) of exact eta",
                                pname[q], betas[b], alphas[ia], se);
                ATS_CHECK(o1[b].eta != o2[b].eta && o1[b].eta_var > 0 && o2[b].eta_var > 0,
                          "Hutchinson %s beta %g alpha %g: streams 1 and 2 differ (%.17g, %.17g), "
                          "eta_var > 0",
                          pname[q], betas[b], alphas[ia], o1[b].eta, o2[b].eta);
            }
        }
    }
    free(J);
    free(ews);
}

// ----------------------------------------------------------------------------
// 4. Exact simplex tokens against the closed forms

// Expected metrics of the simplex from ats_simplex_eval (THEORY.md 2.2, 2.6) and their
// budgets for precision q: the error model above with r = 1, |x'| = sqrt(q'), every pair at
// cosine rho, plus 16 DBL_EPSILON relative for the closed forms ("a few ulps").
static void simplex_expect(long double val[M_COUNT], long double bud[2][M_COUNT],
                           const struct ats_simplex *s, int64_t n, int64_t d, double rho,
                           double alpha) {
    const long double nl = (long double)n, a = s->a_self, b = s->b_other;
    const long double H = -a * logl(a) - (nl - 1) * b * logl(b);
    const long double Q2 = a * a + (nl - 1) * b * b;
    const long double omc_out = s->lambda * (1 - (long double)rho); // 1 - rho', no cancellation
    const long double th_in = acosl(rho), th_out = 2 * asinl(sqrtl(omc_out / 2));
    val[M_A] = a;
    val[M_H] = H;
    val[M_S] = 1 / Q2;
    val[M_RHO] = s->rho_out;
    val[M_LAM] = s->lambda;
    val[M_ANG] = th_out / th_in;
    val[M_ETA] = s->eta;
    const long double np = nl * (nl - 1) / 2;
    for (int q = 0; q < 2; q++) {
        struct em m = em_make(n, d, s->beta, alpha, uprec[q]);
        long double xn = sqrtl(s->q_out);
        long double ec = em_cos_out(&m, 1, xn, 1, xn);
        bud[q][M_A] = 2 * (m.eA * a + nl * DBL_EPSILON * a);
        bud[q][M_H] = 2 * (2 * m.eA * (H + 1) + nl * DBL_EPSILON * H);
        bud[q][M_S] = 2 * ((4 * m.eA + nl * m.u) + nl * DBL_EPSILON) / Q2;
        bud[q][M_RHO] = 2 * (ec + np * DBL_EPSILON * fabsl(val[M_RHO]));
        bud[q][M_LAM] = 2 * (em_lambda(&m, ec, 1 - (long double)rho, val[M_LAM]) +
                             np * DBL_EPSILON * val[M_LAM]);
        bud[q][M_ANG] = 2 * (em_angle(&m, ec, val[M_RHO], rho, th_in, val[M_ANG]) +
                             np * DBL_EPSILON * val[M_ANG]);
        bud[q][M_ETA] = em_eta(&m, val[M_ETA], (1 + alpha) * (1 + alpha));
        for (int k = 0; k < M_COUNT; k++)
            bud[q][k] += 16 * DBL_EPSILON * fabsl(val[k]);
    }
}

static void test_simplex(void) {
    static const int64_t ns[3] = {4, 50, 300};
    static const double rhos[3] = {0, 0.3, 0.9}, gams[3] = {0.5, 1, 1.5}, alphas[2] = {0, 0.5};
    struct tally tal[2][M_COUNT];
    char name[96];
    for (int q = 0; q < 2; q++)
        for (int k = 0; k < M_COUNT; k++) {
            snprintf(name, sizeof name, "engine %s on simplex tokens vs closed form: %s",
                     pname[q], mname[k]);
            tally_init(&tal[q][k], name);
        }
    double *x;
    ALLOC(x, 300 * 301);
    for (int in = 0; in < 3; in++)
        for (int ir = 0; ir < 3; ir++) {
            const int64_t n = ns[in], d = n + 1;
            const double rho = rhos[ir];
            draw_ok(x, ATS_TOKENS_SIMPLEX, n, d, rho, 1, 0);
            for (int ia = 0; ia < 2; ia++) {
                struct ats_simplex s[3];
                double beta[3];
                long double val[3][M_COUNT], bud[3][2][M_COUNT];
                for (int g = 0; g < 3; g++) {
                    struct ats_simplex_params sp = ats_simplex_params_default();
                    sp.n = n;
                    sp.d = d;
                    sp.rho = rho;
                    sp.alpha = alphas[ia];
                    sp.q = 1;
                    sp.scale = ATS_SCALE_GAMMA;
                    sp.gamma = gams[g] / (1 - rho);
                    int rc = ats_simplex_eval(&s[g], &sp);
                    if (rc != ATS_STATUS_OK)
                        ATS_CHECK(0, "ats_simplex_eval n %lld rho %g: %s", (long long)n, rho,
                                  ats_strerror(rc));
                    beta[g] = s[g].beta;
                    simplex_expect(val[g], bud[g], &s[g], n, d, rho, alphas[ia]);
                }
                for (int q = 0; q < 2; q++) {
                    struct ats_layer_metrics o[3];
                    struct ats_layer_params p = params(n, d, alphas[ia], beta, 3);
                    p.pairs = 2;
                    p.eta = ATS_ETA_EXACT;
                    p.precision = precs[q];
                    reason_reset();
                    int rc = ats_layer_metrics(o, x, &p);
                    if (rc != ATS_STATUS_OK) {
                        ATS_CHECK(0, "simplex n %lld rho %g alpha %g %s: %s (%s)", (long long)n,
                                  rho, alphas[ia], pname[q], ats_strerror(rc), last_reason);
                        continue;
                    }
                    for (int g = 0; g < 3; g++)
                        for (int k = 0; k < M_COUNT; k++)
                            tally_add(&tal[q][k], metric(&o[g], k), val[g][k], bud[g][q][k],
                                      "n %lld rho %g gamma %g gamma_c alpha %g", (long long)n,
                                      rho, gams[g], alphas[ia]);
                }
            }
        }
    for (int q = 0; q < 2; q++)
        for (int k = 0; k < M_COUNT; k++)
            tally_done(&tal[q][k]);
    free(x);

    // THEORY.md 2.10: n = 6, d = 9, q = 1.
    static const struct {
        double rho, alpha, beta, rho_out, eta;
    } tab[5] = {
        {0.2, 0, 3, 0.4731715173, 0.59659789},    {0.5, 0, 3, 0.8945788907, 0.37137636},
        {0.5, 0.7, 3, 0.7364081197, 1.58873183}, {0.8, 0, 9, 0.9518867119, 0.48457913},
        {0.8, 0.7, 9, 0.8982579655, 1.82663760},
    };
    double x6[6 * 9];
    for (int t = 0; t < 5; t++) {
        draw_ok(x6, ATS_TOKENS_SIMPLEX, 6, 9, tab[t].rho, 1, 0);
        struct ats_layer_metrics o;
        struct ats_layer_params p = params(6, 9, tab[t].alpha, &tab[t].beta, 1);
        p.pairs = 2;
        p.eta = ATS_ETA_EXACT;
        int rc = ats_layer_metrics(&o, x6, &p);
        ATS_CHECK(rc == ATS_STATUS_OK, "THEORY 2.10 n 6 d 9 rho %g alpha %g beta %g: OK",
                  tab[t].rho, tab[t].alpha, tab[t].beta);
        // The table has 10 decimals for rho' and 8 for eta (rounding 5e-11, 5e-9).
        ATS_CHECK_CLOSE(o.rho_out, tab[t].rho_out, 1e-10, 0,
                        "THEORY 2.10 n 6 rho %g alpha %g beta %g: rho'", tab[t].rho,
                        tab[t].alpha, tab[t].beta);
        ATS_CHECK_CLOSE(o.eta, tab[t].eta, 1e-8, 0, "THEORY 2.10 n 6 rho %g alpha %g beta %g: eta",
                        tab[t].rho, tab[t].alpha, tab[t].beta);
    }
}

// ----------------------------------------------------------------------------
// 5. Almost-simplex tokens approach the simplex as d grows (THEORY.md 2.8)

static void test_almost_simplex_limit(void) {
    const int64_t n = 64;
    const double rho = 0.5, gams[3] = {0.5, 1, 1.5};
    const int64_t dims[2] = {64, 4096};
    const int seeds = 4;
    double beta[3];
    for (int g = 0; g < 3; g++)
        beta[g] = gams[g] / (1 - rho) * log((double)n);
    // dev_gen: |lambda - lambda_simplex(rho)| at the generating rho. dev_hat: the same at the
    // draw's own mean pairwise cosine rho_hat, which absorbs the shared O(d^-1/2) fluctuation
    // of |z_0|^2 and leaves the O(1/d) second-order effect of the cosines' spread.
    long double dev_gen[2][3] = {{0}}, dev_hat[2][3] = {{0}};
    double *x;
    ALLOC(x, n * 4096);
    long double *y;
    ALLOC(y, 4096);
    for (int k = 0; k < 2; k++) {
        const int64_t d = dims[k];
        for (int s = 0; s < seeds; s++) {
            draw_ok(x, ATS_TOKENS_ALMOST_SIMPLEX, n, d, rho, 31, (uint64_t)s);
            // rho_hat = (|sum_i y_i|^2 - n)/(n (n - 1)) in long double.
            for (int64_t l = 0; l < d; l++)
                y[l] = 0;
            for (int64_t i = 0; i < n; i++) {
                long double r = 0;
                for (int64_t l = 0; l < d; l++)
                    r += (long double)x[i * d + l] * x[i * d + l];
                r = sqrtl(r);
                for (int64_t l = 0; l < d; l++)
                    y[l] += x[i * d + l] / r;
            }
            long double ss = 0;
            for (int64_t l = 0; l < d; l++)
                ss += y[l] * y[l];
            const double rho_hat = (double)((ss - (long double)n) / ((long double)n * (n - 1)));
            struct ats_layer_metrics o[3];
            struct ats_layer_params p = params(n, d, 0, beta, 3);
            p.pairs = 2;
            int rc = ats_layer_metrics(o, x, &p);
            ATS_CHECK(rc == ATS_STATUS_OK, "almost-simplex n 64 d %lld seed %d: OK", (long long)d,
                      s);
            for (int g = 0; g < 3; g++) {
                struct ats_simplex_params sp = ats_simplex_params_default();
                struct ats_simplex sg, sh;
                sp.n = n;
                sp.d = 2; // d enters eta only
                sp.scale = ATS_SCALE_BETA;
                sp.beta = beta[g];
                sp.rho = rho;
                ats_simplex_eval(&sg, &sp);
                sp.rho = rho_hat;
                ats_simplex_eval(&sh, &sp);
                dev_gen[k][g] += fabsl((long double)o[g].lambda - sg.lambda) / seeds;
                dev_hat[k][g] += fabsl((long double)o[g].lambda - sh.lambda) / seeds;
            }
        }
    }
    for (int g = 0; g < 3; g++) {
        ats_test_info(
            "almost-simplex n 64 rho 0.5 gamma %.1f gamma_c: mean |lambda - simplex(rho)| "
            "%.3Lg (d 64) %.3Lg (d 4096); at rho_hat: %.3Lg, %.3Lg (d |dev|: %.3Lg, %.3Lg)",
            gams[g], dev_gen[0][g], dev_gen[1][g], dev_hat[0][g], dev_hat[1][g], 64 * dev_hat[0][g],
            4096 * dev_hat[1][g]);
        ATS_CHECK(dev_gen[1][g] < dev_gen[0][g],
                  "almost-simplex gamma %.1f gamma_c: lambda closer to the simplex at d 4096 "
                  "(%.3Lg) than at d 64 (%.3Lg)",
                  gams[g], dev_gen[1][g], dev_gen[0][g]);
        // The 1/d rate predicts a factor 64 from d = 64 to 4096; measured d |dev| agrees within
        // a factor 1.3 (0.5 to 2.9 at both d, 8 seeds): 4 leaves room for the 4-seed spread and
        // still tells 1/d from the d^-1/2 (factor 8) of an unabsorbed fluctuation.
        ATS_CHECK(dev_hat[1][g] <= 4 * dev_hat[0][g] * 64 / 4096,
                  "almost-simplex gamma %.1f gamma_c: |lambda - simplex(rho_hat)| falls like "
                  "1/d (d 4096: %.3Lg <= 4 (64/4096) %.3Lg)",
                  gams[g], dev_hat[1][g], dev_hat[0][g]);
    }
    free(x);
    free(y);
}

// ----------------------------------------------------------------------------
// 6. Determinism across thread counts

static void test_threads(void) {
    const int64_t n = 257, d = 48;
    double *x;
    ALLOC(x, n * d);
    tokens_random(x, 0, n, d, 9000);
    // n 257: the automatic block is all rows, whose GEMMs (257 x 257 x 48) are large enough
    // for OpenBLAS to thread them; block 64 leaves a last block of one row.
    const double beta[2] = {3, 12};
    static const int64_t blocks[2] = {0, 64};
    static const enum ats_eta_method methods[2] = {ATS_ETA_HUTCHINSON, ATS_ETA_EXACT};
    for (int q = 0; q < 2; q++)
        for (int e = 0; e < 2; e++)
            for (int ib = 0; ib < 2; ib++) {
                struct ats_layer_metrics o[4][2];
                int rc[4];
                for (int t = 0; t < 4; t++) {
                    struct ats_layer_params p = params(n, d, 0.7, beta, 2);
                    p.pairs = 2;
                    p.eta = methods[e];
                    p.probes = 3;
                    p.precision = precs[q];
                    p.block = blocks[ib];
                    p.threads = t < 3 ? t + 1 : 0;
                    rc[t] = ats_layer_metrics(o[t], x, &p);
                }
                // Report which fields differ, for the first beta where any does.
                char diff[160] = "";
                for (int t = 1; t < 4 && !diff[0]; t++)
                    for (int b = 0; b < 2 && !diff[0]; b++)
                        for (int k = 0; k < M_COUNT; k++)
                            if (memcmp(&o[t][b], &o[0][b], sizeof o[0][b]) &&
                                metric(&o[t][b], k) != metric(&o[0][b], k)) {
                                size_t len = strlen(diff);
                                snprintf(diff + len, sizeof diff - len, "%s%s %.17g vs %.17g",
                                         len ? "; " : "", mname[k], metric(&o[t][b], k),
                                         metric(&o[0][b], k));
                                if (len == 0)
                                    snprintf(diff + strlen(diff), sizeof diff - strlen(diff),
                                             " (threads %d, beta %g)", t < 3 ? t + 1 : 0, beta[b]);
                            }
                ATS_CHECK(rc[0] == ATS_STATUS_OK && rc[1] == ATS_STATUS_OK &&
                              rc[2] == ATS_STATUS_OK && rc[3] == ATS_STATUS_OK &&
                              !memcmp(o[0], o[1], sizeof o[0]) &&
                              !memcmp(o[0], o[2], sizeof o[0]) && !memcmp(o[0], o[3], sizeof o[0]),
                          "n 257 d 48 %s eta %s block %lld: threads 1, 2, 3 and 0 (default) "
                          "give the same metrics bit for bit%s%s",
                          pname[q], e ? "exact" : "hutchinson", (long long)blocks[ib],
                          diff[0] ? ": " : "", diff);
            }
    free(x);
}

// ----------------------------------------------------------------------------
// 7. Errors

// rc must be want and the reason must contain text (NULL: any reason).
static void expect(int rc, int want, const char *text, const char *what) {
    int ok = rc == want && last_status == want && (!text || strstr(last_reason, text));
    ATS_CHECK(ok, "%s -> %s (got %s; reason \"%s\")", what, ats_strerror(want), ats_strerror(rc),
              last_reason);
}

static void test_token_errors(void) {
    const int64_t n = 17, d = 3;
    double x[17 * 3];
    tokens_random(x, 0, n, d, 9100);
    reason_reset();
    ATS_CHECK(ats_tokens_check(x, n, d) == ATS_STATUS_OK, "tokens_check accepts random tokens");
    // Row 13 (the only "13" in a reason about n = 17, d = 3) made bad four ways.
    static const char *const what[4] = {"zero row", "NaN entry", "+Inf entry", "-Inf entry"};
    for (int c = 0; c < 4; c++) {
        double bad[17 * 3];
        memcpy(bad, x, sizeof bad);
        if (c == 0)
            bad[13 * 3] = bad[13 * 3 + 1] = bad[13 * 3 + 2] = 0;
        else
            bad[13 * 3 + 1] = c == 1 ? NAN : c == 2 ? INFINITY : -INFINITY;
        char label[96];
        snprintf(label, sizeof label, "tokens_check, %s in row 13", what[c]);
        reason_reset();
        expect(ats_tokens_check(bad, n, d), ATS_STATUS_EDOM, "13", label);
        const double beta = 1;
        struct ats_layer_params p = params(n, d, 0, &beta, 1);
        struct ats_layer_metrics o;
        snprintf(label, sizeof label, "layer_metrics, %s in row 13", what[c]);
        reason_reset();
        expect(ats_layer_metrics(&o, bad, &p), ATS_STATUS_EDOM, "13", label);
    }
    // Rows whose norm is finite and non-zero although the sum of squares over- or underflows
    // in double: valid tokens (the reference scales its norms).
    double ext[2 * 3] = {0x1p-600, -0x1p-601, 0x1p-600, 0x1p600, 0x1p599, -0x1p600};
    reason_reset();
    ATS_CHECK(ats_tokens_check(ext, 2, 3) == ATS_STATUS_OK,
              "tokens_check accepts rows of norm 2^-600 and 2^600 (%s)", last_reason);
    // Pre-LN: at alpha = 0 the metrics do not depend on the row norms. Scaling by 2^-600 and
    // 2^600 is exact, so the engine sees the same directions up to its norm's rounding.
    double xs[17 * 3];
    const double beta[2] = {0.5, 12};
    struct ats_layer_metrics o0[2], o1[2];
    struct ats_layer_params p = params(n, d, 0, beta, 2);
    p.pairs = 2;
    p.eta = ATS_ETA_NONE;
    for (int64_t t = 0; t < n * d; t++)
        xs[t] = ldexp(x[t], t / d % 2 ? 600 : -600);
    int rc0 = ats_layer_metrics(o0, x, &p);
    reason_reset();
    int rc1 = ats_layer_metrics(o1, xs, &p);
    int close = rc0 == ATS_STATUS_OK && rc1 == ATS_STATUS_OK;
    // Direction errors of a few ulps, amplified by beta in the logits: 64 (1 + beta) d eps.
    for (int b = 0; b < 2 && close; b++)
        for (int k = 0; k < M_ETA; k++)
            close &= fabs(metric(&o1[b], k) - metric(&o0[b], k)) <=
                     64 * (1 + beta[b]) * 3 * DBL_EPSILON * fmax(1, fabs(metric(&o0[b], k)));
    ATS_CHECK(close, "alpha 0: rows scaled by 2^-600 / 2^600 give the unscaled metrics (rc %s, %s)",
              ats_strerror(rc1), last_reason);

    // ats_tokens_draw.
    double t[8 * 9];
    reason_reset();
    expect(ats_tokens_draw(t, ATS_TOKENS_SIMPLEX, 8, 8, 0.5, 1, 0), ATS_STATUS_EINVAL, NULL,
           "simplex draw with d = n");
    ATS_CHECK(ats_tokens_draw(t, ATS_TOKENS_SIMPLEX, 8, 9, 0.5, 1, 0) == ATS_STATUS_OK,
              "simplex draw with d = n + 1 is OK");
    static const enum ats_tokens kinds[2] = {ATS_TOKENS_SIMPLEX, ATS_TOKENS_ALMOST_SIMPLEX};
    static const double bad_rho[3] = {1, -0.1, NAN};
    for (int k = 0; k < 2; k++) {
        char label[96];
        for (int r = 0; r < 3; r++) {
            snprintf(label, sizeof label, "%s draw with rho = %g", ats_tokens_name(kinds[k]),
                     bad_rho[r]);
            reason_reset();
            expect(ats_tokens_draw(t, kinds[k], 4, 5, bad_rho[r], 1, 0), ATS_STATUS_EDOM, NULL,
                   label);
        }
    }
    static const enum ats_tokens all[3] = {ATS_TOKENS_SIMPLEX, ATS_TOKENS_ALMOST_SIMPLEX,
                                           ATS_TOKENS_SPHERE};
    for (int k = 0; k < 3; k++) {
        char label[96];
        snprintf(label, sizeof label, "%s draw with n = 0", ats_tokens_name(all[k]));
        reason_reset();
        expect(ats_tokens_draw(t, all[k], 0, 5, 0.5, 1, 0), ATS_STATUS_EDOM, NULL, label);
        snprintf(label, sizeof label, "%s draw with d = 0", ats_tokens_name(all[k]));
        reason_reset();
        expect(ats_tokens_draw(t, all[k], 4, 0, 0.5, 1, 0), ATS_STATUS_EDOM, NULL, label);
    }
    ATS_CHECK(!strcmp(ats_tokens_name(ATS_TOKENS_SIMPLEX), "simplex") &&
                  !strcmp(ats_tokens_name(ATS_TOKENS_ALMOST_SIMPLEX), "almost-simplex") &&
                  !strcmp(ats_tokens_name(ATS_TOKENS_SPHERE), "sphere"),
              "ats_tokens_name: simplex, almost-simplex, sphere");
}

static void test_layer_errors(void) {
    const int64_t n = 5, d = 4;
    double x[5 * 4];
    tokens_random(x, 0, n, d, 9200);
    const double beta = 2.385;
    struct ats_layer_metrics o[2];
    struct ats_layer_params p;

    struct ats_layer_params def = ats_layer_params_default();
    ATS_CHECK(def.n == 2 && def.d == 2 && def.alpha == 0 && def.nbeta == 0 && def.pairs == 0 &&
                  def.eta == ATS_ETA_NONE && def.probes == 16 && def.seed == 1 &&
                  def.stream == 0 && def.precision == ATS_PRECISION_F64 && def.threads == 0 &&
                  def.block == 0,
              "ats_layer_params_default: n = d = 2, alpha 0, no beta, pairs 0, eta none, "
              "probes 16, seed 1, stream 0, f64, threads 0, block 0");

    p = params(n, d, 0, &beta, 1);
    reason_reset();
    ATS_CHECK(ats_layer_metrics(o, x, &p) == ATS_STATUS_OK, "valid parameters: OK (%s)",
              last_reason);
#define BAD(field_set, want, what)                                                             \
    do {                                                                                       \
        p = params(n, d, 0, &beta, 1);                                                         \
        field_set;                                                                             \
        reason_reset();                                                                        \
        expect(ats_layer_metrics(o, x, &p), want, NULL, what);                                 \
    } while (0)
    const double neg = -0.5, nan_ = NAN, inf = INFINITY;
    BAD(p.n = 0, ATS_STATUS_EDOM, "layer n = 0");
    BAD(p.d = 0, ATS_STATUS_EDOM, "layer d = 0");
    BAD(p.beta = &neg, ATS_STATUS_EDOM, "layer beta = -0.5");
    BAD(p.beta = &nan_, ATS_STATUS_EDOM, "layer beta = NaN");
    BAD(p.beta = &inf, ATS_STATUS_EDOM, "layer beta = +inf");
    BAD(p.alpha = -0.5, ATS_STATUS_EDOM, "layer alpha = -0.5");
    BAD(p.alpha = NAN, ATS_STATUS_EDOM, "layer alpha = NaN");
    BAD(p.alpha = INFINITY, ATS_STATUS_EDOM, "layer alpha = +inf");
    BAD(p.nbeta = 0, ATS_STATUS_EDOM, "layer nbeta = 0");
    BAD((p.eta = ATS_ETA_HUTCHINSON, p.probes = 0), ATS_STATUS_EDOM, "Hutchinson probes = 0");
    BAD((p.eta = ATS_ETA_HUTCHINSON, p.probes = -3), ATS_STATUS_EDOM, "Hutchinson probes = -3");
    BAD(p.threads = -1, ATS_STATUS_EDOM, "layer threads = -1");
    BAD((p.n = 1, p.pairs = 1), ATS_STATUS_EDOM, "pairs with n = 1");
    BAD(p.pairs = 3, ATS_STATUS_EDOM, "pairs = 3");
    BAD(p.pairs = -1, ATS_STATUS_EDOM, "pairs = -1");
    // The second beta of a grid bad: the whole call fails.
    const double grid[2] = {1, -1};
    BAD((p.beta = grid, p.nbeta = 2), ATS_STATUS_EDOM, "layer beta grid {1, -1}");
#undef BAD

    // Parallel tokens with pairs (1 and 2, f64 and f32): row 3 a copy of row 1, 2 x row 1
    // (the same unit vector after normalising: scaling by 2 is exact) and 2.385 x row 1 (the
    // same direction, its unit vector within an ulp or two); without pairs they are fine.
    static const double factors[3] = {1, 2, 2.385};
    for (int c = 0; c < 3; c++) {
        double xp[5 * 4];
        memcpy(xp, x, sizeof xp);
        for (int64_t l = 0; l < d; l++)
            xp[3 * d + l] = factors[c] * x[1 * d + l];
        for (int pr = 1; pr <= 2; pr++)
            for (int q = 0; q < 2; q++) {
                char label[96];
                snprintf(label, sizeof label, "pairs %d %s with x_3 = %g x_1", pr, pname[q],
                         factors[c]);
                p = params(n, d, 0, &beta, 1);
                p.pairs = pr;
                p.precision = precs[q];
                reason_reset();
                int rc = ats_layer_metrics(o, xp, &p);
                if (rc == ATS_STATUS_OK)
                    snprintf(last_reason, sizeof last_reason, "lambda %.17g", o[0].lambda);
                expect(rc, ATS_STATUS_EDOM, NULL, label);
            }
        p = params(n, d, 0, &beta, 1);
        reason_reset();
        ATS_CHECK(ats_layer_metrics(o, xp, &p) == ATS_STATUS_OK,
                  "no pairs: parallel tokens are fine (x_3 = %g x_1; %s)", factors[c],
                  last_reason);
    }
    // Antiparallel tokens are not parallel: <y_3, y_1> = -1, 1 - <y_3, y_1> = 2.
    double xa[5 * 4];
    memcpy(xa, x, sizeof xa);
    for (int64_t l = 0; l < d; l++)
        xa[3 * d + l] = -x[1 * d + l];
    p = params(n, d, 0, &beta, 1);
    p.pairs = 2;
    reason_reset();
    ATS_CHECK(ats_layer_metrics(o, xa, &p) == ATS_STATUS_OK && isfinite(o[0].lambda) &&
                  isfinite(o[0].lambda_angle),
              "pairs with x_3 = -x_1 (antiparallel) is OK (%s)", last_reason);
}

// .npy fixtures for ats_tokens_load.

static char dir[64]; // the test's temporary directory

static const char *tmp(const char *name) {
    static char bufs[4][256];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
    return b;
}

// A version-1.0 .npy file with header dict and raw data.
static int write_npy_raw(const char *path, const char *dict, const void *data, size_t len) {
    unsigned char head[256];
    size_t dl = strlen(dict);
    size_t hl = (10 + dl + 1 + 63) / 64 * 64 - 10; // pad to 64 bytes with spaces and '\n'
    memcpy(head, "\x93NUMPY\x01\x00", 8);
    head[8] = (unsigned char)(hl & 0xff);
    head[9] = (unsigned char)(hl >> 8);
    memcpy(head + 10, dict, dl);
    memset(head + 10 + dl, ' ', hl - dl - 1);
    head[10 + hl - 1] = '\n';
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(head, 1, 10 + hl, f) + (len ? fwrite(data, 1, len, f) : 0);
    return fclose(f) == 0 && w == 10 + hl + len ? 0 : -1;
}

static void test_load(void) {
    snprintf(dir, sizeof dir, "/tmp/ats_test_phase_XXXXXX");
    if (!mkdtemp(dir)) {
        ATS_CHECK(0, "mkdtemp: %s", strerror(errno));
        return;
    }
    const int64_t n = 17, d = 5;
    double x[17 * 5];
    tokens_random(x, 0, n, d, 9300);
    double *got;
    int64_t gn, gd;

    // float64 and float32, 2-D: values exact (float32: the float rounding of each value).
    static const enum ats_dtype types[2] = {ATS_DTYPE_F64, ATS_DTYPE_F32};
    for (int k = 0; k < 2; k++) {
        const char *path = tmp(k ? "f32.npy" : "f64.npy");
        ATS_CHECK(ats_npy_write(path, x, n, d, 2, types[k]) == ATS_STATUS_OK, "write %s fixture",
                  ats_dtype_name(types[k]));
        got = NULL;
        gn = gd = -1;
        reason_reset();
        int rc = ats_tokens_load(&got, &gn, &gd, path);
        int same = rc == ATS_STATUS_OK && gn == n && gd == d;
        for (int64_t t = 0; same && t < n * d; t++)
            same = got[t] == (k ? (double)(float)x[t] : x[t]);
        ATS_CHECK(same, "tokens_load %s (17, 5): shape and values exact (%s)",
                  ats_dtype_name(types[k]), last_reason);
        free(got);
    }
    // Big-endian float64 written by hand.
    {
        unsigned char be[17 * 5 * 8];
        for (int64_t t = 0; t < n * d; t++) {
            uint64_t u;
            memcpy(&u, &x[t], 8);
            for (int b = 0; b < 8; b++)
                be[t * 8 + b] = (unsigned char)(u >> (56 - 8 * b));
        }
        const char *path = tmp("be.npy");
        write_npy_raw(path, "{'descr': '>f8', 'fortran_order': False, 'shape': (17, 5), }", be,
                      sizeof be);
        got = NULL;
        reason_reset();
        int rc = ats_tokens_load(&got, &gn, &gd, path);
        ATS_CHECK(rc == ATS_STATUS_OK && gn == n && gd == d && !memcmp(got, x, sizeof x),
                  "tokens_load big-endian float64: values exact (%s)", last_reason);
        free(got);
    }

    // Rejected files.
    reason_reset();
    ats_npy_write(tmp("one.npy"), x, 1, n * d, 1, ATS_DTYPE_F64);
    got = NULL;
    expect(ats_tokens_load(&got, &gn, &gd, tmp("one.npy")), ATS_STATUS_EINVAL, NULL,
           "tokens_load of a 1-D file");
    double three[2 * 2 * 3] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    write_npy_raw(tmp("three.npy"),
                  "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2, 3), }", three,
                  sizeof three);
    reason_reset();
    expect(ats_tokens_load(&got, &gn, &gd, tmp("three.npy")), ATS_STATUS_EINVAL, NULL,
           "tokens_load of a 3-D file");
    write_npy_raw(tmp("scalar.npy"), "{'descr': '<f8', 'fortran_order': False, 'shape': (), }",
                  three, 8);
    reason_reset();
    expect(ats_tokens_load(&got, &gn, &gd, tmp("scalar.npy")), ATS_STATUS_EINVAL, NULL,
           "tokens_load of a 0-D file");
    ats_npy_write(tmp("f16.npy"), x, n, d, 2, ATS_DTYPE_F16);
    reason_reset();
    expect(ats_tokens_load(&got, &gn, &gd, tmp("f16.npy")), ATS_STATUS_EUNSUP, NULL,
           "tokens_load of a float16 file");
    reason_reset();
    expect(ats_tokens_load(&got, &gn, &gd, tmp("no_such_file.npy")), ATS_STATUS_EIO, NULL,
           "tokens_load of a missing file");
    // Truncated: the last 8 bytes of the data cut off.
    const char *tr = tmp("truncated.npy");
    ats_npy_write(tr, x, n, d, 2, ATS_DTYPE_F64);
    FILE *f = fopen(tr, "rb");
    long len = -1;
    if (f && fseek(f, 0, SEEK_END) == 0)
        len = ftell(f);
    if (f)
        fclose(f);
    ATS_CHECK(len > 8 && truncate(tr, (off_t)(len - 8)) == 0, "truncate the fixture");
    reason_reset();
    expect(ats_tokens_load(&got, &gn, &gd, tr), ATS_STATUS_EINVAL, NULL,
           "tokens_load of a truncated file");
    // Bad rows (13, the only "13" in the reason) in float64 and float32 files.
    static const char *const what[3] = {"NaN", "Inf", "zero"};
    for (int c = 0; c < 3; c++)
        for (int k = 0; k < 2; k++) {
            double bad[17 * 5];
            memcpy(bad, x, sizeof bad);
            if (c == 2)
                for (int64_t l = 0; l < d; l++)
                    bad[13 * d + l] = 0;
            else
                bad[13 * d + 2] = c == 0 ? NAN : INFINITY;
            const char *path = tmp("bad.npy");
            ats_npy_write(path, bad, n, d, 2, types[k]);
            char label[96];
            snprintf(label, sizeof label, "tokens_load %s file, %s in row 13",
                     ats_dtype_name(types[k]), what[c]);
            reason_reset();
            expect(ats_tokens_load(&got, &gn, &gd, path), ATS_STATUS_EDOM, "13", label);
        }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        ATS_CHECK(0, "remove %s", dir);
}

// ----------------------------------------------------------------------------
// 8. Token statistics

// Wilson-Hilferty: the chi-square(k) quantile at z standard deviations of a normal.
static double chi2_quantile(double k, double z) {
    double c = 2 / (9 * k);
    return k * pow(1 - c + z * sqrt(c), 3);
}

static void test_token_stats(void) {
    const int64_t n = 200, d = 400;
    const double rho = 0.3;
    const int draws = 24;
    double *x, *x2;
    ALLOC(x, n * d);
    ALLOC(x2, n * d);
    long double m1[24], m2[24];
    for (int s = 0; s < draws; s++) {
        draw_ok(x, ATS_TOKENS_ALMOST_SIMPLEX, n, d, rho, 5, (uint64_t)s);
        // m1 = mean_i |x_i|^2; m2 = mean_{i<j} <x_i, x_j> = (|sum_i x_i|^2 - sum |x_i|^2) /
        // (n(n-1))
        long double sq = 0, tot = 0;
        for (int64_t l = 0; l < d; l++) {
            long double c = 0;
            for (int64_t i = 0; i < n; i++) {
                c += x[i * d + l];
                sq += (long double)x[i * d + l] * x[i * d + l];
            }
            tot += c * c;
        }
        m1[s] = sq / (long double)n;
        m2[s] = (tot - sq) / ((long double)n * (long double)(n - 1));
    }
    long double a1 = 0, a2 = 0, v1 = 0, v2 = 0;
    for (int s = 0; s < draws; s++) {
        a1 += m1[s] / draws;
        a2 += m2[s] / draws;
    }
    for (int s = 0; s < draws; s++) {
        v1 += (m1[s] - a1) * (m1[s] - a1) / (draws - 1);
        v2 += (m2[s] - a2) * (m2[s] - a2) / (draws - 1);
    }
    // Draws are independent: the standard error of the mean over draws from their spread.
    ATS_CHECK_CLOSE(a1, 1, 4 * sqrtl(v1 / draws), 0,
                    "almost-simplex n 200 d 400 rho 0.3: mean |x_i|^2 = 1 within 4 SE (%d draws)",
                    draws);
    ATS_CHECK_CLOSE(a2, rho, 4 * sqrtl(v2 / draws), 0,
                    "almost-simplex: mean <x_i, x_j> = rho within 4 SE (%d draws)", draws);
    // The spread of m2 across draws is that of the shared rho |z_0|^2 plus O(1/(d n)) terms:
    // Var m2 = 2 rho^2/d + 4 rho (1 - rho)/(d n) + 2 (1 - rho)^2/(d n (n - 1)) (Gaussian
    // moments; z ~ N(0, I/d)). The sample variance of 24 draws is Var chi2(23)/23: 4-sigma
    // band by Wilson-Hilferty. (A z_0 that is not shared, or of the wrong scale, fails this.)
    const double nd = (double)n, dd = (double)d;
    const double var2 = 2 * rho * rho / dd + 4 * rho * (1 - rho) / (dd * nd) +
                        2 * (1 - rho) * (1 - rho) / (dd * nd * (nd - 1));
    const double lo = chi2_quantile(draws - 1, -4) / (draws - 1),
                 hi = chi2_quantile(draws - 1, 4) / (draws - 1);
    ATS_CHECK((double)v2 >= lo * var2 && (double)v2 <= hi * var2,
              "almost-simplex: Var of mean <x_i, x_j> across draws %.3Lg in [%.3g, %.3g] "
              "(theory %.3g, chi-square 4 sigma)",
              v2, lo * var2, hi * var2, var2);

    // The documented stream layout: z_0 first, then z_1 .. z_n row by row, from the library's
    // normal generator on (seed, stream). Operation order within x_i = sqrt(rho) z_0 +
    // sqrt(1 - rho) z_i is not fixed: 4 ulps of the two terms' magnitudes.
    {
        const int64_t nn = 5, dd5 = 7;
        double xr[5 * 7], z0[7];
        draw_ok(xr, ATS_TOKENS_ALMOST_SIMPLEX, nn, dd5, rho, 5, 3);
        struct ats_rng r;
        ats_rng_init(&r, 5, 3);
        const double sd = 1 / sqrt((double)dd5);
        for (int64_t l = 0; l < dd5; l++)
            z0[l] = ats_rng_normal(&r) * sd;
        int ok = 1;
        for (int64_t i = 0; i < nn; i++)
            for (int64_t l = 0; l < dd5; l++) {
                double zi = ats_rng_normal(&r) * sd;
                double a = sqrt(rho) * z0[l], b = sqrt(1 - rho) * zi;
                ok &= fabs(xr[i * dd5 + l] - (a + b)) <= 4 * DBL_EPSILON * (fabs(a) + fabs(b));
            }
        ATS_CHECK(ok, "almost-simplex draw = sqrt(rho) z_0 + sqrt(1 - rho) z_i from "
                      "ats_rng_normal / sqrt(d) on (seed, stream), z_0 first, rows in order");
    }

    // Same (seed, stream): the same tokens; another stream or seed: different tokens.
    static const enum ats_tokens kinds[2] = {ATS_TOKENS_ALMOST_SIMPLEX, ATS_TOKENS_SPHERE};
    for (int k = 0; k < 2; k++) {
        draw_ok(x, kinds[k], n, d, rho, 5, 7);
        draw_ok(x2, kinds[k], n, d, rho, 5, 7);
        ATS_CHECK(!memcmp(x, x2, (size_t)(n * d) * sizeof *x),
                  "%s: same (seed, stream) gives the same tokens bit for bit",
                  ats_tokens_name(kinds[k]));
        draw_ok(x2, kinds[k], n, d, rho, 5, 8);
        ATS_CHECK(memcmp(x, x2, (size_t)(n * d) * sizeof *x) != 0,
                  "%s: another stream gives other tokens", ats_tokens_name(kinds[k]));
        draw_ok(x2, kinds[k], n, d, rho, 6, 7);
        ATS_CHECK(memcmp(x, x2, (size_t)(n * d) * sizeof *x) != 0,
                  "%s: another seed gives other tokens", ats_tokens_name(kinds[k]));
    }

    // Sphere: unit rows; mean pairwise cosine 0 with variance 2/(d n (n-1)) per draw (pairwise
    // cosines of independent uniform directions are uncorrelated with variance 1/d).
    static const int64_t sd_[2] = {3, 400};
    for (int k = 0; k < 2; k++) {
        const int64_t dk = sd_[k];
        long double worst = 0, mc = 0;
        for (int s = 0; s < draws; s++) {
            draw_ok(x, ATS_TOKENS_SPHERE, n, dk, 0.7, 5, (uint64_t)s);
            long double sq = 0, tot = 0;
            for (int64_t i = 0; i < n; i++) {
                long double r = 0;
                for (int64_t l = 0; l < dk; l++)
                    r += (long double)x[i * dk + l] * x[i * dk + l];
                worst = fmaxl(worst, fabsl(sqrtl(r) - 1));
                sq += r;
            }
            for (int64_t l = 0; l < dk; l++) {
                long double c = 0;
                for (int64_t i = 0; i < n; i++)
                    c += x[i * dk + l];
                tot += c * c;
            }
            mc += (tot - sq) / ((long double)n * (long double)(n - 1)) / draws;
        }
        // The sphere sampler sums the squares with compensation (ats_rng_sphere), so the norm
        // is within ~2 ulps and each division adds half an ulp: 4 DBL_EPSILON (8.9e-16),
        // measured in long double.
        ATS_CHECK_CLOSE(worst, 0, 4 * DBL_EPSILON, 0,
                        "sphere d %lld: every row has unit norm (max | |x_i| - 1 |)",
                        (long long)dk);
        const long double se =
            sqrtl(2.0L / ((long double)dk * (long double)n * (long double)(n - 1) * draws));
        ATS_CHECK_CLOSE(mc, 0, 4 * se, 0,
                        "sphere d %lld: mean pairwise cosine 0 within 4 SE (%.3Lg, %d draws)",
                        (long long)dk, se, draws);
    }

    // Simplex: x_i = sqrt(1 - rho) e_i + sqrt(rho) e_n exactly (one rounding of each root).
    {
        const int64_t nn = 6, dd9 = 9;
        double xs[6 * 9];
        draw_ok(xs, ATS_TOKENS_SIMPLEX, nn, dd9, 0.3, 5, 0);
        int ok = 1;
        for (int64_t i = 0; i < nn; i++)
            for (int64_t l = 0; l < dd9; l++) {
                double want = l == i ? sqrt(1 - 0.3) : l == nn ? sqrt(0.3) : 0;
                ok &= fabs(xs[i * dd9 + l] - want) <= DBL_EPSILON * want;
            }
        ATS_CHECK(ok, "simplex n 6 d 9 rho 0.3: x_i = sqrt(1-rho) e_i + sqrt(rho) e_6, zeros "
                      "elsewhere (1 ulp)");
    }
    free(x);
    free(x2);
}

int main(void) {
    ats_set_error_handler(capture);
    double t0 = seconds(), t;
    test_engine_vs_ref();
    test_not_asked();
    ats_test_info("engine vs reference in %.2f s", (t = seconds()) - t0);
    test_eta_fd();
    test_hutchinson_enumerated();
    test_hutchinson_mean();
    ats_test_info("eta tests in %.2f s", seconds() - t);
    t = seconds();
    test_simplex();
    ats_test_info("simplex tests in %.2f s", seconds() - t);
    t = seconds();
    test_almost_simplex_limit();
    ats_test_info("almost-simplex limit in %.2f s", seconds() - t);
    t = seconds();
    test_threads();
    ats_test_info("thread determinism in %.2f s", seconds() - t);
    test_token_errors();
    test_layer_errors();
    test_load();
    test_token_stats();
    ats_test_info("total %.2f s", seconds() - t0);
    return ats_test_summary();
}
