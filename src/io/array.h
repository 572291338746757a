/*
 * array.h: struct ats_array, shared by the .npy reader (src/io/npy.c) and the safetensors
 * reader (src/io/safetensors.c). npy.c also holds the part both formats use: opening the
 * file, reading its header and its rows with pread (never a mapping: a file that shrinks
 * while it is read is an error, not a SIGBUS), the shape and size checks and the conversion
 * of rows to double. Internal: never installed, never included by tools/cli (the fuzz targets use it
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
    const unsigned char *map; // bytes in memory: the whole input, or a file's first bytes
    size_t map_len;           // how many (> 0 for a file)
    int file;                 // 1: a file read through fd (map: its first bytes, owned)
    int fd;
    char *path;               // a file's name, for messages (owned)
    size_t file_len;          // a file's length (> 0); see ats_array_len
    size_t data_off;          // the array's first byte in the input
    size_t nbytes;            // rows * cols * itemsize; data_off + nbytes <= the input's length
    size_t itemsize;
    enum ats_dtype dtype;
    int big_endian; // 1: every element is stored most significant byte first
    int ndim;
    int64_t shape[ATS_ARRAY_MAX_NDIM];
    int64_t rows, cols; // the array seen as 2-D (see ats_array_rows)
};

// Bytes per element of t.
size_t ats_dtype_size(enum ats_dtype t);

// Opens path into a new, otherwise zeroed *a, with its first bytes read. Only regular files
// are accepted: the file is opened without blocking (a FIFO without a writer does not hang),
// then checked. Errors: ATS_STATUS_EIO (cannot open, stat or read; a FIFO, directory or
// device), ATS_STATUS_EINVAL (empty file), ATS_STATUS_ENOMEM. On failure *a is untouched.
int ats_array_file(struct ats_array **a, const char *path);

// The input's length: the file's, or map_len for bytes in memory.
size_t ats_array_len(const struct ats_array *a);

// Makes the first n bytes of the input (n <= ats_array_len) available in a->map, reading a
// file's further bytes: ATS_STATUS_EIO (naming path) when the file has changed since it was
// opened, ATS_STATUS_ENOMEM. a->map may move.
int ats_array_need(struct ats_array *a, size_t n, const char *path);

// Sets a's dtype, shape, rows, cols, itemsize and nbytes from shape: (ndim,), 0 <= ndim <=
// ATS_ARRAY_MAX_NDIM, every entry >= 0 (the callers check both while parsing). Returns
// ATS_STATUS_EINVAL, naming path, when the byte count overflows int64_t or size_t.
int ats_array_set_shape(struct ats_array *a, const int64_t *shape, int ndim, enum ats_dtype t,
                        const char *path);

// Writes "(2, 3, 4)" (NumPy's form, "(5,)" for 1-D, "()" for a scalar) into buf of size cap
// (truncated with "...", always NUL-terminated when cap > 0).
void ats_shape_format(char *buf, size_t cap, const int64_t *shape, int ndim);

// The parsers behind ats_npy_open and ats_safetensors_open: they read the header through
// ats_array_need (a->map[0, map_len) when the input is in memory) and fill in the rest of a, or return the status (reason through ATS_ERROR, naming path).
int ats_npy_parse(struct ats_array *a, const char *path);
int ats_safetensors_parse(struct ats_array *a, const char *path, const char *name);

#endif // ATS_IO_ARRAY_H
