/*
 * writer.c: JSON Lines and CSV record writers (DESIGN.md CLI contract).
 *
 * A record is rendered field by field into a line buffer and written whole by end_record. CSV
 * columns are declared up front (ats_writer_csv_columns) or taken from the first record; every
 * record's keys must be columns, and a column a record lacks is left empty.
 * The keys of the record are kept apart ("k1\0k2\0...") for that check. Both buffers grow to
 * the size of one record and are reused, so writing costs no allocation per record.
 * Doubles are printed with the fewest of 15, 16 or 17 significant digits that read back to the
 * same double (not always the shortest: 5e-324 comes out as 4.94065645841247e-324). JSON has no infinities: non-finite values become null; CSV writes
 * inf, -inf and nan, which pandas and numpy read.
 */
#define __STDC_WANT_IEC_60559_BFP_EXT__ 1 // strfromd (ISO/IEC TS 18661-1, C23)
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

struct buf {
    char *p;
    size_t len, cap;
};

struct span {
    size_t off, len; // a field's rendered value inside line (CSV)
};

struct ats_writer {
    FILE *f;
    enum ats_format fmt;
    struct buf line;   // JSON: the record as it will be written, without the closing "}\n";
                       // CSV: the values one after another (spans say where)
    struct buf keys;   // this record's keys, each NUL-terminated
    struct buf header; // CSV: the columns (declared, or the first record's keys), the same way
    int header_done;   // CSV: the header row has been written
    struct span *spans;
    int64_t nspans_cap;
    int64_t nfields;
    int64_t records;
    int status; // first failure while building the record, returned by end_record
};

int ats_writer_alloc(struct ats_writer **w, FILE *f, enum ats_format fmt) {
    ATS_ASSERT(w && f);
    if (fmt != ATS_FORMAT_JSON && fmt != ATS_FORMAT_CSV)
        ATS_ERROR(ATS_STATUS_EINVAL, "unknown output format %d", (int)fmt);
    struct ats_writer *x = ats_malloc(sizeof *x);
    if (!x)
        ATS_ERROR(ATS_STATUS_ENOMEM, "no memory for a writer");
    memset(x, 0, sizeof *x);
    x->f = f;
    x->fmt = fmt;
    *w = x;
    return ATS_STATUS_OK;
}

void ats_writer_free(struct ats_writer *w) {
    if (!w)
        return;
    ats_free(w->line.p);
    ats_free(w->keys.p);
    ats_free(w->header.p);
    ats_free(w->spans);
    ats_free(w);
}

// Room for n more bytes.
static int reserve(struct buf *b, size_t n) {
    if (b->len + n <= b->cap)
        return ATS_STATUS_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n) {
        if (cap > SIZE_MAX / 2)
            ATS_ERROR(ATS_STATUS_ENOMEM, "record too large");
        cap *= 2;
    }
    char *p = ats_realloc_array(b->p, cap, 1);
    if (!p)
        ATS_ERROR(ATS_STATUS_ENOMEM, "no memory for a record of %zu bytes", cap);
    b->p = p;
    b->cap = cap;
    return ATS_STATUS_OK;
}

static void put(struct buf *b, const char *s, size_t n) {
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

// JSON string literal with quotes; control characters as \u00XX.
static int put_json_string(struct buf *b, const char *s) {
    int rc = reserve(b, 6 * strlen(s) + 2);
    if (rc != ATS_STATUS_OK)
        return rc;
    b->p[b->len++] = '"';
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') {
            b->p[b->len++] = '\\';
            b->p[b->len++] = (char)*c;
        } else if (*c == '\n') {
            put(b, "\\n", 2);
        } else if (*c < 0x20) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", (unsigned)*c);
            put(b, esc, 6);
        } else {
            b->p[b->len++] = (char)*c;
        }
    }
    b->p[b->len++] = '"';
    return ATS_STATUS_OK;
}

// CSV field (RFC 4180): quoted when it holds a comma, quote or line break; quotes doubled.
static int put_csv_string(struct buf *b, const char *s) {
    size_t n = strlen(s);
    int rc = reserve(b, 2 * n + 2);
    if (rc != ATS_STATUS_OK)
        return rc;
    if (!strpbrk(s, ",\"\r\n")) {
        put(b, s, n);
        return ATS_STATUS_OK;
    }
    b->p[b->len++] = '"';
    for (const char *c = s; *c; c++) {
        if (*c == '"')
            b->p[b->len++] = '"';
        b->p[b->len++] = *c;
    }
    b->p[b->len++] = '"';
    return ATS_STATUS_OK;
}

// Starts a field: separator and (JSON) the key; remembers the key. A failure is also kept
// for end_record, so a caller may add all fields and check once.
static int begin_field(struct ats_writer *w, const char *key) {
    size_t klen = strlen(key) + 1;
    int rc = reserve(&w->keys, klen);
    if (rc == ATS_STATUS_OK)
        rc = reserve(&w->line, 2);
    if (rc == ATS_STATUS_OK && w->fmt == ATS_FORMAT_CSV && w->nfields == w->nspans_cap) {
        int64_t cap = w->nspans_cap ? 2 * w->nspans_cap : 32;
        struct span *sp = ats_realloc_array(w->spans, (size_t)cap, sizeof *sp);
        if (!sp) {
            rc = ATS_STATUS_ENOMEM;
            ats_error(__FILE__, __LINE__, rc, "no memory for %lld fields", (long long)cap);
        } else {
            w->spans = sp;
            w->nspans_cap = cap;
        }
    }
    if (rc == ATS_STATUS_OK) {
        put(&w->keys, key, klen);
        if (w->fmt == ATS_FORMAT_JSON) {
            if (w->nfields > 0)
                w->line.p[w->line.len++] = ',';
            rc = put_json_string(&w->line, key);
            if (rc == ATS_STATUS_OK && (rc = reserve(&w->line, 1)) == ATS_STATUS_OK)
                w->line.p[w->line.len++] = ':';
        } else {
            w->spans[w->nfields] = (struct span){w->line.len, 0};
        }
    }
    w->nfields++;
    if (rc != ATS_STATUS_OK && w->status == ATS_STATUS_OK)
        w->status = rc;
    return rc;
}

static int finish_field(struct ats_writer *w, int rc) {
    if (rc == ATS_STATUS_OK && w->fmt == ATS_FORMAT_CSV) {
        struct span *sp = &w->spans[w->nfields - 1];
        sp->len = w->line.len - sp->off;
    }
    if (rc != ATS_STATUS_OK && w->status == ATS_STATUS_OK)
        w->status = rc;
    return rc;
}

static int put_text(struct ats_writer *w, const char *key, const char *text) {
    int rc = begin_field(w, key);
    if (rc != ATS_STATUS_OK)
        return rc;
    size_t n = strlen(text);
    rc = reserve(&w->line, n);
    if (rc == ATS_STATUS_OK)
        put(&w->line, text, n);
    return finish_field(w, rc);
}

// The shortest of %.15g, %.16g, %.17g that reads back exactly (%.17g always does).
// strfromd skips printf's format parsing, which costs as much as the conversion here.
static void format_double(char *buf, size_t size, double v) {
    strfromd(buf, size, "%.15g", v);
    if (strtod(buf, NULL) == v)
        return;
    strfromd(buf, size, "%.16g", v);
    if (strtod(buf, NULL) == v)
        return;
    strfromd(buf, size, "%.17g", v);
}

int ats_writer_double(struct ats_writer *w, const char *key, double v) {
    ATS_ASSERT(w && key);
    char buf[40];
    if (isfinite(v))
        format_double(buf, sizeof buf, v);
    else if (w->fmt == ATS_FORMAT_JSON)
        strcpy(buf, "null");
    else
        strcpy(buf, isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
    return put_text(w, key, buf);
}

int ats_writer_int(struct ats_writer *w, const char *key, int64_t v) {
    ATS_ASSERT(w && key);
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)v);
    return put_text(w, key, buf);
}

int ats_writer_string(struct ats_writer *w, const char *key, const char *v) {
    ATS_ASSERT(w && key && v);
    int rc = begin_field(w, key);
    if (rc != ATS_STATUS_OK)
        return rc;
    rc = w->fmt == ATS_FORMAT_JSON ? put_json_string(&w->line, v) : put_csv_string(&w->line, v);
    return finish_field(w, rc);
}

int ats_writer_csv_columns(struct ats_writer *w, const char *const *keys, int64_t count) {
    ATS_ASSERT(w && (keys || count == 0));
    if (w->fmt != ATS_FORMAT_CSV)
        return ATS_STATUS_OK;
    if (w->header_done || w->header.len)
        ATS_ERROR(ATS_STATUS_EINVAL, "CSV columns must be declared before the first record");
    for (int64_t i = 0; i < count; i++) {
        size_t klen = strlen(keys[i]) + 1;
        int rc = reserve(&w->header, klen);
        if (rc != ATS_STATUS_OK)
            return rc;
        put(&w->header, keys[i], klen);
    }
    return ATS_STATUS_OK;
}

// Writes the header row once: the declared columns, else the first record's keys.
static int csv_header(struct ats_writer *w) {
    if (w->header_done)
        return ATS_STATUS_OK;
    int rc;
    if (!w->header.len) {
        if ((rc = reserve(&w->header, w->keys.len)) != ATS_STATUS_OK)
            return rc;
        put(&w->header, w->keys.p, w->keys.len);
    }
    struct buf row = {0};
    rc = ATS_STATUS_OK;
    for (size_t off = 0; off < w->header.len && rc == ATS_STATUS_OK;
         off += strlen(w->header.p + off) + 1) {
        if (off > 0 && (rc = reserve(&row, 1)) == ATS_STATUS_OK)
            row.p[row.len++] = ',';
        if (rc == ATS_STATUS_OK)
            rc = put_csv_string(&row, w->header.p + off);
    }
    if (rc == ATS_STATUS_OK) {
        fwrite(row.p, 1, row.len, w->f);
        fputc('\n', w->f);
        w->header_done = 1;
    }
    ats_free(row.p);
    return rc;
}

// One CSV row: each column's value from the record, empty where the record lacks it (every
// key of the record is a column: csv_check ran first).
static void csv_row(struct ats_writer *w) {
    int64_t col = 0;
    for (size_t off = 0; off < w->header.len; off += strlen(w->header.p + off) + 1, col++) {
        if (col > 0)
            fputc(',', w->f);
        const char *name = w->header.p + off;
        size_t koff = 0;
        for (int64_t i = 0; i < w->nfields; i++, koff += strlen(w->keys.p + koff) + 1) {
            if (strcmp(w->keys.p + koff, name) == 0) {
                fwrite(w->line.p + w->spans[i].off, 1, w->spans[i].len, w->f);
                break;
            }
        }
    }
    fputc('\n', w->f);
}

// A CSV record's keys must all be columns; checked before anything of it is written.
static int csv_check(const struct ats_writer *w) {
    size_t koff = 0;
    for (int64_t i = 0; i < w->nfields; i++, koff += strlen(w->keys.p + koff) + 1) {
        int found = 0;
        for (size_t off = 0; off < w->header.len && !found; off += strlen(w->header.p + off) + 1)
            found = strcmp(w->keys.p + koff, w->header.p + off) == 0;
        if (!found)
            ATS_ERROR(ATS_STATUS_EINVAL, "CSV record %lld: '%s' is not a column",
                      (long long)w->records + 1, w->keys.p + koff);
    }
    return ATS_STATUS_OK;
}

int ats_writer_end_record(struct ats_writer *w) {
    ATS_ASSERT(w);
    int rc = w->status;
    if (rc == ATS_STATUS_OK && w->fmt == ATS_FORMAT_CSV) {
        rc = csv_header(w);
        if (rc == ATS_STATUS_OK)
            rc = csv_check(w);
        if (rc == ATS_STATUS_OK)
            csv_row(w);
    } else if (rc == ATS_STATUS_OK) {
        fputc('{', w->f);
        if (w->line.len)
            fwrite(w->line.p, 1, w->line.len, w->f);
        fputs("}\n", w->f);
    }
    w->line.len = 0;
    w->keys.len = 0;
    w->nfields = 0;
    w->status = ATS_STATUS_OK;
    if (rc != ATS_STATUS_OK)
        return rc;
    w->records++;
    if (ferror(w->f))
        ATS_ERROR(ATS_STATUS_EIO, "write error on the output stream");
    return ATS_STATUS_OK;
}

int ats_writer_record(struct ats_writer *w, const struct ats_record *r) {
    ATS_ASSERT(w && r);
    for (int64_t i = 0; i < r->count; i++) {
        const struct ats_field *f = &r->field[i];
        if (f->type == ATS_FIELD_STRING) {
            ats_writer_string(w, f->key, f->s);
        } else if (f->csv_format && w->fmt == ATS_FORMAT_CSV) {
            char buf[64];
            if (f->type == ATS_FIELD_INT)
                snprintf(buf, sizeof buf, f->csv_format, (long long)f->i);
            else
                snprintf(buf, sizeof buf, f->csv_format, f->d);
            put_text(w, f->key, buf);
        } else if (f->type == ATS_FIELD_INT) {
            ats_writer_int(w, f->key, f->i);
        } else {
            ats_writer_double(w, f->key, f->d);
        }
    }
    return ats_writer_end_record(w);
}
