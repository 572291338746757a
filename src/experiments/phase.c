/*
 * phase.c: ats_layer_metrics, the paper-1 layer on general tokens (THEORY.md 2.1, 2.4-2.8):
 * checks the parameters, sizes the row block and the beta chunk against the memory they
 * need, and runs the float64 or float32 kernel (src/kernels/attn_impl.h).
 *
 * Panel (block): rows a thread takes at a time, so that its buffers (Gram and softmax rows,
 * and with Hutchinson the (i, p) rows of dG and dA) stay near 96 MB, at most 256 rows, and
 * about 8 panels for small n so that threads share the work. Chunk: the outputs of that many
 * betas are held at once for the pair pass (n d each, up to 1 GB), and for exact eta each
 * thread's softmax rows of them (up to 256 MB); the Gram rows (dG rows, and G o G for exact
 * eta) are computed once per chunk. Both depend on the shape only, never on the thread
 * count, and so do the results.
 */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <unistd.h>

#include "core/internal.h"
#include "kernels/attn.h"

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
    return p->precision == ATS_PRECISION_F32 ? ats_attn_run_f32(&jb) : ats_attn_run_f64(&jb);
}
