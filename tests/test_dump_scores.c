/*
 * test_dump_scores.c: scripts/dump_scores.py on a small randomly initialised PyTorch attention
 * layer (Debian's python3-torch), then `attnscale diagnose` on what it wrote: the largest
 * weight and the entropy of every causal row must match the softmax PyTorch itself computed
 * (weights.npy), from q/k (float64) and from the float32 logits.
 * Run: make build/tests/test_dump_scores && build/tests/test_dump_scores
 */
#include <cjson/cJSON.h>
#include <math.h>

#include "attnscale.h"
#include "cli_run.h"
#include "test.h"

enum { N = 96 };

struct rows {
    double w1[N], h[N];
    int count;
};

static void add_row(const cJSON *o, void *ctx) {
    struct rows *r = ctx;
    const cJSON *rec = cJSON_GetObjectItem(o, "record");
    if (cJSON_IsString(rec) && strcmp(rec->valuestring, "row") == 0 && r->count < N) {
        r->w1[r->count] = cJSON_GetObjectItem(o, "w1")->valuedouble;
        r->h[r->count] = cJSON_GetObjectItem(o, "entropy")->valuedouble;
        r->count++;
    }
}

static void parse_rows(const char *out, struct rows *r) {
    r->count = 0;
    each_record(out, add_row, r);
}

// Worst relative difference of w1 and entropy against the weights PyTorch computed.
static double compare(const struct rows *r, const double *w) {
    double worst = r->count == N ? 0 : HUGE_VAL;
    for (int i = 0; i < r->count; i++) {
        long double mx = 0, h = 0;
        for (int j = 0; j <= i; j++) {
            mx = w[i * N + j] > mx ? w[i * N + j] : mx;
            if (w[i * N + j] > 0)
                h -= w[i * N + j] * logl(w[i * N + j]);
        }
        worst = fmax(worst, (double)fabsl(r->w1[i] / mx - 1));
        if (i > 0)
            worst = fmax(worst, (double)fabsl(r->h[i] / h - 1));
    }
    return worst;
}

int main(void) {
    if (cli_run_init() != 0)
        return 1;
    const char *src = getenv("ATS_SRC");
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 %s/scripts/dump_scores.py --out %s --n %d --d-model 32 --heads 4 "
             "--head 2 --seed 7 >/dev/null",
             src ? src : ".", tmpdir, N);
    int st = system(cmd);
    ATS_CHECK(st == 0, "dump_scores.py ran on a random torch attention layer (status %d)", st);

    char path[400];
    snprintf(path, sizeof path, "%s/weights.npy", tmpdir);
    struct ats_array *a = NULL;
    double *w = malloc(sizeof(double) * N * N);
    int ok = ats_npy_open(&a, path) == ATS_STATUS_OK && ats_array_rows(a) == N &&
             ats_array_cols(a) == N && ats_array_read_rows(w, a, 0, N) == ATS_STATUS_OK;
    ats_array_close(a);
    ATS_CHECK(ok, "weights.npy has the (%d, %d) causal softmax", N, N);

    struct rows r;
    snprintf(cmd, sizeof cmd, "diagnose --q %s/q.npy --k %s/k.npy --causal", tmpdir, tmpdir);
    struct run qk = run(cmd);
    parse_rows(qk.out, &r);
    double worst = compare(&r, w);
    // Both sides are float64 softmaxes of the same float64 logits, summed in other orders.
    ATS_CHECK(qk.status == 0 && worst < 1e-12,
              "diagnose --q --k: w1 and entropy of %d rows match PyTorch's softmax (worst rel "
              "%.2g)",
              r.count, worst);
    run_free(&qk);

    snprintf(cmd, sizeof cmd, "diagnose --scores %s/logits.npy --causal", tmpdir);
    struct run sc = run(cmd);
    parse_rows(sc.out, &r);
    worst = compare(&r, w);
    // logits.npy is float32: each logit carries a relative rounding of 2^-24 on values of
    // order 1-5, which moves weights by at most that times the logit spread: 1e-5 covers it.
    ATS_CHECK(sc.status == 0 && worst < 1e-5,
              "diagnose --scores (float32 logits, -inf masked): rows match PyTorch within float32 "
              "rounding (worst rel %.2g)",
              worst);
    run_free(&sc);
    free(w);
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return ats_test_summary();
}
