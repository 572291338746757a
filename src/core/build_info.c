/*
 * build_info.c: what `attnscale --version` prints: version, git hash, compiler and flags,
 * BLAS configuration, OpenMP threads.
 */
#include <stdio.h>

#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "buildinfo.h"
#include "core/internal.h"

const char *ats_build_info(void) {
    static char info[1024];
    int threads = 1;
    const char *omp = "off";
#ifdef _OPENMP
    threads = omp_get_max_threads();
    omp = "on";
#endif
    snprintf(info, sizeof info,
             "attnscale %s (git %s)\n"
             "build: %s\n"
             "blas: %s\n"
             "openmp: %s, %d threads\n",
             ATS_VERSION, ATS_GIT_HASH, ATS_BUILD_FLAGS, openblas_get_config(), omp, threads);
    return info;
}
