/*
 * test_arrays.c: .npy and safetensors readers, the .npy writer (src/io/npy.c,
 * src/io/safetensors.c).
 *
 *   - resident memory stays bounded while a 512 MiB float32 .npy is read block by block;
 *   - float16 and bfloat16 widening, exhaustively over all 65536 bit patterns, against
 *     ldexp of their mantissa and exponent; float16 rounding (double -> half, ties to even)
 *     against a reference that searches the nearest half by value, and against NumPy;
 *   - write -> read round trips (float16/32/64, 1-D and 2-D; 3-D and more from NumPy or hand
 *     made), including Inf, NaN, -0 and subnormals;
 *   - files written by NumPy (/usr/bin/python3 with numpy must be present: the test fails
 *     otherwise): big-endian, versions 2.0 and 3.0, Fortran order, other dtypes, objects,
 *     scalars, empty arrays; NumPy reads back what ats_npy_write wrote, bit for bit;
 *   - hand-made malformed .npy headers, every prefix of valid files, safetensors files built
 *     here (F16, BF16, F32, F64, unaligned data) and every malformed case, with the reason
 *     the error handler receives.
 *
 * Build: make build/tests/test_arrays && ./build/tests/test_arrays
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "attnscale.h"
#include "test.h"

// ----------------------------------------------------------------------------
// Helpers

static char dir[64];           // the test's temporary directory
static char last_reason[1024]; // the last reason the library reported
static int last_status;

static void capture(const char *reason, const char *file, int line, int status) {
    (void)file;
    (void)line;
    snprintf(last_reason, sizeof last_reason, "%s", reason);
    last_status = status;
}

// dir/name in a rotating set of static buffers (several may be live in one expression).
static const char *tmp(const char *name) {
    static char bufs[4][256];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
    return b;
}

static int write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t n = len ? fwrite(data, 1, len, f) : 0;
    return (fclose(f) == 0 && n == len) ? 0 : -1;
}

static unsigned char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            unsigned char *b = realloc(buf, cap *= 2);
            if (!b) {
                free(buf);
                buf = NULL;
            }
            buf = b;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

// A .npy file: magic, version major.0, header length, dict, then spaces and '\n' up to a
// multiple of align (1: no padding beyond the newline), then data. Returns its length; buf
// must hold it.
static size_t make_npy(unsigned char *buf, int major, const char *dict, size_t align,
                       const void *data, size_t data_len) {
    size_t prefix = major == 1 ? 10 : 12;
    size_t dict_len = strlen(dict);
    size_t header_len = (prefix + dict_len + 1 + align - 1) / align * align - prefix;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)major;
    buf[7] = 0;
    for (size_t i = 0; i < prefix - 8; i++)
        buf[8 + i] = (unsigned char)((header_len >> (8 * i)) & 0xff);
    memcpy(buf + prefix, dict, dict_len);
    memset(buf + prefix + dict_len, ' ', header_len - dict_len - 1);
    buf[prefix + header_len - 1] = '\n';
    if (data_len)
        memcpy(buf + prefix + header_len, data, data_len);
    return prefix + header_len + data_len;
}

// A safetensors file: 8-byte little-endian size of json, json, then data. Returns its length.
static size_t make_st(unsigned char *buf, const char *json, const void *data, size_t data_len) {
    uint64_t n = strlen(json);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((n >> (8 * i)) & 0xff);
    memcpy(buf + 8, json, (size_t)n);
    if (data_len)
        memcpy(buf + 8 + n, data, data_len);
    return 8 + (size_t)n + data_len;
}

static int open_npy_bytes(struct ats_array **a, const unsigned char *bytes, size_t len) {
    const char *p = tmp("case.npy");
    if (write_file(p, bytes, len) != 0)
        return -1;
    last_reason[0] = '\0';
    return ats_npy_open(a, p);
}

static int open_st_bytes(struct ats_array **a, const unsigned char *bytes, size_t len,
                         const char *name) {
    const char *p = tmp("case.safetensors");
    if (write_file(p, bytes, len) != 0)
        return -1;
    last_reason[0] = '\0';
    return ats_safetensors_open(a, p, name);
}

// rc must be the status want, a must be NULL and the reason must contain text.
// (a is read after rc is computed: pass &a.)
static void check_fail(int rc, struct ats_array *const *a, int want, const char *text,
                       const char *label) {
    ATS_CHECK(rc == want && *a == NULL && strstr(last_reason, text) != NULL && last_status == want,
              "%s: status %d (want %d), reason contains \"%s\": \"%s\"", label, rc, want, text,
              last_reason);
}

static int same_bits(double x, double y) {
    return memcmp(&x, &y, sizeof x) == 0;
}

static void put16le(unsigned char *p, uint16_t v) {
    p[0] = (unsigned char)(v & 0xff);
    p[1] = (unsigned char)(v >> 8);
}

static void put32le(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)((v >> (8 * i)) & 0xff);
}

static void put64le(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)((v >> (8 * i)) & 0xff);
}

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static uint64_t f64_bits(double d) {
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

// ----------------------------------------------------------------------------
// Independent references for float16 and bfloat16

// The value of half h from the IEEE 754 binary16 definition: (-1)^s 2^(e-15) (1 + m/1024),
// subnormal (-1)^s 2^-14 (m/1024).
static double ref_half(uint16_t h) {
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v;
    if (e == 31)
        v = m ? NAN : INFINITY;
    else if (e == 0)
        v = ldexp(m, -24);
    else
        v = ldexp(1024 + m, e - 25);
    return s ? -v : v;
}

// bfloat16: 8 exponent bits (bias 127), 7 mantissa bits.
static double ref_bf16(uint16_t b) {
    int s = b >> 15, e = (b >> 7) & 255, m = b & 127;
    double v;
    if (e == 255)
        v = m ? NAN : INFINITY;
    else if (e == 0)
        v = ldexp(m, -133);
    else
        v = ldexp(128 + m, e - 134);
    return s ? -v : v;
}

// The half nearest to x, ties to the even bit pattern, by searching the ordered positive
// halves (0x0000 .. 0x7bff, then 0x7c00 = Inf standing in for 2^16 in the comparison: the
// halfway point 65520 rounds to even, Inf). NaN gives 0x7e00.
static uint16_t ref_round_half(double x) {
    if (isnan(x))
        return 0x7e00;
    uint16_t sign = signbit(x) ? 0x8000 : 0;
    long double a = fabsl((long double)x);
    if (a >= 65536.0L)
        return (uint16_t)(sign | 0x7c00);
    unsigned lo = 0, hi = 0x7c00; // val(lo) <= a < val(hi)
    while (hi - lo > 1) {
        unsigned mid = (lo + hi) / 2;
        if ((long double)ref_half((uint16_t)mid) <= a)
            lo = mid;
        else
            hi = mid;
    }
    long double vlo = ref_half((uint16_t)lo);
    long double vhi = hi == 0x7c00 ? 65536.0L : ref_half((uint16_t)hi);
    long double dlo = a - vlo, dhi = vhi - a; // exact: a and the halves share a binade's grid
    unsigned r = dlo < dhi ? lo : dhi < dlo ? hi : (lo % 2 == 0 ? lo : hi);
    return (uint16_t)(sign | r);
}

// ----------------------------------------------------------------------------
// Resident memory while scanning a 512 MiB float32 file

static long maxrss_kib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

// Whether /proc/self/smaps lists a mapping of path.
static int mapped(const char *path) {
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f)
        return -1;
    char line[4352];
    int found = 0;
    size_t plen = strlen(path);
    while (!found && fgets(line, sizeof line, f)) {
        size_t len = strlen(line);
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        found = len >= plen && strcmp(line + len - plen, path) == 0;
    }
    fclose(f);
    return found;
}

// Inputs that change or are not files: a .npy truncated by another process between reads is
// ATS_STATUS_EIO naming it (no SIGBUS), and a FIFO without a writer, a directory and a device
// are refused at once, without blocking (the alarm ends a test that would hang).
static void test_changing_inputs(void) {
    char path[64], fifo[64];
    snprintf(path, sizeof path, "/tmp/ats_test_arrays_shrink_%ld.npy", (long)getpid());
    enum { R = 4096, C = 256 };
    double *x = malloc((size_t)R * C * sizeof *x);
    for (int i = 0; x && i < R * C; i++)
        x[i] = i;
    int rc = x ? ats_npy_write(path, x, R, C, 2, ATS_DTYPE_F64) : ATS_STATUS_ENOMEM;
    struct ats_array *a = NULL;
    if (rc == ATS_STATUS_OK)
        rc = ats_npy_open(&a, path);
    ATS_CHECK(rc == ATS_STATUS_OK, "changing: opened a %d x %d file", R, C);
    if (a) {
        rc = ats_array_read_rows(x, a, 0, 16);
        pid_t pid = fork();
        if (pid == 0)
            _exit(truncate(path, 1 << 20) == 0 ? 0 : 1); // another process: to 1 MiB
        int st = -1;
        waitpid(pid, &st, 0);
        int before = rc == ATS_STATUS_OK && x[16 * C - 1] == 16 * C - 1;
        int early = ats_array_read_rows(x, a, 100, 16); // still inside the first MiB
        int late = ats_array_read_rows(x, a, R - 16, 16);
        ATS_CHECK(before && WIFEXITED(st) && WEXITSTATUS(st) == 0 && early == ATS_STATUS_OK &&
                      late == ATS_STATUS_EIO && strstr(last_reason, "changed while being read"),
                  "changing: truncated by another process: rows still there read, the rest "
                  "EIO (%s)",
                  last_reason);
        ats_array_close(a);
    }
    unlink(path);
    free(x);

    snprintf(fifo, sizeof fifo, "/tmp/ats_test_arrays_fifo_%ld", (long)getpid());
    int made = mkfifo(fifo, 0600) == 0;
    alarm(20);
    a = NULL;
    rc = made ? ats_npy_open(&a, fifo) : -1;
    ATS_CHECK(rc == ATS_STATUS_EIO && !a && strstr(last_reason, "not a regular file (a FIFO)"),
              "changing: a FIFO with no writer refused without blocking (%s)", last_reason);
    rc = ats_npy_open(&a, "/tmp");
    ATS_CHECK(rc == ATS_STATUS_EIO && strstr(last_reason, "a directory"),
              "changing: a directory refused (%s)", last_reason);
    rc = ats_safetensors_open(&a, "/dev/null", "x");
    ATS_CHECK(rc == ATS_STATUS_EIO && strstr(last_reason, "a character device"),
              "changing: a device refused (%s)", last_reason);
    alarm(0);
    unlink(fifo);
}

static float big_value(uint64_t k) {
    return (float)(int64_t)(k % 65521) - 30000.0f;
}

static void test_rss(void) {
    const int64_t rows = 131072, cols = 1024; // 512 MiB of float32
    char path[64];
    snprintf(path, sizeof path, "/tmp/ats_test_arrays_big_%ld.npy", (long)getpid());
    unsigned char head[256];
    char dict[128];
    snprintf(dict, sizeof dict,
             "{'descr': '<f4', 'fortran_order': False, 'shape': (%" PRId64 ", %" PRId64 "), }",
             rows, cols);
    size_t head_len = make_npy(head, 1, dict, 64, NULL, 0);
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(head, 1, head_len, f) == head_len;
    const size_t chunk = 1 << 18; // floats per write (1 MiB)
    unsigned char *buf = malloc(4 * chunk);
    uint64_t k = 0;
    for (int64_t done = 0; ok && buf && done < rows * cols; done += (int64_t)chunk) {
        for (size_t i = 0; i < chunk; i++)
            put32le(buf + 4 * i, f32_bits(big_value(k++)));
        ok = fwrite(buf, 4, chunk, f) == chunk;
    }
    free(buf);
    if (f && fclose(f) != 0)
        ok = 0;
    ATS_CHECK(ok, "rss: wrote a %" PRId64 " x %" PRId64 " float32 file (%s)", rows, cols, path);

    long before = maxrss_kib();
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct ats_array *a = NULL;
    int rc = ats_npy_open(&a, path);
    ATS_CHECK(rc == ATS_STATUS_OK && a && ats_array_rows(a) == rows && ats_array_cols(a) == cols,
              "rss: opened the 512 MiB file (%s)", last_reason);
    const int64_t block = 256; // rows per read: 1 MiB of the file
    double *out = malloc((size_t)(block * cols) * sizeof *out);
    int64_t bad = 0;
    int ever_mapped = 0;
    k = 0;
    for (int64_t r = 0; a && out && r < rows; r += block) {
        if (ats_array_read_rows(out, a, r, block) != ATS_STATUS_OK) {
            bad++;
            break;
        }
        for (int64_t i = 0; i < block * cols; i++)
            bad += out[i] != (double)big_value(k++);
        if (r % (64 * block) == 0)
            ever_mapped |= mapped(path) != 0;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long growth = maxrss_kib() - before;
    ATS_CHECK(bad == 0 && k == (uint64_t)(rows * cols),
              "rss: every value read back (%" PRId64 " wrong)", bad);
    // The file is read through a 64 KiB buffer, never mapped: 64 MiB leaves room for the 2 MiB
    // output block, the allocator and (built with AddressSanitizer) the shadow of the heap,
    // and is far from the file size.
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    ATS_CHECK(growth < 64 * 1024 && !ever_mapped,
              "rss: max RSS grew by %ld KiB (< 65536) while scanning 512 MiB in %.2f s, the "
              "file never mapped (%s)",
              growth, secs, ever_mapped ? "it was" : "it was not");
    free(out);
    ats_array_close(a);
    unlink(path);
}

// ----------------------------------------------------------------------------
// float16 / bfloat16

static void check_widening(const char *label, struct ats_array *a, int half, int rc) {
    ATS_CHECK(rc == ATS_STATUS_OK && a && ats_array_rows(a) == 1 && ats_array_cols(a) == 65536,
              "%s: opened, 1 x 65536 (%s)", label, last_reason);
    if (!a)
        return;
    static double out[65536];
    rc = ats_array_read_rows(out, a, 0, 1);
    int64_t bad = 0;
    for (uint32_t i = 0; i < 65536 && rc == ATS_STATUS_OK; i++) {
        double ref = half ? ref_half((uint16_t)i) : ref_bf16((uint16_t)i);
        int ok;
        if (isnan(ref)) {
            // NaN keeps its sign and payload: the mantissa's top bits are the source's.
            int mbits = half ? 10 : 7;
            uint64_t payload = (f64_bits(out[i]) >> (52 - mbits)) & ((1u << mbits) - 1);
            ok = isnan(out[i]) && payload == (i & ((1u << mbits) - 1)) &&
                 !signbit(out[i]) == !(i & 0x8000);
        } else {
            ok = same_bits(out[i], ref);
        }
        if (!ok && bad++ < 5)
            printf("  %s: bits 0x%04x: got %.17g, ref %.17g\n", label, (unsigned)i, out[i], ref);
    }
    ATS_CHECK(rc == ATS_STATUS_OK && bad == 0,
              "%s: all 65536 values equal the ldexp formula bit for bit (%" PRId64 " wrong)", label,
              bad);
    ats_array_close(a);
}

static void test_widening(void) {
    static unsigned char le[65536 * 2], be[65536 * 2], file[65536 * 2 + 256];
    for (uint32_t i = 0; i < 65536; i++) {
        put16le(le + 2 * i, (uint16_t)i);
        be[2 * i] = (unsigned char)(i >> 8);
        be[2 * i + 1] = (unsigned char)(i & 0xff);
    }
    struct ats_array *a = NULL;
    size_t n = make_npy(file, 1, "{'descr': '<f2', 'fortran_order': False, 'shape': (65536,), }",
                        64, le, sizeof le);
    int rc = open_npy_bytes(&a, file, n);
    ATS_CHECK(a && ats_array_dtype(a) == ATS_DTYPE_F16, "float16 <f2: dtype float16");
    check_widening("float16 <f2", a, 1, rc);
    n = make_npy(file, 1, "{'descr': '>f2', 'fortran_order': False, 'shape': (65536,), }", 64, be,
                 sizeof be);
    rc = open_npy_bytes(&a, file, n);
    check_widening("float16 >f2", a, 1, rc);

    // bfloat16 through safetensors, at an odd offset: unaligned loads.
    n = make_st(file,
                "{\"pad\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                "\"b\":{\"dtype\":\"BF16\",\"shape\":[65536],\"data_offsets\":[1,131073]}}",
                NULL, 0);
    file[n] = 0x55;
    memcpy(file + n + 1, le, sizeof le);
    rc = open_st_bytes(&a, file, n + 1 + sizeof le, "b");
    ATS_CHECK(a && ats_array_dtype(a) == ATS_DTYPE_BF16 && ats_array_ndim(a) == 1,
              "bfloat16: dtype and ndim");
    check_widening("bfloat16 BF16", a, 0, rc);
}

// Values that exercise double -> half rounding: every half, every midpoint between
// neighbours and the doubles just either side of it, the overflow and underflow thresholds,
// specials, and random doubles over the half range.
static int64_t rounding_values(double *v) {
    int64_t n = 0;
    for (uint32_t k = 0; k < 0x7c00; k++) {
        double x = ref_half((uint16_t)k);
        double next = k + 1 < 0x7c00 ? ref_half((uint16_t)(k + 1)) : 65536.0;
        double mid = (x + next) / 2; // exact: one more bit than a half holds
        double vals[4] = {x, mid, nextafter(mid, 0), nextafter(mid, INFINITY)};
        for (int i = 0; i < 4; i++) {
            v[n++] = vals[i];
            v[n++] = -vals[i];
        }
    }
    const double special[] = {0.0,
                              -0.0,
                              INFINITY,
                              -INFINITY,
                              NAN,
                              -NAN,
                              65504.0,
                              65519.99,
                              65520.0,
                              65536.0,
                              1e10,
                              -1e300,
                              ldexp(1, -25),
                              nextafter(ldexp(1, -25), 1),
                              ldexp(1, -26),
                              ldexp(3, -26),
                              5e-324,
                              2.2250738585072014e-308,
                              ldexp(1, -24),
                              ldexp(1, -14),
                              nextafter(ldexp(1, -14), 0),
                              1.0 / 3,
                              2.385,
                              -2.385};
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++)
        v[n++] = special[i];
    uint64_t s = 0x2385a1b2c3d4e5f6u;
    for (int i = 0; i < 20000; i++) {
        s = s * 6364136223846793005u + 1442695040888963407u;
        double m = (double)(s >> 11) * 0x1p-53; // [0, 1)
        int e = (int)((s >> 3) % 48) - 30;      // 2^-30 .. 2^17
        v[n++] = ldexp(1 + m, e) * ((s & 1) ? -1 : 1);
    }
    return n;
}

#define ROUND_MAX (0x7c00 * 8 + 64 + 20000)

static void test_half_rounding(double *v, int64_t n) {
    const char *path = tmp("round_f2.npy");
    int rc = ats_npy_write(path, v, 1, n, 1, ATS_DTYPE_F16);
    size_t len = 0;
    unsigned char *bytes = read_file(path, &len);
    ATS_CHECK(rc == ATS_STATUS_OK && bytes && len >= 10, "f16 rounding: wrote %" PRId64 " values",
              n);
    if (!bytes)
        return;
    size_t off = 10 + (size_t)(bytes[8] | bytes[9] << 8);
    ATS_CHECK(len == off + 2 * (size_t)n, "f16 rounding: file holds header + 2 bytes each");
    int64_t bad = 0;
    for (int64_t i = 0; i < n && len == off + 2 * (size_t)n; i++) {
        const unsigned char *q = bytes + off + 2 * (size_t)i;
        uint16_t got = (uint16_t)(q[0] | q[1] << 8);
        uint16_t ref = ref_round_half(v[i]);
        int ok = isnan(v[i]) ? ((got & 0x7c00) == 0x7c00 && (got & 0x3ff) != 0) : got == ref;
        if (!ok && bad++ < 5)
            printf("  f16 rounding: x = %.17g (%a): got 0x%04x, ref 0x%04x\n", v[i], v[i], got,
                   ref);
    }
    ATS_CHECK(bad == 0,
              "f16 rounding: nearest half, ties to even, overflow to Inf, for %" PRId64
              " values (%" PRId64 " wrong)",
              n, bad);
    free(bytes);
}

// ----------------------------------------------------------------------------
// Round trips through ats_npy_write and ats_npy_open

static double pattern(int64_t k) {
    return (double)k * 0.37 - 5.0; // NumPy computes the same doubles (fixtures script)
}

static double expect_as(double x, enum ats_dtype t) {
    if (t == ATS_DTYPE_F32)
        return (double)(float)x;
    if (t == ATS_DTYPE_F16)
        return ref_half(ref_round_half(x));
    return x;
}

static void round_trip(enum ats_dtype t, int64_t rows, int64_t cols, int ndim, const double *v) {
    char name[64];
    snprintf(name, sizeof name, "rt_%s_%" PRId64 "x%" PRId64 "_%d.npy", ats_dtype_name(t), rows,
             cols, ndim);
    const char *path = tmp(name);
    int rc = ats_npy_write(path, v, rows, cols, ndim, t);
    struct ats_array *a = NULL;
    int rc2 = rc == ATS_STATUS_OK ? ats_npy_open(&a, path) : rc;
    ATS_CHECK(rc == ATS_STATUS_OK && rc2 == ATS_STATUS_OK && a, "%s: written and opened (%s)", name,
              last_reason);
    if (!a)
        return;
    ATS_CHECK(ats_array_ndim(a) == ndim && ats_array_dtype(a) == t && ats_array_rows(a) == rows &&
                  ats_array_cols(a) == cols && ats_array_dim(a, 0) == (ndim == 1 ? cols : rows) &&
                  ats_array_dim(a, ndim) == 1 && ats_array_dim(a, 7) == 1,
              "%s: ndim %d, dtype %s, rows %" PRId64 ", cols %" PRId64, name, ats_array_ndim(a),
              ats_dtype_name(ats_array_dtype(a)), ats_array_rows(a), ats_array_cols(a));
    double *out = malloc((size_t)(rows * cols + 1) * sizeof *out);
    int64_t bad = 0;
    // Read in uneven blocks: 2 rows, then 1, then the rest.
    for (int64_t r = 0; out && r < rows;) {
        int64_t nb = r == 0 ? (rows < 2 ? rows : 2) : r == 2 ? 1 : rows - r;
        if (ats_array_read_rows(out + r * cols, a, r, nb) != ATS_STATUS_OK)
            bad++;
        r += nb;
    }
    for (int64_t i = 0; out && i < rows * cols; i++) {
        double ref = expect_as(v[i], t);
        int ok = isnan(ref) ? isnan(out[i]) : same_bits(out[i], ref);
        if (!ok && bad++ < 5)
            printf("  %s[%" PRId64 "]: got %.17g, ref %.17g\n", name, i, out[i], ref);
    }
    ATS_CHECK(out && bad == 0, "%s: values read back exactly as %s rounds them (%" PRId64 " wrong)",
              name, ats_dtype_name(t), bad);
    free(out);
    ats_array_close(a);
}

static void test_round_trips(void) {
    double v[64];
    for (int i = 0; i < 64; i++)
        v[i] = pattern(i) * (i % 3 ? 1.0 : 1e-3);
    v[1] = INFINITY;
    v[2] = -INFINITY;
    v[3] = NAN;
    v[4] = -0.0;
    v[5] = 3e-6;    // float16 subnormal
    v[6] = 1e-300;  // float32 and float16 underflow to zero
    v[7] = 70000.0; // float16 overflow
    v[8] = 2.385;
    const enum ats_dtype types[] = {ATS_DTYPE_F16, ATS_DTYPE_F32, ATS_DTYPE_F64};
    for (int t = 0; t < 3; t++) {
        round_trip(types[t], 1, 13, 1, v);
        round_trip(types[t], 5, 7, 2, v);
        round_trip(types[t], 1, 1, 2, v);
        round_trip(types[t], 0, 4, 2, v);
        round_trip(types[t], 3, 0, 2, v);
        round_trip(types[t], 1, 0, 1, v);
    }

    // The header is NumPy's: version 1.0, the dict with a trailing ", }", padded to 64.
    const char *path = tmp("rt_float64_5x7_2.npy");
    size_t len = 0;
    unsigned char *b = read_file(path, &len);
    const char *dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (5, 7), }";
    ATS_CHECK(b && len == 128 + 5 * 7 * 8 && memcmp(b, "\x93NUMPY\x01\x00\x76\x00", 10) == 0 &&
                  memcmp(b + 10, dict, strlen(dict)) == 0 && b[127] == '\n' && b[126] == ' ',
              "writer: header is NumPy's v1.0 dict padded to 64 bytes with a final newline");
    free(b);

    // 3-D, written by hand: rows are all but the last dimension.
    unsigned char file[512];
    unsigned char data[24 * 4];
    for (int i = 0; i < 24; i++)
        put32le(data + 4 * i, f32_bits((float)pattern(i)));
    size_t n = make_npy(file, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4), }",
                        64, data, sizeof data);
    struct ats_array *a = NULL;
    int rc = open_npy_bytes(&a, file, n);
    ATS_CHECK(rc == ATS_STATUS_OK && a && ats_array_ndim(a) == 3 && ats_array_dim(a, 0) == 2 &&
                  ats_array_dim(a, 1) == 3 && ats_array_dim(a, 2) == 4 && ats_array_rows(a) == 6 &&
                  ats_array_cols(a) == 4,
              "3-D (2, 3, 4): 6 rows of 4 columns");
    double out[24];
    int64_t bad = 0;
    if (a && ats_array_read_rows(out + 4, a, 1, 5) == ATS_STATUS_OK)
        for (int i = 4; i < 24; i++)
            bad += !same_bits(out[i], (double)(float)pattern(i));
    else
        bad = 1;
    ATS_CHECK(bad == 0, "3-D (2, 3, 4): rows 1..5 read back");
    ats_array_close(a);
}

// ----------------------------------------------------------------------------
// NumPy

static const char *fixture_script =
    "import os, sys\n"
    "import warnings\n"
    "import numpy as np\n"
    "warnings.simplefilter('ignore')\n"
    "from numpy.lib import format as fmt\n"
    "d = sys.argv[1]\n"
    "def p(n):\n"
    "    return os.path.join(d, n)\n"
    "a = (np.arange(24, dtype=np.float64).reshape(2, 3, 4) * 1.5 - 7).astype('<f4')\n"
    "np.save(p('np_f4_3d.npy'), a)\n"
    "k = np.arange(12, dtype=np.float64).reshape(3, 4) / 7\n"
    "np.save(p('np_be8.npy'), k.astype('>f8'))\n"
    "np.save(p('np_be4.npy'), k.astype('>f4'))\n"
    "np.save(p('np_be2.npy'), k.astype('>f2'))\n"
    "np.save(p('np_le2_all.npy'), np.arange(65536, dtype='<u2').view('<f2'))\n"
    "np.save(p('np_be2_all.npy'), np.arange(65536, dtype='>u2').view('>f2'))\n"
    "with open(p('np_v2.npy'), 'wb') as f:\n"
    "    fmt.write_array(f, k, version=(2, 0))\n"
    "with open(p('np_v3.npy'), 'wb') as f:\n"
    "    fmt.write_array(f, k.astype('<f4'), version=(3, 0))\n"
    "np.save(p('np_fortran.npy'), np.asfortranarray(k))\n"
    "np.save(p('np_i4.npy'), np.arange(5, dtype=np.int32))\n"
    "np.save(p('np_c16.npy'), np.zeros(3, dtype=np.complex128))\n"
    "np.save(p('np_bool.npy'), np.zeros(3, dtype=bool))\n"
    "np.save(p('np_u1.npy'), np.zeros(3, dtype=np.uint8))\n"
    "np.save(p('np_str.npy'), np.array(['ab', 'c']))\n"
    "np.save(p('np_dt.npy'), np.array(['2020-01-01'], dtype='datetime64[D]'))\n"
    "np.save(p('np_rec.npy'), np.zeros(3, dtype=[('a', '<f4'), ('b', '<f8')]))\n"
    "np.save(p('np_obj.npy'), np.array([1, 'a', None], dtype=object), allow_pickle=True)\n"
    "np.save(p('np_scalar.npy'), np.float64(2.5))\n"
    "np.save(p('np_empty.npy'), np.zeros((0, 3), dtype='<f4'))\n"
    "np.save(p('np_1d.npy'), np.array([1.25, -3.5]))\n"
    "np.save(p('np_5d.npy'), np.arange(12, dtype=np.float64).reshape(2, 1, 3, 1, 2))\n"
    "with open(p('np_two.npy'), 'wb') as f:\n"
    "    np.save(f, k)\n"
    "    np.save(f, k)\n"
    "x = np.load(p('dbl.npy'))\n"
    "np.save(p('np_round.npy'), x.astype(np.float16))\n"
    "ref = (np.arange(35, dtype=np.float64) * 0.37 - 5.0).reshape(5, 7)\n"
    "for name, dt in (('ours_f8.npy', '<f8'), ('ours_f4.npy', '<f4'), ('ours_f2.npy', '<f2')):\n"
    "    y = np.load(p(name))\n"
    "    assert y.dtype == np.dtype(dt) and y.shape == (5, 7), name\n"
    "    assert y.tobytes() == ref.astype(dt).tobytes(), name\n"
    "y = np.load(p('ours_1d.npy'))\n"
    "assert y.dtype == np.float64 and y.shape == (35,) and np.array_equal(y, ref.ravel())\n"
    "y = np.load(p('ours_empty.npy'))\n"
    "assert y.dtype == np.float32 and y.shape == (0, 7)\n"
    "print('fixtures ok')\n";

static struct ats_array *open_fixture(const char *name) {
    struct ats_array *a = NULL;
    last_reason[0] = '\0';
    int rc = ats_npy_open(&a, tmp(name));
    ATS_CHECK(rc == ATS_STATUS_OK && a, "numpy %s: opened (%s)", name, last_reason);
    return a;
}

// Reads all of a (at most cap values) into out; returns the count or -1.
static int64_t read_all(double *out, int64_t cap, const struct ats_array *a) {
    if (!a || ats_array_rows(a) * ats_array_cols(a) > cap)
        return -1;
    if (ats_array_read_rows(out, a, 0, ats_array_rows(a)) != ATS_STATUS_OK)
        return -1;
    return ats_array_rows(a) * ats_array_cols(a);
}

static void check_fixture_fail(const char *name, int want, const char *text) {
    struct ats_array *a = NULL;
    last_reason[0] = '\0';
    last_status = -1;
    int rc = ats_npy_open(&a, tmp(name));
    check_fail(rc, &a, want, text, name);
    ats_array_close(a);
}

static void test_numpy(double *rv, int64_t nrv) {
    // Our files first, for NumPy to check.
    double ref[35];
    for (int i = 0; i < 35; i++)
        ref[i] = pattern(i);
    int ok = ats_npy_write(tmp("ours_f8.npy"), ref, 5, 7, 2, ATS_DTYPE_F64) == 0 &&
             ats_npy_write(tmp("ours_f4.npy"), ref, 5, 7, 2, ATS_DTYPE_F32) == 0 &&
             ats_npy_write(tmp("ours_f2.npy"), ref, 5, 7, 2, ATS_DTYPE_F16) == 0 &&
             ats_npy_write(tmp("ours_1d.npy"), ref, 1, 35, 1, ATS_DTYPE_F64) == 0 &&
             ats_npy_write(tmp("ours_empty.npy"), ref, 0, 7, 2, ATS_DTYPE_F32) == 0 &&
             ats_npy_write(tmp("dbl.npy"), rv, 1, nrv, 1, ATS_DTYPE_F64) == 0;
    ATS_CHECK(ok, "numpy: wrote the files NumPy will check");

    ATS_CHECK(system("/usr/bin/python3 -c 'import numpy' 2>/dev/null") == 0,
              "numpy: /usr/bin/python3 can import numpy (required: the test fails without it)");
    const char *script = tmp("fixtures.py");
    ATS_CHECK(write_file(script, fixture_script, strlen(fixture_script)) == 0,
              "numpy: fixture script written");
    char cmd[512];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s >/dev/null", script, dir);
    int st = system(cmd);
    ATS_CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "numpy: fixtures written, and NumPy loads ats_npy_write's float16/32/64 1-D/2-D "
              "files bit for bit (python exit status %d)",
              st);

    static double out[65536];
    struct ats_array *a = open_fixture("np_f4_3d.npy");
    int64_t n = read_all(out, 65536, a);
    int64_t bad = n == 24 ? 0 : 1;
    for (int64_t i = 0; i < n && n == 24; i++)
        bad += out[i] != (double)(float)((double)i * 1.5 - 7);
    ATS_CHECK(a && ats_array_ndim(a) == 3 && ats_array_rows(a) == 6 && ats_array_cols(a) == 4 &&
                  bad == 0,
              "numpy np_f4_3d.npy: (2, 3, 4) float32 values");
    ats_array_close(a);

    const char *be[] = {"np_be8.npy", "np_be4.npy", "np_be2.npy", "np_v2.npy", "np_v3.npy"};
    const enum ats_dtype bet[] = {ATS_DTYPE_F64, ATS_DTYPE_F32, ATS_DTYPE_F16, ATS_DTYPE_F64,
                                  ATS_DTYPE_F32};
    for (int f = 0; f < 5; f++) {
        a = open_fixture(be[f]);
        n = read_all(out, 65536, a);
        bad = n == 12 ? 0 : 1;
        for (int64_t i = 0; i < n && n == 12; i++)
            bad += !same_bits(out[i], expect_as((double)i / 7, bet[f]));
        ATS_CHECK(a && ats_array_dtype(a) == bet[f] && ats_array_rows(a) == 3 &&
                      ats_array_cols(a) == 4 && bad == 0,
                  "numpy %s: (3, 4) %s, values k/7 rounded as NumPy does", be[f],
                  ats_dtype_name(bet[f]));
        ats_array_close(a);
    }

    check_widening("numpy np_le2_all.npy", open_fixture("np_le2_all.npy"), 1, 0);
    check_widening("numpy np_be2_all.npy", open_fixture("np_be2_all.npy"), 1, 0);

    a = open_fixture("np_scalar.npy");
    n = read_all(out, 65536, a);
    ATS_CHECK(a && ats_array_ndim(a) == 0 && ats_array_rows(a) == 1 && ats_array_cols(a) == 1 &&
                  ats_array_dim(a, 0) == 1 && n == 1 && out[0] == 2.5,
              "numpy np_scalar.npy: shape () is one row of one column, 2.5");
    ats_array_close(a);
    a = open_fixture("np_empty.npy");
    n = read_all(out, 65536, a);
    ATS_CHECK(a && ats_array_rows(a) == 0 && ats_array_cols(a) == 3 && n == 0,
              "numpy np_empty.npy: (0, 3) has no rows");
    ats_array_close(a);
    a = open_fixture("np_1d.npy");
    n = read_all(out, 65536, a);
    ATS_CHECK(a && ats_array_ndim(a) == 1 && ats_array_rows(a) == 1 && ats_array_cols(a) == 2 &&
                  n == 2 && out[0] == 1.25 && out[1] == -3.5,
              "numpy np_1d.npy: one row of 2");
    ats_array_close(a);
    a = open_fixture("np_5d.npy");
    n = read_all(out, 65536, a);
    bad = n == 12 ? 0 : 1;
    for (int64_t i = 0; i < n && n == 12; i++)
        bad += out[i] != (double)i;
    ATS_CHECK(a && ats_array_ndim(a) == 5 && ats_array_rows(a) == 6 && ats_array_cols(a) == 2 &&
                  ats_array_dim(a, 3) == 1 && bad == 0,
              "numpy np_5d.npy: (2, 1, 3, 1, 2) is 6 rows of 2");
    ats_array_close(a);

    // NumPy's own double -> float16 conversion agrees with ats_npy_write's.
    a = open_fixture("np_round.npy");
    size_t len = 0;
    unsigned char *ours = read_file(tmp("round_f2.npy"), &len);
    size_t len2 = 0;
    unsigned char *theirs = read_file(tmp("np_round.npy"), &len2);
    bad = 0;
    if (ours && theirs && len > 10 && len2 > 10) {
        size_t o1 = 10 + (size_t)(ours[8] | ours[9] << 8);
        size_t o2 = 10 + (size_t)(theirs[8] | theirs[9] << 8);
        if (len - o1 != 2 * (size_t)nrv || len2 - o2 != 2 * (size_t)nrv)
            bad = 1;
        for (int64_t i = 0; i < nrv && !bad; i++) {
            const unsigned char *q1 = ours + o1 + 2 * (size_t)i, *q2 = theirs + o2 + 2 * (size_t)i;
            uint16_t x = (uint16_t)(q1[0] | q1[1] << 8);
            uint16_t y = (uint16_t)(q2[0] | q2[1] << 8);
            int same = isnan(rv[i]) ? (x & 0x7c00) == 0x7c00 && (y & 0x7c00) == 0x7c00 : x == y;
            if (!same && bad++ < 5)
                printf("  x = %a: ours 0x%04x, numpy 0x%04x\n", rv[i], x, y);
        }
    } else {
        bad = 1;
    }
    ATS_CHECK(bad == 0,
              "numpy: x.astype(float16) equals ats_npy_write's float16 for %" PRId64
              " values (%" PRId64 " differ)",
              nrv, bad);
    free(ours);
    free(theirs);
    ats_array_close(a);

    check_fixture_fail("np_fortran.npy", ATS_STATUS_EINVAL, "Fortran order not supported");
    check_fixture_fail("np_i4.npy", ATS_STATUS_EUNSUP, "int32");
    check_fixture_fail("np_c16.npy", ATS_STATUS_EUNSUP, "complex128");
    check_fixture_fail("np_bool.npy", ATS_STATUS_EUNSUP, "bool");
    check_fixture_fail("np_u1.npy", ATS_STATUS_EUNSUP, "uint8");
    check_fixture_fail("np_str.npy", ATS_STATUS_EUNSUP, "str");
    check_fixture_fail("np_dt.npy", ATS_STATUS_EUNSUP, "datetime64");
    check_fixture_fail("np_rec.npy", ATS_STATUS_EUNSUP, "structured");
    check_fixture_fail("np_obj.npy", ATS_STATUS_EINVAL, "object arrays");
    check_fixture_fail("np_two.npy", ATS_STATUS_EINVAL, "unexpected bytes after the data");
}

// ----------------------------------------------------------------------------
// Hand-made .npy files

struct npy_case {
    const char *dict;
    size_t data_len; // bytes of data appended
    int status;      // ATS_STATUS_OK: must open
    const char *text;
};

static void test_npy_headers(void) {
    static const struct npy_case cases[] = {
        // tolerated
        {"{ 'shape' : ( 2 , 3 , ) , 'fortran_order':False,\t'descr':\"<f8\"}", 48, 0, ""},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2L, 3L), }", 48, 0, ""},
        {"{'descr': 'f8', 'fortran_order': False, 'shape': (6,)}", 48, 0, ""},
        {"{'descr': '=f8', 'fortran_order': False, 'shape': (6,)}", 48, 0, ""},
        {"{'descr': '<f2', 'fortran_order': False, 'shape': (0, 5)}", 0, 0, ""},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 0, 2)}", 0, 0, ""},
        // malformed
        {"[1, 2]", 0, ATS_STATUS_EINVAL, "not a Python dict"},
        {"", 0, ATS_STATUS_EINVAL, "not a Python dict"},
        {"{'descr': '<f8', 'fortran_order': False}", 0, ATS_STATUS_EINVAL, "missing 'shape'"},
        {"{'descr': '<f8', 'shape': (1,)}", 8, ATS_STATUS_EINVAL, "missing 'fortran_order'"},
        {"{}", 0, ATS_STATUS_EINVAL, "missing 'descr'"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'foo': 1}", 8, ATS_STATUS_EINVAL,
         "unexpected key 'foo'"},
        {"{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (1,)}", 8,
         ATS_STATUS_EINVAL, "repeated key 'descr'"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (5)}", 40, ATS_STATUS_EINVAL,
         "trailing comma"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': 5}", 40, ATS_STATUS_EINVAL,
         "shape must be a tuple"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (-1,)}", 0, ATS_STATUS_EINVAL,
         "non-negative integer"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3}", 48, ATS_STATUS_EINVAL,
         "expected ',' or ')'"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (,)}", 0, ATS_STATUS_EINVAL,
         "non-negative integer"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999,)}", 0,
         ATS_STATUS_EINVAL, "does not fit in 64 bits"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (9223372036854775807, 2)}", 0,
         ATS_STATUS_EINVAL, "too large"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4611686018427387904, "
         "4611686018427387904)}",
         0, ATS_STATUS_EINVAL, "too large"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2305843009213693952,)}", 0,
         ATS_STATUS_EINVAL, "too large"},
        {"{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3)}", 48, ATS_STATUS_EINVAL,
         "Fortran order not supported"},
        {"{'descr': '<f8', 'fortran_order': 'False', 'shape': (2, 3)}", 48, ATS_STATUS_EINVAL,
         "True or False"},
        {"{'descr': '<f8', 'fortran_order': false, 'shape': (2, 3)}", 48, ATS_STATUS_EINVAL,
         "True or False"},
        {"{'descr': '|f4', 'fortran_order': False, 'shape': (2,)}", 8, ATS_STATUS_EINVAL,
         "only valid for 1-byte types"},
        {"{'descr': '<i4', 'fortran_order': False, 'shape': (2,)}", 8, ATS_STATUS_EUNSUP, "int32"},
        {"{'descr': '>u2', 'fortran_order': False, 'shape': (2,)}", 4, ATS_STATUS_EUNSUP, "uint16"},
        {"{'descr': '<c8', 'fortran_order': False, 'shape': (2,)}", 16, ATS_STATUS_EUNSUP,
         "complex64"},
        {"{'descr': '|b1', 'fortran_order': False, 'shape': (2,)}", 2, ATS_STATUS_EUNSUP, "bool"},
        {"{'descr': '<f16', 'fortran_order': False, 'shape': (2,)}", 32, ATS_STATUS_EUNSUP,
         "float128"},
        {"{'descr': '|O', 'fortran_order': False, 'shape': (2,)}", 16, ATS_STATUS_EINVAL,
         "object arrays"},
        {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,)}", 8, ATS_STATUS_EUNSUP,
         "structured"},
        {"{'descr': 'float32', 'fortran_order': False, 'shape': (2,)}", 8, ATS_STATUS_EINVAL,
         "not a dtype string"},
        {"{'descr': '<', 'fortran_order': False, 'shape': (2,)}", 8, ATS_STATUS_EINVAL,
         "not a dtype string"},
        {"{'descr': '<f', 'fortran_order': False, 'shape': (2,)}", 8, ATS_STATUS_EINVAL,
         "not a dtype string"},
        {"{'descr': '<M8[ns', 'fortran_order': False, 'shape': (2,)}", 16, ATS_STATUS_EINVAL,
         "not a dtype string"},
        {"{'descr': '<m8[s]', 'fortran_order': False, 'shape': (2,)}", 16, ATS_STATUS_EUNSUP,
         "timedelta64"},
        {"{'descr': 4, 'fortran_order': False, 'shape': (2,)}", 8, ATS_STATUS_EINVAL,
         "expected a quoted string"},
        {"{'descr': '<f\\x34', 'fortran_order': False, 'shape': (2,)}", 8, ATS_STATUS_EINVAL,
         "escape"},
        {"{'descr': '<f8, 'fortran_order': False, 'shape': (2,)}", 16, ATS_STATUS_EINVAL,
         "expected ',' or '}'"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2,)} x", 16, ATS_STATUS_EINVAL,
         "text after the closing"},
        {"{'descr': '<f8' 'fortran_order': False, 'shape': (2,)}", 16, ATS_STATUS_EINVAL,
         "expected ',' or '}'"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2,)", 16, ATS_STATUS_EINVAL,
         "malformed .npy header"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3)}", 47, ATS_STATUS_EINVAL,
         "truncated .npy file: shape (2, 3) of float64 needs 48 bytes of data, the file has "
         "47"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3)}", 49, ATS_STATUS_EINVAL,
         "1 unexpected bytes after the data"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': ()}", 0, ATS_STATUS_EINVAL,
         "truncated"},
    };
    static unsigned char data[4096], file[8192];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)(i * 7 + 1);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const struct npy_case *k = &cases[c];
        size_t n = make_npy(file, 1, k->dict, 64, data, k->data_len);
        struct ats_array *a = NULL;
        last_status = -1;
        int rc = open_npy_bytes(&a, file, n);
        if (k->status == ATS_STATUS_OK)
            ATS_CHECK(rc == ATS_STATUS_OK && a, "npy header accepted: %s (%s)", k->dict,
                      last_reason);
        else
            check_fail(rc, &a, k->status, k->text, k->dict);
        ats_array_close(a);
    }

    // A 65-dimensional shape.
    char dict[512] = "{'descr': '<f8', 'fortran_order': False, 'shape': (";
    for (int i = 0; i < 65; i++)
        strcat(dict, "1, ");
    strcat(dict, ")}");
    size_t n = make_npy(file, 1, dict, 64, data, 8);
    struct ats_array *a = NULL;
    check_fail(open_npy_bytes(&a, file, n), &a, ATS_STATUS_EUNSUP, "more than 64 dimensions",
               "npy: 65 dimensions");
    // 64 are fine.
    memcpy(strstr(dict, "1, )}"), ")}", 3);
    n = make_npy(file, 1, dict, 64, data, 8);
    int rc = open_npy_bytes(&a, file, n);
    ATS_CHECK(rc == 0 && a && ats_array_ndim(a) == 64 && ats_array_rows(a) == 1 &&
                  ats_array_cols(a) == 1,
              "npy: 64 dimensions of 1 (%s)", last_reason);
    ats_array_close(a);

    // The 'shape', ats_array_ndim etc. of the tolerated cases, and values of one of them.
    double v[6] = {1.5, -2.25, 3e300, -0.0, 5e-324, 2.385}, out[6];
    unsigned char raw[48];
    for (int i = 0; i < 6; i++)
        put64le(raw + 8 * i, f64_bits(v[i]));
    n = make_npy(file, 1, "{ 'shape' : ( 2 , 3 , ) , 'fortran_order':False,'descr':\"<f8\"}", 1,
                 raw, sizeof raw);
    rc = open_npy_bytes(&a, file, n);
    int bad = rc || !a || ats_array_read_rows(out, a, 0, 2) != 0;
    for (int i = 0; i < 6 && !bad; i++)
        bad += !same_bits(out[i], v[i]);
    ATS_CHECK(!bad && ats_array_ndim(a) == 2 && ats_array_rows(a) == 2 && ats_array_cols(a) == 3,
              "npy: unpadded header, any key order and spacing: (2, 3) values read");
    ats_array_close(a);

    // Versions 2.0 and 3.0 by hand, a 16-byte aligned header (NumPy < 1.14), big-endian f4.
    unsigned char be4[8] = {0x40, 0x18, 0x80, 0x00, 0xc1, 0x20, 0x00, 0x00}; // 2.3828125, -10
    const int versions[] = {2, 3, 1};
    for (int i = 0; i < 3; i++) {
        n = make_npy(file, versions[i], "{'descr': '>f4', 'fortran_order': False, 'shape': (2,)}",
                     versions[i] == 1 ? 16 : 64, be4, sizeof be4);
        rc = open_npy_bytes(&a, file, n);
        ATS_CHECK(rc == 0 && a && ats_array_read_rows(out, a, 0, 1) == 0 && out[0] == 2.3828125 &&
                      out[1] == -10.0,
                  "npy: version %d.0 header, >f4 values (%s)", versions[i], last_reason);
        ats_array_close(a);
    }

    // Magic, version, header length.
    n = make_npy(file, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3)}", 64, data,
                 48);
    unsigned char bad_file[512];
    memcpy(bad_file, file, n);
    bad_file[5] = 'Z';
    check_fail(open_npy_bytes(&a, bad_file, n), &a, ATS_STATUS_EINVAL, "not a .npy file",
               "npy: bad magic");
    check_fail(open_npy_bytes(&a, (const unsigned char *)"PK\x03\x04zipzipzip", 12), &a,
               ATS_STATUS_EINVAL, "not a .npy file", "npy: a zip (.npz) file");
    memcpy(bad_file, file, n);
    bad_file[6] = 4;
    check_fail(open_npy_bytes(&a, bad_file, n), &a, ATS_STATUS_EUNSUP, "version 4.0",
               "npy: version 4.0");
    memcpy(bad_file, file, n);
    bad_file[7] = 1;
    check_fail(open_npy_bytes(&a, bad_file, n), &a, ATS_STATUS_EUNSUP, "version 1.1",
               "npy: version 1.1");
    memcpy(bad_file, file, n);
    bad_file[8] = 0xff;
    bad_file[9] = 0x01;
    check_fail(open_npy_bytes(&a, bad_file, n), &a, ATS_STATUS_EINVAL,
               "header length 511 runs past the end of the file (176 bytes)",
               "npy: header length past the end");
    memcpy(bad_file, file, n);
    bad_file[8] = 0x30; // header ends inside the dict
    check_fail(open_npy_bytes(&a, bad_file, n), &a, ATS_STATUS_EINVAL, "malformed .npy header",
               "npy: header length inside the dict");

    // Every proper prefix of valid files fails cleanly, with EINVAL.
    const int majors[] = {1, 2};
    for (int v2 = 0; v2 < 2; v2++) {
        n = make_npy(file, majors[v2], "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3)}",
                     64, data, 48);
        int64_t wrong = 0;
        for (size_t len = 0; len < n; len++) {
            a = NULL;
            last_status = -1;
            rc = open_npy_bytes(&a, file, len);
            if ((rc != ATS_STATUS_EINVAL || a || last_status != rc) && wrong++ < 5)
                printf("  prefix of %zu bytes: status %d (%s)\n", len, rc, last_reason);
            ats_array_close(a);
        }
        rc = open_npy_bytes(&a, file, n);
        ATS_CHECK(wrong == 0 && rc == 0,
                  "npy v%d.0: all %zu proper prefixes fail with EINVAL, "
                  "the whole file opens",
                  majors[v2], n);
        ats_array_close(a);
    }

    // Files that are not there or not regular.
    a = NULL;
    check_fail(ats_npy_open(&a, tmp("no_such_file.npy")), &a, ATS_STATUS_EIO, "cannot open",
               "npy: missing file");
    check_fail(ats_npy_open(&a, dir), &a, ATS_STATUS_EIO, "not a regular file", "npy: a directory");
    check_fail(open_npy_bytes(&a, file, 0), &a, ATS_STATUS_EINVAL, "empty file", "npy: empty file");
}

// ----------------------------------------------------------------------------
// safetensors

static void test_safetensors(void) {
    // Tensors of every dtype, at unaligned offsets; a 3-D one; a scalar; metadata; another
    // dtype that is not read.
    static unsigned char data[1024], file[1 << 17];
    size_t off = 0;
    const double f32v[6] = {1.5, -2.25, 3.0, 0.125, -0.0, 6e7};
    size_t a_off = off;
    for (int i = 0; i < 6; i++, off += 4)
        put32le(data + off, f32_bits((float)f32v[i]));
    off += 3; // F64 at an odd offset
    size_t x_off = off;
    const double f64v[3] = {2.385, -1e-300, 4.9e-324};
    for (int i = 0; i < 3; i++, off += 8)
        put64le(data + off, f64_bits(f64v[i]));
    size_t h_off = off;
    const uint16_t hv[4] = {0x3c00, 0xc000, 0x0001, 0x7bff}; // 1, -2, 2^-24, 65504
    for (int i = 0; i < 4; i++, off += 2)
        put16le(data + off, hv[i]);
    size_t b_off = off;
    const uint16_t bv[2] = {0x3f80, 0x0001}; // 1, 2^-133
    for (int i = 0; i < 2; i++, off += 2)
        put16le(data + off, bv[i]);
    size_t t_off = off;
    for (int i = 0; i < 24; i++, off += 4)
        put32le(data + off, f32_bits((float)i));
    size_t s_off = off;
    put64le(data + off, f64_bits(-7.5));
    off += 8;
    size_t i_off = off;
    off += 16; // two I64, never read
    char json[2048];
    snprintf(json, sizeof json,
             "{\"__metadata__\":{\"format\":\"pt\"},"
             "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[%zu,%zu]},"
             "\"x\":{\"dtype\":\"F64\",\"shape\":[3],\"data_offsets\":[%zu,%zu]},"
             "\"h\":{\"dtype\":\"F16\",\"shape\":[4,1],\"data_offsets\":[%zu,%zu]},"
             "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[%zu,%zu]},"
             "\"t\":{\"shape\":[2,3,4],\"data_offsets\":[%zu,%zu],\"dtype\":\"F32\"},"
             "\"s\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[%zu,%zu]},"
             "\"i\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[%zu,%zu]},"
             "\"e\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[%zu,%zu]}}   ",
             a_off, a_off + 24, x_off, x_off + 24, h_off, h_off + 8, b_off, b_off + 4, t_off,
             t_off + 96, s_off, s_off + 8, i_off, i_off + 16, off, off);
    size_t n = make_st(file, json, data, off);
    struct ats_array *a = NULL;
    double out[64];
    int rc = open_st_bytes(&a, file, n, "a");
    int bad = rc || !a || ats_array_read_rows(out, a, 0, 2) != 0;
    for (int i = 0; i < 6 && !bad; i++)
        bad += !same_bits(out[i], f32v[i]);
    ATS_CHECK(!bad && ats_array_dtype(a) == ATS_DTYPE_F32 && ats_array_ndim(a) == 2 &&
                  ats_array_rows(a) == 2 && ats_array_cols(a) == 3,
              "safetensors F32 (2, 3) (%s)", last_reason);
    ats_array_close(a);
    rc = open_st_bytes(&a, file, n, "x");
    bad = rc || !a || ats_array_read_rows(out, a, 0, 1) != 0;
    for (int i = 0; i < 3 && !bad; i++)
        bad += !same_bits(out[i], f64v[i]);
    ATS_CHECK(!bad && ats_array_dtype(a) == ATS_DTYPE_F64 && ats_array_rows(a) == 1 &&
                  ats_array_cols(a) == 3,
              "safetensors F64 (3,) at an odd offset");
    ats_array_close(a);
    rc = open_st_bytes(&a, file, n, "h");
    bad = rc || !a || ats_array_read_rows(out, a, 0, 4) != 0;
    for (int i = 0; i < 4 && !bad; i++)
        bad += !same_bits(out[i], ref_half(hv[i]));
    ATS_CHECK(!bad && ats_array_dtype(a) == ATS_DTYPE_F16 && ats_array_rows(a) == 4 &&
                  ats_array_cols(a) == 1,
              "safetensors F16 (4, 1)");
    ats_array_close(a);
    rc = open_st_bytes(&a, file, n, "b");
    bad = rc || !a || ats_array_read_rows(out, a, 0, 1) != 0;
    ATS_CHECK(!bad && out[0] == 1.0 && out[1] == ldexp(1, -133), "safetensors BF16 (2,)");
    ats_array_close(a);
    rc = open_st_bytes(&a, file, n, "t");
    bad = rc || !a || ats_array_read_rows(out, a, 2, 4) != 0;
    for (int i = 0; i < 16 && !bad; i++)
        bad += out[i] != (double)(i + 8);
    ATS_CHECK(!bad && ats_array_ndim(a) == 3 && ats_array_rows(a) == 6 && ats_array_cols(a) == 4,
              "safetensors F32 (2, 3, 4), keys in another order: rows 2..5");
    ats_array_close(a);
    rc = open_st_bytes(&a, file, n, "s");
    bad = rc || !a || ats_array_read_rows(out, a, 0, 1) != 0;
    ATS_CHECK(!bad && ats_array_ndim(a) == 0 && ats_array_rows(a) == 1 && ats_array_cols(a) == 1 &&
                  out[0] == -7.5,
              "safetensors scalar shape []");
    ats_array_close(a);
    rc = open_st_bytes(&a, file, n, "e");
    ATS_CHECK(rc == 0 && a && ats_array_rows(a) == 0 && ats_array_cols(a) == 3 &&
                  ats_array_read_rows(out, a, 0, 0) == 0,
              "safetensors empty (0, 3)");
    ats_array_close(a);
    a = NULL;
    check_fail(open_st_bytes(&a, file, n, "i"), &a, ATS_STATUS_EUNSUP, "dtype I64",
               "safetensors: I64 tensor");
    check_fail(open_st_bytes(&a, file, n, "zz"), &a, ATS_STATUS_EINVAL,
               "no tensor 'zz'; the file has: a, x, h, b, t, s, i, e",
               "safetensors: missing name lists the tensors");
    check_fail(open_st_bytes(&a, file, n, "__metadata__"), &a, ATS_STATUS_EINVAL, "metadata",
               "safetensors: __metadata__ is not a tensor");

    // Every proper prefix fails cleanly with EINVAL.
    int64_t wrong = 0;
    for (size_t len = 0; len < n; len++) {
        a = NULL;
        last_status = -1;
        rc = open_st_bytes(&a, file, len, "a");
        if ((rc != ATS_STATUS_EINVAL || a || last_status != rc) && wrong++ < 5)
            printf("  prefix of %zu bytes: status %d (%s)\n", len, rc, last_reason);
        ats_array_close(a);
    }
    ATS_CHECK(wrong == 0, "safetensors: all %zu proper prefixes fail with EINVAL", n);
    check_fail(open_st_bytes(&a, file, 5, "a"), &a, ATS_STATUS_EINVAL, "8-byte header size",
               "safetensors: truncated size");

    // Header sizes.
    unsigned char hdr[64];
    memcpy(hdr, file, 64);
    put64le(hdr, 57);
    check_fail(open_st_bytes(&a, hdr, 64, "a"), &a, ATS_STATUS_EINVAL,
               "header size 57 runs past the end of the file (64 bytes)",
               "safetensors: size past the end");
    put64le(hdr, UINT64_MAX);
    check_fail(open_st_bytes(&a, hdr, 64, "a"), &a, ATS_STATUS_EINVAL, "runs past the end",
               "safetensors: size 2^64 - 1");
    put64le(hdr, UINT64_C(1) << 63);
    check_fail(open_st_bytes(&a, hdr, 64, "a"), &a, ATS_STATUS_EINVAL, "runs past the end",
               "safetensors: size 2^63");
    put64le(hdr, 0);
    check_fail(open_st_bytes(&a, hdr, 64, "a"), &a, ATS_STATUS_EINVAL, "too small",
               "safetensors: size 0");
    // A header over the format's 100 MB limit, in a sparse file.
    {
        const char *p = tmp("huge.safetensors");
        put64le(hdr, 100000001);
        hdr[8] = '{';
        FILE *f = fopen(p, "wb");
        int ok = f && fwrite(hdr, 1, 9, f) == 9 && fseek(f, 100000100L, SEEK_SET) == 0 &&
                 fputc(' ', f) != EOF;
        if (f && fclose(f) != 0)
            ok = 0;
        a = NULL;
        last_reason[0] = '\0';
        rc = ok ? ats_safetensors_open(&a, p, "a") : -1;
        check_fail(rc, &a, ATS_STATUS_EINVAL, "exceeds the format's limit",
                   "safetensors: 100 MB header limit");
        unlink(p);
    }

    // Malformed JSON and entries.
    static const struct {
        const char *json;
        int status;
        const char *text;
    } cases[] = {
        {"{\"a\":", ATS_STATUS_EINVAL, "not valid JSON"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", ATS_STATUS_EINVAL,
         "not valid JSON"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}x", ATS_STATUS_EINVAL,
         "unexpected bytes after the JSON"},
        {"[1, 2]", ATS_STATUS_EINVAL, "not a JSON object"},
        {"{\"a\":3}", ATS_STATUS_EINVAL, "entry of tensor 'a' is not a JSON object"},
        {"{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", ATS_STATUS_EINVAL, "no \"dtype\""},
        {"{\"a\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", ATS_STATUS_EINVAL,
         "no \"dtype\""},
        {"{\"a\":{\"dtype\":\"Q8\",\"shape\":[1],\"data_offsets\":[0,4]}}", ATS_STATUS_EUNSUP,
         "dtype Q8"},
        {"{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4]}}", ATS_STATUS_EUNSUP,
         "dtype F8_E4M3"},
        {"{\"a\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", ATS_STATUS_EUNSUP,
         "dtype f32"},
        {"{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", ATS_STATUS_EINVAL, "no \"shape\""},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":{},\"data_offsets\":[0,4]}}", ATS_STATUS_EINVAL,
         "no \"shape\""},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", ATS_STATUS_EINVAL,
         "dimension 0 of its shape"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1.5],\"data_offsets\":[0,4]}}", ATS_STATUS_EINVAL,
         "dimension 1 of its shape"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", ATS_STATUS_EINVAL,
         "dimension 0 of its shape"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,4]}}", ATS_STATUS_EINVAL,
         "dimension 0 of its shape"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}",
         ATS_STATUS_EINVAL, "too large"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", ATS_STATUS_EINVAL, "data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", ATS_STATUS_EINVAL,
         "data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", ATS_STATUS_EINVAL,
         "data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", ATS_STATUS_EINVAL,
         "data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", ATS_STATUS_EINVAL,
         "fall outside the data buffer of 16 bytes"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[16,20]}}", ATS_STATUS_EINVAL,
         "fall outside the data buffer of 16 bytes"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", ATS_STATUS_EINVAL,
         "span 4 bytes but shape (2,) of F32 needs 8"},
        {"{\"a\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", ATS_STATUS_EINVAL,
         "span 16 bytes but shape (2, 2) of BF16 needs 8"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         ATS_STATUS_EINVAL, "appears twice"},
        {"{\"b\":{}, \"c\\n\":{}}", ATS_STATUS_EINVAL, "no tensor 'a'; the file has: b, c?"},
        {"{\"__metadata__\":{}}", ATS_STATUS_EINVAL, "the file has: none"},
        // the other tensors' offsets must end where the file does
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", ATS_STATUS_EINVAL,
         "12 unexpected bytes after the last tensor's data"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[5],\"data_offsets\":[4,24]}}",
         ATS_STATUS_EINVAL,
         "truncated safetensors file: its tensors need 24 bytes of data, the "
         "file has 16"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},\"b\":7}",
         ATS_STATUS_EINVAL, "tensor 'b' has no valid \"data_offsets\""},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
         "\"b\":{\"data_offsets\":[8,4]}}",
         ATS_STATUS_EINVAL, "tensor 'b' has no valid \"data_offsets\""},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"b\":{\"dtype\":\"I32\",\"shape\":[3],\"data_offsets\":[4,16]}}",
         ATS_STATUS_OK, ""},
        // tolerated: spaces, extra keys in an entry
        {" { \"a\" : { \"dtype\" : \"F32\", \"shape\" : [ 4 ] , \"data_offsets\" : [ 0 , 16 ], "
         "\"extra\": null } } \n",
         ATS_STATUS_OK, ""},
    };
    unsigned char zeros[16] = {0};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t jl = strlen(cases[c].json);
        put64le(file, jl);
        memcpy(file + 8, cases[c].json, jl);
        memcpy(file + 8 + jl, zeros, 16);
        a = NULL;
        last_status = -1;
        rc = open_st_bytes(&a, file, 8 + jl + 16, "a");
        if (cases[c].status == ATS_STATUS_OK)
            ATS_CHECK(rc == 0 && a, "safetensors accepted: %s (%s)", cases[c].json, last_reason);
        else
            check_fail(rc, &a, cases[c].status, cases[c].text, cases[c].json);
        ats_array_close(a);
    }

    // NUL bytes are not the padding the format allows (spaces).
    {
        const char *j = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
        size_t jl = strlen(j);
        put64le(file, jl + 2);
        memcpy(file + 8, j, jl);
        memset(file + 8 + jl, 0, 2 + 4); // tensor a: 4 zero bytes after the padding
        check_fail(open_st_bytes(&a, file, 8 + jl + 2 + 4, "a"), &a, ATS_STATUS_EINVAL,
                   "unexpected bytes after the JSON", "safetensors: NUL padding");
    }

    // Many names: the list is cut and counts the rest.
    char big[8192] = "{";
    for (int i = 0; i < 100; i++) {
        char item[96];
        snprintf(item, sizeof item, "%s\"tensor_with_a_long_name_%03d\":{}", i ? "," : "", i);
        strcat(big, item);
    }
    strcat(big, "}");
    n = make_st(file, big, NULL, 0);
    check_fail(open_st_bytes(&a, file, n, "a"), &a, ATS_STATUS_EINVAL, " more)",
               "safetensors: 100 names are listed in part");
    ATS_CHECK(strstr(last_reason, "tensor_with_a_long_name_000, tensor_with_a_long_name_001") &&
                  strlen(last_reason) < 500,
              "safetensors: the list starts with the first names and stays short (%zu chars)",
              strlen(last_reason));

    // 65 dimensions.
    char deep[1024];
    strcpy(deep, "{\"a\":{\"dtype\":\"F32\",\"shape\":[");
    for (int i = 0; i < 65; i++)
        strcat(deep, i ? ",1" : "1");
    strcat(deep, "],\"data_offsets\":[0,4]}}");
    n = make_st(file, deep, zeros, 4);
    check_fail(open_st_bytes(&a, file, n, "a"), &a, ATS_STATUS_EUNSUP, "more than 64 dimensions",
               "safetensors: 65 dimensions");

    a = NULL;
    check_fail(ats_safetensors_open(&a, tmp("nothing.safetensors"), "a"), &a, ATS_STATUS_EIO,
               "cannot open", "safetensors: missing file");
}

// ----------------------------------------------------------------------------
// Ranges, writer errors, small things

static void test_misc(void) {
    ATS_CHECK(strcmp(ats_dtype_name(ATS_DTYPE_F16), "float16") == 0 &&
                  strcmp(ats_dtype_name(ATS_DTYPE_BF16), "bfloat16") == 0 &&
                  strcmp(ats_dtype_name(ATS_DTYPE_F32), "float32") == 0 &&
                  strcmp(ats_dtype_name(ATS_DTYPE_F64), "float64") == 0,
              "dtype names");
    ats_array_close(NULL);
    ATS_CHECK(1, "ats_array_close(NULL) is a no-op");

    double v[12], out[12];
    for (int i = 0; i < 12; i++)
        v[i] = pattern(i);
    const char *path = tmp("misc.npy");
    struct ats_array *a = NULL;
    int rc = ats_npy_write(path, v, 4, 3, 2, ATS_DTYPE_F64);
    ATS_CHECK(rc == 0 && ats_npy_open(&a, path) == 0 && a, "misc: (4, 3) written and opened");
    if (a) {
        const int64_t bad[][2] = {{-1, 1}, {0, -1},        {4, 1},         {2, 3},
                                  {0, 5},  {INT64_MAX, 1}, {1, INT64_MAX}, {INT64_MIN, 2}};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            last_status = -1;
            rc = ats_array_read_rows(out, a, bad[i][0], bad[i][1]);
            ATS_CHECK(rc == ATS_STATUS_EDOM && last_status == rc,
                      "read_rows(%" PRId64 ", %" PRId64 ") of 4 rows: EDOM (%s)", bad[i][0],
                      bad[i][1], last_reason);
        }
        ATS_CHECK(ats_array_read_rows(out, a, 4, 0) == 0 && ats_array_read_rows(NULL, a, 2, 0) == 0,
                  "read_rows of 0 rows at the end is fine");
        ATS_CHECK(ats_array_read_rows(out, a, 3, 1) == 0 && out[0] == v[9] && out[2] == v[11],
                  "read_rows of the last row");
        // Reading the same rows again after their pages were released gives the same values.
        ATS_CHECK(ats_array_read_rows(out, a, 0, 4) == 0 &&
                      ats_array_read_rows(out, a, 0, 4) == 0 && memcmp(out, v, sizeof v) == 0,
                  "read_rows twice: same values");
    }
    ats_array_close(a);

    a = NULL;
    check_fail(ats_npy_write(tmp("b.npy"), v, 1, 3, 1, ATS_DTYPE_BF16), &a, ATS_STATUS_EUNSUP,
               "bfloat16 is not a NumPy dtype", "write: bfloat16");
    check_fail(ats_npy_write(tmp("b.npy"), v, 1, 3, 3, ATS_DTYPE_F32), &a, ATS_STATUS_EINVAL,
               "ndim 3", "write: ndim 3");
    check_fail(ats_npy_write(tmp("b.npy"), v, 1, 3, 0, ATS_DTYPE_F32), &a, ATS_STATUS_EINVAL,
               "ndim 0", "write: ndim 0");
    check_fail(ats_npy_write(tmp("b.npy"), v, 2, 3, 1, ATS_DTYPE_F32), &a, ATS_STATUS_EINVAL,
               "1-D needs one row", "write: 1-D with 2 rows");
    check_fail(ats_npy_write(tmp("b.npy"), v, -1, 3, 2, ATS_DTYPE_F32), &a, ATS_STATUS_EINVAL,
               "invalid shape", "write: negative rows");
    check_fail(ats_npy_write(tmp("b.npy"), v, INT64_MAX, 3, 2, ATS_DTYPE_F32), &a,
               ATS_STATUS_EINVAL, "too many", "write: too many elements");
    check_fail(ats_npy_write(tmp("no_dir/b.npy"), v, 1, 3, 1, ATS_DTYPE_F32), &a, ATS_STATUS_EIO,
               "cannot create", "write: missing directory");
    check_fail(ats_npy_write("/dev/full", v, 4, 3, 2, ATS_DTYPE_F64), &a, ATS_STATUS_EIO,
               "'/dev/full' failed", "write: /dev/full");
}

int main(void) {
    ats_set_error_handler(capture);
    // First, while the peak RSS is still low: the check is on its growth.
    test_rss();
    test_changing_inputs();

    snprintf(dir, sizeof dir, "/tmp/ats_test_arrays_XXXXXX");
    if (!mkdtemp(dir)) {
        ATS_CHECK(0, "mkdtemp: %s", strerror(errno));
        return ats_test_summary();
    }
    test_misc();
    test_widening();
    double *rv = malloc(ROUND_MAX * sizeof *rv);
    int64_t nrv = rv ? rounding_values(rv) : 0;
    ATS_CHECK(rv && nrv <= ROUND_MAX, "rounding values: %" PRId64, nrv);
    if (rv)
        test_half_rounding(rv, nrv);
    test_round_trips();
    test_numpy(rv, nrv);
    test_npy_headers();
    test_safetensors();
    free(rv);

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("note: could not remove %s\n", dir);
    return ats_test_summary();
}
