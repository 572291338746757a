/*
 * attn.h: the blocked pre-LN self-attention kernel behind ats_layer_metrics (THEORY.md 2.1,
 * 2.4-2.8), in float64 and float32. Internal to libattnscale.
 *
 * The kernel is pure and single-threaded: it never allocates, never reports errors and
 * never touches threads (OpenMP or BLAS). src/experiments/phase.c checks the parameters,
 * chooses the block and the beta chunk, allocates the ats_attn_workspace bytes and carves
 * them with ats_attn_ws_carve, sets BLAS to one thread, spreads the panels over OpenMP
 * threads (each with its own ats_attn_scratch slice), and merges the per-row partials the
 * panels write in row order, so the results do not depend on the thread count.
 *
 * One call of the layer, as phase.c runs it (K = job->chunk, P = job->block):
 *   prenorm(rows 0..n)                                   r, Y
 *   probe_signs; probe_tangents(any split of n m rows)   V, dY            (Hutchinson only)
 *   per chunk [c0, c0 + kc) of the betas, kc <= K:
 *     panel(i0, b, c0, kc) for every panel i0 = 0, P, 2P, ..  (b = min(P, n - i0))
 *     with pairs: normalise(kb, any split of the rows) for kb = 0..kc-1, then
 *                 pairs_panel(i0, b, c0, kc) for every panel
 *   sums over rows of ws->rows, pairsum, erow, pe in row order
 * Calls with different panels (or row ranges) write disjoint parts of the workspace and may
 * run concurrently; each concurrent call needs its own scratch.
 */
#ifndef ATS_KERNELS_ATTN_H
#define ATS_KERNELS_ATTN_H

#include <stddef.h>
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
    int threads;                     // scratch slices in the workspace, >= 1
    int64_t block;                   // rows per panel P, 1..n
    int64_t chunk;                   // betas whose outputs are held at once (pairs), >= 1
    struct ats_layer_metrics *out;   // (nbeta,), written by the orchestration's merge
};

// Pointers into one caller-owned workspace of ats_attn_workspace bytes, as ats_attn_ws_carve
// lays it out. R is the kernel's element type (double or float); m = job->probes with
// Hutchinson eta, else 0; NULL marks an array the job does not use.
struct attn_ws {
    double *r;        // (n,) token norms |x_i|
    double *rows;     // (3, nbeta, n) per row: A_ii, entropy, 1/sum_j A_ij^2
    double *pairsum;  // (3, nbeta, n) per row i: sums over j > i of rho', lambda, angle ratio
    double *erow;     // (nbeta, n) exact eta: row i's share of ||J||_F^2
    double *pe;       // (nbeta, n, m) Hutchinson: |JV|^2 of rows (i, p)
    void *y;          // (n, d) R unit tokens
    void *xo;         // (chunk, n, d) R the chunk's outputs x' (pairs)
    void *dy;         // (n, m, d) R the probes' tangents
    void *scratch;    // (threads, ats_attn_scratch) R, one slice per concurrent panel call
    signed char *v;   // (n, m, d) probe signs
};

// Elements (float or double) of one scratch slice for a panel: P ((2 + 2m + e (3 + 2K)) n
// + (1 + m + e) d), m probes (Hutchinson), e = 1 for exact eta, K the chunk.
int64_t ats_attn_scratch(const struct attn_job *job);

// Bytes of workspace a job of this shape needs at element size esize (4 or 8), with
// job->threads scratch slices, or SIZE_MAX when the count overflows; phase.c uses it to
// choose the panel and the chunk and to allocate.
size_t ats_attn_workspace(const struct attn_job *job, size_t esize);

// Points ws into mem, ats_attn_workspace(job, esize) bytes aligned for double (malloc's);
// the caller keeps ownership of mem. Slice t of the scratch starts at byte
// t * ats_attn_scratch(job) * esize of ws->scratch.
void ats_attn_ws_carve(struct attn_ws *ws, const struct attn_job *job, void *mem, size_t esize);

// Rademacher probe signs into ws->v, (i, p, l) layout, from the Philox stream (job->seed,
// job->stream) read in probe order, so probe p is the same whatever the number of probes.
// Precision-free and sequential (one stream). Hutchinson only.
void ats_attn_probe_signs(const struct attn_job *job, const struct attn_ws *ws);

// The kernel in one precision. Every function reads job and the arrays of ws the layout
// comment above names, and writes only what its comment says.
struct attn_kernels {
    size_t esize; // sizeof(R)
    double eps;   // R's machine epsilon (the parallel-pair tolerance 8 (d + 4) eps)

    // Pre-LN of rows [i0, i1): r_i = |x_i| (scaled against overflow) into ws->r, y_i =
    // x_i / r_i into ws->y.
    void (*prenorm)(const struct attn_job *job, const struct attn_ws *ws, int64_t i0,
                    int64_t i1);

    // Tangents of the probe rows ip = i m + p in [ip0, ip1): dy_ip = (v_ip - <y_i, v_ip> y_i)
    // / r_i into ws->dy (THEORY.md 2.7). Needs ws->r, y (prenorm) and v (probe_signs).
    void (*probe_tangents)(const struct attn_job *job, const struct attn_ws *ws, int64_t ip0,
                           int64_t ip1);

    // Pass 1 for the panel of rows [i0, i0 + b) and the betas [c0, c0 + kc) of one chunk
    // (b <= P, kc <= K): the Gram rows and dG rows once, then per beta the softmax rows, M = A Y,
    // the outputs (pairs), the probes' |JV|^2 and the exact eta rows. Writes ws->rows, erow
    // and pe at (beta, rows of the panel) and the panel's rows of ws->xo (chunk-relative
    // beta); scratch is one slice of ats_attn_scratch(job) elements, overwritten.
    void (*panel)(const struct attn_job *job, const struct attn_ws *ws, int64_t i0, int64_t b,
                  int64_t c0, int64_t kc, void *scratch);

    // Normalises rows [i0, i1) of output kb of the chunk (ws->xo) to unit length in place.
    // Returns the first of them whose norm is zero or not finite (left as it is), or -1.
    int64_t (*normalise)(const struct attn_job *job, const struct attn_ws *ws, int64_t kb,
                         int64_t i0, int64_t i1);

    // Pass 2 (pairs) for the panel of rows [i0, i0 + b): the upper Gram rows G[i0:i0+b, i0:]
    // once, then per beta of the chunk [c0, c0 + kc) the output Gram rows (ws->xo, normalised)
    // and the sums over j > i into ws->pairsum. Returns the first row i (in row order) with a
    // j > i whose tokens are parallel to working precision (1 - <y_i, y_j> <= 8 (d + 4) eps:
    // lambda's denominator is then rounding noise), with j in *jpar, and writes no sums; else
    // -1. scratch as for panel.
    int64_t (*pairs_panel)(int64_t *jpar, const struct attn_job *job, const struct attn_ws *ws,
                           int64_t i0, int64_t b, int64_t c0, int64_t kc, void *scratch);
};

extern const struct attn_kernels ats_attn_kernels_f64, ats_attn_kernels_f32;

#endif // ATS_KERNELS_ATTN_H
