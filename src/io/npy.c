/*
 * npy.c: NumPy .npy arrays (read and write), and the array object both file readers share.
 *
 * Format (numpy.lib.format, NEP 1): the magic "\x93NUMPY", major and minor version bytes,
 * the header length (2 bytes little-endian in version 1.0, 4 bytes in 2.0 and 3.0), then the
 * header: a Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 * padded with spaces and a final newline (3.0 only allows UTF-8 in it), then the data.
 *
 * Reading. The header is parsed strictly (only those three keys, each once; Python string,
 * bool and tuple syntax) but in any key order, with any spacing, a trailing comma, and
 * Python 2's "3L" integers. Accepted: float16, float32 and float64, little- ('<'), big- ('>')
 * or native-endian ('=', or no byte-order mark), C order. Decisions:
 *   - shape () is a scalar: ndim 0, one row of one column (NumPy saves np.float64(2.5) so);
 *   - the data must fill the rest of the file exactly: bytes after it are an error, since
 *     np.save writes none, and a second array saved into the same file would be silently
 *     ignored otherwise;
 *   - fortran_order True is rejected even where the layouts coincide (1-D), as NumPy never
 *     writes it there;
 *   - the 64-byte alignment of the header and its final newline are not required (NumPy
 *     before 1.14 aligned to 16); data is loaded with byte loads, so any alignment works.
 *
 * The file is read with pread, never mapped: its first bytes when it is opened (the header,
 * ats_array_need reading more when a header is longer), then each block of rows through a
 * bounded buffer, converted to double. A file larger than memory keeps a bounded resident set
 * (the page cache is the kernel's), and a file that another process truncates while it is
 * read gives ATS_STATUS_EIO "changed while being read" instead of a SIGBUS.
 *
 * float16 and bfloat16 are widened exactly by moving their bit fields into a double
 * (subnormals normalised, Inf and NaN payloads kept); float16 is written with round to
 * nearest even computed from the double's bits (no double rounding through float).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/internal.h"
#include "io/array.h"

// ----------------------------------------------------------------------------
// dtypes

const char *ats_dtype_name(enum ats_dtype t) {
    switch (t) {
    case ATS_DTYPE_F16:
        return "float16";
    case ATS_DTYPE_BF16:
        return "bfloat16";
    case ATS_DTYPE_F32:
        return "float32";
    case ATS_DTYPE_F64:
        return "float64";
    case ATS_DTYPE_BOOL:
        return "bool";
    }
    return "unknown dtype";
}

size_t ats_dtype_size(enum ats_dtype t) {
    switch (t) {
    case ATS_DTYPE_BOOL:
        return 1;
    case ATS_DTYPE_F16:
    case ATS_DTYPE_BF16:
        return 2;
    case ATS_DTYPE_F32:
        return 4;
    case ATS_DTYPE_F64:
        return 8;
    }
    return 0;
}

static int host_big_endian(void) {
    const uint16_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    return first == 0;
}

// ----------------------------------------------------------------------------
// Bit-exact conversions

// The value of a binary float with ebits exponent bits and mbits mantissa bits (float16: 5,
// 10; bfloat16: 8, 7), built directly as a double: same sign, exponent rebiased, mantissa
// shifted up. A subnormal m * 2^(1 - bias - mbits) is normalised: with p the top set bit of m,
// it is 2^(p + 1 - bias - mbits) * (1 + (m - 2^p) / 2^p). Inf stays Inf, NaN keeps its payload.
static double small_float_to_double(uint32_t bits, int ebits, int mbits) {
    const uint64_t emax = (UINT64_C(1) << ebits) - 1;
    const int64_t bias = ((int64_t)1 << (ebits - 1)) - 1;
    const uint64_t sign = (uint64_t)(bits >> (ebits + mbits)) & 1;
    const uint64_t e = (bits >> mbits) & emax;
    uint64_t m = bits & ((UINT64_C(1) << mbits) - 1);
    uint64_t out;
    if (e == emax) {
        out = (UINT64_C(0x7ff) << 52) | (m << (52 - mbits));
    } else if (e != 0) {
        out = ((uint64_t)((int64_t)e - bias + 1023) << 52) | (m << (52 - mbits));
    } else if (m == 0) {
        out = 0;
    } else {
        int p = 0;
        while ((m >> (p + 1)) != 0)
            p++;
        int64_t exponent = p + 1 - bias - mbits;
        m ^= UINT64_C(1) << p;
        out = ((uint64_t)(exponent + 1023) << 52) | (m << (52 - p));
    }
    out |= sign << 63;
    double d;
    memcpy(&d, &out, sizeof d);
    return d;
}

static double half_to_double(uint16_t h) {
    return small_float_to_double(h, 5, 10);
}

static double bf16_to_double(uint16_t b) {
    return small_float_to_double(b, 8, 7);
}

// Rounds x to the nearest float16, ties to even, from the double's bits (one rounding).
// |x| >= 65520 (halfway between the largest half, 65504, and 2^16) overflows to Inf; NaN stays
// NaN (quiet, with the top of its payload).
static uint16_t double_to_half(double x) {
    uint64_t b;
    memcpy(&b, &x, sizeof b);
    const uint16_t sign = (uint16_t)((b >> 48) & 0x8000);
    const int64_t e = (int64_t)((b >> 52) & 0x7ff);
    const uint64_t m = b & ((UINT64_C(1) << 52) - 1);
    if (e == 0x7ff)
        return (uint16_t)(sign | 0x7c00 | (m ? 0x200 | (m >> 42) : 0));
    if (e == 0)
        return sign; // zero or a double subnormal (< 2^-1022): rounds to zero
    const int64_t ue = e - 1023;
    if (ue > 15)
        return (uint16_t)(sign | 0x7c00);
    const uint64_t sig = m | (UINT64_C(1) << 52); // x = sig * 2^(ue - 52)
    // Keep the half's significand: 11 bits for a normal result (ue >= -14), fewer for a
    // subnormal one, whose unit is 2^-24.
    const int64_t shift = ue >= -14 ? 42 : 28 - ue;
    if (shift > 54)
        return sign; // x < 2^-25: below half the smallest subnormal
    const uint64_t q = sig >> shift;
    const uint64_t rem = sig & ((UINT64_C(1) << shift) - 1);
    const uint64_t halfway = UINT64_C(1) << (shift - 1);
    // Normal: exponent field ue + 15 and the 10 mantissa bits; subnormal: exponent field 0.
    // Rounding up may carry into the exponent (to the next binade, or to Inf = 0x7c00).
    uint64_t h = ue >= -14 ? ((uint64_t)(ue + 15) << 10) | (q & 0x3ff) : q;
    if (rem > halfway || (rem == halfway && (q & 1)))
        h++;
    return (uint16_t)(sign | h);
}

// ----------------------------------------------------------------------------
// Byte loads (any alignment, either byte order)

static uint16_t load16(const unsigned char *p, int be) {
    return be ? (uint16_t)((unsigned)p[0] << 8 | p[1]) : (uint16_t)((unsigned)p[1] << 8 | p[0]);
}

static uint32_t load32(const unsigned char *p, int be) {
    if (be)
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static uint64_t load64(const unsigned char *p, int be) {
    uint64_t hi = load32(be ? p : p + 4, be);
    uint64_t lo = load32(be ? p + 4 : p, be);
    return hi << 32 | lo;
}

// out: (n,) from n elements of type t at p.
static void convert(double *restrict out, const unsigned char *restrict p, size_t n,
                    enum ats_dtype t, int be) {
    switch (t) {
    case ATS_DTYPE_F16:
        for (size_t i = 0; i < n; i++)
            out[i] = half_to_double(load16(p + 2 * i, be));
        break;
    case ATS_DTYPE_BF16:
        for (size_t i = 0; i < n; i++)
            out[i] = bf16_to_double(load16(p + 2 * i, be));
        break;
    case ATS_DTYPE_F32:
        for (size_t i = 0; i < n; i++) {
            uint32_t u = load32(p + 4 * i, be);
            float f;
            memcpy(&f, &u, sizeof f);
            out[i] = f;
        }
        break;
    case ATS_DTYPE_F64:
        for (size_t i = 0; i < n; i++) {
            uint64_t u = load64(p + 8 * i, be);
            memcpy(&out[i], &u, sizeof u);
        }
        break;
    case ATS_DTYPE_BOOL:
        for (size_t i = 0; i < n; i++)
            out[i] = p[i] != 0;
        break;
    }
}

// ----------------------------------------------------------------------------
// The array object

// The first bytes of a file read when it is opened: every .npy header of a normal file and
// the size field of a safetensors header (ats_array_need reads what else a header needs).
enum { FILE_PREFIX = 4096 };

// Reads n bytes at off into buf: ATS_STATUS_EIO unless all of them came.
static int read_at(int fd, void *buf, size_t n, size_t off, const char *path) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int err = errno;
            ATS_ERROR(ATS_STATUS_EIO, "%.200s: read failed at byte %zu: %s", path, off + got,
                      strerror(err));
        }
        if (r == 0) {
            struct stat st;
            long long now = fstat(fd, &st) == 0 ? (long long)st.st_size : -1;
            ATS_ERROR(ATS_STATUS_EIO,
                      "%.200s changed while being read: %zu bytes expected at byte %zu, the "
                      "file now has %lld bytes",
                      path, n, off + got, now);
        }
        got += (size_t)r;
    }
    return ATS_STATUS_OK;
}

int ats_array_file(struct ats_array **out, const char *path) {
    ATS_ASSERT(out && path);
    // Non-blocking: opening a FIFO for reading does not wait for a writer.
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        int err = errno;
        ATS_ERROR(ATS_STATUS_EIO, "%.200s: cannot open: %s", path, strerror(err));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int err = errno;
        close(fd);
        ATS_ERROR(ATS_STATUS_EIO, "%.200s: cannot stat: %s", path, strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        ATS_ERROR(ATS_STATUS_EIO, "%.200s: not a regular file (%s)", path,
                  S_ISDIR(st.st_mode)    ? "a directory"
                  : S_ISFIFO(st.st_mode) ? "a FIFO"
                  : S_ISCHR(st.st_mode)  ? "a character device"
                  : S_ISBLK(st.st_mode)  ? "a block device"
                  : S_ISSOCK(st.st_mode) ? "a socket"
                                         : "not a file");
    }
    if (st.st_size <= 0) {
        close(fd);
        ATS_ERROR(ATS_STATUS_EINVAL, "%.200s: empty file", path);
    }
    if ((uintmax_t)st.st_size > SIZE_MAX) {
        close(fd);
        ATS_ERROR(ATS_STATUS_EIO, "%.200s: too large (%jd bytes)", path, (intmax_t)st.st_size);
    }
    size_t len = (size_t)st.st_size, first = len < FILE_PREFIX ? len : FILE_PREFIX;
    struct ats_array *a = ats_malloc(sizeof *a);
    unsigned char *head = ats_malloc(first);
    char *name = ats_malloc(strlen(path) + 1);
    int rc = a && head && name ? read_at(fd, head, first, 0, path) : ATS_STATUS_ENOMEM;
    if (rc != ATS_STATUS_OK) {
        ats_free(a);
        ats_free(head);
        ats_free(name);
        close(fd);
        if (rc == ATS_STATUS_ENOMEM)
            ATS_ERROR(rc, "no memory for an array object");
        return rc;
    }
    memset(a, 0, sizeof *a);
    a->path = strcpy(name, path);
    a->map = head;
    a->map_len = first;
    a->file = 1;
    a->fd = fd;
    a->file_len = len;
    *out = a;
    return ATS_STATUS_OK;
}

size_t ats_array_len(const struct ats_array *a) { return a->file ? a->file_len : a->map_len; }

int ats_array_need(struct ats_array *a, size_t n, const char *path) {
    ATS_ASSERT(a && n <= ats_array_len(a));
    if (n <= a->map_len)
        return ATS_STATUS_OK;
    unsigned char *m = ats_realloc_array((void *)(uintptr_t)a->map, n, 1);
    if (!m)
        ATS_ERROR(ATS_STATUS_ENOMEM, "%.200s: no memory for a header of %zu bytes", path, n);
    a->map = m;
    int rc = read_at(a->fd, m + a->map_len, n - a->map_len, a->map_len, path);
    if (rc == ATS_STATUS_OK)
        a->map_len = n;
    return rc;
}

void ats_shape_format(char *buf, size_t cap, const int64_t *shape, int ndim) {
    if (cap == 0)
        return;
    char full[ATS_ARRAY_MAX_NDIM * 24 + 8];
    size_t len = 0;
    full[len++] = '(';
    for (int i = 0; i < ndim && i < ATS_ARRAY_MAX_NDIM; i++)
        len +=
            (size_t)snprintf(full + len, sizeof full - len, "%s%" PRId64, i ? ", " : "", shape[i]);
    snprintf(full + len, sizeof full - len, ndim == 1 ? ",)" : ")");
    len = strlen(full);
    if (len < cap) {
        memcpy(buf, full, len + 1);
    } else if (cap >= 5) {
        memcpy(buf, full, cap - 5);
        memcpy(buf + cap - 5, "...)", 5);
    } else {
        buf[0] = '\0';
    }
}

int ats_array_set_shape(struct ats_array *a, const int64_t *shape, int ndim, enum ats_dtype t,
                        const char *path) {
    ATS_ASSERT(a && (shape || ndim == 0) && ndim >= 0 && ndim <= ATS_ARRAY_MAX_NDIM);
    const size_t itemsize = ats_dtype_size(t);
    // count: the product of the non-zero dimensions, so that a zero anywhere cannot hide an
    // overflow of the others (rows is a partial product of them).
    int64_t count = 1;
    int empty = 0;
    const int64_t limit = (int64_t)(SIZE_MAX < INT64_MAX ? SIZE_MAX : INT64_MAX);
    for (int i = 0; i < ndim; i++) {
        ATS_ASSERT(shape[i] >= 0);
        if (shape[i] == 0) {
            empty = 1;
        } else if (count > limit / shape[i] || count * shape[i] > limit / (int64_t)itemsize) {
            char s[128];
            ats_shape_format(s, sizeof s, shape, ndim);
            ATS_ERROR(ATS_STATUS_EINVAL,
                      "%.200s: shape %s of %s is too large (its byte count "
                      "overflows)",
                      path, s, ats_dtype_name(t));
        } else {
            count *= shape[i];
        }
    }
    a->dtype = t;
    a->itemsize = itemsize;
    a->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        a->shape[i] = shape[i];
    a->rows = 1;
    for (int i = 0; i + 1 < ndim; i++)
        a->rows *= shape[i]; // <= count, or 0
    a->cols = ndim > 0 ? shape[ndim - 1] : 1;
    a->nbytes = empty ? 0 : (size_t)count * itemsize;
    return ATS_STATUS_OK;
}

int ats_array_wrap(struct ats_array **out, const void *data, enum ats_dtype t,
                   const int64_t *shape, int ndim) {
    ATS_ASSERT(out && (data || ndim > 0) && (shape || ndim == 0));
    if (ndim < 0 || ndim > ATS_ARRAY_MAX_NDIM)
        ATS_ERROR(ATS_STATUS_EINVAL, "an array of %d dimensions (0 to %d are accepted)", ndim,
                  ATS_ARRAY_MAX_NDIM);
    if ((int)t < 0 || t > ATS_DTYPE_BOOL)
        ATS_ERROR(ATS_STATUS_EINVAL, "unknown dtype %d", (int)t);
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0)
            ATS_ERROR(ATS_STATUS_EINVAL, "axis %d has length %lld", i, (long long)shape[i]);
    struct ats_array *a = ats_malloc(sizeof *a);
    if (!a)
        ATS_ERROR(ATS_STATUS_ENOMEM, "no memory for an array handle");
    memset(a, 0, sizeof *a);
    int rc = ats_array_set_shape(a, shape, ndim, t, "the in-memory array");
    if (rc != ATS_STATUS_OK) {
        ats_free(a);
        return rc;
    }
    a->map = data;
    a->map_len = a->nbytes;
    a->big_endian = host_big_endian();
    *out = a;
    return ATS_STATUS_OK;
}

void ats_array_close(struct ats_array *a) {
    if (!a)
        return;
    if (a->file) {
        close(a->fd);
        ats_free((void *)(uintptr_t)a->map);
        ats_free(a->path);
    }
    ats_free(a);
}

int ats_array_ndim(const struct ats_array *a) {
    ATS_ASSERT(a);
    return a->ndim;
}

int64_t ats_array_dim(const struct ats_array *a, int axis) {
    ATS_ASSERT(a && axis >= 0);
    if (axis < 0 || axis >= a->ndim)
        return 1;
    return a->shape[axis];
}

enum ats_dtype ats_array_dtype(const struct ats_array *a) {
    ATS_ASSERT(a);
    return a->dtype;
}

int64_t ats_array_rows(const struct ats_array *a) {
    ATS_ASSERT(a);
    return a->rows;
}

int64_t ats_array_cols(const struct ats_array *a) {
    ATS_ASSERT(a);
    return a->cols;
}

// Bytes of a file read and converted at a time (64 KiB: a pread amortises its call, and the
// buffer fits on any thread's stack).
enum { READ_CHUNK = 1 << 16 };

int ats_array_read_rows(double *out, const struct ats_array *a, int64_t row0, int64_t nrows) {
    ATS_ASSERT(a);
    if (row0 < 0 || nrows < 0 || row0 > a->rows || nrows > a->rows - row0)
        ATS_ERROR(ATS_STATUS_EDOM,
                  "row0 = %" PRId64 ", nrows = %" PRId64 ": rows outside the array's %" PRId64
                  " rows",
                  row0, nrows, a->rows);
    if (nrows == 0 || a->cols == 0)
        return ATS_STATUS_OK;
    ATS_ASSERT(out);
    // In range, so every product below is at most nbytes.
    const size_t row_bytes = (size_t)a->cols * a->itemsize;
    const size_t begin = a->data_off + (size_t)row0 * row_bytes;
    const size_t n = (size_t)nrows * (size_t)a->cols;
    if (!a->file) {
        convert(out, a->map + begin, n, a->dtype, a->big_endian);
        return ATS_STATUS_OK;
    }
    // Whole elements a chunk at a time through a buffer on the stack (no allocation per read,
    // which an allocator's quarantine under AddressSanitizer would pile up).
    unsigned char buf[READ_CHUNK];
    const size_t per = READ_CHUNK / a->itemsize;
    int rc = ATS_STATUS_OK;
    for (size_t done = 0; done < n && rc == ATS_STATUS_OK; done += per) {
        size_t k = n - done < per ? n - done : per;
        rc = read_at(a->fd, buf, k * a->itemsize, begin + done * a->itemsize, a->path);
        if (rc == ATS_STATUS_OK)
            convert(out + done, buf, k, a->dtype, a->big_endian);
    }
    return rc;
}

// ----------------------------------------------------------------------------
// .npy header parser

struct npy_parser {
    const unsigned char *p, *begin, *end; // the header text
    const char *path;
    // what was found
    int have_descr, have_fortran, have_shape;
    const unsigned char *descr;
    size_t descr_len;
    int fortran;
    int ndim;
    int64_t shape[ATS_ARRAY_MAX_NDIM];
};

static void skip_space(struct npy_parser *x) {
    while (x->p < x->end && (*x->p == ' ' || *x->p == '\t' || *x->p == '\n' || *x->p == '\r'))
        x->p++;
}

static int peek(const struct npy_parser *x) {
    return x->p < x->end ? *x->p : -1;
}

static size_t where(const struct npy_parser *x) {
    return (size_t)(x->p - x->begin);
}

// A short printable view of the header at the cursor, for messages.
static void excerpt(char *buf, size_t cap, const struct npy_parser *x) {
    size_t n = 0;
    for (const unsigned char *q = x->p; q < x->end && n + 1 < cap && n < 16; q++)
        buf[n++] = (*q >= 0x20 && *q < 0x7f && *q != '\'') ? (char)*q : '?';
    buf[n] = '\0';
}

// s[0, n) for a message: at most cap - 1 bytes, "..." when cut, bytes outside printable ASCII
// as '?'.
static void printable(char *buf, size_t cap, const unsigned char *s, size_t n) {
    size_t m = n < cap - 1 ? n : cap - 4;
    for (size_t i = 0; i < m; i++)
        buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? (char)s[i] : '?';
    if (m < n) {
        memcpy(buf + m, "...", 3);
        m += 3;
    }
    buf[m] = '\0';
}

// Reports a syntax error at the cursor and returns ATS_STATUS_EINVAL.
static int npy_syntax(const struct npy_parser *x, const char *what) {
    char ex[20];
    excerpt(ex, sizeof ex, x);
    if (x->p < x->end)
        ATS_ERROR(ATS_STATUS_EINVAL, "%.200s: malformed .npy header: %s at byte %zu ('%s')",
                  x->path, what, where(x), ex);
    ATS_ERROR(ATS_STATUS_EINVAL, "%.200s: malformed .npy header: %s at its end (byte %zu)", x->path,
              what, where(x));
}

// A Python string literal in single or double quotes, without escapes.
static int parse_string(struct npy_parser *x, const unsigned char **s, size_t *len) {
    int q = peek(x);
    if (q != '\'' && q != '"')
        return npy_syntax(x, "expected a quoted string");
    x->p++;
    const unsigned char *start = x->p;
    while (x->p < x->end && *x->p != q) {
        if (*x->p < 0x20 || *x->p == 0x7f || *x->p == '\\')
            return npy_syntax(x, "control character or escape in a string");
        x->p++;
    }
    if (x->p >= x->end)
        return npy_syntax(x, "unterminated string");
    *s = start;
    *len = (size_t)(x->p - start);
    x->p++;
    return ATS_STATUS_OK;
}

static int parse_bool(struct npy_parser *x, int *v) {
    const unsigned char *start = x->p;
    while (x->p < x->end && ((*x->p >= 'A' && *x->p <= 'Z') || (*x->p >= 'a' && *x->p <= 'z')))
        x->p++;
    size_t n = (size_t)(x->p - start);
    if (n == 4 && memcmp(start, "True", 4) == 0) {
        *v = 1;
        return ATS_STATUS_OK;
    }
    if (n == 5 && memcmp(start, "False", 5) == 0) {
        *v = 0;
        return ATS_STATUS_OK;
    }
    x->p = start;
    return npy_syntax(x, "fortran_order must be True or False");
}

// A non-negative Python int (Python 2's long suffix L allowed).
static int parse_dim(struct npy_parser *x, int64_t *v) {
    if (peek(x) < '0' || peek(x) > '9')
        return npy_syntax(x, "expected a non-negative integer dimension");
    int64_t d = 0;
    while (x->p < x->end && *x->p >= '0' && *x->p <= '9') {
        int digit = *x->p - '0';
        if (d > (INT64_MAX - digit) / 10)
            return npy_syntax(x, "dimension does not fit in 64 bits");
        d = d * 10 + digit;
        x->p++;
    }
    if (peek(x) == 'L' || peek(x) == 'l')
        x->p++;
    *v = d;
    return ATS_STATUS_OK;
}

// A Python tuple of ints: "()", "(5,)", "(2, 3)", "(2, 3,)"; "(5)" is an int, not a tuple.
static int parse_shape(struct npy_parser *x) {
    if (peek(x) != '(')
        return npy_syntax(x, "shape must be a tuple");
    x->p++;
    skip_space(x);
    x->ndim = 0;
    int comma = 0; // the last dimension was followed by a comma
    while (peek(x) != ')') {
        if (x->ndim == ATS_ARRAY_MAX_NDIM)
            ATS_ERROR(ATS_STATUS_EUNSUP, "%.200s: more than %d dimensions", x->path,
                      ATS_ARRAY_MAX_NDIM);
        int rc = parse_dim(x, &x->shape[x->ndim]);
        if (rc)
            return rc;
        x->ndim++;
        skip_space(x);
        comma = 0;
        if (peek(x) == ',') {
            comma = 1;
            x->p++;
            skip_space(x);
        } else if (peek(x) != ')') {
            return npy_syntax(x, "expected ',' or ')' in the shape");
        }
    }
    if (x->ndim == 1 && !comma)
        return npy_syntax(x, "a 1-D shape needs a trailing comma, as in (5,)");
    x->p++;
    return ATS_STATUS_OK;
}

static int parse_dict(struct npy_parser *x) {
    skip_space(x);
    if (peek(x) != '{')
        return npy_syntax(x, "the header is not a Python dict");
    x->p++;
    for (;;) {
        skip_space(x);
        if (peek(x) == '}')
            break;
        const unsigned char *key;
        size_t key_len;
        int rc = parse_string(x, &key, &key_len);
        if (rc)
            return rc;
        skip_space(x);
        if (peek(x) != ':')
            return npy_syntax(x, "expected ':' after a key");
        x->p++;
        skip_space(x);
        int *seen = NULL;
        if (key_len == 5 && memcmp(key, "descr", 5) == 0)
            seen = &x->have_descr;
        else if (key_len == 13 && memcmp(key, "fortran_order", 13) == 0)
            seen = &x->have_fortran;
        else if (key_len == 5 && memcmp(key, "shape", 5) == 0)
            seen = &x->have_shape;
        char k[36];
        printable(k, sizeof k, key, key_len);
        if (!seen || *seen)
            ATS_ERROR(ATS_STATUS_EINVAL,
                      "%.200s: malformed .npy header: %s key '%s' (the "
                      "keys are 'descr', 'fortran_order' and 'shape', once each)",
                      x->path, seen ? "repeated" : "unexpected", k);
        if (seen == &x->have_descr) {
            if (peek(x) == '[')
                ATS_ERROR(ATS_STATUS_EUNSUP,
                          "%.200s: structured (record) dtypes are not "
                          "supported, only float16, float32 and float64",
                          x->path);
            rc = parse_string(x, &x->descr, &x->descr_len);
        } else if (seen == &x->have_fortran) {
            rc = parse_bool(x, &x->fortran);
        } else {
            rc = parse_shape(x);
        }
        if (rc)
            return rc;
        *seen = 1;
        skip_space(x);
        if (peek(x) == ',')
            x->p++;
        else if (peek(x) != '}')
            return npy_syntax(x, "expected ',' or '}' after a value");
    }
    x->p++;
    skip_space(x);
    if (x->p != x->end)
        return npy_syntax(x, "text after the closing '}'");
    if (!x->have_descr || !x->have_fortran || !x->have_shape)
        ATS_ERROR(ATS_STATUS_EINVAL, "%.200s: malformed .npy header: missing '%s'", x->path,
                  !x->have_descr     ? "descr"
                  : !x->have_fortran ? "fortran_order"
                                     : "shape");
    return ATS_STATUS_OK;
}

// Interprets descr ("<f4"): byte order, kind, item size. Supported: floats of 2, 4, 8 bytes
// and 1-byte bools (which only ats_npy_open_mask accepts).
static int parse_descr(struct npy_parser *x, enum ats_dtype *t, int *big_endian) {
    const unsigned char *s = x->descr;
    const size_t n = x->descr_len;
    char d[28];
    printable(d, sizeof d, s, n);
    size_t i = 0;
    char order = '=';
    if (i < n && (s[i] == '<' || s[i] == '>' || s[i] == '=' || s[i] == '|'))
        order = (char)s[i++];
    if (i >= n || !((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
        ATS_ERROR(ATS_STATUS_EINVAL,
                  "%.200s: malformed .npy header: descr '%s' is not a "
                  "dtype string such as '<f4'",
                  x->path, d);
    const char kind = (char)s[i++];
    long size = -1;
    if (i < n && s[i] >= '0' && s[i] <= '9') {
        size = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9' && size < 100000000)
            size = size * 10 + (s[i++] - '0');
    }
    if (i < n && s[i] == '[' && (kind == 'M' || kind == 'm')) { // datetime unit: [ns]
        while (i < n && s[i] != ']')
            i++;
        i = i < n ? i + 1 : n + 1; // past ']', or malformed without one
    }
    if (i != n || (size < 0 && kind != 'O'))
        ATS_ERROR(ATS_STATUS_EINVAL,
                  "%.200s: malformed .npy header: descr '%s' is not a "
                  "dtype string such as '<f4'",
                  x->path, d);
    if (kind == 'O')
        ATS_ERROR(ATS_STATUS_EINVAL,
                  "%.200s: object arrays (descr '%s') hold pickled Python "
                  "objects and cannot be read",
                  x->path, d);
    const int numeric = kind == 'f' || kind == 'i' || kind == 'u' || kind == 'c' || kind == 'b';
    if (order == '|' && numeric && size > 1)
        ATS_ERROR(ATS_STATUS_EINVAL,
                  "%.200s: malformed .npy header: descr '%s': byte order "
                  "'|' (not applicable) is only valid for 1-byte types",
                  x->path, d);
    if (kind == 'f' && (size == 2 || size == 4 || size == 8)) {
        *t = size == 2 ? ATS_DTYPE_F16 : size == 4 ? ATS_DTYPE_F32 : ATS_DTYPE_F64;
        *big_endian = order == '>' || (order == '=' && host_big_endian());
        return ATS_STATUS_OK;
    }
    if (kind == 'b' && size == 1) {
        *t = ATS_DTYPE_BOOL;
        *big_endian = 0;
        return ATS_STATUS_OK;
    }
    char name[48];
    switch (kind) {
    case 'f':
        snprintf(name, sizeof name, "float%ld", size * 8);
        break;
    case 'i':
        snprintf(name, sizeof name, "int%ld", size * 8);
        break;
    case 'u':
        snprintf(name, sizeof name, "uint%ld", size * 8);
        break;
    case 'c':
        snprintf(name, sizeof name, "complex%ld", size * 8);
        break;
    case 'b':
        snprintf(name, sizeof name, size == 1 ? "bool" : "bool of %ld bytes", size);
        break;
    case 'S':
    case 'a':
        snprintf(name, sizeof name, "bytes");
        break;
    case 'U':
        snprintf(name, sizeof name, "str");
        break;
    case 'V':
        snprintf(name, sizeof name, "void");
        break;
    case 'M':
        snprintf(name, sizeof name, "datetime64");
        break;
    case 'm':
        snprintf(name, sizeof name, "timedelta64");
        break;
    default:
        snprintf(name, sizeof name, "unknown kind '%c'", kind);
        break;
    }
    ATS_ERROR(ATS_STATUS_EUNSUP,
              "%.200s: dtype %s (descr '%s') is not supported: only "
              "float16, float32 and float64 can be read",
              x->path, name, d);
}

int ats_npy_parse(struct ats_array *a, const char *path) {
    ATS_ASSERT(a && a->map && path);
    const size_t len = ats_array_len(a);
    int rc = ats_array_need(a, len < 12 ? len : 12, path);
    if (rc != ATS_STATUS_OK)
        return rc;
    const unsigned char *m = a->map;
    static const unsigned char magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
    if (memcmp(m, magic, len < 6 ? len : 6) != 0)
        ATS_ERROR(ATS_STATUS_EINVAL,
                  "%.200s: not a .npy file (it does not start with "
                  "\\x93NUMPY)",
                  path);
    if (len < 8)
        ATS_ERROR(ATS_STATUS_EINVAL, "%.200s: truncated .npy file (%zu bytes): no version", path,
                  len);
    const unsigned major = m[6], minor = m[7];
    if ((major != 1 && major != 2 && major != 3) || minor != 0)
        ATS_ERROR(ATS_STATUS_EUNSUP,
                  "%.200s: .npy format version %u.%u is not supported "
                  "(1.0, 2.0 and 3.0 are)",
                  path, major, minor);
    const size_t len_bytes = major == 1 ? 2 : 4;
    if (len < 8 + len_bytes)
        ATS_ERROR(ATS_STATUS_EINVAL,
                  "%.200s: truncated .npy file (%zu bytes): no header "
                  "length",
                  path, len);
    const size_t header_len = major == 1 ? load16(m + 8, 0) : load32(m + 8, 0);
    const size_t header_off = 8 + len_bytes;
    if (header_len > len - header_off)
        ATS_ERROR(ATS_STATUS_EINVAL,
                  "%.200s: the .npy header length %zu runs past the end of "
                  "the file (%zu bytes): truncated or corrupt",
                  path, header_len, len);

    if ((rc = ats_array_need(a, header_off + header_len, path)) != ATS_STATUS_OK)
        return rc;
    m = a->map;
    struct npy_parser x;
    memset(&x, 0, sizeof x);
    x.begin = x.p = m + header_off;
    x.end = x.begin + header_len;
    x.path = path;
    rc = parse_dict(&x);
    if (rc)
        return rc;
    enum ats_dtype t;
    int big_endian;
    rc = parse_descr(&x, &t, &big_endian);
    if (rc)
        return rc;
    if (x.fortran)
        ATS_ERROR(ATS_STATUS_EINVAL,
                  "%.200s: Fortran order not supported (save a C-order "
                  "array: np.save(path, np.ascontiguousarray(x)))",
                  path);
    rc = ats_array_set_shape(a, x.shape, x.ndim, t, path);
    if (rc)
        return rc;
    a->big_endian = big_endian;
    a->data_off = header_off + header_len;
    const size_t have = len - a->data_off;
    if (have != a->nbytes) {
        char s[128];
        ats_shape_format(s, sizeof s, x.shape, x.ndim);
        if (have < a->nbytes)
            ATS_ERROR(ATS_STATUS_EINVAL,
                      "%.200s: truncated .npy file: shape %s of %s needs "
                      "%zu bytes of data, the file has %zu",
                      path, s, ats_dtype_name(t), a->nbytes, have);
        ATS_ERROR(ATS_STATUS_EINVAL,
                  "%.200s: %zu unexpected bytes after the data of shape %s "
                  "of %s (a .npy holds exactly one array: several arrays saved into one file?)",
                  path, have - a->nbytes, s, ats_dtype_name(t));
    }
    return ATS_STATUS_OK;
}

static int npy_open(struct ats_array **out, const char *path, int allow_bool) {
    ATS_ASSERT(out && path);
    *out = NULL;
    struct ats_array *a;
    int rc = ats_array_file(&a, path);
    if (rc)
        return rc;
    rc = ats_npy_parse(a, path);
    if (rc == ATS_STATUS_OK && a->dtype == ATS_DTYPE_BOOL && !allow_bool) {
        rc = ATS_STATUS_EUNSUP;
        ats_error(__FILE__, __LINE__, rc,
                  "%.200s: dtype bool is not supported here: only float16, float32 and float64 "
                  "can be read",
                  path);
    }
    if (rc) {
        ats_array_close(a);
        return rc;
    }
    *out = a;
    return ATS_STATUS_OK;
}

int ats_npy_open(struct ats_array **out, const char *path) { return npy_open(out, path, 0); }

int ats_npy_open_mask(struct ats_array **out, const char *path) {
    return npy_open(out, path, 1);
}

// ----------------------------------------------------------------------------
// .npy writer

static void store16(unsigned char *p, uint16_t v) {
    p[0] = (unsigned char)(v & 0xff);
    p[1] = (unsigned char)(v >> 8);
}

static void store32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)((v >> (8 * i)) & 0xff);
}

static void store64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)((v >> (8 * i)) & 0xff);
}

int ats_npy_write(const char *path, const double *data, int64_t rows, int64_t cols, int ndim,
                  enum ats_dtype t) {
    ATS_ASSERT(path);
    if (t == ATS_DTYPE_BF16)
        ATS_ERROR(ATS_STATUS_EUNSUP,
                  "%.200s: bfloat16 is not a NumPy dtype (write float32, "
                  "which holds every bfloat16 exactly)",
                  path);
    if (t != ATS_DTYPE_F16 && t != ATS_DTYPE_F32 && t != ATS_DTYPE_F64)
        ATS_ERROR(ATS_STATUS_EINVAL, "%.200s: unknown dtype %d", path, (int)t);
    if (ndim != 1 && ndim != 2)
        ATS_ERROR(ATS_STATUS_EINVAL, "%.200s: ndim %d: only 1 or 2 can be written", path, ndim);
    if (rows < 0 || cols < 0 || (ndim == 1 && rows != 1))
        ATS_ERROR(ATS_STATUS_EINVAL,
                  "%.200s: invalid shape: %" PRId64 " rows, %" PRId64
                  " columns, ndim %d (1-D needs one row)",
                  path, rows, cols, ndim);
    const size_t itemsize = ats_dtype_size(t);
    if (cols != 0 && rows > (int64_t)(SIZE_MAX / 8 / itemsize) / cols)
        ATS_ERROR(ATS_STATUS_EINVAL, "%.200s: %" PRId64 " x %" PRId64 " elements are too many",
                  path, rows, cols);
    const size_t count = (size_t)rows * (size_t)cols;
    ATS_ASSERT(data || count == 0);

    // Header: the dict NumPy writes, spaces, '\n', so that the data starts at a multiple of 64.
    char dict[160];
    const char *descr = t == ATS_DTYPE_F16 ? "<f2" : t == ATS_DTYPE_F32 ? "<f4" : "<f8";
    if (ndim == 1)
        snprintf(dict, sizeof dict,
                 "{'descr': '%s', 'fortran_order': False, 'shape': (%" PRId64 ",), }", descr, cols);
    else
        snprintf(dict, sizeof dict,
                 "{'descr': '%s', 'fortran_order': False, 'shape': (%" PRId64 ", %" PRId64 "), }",
                 descr, rows, cols);
    const size_t dict_len = strlen(dict);
    size_t prefix = 10; // magic, version, 2-byte length
    size_t header_len = (prefix + dict_len + 1 + 63) / 64 * 64 - prefix;
    if (header_len > 65535) { // version 2.0: 4-byte length
        prefix = 12;
        header_len = (prefix + dict_len + 1 + 63) / 64 * 64 - prefix;
    }
    unsigned char head[12 + sizeof dict + 64];
    memcpy(head, "\x93NUMPY", 6);
    head[6] = prefix == 10 ? 1 : 2;
    head[7] = 0;
    if (prefix == 10)
        store16(head + 8, (uint16_t)header_len);
    else
        store32(head + 8, (uint32_t)header_len);
    memcpy(head + prefix, dict, dict_len);
    memset(head + prefix + dict_len, ' ', header_len - dict_len - 1);
    head[prefix + header_len - 1] = '\n';

    struct ats_atomic *out;
    int rc = ats_atomic_open(&out, path);
    if (rc != ATS_STATUS_OK)
        return rc;
    FILE *f = ats_atomic_stream(out);
    int ok = fwrite(head, 1, prefix + header_len, f) == prefix + header_len;
    unsigned char buf[8192];
    const size_t per = sizeof buf / itemsize;
    for (size_t i = 0; ok && i < count; i += per) {
        size_t n = count - i < per ? count - i : per;
        for (size_t j = 0; j < n; j++) {
            double v = data[i + j];
            if (t == ATS_DTYPE_F16) {
                store16(buf + 2 * j, double_to_half(v));
            } else if (t == ATS_DTYPE_F32) {
                float fv = (float)v; // round to nearest even, overflow to Inf
                uint32_t u;
                memcpy(&u, &fv, sizeof u);
                store32(buf + 4 * j, u);
            } else {
                uint64_t u;
                memcpy(&u, &v, sizeof u);
                store64(buf + 8 * j, u);
            }
        }
        ok = fwrite(buf, itemsize, n, f) == n;
    }
    if (!ok) {
        int err = errno;
        ats_atomic_abort(out);
        ATS_ERROR(ATS_STATUS_EIO, "%.200s: write failed: %s (nothing written)", path,
                  strerror(err));
    }
    return ats_atomic_commit(out);
}
