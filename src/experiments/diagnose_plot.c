/*
 * diagnose_plot.c: the figures of `diagnose --plot` (diagnose_plot.h): beta_hat_k10 against n
 * with the fitted laws of THEORY.md 4.4 and the target of 4.6 (one head), and the layer x head
 * heat map of the median ratio beta/beta_hat_k10 (several heads), which
 * ats_diagnose_plot_heads also draws with its CSV for the front-ends.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "experiments/diagnose_plot.h"

// ----------------------------------------------------------------------------
// One head: the laws over n

enum { LAW_POINTS = 200, EXT_POINTS = 100, MAX_ROW_POINTS = 50000 };

static const char *const law_names[3] = {"log", "polylog", "power"};

// beta_hat at length n (> 1) under law l, as diagnose.c's predict (THEORY.md 4.4).
static double law_predict(const struct ats_law_fits *f, int l, double n) {
    if (l == 0)
        return f->log_law.slope * log(n) + f->log_law.intercept;
    if (l == 1)
        return exp(f->polylog.slope * log(log(n)) + f->polylog.intercept);
    return exp(f->power.slope * log(n) + f->power.intercept);
}

static const struct ats_fit *law_fit(const struct ats_law_fits *f, int l) {
    return l == 0 ? &f->log_law : l == 1 ? &f->polylog : &f->power;
}

// "a log n + b" style: the sign of b as an operator.
static char sign_of(double b) {
    return b < 0 ? '-' : '+';
}

static char *law_label(struct figure *f, const struct ats_law_fits *fits, int l) {
    const struct ats_fit *q = law_fit(fits, l);
    const char *best = fits->best && strcmp(fits->best, law_names[l]) == 0 ? ", best" : "";
    static const char *const form[3] = {"%s: %.3g log n %c %.3g (log rmse %.2g%s)",
                                        "%s: exp(%.3g log log n %c %.3g) (log rmse %.2g%s)",
                                        "%s: exp(%.3g log n %c %.3g) (log rmse %.2g%s)"};
    return figure_printf(f, form[l], law_names[l], q->slope, sign_of(q->intercept),
                         fabs(q->intercept), q->log_rmse, best);
}

// m points log-spaced over [a, b] (m >= 2) into x, law l's predictions into y.
static void law_curve(double *x, double *y, int64_t m, double a, double b,
                      const struct ats_law_fits *fits, int l) {
    for (int64_t i = 0; i < m; i++) {
        x[i] = i == m - 1 ? b : a * pow(b / a, (double)i / (double)(m - 1));
        y[i] = law_predict(fits, l, x[i]);
    }
}

static int plottable(double x, double y) {
    return isfinite(x) && x > 0 && isfinite(y) && y > 0;
}

int diagnose_law_figure(struct figure **out, const double *n, const double *bh, int64_t count,
                        const double *bucket_n, const double *bucket_bh, int64_t nb,
                        const struct ats_law_fits *fits, double target_len, const char *title) {
    ATS_ASSERT(out && fits && fits->best && count >= 0 && nb >= 0);
    ATS_ASSERT((n && bh) || count == 0);
    ATS_ASSERT((bucket_n && bucket_bh) || nb == 0);
    const double lo = fits->n_min, hi = fits->n_max, tgt = target_len;
    if (!(lo > 1 && hi >= lo && isfinite(hi)))
        ATS_ERROR(ATS_STATUS_EDOM, "--plot: the fits' length range [%g, %g] is not in (1, inf)", lo,
                  hi);
    const int extend = tgt > hi && isfinite(tgt), mark = tgt > 0 && isfinite(tgt);

    struct figure *f = figure_new(NULL);
    FIGURE_NEED(f);
    struct ats_figure *fig = &f->f;
    // Drawing order: rows, the laws and their extensions, then the markers on top of them.
    enum { ROWS, LAWS, EXT = LAWS + 3, BUCKETS = EXT + 3, AT, VLINE = AT + 3, NSER };
    struct ats_plot_series *ser = figure_alloc(f, NSER * sizeof *ser);
    FIGURE_NEED(ser);

    // Rows: finite beta_hat > 0 (a log axis), every k-th beyond MAX_ROW_POINTS.
    int64_t usable = 0;
    for (int64_t i = 0; i < count; i++)
        usable += plottable(n[i], bh[i]);
    int64_t every = usable > MAX_ROW_POINTS ? (usable + MAX_ROW_POINTS - 1) / MAX_ROW_POINTS : 1;
    int64_t kept = (usable + every - 1) / every;
    double *rx = figure_alloc(f, (size_t)(kept + 1) * sizeof *rx);
    double *ry = figure_alloc(f, (size_t)(kept + 1) * sizeof *ry);
    FIGURE_NEED(rx && ry);
    int64_t m = 0, seen = 0;
    for (int64_t i = 0; i < count; i++) {
        if (!plottable(n[i], bh[i]))
            continue;
        if (seen++ % every == 0) {
            rx[m] = n[i];
            ry[m] = bh[i];
            m++;
        }
    }
    char *rows_label = NULL;
    if (m > 0) {
        rows_label = every > 1 ? figure_printf(f, "rows: 1 in %lld of %lld drawn", (long long)every,
                                               (long long)usable)
                               : figure_printf(f, "rows");
        FIGURE_NEED(rows_label);
    }
    ser[ROWS] = (struct ats_plot_series){rx, ry, NULL, m, rows_label, ATS_PLOT_STYLE_DOTS, 7};

    double *bx = figure_alloc(f, (size_t)(nb + 1) * sizeof *bx);
    double *by = figure_alloc(f, (size_t)(nb + 1) * sizeof *by);
    FIGURE_NEED(bx && by);
    if (nb > 0) {
        memcpy(bx, bucket_n, (size_t)nb * sizeof *bx);
        memcpy(by, bucket_bh, (size_t)nb * sizeof *by);
    }
    ser[BUCKETS] = (struct ats_plot_series){
        bx, by, NULL, nb, nb > 0 ? "bucket medians" : NULL, ATS_PLOT_STYLE_MARKERS, -1};

    // The laws over the fitted range; dashed on to the target, its prediction marked there.
    double ylo = HUGE_VAL, yhi = -HUGE_VAL;
    for (int l = 0; l < 3; l++) {
        int64_t ml = hi > lo ? LAW_POINTS : 1;
        double *x = figure_alloc(f, LAW_POINTS * sizeof *x);
        double *y = figure_alloc(f, LAW_POINTS * sizeof *y);
        char *label = law_label(f, fits, l);
        FIGURE_NEED(x && y && label);
        if (ml > 1) {
            law_curve(x, y, ml, lo, hi, fits, l);
        } else {
            x[0] = lo;
            y[0] = law_predict(fits, l, lo);
        }
        ser[LAWS + l] = (struct ats_plot_series){x, y, NULL, ml, label, ATS_PLOT_STYLE_SOLID, l};
        double *ex = figure_alloc(f, EXT_POINTS * sizeof *ex);
        double *ey = figure_alloc(f, EXT_POINTS * sizeof *ey);
        double *ax = figure_alloc(f, sizeof *ax);
        double *ay = figure_alloc(f, sizeof *ay);
        FIGURE_NEED(ex && ey && ax && ay);
        if (extend) {
            law_curve(ex, ey, EXT_POINTS, hi, tgt, fits, l);
            *ax = tgt;
            *ay = law_predict(fits, l, tgt);
        }
        ser[EXT + l] = (struct ats_plot_series){
            ex, ey, NULL, extend ? EXT_POINTS : 0, NULL, ATS_PLOT_STYLE_DASHED, l};
        ser[AT + l] =
            (struct ats_plot_series){ax, ay, NULL, extend, NULL, ATS_PLOT_STYLE_MARKERS, l};
    }
    for (int s = ROWS; s < VLINE; s++)
        for (int64_t i = 0; i < ser[s].n; i++)
            if (plottable(ser[s].x[i], ser[s].y[i])) {
                ylo = fmin(ylo, ser[s].y[i]);
                yhi = fmax(yhi, ser[s].y[i]);
            }
    double *vx = figure_alloc(f, 2 * sizeof *vx);
    double *vy = figure_alloc(f, 2 * sizeof *vy);
    char *vlabel = mark ? figure_printf(f, "target N = %.10g", tgt) : NULL;
    FIGURE_NEED(vx && vy && (vlabel || !mark));
    int vline = mark && ylo <= yhi;
    vx[0] = vx[1] = tgt;
    vy[0] = ylo;
    vy[1] = yhi;
    ser[VLINE] = (struct ats_plot_series){
        vx, vy, NULL, vline ? 2 : 0, vline ? vlabel : NULL, ATS_PLOT_STYLE_DASHED, -1};

    // x over the rows, the fitted range and the target, padded by a factor each side as
    // ats_plot_lines pads y (so the target's line stays off the frame).
    double xlo = lo, xhi = mark ? fmax(hi, tgt) : hi;
    xlo = mark ? fmin(xlo, tgt) : xlo;
    for (int64_t i = 0; i < m; i++) {
        xlo = fmin(xlo, rx[i]);
        xhi = fmax(xhi, rx[i]);
    }
    for (int64_t i = 0; i < nb; i++)
        if (plottable(bx[i], by[i])) {
            xlo = fmin(xlo, bx[i]);
            xhi = fmax(xhi, bx[i]);
        }
    double pad = pow(xhi / xlo, 0.04);
    fig->axes.xmin = xlo / pad;
    fig->axes.xmax = xhi * pad;
    fig->heatmap = 0;
    const char *dflt = "beta_hat_k10 against n: the laws of THEORY.md 4.4";
    fig->axes.title = figure_printf(f, "%s", title ? title : dflt);
    FIGURE_NEED(fig->axes.title);
    fig->axes.xlabel = "keys seen n";
    fig->axes.ylabel = "beta_hat_k10";
    fig->axes.xlog = 1;
    fig->axes.ylog = 1;
    fig->series = ser;
    fig->nseries = NSER;

    for (int64_t i = 0; i < nb; i++) {
        struct ats_record rec;
        ats_record_clear(&rec);
        ats_record_double(&rec, "n", bucket_n[i]);
        ats_record_double(&rec, "beta_hat_k10_median", bucket_bh[i]);
        ats_record_double(&rec, "beta_hat_log", law_predict(fits, 0, bucket_n[i]));
        ats_record_double(&rec, "beta_hat_polylog", law_predict(fits, 1, bucket_n[i]));
        ats_record_double(&rec, "beta_hat_power", law_predict(fits, 2, bucket_n[i]));
        if (figure_add_row(f, &rec) != ATS_STATUS_OK) {
            figure_free(f);
            return ATS_STATUS_ENOMEM;
        }
    }
    *out = f;
    return ATS_STATUS_OK;
}

// ----------------------------------------------------------------------------
// Several heads: the layer x head map of the median ratio

enum { MAX_CELLS = 65536 };

// "2^k" as a ratio: 1/4, 1/2, 1, 2, 4, ... (2^-k / 2^k beyond 2^20).
static char *pow2_label(struct figure *f, int k) {
    if (k > 20 || k < -20)
        return figure_printf(f, "2^%d", k);
    if (k < 0)
        return figure_printf(f, "1/%.0f", ldexp(1, -k));
    return figure_printf(f, "%.0f", ldexp(1, k));
}

int diagnose_heads_figure(struct figure **out, const char *const *layers, int64_t nlayers,
                          int64_t nheads, const double *ratio, double window) {
    ATS_ASSERT(out && (ratio || nlayers < 1 || nheads < 1));
    if (nlayers < 1)
        ATS_ERROR(ATS_STATUS_EINVAL, "a heat map of heads needs nlayers >= 1 (have %lld)",
                  (long long)nlayers);
    if (nheads < 1)
        ATS_ERROR(ATS_STATUS_EINVAL, "a heat map of heads needs nheads >= 1 (have %lld)",
                  (long long)nheads);
    if (nlayers > MAX_CELLS / nheads)
        ATS_ERROR(ATS_STATUS_EINVAL, "a heat map of %lld layers x %lld heads: more than %d cells",
                  (long long)nlayers, (long long)nheads, MAX_CELLS);
    if (!(window > 1 && isfinite(window)))
        ATS_ERROR(ATS_STATUS_EINVAL, "the critical window W = %g must be finite and > 1", window);
    const int64_t L = nlayers, H = nheads;

    struct figure *f = figure_new(NULL);
    FIGURE_NEED(f);
    struct ats_figure *fig = &f->f;
    double *z = figure_alloc(f, (size_t)(L * H) * sizeof *z);
    double *x = figure_alloc(f, (size_t)H * sizeof *x);
    double *y = figure_alloc(f, (size_t)L * sizeof *y);
    const char **xcats = figure_alloc(f, (size_t)H * sizeof *xcats);
    const char **ycats = figure_alloc(f, (size_t)L * sizeof *ycats);
    FIGURE_NEED(z && x && y && xcats && ycats);
    // Layer 0 on top: map row iy (y increases upwards) is layer L - 1 - iy.
    double zabs = 2 * log2(window);
    for (int64_t iy = 0; iy < L; iy++) {
        int64_t l = L - 1 - iy;
        for (int64_t h = 0; h < H; h++) {
            double r = ratio[l * H + h];
            double v = isfinite(r) && r > 0 ? log2(r) : NAN;
            z[iy * H + h] = v;
            if (isfinite(v))
                zabs = fmax(zabs, fabs(v));
        }
        y[iy] = (double)iy;
        if (layers && layers[l])
            ycats[iy] = figure_printf(f, "%s", layers[l]);
        else
            ycats[iy] = figure_printf(f, "%lld", (long long)l);
        FIGURE_NEED(ycats[iy]);
    }
    for (int64_t h = 0; h < H; h++) {
        x[h] = (double)h;
        FIGURE_NEED(xcats[h] = figure_printf(f, "%lld", (long long)h));
    }

    // Colour-bar ticks at powers of two, at most 9, always 1 among them.
    int kmax = (int)floor(zabs + 1e-9);
    int step = kmax > 4 ? (2 * kmax + 7) / 8 : 1;
    int nt = 2 * (kmax / step) + 1;
    double *zt = figure_alloc(f, (size_t)nt * sizeof *zt);
    const char **ztl = figure_alloc(f, (size_t)nt * sizeof *ztl);
    FIGURE_NEED(zt && ztl);
    for (int j = 0; j < nt; j++) {
        int k = (j - kmax / step) * step;
        zt[j] = k;
        FIGURE_NEED(ztl[j] = pow2_label(f, k));
    }

    struct ats_heatmap *map = &fig->map;
    map->z = z;
    map->x = x;
    map->y = y;
    map->nx = H;
    map->ny = L;
    map->zmin = -zabs;
    map->zmax = zabs;
    map->zlabel = "median beta / beta_hat_k10 (log scale)";
    map->cmap = ATS_PLOT_CMAP_DIVERGING;
    map->xcats = xcats;
    map->ycats = ycats;
    map->zticks = zt;
    map->zticklabels = ztl;
    map->nzticks = nt;
    map->band = 1;
    map->band_lo = log2(1 / window); // as a cell's z of ratio 1/window is computed
    map->band_hi = log2(window);
    fig->heatmap = 1;
    fig->axes.title =
        figure_printf(f, "median beta/beta_hat_k10 per head (dots: outside the window [1/%g, %g])",
                      window, window);
    FIGURE_NEED(fig->axes.title);
    fig->axes.xlabel = "head";
    fig->axes.ylabel = "layer";

    for (int64_t l = 0; l < L; l++)
        for (int64_t h = 0; h < H; h++) {
            struct ats_record rec;
            ats_record_clear(&rec);
            if (layers && layers[l])
                ats_record_string(&rec, "layer", layers[l]);
            else
                ats_record_int(&rec, "layer", l);
            ats_record_int(&rec, "head", h);
            ats_record_double(&rec, "ratio_median", ratio[l * H + h]);
            if (figure_add_row(f, &rec) != ATS_STATUS_OK) {
                figure_free(f);
                return ATS_STATUS_ENOMEM;
            }
        }
    *out = f;
    return ATS_STATUS_OK;
}

// ----------------------------------------------------------------------------
// The public entry point: the map and its CSV

// f's table as CSV to path (the record writer, as ats_figure_save).
int ats_diagnose_plot_heads(const char *path, const char *const *layers, int64_t nlayers,
                            int64_t nheads, const double *ratio, double window) {
    ATS_ASSERT(path && (ratio || nlayers < 1 || nheads < 1));
    struct figure *f = NULL;
    int rc = diagnose_heads_figure(&f, layers, nlayers, nheads, ratio, window);
    if (rc != ATS_STATUS_OK)
        return rc;
    rc = ats_figure_plot(&f->f, path);
    figure_free(f);
    return rc;
}
