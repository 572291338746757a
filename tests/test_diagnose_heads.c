/*
 * test_diagnose_heads.c: `attnscale diagnose` on inputs with heads (more than two axes) against
 * the same command on each head's 2-D slice, which the release (784934a) diagnosed as rows
 * and which the golden cases keep byte for byte: the heads' output, with the "head" key and the
 * summary's per-head keys (ratio_median, regime shares) taken out, is the slices' outputs one
 * after the other. This covers
 * what the golden cases diagnose_scores_3d, diagnose_scores_3d_causal, diagnose_output and
 * diagnose_safetensors_f32 covered before heads (issue 11).
 * Run from the repository root: make build/tests/test_diagnose_heads &&
 * build/tests/test_diagnose_heads
 */
#include <math.h>

#include "attnscale.h"
#include "cli_run.h"
#include "test.h"

// Removes the first `"key":value,` (or `,"key":value` at the end of an object) of each line.
static void drop_key(char *s, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    for (char *line = s; *line;) {
        char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char *k = strstr(line, pat);
        if (k && k < line + len) {
            char *v = k + strlen(pat), *stop = v;
            while (*stop != ',' && *stop != '}' && *stop != '\n' && *stop)
                stop++;
            char *from = k, *to = stop;
            if (*stop == ',')
                to = stop + 1; // "key":v, -> ""
            else if (k > line && k[-1] == ',')
                from = k - 1; // ,"key":v} -> }
            memmove(from, to, strlen(to) + 1);
            len -= (size_t)(to - from);
        }
        line += len + (line[len] == '\n');
    }
}

// Drops CSV column `col` (0-based) from every line of s.
static void drop_column(char *s, int col) {
    for (char *line = s; *line;) {
        char *p = line;
        for (int c = 0; c < col && *p && *p != '\n'; p++)
            c += *p == ',';
        char *q = p;
        while (*q && *q != ',' && *q != '\n')
            q++;
        if (*q == ',')
            q++;
        else if (p > line && p[-1] == ',')
            p--;
        memmove(p, q, strlen(q) + 1);
        char *end = strchr(line, '\n');
        line = end ? end + 1 : line + strlen(line);
    }
}

static int header_column(const char *s, const char *name) {
    int col = 0;
    size_t n = strlen(name);
    for (const char *p = s; *p && *p != '\n'; col++) {
        if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == '\n'))
            return col;
        while (*p && *p != ',' && *p != '\n')
            p++;
        if (*p == ',')
            p++;
    }
    return -1;
}

// Writes each head (leading index) of a as a 2-D float64 .npy: tmpdir/NAME_h.npy.
static int64_t write_slices(const struct ats_array *a, const char *name) {
    int nd = ats_array_ndim(a);
    int64_t rows = ats_array_dim(a, nd - 2), cols = ats_array_cols(a);
    int64_t heads = ats_array_rows(a) / rows;
    double *buf = malloc((size_t)(rows * cols) * sizeof *buf);
    for (int64_t h = 0; buf && h < heads; h++) {
        char p[400];
        snprintf(p, sizeof p, "%s/%s_%lld.npy", tmpdir, name, (long long)h);
        if (ats_array_read_rows(buf, a, h * rows, rows) != ATS_STATUS_OK ||
            ats_npy_write(p, buf, rows, cols, 2, ATS_DTYPE_F64) != ATS_STATUS_OK)
            heads = -1;
    }
    free(buf);
    return buf ? heads : -1;
}

// The summary keys a run with heads adds.
static const char *const head_keys[] = {"ratio_median", "share_subcritical", "share_critical",
                                        "share_supercritical", "share_undetermined", NULL};

// The command on the heads input against the same on each slice: JSON Lines, or CSV when the
// options ask for it (one header; the slices' headers dropped after the first).
static void check_case(const char *label, const char *input, const char *name, int64_t heads,
                       const char *opts, int csv) {
    char args[2048];
    snprintf(args, sizeof args, "diagnose %s %s", input, opts);
    struct run all = run(args);
    size_t cap = 1 << 20, len = 0;
    char *want = calloc(cap, 1);
    int ok = all.status == 0 && want;
    for (int64_t h = 0; ok && h < heads; h++) {
        snprintf(args, sizeof args, "diagnose --scores %s/%s_%lld.npy %s", tmpdir, name,
                 (long long)h, opts);
        struct run one = run(args);
        ok = one.status == 0;
        const char *body = one.out;
        if (csv && h > 0)
            body = strchr(one.out, '\n') ? strchr(one.out, '\n') + 1 : "";
        size_t n = strlen(body);
        ok = ok && len + n < cap;
        if (ok) {
            memcpy(want + len, body, n + 1);
            len += n;
        }
        run_free(&one);
    }
    if (ok && csv) {
        int hc = header_column(all.out, "head");
        ok = hc == 1;
        if (ok)
            drop_column(all.out, hc);
        for (int i = 0; ok && head_keys[i]; i++) {
            int c = header_column(all.out, head_keys[i]);
            ok = c > 0;
            if (ok)
                drop_column(all.out, c);
        }
    } else if (ok) {
        drop_key(all.out, "head");
        for (int i = 0; head_keys[i]; i++)
            drop_key(all.out, head_keys[i]);
    }
    int same = ok && strcmp(all.out, want) == 0;
    ATS_CHECK(same, "%s: %lld heads give each 2-D slice's output in order (%zu bytes)", label,
              (long long)heads, len);
    if (!same && ok) {
        size_t i = 0;
        while (all.out[i] && all.out[i] == want[i])
            i++;
        printf("    first difference at byte %zu:\n    heads : %.160s\n    slices: %.160s\n", i,
               all.out + i, want + i);
    }
    free(want);
    run_free(&all);
}

int main(void) {
    if (cli_run_init() != 0)
        return 1;
    const char *fix = "tests/golden/fixtures";
    char p[400], in[600];

    struct ats_array *a;
    snprintf(p, sizeof p, "%s/scores_3d.npy", fix);
    int64_t heads = ats_npy_open(&a, p) == ATS_STATUS_OK ? write_slices(a, "s3") : -1;
    if (heads > 0)
        ats_array_close(a);
    ATS_CHECK(heads == 2, "scores_3d.npy: (2, 3, 40) split into %lld heads", (long long)heads);
    snprintf(in, sizeof in, "--scores %s", p);
    check_case("scores_3d", in, "s3", heads, "", 0);
    check_case("scores_3d causal qwen-logn", in, "s3", heads, "--causal --policy qwen-logn "
               "--train-len 2", 0);
    check_case("scores_3d causal csv", in, "s3", heads, "--causal --format csv", 1);

    snprintf(p, sizeof p, "%s/logits.safetensors", fix);
    heads = ats_safetensors_open(&a, p, "layer0.scores") == ATS_STATUS_OK
                ? write_slices(a, "st")
                : -1;
    if (heads > 0)
        ats_array_close(a);
    ATS_CHECK(heads > 1, "logits.safetensors layer0.scores split into %lld heads",
              (long long)heads);
    snprintf(in, sizeof in, "--safetensors %s --tensor layer0.scores", p);
    check_case("safetensors layer0.scores causal policy all", in, "st", heads,
               "--causal --policy all", 0);

    // --output: the file holds what stdout would.
    snprintf(in, sizeof in,
             "diagnose --scores %s/scores_3d.npy --causal --format csv --output %s/heads.csv",
             fix, tmpdir);
    struct run o = run(in);
    snprintf(in, sizeof in, "diagnose --scores %s/scores_3d.npy --causal --format csv", fix);
    struct run s = run(in);
    snprintf(p, sizeof p, "%s/heads.csv", tmpdir);
    char *file = slurp(p);
    ATS_CHECK(o.status == 0 && o.out[0] == '\0' && strcmp(file, s.out) == 0 &&
                  strncmp(file, "record,head,row,", 16) == 0,
              "--output writes the heads' CSV that stdout shows (%zu bytes)", strlen(file));
    free(file);
    run_free(&o);
    run_free(&s);
    // --plot with heads: the heat map, and beside it its table, one row per head with the
    // summary's ratio_median (the heads of one 3-D array: layer 0).
    snprintf(in, sizeof in, "diagnose --scores %s/scores_3d.npy --plot %s/heads.png",
             fix, tmpdir);
    struct run pl = run(in);
    snprintf(p, sizeof p, "%s/heads.csv", tmpdir);
    char *table = slurp(p);
    int rows_ok = pl.status == 0 && strncmp(table, "layer,head,ratio_median\n", 24) == 0;
    const char *line = strchr(table, '\n');
    for (int h = 0; rows_ok && h < 2; h++) {
        char key[64];
        snprintf(key, sizeof key, "\"head\":%d,\"rows\":3,\"ratio_median\":", h);
        const char *sum = strstr(pl.out, key);
        long layer = -1, head = -1;
        double ratio = NAN;
        rows_ok = sum && line && sscanf(line + 1, "%ld,%ld,%lf", &layer, &head, &ratio) == 3 &&
                  layer == 0 && head == h && ratio == strtod(sum + strlen(key), NULL);
        line = line ? strchr(line + 1, '\n') : NULL;
    }
    snprintf(p, sizeof p, "%s/heads.png", tmpdir);
    char *png = slurp(p);
    ATS_CHECK(rows_ok && strncmp(png + 1, "PNG", 3) == 0,
              "--plot heads.png with heads.csv beside it: layer, head and each summary's "
              "ratio_median (%s)",
              table);
    free(png);
    free(table);
    run_free(&pl);
    snprintf(in, sizeof in, "rm -rf %s", tmpdir);
    if (system(in) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return ats_test_summary();
}
