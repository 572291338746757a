/*
 * safetensors.c: one named tensor of a safetensors file (huggingface/safetensors format).
 *
 * Layout: an 8-byte little-endian header size N, N bytes of UTF-8 JSON, then the data buffer.
 * The JSON is an object mapping each tensor name to
 *     {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}
 * (offsets in bytes, relative to the start of the data buffer, end exclusive), plus an
 * optional "__metadata__" object of strings. The JSON may be padded with spaces. Data is
 * little-endian, C order, and not necessarily aligned (the readers use byte loads).
 *
 * Checks on open: N no larger than the file and than the format's limit (100 MB, as the
 * reference implementation), valid JSON with nothing but whitespace after it, an object; the
 * requested tensor present once, with a dtype among F16, BF16, F32, F64 (another dtype is
 * ATS_STATUS_EUNSUP naming it), a shape of non-negative integers (none: a scalar, one row of
 * one column) and offsets inside the buffer spanning exactly prod(shape) * itemsize bytes.
 * Of the other tensors only the offsets are checked (a file may mix dtypes, and one tensor
 * is read at a time): the last end must be the end of the file, so that a truncated file, or
 * one with bytes appended, is refused whichever tensor is asked for.
 *
 * JSON is parsed with cJSON (libcjson-dev): link with -lcjson.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/internal.h"
#include "io/array.h"

// The reference implementation refuses headers above 100 MB (MAX_HEADER_SIZE).
#define ST_MAX_HEADER 100000000u

// JSON numbers are doubles: integers are exact up to 2^53.
#define ST_INT_MAX 9007199254740992.0

// Copies s into buf (size cap) for a message: at most max bytes, control characters as '?',
// "..." when cut (at a UTF-8 character boundary).
static void sanitize(char *buf, size_t cap, const char *s, size_t max) {
    ATS_ASSERT(cap > 4);
    size_t n = strlen(s);
    int cut = 0;
    if (n > max || n + 1 > cap) {
        n = max < cap - 4 ? max : cap - 4;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
        cut = 1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    if (cut) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
}

// A JSON number that is an integer in [0, 2^53].
static int json_count(const cJSON *v, int64_t *out) {
    if (!cJSON_IsNumber(v))
        return 0;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= ST_INT_MAX) || (double)(int64_t)d != d)
        return 0;
    *out = (int64_t)d;
    return 1;
}

// "a, b, c ... (and 12 more)": the tensors of root, for the not-found message.
static void list_names(char *buf, size_t cap, const cJSON *root) {
    size_t len = 0;
    int64_t shown = 0, total = 0;
    buf[0] = '\0';
    for (const cJSON *e = root->child; e; e = e->next) {
        if (!e->string || strcmp(e->string, "__metadata__") == 0)
            continue;
        total++;
        char name[72];
        sanitize(name, sizeof name, e->string, 64);
        size_t n = strlen(name) + (shown ? 2 : 0);
        if (len + n + 24 >= cap) // keep room for the count of the rest
            continue;
        snprintf(buf + len, cap - len, "%s%s", shown ? ", " : "", name);
        len += n;
        shown++;
    }
    if (total == 0)
        snprintf(buf, cap, "none");
    else if (shown < total)
        snprintf(buf + len, cap - len, " (and %" PRId64 " more)", total - shown);
}

static int st_dtype(const char *s, enum ats_dtype *t) {
    static const struct {
        const char *name;
        enum ats_dtype t;
    } known[] = {{"F16", ATS_DTYPE_F16},
                 {"BF16", ATS_DTYPE_BF16},
                 {"F32", ATS_DTYPE_F32},
                 {"F64", ATS_DTYPE_F64}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(s, known[i].name) == 0) {
            *t = known[i].t;
            return 1;
        }
    return 0;
}

// Validates tensor entry e of name (shown as nm) and fills a. buffer_len: bytes after the
// JSON header.
static int st_tensor(struct ats_array *a, const cJSON *e, const char *path, const char *nm,
                     size_t data_start, size_t buffer_len) {
    if (!cJSON_IsObject(e))
        ATS_ERROR(ATS_STATUS_EINVAL, "%.200s: the entry of tensor '%s' is not a JSON object", path,
                  nm);
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dtype) || !dtype->valuestring)
        ATS_ERROR(ATS_STATUS_EINVAL, "%.200s: tensor '%s' has no \"dtype\" string", path, nm);
    enum ats_dtype t;
    if (!st_dtype(dtype->valuestring, &t)) {
        char ds[40];
        sanitize(ds, sizeof ds, dtype->valuestring, 24);
        ATS_ERROR(ATS_STATUS_EUNSUP,
                  "%.200s: tensor '%s' has dtype %s, which is not supported "
                  "(F16, BF16, F32 and F64 are)",
                  path, nm, ds);
    }
    if (!cJSON_IsArray(shape))
        ATS_ERROR(ATS_STATUS_EINVAL, "%.200s: tensor '%s' has no \"shape\" array", path, nm);
    int64_t dims[ATS_ARRAY_MAX_NDIM];
    int ndim = 0;
    for (const cJSON *d = shape->child; d; d = d->next) {
        if (ndim == ATS_ARRAY_MAX_NDIM)
            ATS_ERROR(ATS_STATUS_EUNSUP, "%.200s: tensor '%s' has more than %d dimensions", path,
                      nm, ATS_ARRAY_MAX_NDIM);
        if (!json_count(d, &dims[ndim]))
            ATS_ERROR(ATS_STATUS_EINVAL,
                      "%.200s: tensor '%s': dimension %d of its shape is not "
                      "an integer in [0, 2^53]",
                      path, nm, ndim);
        ndim++;
    }
    int64_t off[2];
    if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2 ||
        !json_count(offsets->child, &off[0]) || !json_count(offsets->child->next, &off[1]))
        ATS_ERROR(ATS_STATUS_EINVAL,
                  "%.200s: tensor '%s' needs \"data_offsets\": [begin, end] "
                  "with integers in [0, 2^53]",
                  path, nm);
    if (off[0] > off[1] || (uint64_t)off[1] > buffer_len)
        ATS_ERROR(ATS_STATUS_EINVAL,
                  "%.200s: tensor '%s': data_offsets [%" PRId64 ", %" PRId64
                  "] fall outside the data buffer of %zu bytes (truncated file?)",
                  path, nm, off[0], off[1], buffer_len);
    int rc = ats_array_set_shape(a, dims, ndim, t, path);
    if (rc)
        return rc;
    if ((uint64_t)(off[1] - off[0]) != a->nbytes) {
        char s[128];
        ats_shape_format(s, sizeof s, dims, ndim);
        ATS_ERROR(ATS_STATUS_EINVAL,
                  "%.200s: tensor '%s': data_offsets [%" PRId64 ", %" PRId64 "] span %" PRId64
                  " bytes but shape %s of %s needs %zu",
                  path, nm, off[0], off[1], off[1] - off[0], s, dtype->valuestring, a->nbytes);
    }
    a->data_off = data_start + (size_t)off[0];
    a->big_endian = 0;
    return ATS_STATUS_OK;
}

static int st_find(struct ats_array *a, const cJSON *root, const char *path, const char *name,
                   size_t data_start, size_t buffer_len) {
    char nm[96];
    sanitize(nm, sizeof nm, name, 80);
    if (!cJSON_IsObject(root))
        ATS_ERROR(ATS_STATUS_EINVAL, "%.200s: the safetensors header is not a JSON object", path);
    if (strcmp(name, "__metadata__") == 0)
        ATS_ERROR(ATS_STATUS_EINVAL,
                  "%.200s: '__metadata__' is the file's metadata, not a "
                  "tensor",
                  path);
    const cJSON *found = NULL;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (!e->string || strcmp(e->string, name) != 0)
            continue;
        if (found)
            ATS_ERROR(ATS_STATUS_EINVAL, "%.200s: tensor '%s' appears twice in the header", path,
                      nm);
        found = e;
    }
    if (!found) {
        char names[240];
        list_names(names, sizeof names, root);
        ATS_ERROR(ATS_STATUS_EINVAL, "%.200s: no tensor '%s'; the file has: %s", path, nm, names);
    }
    int rc = st_tensor(a, found, path, nm, data_start, buffer_len);
    if (rc)
        return rc;
    // The tensors must fill the data buffer to its end, as the format requires (no holes):
    // a truncated file, or bytes appended to it, is an error even when the requested tensor
    // lies inside. Only the offsets of the other tensors are checked.
    int64_t last = 0;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (!e->string || strcmp(e->string, "__metadata__") == 0)
            continue;
        const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        int64_t off[2];
        if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2 ||
            !json_count(offsets->child, &off[0]) || !json_count(offsets->child->next, &off[1]) ||
            off[0] > off[1]) {
            char other[96];
            sanitize(other, sizeof other, e->string, 80);
            ATS_ERROR(ATS_STATUS_EINVAL,
                      "%.200s: tensor '%s' has no valid \"data_offsets\": "
                      "[begin, end]",
                      path, other);
        }
        if (off[1] > last)
            last = off[1];
    }
    if ((uint64_t)last > buffer_len)
        ATS_ERROR(ATS_STATUS_EINVAL,
                  "%.200s: truncated safetensors file: its tensors need %" PRId64
                  " bytes of data, the file has %zu",
                  path, last, buffer_len);
    if ((uint64_t)last < buffer_len)
        ATS_ERROR(ATS_STATUS_EINVAL, "%.200s: %zu unexpected bytes after the last tensor's data",
                  path, buffer_len - (size_t)last);
    return ATS_STATUS_OK;
}

int ats_safetensors_parse(struct ats_array *a, const char *path, const char *name) {
    ATS_ASSERT(a && a->map && path && name);
    const size_t len = ats_array_len(a);
    int rc = ats_array_need(a, len < 8 ? len : 8, path);
    if (rc != ATS_STATUS_OK)
        return rc;
    const unsigned char *m = a->map;
    if (len < 8)
        ATS_ERROR(ATS_STATUS_EINVAL,
                  "%.200s: truncated safetensors file (%zu bytes): the "
                  "8-byte header size is incomplete",
                  path, len);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | m[i];
    if (n > len - 8)
        ATS_ERROR(ATS_STATUS_EINVAL,
                  "%.200s: safetensors header size %" PRIu64 " runs past the "
                  "end of the file (%zu bytes): truncated or not a safetensors file",
                  path, n, len);
    if (n > ST_MAX_HEADER)
        ATS_ERROR(ATS_STATUS_EINVAL,
                  "%.200s: safetensors header size %" PRIu64 " exceeds the "
                  "format's limit of %u bytes",
                  path, n, ST_MAX_HEADER);
    if (n < 2)
        ATS_ERROR(ATS_STATUS_EINVAL,
                  "%.200s: safetensors header size %" PRIu64 " is too small "
                  "for a JSON object",
                  path, n);
    if ((rc = ats_array_need(a, 8 + (size_t)n, path)) != ATS_STATUS_OK)
        return rc;
    const char *json = (const char *)a->map + 8;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, (size_t)n, &end, 0);
    if (!root) {
        size_t at = end && end >= json && end <= json + n ? (size_t)(end - json) : 0;
        ATS_ERROR(ATS_STATUS_EINVAL,
                  "%.200s: the safetensors header is not valid JSON (error "
                  "near byte %zu of %" PRIu64 ")",
                  path, at, n);
    }
    // Only whitespace (the format pads with spaces) may follow the JSON value.
    while (end < json + n && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
        end++;
    if (end != json + n) {
        cJSON_Delete(root);
        ATS_ERROR(ATS_STATUS_EINVAL,
                  "%.200s: unexpected bytes after the JSON of the "
                  "safetensors header (at byte %zu of %" PRIu64 ")",
                  path, (size_t)(end - json), n);
    }
    rc = st_find(a, root, path, name, 8 + (size_t)n, len - 8 - (size_t)n);
    cJSON_Delete(root);
    return rc;
}

int ats_safetensors_open(struct ats_array **out, const char *path, const char *name) {
    ATS_ASSERT(out && path && name);
    *out = NULL;
    struct ats_array *a;
    int rc = ats_array_file(&a, path);
    if (rc)
        return rc;
    rc = ats_safetensors_parse(a, path, name);
    if (rc) {
        ats_array_close(a);
        return rc;
    }
    *out = a;
    return ATS_STATUS_OK;
}
