/*
 * bench_query.c: keys per second of the exact single-query sampler (THEORY.md 3.1;
 * DESIGN.md target: >= 1e8 keys/s on 2 cores at d = 3, cost per key independent of d).
 * Validates one trial against A_d(beta) before timing. Output: CSV.
 * Run: make bench (or build/bench/bench_query)
 */
#include <math.h>
#include <stdio.h>
#include <time.h>

#include "attnscale.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(void) {
    struct ats_query_params p = ats_query_params_default();
    struct ats_query_trial t;
    p.d = 3;
    p.n = 1e7;
    p.beta = 100;
    // <y, q> of one trial: A_3(100) = 0.99 with a standard deviation of about
    // sqrt(sigma_par^2/n) < 1e-3 at n = 1e7.
    if (ats_query_run(&t, &p, 0, 1) != ATS_STATUS_OK || fabs(t.cos_yq - ats_sphere_A(3, 100)) > 1e-3) {
        fprintf(stderr, "bench_query: validation against A_3(100) failed\n");
        return 1;
    }
    printf("# %s", ats_build_info());
    printf("bench,d,n,threads,keys_per_s_best,keys_per_s_median\n");
    const int64_t ds[3] = {3, 4, 64};
    const int threads[2] = {1, 2};
    for (int id = 0; id < 3; id++)
        for (int it = 0; it < 2; it++) {
            p.d = ds[id];
            p.n = 1e8;
            p.beta = 100;
            p.threads = threads[it];
            double r[5];
            for (int rep = 0; rep < 5; rep++) {
                double t0 = now();
                if (ats_query_run(&t, &p, rep, 1) != ATS_STATUS_OK)
                    return 1;
                r[rep] = p.n / (now() - t0);
            }
            for (int a = 0; a < 5; a++) // sort descending
                for (int b = a; b > 0 && r[b] > r[b - 1]; b--) {
                    double x = r[b];
                    r[b] = r[b - 1];
                    r[b - 1] = x;
                }
            printf("query_exact,%lld,%.0f,%d,%.4g,%.4g\n", (long long)ds[id], p.n, threads[it],
                   r[0], r[2]);
        }
    return 0;
}
