/*
 * diagnose.c: the laws of the accumulation scale over context length (THEORY.md 4.4) and the
 * ranking of scaling policies by how well they keep rows critical (THEORY.md 4.5).
 *
 * beta_hat is heavy-tailed (E[1/D_(2)] is infinite when gaps have a density at 0), so the
 * fits use the median per length bucket, never the mean.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/internal.h"

// ---------------------------------------------------------------------------
// Rows in parallel

int64_t ats_row_block_workspace(int64_t cols, int threads) {
    return (int64_t)ats_thread_count(threads) * ats_row_stats_workspace(cols);
}

int ats_row_block(struct ats_row_stats *out, const double *s, int64_t nrows, int64_t cols,
                  const int64_t *lens, const double *mult, const double *beta,
                  const double *window, int64_t ncombo, int threads, double *ws,
                  int64_t *bad_row, int64_t *bad_col) {
    ATS_ASSERT(out && s && beta && window && ws && bad_row && bad_col && ncombo >= 1);
    *bad_row = *bad_col = -1;
    int nt = ats_thread_count(threads);
    int64_t per = ats_row_stats_workspace(cols);
    int64_t first_bad = nrows; // lowest failing row: the same for every thread count
    int bad_status = ATS_STATUS_OK;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(dynamic, 4)
#else
    (void)nt;
#endif
    for (int64_t i = 0; i < nrows; i++) {
        int t = 0;
#ifdef _OPENMP
        t = omp_get_thread_num();
#endif
        double *w = ws + (int64_t)t * per;
        const double *row = s + i * cols;
        int64_t n = lens ? lens[i] : cols;
        double m = mult ? mult[i] : 1;
        struct ats_row_stats *o = out + i * ncombo;
        if (n == 0) { // a row that sees no key (every key masked): nothing to measure
            for (int64_t c = 0; c < ncombo; c++)
                o[c] = (struct ats_row_stats){0, NAN, NAN, NAN, NAN, NAN, beta[c] * m, NAN, -1};
            continue;
        }
        int rc = ats_row_stats(o, row, n, beta[0] * m, window[0], w);
        for (int64_t c = 1; c < ncombo && rc == ATS_STATUS_OK; c++) {
            o[c] = o[0];
            rc = ats_row_stats_rebeta(&o[c], n, beta[c] * m, window[c], w);
        }
        if (rc != ATS_STATUS_OK) {
#ifdef _OPENMP
#pragma omp critical(ats_row_block_bad)
#endif
            if (i < first_bad) {
                first_bad = i;
                bad_status = rc;
            }
        }
    }
    if (first_bad == nrows)
        return ATS_STATUS_OK;
    int64_t n = lens ? lens[first_bad] : cols;
    for (int64_t j = 0; j < n; j++) {
        if (!isfinite(s[first_bad * cols + j])) {
            *bad_row = first_bad;
            *bad_col = j;
            break;
        }
    }
    return bad_status;
}

void ats_scores_qk(double *s, const double *q, const double *k, int64_t nq, int64_t nk,
                   int64_t d, double scale) {
    ATS_ASSERT(s && q && k && nq >= 0 && nk >= 0 && d >= 1);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)nq, (blasint)nk, (blasint)d,
                scale, q, (blasint)d, k, (blasint)d, 0, s, (blasint)nk);
}

struct pair {
    double n, b;
};

static int cmp_pair_n(const void *x, const void *y) {
    double a = ((const struct pair *)x)->n, b = ((const struct pair *)y)->n;
    return (a > b) - (a < b);
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

// Median of x: (m,) (sorted in place); +inf values sort last.
static double median(double *x, int64_t m) {
    qsort(x, (size_t)m, sizeof *x, cmp_double);
    return m % 2 ? x[m / 2] : 0.5 * (x[m / 2 - 1] + x[m / 2]);
}

// Least squares y = slope x + intercept over m points, with R^2 and residual sd.
static void line_fit(struct ats_fit *f, const double *x, const double *y, int64_t m) {
    double mx = 0, my = 0;
    for (int64_t i = 0; i < m; i++) {
        mx += x[i];
        my += y[i];
    }
    mx /= (double)m;
    my /= (double)m;
    double sxx = 0, sxy = 0, syy = 0;
    for (int64_t i = 0; i < m; i++) {
        sxx += (x[i] - mx) * (x[i] - mx);
        sxy += (x[i] - mx) * (y[i] - my);
        syy += (y[i] - my) * (y[i] - my);
    }
    f->slope = sxy / sxx;
    f->intercept = my - f->slope * mx;
    double ss = 0;
    for (int64_t i = 0; i < m; i++) {
        double r = y[i] - (f->slope * x[i] + f->intercept);
        ss += r * r;
    }
    f->r2 = syy > 0 ? 1 - ss / syy : (ss == 0 ? 1 : NAN);
    f->resid_sd = sqrt(ss / (double)(m - 2));
}

double ats_law_predict(const struct ats_law_fits *f, const char *law, double n) {
    if (strcmp(law, "log") == 0)
        return f->log_law.slope * log(n) + f->log_law.intercept;
    if (strcmp(law, "polylog") == 0)
        return exp(f->polylog.slope * log(log(n)) + f->polylog.intercept);
    return exp(f->power.slope * log(n) + f->power.intercept);
}

// Groups (n, beta) by length: exact lengths when there are at most 64 distinct ones, else
// buckets of a factor 2^(1/4). Writes bucket medians; returns the number of buckets.
static int64_t bucketize(double *bn, double *bb, struct pair *p, int64_t count, double *tmp) {
    qsort(p, (size_t)count, sizeof *p, cmp_pair_n);
    int64_t distinct = 0;
    for (int64_t i = 0; i < count; i++)
        distinct += i == 0 || p[i].n != p[i - 1].n;
    int64_t nb = 0;
    for (int64_t i = 0; i < count;) {
        double id = distinct <= 64 ? p[i].n : floor(4 * log2(p[i].n));
        int64_t j = i;
        while (j < count && (distinct <= 64 ? p[j].n : floor(4 * log2(p[j].n))) == id)
            j++;
        for (int64_t k = i; k < j; k++)
            tmp[k - i] = p[k].n;
        bn[nb] = median(tmp, j - i);
        for (int64_t k = i; k < j; k++)
            tmp[k - i] = p[k].b;
        bb[nb] = median(tmp, j - i);
        nb++;
        i = j;
    }
    return nb;
}

int ats_fit_laws(struct ats_law_fits *out, double *bucket_n, double *bucket_beta,
                 const double *n, const double *beta_hat, int64_t count) {
    ATS_ASSERT(out && n && beta_hat);
    int64_t m = 0;
    for (int64_t i = 0; i < count; i++)
        m += n[i] >= 3 && !isnan(beta_hat[i]);
    if (m < 3)
        ATS_ERROR(ATS_STATUS_EDOM, "fitting a law needs rows of at least 3 lengths (have %lld "
                                   "rows with n >= 3)", (long long)m);
    struct pair *p = ats_malloc_array((size_t)m, sizeof *p);
    double *buf = ats_malloc_array((size_t)m, 5 * sizeof *buf);
    if (!p || !buf) {
        ats_free(p);
        ats_free(buf);
        ATS_ERROR(ATS_STATUS_ENOMEM, "no memory to fit %lld rows", (long long)m);
    }
    m = 0;
    for (int64_t i = 0; i < count; i++)
        if (n[i] >= 3 && !isnan(beta_hat[i]))
            p[m++] = (struct pair){n[i], beta_hat[i]};
    double *bn = buf, *bb = buf + m, *tmp = buf + 2 * m, *x = buf + 3 * m, *y = buf + 4 * m;
    int64_t nb = bucketize(bn, bb, p, m, tmp);
    double largest = p[m - 1].n;
    ats_free(p);
    int64_t k = 0; // buckets with a finite, positive median
    for (int64_t i = 0; i < nb; i++) {
        if (isfinite(bb[i]) && bb[i] > 0) {
            bn[k] = bn[i];
            bb[k] = bb[i];
            k++;
        }
    }
    if (k < 3) {
        ats_free(buf);
        ATS_ERROR(ATS_STATUS_EDOM, "fitting a law needs 3 length buckets with a finite median "
                                   "beta_hat (have %lld)", (long long)k);
    }
    memset(out, 0, sizeof *out);
    out->n_largest = largest; // bucketize sorted the rows by length
    out->buckets = k;
    out->n_min = bn[0];
    out->n_max = bn[k - 1];
    for (int64_t i = 0; i < k; i++) {
        x[i] = log(bn[i]);
        y[i] = bb[i];
    }
    line_fit(&out->log_law, x, y, k);
    for (int64_t i = 0; i < k; i++) {
        x[i] = log(log(bn[i]));
        y[i] = log(bb[i]);
    }
    line_fit(&out->polylog, x, y, k);
    for (int64_t i = 0; i < k; i++)
        x[i] = log(bn[i]);
    line_fit(&out->power, x, y, k);

    // Comparable errors: RMS of log beta_hat for each law.
    const char *laws[3] = {"log", "polylog", "power"};
    struct ats_fit *fits[3] = {&out->log_law, &out->polylog, &out->power};
    out->best = NULL;
    double best = HUGE_VAL;
    for (int l = 0; l < 3; l++) {
        double ss = 0;
        for (int64_t i = 0; i < k; i++) {
            double pr = ats_law_predict(out, laws[l], bn[i]);
            double r = pr > 0 ? log(pr) - log(bb[i]) : NAN;
            ss += r * r;
        }
        fits[l]->log_rmse = sqrt(ss / (double)k);
        if (fits[l]->log_rmse < best) {
            best = fits[l]->log_rmse;
            out->best = laws[l];
        }
    }
    if (bucket_n)
        memcpy(bucket_n, bn, (size_t)k * sizeof *bn);
    if (bucket_beta)
        memcpy(bucket_beta, bb, (size_t)k * sizeof *bb);
    ats_free(buf);
    if (!out->best)
        ATS_ERROR(ATS_STATUS_ENUM, "no law predicts a positive beta_hat at every length");
    return ATS_STATUS_OK;
}

int ats_rank_policy(struct ats_policy_rank *out, int64_t id, const struct ats_policy_params *p,
                    const struct ats_law_fits *fits, const double *bucket_n, int64_t nb,
                    double beta) {
    ATS_ASSERT(out && p && fits && bucket_n && fits->best);
    if (nb < 3)
        ATS_ERROR(ATS_STATUS_EDOM, "ranking needs at least 3 lengths (have %lld)", (long long)nb);
    if (!(beta > 0 && isfinite(beta)))
        ATS_ERROR(ATS_STATUS_EDOM, "beta = %g must be finite and > 0 to rank policies", beta);
    double *xy = ats_malloc_array((size_t)nb, 2 * sizeof *xy);
    if (!xy)
        ATS_ERROR(ATS_STATUS_ENOMEM, "no memory to rank over %lld lengths", (long long)nb);
    int rc = ATS_STATUS_OK;
    for (int64_t i = 0; i <= nb && rc == ATS_STATUS_OK; i++) {
        // Buckets, then the largest length for the ratio; the policy at the last row.
        double len = i < nb ? bucket_n[i] : fits->n_largest;
        int64_t n = (int64_t)llround(len);
        struct ats_policy_value v;
        rc = ats_policy_eval(&v, id, p, n - 1, n);
        if (rc != ATS_STATUS_OK)
            break;
        double r = beta * v.multiplier / ats_law_predict(fits, fits->best, len);
        if (i < nb) {
            xy[i] = log(len);
            xy[nb + i] = log(r);
        } else {
            out->ratio_at_max = r;
        }
    }
    if (rc == ATS_STATUS_OK) {
        struct ats_fit f;
        line_fit(&f, xy, xy + nb, nb);
        out->id = id;
        out->slope = f.slope;
    }
    ats_free(xy);
    return rc;
}
