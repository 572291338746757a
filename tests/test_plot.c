/*
 * test_plot.c: figures through cairo. A PNG is read back and its pixels checked: a heat map of
 * z = x must show the colour map's ends at its left and right edges, and the dashed overlay
 * must be black where it runs; SVG and PDF files start with their magic; errors are reported.
 * Run: make build/tests/test_plot && build/tests/test_plot
 */
#include <cairo.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attnscale.h"
#include "test.h"

static char dir[64];

static const char *tmp(const char *name) {
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
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

static int near(const int rgb[3], const unsigned char want[3], int tol) {
    for (int c = 0; c < 3; c++)
        if (abs(rgb[c] - want[c]) > tol)
            return 0;
    return 1;
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

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/ats_test_plot_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }

    // Colour map ends and monotone luminance-ish: viridis starts dark purple, ends yellow.
    unsigned char lo[3], hi[3], mid[3];
    ats_plot_colormap(lo, 0);
    ats_plot_colormap(hi, 1);
    ats_plot_colormap(mid, 0.5);
    ATS_CHECK(lo[0] == 68 && lo[1] == 1 && lo[2] == 84 && hi[0] == 253 && hi[1] == 231 &&
                  hi[2] == 37,
              "viridis ends");
    unsigned char clamp[3];
    ats_plot_colormap(clamp, NAN);
    ATS_CHECK(memcmp(clamp, lo, 3) == 0, "NaN maps to the low end, never out of the table");

    // Heat map of z = x over 20 x 10 cells with a horizontal dashed line at y = 0.5.
    enum { NX = 20, NY = 10 };
    double x[NX], y[NY], z[NX * NY];
    for (int i = 0; i < NX; i++)
        x[i] = i;
    for (int j = 0; j < NY; j++)
        y[j] = (j + 0.5) / NY;
    for (int j = 0; j < NY; j++)
        for (int i = 0; i < NX; i++)
            z[j * NX + i] = x[i];
    struct ats_plot_axes ax = ats_plot_axes_default();
    ax.title = "test";
    ax.xlabel = "x";
    ax.ylabel = "y";
    struct ats_heatmap map = {.z = z, .x = x, .y = y, .nx = NX, .ny = NY, .zmin = NAN,
                              .zmax = NAN, .zlabel = "z"};
    double lx[2] = {-10, 100}, ly[2] = {0.5, 0.5};
    struct ats_plot_series line = {lx, ly, NULL, 2, NULL, 1, -1};
    int rc = ats_plot_heatmap(tmp("map.png"), &ax, &map, &line, 1);
    ATS_CHECK(rc == ATS_STATUS_OK, "heat map PNG written (rc %d)", rc);
    cairo_surface_t *s = cairo_image_surface_create_from_png(tmp("map.png"));
    ATS_CHECK(cairo_surface_status(s) == CAIRO_STATUS_SUCCESS &&
                  cairo_image_surface_get_width(s) == 800 &&
                  cairo_image_surface_get_height(s) == 600,
              "PNG reads back as 800 x 600");
    if (cairo_surface_status(s) == CAIRO_STATUS_SUCCESS) {
        // Plot area: x from 80 to 800 - 30 - 110 = 660, y from 50 to 540; cell 0 and 19 are
        // 29 px wide, so 10 px inside each edge is well inside the end cells.
        int left[3], right[3], on_line[3], centre[3];
        pixel(s, 90, 150, left);
        pixel(s, 650, 150, right);
        ATS_CHECK(near(left, lo, 1), "left cells have the low colour (%d %d %d)", left[0],
                  left[1], left[2]);
        ATS_CHECK(near(right, hi, 1), "right cells have the high colour (%d %d %d)", right[0],
                  right[1], right[2]);
        // The dashed line at y = 0.5 sits at device y = 50 + 490/2 = 295: some pixels along
        // it are black, and the gaps show the map.
        int black = 0, gaps = 0;
        for (int px = 100; px < 640; px++) {
            pixel(s, px, 295, on_line);
            black += on_line[0] < 60 && on_line[1] < 60 && on_line[2] < 60;
            pixel(s, px, 270, centre);
            gaps += !(centre[0] < 60 && centre[1] < 60 && centre[2] < 60);
        }
        ATS_CHECK(black > 200 && black < 500, "dashed overlay drawn with gaps (%d black px)",
                  black);
        ATS_CHECK(gaps == 540, "the map shows away from the overlay");
        // Colour bar: bottom is low, top is high (x = 660 + 20 + 9).
        int bar_lo[3], bar_hi[3];
        pixel(s, 689, 537, bar_lo);
        pixel(s, 689, 53, bar_hi);
        ATS_CHECK(near(bar_lo, lo, 8) && near(bar_hi, hi, 8), "colour bar runs low to high");
    }
    cairo_surface_destroy(s);

    // Lines: SVG and PDF from the same path; log axes.
    double t[50], u[50], e[50];
    for (int i = 0; i < 50; i++) {
        t[i] = pow(10, -2 + 4.0 * i / 49);
        u[i] = 1 / (1 + t[i]);
        e[i] = 0.01;
    }
    struct ats_plot_series ser[2] = {{t, u, e, 50, "1/(1+t)", 0, 0},
                                     {t, t, NULL, 50, "t", 1, 1}};
    ax = ats_plot_axes_default();
    ax.xlog = 1;
    ax.ylog = 1;
    ax.xlabel = "t";
    ATS_CHECK(ats_plot_lines(tmp("lines.svg"), &ax, ser, 2) == ATS_STATUS_OK &&
                  starts_with(tmp("lines.svg"), "<?xml"),
              "SVG line plot written");
    ATS_CHECK(ats_plot_lines(tmp("lines.pdf"), &ax, ser, 2) == ATS_STATUS_OK &&
                  starts_with(tmp("lines.pdf"), "%PDF"),
              "PDF line plot written");
    ATS_CHECK(ats_plot_lines(tmp("lines.png"), &ax, ser, 2) == ATS_STATUS_OK &&
                  starts_with(tmp("lines.png"), "\x89PNG"),
              "PNG line plot written");

    // Errors.
    ATS_CHECK(ats_plot_lines(tmp("lines.jpg"), &ax, ser, 2) == ATS_STATUS_EINVAL,
              "unknown extension refused");
    ATS_CHECK(ats_plot_lines("/nonexistent/dir/x.png", &ax, ser, 2) == ATS_STATUS_EIO,
              "unwritable PNG path gives EIO");
    ATS_CHECK(ats_plot_lines("/nonexistent/dir/x.svg", &ax, ser, 2) == ATS_STATUS_EIO,
              "unwritable SVG path gives EIO");
    double bad[2] = {NAN, NAN};
    struct ats_plot_series none = {bad, bad, NULL, 2, NULL, 0, 0};
    ATS_CHECK(ats_plot_lines(tmp("none.png"), &ax, &none, 1) == ATS_STATUS_EINVAL,
              "no finite data refused");
    ax.xmin = -1;
    ATS_CHECK(ats_plot_lines(tmp("neg.png"), &ax, ser, 2) == ATS_STATUS_EDOM,
              "a log axis from -1 refused");
    double xs[3] = {0, 2, 1};
    struct ats_heatmap unsorted = {.z = z, .x = xs, .y = y, .nx = 3, .ny = 1, .zmin = NAN,
                                   .zmax = NAN};
    ax = ats_plot_axes_default();
    ATS_CHECK(ats_plot_heatmap(tmp("u.png"), &ax, &unsorted, NULL, 0) == ATS_STATUS_EINVAL,
              "non-increasing heat map x refused");
    double flat[3] = {NAN, NAN, NAN};
    double xs3[3] = {0, 1, 2};
    struct ats_heatmap empty = {.z = flat, .x = xs3, .y = y, .nx = 3, .ny = 1, .zmin = NAN,
                                .zmax = NAN};
    ATS_CHECK(ats_plot_heatmap(tmp("e.png"), &ax, &empty, NULL, 0) == ATS_STATUS_EDOM,
              "an all-NaN heat map has no colour range");

    const char *files[] = {"map.png", "lines.svg", "lines.pdf", "lines.png"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        remove(tmp(files[i]));
    rmdir(dir);
    return ats_test_summary();
}
