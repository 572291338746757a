/*
 * tokens.c: token configurations of paper 1 (THEORY.md 2.8): the explicit simplex, the
 * almost-simplex sqrt(rho) z_0 + sqrt(1 - rho) z_i with z ~ N(0, I_d/d), uniform on the
 * sphere, and (n, d) float32/float64 .npy files, with the row checks every path shares.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/internal.h"

const char *ats_tokens_name(enum ats_tokens t) {
    switch (t) {
    case ATS_TOKENS_SIMPLEX:
        return "simplex";
    case ATS_TOKENS_ALMOST_SIMPLEX:
        return "almost-simplex";
    case ATS_TOKENS_SPHERE:
        return "sphere";
    }
    return "unknown";
}

int ats_tokens_draw(double *x, enum ats_tokens kind, int64_t n, int64_t d, double rho,
                    uint64_t seed, uint64_t stream) {
    if (n < 1 || d < 1)
        ATS_ERROR(ATS_STATUS_EDOM, "tokens need n >= 1 and d >= 1 (got n = %lld, d = %lld)",
                  (long long)n, (long long)d);
    if (kind != ATS_TOKENS_SPHERE && !(rho >= 0 && rho < 1))
        ATS_ERROR(ATS_STATUS_EDOM, "rho = %g is outside [0, 1)", rho);
    struct ats_rng rng;
    ats_rng_init(&rng, seed, stream);
    switch (kind) {
    case ATS_TOKENS_SIMPLEX: {
        if (d < n + 1)
            ATS_ERROR(ATS_STATUS_EINVAL, "explicit simplex tokens need d >= n + 1 (n = %lld, d = %lld)",
                      (long long)n, (long long)d);
        double a = sqrt(1 - rho), b = sqrt(rho);
        for (int64_t i = 0; i < n; i++)
            for (int64_t l = 0; l < d; l++)
                x[i * d + l] = l == i ? a : l == n ? b : 0;
        return ATS_STATUS_OK;
    }
    case ATS_TOKENS_ALMOST_SIMPLEX: {
        double *z0 = ats_malloc_array((size_t)d, sizeof *z0);
        if (!z0)
            ATS_ERROR(ATS_STATUS_ENOMEM, "out of memory for d = %lld", (long long)d);
        double s = 1 / sqrt((double)d), a = sqrt(rho), b = sqrt(1 - rho);
        for (int64_t l = 0; l < d; l++)
            z0[l] = s * ats_rng_normal(&rng);
        for (int64_t i = 0; i < n; i++)
            for (int64_t l = 0; l < d; l++)
                x[i * d + l] = a * z0[l] + b * s * ats_rng_normal(&rng);
        ats_free(z0);
        return ATS_STATUS_OK;
    }
    case ATS_TOKENS_SPHERE:
        for (int64_t i = 0; i < n; i++)
            ats_rng_sphere(&rng, x + i * d, d);
        return ATS_STATUS_OK;
    }
    ATS_ERROR(ATS_STATUS_EINVAL, "unknown token configuration %d", (int)kind);
}

int ats_tokens_check(const double *x, int64_t n, int64_t d) {
    for (int64_t i = 0; i < n; i++) {
        const double *row = x + i * d;
        double mx = 0;
        for (int64_t l = 0; l < d; l++) {
            if (!isfinite(row[l]))
                ATS_ERROR(ATS_STATUS_EDOM, "token row %lld has a non-finite value (%g) in column %lld",
                          (long long)i, row[l], (long long)l);
            mx = fmax(mx, fabs(row[l]));
        }
        if (mx == 0)
            ATS_ERROR(ATS_STATUS_EDOM, "token row %lld has norm zero (pre-LN divides by it)",
                      (long long)i);
    }
    return ATS_STATUS_OK;
}

int ats_tokens_load(double **x, int64_t *n, int64_t *d, const char *path) {
    *x = NULL;
    struct ats_array *a;
    int rc = ats_npy_open(&a, path);
    if (rc != ATS_STATUS_OK)
        return rc;
    enum ats_dtype t = ats_array_dtype(a);
    int64_t rows = ats_array_rows(a), cols = ats_array_cols(a);
    if (ats_array_ndim(a) != 2) {
        int nd = ats_array_ndim(a);
        ats_array_close(a);
        ATS_ERROR(ATS_STATUS_EINVAL, "%s: tokens must be a 2-D array (n, d), not %d-D", path, nd);
    }
    if (t != ATS_DTYPE_F32 && t != ATS_DTYPE_F64) {
        ats_array_close(a);
        ATS_ERROR(ATS_STATUS_EUNSUP, "%s: tokens must be float32 or float64, not %s", path,
                  ats_dtype_name(t));
    }
    if (rows < 1 || cols < 1) {
        ats_array_close(a);
        ATS_ERROR(ATS_STATUS_EDOM, "%s: shape (%lld, %lld) has no tokens (n and d must be >= 1)",
                  path, (long long)rows, (long long)cols);
    }
    double *buf = (uint64_t)cols > SIZE_MAX / sizeof *buf
                      ? NULL
                      : ats_malloc_array((size_t)rows, (size_t)cols * sizeof *buf);
    if (!buf) {
        ats_free(buf);
        ats_array_close(a);
        ATS_ERROR(ATS_STATUS_ENOMEM, "%s: no memory for (%lld, %lld) tokens", path,
                  (long long)rows, (long long)cols);
    }
    rc = ats_array_read_rows(buf, a, 0, rows);
    ats_array_close(a);
    if (rc == ATS_STATUS_OK)
        rc = ats_tokens_check(buf, rows, cols);
    if (rc != ATS_STATUS_OK) {
        ats_free(buf);
        return rc;
    }
    *x = buf;
    *n = rows;
    *d = cols;
    return ATS_STATUS_OK;
}
