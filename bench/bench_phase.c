/*
 * bench_phase.c: throughput of the paper-1 layer (ats_layer_metrics; THEORY.md 2.7-2.8)
 * against the machine's own GEMM rate, measured in the same run (DESIGN.md target: >= 70% of
 * the sgemm rate at n >= 2048). Almost-simplex tokens, n = 2048, d = 512, rho = 0.5, eight
 * gamma values 0.5..4 in one call (the Gram rows, and dG rows, are shared across them).
 *
 * Flops counted are the GEMM flops the kernel executes (attn_impl.h):
 *   per call   G rows 2 n^2 d; with pairs the upper G rows n^2 d; with Hutchinson the dG rows
 *              4 n^2 d m (two GEMMs per probe)
 *   per gamma  A Y 2 n^2 d; with pairs the upper output Gram n^2 d; with Hutchinson
 *              dA Y + A dY 4 n^2 d m
 * (the diagonal blocks of the upper products add n B d each, left out: under 13% at B <= 256).
 * Output: CSV (best of 3 runs after one warm-up).
 * Run: make bench (or build/bench/bench_phase)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <cblas.h>

#include "attnscale.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

// Best GFLOP/s of C = A B^T with A, B (n, k), the shape of the kernel's Gram rows.
static double gemm_rate(int single, int n, int k) {
    size_t es = single ? sizeof(float) : sizeof(double);
    void *a = malloc((size_t)n * (size_t)k * es), *c = malloc((size_t)n * (size_t)n * es);
    if (!a || !c)
        return NAN;
    for (size_t i = 0; i < (size_t)n * (size_t)k; i++) {
        double v = (double)(i % 1000) / 1000 - 0.5;
        if (single)
            ((float *)a)[i] = (float)v;
        else
            ((double *)a)[i] = v;
    }
    double best = HUGE_VAL;
    for (int r = 0; r < 4; r++) {
        double t = now();
        if (single)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, k, 1, a, k, a, k, 0, c, n);
        else
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, k, 1, a, k, a, k, 0, c, n);
        t = now() - t;
        if (r > 0 && t < best) // the first call warms up the thread pool
            best = t;
    }
    free(a);
    free(c);
    return 2.0 * n * n * k / best / 1e9;
}

int main(void) {
    enum { NB = 8 };
    const int64_t n = 2048, d = 512, m = 16;
    double *x = malloc((size_t)(n * d) * sizeof *x), beta[NB];
    if (!x || ats_tokens_draw(x, ATS_TOKENS_ALMOST_SIMPLEX, n, d, 0.5, 1, 0) != ATS_STATUS_OK)
        return 1;
    for (int k = 0; k < NB; k++)
        beta[k] = 0.5 * (k + 1) * log((double)n);
    double srate = gemm_rate(1, (int)n, (int)d), drate = gemm_rate(0, (int)n, (int)d);
    printf("# %s", ats_build_info());
    printf("# sgemm %.1f GFLOP/s, dgemm %.1f GFLOP/s (n = %lld, k = %lld, C = A A^T)\n", srate,
           drate, (long long)n, (long long)d);
    printf("bench,precision,n,d,gammas,probes,s_per_gamma,gflops,fraction_of_gemm\n");
    double n2d = (double)n * (double)n * (double)d;
    for (int what = 0; what < 2; what++)
        for (int prec = 0; prec < 2; prec++) {
            struct ats_layer_params p = ats_layer_params_default();
            p.n = n;
            p.d = d;
            p.beta = beta;
            p.nbeta = NB;
            p.pairs = what == 0;
            p.eta = what == 1 ? ATS_ETA_HUTCHINSON : ATS_ETA_NONE;
            p.probes = m;
            p.precision = prec ? ATS_PRECISION_F32 : ATS_PRECISION_F64;
            double flops = what == 0 ? 3 * n2d + NB * 3 * n2d
                                     : 2 * n2d + 4 * n2d * (double)m + NB * (2 + 4.0 * (double)m) * n2d;
            struct ats_layer_metrics out[NB];
            double best = HUGE_VAL;
            for (int r = 0; r < 4; r++) {
                double t = now();
                if (ats_layer_metrics(out, x, &p) != ATS_STATUS_OK)
                    return 1;
                t = now() - t;
                if (r > 0 && t < best)
                    best = t;
            }
            double rate = flops / best / 1e9, peak = prec ? srate : drate;
            printf("%s,%s,%lld,%lld,%d,%lld,%.4f,%.1f,%.2f\n", what ? "eta_hutchinson" : "lambda",
                   prec ? "f32" : "f64", (long long)n, (long long)d, NB,
                   what ? (long long)m : 0LL, best / NB, rate, rate / peak);
        }
    free(x);
    return 0;
}
