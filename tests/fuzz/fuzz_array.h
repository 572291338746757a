/*
 * fuzz_array.h: what the .npy and safetensors fuzz targets share. Each input is parsed twice:
 * from an exact-size heap copy (through the parser behind the open call, so AddressSanitizer
 * sees any read past the end), and as a real file through the open call (open, fstat, pread),
 * written to a memfd. When it opens, the
 * shape must be consistent with the file and every row is read; any input must fail with a
 * status otherwise, never crash, leak or read out of bounds.
 */
#ifndef ATS_FUZZ_ARRAY_H
#define ATS_FUZZ_ARRAY_H

#define _GNU_SOURCE 1 // memfd_create

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "attnscale.h"
#include "io/array.h"

// Checks what an opened array reports and reads all of it in blocks.
static void read_all(const struct ats_array *a, size_t file_size) {
    int ndim = ats_array_ndim(a);
    int64_t rows = ats_array_rows(a), cols = ats_array_cols(a);
    if (ndim < 0 || ndim > ATS_ARRAY_MAX_NDIM || rows < 0 || cols < 0)
        abort();
    int64_t r = 1;
    for (int i = 0; i + 1 < ndim; i++)
        r *= ats_array_dim(a, i);
    if (r != rows || cols != (ndim ? ats_array_dim(a, ndim - 1) : 1) || ats_array_dim(a, ndim) != 1)
        abort();
    size_t itemsize = ats_array_dtype(a) == ATS_DTYPE_F64    ? 8
                      : ats_array_dtype(a) == ATS_DTYPE_F32  ? 4
                      : ats_array_dtype(a) == ATS_DTYPE_BOOL ? 1
                                                             : 2;
    if (ats_array_read_rows(NULL, a, rows, 1) != ATS_STATUS_EDOM ||
        ats_array_read_rows(NULL, a, -1, 1) != ATS_STATUS_EDOM)
        abort();
    if (rows == 0)
        return;
    if (cols == 0) {
        if (ats_array_read_rows(NULL, a, 0, rows) != ATS_STATUS_OK)
            abort();
        return;
    }
    // rows, cols >= 1: the data fits in the file.
    if ((uint64_t)cols > file_size / itemsize ||
        (uint64_t)rows > file_size / itemsize / (uint64_t)cols)
        abort();
    int64_t block = cols >= 512 ? 1 : 512 / cols;
    double *out = malloc((size_t)(block * cols) * sizeof *out);
    if (!out)
        return;
    for (int64_t r0 = 0; r0 < rows; r0 += block) {
        int64_t n = rows - r0 < block ? rows - r0 : block;
        if (ats_array_read_rows(out, a, r0, n) != ATS_STATUS_OK)
            abort();
    }
    free(out);
}

// The two passes over one input: parse(a, name) on a heap copy, open(&a, path) on a file.
static void fuzz_array_input(const uint8_t *data, size_t size,
                             int (*parse)(struct ats_array *a, const char *name),
                             int (*open_file)(struct ats_array **a, const char *path)) {
    if (size == 0 || size > (1 << 20))
        return;
    // 1. From an exact-size heap copy (a->file == 0: the bytes are the whole input).
    unsigned char *copy = malloc(size);
    struct ats_array *a = calloc(1, sizeof *a);
    if (copy && a) {
        memcpy(copy, data, size);
        a->map = copy;
        a->map_len = size;
        if (parse(a, "fuzz input") == ATS_STATUS_OK)
            read_all(a, size);
    }
    free(a);
    free(copy);

    // 2. As a file.
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz_array", MFD_CLOEXEC);
        if (fd < 0)
            abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    a = NULL;
    int rc = open_file(&a, path);
    if ((rc == ATS_STATUS_OK) != (a != NULL))
        abort();
    if (a)
        read_all(a, size);
    ats_array_close(a);
}

#endif // ATS_FUZZ_ARRAY_H
