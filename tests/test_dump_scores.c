/*
 * test_dump_scores.c: scripts/dump_scores.py on a small randomly initialised Llama-style decoder
 * (Debian's python3-torch; float64, 2 layers, 4 query / 2 key heads of dimension 8, rotary
 * embeddings, an additive torch.finfo(float64).min causal mask, attention through
 * attnscale.torch.attention_function as transformers calls it), then `attnscale diagnose` on
 * what it wrote (the command lines of its index.json). For every layer, head and row:
 * - n is the number of keys the row sees (row + 1: the mask's finfo.min keys excluded);
 * - the largest weight and the entropy, from --q/--k/--scale/--mask and from --scores
 *   logits.npy --masked-logits, match a long double softmax computed here from q.npy, k.npy
 *   and mask.npy (query head h uses key head h / 2) within 1e-12 relative;
 * - and the weights PyTorch itself computed (weights.npy: softmax in float32 cast back, as
 *   transformers' eager attention does) within float32 rounding.
 * Run: make build/tests/test_dump_scores && build/tests/test_dump_scores
 */
#include <cjson/cJSON.h>
#include <math.h>

#include "attnscale.h"
#include "cli_run.h"
#include "test.h"

enum { N = 96, H = 4, KVH = 2, D = 8, LAYERS = 2 };

struct rows {
    double w1[H][N], h[H][N];
    long n[H][N];
    int count, bad;
};

static void add_row(const cJSON *o, void *ctx) {
    struct rows *r = ctx;
    const cJSON *rec = cJSON_GetObjectItem(o, "record");
    if (!cJSON_IsString(rec) || strcmp(rec->valuestring, "row") != 0)
        return;
    const cJSON *head = cJSON_GetObjectItem(o, "head"), *row = cJSON_GetObjectItem(o, "row");
    const cJSON *n = cJSON_GetObjectItem(o, "n"), *w1 = cJSON_GetObjectItem(o, "w1");
    const cJSON *h = cJSON_GetObjectItem(o, "entropy");
    if (!cJSON_IsNumber(head) || !cJSON_IsNumber(row) || !cJSON_IsNumber(n) ||
        !cJSON_IsNumber(w1) || !cJSON_IsNumber(h) || head->valueint < 0 || head->valueint >= H ||
        row->valueint < 0 || row->valueint >= N) {
        r->bad++;
        return;
    }
    r->w1[head->valueint][row->valueint] = w1->valuedouble;
    r->h[head->valueint][row->valueint] = h->valuedouble;
    r->n[head->valueint][row->valueint] = (long)n->valuedouble;
    r->count++;
}

// Reads a whole .npy of the expected shape as doubles (NULL on any mismatch).
static double *read_npy(const char *path, int ndim, const int64_t *shape) {
    struct ats_array *a = NULL;
    if (ats_npy_open(&a, path) != ATS_STATUS_OK)
        return NULL;
    int ok = ats_array_ndim(a) == ndim;
    for (int i = 0; ok && i < ndim; i++)
        ok = ats_array_dim(a, i) == shape[i];
    double *out = ok ? malloc(sizeof(double) * (size_t)(ats_array_rows(a) * ats_array_cols(a)))
                     : NULL;
    if (out && ats_array_read_rows(out, a, 0, ats_array_rows(a)) != ATS_STATUS_OK) {
        free(out);
        out = NULL;
    }
    ats_array_close(a);
    return out;
}

// The long double reference: w1 and entropy of every (head, row), and its count of seen keys.
struct ref {
    long double w1[H][N], h[H][N];
    long n[H][N];
};

static void reference(struct ref *r, const double *q, const double *k, const double *mask,
                      double scale) {
    static long double s[N];
    for (int h = 0; h < H; h++)
        for (int i = 0; i < N; i++) {
            long double mx = -INFINITY;
            long seen = 0;
            for (int j = 0; j < N; j++) {
                double m = mask[i * N + j];
                if (m <= -1e30) {
                    s[j] = NAN;
                    continue;
                }
                long double dot = 0;
                for (int d = 0; d < D; d++)
                    dot += (long double)q[(h * N + i) * D + d] * k[((h / (H / KVH)) * N + j) * D + d];
                s[j] = scale * dot + m;
                mx = s[j] > mx ? s[j] : mx;
                seen++;
            }
            long double z = 0, ez = 0;
            for (int j = 0; j < N; j++)
                if (!isnan(s[j])) {
                    long double e = expl(s[j] - mx);
                    z += e;
                    ez += e * (mx - s[j]);
                }
            r->w1[h][i] = 1 / z;
            r->h[h][i] = logl(z) + ez / z; // -sum w log w with w = e^{s - mx} / z
            r->n[h][i] = seen;
        }
}

// From the weights PyTorch computed: (heads, N, N).
static void from_weights(struct ref *r, const double *w) {
    for (int h = 0; h < H; h++)
        for (int i = 0; i < N; i++) {
            long double mx = 0, ent = 0;
            for (int j = 0; j < N; j++) {
                double x = w[(h * N + i) * N + j];
                mx = x > mx ? x : mx;
                if (x > 0)
                    ent -= x * logl(x);
            }
            r->w1[h][i] = mx;
            r->h[h][i] = ent;
        }
}

// Worst relative difference of w1 and entropy (entropy: plus an absolute floor, as row 0's is
// exactly 0), and whether every row's n equals the reference's.
static double compare(const struct rows *got, const struct ref *want, double floor, int *n_ok) {
    double worst = got->count == H * N && got->bad == 0 ? 0 : HUGE_VAL;
    *n_ok = got->count == H * N;
    for (int h = 0; h < H; h++)
        for (int i = 0; i < N; i++) {
            worst = fmax(worst, (double)fabsl(got->w1[h][i] / want->w1[h][i] - 1));
            worst = fmax(worst, (double)(fabsl(got->h[h][i] - want->h[h][i]) /
                                         (fabsl(want->h[h][i]) + floor)));
            *n_ok = *n_ok && got->n[h][i] == want->n[h][i] && want->n[h][i] == i + 1;
        }
    return worst;
}

static const char *json_str(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

int main(void) {
    if (cli_run_init() != 0)
        return 1;
    const char *src = getenv("ATS_SRC");
    char cmd[4096], path[600];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 %s/scripts/dump_scores.py --out %s/dump --n %d --layers %d "
             "--heads %d --kv-heads %d --head-dim %d --dtype float64 --weights --seed 7 "
             ">/dev/null",
             src ? src : ".", tmpdir, N, LAYERS, H, KVH, D);
    int st = system(cmd);
    ATS_CHECK(st == 0, "dump_scores.py ran on a random Llama-style torch decoder (status %d)", st);

    snprintf(path, sizeof path, "%s/dump/index.json", tmpdir);
    char *text = slurp(path);
    cJSON *index = cJSON_Parse(text);
    free(text);
    ATS_CHECK(cJSON_IsArray(index) && cJSON_GetArraySize(index) == LAYERS,
              "index.json lists the %d attention calls", LAYERS);

    static struct rows got;
    static struct ref want, torch_w;
    const int64_t qshape[] = {H, N, D}, kshape[] = {KVH, N, D}, mshape[] = {1, N, N},
                  wshape[] = {H, N, N};
    for (int l = 0; l < cJSON_GetArraySize(index); l++) {
        const cJSON *c = cJSON_GetArrayItem(index, l);
        const cJSON *files = cJSON_GetObjectItem(c, "files");
        const cJSON *scale = cJSON_GetObjectItem(c, "scale");
        char name[64];
        snprintf(name, sizeof name, "layers.%d.self_attn", l);
        ATS_CHECK(strcmp(json_str(c, "layer"), name) == 0 &&
                      strcmp(json_str(c, "path"), "attention_function") == 0 &&
                      cJSON_IsNumber(scale) && scale->valuedouble == pow(D, -0.5),
                  "call %d: layer %s, the attention_function path, scale %d^-0.5", l, name, D);
        double *q = read_npy(json_str(files, "q"), 3, qshape);
        double *k = read_npy(json_str(files, "k"), 3, kshape);
        double *m = read_npy(json_str(files, "mask"), 3, mshape);
        double *w = read_npy(json_str(files, "weights"), 3, wshape);
        ATS_CHECK(q && k && m && w,
                  "%s: q.npy (%d, %d, %d), k.npy (%d, %d, %d), mask.npy (1, %d, %d), weights.npy "
                  "(%d, %d, %d)",
                  name, H, N, D, KVH, N, D, N, N, H, N, N);
        if (!(q && k && m && w && cJSON_IsNumber(scale))) {
            free(q), free(k), free(m), free(w);
            continue;
        }
        reference(&want, q, k, m, scale->valuedouble);
        from_weights(&torch_w, w);

        // The script's own command line: --q --k --scale --mask.
        const char *line = json_str(c, "command");
        ATS_CHECK(strncmp(line, "attnscale diagnose --q ", 23) == 0 && strstr(line, "--mask"),
                  "%s: the printed command is attnscale diagnose --q ... --mask (%s)", name, line);
        memset(&got, 0, sizeof got);
        struct run qk = run(line + strlen("attnscale "));
        each_record(qk.out, add_row, &got);
        int n_ok;
        double worst = compare(&got, &want, 1e-14, &n_ok);
        // Both sides: double / long double softmaxes of the same float64 q, k, summed in other
        // orders.
        ATS_CHECK(qk.status == 0 && worst < 1e-12 && n_ok,
                  "%s: diagnose --q --k --mask: n = keys seen, w1 and entropy of %d rows x %d "
                  "heads match the long double softmax (worst rel %.2g)",
                  name, N, H, worst);
        // PyTorch's weights: softmax in float32, a relative rounding of a few 2^-24 per weight
        // (exp, the sum, the division), so w1 is within ~1e-7 relative and the entropy within
        // ~1e-7 x sum w (|log w| + 1) <= 1e-7 (H + 1): relative to H + 1 (floor 1), 1e-5.
        double tw = compare(&got, &torch_w, 1, &n_ok);
        ATS_CHECK(tw < 1e-5, "%s: ... and PyTorch's own float32 softmax (worst rel %.2g)", name,
                  tw);
        run_free(&qk);

        snprintf(cmd, sizeof cmd, "diagnose --scores %s --masked-logits",
                 json_str(files, "logits"));
        memset(&got, 0, sizeof got);
        struct run sc = run(cmd);
        each_record(sc.out, add_row, &got);
        worst = compare(&got, &want, 1e-14, &n_ok);
        // logits.npy: float64 q.k * scale + mask formed by torch; finfo.min keys excluded.
        ATS_CHECK(sc.status == 0 && worst < 1e-12 && n_ok,
                  "%s: diagnose --scores logits.npy --masked-logits: the same rows (worst rel "
                  "%.2g)",
                  name, worst);
        run_free(&sc);
        free(q), free(k), free(m), free(w);
    }
    cJSON_Delete(index);
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return ats_test_summary();
}
