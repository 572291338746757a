/*
 * internal.h: helpers shared by the library's sources (never installed, never included by
 * tools/cli). Error reporting goes through ATS_ERROR, allocation through ats_malloc/ats_free.
 */
#ifndef ATS_INTERNAL_H
#define ATS_INTERNAL_H

#include <assert.h>
#include <stddef.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "attnscale.h"

// Reports status with a printf-style reason to the error handler and returns status from
// the calling function.
#define ATS_ERROR(status, ...)                                                                 \
    do {                                                                                       \
        ats_error(__FILE__, __LINE__, (status), __VA_ARGS__);                                 \
        return (status);                                                                       \
    } while (0)

// Programmer contracts (NULL pointers, misuse of sizes); on in debug builds.
#define ATS_ASSERT(cond) assert(cond)

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
void ats_error(const char *file, int line, int status, const char *fmt, ...);

// Threads for a parallel region: the caller's count, or OpenMP's default for 0; 1 without
// OpenMP.
static inline int ats_thread_count(int threads) {
#ifdef _OPENMP
    return threads > 0 ? threads : omp_get_max_threads();
#else
    (void)threads;
    return 1;
#endif
}

// malloc/free through one place; ats_malloc_array checks count * size for overflow.
void *ats_malloc(size_t bytes);
void *ats_malloc_array(size_t count, size_t size);
void *ats_realloc_array(void *p, size_t count, size_t size);
void ats_free(void *p);

#endif // ATS_INTERNAL_H
