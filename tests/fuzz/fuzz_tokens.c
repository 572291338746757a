/*
 * fuzz_tokens.c: libFuzzer target for the token loader of `phase --tokens` (ats_tokens_load:
 * the .npy reader plus the 2-D, dtype and row checks) and for the layer on what it accepts.
 * Every input is written to a memfd and loaded; an accepted file must give n, d >= 1 and
 * finite rows of non-zero norm, and small ones (n d <= 4096) then run through
 * ats_layer_metrics with pairs and exact eta in both precisions, which must return a status
 * (tokens parallel to working precision, or a non-finite output row) and never crash.
 * Run: make fuzz (seeds in tests/fuzz/corpus/tokens).
 */
#define _GNU_SOURCE 1 // memfd_create

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "attnscale.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    if (size == 0 || size > (1 << 20))
        return 0;
    if (fd < 0) {
        fd = memfd_create("fuzz_tokens", MFD_CLOEXEC);
        if (fd < 0)
            abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    double *x = NULL;
    int64_t n = 0, d = 0;
    int rc = ats_tokens_load(&x, &n, &d, path);
    if ((rc == ATS_STATUS_OK) != (x != NULL))
        abort();
    if (!x)
        return 0;
    if (n < 1 || d < 1 || ats_tokens_check(x, n, d) != ATS_STATUS_OK)
        abort();
    if (n >= 2 && n * d <= 4096) {
        const double beta[3] = {0, 1.5, 40};
        struct ats_layer_metrics out[3];
        for (int prec = 0; prec < 2; prec++) {
            struct ats_layer_params p = ats_layer_params_default();
            p.n = n;
            p.d = d;
            p.alpha = 0.5;
            p.beta = beta;
            p.nbeta = 3;
            p.pairs = 2;
            p.eta = ATS_ETA_EXACT;
            p.precision = prec ? ATS_PRECISION_F32 : ATS_PRECISION_F64;
            p.threads = 1;
            rc = ats_layer_metrics(out, x, &p);
            if (rc == ATS_STATUS_OK && !(out[0].a_self > 0 && out[0].a_self <= 1 + 1e-6))
                abort();
        }
    }
    free(x);
    return 0;
}
