/*
 * test_writer.c: JSON Lines and CSV writers. The JSON output is read back with cJSON (an
 * independent parser), doubles must round-trip exactly, and the CSV follows RFC 4180.
 * Run: make build/tests/test_writer && build/tests/test_writer
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attnscale.h"
#include "test.h"

// Runs fn(w) on a writer into a memory stream and returns the text (caller frees).
static char *capture(enum ats_format fmt, int (*fn)(struct ats_writer *), int *rc) {
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    struct ats_writer *w;
    *rc = ats_writer_alloc(&w, f, fmt);
    if (*rc == ATS_STATUS_OK)
        *rc = fn(w);
    ats_writer_free(w);
    fclose(f);
    return buf;
}

static const double values[] = {0.1, 1.0 / 3.0, 2.385e-300, 4.9406564584124654e-324,
                                1.7976931348623157e308, -0.0, 1e22, 123456789012345678.0};
enum { NVALUES = sizeof values / sizeof values[0] };

static int write_values(struct ats_writer *w) {
    int rc = ATS_STATUS_OK;
    for (int i = 0; i < NVALUES && rc == ATS_STATUS_OK; i++) {
        char key[16];
        snprintf(key, sizeof key, "v%d", i);
        rc = ats_writer_double(w, key, values[i]);
    }
    if (rc == ATS_STATUS_OK)
        rc = ats_writer_int(w, "n", 1000000000000LL);
    if (rc == ATS_STATUS_OK)
        rc = ats_writer_double(w, "inf", HUGE_VAL);
    if (rc == ATS_STATUS_OK)
        rc = ats_writer_double(w, "nan", NAN);
    if (rc == ATS_STATUS_OK)
        rc = ats_writer_string(w, "s", "quote \" back\\slash\nnewline,comma\ttab");
    if (rc == ATS_STATUS_OK)
        rc = ats_writer_end_record(w);
    return rc;
}

static int two_records_same(struct ats_writer *w) {
    ats_writer_int(w, "a", 1);
    ats_writer_string(w, "b", "x");
    int rc = ats_writer_end_record(w);
    ats_writer_int(w, "a", 2);
    ats_writer_string(w, "b", "y,z");
    return rc ? rc : ats_writer_end_record(w);
}

static int two_records_differ(struct ats_writer *w) {
    ats_writer_int(w, "a", 1);
    int rc = ats_writer_end_record(w);
    ats_writer_int(w, "b", 2);
    return rc ? rc : ats_writer_end_record(w);
}

static int declared_columns(struct ats_writer *w) {
    const char *cols[] = {"record", "a", "b", "c"};
    int rc = ats_writer_csv_columns(w, cols, 4);
    ats_writer_string(w, "record", "row");
    ats_writer_int(w, "a", 1);
    ats_writer_int(w, "b", 2);
    rc = rc ? rc : ats_writer_end_record(w);
    ats_writer_string(w, "record", "summary");
    ats_writer_double(w, "c", 0.5);
    rc = rc ? rc : ats_writer_end_record(w);
    ats_writer_string(w, "record", "bad");
    ats_writer_int(w, "z", 3);
    int bad = ats_writer_end_record(w);
    int late = ats_writer_csv_columns(w, cols, 4);
    return rc ? rc : bad == ATS_STATUS_EINVAL && late == ATS_STATUS_EINVAL ? 0 : -1;
}

int main(void) {
    int rc;
    char *json = capture(ATS_FORMAT_JSON, write_values, &rc);
    ATS_CHECK(rc == ATS_STATUS_OK, "JSON record written");
    ATS_CHECK(strchr(json, '\n') == json + strlen(json) - 1, "one JSON record is one line");
    cJSON *obj = cJSON_Parse(json);
    ATS_CHECK(obj && cJSON_IsObject(obj), "cJSON parses the record: %s", json);
    for (int i = 0; obj && i < NVALUES; i++) {
        char key[16];
        snprintf(key, sizeof key, "v%d", i);
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
        // The writer promises the shortest text that reads back to the same double; cJSON's
        // own number parser is strtod, so the value must be bit-identical.
        ATS_CHECK(cJSON_IsNumber(item) && item->valuedouble == values[i],
                  "double %.17g round-trips through JSON", values[i]);
    }
    if (obj) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(obj, "n");
        ATS_CHECK(cJSON_IsNumber(n) && n->valuedouble == 1e12, "int64 written exactly");
        ATS_CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(obj, "inf")), "inf is null");
        ATS_CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(obj, "nan")), "nan is null");
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(obj, "s");
        ATS_CHECK(cJSON_IsString(s) &&
                      strcmp(s->valuestring, "quote \" back\\slash\nnewline,comma\ttab") == 0,
                  "string escaped and read back");
    }
    ATS_CHECK(strstr(json, "\"v0\":0.1,") != NULL, "0.1 is written as 0.1 (shortest form)");
    cJSON_Delete(obj);
    free(json);

    char *csv = capture(ATS_FORMAT_CSV, write_values, &rc);
    ATS_CHECK(rc == ATS_STATUS_OK, "CSV record written");
    ATS_CHECK(strncmp(csv, "v0,v1,v2,v3,v4,v5,v6,v7,n,inf,nan,s\n", 36) == 0, "CSV header row");
    ATS_CHECK(strstr(csv, ",1000000000000,inf,nan,\"quote \"\" back\\slash\nnewline,comma\ttab\"\n") !=
                  NULL,
              "CSV: inf, nan, quoted string with doubled quote: %s", csv);
    free(csv);

    csv = capture(ATS_FORMAT_CSV, two_records_same, &rc);
    ATS_CHECK(rc == ATS_STATUS_OK && strcmp(csv, "a,b\n1,x\n2,\"y,z\"\n") == 0,
              "CSV: header once, then rows");
    free(csv);
    csv = capture(ATS_FORMAT_CSV, two_records_differ, &rc);
    ATS_CHECK(rc == ATS_STATUS_EINVAL && strcmp(csv, "a\n1\n") == 0,
              "CSV: a record with other columns is refused");
    free(csv);
    json = capture(ATS_FORMAT_JSON, two_records_differ, &rc);
    ATS_CHECK(rc == ATS_STATUS_OK && strcmp(json, "{\"a\":1}\n{\"b\":2}\n") == 0,
              "JSON records may differ in keys");
    free(json);

    csv = capture(ATS_FORMAT_CSV, declared_columns, &rc);
    ATS_CHECK(rc == ATS_STATUS_OK && strcmp(csv, "record,a,b,c\nrow,1,2,\nsummary,,,0.5\n") == 0,
              "CSV: declared columns, empty cells for missing keys, an unknown key refused "
              "without output, no declaration after the first record: %s",
              csv);
    free(csv);
    json = capture(ATS_FORMAT_JSON, declared_columns, &rc);
    const char *first = "{\"record\":\"row\",\"a\":1,\"b\":2}\n";
    ATS_CHECK(rc == -1 && strncmp(json, first, strlen(first)) == 0,
              "JSON ignores column declarations");
    free(json);

    // A write error on the stream is reported.
    FILE *full = fopen("/dev/full", "w");
    if (full) {
        setvbuf(full, NULL, _IONBF, 0);
        struct ats_writer *w;
        ats_writer_alloc(&w, full, ATS_FORMAT_JSON);
        ats_writer_int(w, "a", 1);
        ATS_CHECK(ats_writer_end_record(w) == ATS_STATUS_EIO, "write error gives EIO");
        ats_writer_free(w);
        fclose(full);
    }
    return ats_test_summary();
}
