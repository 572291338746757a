/*
 * alloc.c: every allocation of the library goes through these, so a size overflow is caught
 * in one place and a debugger can break on one function.
 */
#include <stdint.h>
#include <stdlib.h>

#include "core/internal.h"

void *ats_malloc(size_t bytes) {
    return malloc(bytes ? bytes : 1);
}

void *ats_malloc_array(size_t count, size_t size) {
    if (size && count > SIZE_MAX / size)
        return NULL;
    return ats_malloc(count * size);
}

void *ats_realloc_array(void *p, size_t count, size_t size) {
    if (size && count > SIZE_MAX / size)
        return NULL;
    size_t bytes = count * size;
    return realloc(p, bytes ? bytes : 1);
}

void ats_free(void *p) {
    free(p);
}
