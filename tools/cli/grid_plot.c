/*
 * grid_plot.c: --plot for the commands whose records form a grid over option values with
 * gamma (or beta) varying fastest (simplex, phase): a heat map over (rho, gamma) with the
 * dashed critical curve gamma = 1/(1 - rho) (beta = log n/(1 - rho)) when rho has several
 * values and the other axes one, else one line against gamma per combination of the others.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int increasing(const struct ats_values *v) {
    for (int64_t i = 1; i < v->count; i++)
        if (!(v->v[i] > v->v[i - 1]))
            return 0;
    return 1;
}

int64_t cli_grid_plot_check(const struct cli *c, const char *path, const struct cli_grid *g) {
    const char *sname = g->kind == ATS_SCALE_GAMMA ? "gamma" : "beta";
    const struct ats_values *scale = g->axes[g->naxes - 1], *rho = g->axes[g->ax_rho];
    if (ats_plot_check_path(path) != ATS_STATUS_OK)
        cli_usage(c, "--plot: '%s' must end in .png, .svg or .pdf", path);
    // The values of every record are kept for the figure: a bounded number.
    int64_t total = 1;
    for (int a = 0; a < g->naxes; a++) {
        if (total > 100000000 / g->axes[a]->count)
            cli_usage(c, "--plot: more than 10^8 records to draw; plot a smaller grid");
        total *= g->axes[a]->count;
    }
    if (scale->count < 2 || !increasing(scale))
        cli_usage(c, "--plot: --%s needs several increasing values", sname);
    if (rho->count < 2)
        return total;
    for (int a = 0; a < g->naxes; a++)
        if (a != g->ax_rho && a != g->naxes - 1 && g->axes[a]->count != 1)
            cli_usage(c, "--plot: a heat map over (rho, %s) needs one value of --%s", sname,
                      g->names[a]);
    if (!increasing(rho))
        cli_usage(c, "--plot: --rho needs increasing values for a heat map");
    return total;
}

void cli_grid_plot(const struct cli *c, const char *path, const struct cli_grid *g,
                   const char *title, const char *zlabel, double zlo, double zhi, const double *z,
                   const double *zerr) {
    const char *sname = g->kind == ATS_SCALE_GAMMA ? "gamma" : "beta";
    const int ax_scale = g->naxes - 1;
    const struct ats_values *rho = g->axes[g->ax_rho], *scale = g->axes[ax_scale];
    struct ats_plot_axes ax = ats_plot_axes_default();
    ax.title = title;
    int rc;
    if (rho->count > 1) {
        // Records run rho-major, scale-minor: z[ir * nscale + is]; the map wants rows of rho.
        int64_t nx = rho->count, ny = scale->count;
        double *zt = malloc((size_t)(nx * ny) * sizeof *zt);
        double *cx = malloc((size_t)nx * sizeof *cx), *cy = malloc((size_t)nx * sizeof *cy);
        if (!zt || !cx || !cy)
            cli_fail(c, "--plot: out of memory");
        for (int64_t ir = 0; ir < nx; ir++)
            for (int64_t is = 0; is < ny; is++)
                zt[is * nx + ir] = z[ir * ny + is];
        double n = g->axes[g->ax_n]->v[0];
        for (int64_t i = 0; i < nx; i++) { // critical curve (THEORY.md 2.1)
            cx[i] = rho->v[i];
            cy[i] = (g->kind == ATS_SCALE_GAMMA ? 1 : log(n)) / (1 - rho->v[i]);
        }
        ax.xlabel = "rho";
        ax.ylabel = sname;
        struct ats_heatmap map = {zt, rho->v, scale->v, nx, ny, zlo, zhi, zlabel};
        struct ats_plot_series crit = {cx, cy, NULL, nx, NULL, 1, -1};
        rc = ats_plot_heatmap(path, &ax, &map, &crit, 1);
        free(zt);
        free(cx);
        free(cy);
    } else {
        // One line per combination of the other axes, labelled by those that vary.
        int64_t others = 1;
        for (int a = 0; a < ax_scale; a++)
            others *= g->axes[a]->count;
        struct ats_plot_series *ser = calloc((size_t)others, sizeof *ser);
        char (*labels)[96] = calloc((size_t)others, sizeof *labels);
        int64_t *idx = calloc((size_t)g->naxes, sizeof *idx);
        if (!ser || !labels || !idx)
            cli_fail(c, "--plot: out of memory");
        for (int64_t l = 0; l < others; l++) {
            char *lab = labels[l];
            lab[0] = '\0';
            for (int a = 0; a < ax_scale; a++)
                if (g->axes[a]->count > 1)
                    snprintf(lab + strlen(lab), 96 - strlen(lab), "%s%s = %g", lab[0] ? ", " : "",
                             g->names[a], g->axes[a]->v[idx[a]]);
            ser[l] = (struct ats_plot_series){scale->v, z + l * scale->count,
                                              zerr ? zerr + l * scale->count : NULL, scale->count,
                                              lab[0] ? lab : NULL, 0, (int)(l % 10)};
            idx[ax_scale] = scale->count - 1; // step the odometer over the other axes only
            cli_grid_next(idx, g->axes, g->naxes);
        }
        ax.xlabel = sname;
        ax.ylabel = zlabel;
        rc = ats_plot_lines(path, &ax, ser, others);
        free(ser);
        free(labels);
        free(idx);
    }
    if (rc != ATS_STATUS_OK)
        cli_fail(c, "--plot: %s", cli_last_error());
}
