/*
 * attn.c: the two precisions of the blocked self-attention kernel (attn_impl.h holds the
 * body, THEORY.md 2.7-2.8 the method) and the workspace size they share.
 *
 * Build: part of build/libattnscale.a; tests: make build/tests/test_phase.
 */
#include <math.h>
#include <stdint.h>

#include <cblas.h>

#include "core/internal.h"
#include "kernels/attn.h"

// a * b + c in size_t, SIZE_MAX on overflow (either operand may already be SIZE_MAX).
static size_t muladd(size_t a, size_t b, size_t c) {
    if (a == SIZE_MAX || b == SIZE_MAX || c == SIZE_MAX || (b && a > (SIZE_MAX - c) / b))
        return SIZE_MAX;
    return a * b + c;
}

size_t ats_attn_workspace(const struct attn_job *jb, size_t esize) {
    size_t n = (size_t)jb->n, d = (size_t)jb->d, nb = (size_t)jb->nbeta, B = (size_t)jb->block;
    size_t m = jb->eta == ATS_ETA_HUTCHINSON ? (size_t)jb->probes : 0;
    size_t ex = jb->eta == ATS_ETA_EXACT, pr = jb->pairs ? 1 : 0;
    size_t dbl = n;                                    // r
    dbl = muladd(3 + 3 * pr + ex, muladd(nb, n, 0), dbl); // rows, pairsum, erow
    dbl = muladd(B, m, dbl);                           // jvn
    dbl = muladd(nb, m, dbl);                          // psum
    size_t nd = muladd(n, d, 0), bn = muladd(B, n, 0), bd = muladd(B, d, 0);
    size_t re = nd;                                    // y
    re = muladd(2 + 4 * ex, bn, re);                   // gb, ab (+ gv, vb, tb, hb)
    re = muladd(1 + ex, bd, re);                       // mb (+ wb)
    re = muladd(pr * (size_t)jb->chunk, nd, re);       // xo
    re = muladd(m, nd, re);                            // dy
    re = muladd(2 * m, bn, re);                        // dg, da
    re = muladd(m, bd, re);                            // jv
    size_t bytes = muladd(dbl, sizeof(double), 0);
    bytes = muladd(re, esize, bytes);
    return muladd(m, nd, bytes);                       // probe signs
}

#define R double
#define FN(name) attn_##name##_f64
#define GEMM cblas_dgemm
#define EXP exp
#include "kernels/attn_impl.h"
#undef R
#undef FN
#undef GEMM
#undef EXP

#define R float
#define FN(name) attn_##name##_f32
#define GEMM cblas_sgemm
#define EXP expf
#include "kernels/attn_impl.h"
#undef R
#undef FN
#undef GEMM
#undef EXP

int ats_attn_run_f64(const struct attn_job *job) {
    return attn_run_f64(job);
}

int ats_attn_run_f32(const struct attn_job *job) {
    return attn_run_f32(job);
}
