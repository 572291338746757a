/*
 * attn.c: the two precisions of the blocked self-attention kernel (attn_impl.h holds the
 * body, THEORY.md 2.7-2.8 the method) and the workspace size they share.
 *
 * Build: part of build/libattnscale.a; tests: make build/tests/test_phase.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>

#include <cblas.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/internal.h"
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

// OpenMP directives of the kernel, dropped in builds without OpenMP.
#ifdef _OPENMP
#define OMP(directive) _Pragma(#directive)
#define THREAD_ID omp_get_thread_num()
#else
#define OMP(directive)
#define THREAD_ID 0
#endif

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

int ats_attn_run_f64(const struct attn_job *job) {
    return attn_run_f64(job);
}

int ats_attn_run_f32(const struct attn_job *job) {
    return attn_run_f32(job);
}
