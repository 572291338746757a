/*
 * test_fuzz_corpus.c: every input of the fuzz corpora (tests/fuzz/corpus/{npy,safetensors,
 * values,tokens}) through the parsers (tokens: the loader and then the layer), so `make test` and `make check` (AddressSanitizer,
 * UndefinedBehaviorSanitizer) replay what the fuzzers found without clang. Each input must
 * either open (and then every row reads) or fail with a status.
 * Run: make build/tests/test_fuzz_corpus && build/tests/test_fuzz_corpus (from the source tree)
 */
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attnscale.h"
#include "test.h"

// Opens path as .npy (tensor NULL) or safetensors and reads everything; 1 when the outcome is
// a clean status or a consistent array.
static int replay_array(const char *path, const char *tensor) {
    struct ats_array *a = NULL;
    int rc = tensor ? ats_safetensors_open(&a, path, tensor) : ats_npy_open(&a, path);
    if (rc != ATS_STATUS_OK)
        return a == NULL;
    int64_t rows = ats_array_rows(a), cols = ats_array_cols(a);
    int ok = rows >= 0 && cols >= 0;
    double *buf = malloc(sizeof(double) * (size_t)(cols > 0 ? cols : 1));
    for (int64_t r = 0; ok && buf && r < rows && cols > 0; r++)
        ok = ats_array_read_rows(buf, a, r, 1) == ATS_STATUS_OK;
    free(buf);
    ats_array_close(a);
    return ok;
}

static int replay_values(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    char text[8192];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    if (n == 0)
        return 1;
    // The fuzzer's first byte picks a domain; the rest is the text (NUL ends it early).
    static const struct ats_domain domains[] = {
        {-HUGE_VAL, HUGE_VAL, 0, 0, 0}, {0, 1, 0, 1, 0}, {2, 9007199254740992.0, 0, 0, 1},
        {0, HUGE_VAL, 1, 0, 0}};
    const struct ats_domain *dom = &domains[(unsigned char)text[0] % 4];
    text[n] = '\0';
    struct ats_values v;
    int rc = ats_values_parse(&v, text + 1, dom, NULL);
    int ok = rc == ATS_STATUS_OK || (v.count == 0 && v.v == NULL);
    ats_values_clear(&v);
    return ok;
}

// A tokens file either loads as finite rows of non-zero norm, and then (when small) runs
// through the layer with pairs and exact eta to a status, or fails with x left NULL.
static int replay_tokens(const char *path) {
    double *x = NULL;
    int64_t n = 0, d = 0;
    int rc = ats_tokens_load(&x, &n, &d, path);
    if (rc != ATS_STATUS_OK)
        return x == NULL;
    int ok = n >= 1 && d >= 1 && ats_tokens_check(x, n, d) == ATS_STATUS_OK;
    if (ok && n >= 2 && n * d <= 4096) {
        const double beta[2] = {0, 40};
        struct ats_layer_metrics out[2];
        struct ats_layer_params p = ats_layer_params_default();
        p.n = n;
        p.d = d;
        p.beta = beta;
        p.nbeta = 2;
        p.pairs = 2;
        p.eta = ATS_ETA_EXACT;
        rc = ats_layer_metrics(out, x, &p);
        ok = rc != ATS_STATUS_OK || fabs(out[0].a_self - 1.0 / (double)n) < 1e-12;
    }
    free(x);
    return ok;
}

static void replay_dir(const char *dir, int kind) {
    DIR *d = opendir(dir);
    ATS_CHECK(d != NULL, "corpus %s is there", dir);
    if (!d)
        return;
    int files = 0, bad = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        int ok = kind == 0   ? replay_array(path, NULL)
                 : kind == 1 ? replay_array(path, "x")
                 : kind == 2 ? replay_values(path)
                             : replay_tokens(path);
        files++;
        if (!ok) {
            bad++;
            printf("  %s: inconsistent outcome\n", path);
        }
    }
    closedir(d);
    ATS_CHECK(files > 20 && bad == 0, "%s: %d inputs replayed, %d inconsistent", dir, files, bad);
}

int main(void) {
    replay_dir("tests/fuzz/corpus/npy", 0);
    replay_dir("tests/fuzz/corpus/safetensors", 1);
    replay_dir("tests/fuzz/corpus/values", 2);
    replay_dir("tests/fuzz/corpus/tokens", 3);
    return ats_test_summary();
}
