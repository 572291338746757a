/*
 * writer.c: JSON Lines and CSV record writers (DESIGN.md CLI contract).
 *
 * A record is built field by field into a buffer and written whole by end_record, so a CSV
 * header can be taken from the first record and every later record checked against it.
 * Doubles are printed in the shortest form that reads back to the same double (%.15g, then
 * %.16g, then %.17g). JSON has no infinities: non-finite values become null; CSV writes
 * inf, -inf and nan, which pandas and numpy read.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

struct field {
    char *key;
    char *text; // the value exactly as it appears in the output (quoted and escaped)
};

struct ats_writer {
    FILE *f;
    enum ats_format fmt;
    struct field *fields;
    int64_t nfields, cap;
    char **header;  // CSV: the keys of the first record
    int64_t nheader;
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

static void clear_fields(struct ats_writer *w) {
    for (int64_t i = 0; i < w->nfields; i++) {
        ats_free(w->fields[i].key);
        ats_free(w->fields[i].text);
    }
    w->nfields = 0;
}

void ats_writer_free(struct ats_writer *w) {
    if (!w)
        return;
    clear_fields(w);
    ats_free(w->fields);
    for (int64_t i = 0; i < w->nheader; i++)
        ats_free(w->header[i]);
    ats_free(w->header);
    ats_free(w);
}

static char *dup_string(const char *s) {
    size_t n = strlen(s) + 1;
    char *c = ats_malloc(n);
    if (c)
        memcpy(c, s, n);
    return c;
}

static int add_field_or_fail(struct ats_writer *w, const char *key, char *text);

// Takes ownership of text. A failure is also kept for end_record, so a caller may add all
// fields and check once.
static int add_field(struct ats_writer *w, const char *key, char *text) {
    int rc = add_field_or_fail(w, key, text);
    if (rc != ATS_STATUS_OK && w->status == ATS_STATUS_OK)
        w->status = rc;
    return rc;
}

static int add_field_or_fail(struct ats_writer *w, const char *key, char *text) {
    if (!text)
        ATS_ERROR(ATS_STATUS_ENOMEM, "no memory for field '%s'", key);
    if (w->nfields == w->cap) {
        int64_t ncap = w->cap ? 2 * w->cap : 16;
        struct field *nf = ats_realloc_array(w->fields, (size_t)ncap, sizeof *nf);
        if (!nf) {
            ats_free(text);
            ATS_ERROR(ATS_STATUS_ENOMEM, "no memory for field '%s'", key);
        }
        w->fields = nf;
        w->cap = ncap;
    }
    char *k = dup_string(key);
    if (!k) {
        ats_free(text);
        ATS_ERROR(ATS_STATUS_ENOMEM, "no memory for field '%s'", key);
    }
    w->fields[w->nfields++] = (struct field){k, text};
    return ATS_STATUS_OK;
}

static void format_double(char *buf, size_t size, double v) {
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
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
    return add_field(w, key, dup_string(buf));
}

int ats_writer_int(struct ats_writer *w, const char *key, int64_t v) {
    ATS_ASSERT(w && key);
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)v);
    return add_field(w, key, dup_string(buf));
}

// JSON string literal with quotes; control characters as \u00XX.
static char *json_quote(const char *s) {
    size_t n = strlen(s);
    char *out = ats_malloc_array(6 * n + 3, 1);
    if (!out)
        return NULL;
    char *o = out;
    *o++ = '"';
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') {
            *o++ = '\\';
            *o++ = (char)*c;
        } else if (*c == '\n') {
            *o++ = '\\';
            *o++ = 'n';
        } else if (*c < 0x20) {
            o += snprintf(o, 7, "\\u%04x", (unsigned)*c);
        } else {
            *o++ = (char)*c;
        }
    }
    *o++ = '"';
    *o = '\0';
    return out;
}

// CSV field (RFC 4180): quoted when it holds a comma, quote or line break; quotes doubled.
static char *csv_quote(const char *s) {
    if (!strpbrk(s, ",\"\r\n"))
        return dup_string(s);
    size_t n = strlen(s);
    char *out = ats_malloc_array(2 * n + 3, 1);
    if (!out)
        return NULL;
    char *o = out;
    *o++ = '"';
    for (const char *c = s; *c; c++) {
        if (*c == '"')
            *o++ = '"';
        *o++ = *c;
    }
    *o++ = '"';
    *o = '\0';
    return out;
}

int ats_writer_string(struct ats_writer *w, const char *key, const char *v) {
    ATS_ASSERT(w && key && v);
    return add_field(w, key, w->fmt == ATS_FORMAT_JSON ? json_quote(v) : csv_quote(v));
}

static int write_json(struct ats_writer *w) {
    fputc('{', w->f);
    for (int64_t i = 0; i < w->nfields; i++) {
        char *k = json_quote(w->fields[i].key);
        if (!k)
            ATS_ERROR(ATS_STATUS_ENOMEM, "no memory for a key");
        fprintf(w->f, "%s%s:%s", i ? "," : "", k, w->fields[i].text);
        ats_free(k);
    }
    fputs("}\n", w->f);
    return ATS_STATUS_OK;
}

static int write_csv(struct ats_writer *w) {
    if (w->records == 0) {
        w->header = ats_malloc_array((size_t)w->nfields, sizeof *w->header);
        if (!w->header)
            ATS_ERROR(ATS_STATUS_ENOMEM, "no memory for the CSV header");
        for (int64_t i = 0; i < w->nfields; i++) {
            char *k = csv_quote(w->fields[i].key);
            w->header[i] = dup_string(w->fields[i].key);
            if (!k || !w->header[i]) {
                ats_free(k);
                w->nheader = i + 1;
                ATS_ERROR(ATS_STATUS_ENOMEM, "no memory for the CSV header");
            }
            fprintf(w->f, "%s%s", i ? "," : "", k);
            ats_free(k);
        }
        w->nheader = w->nfields;
        fputc('\n', w->f);
    } else {
        int same = w->nfields == w->nheader;
        for (int64_t i = 0; same && i < w->nfields; i++)
            same = strcmp(w->fields[i].key, w->header[i]) == 0;
        if (!same)
            ATS_ERROR(ATS_STATUS_EINVAL, "CSV record %lld has other columns than the header",
                      (long long)w->records + 1);
    }
    for (int64_t i = 0; i < w->nfields; i++)
        fprintf(w->f, "%s%s", i ? "," : "", w->fields[i].text);
    fputc('\n', w->f);
    return ATS_STATUS_OK;
}

int ats_writer_end_record(struct ats_writer *w) {
    ATS_ASSERT(w);
    int rc = w->status;
    if (rc == ATS_STATUS_OK)
        rc = w->fmt == ATS_FORMAT_JSON ? write_json(w) : write_csv(w);
    clear_fields(w);
    w->status = ATS_STATUS_OK;
    if (rc != ATS_STATUS_OK)
        return rc;
    w->records++;
    if (ferror(w->f))
        ATS_ERROR(ATS_STATUS_EIO, "write error on the output stream");
    return ATS_STATUS_OK;
}
