/*
 * attn.h: the blocked pre-LN self-attention kernel behind ats_layer_metrics (THEORY.md 2.1,
 * 2.4-2.8), in float64 and float32. Internal to libattnscale.
 *
 * src/experiments/phase.c checks the parameters, chooses the block and the beta chunk, and
 * calls one of the two instances of attn_impl.h; the kernel allocates its workspace and
 * reports ENOMEM (with the byte count) or a numerical failure itself.
 */
#ifndef ATS_KERNELS_ATTN_H
#define ATS_KERNELS_ATTN_H

#include <stdint.h>

#include "attnscale.h"

struct attn_job {
    const double *x;                 // (n, d) tokens, rows already checked
    int64_t n, d;
    double alpha;
    const double *beta;              // (nbeta,)
    int64_t nbeta;
    int pairs;                       // 0, 1 (rho_out, lambda), 2 (+ lambda_angle)
    enum ats_eta_method eta;
    int64_t probes;                  // m, used with ATS_ETA_HUTCHINSON
    uint64_t seed, stream;
    int threads;                     // >= 1
    int64_t block;                   // rows per panel P, 1..n
    int64_t chunk;                   // betas whose outputs are held at once (pairs), >= 1
    struct ats_layer_metrics *out;   // (nbeta,)
};

int ats_attn_run_f64(const struct attn_job *job);
int ats_attn_run_f32(const struct attn_job *job);

// Elements (float or double) of one thread's scratch for a panel: P ((2 + 2m + e (3 + 2K)) n
// + (1 + m + e) d), m probes (Hutchinson), e = 1 for exact eta, K the chunk.
int64_t ats_attn_scratch(const struct attn_job *job);

// Bytes of workspace a job of this shape allocates at element size esize (4 or 8), or
// SIZE_MAX when the count overflows; phase.c uses it to choose the panel and the chunk.
size_t ats_attn_workspace(const struct attn_job *job, size_t esize);

#endif // ATS_KERNELS_ATTN_H
