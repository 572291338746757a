/*
 * bench_simplex.c: throughput of the exact simplex closed forms (THEORY.md 2.2-2.6), the
 * O(1)-per-point claim of DESIGN.md. Validates a point against THEORY.md 2.10 before timing.
 * Output: CSV with ns per point for a (rho, gamma) grid at several n.
 * Run: make bench (or build/bench/bench_simplex)
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
    struct ats_simplex_params p = ats_simplex_params_default();
    struct ats_simplex s;
    p.n = 6;
    p.d = 9;
    p.rho = 0.5;
    p.beta = 3;
    if (ats_simplex_eval(&s, &p) != ATS_STATUS_OK || fabs(s.rho_out - 0.8945788907) > 1e-10) {
        fprintf(stderr, "bench_simplex: validation against THEORY.md 2.10 failed\n");
        return 1;
    }
    printf("# %s", ats_build_info());
    printf("bench,n,points,ns_per_point_min,ns_per_point_median\n");
    const double ns[] = {1024, 1e6, 1e12};
    for (int in = 0; in < 3; in++) {
        double times[7];
        const int nrho = 100, ngamma = 1000;
        double sink = 0;
        for (int rep = 0; rep < 7; rep++) {
            double t0 = now();
            for (int i = 0; i < nrho; i++)
                for (int j = 0; j < ngamma; j++) {
                    p.n = (int64_t)ns[in];
                    p.d = p.n;
                    p.rho = 0.005 + 0.0099 * i;
                    p.scale = ATS_SCALE_GAMMA;
                    p.gamma = 0.01 * j;
                    ats_simplex_eval(&s, &p);
                    sink += s.eta;
                }
            times[rep] = (now() - t0) / (nrho * ngamma) * 1e9;
        }
        for (int a = 0; a < 7; a++) // insertion sort of 7 values
            for (int b = a; b > 0 && times[b] < times[b - 1]; b--) {
                double t = times[b];
                times[b] = times[b - 1];
                times[b - 1] = t;
            }
        printf("simplex_eval,%.0f,%d,%.1f,%.1f\n", ns[in], nrho * ngamma, times[0], times[3]);
        if (!isfinite(sink))
            return 1;
    }
    return 0;
}
