/*
 * attn.c: the two precisions of the blocked self-attention kernel (attn_impl.h holds the
 * body, THEORY.md 2.7-2.8 the method, attn.h the interface), the workspace size and layout
 * they share, and the probes' signs. Pure and single-threaded: the threads, the allocation and
 * BLAS's thread count belong to src/experiments/phase.c.
 *
 * Build: part of build/libattnscale.a; tests: make build/tests/test_phase.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>

#include <cblas.h>

#include "kernels/attn.h"

// a * b + c in size_t, SIZE_MAX on overflow (either operand may already be SIZE_MAX).
static size_t muladd(size_t a, size_t b, size_t c) {
    if (a == SIZE_MAX || b == SIZE_MAX || c == SIZE_MAX || (b && a > (SIZE_MAX - c) / b))
        return SIZE_MAX;
    return a * b + c;
}

int64_t ats_attn_scratch(const struct attn_job *jb) {
    int64_t n = jb->n, d = jb->d, P = jb->block;
    int64_t m = jb->eta == ATS_ETA_HUTCHINSON ? jb->probes : 0;
    int64_t ex = jb->eta == ATS_ETA_EXACT;
    return P * ((2 + 2 * m + ex * (3 + 2 * jb->chunk)) * n + (1 + m + ex) * d);
}

size_t ats_attn_workspace(const struct attn_job *jb, size_t esize) {
    size_t n = (size_t)jb->n, d = (size_t)jb->d, nb = (size_t)jb->nbeta;
    size_t m = jb->eta == ATS_ETA_HUTCHINSON ? (size_t)jb->probes : 0;
    size_t ex = jb->eta == ATS_ETA_EXACT, pr = jb->pairs ? 1 : 0;
    size_t nbn = muladd(nb, n, 0), nd = muladd(n, d, 0);
    size_t dbl = muladd(3 + 3 * pr + ex, nbn, n); // r, rows, pairsum, erow
    dbl = muladd(nbn, m, dbl);                    // pe
    size_t re = muladd(1 + pr * (size_t)jb->chunk + m, nd, 0); // y, xo, dy
    re = muladd((size_t)jb->threads, (size_t)ats_attn_scratch(jb), re);
    size_t bytes = muladd(dbl, sizeof(double), 0);
    bytes = muladd(re, esize, bytes);
    return muladd(m, nd, bytes); // probe signs
}

void ats_attn_ws_carve(struct attn_ws *ws, const struct attn_job *jb, void *mem, size_t esize) {
    const int64_t n = jb->n, d = jb->d, nb = jb->nbeta, K = jb->chunk;
    const int64_t m = jb->eta == ATS_ETA_HUTCHINSON ? jb->probes : 0;
    const int exact = jb->eta == ATS_ETA_EXACT;
    // As ats_attn_workspace counts it: doubles, R arrays, the scratch slices, probe signs.
    double *p = mem;
    ws->r = p;
    p += n;
    ws->rows = p;
    p += 3 * nb * n;
    ws->pairsum = jb->pairs ? p : NULL;
    p += jb->pairs ? 3 * nb * n : 0;
    ws->erow = exact ? p : NULL;
    p += exact ? nb * n : 0;
    ws->pe = m ? p : NULL;
    p += nb * n * m;
    char *e = (char *)(void *)p; // R arrays, counted in bytes of esize
    ws->y = e;
    e += (size_t)(n * d) * esize;
    ws->xo = jb->pairs ? e : NULL;
    e += jb->pairs ? (size_t)(K * n * d) * esize : 0;
    ws->dy = m ? e : NULL;
    e += (size_t)(n * m * d) * esize;
    ws->scratch = e;
    e += (size_t)jb->threads * (size_t)ats_attn_scratch(jb) * esize;
    ws->v = m ? (signed char *)e : NULL;
}

void ats_attn_probe_signs(const struct attn_job *jb, const struct attn_ws *ws) {
    const int64_t n = jb->n, d = jb->d, m = jb->probes;
    signed char *v = ws->v;
    struct ats_rng rng;
    ats_rng_init(&rng, jb->seed, jb->stream);
    uint32_t word = 0;
    int bits = 0;
    for (int64_t p = 0; p < m; p++)
        for (int64_t i = 0; i < n; i++)
            for (int64_t l = 0; l < d; l++) {
                if (!bits) {
                    word = ats_rng_u32(&rng);
                    bits = 32;
                }
                v[(i * m + p) * d + l] = (word & 1u) ? 1 : -1;
                word >>= 1;
                bits--;
            }
}

#define R double
#define FN(name) attn_##name##_f64
#define GEMM cblas_dgemm
#define EXP exp
#define EPS DBL_EPSILON
#include "kernels/attn_impl.h"
#undef R
#undef FN
#undef GEMM
#undef EXP
#undef EPS

#define R float
#define FN(name) attn_##name##_f32
#define GEMM cblas_sgemm
#define EXP expf
#define EPS FLT_EPSILON
#include "kernels/attn_impl.h"
#undef R
#undef FN
#undef GEMM
#undef EXP
#undef EPS

const struct attn_kernels ats_attn_kernels_f64 = {
    .esize = sizeof(double),
    .eps = DBL_EPSILON,
    .prenorm = attn_prenorm_f64,
    .probe_tangents = attn_probe_tangents_f64,
    .panel = attn_panel_f64,
    .normalise = attn_normalise_f64,
    .pairs_panel = attn_pairs_panel_f64,
};

const struct attn_kernels ats_attn_kernels_f32 = {
    .esize = sizeof(float),
    .eps = FLT_EPSILON,
    .prenorm = attn_prenorm_f32,
    .probe_tangents = attn_probe_tangents_f32,
    .panel = attn_panel_f32,
    .normalise = attn_normalise_f32,
    .pairs_panel = attn_pairs_panel_f32,
};
