/*
 * stats.c: means, standard errors, variances, pooled standard errors, medians and histograms
 * for the experiment drivers (see stats.h). Every loop keeps the order of operations of the
 * CLI code it replaces, so the outputs stay byte-identical; tests/test_stats.c checks that
 * against verbatim copies of that code and the values against NumPy.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/internal.h"
#include "experiments/stats.h"

// The i-th strided value.
static inline double at(const double *first, int64_t i, size_t stride) {
    return *(const double *)((const char *)first + (size_t)i * stride);
}

static void check_strided(const double *first, int64_t m, size_t stride) {
    ATS_ASSERT(m >= 0);
    ATS_ASSERT(m == 0 || first);
    ATS_ASSERT(stride >= sizeof(double) && stride % _Alignof(double) == 0);
    (void)first;
    (void)m;
    (void)stride;
}

// ---------------------------------------------------------------------------
// Means and variances

void ats_stat_mean_se(double *mean, double *se, const double *first, int64_t m, size_t stride) {
    ATS_ASSERT(mean && se && m >= 1);
    check_strided(first, m, stride);
    double s = 0, v = 0;
    for (int64_t i = 0; i < m; i++)
        s += at(first, i, stride);
    *mean = s / (double)m;
    for (int64_t i = 0; i < m; i++) {
        double dv = at(first, i, stride) - *mean;
        v += dv * dv;
    }
    *se = m >= 2 ? sqrt(v / (double)(m - 1) / (double)m) : NAN;
}

void ats_stat_var_se(double *var, double *se, const double *first, int64_t m, size_t stride) {
    ATS_ASSERT(var && se && m >= 1);
    check_strided(first, m, stride);
    double mean, dummy;
    ats_stat_mean_se(&mean, &dummy, first, m, stride);
    double m2 = 0, m4 = 0;
    for (int64_t i = 0; i < m; i++) {
        double c = (at(first, i, stride) - mean) * (at(first, i, stride) - mean);
        m2 += c;
        m4 += c * c;
    }
    *var = m >= 2 ? m2 / (double)(m - 1) : NAN;
    m2 /= (double)m;
    m4 /= (double)m;
    *se = m >= 2 ? sqrt(fmax(m4 - m2 * m2, 0) / (double)m) : NAN;
}

double ats_stat_pooled_se(const double *means, size_t mstride, const double *vars, size_t vstride,
                          int64_t nt, int64_t np, double mean) {
    ATS_ASSERT(nt >= 1 && np >= 1 && nt <= INT64_MAX / np);
    check_strided(means, nt, mstride);
    if (np > 1)
        check_strided(vars, nt, vstride);
    double ss = 0;
    for (int64_t t = 0; t < nt; t++) {
        double dv = at(means, t, mstride) - mean;
        double var = np > 1 ? at(vars, t, vstride) : 0;
        ss += (double)(np - 1) * var + (double)np * dv * dv;
    }
    double tot = (double)(nt * np);
    return tot > 1 ? sqrt(ss / (tot - 1) / tot) : NAN;
}

// ---------------------------------------------------------------------------
// Median

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double ats_stat_median(double *v, int64_t m) {
    ATS_ASSERT(v && m >= 1);
    qsort(v, (size_t)m, sizeof *v, cmp_double);
    return m % 2 ? v[m / 2] : 0.5 * (v[m / 2 - 1] + v[m / 2]);
}

// ---------------------------------------------------------------------------
// Histograms

void ats_stat_histogram(double *dens, int64_t nbins, double lo, double width, const double *first,
                        int64_t m, size_t stride, double scale, double weight, int closed) {
    ATS_ASSERT(dens && nbins >= 1 && width > 0);
    check_strided(first, m, stride);
    for (int64_t b = 0; b < nbins; b++)
        dens[b] = 0;
    // The bin is tested as a double before it becomes an index: the CLI's (int)floor(.) gave
    // the same bins wherever it was defined, and NaN, +-Inf or far values are dropped here
    // instead of being undefined conversions.
    double top = (double)nbins;
    for (int64_t i = 0; i < m; i++) {
        double b = floor((at(first, i, stride) * scale - lo) / width);
        if (b >= 0 && b < top)
            dens[(int64_t)b] += weight;
        else if (closed && b == top)
            dens[nbins - 1] += weight;
    }
}
