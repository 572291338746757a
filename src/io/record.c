/*
 * record.c: struct ats_record, the flat key/value records every experiment yields (see
 * include/attnscale.h); written by ats_writer_record (writer.c).
 */
#include <string.h>

#include "core/internal.h"

void ats_record_clear(struct ats_record *r) {
    ATS_ASSERT(r);
    r->count = 0;
}

static struct ats_field *add(struct ats_record *r, const char *key, enum ats_field_type t) {
    ATS_ASSERT(r && key && r->count < ATS_RECORD_FIELDS);
    struct ats_field *f = &r->field[r->count++];
    memset(f, 0, sizeof *f);
    f->key = key;
    f->type = t;
    return f;
}

void ats_record_double(struct ats_record *r, const char *key, double v) {
    add(r, key, ATS_FIELD_DOUBLE)->d = v;
}

void ats_record_int(struct ats_record *r, const char *key, int64_t v) {
    add(r, key, ATS_FIELD_INT)->i = v;
}

void ats_record_string(struct ats_record *r, const char *key, const char *v) {
    ATS_ASSERT(v);
    add(r, key, ATS_FIELD_STRING)->s = v;
}

void ats_record_csv_format(struct ats_record *r, const char *fmt) {
    ATS_ASSERT(r && r->count > 0);
    r->field[r->count - 1].csv_format = fmt;
}

const struct ats_field *ats_record_find(const struct ats_record *r, const char *key) {
    ATS_ASSERT(r && key);
    for (int64_t i = 0; i < r->count; i++)
        if (strcmp(r->field[i].key, key) == 0)
            return &r->field[i];
    return NULL;
}
