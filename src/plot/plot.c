/*
 * plot.c: line plots and heat maps through cairo, to PNG, SVG or PDF from one drawing path.
 *
 * Layout (in device units; 1 unit = 1 pixel in PNG, 1 point in SVG/PDF): an 800 x 600 page,
 * the plot area inset by fixed margins, a colour bar to the right of heat maps. Linear axes get
 * "nice" ticks (1, 2, 5 times a power of ten); log axes get one tick per decade (1, 2 and 5
 * times each power of ten when that gives fewer than two ticks, 1..9 times when that gives
 * fewer than three). Heat maps may label their columns and rows by name (categories) instead
 * of numeric ticks; the left margin then grows to fit the row labels, and may use a diverging
 * colour map, custom colour-bar ticks and a marked band of z.
 */
#include <math.h>
#include <string.h>

#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <cairo.h>

#include "core/internal.h"

enum { PAGE_W = 800, PAGE_H = 600 };
static const double PI_2 = 1.57079632679489661923;
static const double MARGIN_L = 80, MARGIN_R = 30, MARGIN_T = 50, MARGIN_B = 60;
static const double CBAR_W = 18, CBAR_GAP = 20, CBAR_ROOM = 110;
static const double CAT_MARGIN = 300; // the widest left margin row labels may take

struct ats_plot_axes ats_plot_axes_default(void) {
    struct ats_plot_axes a = {NULL, NULL, NULL, 0, 0, NAN, NAN, NAN, NAN};
    return a;
}

// viridis (matplotlib's perceptually uniform map, CC0) sampled at 9 points.
static const unsigned char viridis[9][3] = {
    {68, 1, 84},    {71, 45, 123},  {59, 82, 139},   {44, 114, 142}, {33, 145, 140},
    {40, 174, 128}, {94, 201, 98},  {173, 220, 48},  {253, 231, 37}};

void ats_plot_colormap(unsigned char rgb[3], double t) {
    if (!(t > 0))
        t = 0;
    if (t > 1)
        t = 1;
    double s = t * 8;
    int i = (int)floor(s);
    if (i >= 8)
        i = 7;
    double f = s - i;
    for (int c = 0; c < 3; c++)
        rgb[c] = (unsigned char)lround((1 - f) * viridis[i][c] + f * viridis[i + 1][c]);
}

// ColorBrewer RdBu (Cynthia Brewer, Apache-2.0; matplotlib's RdBu data) at 11 points,
// reversed: dark blue, through near-white (247, 247, 247) at the middle, to dark red.
static const unsigned char rdbu_r[11][3] = {
    {5, 48, 97},     {33, 102, 172},  {67, 147, 195},  {146, 197, 222}, {209, 229, 240},
    {247, 247, 247}, {253, 219, 199}, {244, 165, 130}, {214, 96, 77},   {178, 24, 43},
    {103, 0, 31}};

void ats_plot_colormap_diverging(unsigned char rgb[3], double t) {
    if (!(t > 0))
        t = 0;
    if (t > 1)
        t = 1;
    double s = t * 10;
    int i = (int)floor(s);
    if (i >= 10)
        i = 9;
    double f = s - i;
    for (int c = 0; c < 3; c++)
        rgb[c] = (unsigned char)lround((1 - f) * rdbu_r[i][c] + f * rdbu_r[i + 1][c]);
}

// matplotlib's tab10 cycle.
static const double cycle[10][3] = {
    {0.122, 0.467, 0.706}, {1.000, 0.498, 0.055}, {0.173, 0.627, 0.173}, {0.839, 0.153, 0.157},
    {0.580, 0.404, 0.741}, {0.549, 0.337, 0.294}, {0.890, 0.467, 0.761}, {0.498, 0.498, 0.498},
    {0.737, 0.741, 0.133}, {0.090, 0.745, 0.812}};

// ---------------------------------------------------------------------------
// Surfaces

enum kind { KIND_PNG, KIND_SVG, KIND_PDF };

static int kind_of(const char *path, enum kind *k) {
    const char *dot = strrchr(path, '.');
    if (dot && strcmp(dot, ".png") == 0)
        *k = KIND_PNG;
    else if (dot && strcmp(dot, ".svg") == 0)
        *k = KIND_SVG;
    else if (dot && strcmp(dot, ".pdf") == 0)
        *k = KIND_PDF;
    else
        ATS_ERROR(ATS_STATUS_EINVAL, "'%s': a figure must end in .png, .svg or .pdf", path);
    return ATS_STATUS_OK;
}

int ats_plot_check_path(const char *path) {
    enum kind k;
    return kind_of(path, &k);
}

// cairo's output through an atomic file (src/io/atomic.c): every write checked.
static cairo_status_t write_stream(void *closure, const unsigned char *data, unsigned int n) {
    FILE *f = ats_atomic_stream(closure);
    return fwrite(data, 1, n, f) == n ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

// The page to draw on; SVG and PDF stream into file as they are drawn, PNG at the end.
static cairo_surface_t *surface_create(struct ats_atomic *file, enum kind k) {
    switch (k) {
    case KIND_SVG:
        return cairo_svg_surface_create_for_stream(write_stream, file, PAGE_W, PAGE_H);
    case KIND_PDF:
        return cairo_pdf_surface_create_for_stream(write_stream, file, PAGE_W, PAGE_H);
    default:
        return cairo_image_surface_create(CAIRO_FORMAT_RGB24, PAGE_W, PAGE_H);
    }
}

// Finishes the page and writes it, then commits the file; EIO when cairo or a write reports
// any failure (the file is then left as it was).
static int surface_finish(cairo_surface_t *s, cairo_t *cr, const char *path, enum kind k,
                          struct ats_atomic *file) {
    cairo_status_t st = cairo_status(cr);
    cairo_destroy(cr);
    if (st == CAIRO_STATUS_SUCCESS && k == KIND_PNG)
        st = cairo_surface_write_to_png_stream(s, write_stream, file);
    cairo_surface_finish(s);
    if (st == CAIRO_STATUS_SUCCESS)
        st = cairo_surface_status(s);
    cairo_surface_destroy(s);
    if (st != CAIRO_STATUS_SUCCESS) {
        ats_atomic_abort(file);
        ATS_ERROR(ATS_STATUS_EIO, "cannot write '%s': %s", path, cairo_status_to_string(st));
    }
    return ats_atomic_commit(file);
}

// ---------------------------------------------------------------------------
// Axes: data -> device mapping and decoration

struct frame {
    double x0, y0, w, h;       // plot area in device units (y0 = top)
    double xmin, xmax, ymin, ymax;
    int xlog, ylog;
};

static double tr(double v, int log_axis) {
    return log_axis ? log10(v) : v;
}

static double dev_x(const struct frame *f, double x) {
    double a = tr(f->xmin, f->xlog), b = tr(f->xmax, f->xlog);
    return f->x0 + (tr(x, f->xlog) - a) / (b - a) * f->w;
}

static double dev_y(const struct frame *f, double y) {
    double a = tr(f->ymin, f->ylog), b = tr(f->ymax, f->ylog);
    return f->y0 + f->h - (tr(y, f->ylog) - a) / (b - a) * f->h;
}

static int check_range(double lo, double hi, int log_axis, const char *axis) {
    if (!isfinite(lo) || !isfinite(hi) || !(hi > lo) || (log_axis && !(lo > 0)))
        ATS_ERROR(ATS_STATUS_EDOM, "empty or invalid %s range [%g, %g]%s", axis, lo, hi,
                  log_axis ? " on a log axis" : "");
    return ATS_STATUS_OK;
}

// Largest "nice" step (1, 2, 5 x 10^k) giving at most about 8 ticks over span.
static double nice_step(double span) {
    double raw = span / 7;
    double p = pow(10, floor(log10(raw)));
    double m = raw / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

static void text_at(cairo_t *cr, double x, double y, const char *s, double ax, double ay) {
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    cairo_move_to(cr, x - ax * e.width - e.x_bearing, y - ay * e.height - e.y_bearing);
    cairo_show_text(cr, s);
}

static void format_tick(char *buf, size_t size, double v, double step) {
    if (fabs(v) < step * 1e-9)
        v = 0; // -0 and rounding noise
    snprintf(buf, size, "%.6g", v);
}

// Calls tick(value) for each tick of an axis from lo to hi.
static int axis_ticks(double *ticks, int max, double lo, double hi, int log_axis, double *step) {
    int n = 0;
    if (log_axis) {
        double a = ceil(log10(lo) - 1e-9), b = floor(log10(hi) + 1e-9);
        double every = fmax(1, ceil((b - a + 1) / 8));
        for (double e = a; e <= b && n < max; e += every)
            ticks[n++] = pow(10, e);
        *step = 0;
        // Fewer than two decades ticked: 1, 2 and 5 times each power of ten, or when that
        // gives fewer than three ticks, every integer multiple 1..9.
        static const double mant[2][9] = {{1, 2, 5}, {1, 2, 3, 4, 5, 6, 7, 8, 9}};
        static const int nmant[2] = {3, 9};
        for (int tier = 0; tier < 2 && n < 2 + tier; tier++) {
            n = 0;
            for (double e = floor(log10(lo)); e <= ceil(log10(hi)); e++)
                for (int m = 0; m < nmant[tier] && n < max; m++) {
                    double t = mant[tier][m] * pow(10, e);
                    if (t >= lo * (1 - 1e-9) && t <= hi * (1 + 1e-9))
                        ticks[n++] = t;
                }
        }
    } else {
        double s = nice_step(hi - lo);
        for (double t = ceil(lo / s - 1e-9) * s; t <= hi + s * 1e-9 && n < max; t += s)
            ticks[n++] = t;
        *step = s;
    }
    return n;
}

// Category ticks: labels at positions (n,), or none (numeric ticks). Labels too wide for
// their room are shortened, all in one way (struct cat_form), the first of these that fits:
// the part every label shares at its start, up to a separator (a character that is not a
// letter or digit), becomes "..." except its last word ("model.layers.0.attn" ->
// "...layers.0.attn"), then all of it; then likewise with the part shared at the end, from a
// separator, also "..." ("...layers.0..."); what still does not fit loses its end
// ("start..."). Qualified layer names thus keep what tells them apart (the index).
struct cat_form {
    size_t pre, suf; // bytes replaced by "..." at the start / the end of every label
    int cut;         // 1: then cut to width
    double width;
};

struct cats {
    const double *at;
    const char *const *label;
    int64_t n;
    struct cat_form form; // zero: labels whole
};

static double text_width(cairo_t *cr, const char *s) {
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    return e.x_advance;
}

static int is_sep(char c) {
    return !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
             (unsigned char)c >= 0x80);
}

// Drops a UTF-8 character cut off at the end of s (snprintf cuts bytes; cairo refuses text
// that is not UTF-8).
static void utf8_complete(char *s) {
    size_t n = strlen(s), j = n;
    while (j > 0 && ((unsigned char)s[j - 1] & 0xC0) == 0x80)
        j--;
    if (j == 0)
        return;
    unsigned char lead = (unsigned char)s[j - 1];
    size_t want = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (n - (j - 1) < want)
        s[j - 1] = '\0';
}

// s as the form shows it, in buf (or s itself).
static const char *cat_text(cairo_t *cr, const char *s, const struct cat_form *cf, char *buf,
                            size_t size) {
    if (!cf->pre && !cf->suf && !cf->cut)
        return s;
    size_t len = strlen(s), pre = cf->pre < len ? cf->pre : 0;
    size_t suf = cf->suf < len - pre ? cf->suf : 0;
    snprintf(buf, size, "%s%.*s%s", pre ? "..." : "", (int)(len - pre - suf), s + pre,
             suf ? "..." : "");
    utf8_complete(buf);
    if (!cf->cut || text_width(cr, buf) <= cf->width)
        return buf;
    // Keep the longest start (whole UTF-8 characters) that fits with "..." after it.
    size_t keep = strlen(buf) < size - 4 ? strlen(buf) : size - 4;
    while (keep > 0) {
        keep--;
        while (keep > 0 && ((unsigned char)buf[keep] & 0xC0) == 0x80)
            keep--;
        memcpy(buf + keep, "...", 4);
        if (text_width(cr, buf) <= cf->width)
            break;
    }
    return buf;
}

static double cats_width(cairo_t *cr, const struct cats *c) {
    double w = 0;
    char buf[512];
    for (int64_t i = 0; i < c->n; i++)
        if (c->label[i])
            w = fmax(w, text_width(cr, cat_text(cr, c->label[i], &c->form, buf, sizeof buf)));
    return w;
}

// The first form (struct cat_form) whose labels all fit in width.
static void cats_fit(cairo_t *cr, struct cats *c, double width) {
    const char *first = NULL;
    size_t pre = 0, suf = 0, shortest = 0, flen = 0;
    for (int64_t i = 0; i < c->n; i++) {
        const char *s = c->label[i];
        if (!s)
            continue;
        size_t len = strlen(s), k = 0;
        if (!first) {
            first = s;
            pre = suf = shortest = flen = len;
        }
        while (k < pre && k < len && s[k] == first[k])
            k++;
        pre = k;
        k = 0;
        while (k < suf && k < len && s[len - 1 - k] == first[flen - 1 - k])
            k++;
        suf = k;
        shortest = len < shortest ? len : shortest;
    }
    c->form = (struct cat_form){0, 0, 0, width};
    if (!first || cats_width(cr, c) <= width)
        return;
    while (pre > 0 && !is_sep(first[pre - 1])) // the shared start ends at a separator
        pre--;
    if (pre >= shortest)
        pre = 0;
    size_t last = pre ? pre - 1 : 0; // the shared start less its last word
    while (last > 0 && !is_sep(first[last - 1]))
        last--;
    while (suf > 0 && !is_sep(first[flen - suf])) // the shared end starts at one
        suf--;
    if (pre + suf >= shortest)
        suf = 0;
    const size_t tries[4][2] = {{last, 0}, {pre, 0}, {last, suf}, {pre, suf}};
    for (int t = 0; t < 4; t++) {
        if (t > 0 && tries[t][0] == tries[t - 1][0] && tries[t][1] == tries[t - 1][1])
            continue;
        c->form = (struct cat_form){tries[t][0], tries[t][1], 0, width};
        if (cats_width(cr, c) <= width)
            return;
    }
    c->form.cut = 1;
}

static void draw_frame(cairo_t *cr, const struct frame *f, const struct ats_plot_axes *ax,
                       const struct cats *xc, const struct cats *yc) {
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, f->x0, f->y0, f->w, f->h);
    cairo_stroke(cr);
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, 12);
    double ticks[64], step;
    char buf[512];
    if (xc) {
        // Every k-th label from the left, k as small as keeps labels 8 units apart.
        double room = f->w / (double)xc->n;
        int64_t k = (int64_t)fmax(1, ceil((cats_width(cr, xc) + 8) / room));
        for (int64_t i = 0; i < xc->n; i += k) {
            double x = dev_x(f, xc->at[i]);
            cairo_move_to(cr, x, f->y0 + f->h);
            cairo_line_to(cr, x, f->y0 + f->h + 5);
            cairo_stroke(cr);
            if (xc->label[i])
                text_at(cr, x, f->y0 + f->h + 8, xc->label[i], 0.5, 0);
        }
    } else {
        int n = axis_ticks(ticks, 64, f->xmin, f->xmax, f->xlog, &step);
        for (int i = 0; i < n; i++) {
            double x = dev_x(f, ticks[i]);
            cairo_move_to(cr, x, f->y0 + f->h);
            cairo_line_to(cr, x, f->y0 + f->h + 5);
            cairo_stroke(cr);
            format_tick(buf, sizeof buf, ticks[i], step);
            text_at(cr, x, f->y0 + f->h + 8, buf, 0.5, 0);
        }
    }
    if (yc) {
        // Every k-th label from the top, rows at least 15 units apart; labels fit left of the
        // frame, right of the axis label.
        double room = f->h / (double)yc->n;
        int64_t k = (int64_t)fmax(1, ceil(15 / room));
        for (int64_t i = yc->n - 1; i >= 0; i -= k) {
            double y = dev_y(f, yc->at[i]);
            cairo_move_to(cr, f->x0 - 5, y);
            cairo_line_to(cr, f->x0, y);
            cairo_stroke(cr);
            if (yc->label[i])
                text_at(cr, f->x0 - 8, y, cat_text(cr, yc->label[i], &yc->form, buf, sizeof buf), 1,
                        0.5);
        }
    } else {
        int n = axis_ticks(ticks, 64, f->ymin, f->ymax, f->ylog, &step);
        for (int i = 0; i < n; i++) {
            double y = dev_y(f, ticks[i]);
            cairo_move_to(cr, f->x0 - 5, y);
            cairo_line_to(cr, f->x0, y);
            cairo_stroke(cr);
            format_tick(buf, sizeof buf, ticks[i], step);
            text_at(cr, f->x0 - 8, y, buf, 1, 0.5);
        }
    }
    cairo_set_font_size(cr, 14);
    if (ax->xlabel)
        text_at(cr, f->x0 + f->w / 2, f->y0 + f->h + 30, ax->xlabel, 0.5, 0);
    if (ax->ylabel) {
        cairo_save(cr);
        cairo_translate(cr, 18, f->y0 + f->h / 2);
        cairo_rotate(cr, -PI_2);
        text_at(cr, 0, 0, ax->ylabel, 0.5, 0.5);
        cairo_restore(cr);
    }
    if (ax->title) {
        cairo_set_font_size(cr, 16);
        text_at(cr, f->x0 + f->w / 2, 18, ax->title, 0.5, 0);
    }
}

static void set_series_style(cairo_t *cr, const struct ats_plot_series *s) {
    if (s->color < 0)
        cairo_set_source_rgb(cr, 0, 0, 0);
    else
        cairo_set_source_rgb(cr, cycle[s->color % 10][0], cycle[s->color % 10][1],
                             cycle[s->color % 10][2]);
    static const double dash[] = {6, 4};
    cairo_set_dash(cr, dash, s->dashed == ATS_PLOT_STYLE_DASHED ? 2 : 0, 0);
    cairo_set_line_width(cr, 1.8);
}

static int is_points(const struct ats_plot_series *s) {
    return s->dashed == ATS_PLOT_STYLE_DOTS || s->dashed == ATS_PLOT_STYLE_MARKERS;
}

// A point of a points-only series at device (x, y), radius r (0: the style's); markers get a
// white rim so that overlapping ones stay apart. The series' colour is the current source.
static void draw_point(cairo_t *cr, const struct ats_plot_series *s, double x, double y, double r) {
    int marker = s->dashed == ATS_PLOT_STYLE_MARKERS;
    if (!(r > 0))
        r = marker ? 4 : 1.5;
    cairo_new_sub_path(cr);
    cairo_arc(cr, x, y, r, 0, 4 * PI_2);
    if (marker) {
        cairo_fill_preserve(cr);
        cairo_save(cr);
        cairo_set_source_rgb(cr, 1, 1, 1);
        cairo_set_line_width(cr, 1);
        cairo_stroke(cr);
        cairo_restore(cr);
    }
}

static int usable(const struct frame *f, double x, double y) {
    return isfinite(x) && isfinite(y) && (!f->xlog || x > 0) && (!f->ylog || y > 0);
}

static void draw_series(cairo_t *cr, const struct frame *f, const struct ats_plot_series *s) {
    cairo_save(cr);
    cairo_rectangle(cr, f->x0, f->y0, f->w, f->h);
    cairo_clip(cr);
    set_series_style(cr, s);
    int pen = 0;
    if (is_points(s)) {
        // Dots go in one path filled once (a series may hold many thousand points).
        for (int64_t i = 0; i < s->n; i++)
            if (usable(f, s->x[i], s->y[i]))
                draw_point(cr, s, dev_x(f, s->x[i]), dev_y(f, s->y[i]), 0);
        cairo_fill(cr);
    }
    for (int64_t i = 0; i < s->n && !is_points(s); i++) {
        if (!usable(f, s->x[i], s->y[i])) {
            pen = 0;
            continue;
        }
        double x = dev_x(f, s->x[i]), y = dev_y(f, s->y[i]);
        if (pen)
            cairo_line_to(cr, x, y);
        else
            cairo_move_to(cr, x, y);
        pen = 1;
    }
    cairo_stroke(cr);
    if (s->yerr) {
        cairo_set_dash(cr, NULL, 0, 0);
        cairo_set_line_width(cr, 1);
        for (int64_t i = 0; i < s->n; i++) {
            double lo = s->y[i] - s->yerr[i], hi = s->y[i] + s->yerr[i];
            if (!usable(f, s->x[i], lo) || !usable(f, s->x[i], hi))
                continue;
            double x = dev_x(f, s->x[i]);
            cairo_move_to(cr, x, dev_y(f, lo));
            cairo_line_to(cr, x, dev_y(f, hi));
            cairo_move_to(cr, x - 3, dev_y(f, lo));
            cairo_line_to(cr, x + 3, dev_y(f, lo));
            cairo_move_to(cr, x - 3, dev_y(f, hi));
            cairo_line_to(cr, x + 3, dev_y(f, hi));
        }
        cairo_stroke(cr);
    }
    cairo_restore(cr);
}

static void draw_legend(cairo_t *cr, const struct frame *f, const struct ats_plot_series *s,
                        int64_t ns) {
    int64_t rows = 0;
    double width = 0;
    cairo_set_font_size(cr, 12);
    for (int64_t i = 0; i < ns; i++) {
        if (!s[i].label)
            continue;
        cairo_text_extents_t e;
        cairo_text_extents(cr, s[i].label, &e);
        width = fmax(width, e.x_advance);
        rows++;
    }
    if (!rows)
        return;
    // The corner whose box covers the fewest data points: top right, top left, bottom right,
    // bottom left.
    double bw = width + 48, bh = (double)rows * 18 + 6, x = 0, y = 0;
    int64_t fewest = -1;
    for (int corner = 0; corner < 4; corner++) {
        double cx = corner % 2 ? f->x0 + 14 : f->x0 + f->w - bw - 8;
        double cy = corner < 2 ? f->y0 + 8 : f->y0 + f->h - bh - 8;
        int64_t inside = 0;
        for (int64_t i = 0; i < ns; i++)
            for (int64_t j = 0; j < s[i].n; j++) {
                if (!usable(f, s[i].x[j], s[i].y[j]))
                    continue;
                double px = dev_x(f, s[i].x[j]), py = dev_y(f, s[i].y[j]);
                inside += px >= cx - 6 && px <= cx - 6 + bw && py >= cy && py <= cy + bh;
            }
        if (fewest < 0 || inside < fewest) {
            fewest = inside;
            x = cx;
            y = cy;
        }
    }
    cairo_set_source_rgba(cr, 1, 1, 1, 0.85);
    cairo_rectangle(cr, x - 6, y, bw, bh);
    cairo_fill(cr);
    int64_t r = 0;
    for (int64_t i = 0; i < ns; i++) {
        if (!s[i].label)
            continue;
        double yy = y + 12 + (double)r++ * 18;
        set_series_style(cr, &s[i]);
        if (is_points(&s[i])) {
            draw_point(cr, &s[i], x + 15, yy, s[i].dashed == ATS_PLOT_STYLE_DOTS ? 2.5 : 0);
            cairo_fill(cr);
        } else {
            cairo_move_to(cr, x, yy);
            cairo_line_to(cr, x + 30, yy);
            cairo_stroke(cr);
        }
        cairo_set_source_rgb(cr, 0, 0, 0);
        text_at(cr, x + 36, yy, s[i].label, 0, 0.5);
    }
}

static void white_page(cairo_t *cr) {
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
}

// Pads an automatic linear range by 4% on each side; log ranges by a factor.
static void pad_range(double *lo, double *hi, int log_axis) {
    if (log_axis) {
        double f = pow(*hi / *lo, 0.04);
        *lo /= f;
        *hi *= f;
    } else if (*hi > *lo) {
        double p = 0.04 * (*hi - *lo);
        *lo -= p;
        *hi += p;
    } else {
        double p = *lo != 0 ? 0.1 * fabs(*lo) : 1;
        *lo -= p;
        *hi += p;
    }
}

// ---------------------------------------------------------------------------
// Public entry points

int ats_plot_lines(const char *path, const struct ats_plot_axes *axes,
                   const struct ats_plot_series *series, int64_t ns) {
    ATS_ASSERT(path && axes && (series || ns == 0));
    enum kind k;
    int rc = kind_of(path, &k);
    if (rc != ATS_STATUS_OK)
        return rc;
    struct frame f = {MARGIN_L, MARGIN_T, PAGE_W - MARGIN_L - MARGIN_R, PAGE_H - MARGIN_T - MARGIN_B,
                      HUGE_VAL, -HUGE_VAL, HUGE_VAL, -HUGE_VAL, axes->xlog, axes->ylog};
    for (int64_t s = 0; s < ns; s++) {
        if (series[s].n < 0)
            ATS_ERROR(ATS_STATUS_EINVAL, "series %lld has n < 0", (long long)s);
        for (int64_t i = 0; i < series[s].n; i++) {
            double x = series[s].x[i], y = series[s].y[i];
            if (!usable(&f, x, y))
                continue;
            f.xmin = fmin(f.xmin, x);
            f.xmax = fmax(f.xmax, x);
            f.ymin = fmin(f.ymin, y);
            f.ymax = fmax(f.ymax, y);
        }
    }
    if (!(f.xmin <= f.xmax))
        ATS_ERROR(ATS_STATUS_EINVAL, "'%s': no finite data to plot", path);
    if (!f.xlog && f.xmax == f.xmin)
        pad_range(&f.xmin, &f.xmax, 0);
    pad_range(&f.ymin, &f.ymax, f.ylog);
    if (!isnan(axes->xmin))
        f.xmin = axes->xmin;
    if (!isnan(axes->xmax))
        f.xmax = axes->xmax;
    if (!isnan(axes->ymin))
        f.ymin = axes->ymin;
    if (!isnan(axes->ymax))
        f.ymax = axes->ymax;
    if ((rc = check_range(f.xmin, f.xmax, f.xlog, "x")) ||
        (rc = check_range(f.ymin, f.ymax, f.ylog, "y")))
        return rc;

    struct ats_atomic *file;
    if ((rc = ats_atomic_open(&file, path)) != ATS_STATUS_OK)
        return rc;
    cairo_surface_t *surf = surface_create(file, k);
    cairo_t *cr = cairo_create(surf);
    white_page(cr);
    for (int64_t s = 0; s < ns; s++)
        draw_series(cr, &f, &series[s]);
    draw_frame(cr, &f, axes, NULL, NULL);
    draw_legend(cr, &f, series, ns);
    return surface_finish(surf, cr, path, k, file);
}

static void map_colour(const struct ats_heatmap *m, unsigned char rgb[3], double t) {
    if (m->cmap == ATS_PLOT_CMAP_DIVERGING)
        ats_plot_colormap_diverging(rgb, t);
    else
        ats_plot_colormap(rgb, t);
}

// Cell edges from centres: midpoints inside, half a step beyond the ends.
static double cell_edge(const double *c, int64_t n, int64_t i) {
    if (n == 1)
        return c[0] + (i == 0 ? -0.5 : 0.5);
    if (i == 0)
        return c[0] - (c[1] - c[0]) / 2;
    if (i == n)
        return c[n - 1] + (c[n - 1] - c[n - 2]) / 2;
    return (c[i - 1] + c[i]) / 2;
}

int ats_plot_heatmap(const char *path, const struct ats_plot_axes *axes,
                     const struct ats_heatmap *map, const struct ats_plot_series *overlay,
                     int64_t noverlay) {
    ATS_ASSERT(path && axes && map && (overlay || noverlay == 0));
    enum kind k;
    int rc = kind_of(path, &k);
    if (rc != ATS_STATUS_OK)
        return rc;
    if (map->nx < 1 || map->ny < 1)
        ATS_ERROR(ATS_STATUS_EINVAL, "'%s': empty heat map (%lld x %lld)", path,
                  (long long)map->nx, (long long)map->ny);
    for (int64_t i = 1; i < map->nx; i++)
        if (!(map->x[i] > map->x[i - 1]))
            ATS_ERROR(ATS_STATUS_EINVAL, "heat map x must increase (at %lld)", (long long)i);
    for (int64_t i = 1; i < map->ny; i++)
        if (!(map->y[i] > map->y[i - 1]))
            ATS_ERROR(ATS_STATUS_EINVAL, "heat map y must increase (at %lld)", (long long)i);
    if (map->band && !(map->band_lo <= map->band_hi))
        ATS_ERROR(ATS_STATUS_EINVAL, "heat map band [%g, %g] is empty", map->band_lo, map->band_hi);
    if (map->nzticks < 0)
        ATS_ERROR(ATS_STATUS_EINVAL, "heat map has nzticks < 0");
    double zmin = map->zmin, zmax = map->zmax, dmin = HUGE_VAL, dmax = -HUGE_VAL;
    for (int64_t i = 0; i < map->nx * map->ny; i++) {
        if (isfinite(map->z[i])) {
            dmin = fmin(dmin, map->z[i]);
            dmax = fmax(dmax, map->z[i]);
        }
    }
    if (isnan(zmin))
        zmin = dmin;
    if (isnan(zmax))
        zmax = dmax;
    if (isfinite(zmin) && zmax == zmin)
        pad_range(&zmin, &zmax, 0);
    if ((rc = check_range(zmin, zmax, 0, "colour")))
        return rc;

    struct frame f = {MARGIN_L,
                      MARGIN_T,
                      PAGE_W - MARGIN_L - MARGIN_R - CBAR_ROOM,
                      PAGE_H - MARGIN_T - MARGIN_B,
                      isnan(axes->xmin) ? cell_edge(map->x, map->nx, 0) : axes->xmin,
                      isnan(axes->xmax) ? cell_edge(map->x, map->nx, map->nx) : axes->xmax,
                      isnan(axes->ymin) ? cell_edge(map->y, map->ny, 0) : axes->ymin,
                      isnan(axes->ymax) ? cell_edge(map->y, map->ny, map->ny) : axes->ymax,
                      axes->xlog,
                      axes->ylog};
    if ((rc = check_range(f.xmin, f.xmax, f.xlog, "x")) ||
        (rc = check_range(f.ymin, f.ymax, f.ylog, "y")))
        return rc;

    struct ats_atomic *file;
    if ((rc = ats_atomic_open(&file, path)) != ATS_STATUS_OK)
        return rc;
    cairo_surface_t *surf = surface_create(file, k);
    cairo_t *cr = cairo_create(surf);
    struct cats xc = {map->x, map->xcats, map->nx, {0, 0, 0, 0}};
    struct cats yc = {map->y, map->ycats, map->ny, {0, 0, 0, 0}};
    if (map->ycats) {
        // Room for the row labels (font 12) between the axis label and the frame: a margin of
        // up to CAT_MARGIN, the labels shortened to fit it.
        cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL,
                               CAIRO_FONT_WEIGHT_NORMAL);
        cairo_set_font_size(cr, 12);
        cats_fit(cr, &yc, CAT_MARGIN - 40);
        f.x0 = fmin(fmax(MARGIN_L, ceil(cats_width(cr, &yc)) + 40), CAT_MARGIN);
        f.w = PAGE_W - f.x0 - MARGIN_R - CBAR_ROOM;
    }
    white_page(cr);
    cairo_save(cr);
    cairo_rectangle(cr, f.x0, f.y0, f.w, f.h);
    cairo_clip(cr);
    cairo_set_antialias(cr, CAIRO_ANTIALIAS_NONE); // no seams between cells
    for (int64_t iy = 0; iy < map->ny; iy++) {
        double ya = dev_y(&f, cell_edge(map->y, map->ny, iy));
        double yb = dev_y(&f, cell_edge(map->y, map->ny, iy + 1));
        for (int64_t ix = 0; ix < map->nx; ix++) {
            double xa = dev_x(&f, cell_edge(map->x, map->nx, ix));
            double xb = dev_x(&f, cell_edge(map->x, map->nx, ix + 1));
            double z = map->z[iy * map->nx + ix];
            if (isfinite(z)) {
                unsigned char rgb[3];
                map_colour(map, rgb, (z - zmin) / (zmax - zmin));
                cairo_set_source_rgb(cr, rgb[0] / 255.0, rgb[1] / 255.0, rgb[2] / 255.0);
            } else {
                cairo_set_source_rgb(cr, 0.6, 0.6, 0.6);
            }
            cairo_rectangle(cr, xa, yb, xb - xa, ya - yb);
            cairo_fill(cr);
        }
    }
    if (map->band) {
        // A white dot ringed in black at the centre of every finite cell outside the band.
        cairo_set_antialias(cr, CAIRO_ANTIALIAS_DEFAULT);
        cairo_set_line_width(cr, 1);
        for (int64_t iy = 0; iy < map->ny; iy++) {
            double ya = dev_y(&f, cell_edge(map->y, map->ny, iy));
            double yb = dev_y(&f, cell_edge(map->y, map->ny, iy + 1));
            for (int64_t ix = 0; ix < map->nx; ix++) {
                double z = map->z[iy * map->nx + ix];
                if (!isfinite(z) || (z >= map->band_lo && z <= map->band_hi))
                    continue;
                double xa = dev_x(&f, cell_edge(map->x, map->nx, ix));
                double xb = dev_x(&f, cell_edge(map->x, map->nx, ix + 1));
                double r = fmin(fmax(0.12 * fmin(fabs(xb - xa), fabs(ya - yb)), 1.5), 4);
                cairo_new_sub_path(cr);
                cairo_arc(cr, (xa + xb) / 2, (ya + yb) / 2, r, 0, 4 * PI_2);
                cairo_set_source_rgb(cr, 1, 1, 1);
                cairo_fill_preserve(cr);
                cairo_set_source_rgb(cr, 0, 0, 0);
                cairo_stroke(cr);
            }
        }
    }
    cairo_restore(cr);
    for (int64_t s = 0; s < noverlay; s++)
        draw_series(cr, &f, &overlay[s]);
    draw_frame(cr, &f, axes, map->xcats ? &xc : NULL, map->ycats ? &yc : NULL);

    // Colour bar: 256 bands from zmin (bottom) to zmax (top), with linear ticks (or the map's).
    double bx = f.x0 + f.w + CBAR_GAP;
    cairo_set_antialias(cr, CAIRO_ANTIALIAS_NONE);
    for (int i = 0; i < 256; i++) {
        unsigned char rgb[3];
        map_colour(map, rgb, (i + 0.5) / 256);
        cairo_set_source_rgb(cr, rgb[0] / 255.0, rgb[1] / 255.0, rgb[2] / 255.0);
        cairo_rectangle(cr, bx, f.y0 + f.h * (1 - (i + 1) / 256.0), CBAR_W, f.h / 256 + 0.5);
        cairo_fill(cr);
    }
    cairo_set_antialias(cr, CAIRO_ANTIALIAS_DEFAULT);
    struct frame bar = {bx, f.y0, CBAR_W, f.h, 0, 1, zmin, zmax, 0, 0};
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, bx, f.y0, CBAR_W, f.h);
    cairo_stroke(cr);
    if (map->band) {
        // The band: black lines across the bar at its ends, joined by a bracket on its left.
        double ylo = dev_y(&bar, fmin(fmax(map->band_lo, zmin), zmax));
        double yhi = dev_y(&bar, fmin(fmax(map->band_hi, zmin), zmax));
        cairo_set_line_width(cr, 1.5);
        cairo_move_to(cr, bx + CBAR_W, ylo);
        cairo_line_to(cr, bx - 6, ylo);
        cairo_line_to(cr, bx - 6, yhi);
        cairo_line_to(cr, bx + CBAR_W, yhi);
        cairo_stroke(cr);
        cairo_set_line_width(cr, 1);
    }
    cairo_set_font_size(cr, 12);
    double ticks[64], step;
    char buf[64];
    int n = map->zticks && map->zticklabels ? 0 : axis_ticks(ticks, 64, zmin, zmax, 0, &step);
    for (int i = 0; i < n; i++) {
        double y = dev_y(&bar, ticks[i]);
        cairo_move_to(cr, bx + CBAR_W, y);
        cairo_line_to(cr, bx + CBAR_W + 4, y);
        cairo_stroke(cr);
        format_tick(buf, sizeof buf, ticks[i], step);
        text_at(cr, bx + CBAR_W + 7, y, buf, 0, 0.5);
    }
    for (int64_t i = 0; map->zticks && map->zticklabels && i < map->nzticks; i++) {
        double t = map->zticks[i], eps = 1e-9 * (zmax - zmin);
        if (!(t >= zmin - eps && t <= zmax + eps))
            continue;
        double y = dev_y(&bar, t);
        cairo_move_to(cr, bx + CBAR_W, y);
        cairo_line_to(cr, bx + CBAR_W + 4, y);
        cairo_stroke(cr);
        if (map->zticklabels[i])
            text_at(cr, bx + CBAR_W + 7, y, map->zticklabels[i], 0, 0.5);
    }
    if (map->zlabel) {
        cairo_set_font_size(cr, 14);
        cairo_save(cr);
        cairo_translate(cr, PAGE_W - 16, f.y0 + f.h / 2);
        cairo_rotate(cr, -PI_2);
        text_at(cr, 0, 0, map->zlabel, 0.5, 0.5);
        cairo_restore(cr);
    }
    return surface_finish(surf, cr, path, k, file);
}
