/*
 * query.c: one query against n random keys (arXiv 2605.08505; THEORY.md 3.1 and 3.4): the
 * exact sampler over chunks of keys, threaded, and the critical-limit (PPP) sampler.
 *
 * Exact sampler (THEORY.md 3.1). Trial t is split into chunks of p->chunk keys (65536 by
 * default); chunk c is reduced by ats_query_chunk (src/kernels/query_kernel.c, which documents
 * the words each key takes) from the Philox stream (seed, t 2^32 + c) into a partial: the
 * chunk's smallest B, Z = sum e, sum e x, sum e^2, sum e B, sum e t and its top-k smallest B,
 * with e = exp(-x), x = 2 beta (B - B_min). Work items (trial, chunk) are spread over threads
 * (OpenMP, dynamic) a window at a time; the partials are then merged on one thread in item
 * order, i.e. chunk order within each trial. Chunk boundaries depend on p->chunk only, so a
 * result is bit-identical for every thread count and every split of the trials across calls.
 * A trial's statistics (THEORY.md 1):
 *   w1 = 1/Z,  sum_w2 = sum e^2 / Z^2,  entropy = log Z + sum e x / Z,
 *   cos_yq = 1 - 2 sum e B / Z   (1 - <y,q> = sum w (1 - s) = 2 sum w B: no cancellation),
 *   radial = beta* 2 sum e B / Z,  perp = sum e t / Z,  top[i] = e^{-2 beta (B_(i) - B_min)} / Z.
 *
 * PPP sampler (THEORY.md 3.4). p->beta carries tau' = beta/beta* (the caller converts), n is
 * ignored. Trial t draws from the stream (seed, t 2^32). With a = tau'/2, p = 2/(d-1),
 * s = 1/p: points Gamma_k = E_1 + ... + E_k (E = -log U), f_k = exp(-a Gamma_k^p), and per
 * point one tangential coordinate u_k (the law of the exact sampler's u) and the radius
 * X_k = (Gamma_k/kappa_d)^(1/(d-1)); ats_query_ppp_batch (query_kernel.h gives the words) adds
 * them 64 at a time. Weights are kept relative to f_1 (e_k = f_k / f_1 <= 1, the largest).
 * Truncation: stop after the first batch whose last point Gamma_K has an upper bound on the
 * expected remaining mass,
 *   T_K = E[sum_{k>K} e_k | Gamma_K] = e^{y1} Gamma(s, a Gamma_K^p) / (p a^s)    (Campbell)
 * with Gamma(s, x) <= x^(s-1) e^-x x/(x - s + 1) (s >= 1, x > s - 1; x^(s-1) e^-x for s < 1),
 * at most 1e-12 of the running sum Z. The conditional means of every tail sum are then added
 * (Z, sum e x, sum e^2, sum e Gamma^p; the tangential sum has mean 0), which leaves a mean-zero
 * error of variance int_{Gamma_K}^inf e(x)^2 dx <= e_K T_K (e_K <= 1, the last weight). The
 * stopping rule looks at the past only, so the points beyond Gamma_K are still a rate-1
 * Poisson process there and these conditional means are exact. The number of points grows
 * like (y/a)^s with y ~ s + 28 (the mass sits at a Gamma^p ~ s, the 1e-12 tail ~28 further):
 * about 120 at d = 3, tau' = 0.5, 3e4 at d = 6, tau' = 1, 5e5 at d = 4, tau' = 0.01, and beyond
 * reach for large d at small tau' (ATS_STATUS_ERANGE, decided up front from that estimate:
 * the limit is then better seen through the exact sampler at large n). Cost ~15 ns per point
 * for d <= 3 and ~55 ns for d >= 4 on one core, independent of n.
 *
 * Build: part of build/libattnscale.a (make lib); tests: make build/tests/test_query.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/internal.h"
#include "kernels/query_kernel.h"

#define QUERY_CHUNK_DEFAULT 65536
// Work items (chunks) per parallel window: about 2^24 keys, between 1024 and 16384 items
// (a partial is ~200 bytes); items handed out in grabs of about 4096 keys. Neither changes
// any result, only the cost of synchronisation for tiny chunks.
#define QUERY_WINDOW_KEYS (INT64_C(1) << 24)
#define QUERY_WINDOW_MIN 1024
#define QUERY_WINDOW_MAX 16384
#define QUERY_GRAB_KEYS 4096
#define QUERY_STREAMS (UINT64_C(1) << 32) // trials and chunks per trial: 32 bits each
#define PPP_EPS 1e-12                     // truncation: expected tail mass / running sum
#define PPP_KMAX (INT64_C(1) << 26)       // points per PPP sample, ~10 s of work

struct ats_query_params ats_query_params_default(void) {
    struct ats_query_params p = {.d = 3,
                                 .n = 1000,
                                 .beta = 1,
                                 .sampler = ATS_SAMPLER_EXACT,
                                 .topk = 0,
                                 .chunk = 0,
                                 .seed = 1,
                                 .threads = 0};
    return p;
}


// ----------------------------------------------------------------------------
// Exact sampler

static void exact_finish(struct ats_query_trial *o, const struct ats_query_partial *a, double beta,
                         double beta_star, int64_t topk) {
    double z = a->z;
    o->w1 = 1.0 / z;
    o->sum_w2 = a->e2 / (z * z);
    o->entropy = log(z) + a->ex / z;
    double one_minus = 2.0 * (a->eb / z); // 1 - <y, q>
    o->cos_yq = 1.0 - one_minus;
    o->radial = beta_star * one_minus;
    o->perp = a->et / z;
    for (int64_t i = 0; i < ATS_QUERY_TOPK_MAX; i++) {
        if (i < topk && i < a->ntop) {
            double x = beta * (2.0 * (a->top[i] - a->bmin));
            o->top[i] = (i == 0 ? 1.0 : exp(-x)) / z;
        } else {
            o->top[i] = NAN;
        }
    }
}

static int exact_run(struct ats_query_trial *out, const struct ats_query_params *p, int64_t t0,
                     int64_t ntrials) {
    int64_t chunk = p->chunk > 0 ? p->chunk : QUERY_CHUNK_DEFAULT;
    int64_t n = (int64_t)p->n;
    int64_t nchunks = n / chunk + (n % chunk != 0);
    if ((uint64_t)nchunks > QUERY_STREAMS)
        ATS_ERROR(ATS_STATUS_ERANGE,
                  "query: n = %.17g would take %lld chunks of %lld keys per trial, above the "
                  "2^32 random streams of a trial: the exact sampler reaches n = %.17g (the ppp "
                  "sampler gives the n -> infinity limit)",
                  p->n, (long long)nchunks, (long long)chunk, (double)chunk * 4294967296.0);
    if (ntrials > INT64_MAX / nchunks)
        ATS_ERROR(ATS_STATUS_ERANGE, "query: %lld trials of %lld chunks overflow the item count",
                  (long long)ntrials, (long long)nchunks);
    double beta_star = ats_sphere_beta_star(p->d, p->n);
    int64_t items = ntrials * nchunks;
    int64_t item_keys = n < chunk ? n : chunk;
    int64_t window = QUERY_WINDOW_KEYS / item_keys;
    window = window < QUERY_WINDOW_MIN ? QUERY_WINDOW_MIN : window;
    window = window > QUERY_WINDOW_MAX ? QUERY_WINDOW_MAX : window;
    window = items < window ? items : window;
    int grab = item_keys >= QUERY_GRAB_KEYS ? 1 : (int)(QUERY_GRAB_KEYS / item_keys);
    struct ats_query_partial *part = ats_malloc_array((size_t)window, sizeof *part);
    if (!part)
        ATS_ERROR(ATS_STATUS_ENOMEM, "query: no memory for %lld chunk partials", (long long)window);
    int nt = ats_thread_count(p->threads);
    (void)nt; // nt and grab are used by the OpenMP pragma only
    (void)grab;
    struct ats_query_partial acc;
    ats_query_partial_empty(&acc);
    for (int64_t base = 0; base < items; base += window) {
        int64_t cnt = items - base < window ? items - base : window;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(dynamic, grab)
#endif
        for (int64_t i = 0; i < cnt; i++) {
            int64_t item = base + i;
            int64_t t = item / nchunks;
            int64_t c = item % nchunks;
            int64_t keys = c == nchunks - 1 ? n - c * chunk : chunk;
            uint64_t stream = (uint64_t)(t0 + t) * QUERY_STREAMS + (uint64_t)c;
            ats_query_chunk(&part[i], p->seed, stream, p->d, keys, p->beta, p->topk);
        }
        // In item order: chunk order within a trial, whatever thread produced each partial.
        for (int64_t i = 0; i < cnt; i++) {
            int64_t item = base + i;
            ats_query_partial_merge(&acc, &part[i], p->beta, p->topk);
            if (item % nchunks == nchunks - 1) {
                exact_finish(&out[item / nchunks], &acc, p->beta, beta_star, p->topk);
                ats_query_partial_empty(&acc);
            }
        }
    }
    ats_free(part);
    return ATS_STATUS_OK;
}

// ----------------------------------------------------------------------------
// PPP sampler

// log of the bound on Gamma(s, x) of the file comment; +inf where it does not apply.
static double ppp_log_gamma_upper_bound(double s, double x, double logx) {
    if (s < 1)
        return (s - 1) * logx - x;
    if (!(x > s - 1))
        return HUGE_VAL;
    return (s - 1) * logx - x - log1p(-(s - 1) / x);
}

// Points needed before the truncation rule can stop, if the running sum is near its mean
// Gamma(s)/(p a^s): Gamma_K ~ K with Gamma(s, a Gamma_K^p)/Gamma(s) <= PPP_EPS, solved on the
// bound by fixed-point iteration (contraction: the derivative (s - 1)/x < 1 for x > s - 1).
static double ppp_points_estimate(double s, double a) {
    double c = lgamma(s) + log(PPP_EPS);
    double x = s + 30;
    for (int i = 0; i < 60; i++) {
        double nx = (s - 1) * log(x) - c - (s >= 1 ? log1p(-(s - 1) / x) : 0);
        x = nx > s ? nx : s;
    }
    return exp(s * (log(x) - log(a)));
}

static int ppp_trial(struct ats_query_trial *o, const struct ats_query_params *p, int64_t t) {
    uint64_t stream = (uint64_t)t * QUERY_STREAMS;
    int64_t d = p->d;
    double a = 0.5 * p->beta;
    double pw = 2.0 / (double)(d - 1);
    double s = 0.5 * (double)(d - 1);
    double loga = log(a);
    double logk = log(ats_sphere_kappa(d));
    // ln of the tail-mass bound in units of f_1, less the log of the bound on Gamma(s, x)
    double tail_c = -log(pw) - s * loga;
    struct ats_query_ppp st;
    ats_query_ppp_init(&st);
    double x;
    for (;;) {
        if (st.k >= 4 * PPP_KMAX)
            return ATS_STATUS_ERANGE;
        ats_query_ppp_batch(&st, p->seed, stream, d, a, logk);
        // The rule at the batch's last point, in logs: log T_K <= log(1e-12 Z).
        double lg = log(st.g > DBL_MIN ? st.g : DBL_MIN);
        x = a * (d == 3 ? st.g : d == 2 ? st.g * st.g : exp(pw * lg)); // a Gamma_K^p
        double lb = ppp_log_gamma_upper_bound(s, x, loga + pw * lg);
        if (lb + st.y1 + tail_c <= log(PPP_EPS * st.z))
            break;
    }
    // Conditional means of the tail sums given Gamma_K (Campbell's formula):
    //   int_G^inf e^{y1 - a x^p} x^{m p} dx = e^{y1} Gamma(s + m, a G^p) / (p a^(s + m)).
    double zt = exp(log(ats_gamma_upper(s, x)) + st.y1 + tail_c);
    double gt = exp(log(ats_gamma_upper(s + 1, x)) + st.y1 + tail_c - loga);
    double e2t = exp(log(ats_gamma_upper(s, 2 * x)) + 2 * st.y1 - log(pw) -
                     s * (loga + 0.69314718055994530942));
    if (isfinite(zt) && isfinite(gt) && isfinite(e2t)) {
        st.z += zt;
        st.eg += gt;
        st.ex += a * gt - st.y1 * zt;
        st.e2 += e2t;
    }
    double z = st.z;
    o->w1 = 1.0 / z;
    o->sum_w2 = st.e2 / (z * z);
    o->entropy = log(z) + st.ex / z;
    o->cos_yq = NAN;
    o->radial = 0.5 * st.eg / z;
    o->perp = st.ep / z;
    for (int64_t i = 0; i < ATS_QUERY_TOPK_MAX; i++)
        o->top[i] = i < p->topk ? st.top[i] / z : NAN;
    return ATS_STATUS_OK;
}

static int ppp_run(struct ats_query_trial *out, const struct ats_query_params *p, int64_t t0,
                   int64_t ntrials) {
    double s = 0.5 * (double)(p->d - 1);
    double est = ppp_points_estimate(s, 0.5 * p->beta);
    if (!(est <= (double)PPP_KMAX))
        ATS_ERROR(ATS_STATUS_ERANGE,
                  "query: ppp at d = %lld, tau' = %g needs ~%.3g points per sample (limit %lld): "
                  "use the exact sampler at large n",
                  (long long)p->d, p->beta, est, (long long)PPP_KMAX);
    int nt = ats_thread_count(p->threads);
    (void)nt;
    int64_t first_bad = ntrials;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
#endif
    for (int64_t i = 0; i < ntrials; i++) {
        if (ppp_trial(&out[i], p, t0 + i) != ATS_STATUS_OK) {
#ifdef _OPENMP
#pragma omp critical(ats_query_ppp_bad)
#endif
            if (i < first_bad)
                first_bad = i;
        }
    }
    if (first_bad < ntrials)
        ATS_ERROR(ATS_STATUS_ERANGE, "query: ppp trial %lld needed more than %lld points",
                  (long long)(t0 + first_bad), (long long)(4 * PPP_KMAX));
    return ATS_STATUS_OK;
}

// ----------------------------------------------------------------------------
// Entry point

int ats_query_run(struct ats_query_trial *out, const struct ats_query_params *p, int64_t t0,
                  int64_t ntrials) {
    ATS_ASSERT(p && (out || ntrials == 0));
    if (p->d < 2)
        ATS_ERROR(ATS_STATUS_EDOM, "query: d = %lld must be >= 2", (long long)p->d);
    if (p->sampler != ATS_SAMPLER_EXACT && p->sampler != ATS_SAMPLER_PPP)
        ATS_ERROR(ATS_STATUS_EDOM, "query: sampler %d is neither exact nor ppp", (int)p->sampler);
    if (p->sampler == ATS_SAMPLER_EXACT) {
        if (!(p->n >= 1 && p->n <= (double)ATS_INT_EXACT_MAX && p->n == floor(p->n)))
            ATS_ERROR(ATS_STATUS_EDOM, "query: n = %.17g must be an integer in [1, 2^53]", p->n);
        if (!(p->beta >= 0 && isfinite(p->beta)))
            ATS_ERROR(ATS_STATUS_EDOM, "query: beta = %g must be finite and >= 0", p->beta);
    } else if (!(p->beta > 0 && isfinite(p->beta))) {
        ATS_ERROR(ATS_STATUS_EDOM, "query: ppp tau' (in beta) = %g must be finite and > 0",
                  p->beta);
    }
    if (p->topk < 0 || p->topk > ATS_QUERY_TOPK_MAX)
        ATS_ERROR(ATS_STATUS_EDOM, "query: topk = %lld must be in [0, %d]", (long long)p->topk,
                  ATS_QUERY_TOPK_MAX);
    if (p->chunk < 0)
        ATS_ERROR(ATS_STATUS_EDOM, "query: chunk = %lld must be >= 0 (0: default %d)",
                  (long long)p->chunk, QUERY_CHUNK_DEFAULT);
    if (p->threads < 0)
        ATS_ERROR(ATS_STATUS_EDOM, "query: threads = %d must be >= 0 (0: OpenMP default)",
                  p->threads);
    if (ntrials < 0)
        ATS_ERROR(ATS_STATUS_EDOM, "query: ntrials = %lld must be >= 0", (long long)ntrials);
    if (t0 < 0)
        ATS_ERROR(ATS_STATUS_EDOM, "query: t0 = %lld must be >= 0", (long long)t0);
    if ((uint64_t)t0 > QUERY_STREAMS || (uint64_t)ntrials > QUERY_STREAMS - (uint64_t)t0)
        ATS_ERROR(ATS_STATUS_ERANGE, "query: trials [%lld, %lld + %lld) go beyond 2^32",
                  (long long)t0, (long long)t0, (long long)ntrials);
    if (ntrials == 0)
        return ATS_STATUS_OK;
    if (p->sampler == ATS_SAMPLER_PPP)
        return ppp_run(out, p, t0, ntrials);
    return exact_run(out, p, t0, ntrials);
}
