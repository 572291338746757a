/*
 * phase.c: ats_layer_metrics, the paper-1 layer on general tokens (THEORY.md 2.1, 2.4-2.8):
 * checks the parameters, sizes the row block and the beta chunk against the memory they
 * need, allocates the workspace, and runs the float64 or float32 kernel (src/kernels/attn.h,
 * attn_impl.h) over OpenMP threads with BLAS on one thread, then merges the kernel's per-row
 * partials in row order.
 *
 * Panel (block): rows a thread takes at a time, so that its buffers (Gram and softmax rows,
 * and with Hutchinson the (i, p) rows of dG and dA) stay near 96 MB, at most 256 rows, and
 * about 8 panels for small n so that threads share the work. Chunk: the outputs of that many
 * betas are held at once for the pair pass (n d each, up to 1 GB), and for exact eta each
 * thread's softmax rows of them (up to 256 MB); the Gram rows (dG rows, and G o G for exact
 * eta) are computed once per chunk. Both depend on the shape only, never on the thread
 * count, and so do the results: every panel is computed by the same kernel call whichever
 * thread runs it, and the sums over rows run in row order after the parallel loops.
 */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <unistd.h>

#include <cblas.h>

#include "core/internal.h"
#include "kernels/attn.h"

// OpenMP directives, dropped in builds without OpenMP.
#ifdef _OPENMP
#define OMP(directive) _Pragma(#directive)
#define THREAD_ID omp_get_thread_num()
#else
#define OMP(directive)
#define THREAD_ID 0
#endif

struct ats_layer_params ats_layer_params_default(void) {
    struct ats_layer_params p = {0};
    p.n = 2;
    p.d = 2;
    p.eta = ATS_ETA_NONE;
    p.probes = 16;
    p.seed = 1;
    p.precision = ATS_PRECISION_F64;
    return p;
}

// Physical memory in bytes (SIZE_MAX when unknown): a workspace beyond it is refused rather
// than left to the kernel's out-of-memory killer.
static size_t physical_memory(void) {
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);
    if (pages <= 0 || size <= 0 || (unsigned long)pages > SIZE_MAX / (unsigned long)size)
        return SIZE_MAX;
    return (size_t)pages * (size_t)size;
}

// ----------------------------------------------------------------------------
// The run: the kernel's calls spread over threads, and the merge of its partials.

// Probe rows (i, p) per parallel task of the tangent pass; any split gives the same bits.
enum { PROBE_ROWS = 256 };

// |JV|^2 of probe p at beta k, summed over rows in order.
static double probe_total(const struct attn_ws *ws, int64_t n, int64_t m, int64_t k,
                          int64_t p) {
    double e = 0;
    for (int64_t i = 0; i < n; i++)
        e += ws->pe[(k * n + i) * m + p];
    return e;
}

// Means over rows and pairs, and the probes' mean and variance, summed in row order.
static void layer_finish(const struct attn_job *jb, const struct attn_ws *ws) {
    const int64_t n = jb->n, d = jb->d, nb = jb->nbeta;
    const int64_t m = jb->eta == ATS_ETA_HUTCHINSON ? jb->probes : 0;
    double npairs = 0.5 * (double)n * (double)(n - 1), nd = (double)n * (double)d;
    for (int64_t k = 0; k < nb; k++) {
        struct ats_layer_metrics *o = &jb->out[k];
        double s[3] = {0, 0, 0}, q[3] = {0, 0, 0};
        for (int64_t i = 0; i < n; i++)
            for (int t = 0; t < 3; t++) {
                s[t] += ws->rows[(t * nb + k) * n + i];
                if (jb->pairs)
                    q[t] += ws->pairsum[(t * nb + k) * n + i];
            }
        o->a_self = s[0] / (double)n;
        o->entropy = s[1] / (double)n;
        o->support = s[2] / (double)n;
        o->rho_out = jb->pairs ? q[0] / npairs : NAN;
        o->lambda = jb->pairs ? q[1] / npairs : NAN;
        o->lambda_angle = jb->pairs > 1 ? q[2] / npairs : NAN;
        o->eta = o->eta_var = NAN;
        if (jb->eta == ATS_ETA_EXACT) {
            double e = 0;
            for (int64_t i = 0; i < n; i++)
                e += ws->erow[k * n + i];
            o->eta = e / nd;
            o->eta_var = 0;
        } else if (m) {
            double mean = 0, ss = 0;
            for (int64_t p = 0; p < m; p++)
                mean += probe_total(ws, n, m, k, p) / nd;
            mean /= (double)m;
            for (int64_t p = 0; p < m; p++) {
                double e = probe_total(ws, n, m, k, p) / nd - mean;
                ss += e * e;
            }
            o->eta = mean;
            o->eta_var = m > 1 ? ss / (double)(m - 1) : NAN;
        }
    }
}

// The passes of attn.h over jb->threads threads, each panel one kernel call on the calling
// thread's scratch slice; then the merge into jb->out. Rows and panels are fixed by the job,
// and a failure is reported for the lowest failing row, so nothing depends on the thread count.
static int layer_run(const struct attn_job *jb, const struct attn_kernels *kn) {
    const int64_t n = jb->n, d = jb->d, nb = jb->nbeta, P = jb->block, K = jb->chunk;
    const int64_t m = jb->eta == ATS_ETA_HUTCHINSON ? jb->probes : 0;
    const int64_t npanel = (n + P - 1) / P;
    const int nt = jb->threads;
    const size_t slice = (size_t)ats_attn_scratch(jb) * kn->esize;
    (void)nt; // only OpenMP uses it
    size_t need = ats_attn_workspace(jb, kn->esize);
    void *mem = need == SIZE_MAX ? NULL : ats_malloc(need);
    if (!mem)
        ATS_ERROR(ATS_STATUS_ENOMEM, "the layer needs %.3g GB of workspace (n = %lld, d = %lld)",
                  (double)need / 1e9, (long long)n, (long long)d);
    struct attn_ws ws;
    ats_attn_ws_carve(&ws, jb, mem, kn->esize);
    char *scratch = ws.scratch;

    kn->prenorm(jb, &ws, 0, n);
    if (m) {
        ats_attn_probe_signs(jb, &ws);
        const int64_t ntask = (n * m + PROBE_ROWS - 1) / PROBE_ROWS;
OMP(omp parallel for num_threads(nt) schedule(static))
        for (int64_t t = 0; t < ntask; t++) {
            int64_t ip0 = t * PROBE_ROWS, ip1 = ip0 + PROBE_ROWS < n * m ? ip0 + PROBE_ROWS : n * m;
            kn->probe_tangents(jb, &ws, ip0, ip1);
        }
    }
    // BLAS runs on one thread inside each of ours: panels are fixed by P, so every row is
    // computed by the same calls whatever the thread count (threaded OpenBLAS is not
    // bit-reproducible across thread counts).
    int blas_threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
    int rc = ATS_STATUS_OK;
    for (int64_t c0 = 0; c0 < nb && rc == ATS_STATUS_OK; c0 += K) {
        int64_t kc = nb - c0 < K ? nb - c0 : K;
OMP(omp parallel for num_threads(nt) schedule(dynamic, 1))
        for (int64_t pi = 0; pi < npanel; pi++) {
            int64_t i0 = pi * P;
            kn->panel(jb, &ws, i0, n - i0 < P ? n - i0 : P, c0, kc,
                      scratch + (size_t)THREAD_ID * slice);
        }
        if (!jb->pairs)
            continue;
        for (int64_t kb = 0; kb < kc; kb++) {
            int64_t bad = n; // the lowest row with a zero or non-finite output
OMP(omp parallel for num_threads(nt) schedule(static))
            for (int64_t pi = 0; pi < npanel; pi++) {
                int64_t i0 = pi * P, i = kn->normalise(jb, &ws, kb, i0, n - i0 < P ? n : i0 + P);
                if (i >= 0) {
OMP(omp critical(ats_layer_bad_output))
                    if (i < bad)
                        bad = i;
                }
            }
            if (bad < n) {
                ats_error(__FILE__, __LINE__, ATS_STATUS_ENUM,
                          "output row %lld has norm zero or is not finite", (long long)bad);
                rc = ATS_STATUS_ENUM;
                break;
            }
        }
        if (rc != ATS_STATUS_OK)
            break;
        int64_t par_i = -1, par_j = -1;
OMP(omp parallel for num_threads(nt) schedule(dynamic, 1))
        for (int64_t pi = 0; pi < npanel; pi++) {
            int64_t i0 = pi * P, j = -1;
            int64_t i = kn->pairs_panel(&j, jb, &ws, i0, n - i0 < P ? n - i0 : P, c0, kc,
                                        scratch + (size_t)THREAD_ID * slice);
            if (i >= 0) {
OMP(omp critical(ats_layer_parallel_pair))
                if (par_i < 0 || i < par_i) {
                    par_i = i;
                    par_j = j;
                }
            }
        }
        if (par_i >= 0) {
            ats_error(__FILE__, __LINE__, ATS_STATUS_EDOM,
                      "tokens %lld and %lld are parallel to working precision (1 - cosine <= "
                      "%.2g): lambda is undefined",
                      (long long)par_i, (long long)par_j, 8 * (double)(d + 4) * kn->eps);
            rc = ATS_STATUS_EDOM;
        }
    }
    openblas_set_num_threads(blas_threads);
    if (rc == ATS_STATUS_OK)
        layer_finish(jb, &ws);
    ats_free(mem);
    return rc;
}

int ats_layer_metrics(struct ats_layer_metrics *out, const double *x,
                      const struct ats_layer_params *p) {
    ATS_ASSERT(out && x && p);
    if (p->n < 1 || p->d < 1)
        ATS_ERROR(ATS_STATUS_EDOM, "the layer needs n >= 1 and d >= 1 (got n = %lld, d = %lld)",
                  (long long)p->n, (long long)p->d);
    if (p->pairs && p->n < 2)
        ATS_ERROR(ATS_STATUS_EDOM, "rho_out and lambda average over pairs: they need n >= 2");
    if (p->pairs < 0 || p->pairs > 2)
        ATS_ERROR(ATS_STATUS_EDOM, "pairs = %d is not 0, 1 or 2", p->pairs);
    if (!(p->alpha >= 0) || !isfinite(p->alpha))
        ATS_ERROR(ATS_STATUS_EDOM, "alpha = %g must be finite and >= 0", p->alpha);
    if (p->nbeta < 1 || !p->beta)
        ATS_ERROR(ATS_STATUS_EDOM, "no beta to run (nbeta = %lld)", (long long)p->nbeta);
    for (int64_t k = 0; k < p->nbeta; k++)
        if (!(p->beta[k] >= 0) || !isfinite(p->beta[k]))
            ATS_ERROR(ATS_STATUS_EDOM, "beta = %g must be finite and >= 0", p->beta[k]);
    if (p->eta != ATS_ETA_NONE && p->eta != ATS_ETA_HUTCHINSON && p->eta != ATS_ETA_EXACT)
        ATS_ERROR(ATS_STATUS_EDOM, "unknown eta method %d", (int)p->eta);
    if (p->eta == ATS_ETA_HUTCHINSON && p->probes < 1)
        ATS_ERROR(ATS_STATUS_EDOM, "Hutchinson needs probes >= 1 (got %lld)", (long long)p->probes);
    if (p->precision != ATS_PRECISION_F64 && p->precision != ATS_PRECISION_F32)
        ATS_ERROR(ATS_STATUS_EDOM, "unknown precision %d", (int)p->precision);
    if (p->threads < 0 || p->block < 0)
        ATS_ERROR(ATS_STATUS_EDOM, "threads and block must be >= 0 (got %d, %lld)", p->threads,
                  (long long)p->block);
    int64_t m = p->eta == ATS_ETA_HUTCHINSON ? p->probes : 1;
    // BLAS takes int sizes: n m and m d index one GEMM's rows and columns.
    if (p->n > INT_MAX / m || p->d > INT_MAX / m)
        ATS_ERROR(ATS_STATUS_ERANGE,
                  "n = %lld, d = %lld with %lld probes exceed BLAS's 32-bit sizes",
                  (long long)p->n, (long long)p->d, (long long)m);
    int rc = ats_tokens_check(x, p->n, p->d);
    if (rc != ATS_STATUS_OK)
        return rc;

    struct attn_job jb = {x,        p->n,       p->d,        p->alpha,
                          p->beta,  p->nbeta,   p->pairs,    p->eta,
                          p->probes, p->seed,   p->stream,   ats_thread_count(p->threads),
                          p->block, 1,          out};
    size_t es = p->precision == ATS_PRECISION_F32 ? sizeof(float) : sizeof(double);
    if (!jb.block) {
        // Panel rows: a thread's scratch near 96 MB, at most 256 rows, and about 8 panels for
        // small n. Larger panels share each BLAS call's packing of the n-row operand (Y, or the
        // probes' dY) among more rows: at n = 2048, d = 512, 16 probes, f32, panels of 256 rows
        // run the Hutchinson grid 8% faster than 115 and as fast as 512.
        struct attn_job one = jb;
        one.block = 1;
        double per_row = (double)es * (double)ats_attn_scratch(&one);
        double eighth = 8 * ceil((double)p->n / 64);
        double b = fmin(fmin(floor(96e6 / per_row), 256), eighth);
        jb.block = b < 1 ? 1 : (int64_t)b;
    }
    if (jb.block > p->n)
        jb.block = p->n;
    // Chunk: without pairs or exact eta nothing is held per beta, so every beta goes in one.
    double chunk = (double)p->nbeta;
    if (p->pairs) // the outputs, n d each, up to 1 GB
        chunk = fmin(chunk, floor(1e9 / ((double)es * (double)p->n * (double)p->d)));
    if (p->eta == ATS_ETA_EXACT) // softmax and (G o G) A^T rows, 2 P n per thread, up to 256 MB
        chunk = fmin(chunk, floor(256e6 / ((double)es * 2 * (double)jb.block * (double)p->n)));
    jb.chunk = chunk < 1 ? 1 : (int64_t)chunk;
    size_t need = ats_attn_workspace(&jb, es), have = physical_memory();
    if (need == SIZE_MAX || need > have)
        ATS_ERROR(ATS_STATUS_ENOMEM,
                  "n = %lld, d = %lld needs %.3g GB of workspace, more than the %.3g GB of memory",
                  (long long)p->n, (long long)p->d, need == SIZE_MAX ? HUGE_VAL : (double)need / 1e9,
                  (double)have / 1e9);
    return layer_run(&jb, p->precision == ATS_PRECISION_F32 ? &ats_attn_kernels_f32
                                                           : &ats_attn_kernels_f64);
}
