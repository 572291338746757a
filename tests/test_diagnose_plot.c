/*
 * test_diagnose_plot.c: the figures of `diagnose --plot` (src/experiments/diagnose_plot.c) and
 * ats_diagnose_plot_heads.
 *
 * Law figure: rows on an exact log law (5 rows per length, symmetric factors, so each bucket
 * median is the law itself) plus rows with beta_hat inf, NaN, 0 and -1. Checks: only finite
 * positive rows are drawn; the table has one row per bucket with the bucket's n and median,
 * and each law's prediction equal to the formula of THEORY.md 4.4 evaluated here from the fit's
 * parameters (and the log law's equal to the exact law); the legend marks the best law once;
 * the dashed extensions reach the target and the markers there sit on each law's prediction;
 * PNG, SVG and PDF are written, and in the PNG the bucket medians are black where the frame
 * maps them.
 * Heads map: 2 layers x 3 heads with ratios 1, 4, 1/4, NaN, 1.5, 0.6 and W = 2. The PNG's
 * cells read back white-ish (1), red-ish (4), blue-ish (1/4), grey (NaN), the ratio 1.5 cell
 * the diverging map's colour at t = (log2 1.5 + 2)/4; dots only on the cells outside
 * [1/2, 2]; the window bracket on the colour bar; the CSV beside equal to the inputs; long
 * layer names widen the margin; bad arguments are refused with EINVAL / EIO.
 * Run: make build/tests/test_diagnose_plot && build/tests/test_diagnose_plot
 */
#include <cairo.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attnscale.h"
#include "experiments/diagnose_plot.h"
#include "test.h"

static char dir[64];

static const char *tmp(const char *name) {
    static char path[4][160];
    static int k;
    k = (k + 1) % 4;
    snprintf(path[k], sizeof path[k], "%s/%s", dir, name);
    return path[k];
}

static long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static int starts_with(const char *path, const char *magic) {
    char buf[16] = {0};
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, strlen(magic), f);
    fclose(f);
    return n == strlen(magic) && memcmp(buf, magic, n) == 0;
}

// Pixel (x, y) of a PNG as 8-bit RGB.
static void pixel(cairo_surface_t *s, int x, int y, int rgb[3]) {
    const unsigned char *data = cairo_image_surface_get_data(s);
    uint32_t p;
    memcpy(&p, data + y * cairo_image_surface_get_stride(s) + 4 * x, 4);
    rgb[0] = (int)((p >> 16) & 255);
    rgb[1] = (int)((p >> 8) & 255);
    rgb[2] = (int)(p & 255);
}

static cairo_surface_t *read_png(const char *path) {
    cairo_surface_t *s = cairo_image_surface_create_from_png(path);
    int ok = cairo_surface_status(s) == CAIRO_STATUS_SUCCESS &&
             cairo_image_surface_get_width(s) == 800 && cairo_image_surface_get_height(s) == 600;
    ATS_CHECK(ok, "%s reads back as an 800 x 600 PNG", path);
    if (!ok) {
        cairo_surface_destroy(s);
        return NULL;
    }
    return s;
}

// Width of s in plot.c's tick font (DejaVu Sans 12, cairo's toy text API).
static double label_width(const char *s) {
    cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 8, 8);
    cairo_t *cr = cairo_create(surf);
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, 12);
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    cairo_destroy(cr);
    cairo_surface_destroy(surf);
    return e.x_advance;
}

// The three laws of THEORY.md 4.4, written out here.
static double law_ref(const struct ats_law_fits *f, int l, double n) {
    if (l == 0)
        return f->log_law.slope * log(n) + f->log_law.intercept;
    if (l == 1)
        return exp(f->polylog.slope * log(log(n)) + f->polylog.intercept);
    return exp(f->power.slope * log(n) + f->power.intercept);
}

static double field_d(const struct ats_record *r, const char *key) {
    const struct ats_field *f = ats_record_find(r, key);
    return f && f->type == ATS_FIELD_DOUBLE ? f->d : NAN;
}

// Device coordinates of ats_plot_lines' frame on log-log axes (plot.c's layout: 800 x 600
// page, margins 80 left, 30 right, 50 top, 60 bottom; x from the axes, an automatic y range
// padded by a factor (hi/lo)^0.04 each side), from the data of the series.
struct frame {
    double lx0, lx1, ly0, ly1; // log10 of the padded ranges
};

static struct frame law_frame(const struct ats_figure *fig) {
    double xlo = HUGE_VAL, xhi = -HUGE_VAL, ylo = HUGE_VAL, yhi = -HUGE_VAL;
    for (int64_t s = 0; s < fig->nseries; s++)
        for (int64_t i = 0; i < fig->series[s].n; i++) {
            double x = fig->series[s].x[i], y = fig->series[s].y[i];
            if (!(isfinite(x) && isfinite(y) && x > 0 && y > 0))
                continue;
            xlo = fmin(xlo, x);
            xhi = fmax(xhi, x);
            ylo = fmin(ylo, y);
            yhi = fmax(yhi, y);
        }
    double fx = pow(xhi / xlo, 0.04), fy = pow(yhi / ylo, 0.04);
    ATS_CHECK(fabs(fig->axes.xmin * fx / xlo - 1) < 1e-12 &&
                  fabs(fig->axes.xmax / fx / xhi - 1) < 1e-12,
              "x range: the data's, padded by (hi/lo)^0.04 each side");
    return (struct frame){log10(fig->axes.xmin), log10(fig->axes.xmax), log10(ylo / fy),
                          log10(yhi * fy)};
}

static double dev_x(const struct frame *f, double x) {
    return 80 + (log10(x) - f->lx0) / (f->lx1 - f->lx0) * 690;
}

static double dev_y(const struct frame *f, double y) {
    return 50 + 490 - (log10(y) - f->ly0) / (f->ly1 - f->ly0) * 490;
}

// ----------------------------------------------------------------------------

static void test_law_figure(void) {
    // 17 lengths 8 * 2^(j/2), 5 rows each at beta_hat = (0.7 log n + 1.3)(1 + e), e symmetric:
    // each bucket's median is the law exactly. Then 4 rows at n = 5 that must not be drawn
    // (their bucket median is inf, so the fit leaves it out too) and 1 NaN row.
    enum { NL = 17, PER = 5, BAD = 5, COUNT = NL * PER + BAD };
    static const double e[PER] = {-0.1, -0.05, 0, 0.05, 0.1};
    double n[COUNT], bh[COUNT], law[NL];
    int64_t c = 0;
    for (int j = 0; j < NL; j++) {
        double len = round(8 * pow(2, j / 2.0));
        law[j] = 0.7 * log(len) + 1.3;
        for (int k = 0; k < PER; k++) {
            n[c] = len;
            bh[c++] = law[j] * (1 + e[k]);
        }
    }
    static const double bad[BAD] = {INFINITY, INFINITY, 0, -1, NAN};
    for (int k = 0; k < BAD; k++) {
        n[c] = 5;
        bh[c++] = bad[k];
    }
    struct ats_law_fits fits;
    double bn[COUNT], bb[COUNT];
    int rc = ats_fit_laws(&fits, bn, bb, n, bh, COUNT);
    ATS_CHECK(rc == ATS_STATUS_OK && fits.buckets == NL,
              "fit of the law rows (rc %d, %lld buckets)", rc, (long long)fits.buckets);
    if (rc != ATS_STATUS_OK)
        return;
    int64_t nb = fits.buckets;
    const double target = 1e5;
    struct figure *g = NULL;
    rc = diagnose_law_figure(&g, n, bh, COUNT, bn, bb, nb, &fits, target, NULL);
    ATS_CHECK(rc == ATS_STATUS_OK && g, "law figure built (rc %d)", rc);
    if (!g)
        return;
    const struct ats_figure *fig = &g->f;
    ATS_CHECK(!fig->heatmap && fig->axes.xlog && fig->axes.ylog, "a line plot on log-log axes");

    // Series by role.
    const struct ats_plot_series *rows = NULL, *buckets = NULL, *vline = NULL, *lines[3] = {0},
                                 *ext[3] = {0}, *at[3] = {0};
    int best_labels = 0, best_ok = 0;
    static const char *const names[3] = {"log:", "polylog:", "power:"};
    for (int64_t s = 0; s < fig->nseries; s++) {
        const struct ats_plot_series *se = &fig->series[s];
        int law_colour = se->color >= 0 && se->color < 3;
        if (se->dashed == ATS_PLOT_STYLE_DOTS)
            rows = se;
        else if (se->dashed == ATS_PLOT_STYLE_MARKERS && se->color == -1)
            buckets = se;
        else if (se->dashed == ATS_PLOT_STYLE_MARKERS && law_colour)
            at[se->color] = se;
        else if (se->dashed == ATS_PLOT_STYLE_DASHED && se->color == -1)
            vline = se;
        else if (se->dashed == ATS_PLOT_STYLE_DASHED && law_colour)
            ext[se->color] = se;
        else if (se->dashed == ATS_PLOT_STYLE_SOLID && law_colour)
            lines[se->color] = se;
        if (se->label && strstr(se->label, "best")) {
            best_labels++;
            best_ok = strncmp(se->label, fits.best, strlen(fits.best)) == 0 &&
                      se->label[strlen(fits.best)] == ':';
        }
    }
    ATS_CHECK(rows && buckets && vline && lines[0] && lines[1] && lines[2] && ext[0] && ext[1] &&
                  ext[2] && at[0] && at[1] && at[2],
              "rows, medians, 3 laws, 3 extensions, 3 target markers and the target line");
    ATS_CHECK(best_labels == 1 && best_ok && strcmp(fits.best, "log") == 0,
              "the legend marks the best law (%s) once", fits.best);
    if (!(rows && buckets && vline && lines[0] && lines[1] && lines[2] && ext[0] && ext[1] &&
          ext[2] && at[0] && at[1] && at[2])) {
        figure_free(g);
        return;
    }
    int allpos = rows->n == NL * PER;
    for (int64_t i = 0; i < rows->n; i++)
        allpos &= isfinite(rows->y[i]) && rows->y[i] > 0;
    ATS_CHECK(allpos, "only the %d finite positive rows are drawn (have %lld)", NL * PER,
              (long long)rows->n);
    ATS_CHECK(rows->label && strcmp(rows->label, "rows") == 0, "rows labelled, none left out");
    for (int l = 0; l < 3; l++) {
        const char *lab = lines[l]->label;
        ATS_CHECK(lab && strncmp(lab, names[l], strlen(names[l])) == 0, "law %d named '%s'", l,
                  lab ? lab : "(null)");
        // Solid over [n_min, n_max], dashed from n_max to the target, on the law's formula.
        double worst = 0;
        for (int64_t i = 0; i < lines[l]->n; i++)
            worst = fmax(worst, fabs(lines[l]->y[i] / law_ref(&fits, l, lines[l]->x[i]) - 1));
        for (int64_t i = 0; i < ext[l]->n; i++)
            worst = fmax(worst, fabs(ext[l]->y[i] / law_ref(&fits, l, ext[l]->x[i]) - 1));
        // The same formula: equal up to a few roundings (an FMA contraction at most).
        ATS_CHECK(worst <= 8 * DBL_EPSILON, "law %d's curves follow its formula (rel %.3g)", l,
                  worst);
        ATS_CHECK(lines[l]->x[0] == fits.n_min && lines[l]->x[lines[l]->n - 1] == fits.n_max &&
                      ext[l]->x[0] == fits.n_max && ext[l]->x[ext[l]->n - 1] == target,
                  "law %d solid over [%g, %g], dashed on to %g", l, fits.n_min, fits.n_max, target);
        ATS_CHECK(at[l]->n == 1 && at[l]->x[0] == target, "law %d marked at the target", l);
        ATS_CHECK_CLOSE(at[l]->y[0], law_ref(&fits, l, target), 0, 8 * DBL_EPSILON,
                        "law %d's marker at its prediction at N", l);
    }
    ATS_CHECK(vline->n == 2 && vline->x[0] == target && vline->x[1] == target && vline->label &&
                  strstr(vline->label, "100000"),
              "dashed vertical line at the target, labelled");

    // The table: one row per bucket.
    ATS_CHECK(fig->nrows == nb, "one table row per bucket (%lld)", (long long)fig->nrows);
    int keys_ok = 1;
    static const char *const keys[5] = {"n", "beta_hat_k10_median", "beta_hat_log",
                                        "beta_hat_polylog", "beta_hat_power"};
    for (int64_t i = 0; i < fig->nrows; i++) {
        keys_ok &= fig->rows[i].count == 5;
        for (int k = 0; k < 5 && keys_ok; k++)
            keys_ok &= strcmp(fig->rows[i].field[k].key, keys[k]) == 0;
    }
    ATS_CHECK(keys_ok, "table columns n, beta_hat_k10_median, beta_hat_log/polylog/power");
    double werr[3] = {0, 0, 0}, lawerr = 0;
    int same = 1;
    for (int64_t i = 0; i < fig->nrows && keys_ok; i++) {
        const struct ats_record *r = &fig->rows[i];
        double bn_i = field_d(r, "n");
        same &= bn_i == bn[i] && field_d(r, "beta_hat_k10_median") == bb[i] && bn_i == n[PER * i] &&
                bb[i] == law[i];
        werr[0] = fmax(werr[0], fabs(field_d(r, "beta_hat_log") / law_ref(&fits, 0, bn_i) - 1));
        werr[1] = fmax(werr[1], fabs(field_d(r, "beta_hat_polylog") / law_ref(&fits, 1, bn_i) - 1));
        werr[2] = fmax(werr[2], fabs(field_d(r, "beta_hat_power") / law_ref(&fits, 2, bn_i) - 1));
        lawerr = fmax(lawerr, fabs(field_d(r, "beta_hat_log") / law[i] - 1));
    }
    ATS_CHECK(same, "table n and medians are the buckets (each the exact law)");
    for (int l = 0; l < 3; l++)
        // The same formula evaluated here: a few roundings at most.
        ATS_CHECK(werr[l] <= 8 * DBL_EPSILON, "table beta_hat_%s equals its formula (rel %.3g)",
                  names[l], werr[l]);
    // Least squares through 17 exact points of 0.7 log n + 1.3: only rounding in the sums
    // (17 terms of size ~10, condition of the 2 x 2 normal equations ~ 1e2): far below 1e-12.
    ATS_CHECK(lawerr <= 1e-12, "the log law recovers 0.7 log n + 1.3 at every bucket (rel %.3g)",
              lawerr);

    // Drawn in every format.
    static const char *const ext_names[3] = {"law.png", "law.svg", "law.pdf"};
    static const char *const magic[3] = {"\x89PNG", "<?xml", "%PDF"};
    for (int k = 0; k < 3; k++) {
        rc = ats_figure_draw(fig, tmp(ext_names[k]));
        ATS_CHECK(rc == ATS_STATUS_OK && file_size(tmp(ext_names[k])) > 0 &&
                      starts_with(tmp(ext_names[k]), magic[k]),
                  "%s drawn (rc %d, %ld bytes)", ext_names[k], rc, file_size(tmp(ext_names[k])));
    }
    cairo_surface_t *s = read_png(tmp("law.png"));
    if (s) {
        // Bucket medians: black markers (radius 4) on top of the lines, where the frame maps
        // them; the legend box may hide a few in one corner.
        struct frame fr = law_frame(fig);
        int black = 0;
        for (int64_t i = 0; i < buckets->n; i++) {
            int rgb[3];
            pixel(s, (int)lround(dev_x(&fr, buckets->x[i])), (int)lround(dev_y(&fr, buckets->y[i])),
                  rgb);
            black += rgb[0] < 60 && rgb[1] < 60 && rgb[2] < 60;
        }
        ATS_CHECK(black >= (int)buckets->n - 4, "%d of %lld bucket medians black where mapped",
                  black, (long long)buckets->n);
        // Grey rows under the median at the second bucket: a row 10% below it.
        int rgb[3];
        pixel(s, (int)lround(dev_x(&fr, bn[1])), (int)lround(dev_y(&fr, bb[1] * 0.9)), rgb);
        ATS_CHECK(abs(rgb[0] - rgb[1]) < 20 && abs(rgb[1] - rgb[2]) < 20 && rgb[0] < 200,
                  "a row 10%% below a median is a grey dot (%d %d %d)", rgb[0], rgb[1], rgb[2]);
        cairo_surface_destroy(s);
    }
    figure_free(g);

    // No target: no extension, no marker, no line; a title of our own.
    rc = diagnose_law_figure(&g, n, bh, COUNT, bn, bb, nb, &fits, NAN, "one head");
    ATS_CHECK(rc == ATS_STATUS_OK && strcmp(g->f.axes.title, "one head") == 0,
              "law figure without target (rc %d)", rc);
    if (rc == ATS_STATUS_OK) {
        int64_t dashed = 0, markers = 0;
        for (int64_t i = 0; i < g->f.nseries; i++) {
            dashed += g->f.series[i].dashed == ATS_PLOT_STYLE_DASHED ? g->f.series[i].n : 0;
            markers += g->f.series[i].dashed == ATS_PLOT_STYLE_MARKERS ? g->f.series[i].n : 0;
        }
        ATS_CHECK(dashed == 0 && markers == nb, "nothing beyond n_max, only the medians marked");
        ATS_CHECK(ats_figure_draw(&g->f, tmp("law2.png")) == ATS_STATUS_OK, "drawn without target");
        figure_free(g);
    }
    // Many rows: at most 50000 drawn, every k-th, and the legend says so.
    int64_t big = 120001;
    double *bnn = malloc((size_t)big * sizeof *bnn), *bbb = malloc((size_t)big * sizeof *bbb);
    for (int64_t i = 0; i < big; i++) {
        bnn[i] = (double)(8 + i % 2000);
        bbb[i] = 0.7 * log(bnn[i]) + 1.3;
    }
    rc = diagnose_law_figure(&g, bnn, bbb, big, bn, bb, nb, &fits, NAN, NULL);
    ATS_CHECK(rc == ATS_STATUS_OK, "law figure of %lld rows (rc %d)", (long long)big, rc);
    if (rc == ATS_STATUS_OK) {
        const struct ats_plot_series *r = NULL;
        for (int64_t i = 0; i < g->f.nseries; i++)
            if (g->f.series[i].dashed == ATS_PLOT_STYLE_DOTS)
                r = &g->f.series[i];
        ATS_CHECK(r && r->n == 40001 && r->label && strstr(r->label, "1 in 3 of 120001"),
                  "every 3rd of 120001 rows drawn (%lld, '%s')", r ? (long long)r->n : -1LL,
                  r && r->label ? r->label : "");
        figure_free(g);
    }
    free(bnn);
    free(bbb);
}

// ----------------------------------------------------------------------------

// The CSV beside a heads map: header, then (layer, head, ratio_median) rows against the input.
static void check_csv(const char *path, const char *const *layers, int64_t L, int64_t H,
                      const double *ratio) {
    FILE *f = fopen(path, "r");
    ATS_CHECK(f != NULL, "%s written beside the figure", path);
    if (!f)
        return;
    char line[512];
    int ok = fgets(line, sizeof line, f) && strcmp(line, "layer,head,ratio_median\n") == 0;
    ATS_CHECK(ok, "%s header is layer,head,ratio_median", path);
    int64_t rows = 0, good = 0;
    while (fgets(line, sizeof line, f)) {
        int64_t l = rows / H, h = rows % H;
        char *c1 = strchr(line, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
        if (c1 && c2 && l < L) {
            *c1 = *c2 = '\0';
            char want[128];
            if (layers)
                snprintf(want, sizeof want, "%s", layers[l]);
            else
                snprintf(want, sizeof want, "%lld", (long long)l);
            char *end;
            double r = strtod(c2 + 1, &end);
            double ref = ratio[l * H + h];
            int eq = isnan(ref) ? isnan(r) : r == ref; // shortest round-trip digits: exact
            good += strcmp(line, want) == 0 && strtoll(c1 + 1, NULL, 10) == h && eq && *end == '\n';
        }
        rows++;
    }
    fclose(f);
    ATS_CHECK(rows == L * H && good == rows, "%s holds the %lld inputs exactly (%lld of %lld)",
              path, (long long)(L * H), (long long)good, (long long)rows);
}

static int whiteish(const int *c) {
    return c[0] >= 235 && c[1] >= 235 && c[2] >= 235;
}

static void test_heads(void) {
    enum { L = 2, H = 3 };
    const double ratio[L * H] = {1, 4, 0.25, NAN, 1.5, 0.6};
    const char *const layers[L] = {"L0", "L1"};
    int rc = ats_diagnose_plot_heads(tmp("heads.png"), layers, L, H, ratio, 2);
    ATS_CHECK(rc == ATS_STATUS_OK && file_size(tmp("heads.png")) > 0, "heads PNG (rc %d)", rc);
    check_csv(tmp("heads.csv"), layers, L, H, ratio);
    cairo_surface_t *s = read_png(tmp("heads.png"));
    if (s) {
        // Short labels: the default frame, x 80..660 (3 columns of 193.3), y 50..540 (2 rows
        // of 245), layer 0 on top. A cell's colour is read a quarter cell off its centre (the
        // dot of a cell outside the window is at the centre, radius <= 4).
        const double cw = 580.0 / H, ch = 490.0 / L;
        int c[L * H][3], centre[L * H][3];
        for (int l = 0; l < L; l++)
            for (int h = 0; h < H; h++) {
                double cx = 80 + (h + 0.5) * cw, cy = 50 + (l + 0.5) * ch;
                pixel(s, (int)(cx + cw / 4), (int)(cy + ch / 4), c[l * H + h]);
                pixel(s, (int)cx, (int)cy, centre[l * H + h]);
            }
        int *one = c[0], *four = c[1], *quarter = c[2], *nan = c[3], *mid = c[4], *low = c[5];
        ATS_CHECK(whiteish(one), "ratio 1 is white-ish (%d %d %d)", one[0], one[1], one[2]);
        ATS_CHECK(four[0] > 80 && four[0] > four[1] + 60 && four[0] > four[2] + 40,
                  "ratio 4 is red-ish (%d %d %d)", four[0], four[1], four[2]);
        ATS_CHECK(quarter[2] > 80 && quarter[2] > quarter[0] + 60 && quarter[2] > quarter[1] + 30,
                  "ratio 1/4 is blue-ish (%d %d %d)", quarter[0], quarter[1], quarter[2]);
        ATS_CHECK(abs(nan[0] - 153) <= 2 && abs(nan[1] - 153) <= 2 && abs(nan[2] - 153) <= 2,
                  "NaN is grey (%d %d %d)", nan[0], nan[1], nan[2]);
        // Ratio 1.5: z = log2 1.5 on [-2, 2] (L = max(|z|, 2 log2 W) = 2): t = (z + 2)/4.
        unsigned char want[3];
        ats_plot_colormap_diverging(want, (log2(1.5) + 2) / 4);
        ATS_CHECK(abs(mid[0] - want[0]) <= 1 && abs(mid[1] - want[1]) <= 1 &&
                      abs(mid[2] - want[2]) <= 1 && mid[0] > mid[2],
                  "ratio 1.5 is the map's colour at t = (log2 1.5 + 2)/4, reddish (%d %d %d)",
                  mid[0], mid[1], mid[2]);
        ATS_CHECK(low[2] > low[0], "ratio 0.6 is bluish (%d %d %d)", low[0], low[1], low[2]);
        // Dots: white centres on the cells outside [1/2, 2] (4, 1/4); none inside (1.5, 0.6)
        // or on NaN.
        ATS_CHECK(whiteish(centre[1]) && whiteish(centre[2]) && !whiteish(four),
                  "cells outside the window carry a white dot");
        ATS_CHECK(memcmp(centre[3], nan, sizeof centre[3]) == 0 &&
                      memcmp(centre[4], mid, sizeof centre[4]) == 0 &&
                      memcmp(centre[5], low, sizeof centre[5]) == 0,
                  "no dot inside the window or on NaN");
        // Colour bar at x 680..698 from z = 2 (top, y 50) to -2 (bottom, y 540); the window
        // [-1, 1] (y 417.5 .. 172.5) bracketed at x = 674.
        int top[3], bottom[3], midbar[3], br_in[3] = {255, 255, 255}, br_out[3];
        pixel(s, 689, 53, top);
        pixel(s, 689, 537, bottom);
        pixel(s, 689, 300, midbar);
        ATS_CHECK(top[0] > top[2] + 40 && bottom[2] > bottom[0] + 40 && whiteish(midbar),
                  "colour bar: red top, blue bottom, white middle");
        for (int x = 672; x <= 676; x++) {
            int p[3];
            pixel(s, x, 300, p);
            if (p[0] < br_in[0])
                memcpy(br_in, p, sizeof p);
        }
        pixel(s, 674, 100, br_out);
        ATS_CHECK(br_in[0] < 128 && whiteish(br_out), "window bracketed on the colour bar");
        cairo_surface_destroy(s);
    }

    // SVG and PDF, each with its CSV; layers NULL: indices.
    rc = ats_diagnose_plot_heads(tmp("heads_svg.svg"), NULL, L, H, ratio, 2);
    ATS_CHECK(rc == ATS_STATUS_OK && starts_with(tmp("heads_svg.svg"), "<?xml"),
              "heads SVG (rc %d)", rc);
    check_csv(tmp("heads_svg.csv"), NULL, L, H, ratio);
    rc = ats_diagnose_plot_heads(tmp("heads_pdf.pdf"), layers, L, H, ratio, 1.5);
    ATS_CHECK(rc == ATS_STATUS_OK && starts_with(tmp("heads_pdf.pdf"), "%PDF"), "heads PDF (rc %d)",
              rc);
    check_csv(tmp("heads_pdf.csv"), layers, L, H, ratio);

    // The figure as data: z = log2 ratio, layer 0 the top row, symmetric limits, the band.
    struct figure *g = NULL;
    rc = diagnose_heads_figure(&g, layers, L, H, ratio, 2);
    ATS_CHECK(rc == ATS_STATUS_OK, "heads figure as data (rc %d)", rc);
    if (rc == ATS_STATUS_OK) {
        const struct ats_heatmap *m = &g->f.map;
        int ok = g->f.heatmap && m->nx == H && m->ny == L && m->cmap == ATS_PLOT_CMAP_DIVERGING &&
                 m->zmin == -2 && m->zmax == 2 && m->band && m->band_lo == -1 && m->band_hi == 1;
        for (int l = 0; l < L; l++)
            for (int h = 0; h < H; h++) {
                double z = m->z[(L - 1 - l) * H + h], r = ratio[l * H + h];
                ok &= isnan(r) ? isnan(z) : z == log2(r);
            }
        ok &= strcmp(m->ycats[L - 1], "L0") == 0 && strcmp(m->ycats[0], "L1") == 0 &&
              strcmp(m->xcats[2], "2") == 0;
        ATS_CHECK(ok, "map cells are log2 ratio, layer 0 on top, limits +-2, window [-1, 1]");
        int ticks = m->nzticks == 5 && strcmp(m->zticklabels[0], "1/4") == 0 &&
                    strcmp(m->zticklabels[2], "1") == 0 && strcmp(m->zticklabels[4], "4") == 0 &&
                    m->zticks[0] == -2 && m->zticks[4] == 2;
        ATS_CHECK(ticks, "colour bar ticks 1/4, 1/2, 1, 2, 4");
        figure_free(g);
    }
    // A wide range: limits follow the data, ticks stay few.
    const double wide[2] = {1.0 / 1024, 300};
    rc = diagnose_heads_figure(&g, NULL, 1, 2, wide, 2);
    if (rc == ATS_STATUS_OK) {
        ATS_CHECK(g->f.map.zmax == 10 && g->f.map.zmin == -10 && g->f.map.nzticks <= 9 &&
                      g->f.map.nzticks % 2 == 1,
                  "limits +-10 for ratios 1/1024 and 300 (%lld ticks)",
                  (long long)g->f.map.nzticks);
        figure_free(g);
    }

    // Row labels widen the left margin; qualified names too long for it lose their shared
    // start but its last word, and their shared end ("...layers.38..."); 40 x 64 cells thin the
    // labels.
    enum { LL = 40, HH = 64 };
    static double big[LL * HH];
    static char namebuf[2][LL][80];
    const char *names[2][LL];
    for (int l = 0; l < LL; l++) {
        snprintf(namebuf[0][l], sizeof namebuf[0][l], "layer_%02d_of_the_decoder", l);
        snprintf(namebuf[1][l], sizeof namebuf[1][l],
                 "model.decoder.layers.%d.self_attention.attention_with_a_long_name", l);
        names[0][l] = namebuf[0][l];
        names[1][l] = namebuf[1][l];
        for (int h = 0; h < HH; h++)
            big[l * HH + h] = pow(2, sin(l * 0.3 + h * 0.7) * 3);
    }
    for (int v = 0; v < 2; v++) {
        const char *png = tmp(v ? "big1.png" : "big0.png");
        rc = ats_diagnose_plot_heads(png, names[v], LL, HH, big, 2);
        ATS_CHECK(rc == ATS_STATUS_OK, "40 x 64 heads, names like '%s' (rc %d)", names[v][0], rc);
        double w = 0;
        for (int l = 0; l < LL; l++) {
            char shown[64];
            snprintf(shown, sizeof shown, "...layers.%d...", l);
            w = fmax(w, label_width(v ? shown : names[v][l]));
        }
        // The frame's left edge: widest label + 40, within [80, 300].
        int x0 = (int)fmin(fmax(80, ceil(w) + 40), 300);
        s = rc == ATS_STATUS_OK ? read_png(png) : NULL;
        if (s) {
            // Row 1 from the top (y 68; its label is thinned away): page left of the frame,
            // a cell right of it.
            int page[3], cell[3];
            pixel(s, x0 - 3, 68, page);
            pixel(s, x0 + 3, 68, cell);
            ATS_CHECK(x0 > 80 && whiteish(page) && !whiteish(cell),
                      "frame at x = %d after labels %g wide (%d %d %d | %d %d %d)", x0, w, page[0],
                      page[1], page[2], cell[0], cell[1], cell[2]);
            cairo_surface_destroy(s);
        }
        check_csv(tmp(v ? "big1.csv" : "big0.csv"), names[v], LL, HH, big);
    }

    // Errors, each before any file is written.
    ATS_CHECK(ats_diagnose_plot_heads(tmp("bad.jpg"), layers, L, H, ratio, 2) ==
                      ATS_STATUS_EINVAL &&
                  file_size(tmp("bad.jpg")) < 0 && file_size(tmp("bad.csv")) < 0,
              "bad extension refused: %s", ats_last_error());
    ATS_CHECK(ats_diagnose_plot_heads(tmp("noext"), layers, L, H, ratio, 2) == ATS_STATUS_EINVAL,
              "no extension refused");
    ATS_CHECK(ats_diagnose_plot_heads(tmp("h0.png"), layers, L, 0, ratio, 2) == ATS_STATUS_EINVAL &&
                  file_size(tmp("h0.png")) < 0,
              "nheads 0 refused: %s", ats_last_error());
    ATS_CHECK(ats_diagnose_plot_heads(tmp("l0.png"), layers, 0, H, ratio, 2) == ATS_STATUS_EINVAL,
              "nlayers 0 refused: %s", ats_last_error());
    ATS_CHECK(ats_diagnose_plot_heads(tmp("w1.png"), layers, L, H, ratio, 1) == ATS_STATUS_EINVAL &&
                  file_size(tmp("w1.png")) < 0,
              "window 1 refused: %s", ats_last_error());
    ATS_CHECK(ats_diagnose_plot_heads(tmp("w.png"), layers, L, H, ratio, 0.5) == ATS_STATUS_EINVAL,
              "window 0.5 refused");
    ATS_CHECK(ats_diagnose_plot_heads(tmp("w.png"), layers, L, H, ratio, NAN) == ATS_STATUS_EINVAL,
              "window NaN refused");
    ATS_CHECK(ats_diagnose_plot_heads(tmp("w.png"), layers, L, H, ratio, INFINITY) ==
                  ATS_STATUS_EINVAL,
              "window inf refused");
    ATS_CHECK(ats_diagnose_plot_heads(tmp("many.png"), NULL, 65537, 1, ratio, 2) ==
                  ATS_STATUS_EINVAL,
              "more than 65536 cells refused: %s", ats_last_error());
    ATS_CHECK(ats_diagnose_plot_heads("/nonexistent/dir/h.png", layers, L, H, ratio, 2) ==
                  ATS_STATUS_EIO,
              "unwritable path: EIO (%s)", ats_last_error());
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/ats_test_diagnose_plot_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    // The diverging map: ColorBrewer RdBu's ends and middle (reversed: blue low, red high).
    unsigned char lo[3], mid[3], hi[3];
    ats_plot_colormap_diverging(lo, 0);
    ats_plot_colormap_diverging(mid, 0.5);
    ats_plot_colormap_diverging(hi, 1);
    ATS_CHECK(lo[0] == 5 && lo[1] == 48 && lo[2] == 97 && mid[0] == 247 && mid[1] == 247 &&
                  mid[2] == 247 && hi[0] == 103 && hi[1] == 0 && hi[2] == 31,
              "diverging map: #053061 at 0, #f7f7f7 at 0.5, #67001f at 1");
    unsigned char clamp[3];
    ats_plot_colormap_diverging(clamp, NAN);
    ATS_CHECK(memcmp(clamp, lo, 3) == 0, "NaN maps to the low end, never out of the table");

    test_law_figure();
    test_heads();

    // Labels longer than the label buffer (512 bytes) in two-byte characters: shortened on a
    // character boundary, so cairo still gets UTF-8.
    char long_names[3][700];
    const char *ln[3];
    for (int i = 0; i < 3; i++) {
        size_t k = 0;
        for (int j = 0; j < 300; j++) {
            long_names[i][k++] = (char)0xC3; // U+00E9
            long_names[i][k++] = (char)0xA9;
        }
        snprintf(long_names[i] + k, sizeof long_names[i] - k, "%d", i);
        ln[i] = long_names[i];
    }
    double ones[6] = {1, 1, 1, 1, 1, 1};
    int urc = ats_diagnose_plot_heads(tmp("utf8.png"), ln, 3, 2, ones, 2);
    ATS_CHECK(urc == ATS_STATUS_OK && file_size(tmp("utf8.png")) > 0,
              "600-byte UTF-8 layer names drawn (rc %d: %s)", urc,
              urc ? ats_last_error() : "ok");

    // Remove the temporary files.
    static const char *const files[] = {
        "law.png",   "law.svg",       "law.pdf",       "law2.png",      "heads.png",
        "heads.csv", "heads_svg.svg", "heads_svg.csv", "heads_pdf.pdf", "heads_pdf.csv",
        "big0.png",  "big0.csv",      "big1.png",      "big1.csv",      "utf8.png",
        "utf8.csv"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++)
        unlink(tmp(files[i]));
    ATS_CHECK(rmdir(dir) == 0, "temporary directory removed (nothing else left in it)");
    return ats_test_summary();
}
