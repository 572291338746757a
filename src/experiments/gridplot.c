/*
 * gridplot.c: the --plot figure of the commands whose records form a grid over option values
 * with gamma (or beta) varying fastest (simplex, phase): a heat map over (rho, gamma) with the
 * dashed critical curve gamma = 1/(1 - rho) (beta = log n/(1 - rho), THEORY.md 2.1) when rho
 * has several values and the other axes one, else one line against gamma per combination of
 * the others.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "experiments/run.h"

static int increasing(const struct ats_values *v) {
    for (int64_t i = 1; i < v->count; i++)
        if (!(v->v[i] > v->v[i - 1]))
            return 0;
    return 1;
}

int grid_plot_check(int64_t *total, const char *path, const struct grid *g) {
    const char *sname = g->kind == ATS_SCALE_GAMMA ? "gamma" : "beta";
    const struct ats_values *scale = g->axes[g->naxes - 1], *rho = g->axes[g->ax_rho];
    if (ats_plot_check_path(path) != ATS_STATUS_OK)
        ATS_ERROR(ATS_STATUS_EARG, "--plot: '%s' must end in .png, .svg or .pdf", path);
    // The values of every record are kept for the figure: at most RUN_RECORDS_MAX, which
    // command_check_spec has checked.
    int64_t t = 1;
    for (int a = 0; a < g->naxes; a++)
        t *= g->axes[a]->count;
    if (scale->count < 2 || !increasing(scale))
        ATS_ERROR(ATS_STATUS_EARG, "--plot: --%s needs several increasing values", sname);
    *total = t;
    if (rho->count < 2)
        return ATS_STATUS_OK;
    for (int a = 0; a < g->naxes; a++)
        if (a != g->ax_rho && a != g->naxes - 1 && g->axes[a]->count != 1)
            ATS_ERROR(ATS_STATUS_EARG, "--plot: a heat map over (rho, %s) needs one value of --%s",
                      sname, g->names[a]);
    if (!increasing(rho))
        ATS_ERROR(ATS_STATUS_EARG, "--plot: --rho needs increasing values for a heat map");
    return ATS_STATUS_OK;
}

int grid_plot_figure(struct figure **out, const struct grid *g, const char *title,
                     const char *zlabel, double zlo, double zhi, const double *z,
                     const double *zerr) {
    const char *sname = g->kind == ATS_SCALE_GAMMA ? "gamma" : "beta";
    const int ax_scale = g->naxes - 1;
    const struct ats_values *rho = g->axes[g->ax_rho], *scale = g->axes[ax_scale];
    struct figure *f = figure_new(NULL);
    FIGURE_NEED(f);
    struct ats_figure *fig = &f->f;
    FIGURE_NEED(fig->axes.title = figure_printf(f, "%s", title));
    if (rho->count > 1) {
        // Records run rho-major, scale-minor: z[ir * nscale + is]; the map wants rows of rho.
        int64_t nx = rho->count, ny = scale->count;
        double *zt = figure_alloc(f, (size_t)(nx * ny) * sizeof *zt);
        double *x = figure_alloc(f, (size_t)nx * sizeof *x);
        double *y = figure_alloc(f, (size_t)ny * sizeof *y);
        double *cx = figure_alloc(f, (size_t)nx * sizeof *cx);
        double *cy = figure_alloc(f, (size_t)nx * sizeof *cy);
        struct ats_plot_series *crit = figure_alloc(f, sizeof *crit);
        FIGURE_NEED(zt && x && y && cx && cy && crit);
        for (int64_t ir = 0; ir < nx; ir++)
            for (int64_t is = 0; is < ny; is++)
                zt[is * nx + ir] = z[ir * ny + is];
        memcpy(x, rho->v, (size_t)nx * sizeof *x);
        memcpy(y, scale->v, (size_t)ny * sizeof *y);
        double n = g->axes[g->ax_n]->v[0];
        for (int64_t i = 0; i < nx; i++) { // critical curve (THEORY.md 2.1)
            cx[i] = rho->v[i];
            cy[i] = (g->kind == ATS_SCALE_GAMMA ? 1 : log(n)) / (1 - rho->v[i]);
        }
        fig->axes.xlabel = "rho";
        fig->axes.ylabel = sname;
        fig->heatmap = 1;
        FIGURE_NEED(fig->map.zlabel = figure_printf(f, "%s", zlabel));
        fig->map.z = zt;
        fig->map.x = x;
        fig->map.y = y;
        fig->map.nx = nx;
        fig->map.ny = ny;
        fig->map.zmin = zlo;
        fig->map.zmax = zhi;
        *crit = (struct ats_plot_series){cx, cy, NULL, nx, NULL, 1, -1};
        fig->series = crit;
        fig->nseries = 1;
    } else {
        // One line per combination of the other axes, labelled by those that vary.
        int64_t others = 1, ns = scale->count;
        for (int a = 0; a < ax_scale; a++)
            others *= g->axes[a]->count;
        struct ats_plot_series *ser = figure_alloc(f, (size_t)others * sizeof *ser);
        double *x = figure_alloc(f, (size_t)ns * sizeof *x);
        double *y = figure_alloc(f, (size_t)(others * ns) * sizeof *y);
        double *e = zerr ? figure_alloc(f, (size_t)(others * ns) * sizeof *e) : NULL;
        int64_t idx[16] = {0};
        FIGURE_NEED(ser && x && y && (e || !zerr) && g->naxes <= 16);
        memcpy(x, scale->v, (size_t)ns * sizeof *x);
        memcpy(y, z, (size_t)(others * ns) * sizeof *y);
        if (zerr)
            memcpy(e, zerr, (size_t)(others * ns) * sizeof *e);
        for (int64_t l = 0; l < others; l++) {
            char lab[96] = "";
            for (int a = 0; a < ax_scale; a++)
                if (g->axes[a]->count > 1)
                    snprintf(lab + strlen(lab), sizeof lab - strlen(lab), "%s%s = %g",
                             lab[0] ? ", " : "", g->names[a], g->axes[a]->v[idx[a]]);
            char *label = NULL;
            if (lab[0])
                FIGURE_NEED(label = figure_printf(f, "%s", lab));
            ser[l] = (struct ats_plot_series){x, y + l * ns, e ? e + l * ns : NULL, ns, label, 0,
                                              (int)(l % 10)};
            idx[ax_scale] = ns - 1; // step the odometer over the other axes only
            grid_next(idx, g->axes, g->naxes);
        }
        fig->axes.xlabel = sname;
        FIGURE_NEED(fig->axes.ylabel = figure_printf(f, "%s", zlabel));
        fig->series = ser;
        fig->nseries = others;
    }
    *out = f;
    return ATS_STATUS_OK;
}
