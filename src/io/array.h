/*
 * array.h: struct ats_array, shared by the .npy reader (src/io/npy.c) and the safetensors
 * reader (src/io/safetensors.c). npy.c also holds the part both formats use: mapping the
 * file, the shape and size checks, the conversion of rows to double and the release of the
 * pages read. Internal: never installed, never included by tools/cli (the fuzz targets use it
 * to run the parsers on exact-size heap buffers, where AddressSanitizer sees every overread).
 */
#ifndef ATS_IO_ARRAY_H
#define ATS_IO_ARRAY_H

#include <stddef.h>
#include <stdint.h>

#include "attnscale.h"

// Most dimensions a file may declare (NumPy 2's NPY_MAXDIMS).
#define ATS_ARRAY_MAX_NDIM 64

struct ats_array {
    const unsigned char *map; // the whole file, mmap(PROT_READ, MAP_PRIVATE)
    size_t map_len;           // the file's length (> 0)
    size_t page;              // page size for madvise; 0: map is not a mapping, never advise
    size_t data_off;          // the array's first byte inside map
    size_t nbytes;            // rows * cols * itemsize; data_off + nbytes <= map_len
    size_t itemsize;
    enum ats_dtype dtype;
    int big_endian; // 1: every element is stored most significant byte first
    int ndim;
    int64_t shape[ATS_ARRAY_MAX_NDIM];
    int64_t rows, cols; // the array seen as 2-D (see ats_array_rows)
};

// Bytes per element of t.
size_t ats_dtype_size(enum ats_dtype t);

// Opens path and maps it whole into a new, otherwise zeroed *a. Errors: ATS_STATUS_EIO (cannot
// open, stat or map; not a regular file), ATS_STATUS_EINVAL (empty file), ATS_STATUS_ENOMEM.
// On failure *a is untouched.
int ats_array_map(struct ats_array **a, const char *path);

// Sets a's dtype, shape, rows, cols, itemsize and nbytes from shape: (ndim,), 0 <= ndim <=
// ATS_ARRAY_MAX_NDIM, every entry >= 0 (the callers check both while parsing). Returns
// ATS_STATUS_EINVAL, naming path, when the byte count overflows int64_t or size_t.
int ats_array_set_shape(struct ats_array *a, const int64_t *shape, int ndim, enum ats_dtype t,
                        const char *path);

// Writes "(2, 3, 4)" (NumPy's form, "(5,)" for 1-D, "()" for a scalar) into buf of size cap
// (truncated with "...", always NUL-terminated when cap > 0).
void ats_shape_format(char *buf, size_t cap, const int64_t *shape, int ndim);

// The parsers behind ats_npy_open and ats_safetensors_open: they read a->map[0, map_len) and
// fill in the rest of a, or return the status (reason through ATS_ERROR, naming path).
int ats_npy_parse(struct ats_array *a, const char *path);
int ats_safetensors_parse(struct ats_array *a, const char *path, const char *name);

#endif // ATS_IO_ARRAY_H
