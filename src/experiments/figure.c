/*
 * figure.c: figures as data (struct ats_figure, include/attnscale.h) with the arena that holds
 * what they point to (run.h), their tables, and ats_figure_draw / ats_figure_save.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "experiments/run.h"

struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    _Alignas(max_align_t) unsigned char data[];
};

#define ARENA_BLOCK (64 * 1024)

struct figure *figure_new(const char *name) {
    struct figure *g = ats_malloc(sizeof *g);
    if (!g)
        return NULL;
    memset(g, 0, sizeof *g);
    g->f.axes = ats_plot_axes_default();
    if (name && !(g->f.name = figure_printf(g, "%s", name))) {
        figure_free(g);
        return NULL;
    }
    return g;
}

void figure_free(struct figure *g) {
    if (!g)
        return;
    for (struct arena_block *b = g->arena, *next; b; b = next) {
        next = b->next;
        ats_free(b);
    }
    ats_free(g->rows);
    ats_free(g);
}

void *figure_alloc(struct figure *g, size_t bytes) {
    const size_t align = _Alignof(max_align_t);
    bytes = (bytes + align - 1) / align * align;
    struct arena_block *b = g->arena;
    if (!b || b->cap - b->used < bytes) {
        size_t cap = bytes > ARENA_BLOCK ? bytes : ARENA_BLOCK;
        b = ats_malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->cap = cap;
        b->used = 0;
        b->next = g->arena;
        g->arena = b;
    }
    void *p = b->data + b->used;
    b->used += bytes;
    memset(p, 0, bytes);
    return p;
}

char *figure_printf(struct figure *g, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (len < 0)
        return NULL;
    char *s = figure_alloc(g, (size_t)len + 1);
    if (!s)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)len + 1, fmt, ap);
    va_end(ap);
    return s;
}

int figure_add_row(struct figure *g, const struct ats_record *rec) {
    if (g->f.nrows == g->cap) {
        int64_t cap = g->cap ? 2 * g->cap : 64;
        struct ats_record *rows = ats_realloc_array(g->rows, (size_t)cap, sizeof *rows);
        if (!rows)
            ATS_ERROR(ATS_STATUS_ENOMEM, "no memory for a table of %lld rows", (long long)cap);
        g->rows = rows;
        g->cap = cap;
    }
    struct ats_record *r = &g->rows[g->f.nrows];
    r->count = rec->count;
    for (int64_t i = 0; i < rec->count; i++) {
        r->field[i] = rec->field[i];
        r->field[i].key = figure_printf(g, "%s", rec->field[i].key);
        if (rec->field[i].type == ATS_FIELD_STRING)
            r->field[i].s = figure_printf(g, "%s", rec->field[i].s);
        if (!r->field[i].key || (rec->field[i].type == ATS_FIELD_STRING && !r->field[i].s))
            ATS_ERROR(ATS_STATUS_ENOMEM, "no memory for a table row");
    }
    g->f.nrows++;
    g->f.rows = g->rows;
    return ATS_STATUS_OK;
}

int ats_figure_draw(const struct ats_figure *f, const char *path) {
    ATS_ASSERT(f && path);
    if (f->heatmap)
        return ats_plot_heatmap(path, &f->axes, &f->map, f->series, f->nseries);
    return ats_plot_lines(path, &f->axes, f->series, f->nseries);
}

// The figure's table as CSV into path.
static int write_table(const struct ats_figure *f, const char *path) {
    struct ats_atomic *out;
    int rc = ats_atomic_open(&out, path);
    if (rc != ATS_STATUS_OK)
        return rc;
    struct ats_writer *w = NULL;
    rc = ats_writer_alloc(&w, ats_atomic_stream(out), ATS_FORMAT_CSV);
    for (int64_t i = 0; rc == ATS_STATUS_OK && i < f->nrows; i++)
        rc = ats_writer_record(w, &f->rows[i]);
    ats_writer_free(w);
    if (rc != ATS_STATUS_OK) {
        ats_atomic_abort(out);
        return rc;
    }
    return ats_atomic_commit(out);
}

int ats_figure_plot(const struct ats_figure *f, const char *path) {
    ATS_ASSERT(f && path);
    int rc = ats_plot_check_path(path);
    if (rc != ATS_STATUS_OK)
        ATS_ERROR(rc, "'%s' must end in .png, .svg or .pdf", path);
    if ((rc = ats_figure_draw(f, path)) != ATS_STATUS_OK || f->nrows == 0)
        return rc;
    size_t len = strlen(path); // ends in .png, .svg or .pdf: the CSV swaps those 4 characters
    char *csv = ats_malloc(len + 1);
    if (!csv)
        ATS_ERROR(ATS_STATUS_ENOMEM, "out of memory");
    memcpy(csv, path, len - 4);
    memcpy(csv + len - 4, ".csv", 5);
    rc = write_table(f, csv);
    ats_free(csv);
    return rc;
}

int ats_figure_save(const struct ats_figure *f, const char *dir) {
    ATS_ASSERT(f && f->name && dir);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.csv", dir, f->name);
    int rc = write_table(f, path);
    if (rc != ATS_STATUS_OK)
        return rc;
    snprintf(path, sizeof path, "%s/%s.png", dir, f->name);
    rc = ats_figure_draw(f, path);
    if (rc != ATS_STATUS_OK)
        ATS_ERROR(rc, "drawing %s: %s", path, ats_last_error());
    return ATS_STATUS_OK;
}
