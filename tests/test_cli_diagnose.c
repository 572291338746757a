/*
 * test_cli_diagnose.c: `attnscale diagnose` and `attnscale policies` as users run them, on
 * files written here with known answers:
 *   - causal simplex rows (self 1, the rest rho): beta_hat = log n/(1 - rho) for every row and
 *     the summary's log law with slope 1/(1 - rho), polylog exponent 1 (THEORY.md 4.3);
 *   - q/k input equals the logits q.k/sqrt(d) written as scores;
 *   - a policy multiplies row p's beta by its multiplier at p (THEORY.md 5);
 *   - bad files and inputs: exit 1 or 2 with a message naming the row, column, file or option.
 * Run: make build/tests/test_cli_diagnose && build/tests/test_cli_diagnose
 */
#include <cjson/cJSON.h>
#include <math.h>

#include "attnscale.h"
#include "cli_run.h"
#include "test.h"

static char path_buf[8][320];

static const char *tmp(int slot, const char *name) {
    snprintf(path_buf[slot], sizeof path_buf[slot], "%s/%s", tmpdir, name);
    return path_buf[slot];
}

static double num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *str(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

// ---------------------------------------------------------------------------

struct simplex_check {
    int rows, bad;
    double worst;
    const cJSON *summary;
    double log_slope, xi;
    char best[16];
};

static void check_simplex_record(const cJSON *o, void *ctx) {
    struct simplex_check *c = ctx;
    if (strcmp(str(o, "record"), "summary") == 0) {
        c->log_slope = num(o, "log_slope");
        c->xi = num(o, "polylog_xi");
        snprintf(c->best, sizeof c->best, "%s", str(o, "best"));
        return;
    }
    if (strcmp(str(o, "record"), "row") != 0)
        return;
    c->rows++;
    double n = num(o, "n"), bh = num(o, "beta_hat");
    if (n < 2)
        return;
    // The row holds 1 and 0.3 as float64: gap 1 - 0.3, beta_hat = log n / that.
    double want = log(n) / (1 - 0.3), rel = fabs(bh / want - 1);
    c->worst = fmax(c->worst, rel);
    c->bad += !(rel <= 4 * 2.220446049250313e-16) || num(o, "row") != n - 1;
}

static void test_simplex_rows(void) {
    enum { N = 600 };
    double *s = malloc((size_t)N * N * sizeof *s);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            s[i * N + j] = j == i ? 1 : j < i ? 0.3 : NAN; // masked future: never read
    int rc = ats_npy_write(tmp(0, "simplex.npy"), s, N, N, 2, ATS_DTYPE_F64);
    free(s);
    ATS_CHECK(rc == ATS_STATUS_OK, "simplex logits written");
    char args[2048];
    snprintf(args, sizeof args, "diagnose --scores %s --causal", tmp(0, "simplex.npy"));
    struct run r = run(args);
    struct simplex_check c = {0, 0, 0, NULL, NAN, NAN, ""};
    each_record(r.out, check_simplex_record, &c);
    ATS_CHECK(r.status == 0 && c.rows == N && c.bad == 0,
              "causal simplex rows: %d rows, beta_hat = log n/(1 - rho) (worst rel %.2g; exit %d)",
              c.rows, c.worst, r.status);
    // Bucket medians of n and of log n differ by the spread within a 2^(1/4) bucket (log of
    // the median length against the median log length): about 2e-4 on the slopes here.
    ATS_CHECK(fabs(c.log_slope * 0.7 - 1) < 2e-3 && fabs(c.xi - 1) < 2e-3,
              "summary: log-law slope %.4f ~ 1/(1-rho) = %.4f, polylog xi %.4f ~ 1 (best %s)",
              c.log_slope, 1 / 0.7, c.xi, c.best);
    run_free(&r);

    // The same output for any thread count (rows are computed in parallel, written in order).
    snprintf(args, sizeof args, "diagnose --scores %s --causal --threads 1 --beta 0.5,2",
             tmp(0, "simplex.npy"));
    struct run t1 = run(args);
    snprintf(args, sizeof args, "diagnose --scores %s --causal --threads 2 --beta 0.5,2",
             tmp(0, "simplex.npy"));
    struct run t2 = run(args);
    ATS_CHECK(t1.status == 0 && t2.status == 0 && strcmp(t1.out, t2.out) == 0 &&
                  count_lines(t1.out) == 2 * N + 1,
              "--threads 1 and 2 give identical output, one row record per beta");
    run_free(&t1);
    run_free(&t2);

    // --policy all: the ranking. Simplex rows follow log n exactly, so the log-n family
    // (critical, log-n, su, ssmax: all proportional to log n) ties at slope 0 for rank 1;
    // rotary-only policies are not ranked (they do not scale whole logits).
    snprintf(args, sizeof args, "diagnose --scores %s --causal --policy all -q",
             tmp(0, "simplex.npy"));
    struct run ra = run(args);
    // The four tie to 9 digits and are listed in registry order: ssmax comes first.
    ATS_CHECK(ra.status == 0 && strstr(ra.out, "\"best_policy\":\"ssmax\"") &&
                  strstr(ra.out, "\"policy\":\"critical\",\"scope\":\"all\",\"beta\":1,") &&
                  count_lines(ra.out) - N - 1 == 12 && !strstr(ra.out, "\"policy\":\"yarn\""),
              "--policy all: 12 whole-logit policies ranked, log-n family first, yarn left out");
    int rank1 = 0;
    for (const char *q = ra.out; (q = strstr(q, "\"rank\":1}")); q++)
        rank1++;
    ATS_CHECK(rank1 == 4, "the four log-n policies share rank 1 (%d do)", rank1);
    run_free(&ra);
    snprintf(args, sizeof args, "diagnose --scores %s --causal --policy yarn",
             tmp(0, "simplex.npy"));
    expect_usage(args, "--policy yarn", "rotary");

    // CSV: one header for row, summary (and policy) records.
    snprintf(args, sizeof args, "diagnose --scores %s --causal --policy critical --format csv",
             tmp(0, "simplex.npy"));
    r = run(args);
    ATS_CHECK(r.status == 0 && strncmp(r.out, "record,row,n,causal,beta,", 25) == 0 &&
                  count_lines(r.out) == N + 3 && strstr(r.out, "\nsummary,") &&
                  strstr(r.out, "\npolicy,"),
              "CSV: header, %d rows, the summary and the policy record (%d lines)", N,
              count_lines(r.out));
    run_free(&r);
}

// ---------------------------------------------------------------------------

struct pair_check {
    double bh[64], ent[64], applied[64];
    int count;
};

static void collect(const cJSON *o, void *ctx) {
    struct pair_check *c = ctx;
    if (strcmp(str(o, "record"), "row") != 0 || c->count >= 64)
        return;
    c->bh[c->count] = num(o, "beta_hat");
    c->ent[c->count] = num(o, "entropy");
    c->applied[c->count] = num(o, "beta_applied");
    c->count++;
}

static void test_qk_and_policy(void) {
    enum { R = 40, NK = 48, D = 16 };
    static double q[R * D], k[NK * D], s[R * NK];
    uint64_t x = 2385;
    for (int i = 0; i < R * D; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        q[i] = (double)(x >> 11) * 0x1p-53 - 0.5;
    }
    for (int i = 0; i < NK * D; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        k[i] = (double)(x >> 11) * 0x1p-53 - 0.5;
    }
    for (int i = 0; i < R; i++)
        for (int j = 0; j < NK; j++) {
            long double acc = 0;
            for (int t = 0; t < D; t++)
                acc += (long double)q[i * D + t] * k[j * D + t];
            s[i * NK + j] = (double)(acc / sqrtl(D));
        }
    ats_npy_write(tmp(1, "q.npy"), q, R, D, 2, ATS_DTYPE_F64);
    ats_npy_write(tmp(2, "k.npy"), k, NK, D, 2, ATS_DTYPE_F64);
    ats_npy_write(tmp(3, "s.npy"), s, R, NK, 2, ATS_DTYPE_F64);
    char args[2048];
    snprintf(args, sizeof args, "diagnose --q %s --k %s --causal --beta 3", tmp(1, "q.npy"),
             tmp(2, "k.npy"));
    struct run a = run(args);
    snprintf(args, sizeof args, "diagnose --scores %s --causal --beta 3", tmp(3, "s.npy"));
    struct run b = run(args);
    struct pair_check ca = {{0}, {0}, {0}, 0}, cb = {{0}, {0}, {0}, 0};
    each_record(a.out, collect, &ca);
    each_record(b.out, collect, &cb);
    int same = ca.count == R && cb.count == R;
    double worst = 0;
    for (int i = 1; same && i < R; i++) {
        // BLAS and the long-double loop differ in the last bits of each logit; beta_hat
        // divides by a gap of order 0.1 between logits of order 1: 1e-13 covers it.
        double e1 = fabs(ca.bh[i] / cb.bh[i] - 1), e2 = fabs(ca.ent[i] / cb.ent[i] - 1);
        worst = fmax(worst, fmax(e1, e2));
        same &= e1 < 1e-13 && e2 < 1e-13;
    }
    ATS_CHECK(a.status == 0 && b.status == 0 && same,
              "--q/--k gives the statistics of the logits q.k/sqrt(d) (worst rel %.2g)", worst);
    run_free(&a);
    run_free(&b);

    // A (2, 20, 30) array is two heads of 20 positions: row 5 of head 1 is position 5, so
    // --causal shows it 6 columns and qwen-logn (L = 4) multiplies by log 6/log 4.
    snprintf(args, sizeof args,
             "/usr/bin/python3 -c \"import numpy as np; np.save('%s', "
             "np.random.default_rng(1).standard_normal((2, 20, 30)))\"",
             tmp(4, "seq.npy"));
    ATS_CHECK(system(args) == 0, "a (2, 20, 30) array written with NumPy");
    snprintf(args, sizeof args, "diagnose --scores %s --causal --policy qwen-logn --train-len 4",
             tmp(4, "seq.npy"));
    struct run sq = run(args);
    char want[128];
    snprintf(want, sizeof want,
             "\"head\":1,\"row\":5,\"n\":6,\"causal\":1,\"policy\":\"qwen-logn\"");
    const char *row25 = strstr(sq.out, want);
    const char *mul = row25 ? strstr(row25, "\"multiplier\":") : NULL;
    double m25 = mul ? strtod(mul + 13, NULL) : NAN;
    ATS_CHECK(sq.status == 0 && row25 && fabs(m25 - log(6.0) / log(4.0)) < 1e-15,
              "leading axes are heads: head 1, row 5 is position 5 (n = 6, multiplier %.17g)", m25);
    run_free(&sq);

    // qwen-logn with L = 16 multiplies row p's beta by log(p + 1)/log 16 once p + 1 > 16.
    snprintf(args, sizeof args,
             "diagnose --scores %s --causal --beta 3 --policy qwen-logn --train-len 16",
             tmp(3, "s.npy"));
    struct run p = run(args);
    struct pair_check cp = {{0}, {0}, {0}, 0};
    each_record(p.out, collect, &cp);
    int ok = p.status == 0 && cp.count == R;
    for (int i = 0; ok && i < R; i++) {
        double m = i + 1 > 16 ? log(i + 1.0) / log(16.0) : 1;
        ok &= fabs(cp.applied[i] - 3 * m) <= 4e-16 * 3 * m;
    }
    ATS_CHECK(ok, "--policy qwen-logn --train-len 16: beta_applied = 3 log(p+1)/log 16 past p = 15");
    run_free(&p);
}

// ---------------------------------------------------------------------------

static void test_bad_inputs(void) {
    char args[2048];
    double s[6] = {0, 1, 2, 3, NAN, 5};
    ats_npy_write(tmp(4, "nan.npy"), s, 2, 3, 2, ATS_DTYPE_F32);
    snprintf(args, sizeof args, "diagnose --scores %s", tmp(4, "nan.npy"));
    struct run r = run(args);
    ATS_CHECK(r.status == 1 && strstr(r.err, "row 1, column 1") && strstr(r.err, "NaN"),
              "a NaN logit: exit 1 naming row 1, column 1 (%s)", r.err);
    run_free(&r);
    s[4] = -HUGE_VAL;
    ats_npy_write(tmp(4, "inf.npy"), s, 2, 3, 2, ATS_DTYPE_F32);
    snprintf(args, sizeof args, "diagnose --scores %s", tmp(4, "inf.npy"));
    r = run(args);
    ATS_CHECK(r.status == 1 && strstr(r.err, "row 1, column 1") && strstr(r.err, "infinite"),
              "an infinite logit: exit 1 naming it (%s)", r.err);
    run_free(&r);
    // Under --causal row 0 sees column 0 only: -inf and NaN in the masked part are fine.
    double masked[9] = {1, -HUGE_VAL, NAN, 0.5, 1, -HUGE_VAL, 0.2, 0.1, 1};
    ats_npy_write(tmp(4, "masked.npy"), masked, 3, 3, 2, ATS_DTYPE_F16);
    snprintf(args, sizeof args, "diagnose --scores %s --causal", tmp(4, "masked.npy"));
    r = run(args);
    ATS_CHECK(r.status == 0 && count_lines(r.out) == 4,
              "--causal ignores masked -inf/NaN above the diagonal (float16 input)");
    run_free(&r);

    // safetensors: a BF16 tensor of causal logits beside another tensor; bfloat16 is the top
    // half of a float32, so 1.0 = 0x3f80, 0.5 = 0x3f00, 0.25 = 0x3e80.
    {
        const char *hdr = "{\"other\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                          "\"logits\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[4,12]}}";
        uint64_t hl = strlen(hdr);
        unsigned char data[12] = {0, 0, 0, 0, 0x80, 0x3f, 0x80, 0x3e, 0x00, 0x3f, 0x80, 0x3f};
        FILE *sf = fopen(tmp(6, "m.safetensors"), "wb");
        if (sf) {
            unsigned char le[8];
            for (int i = 0; i < 8; i++)
                le[i] = (unsigned char)(hl >> (8 * i));
            fwrite(le, 1, 8, sf);
            fwrite(hdr, 1, hl, sf);
            fwrite(data, 1, sizeof data, sf);
            fclose(sf);
        }
        snprintf(args, sizeof args, "diagnose --safetensors %s --tensor logits --causal",
                 tmp(6, "m.safetensors"));
        r = run(args);
        // Row 1 sees 0.5 and 1: one gap of 0.5, beta_hat = log 2/0.5.
        ATS_CHECK(r.status == 0 && strstr(r.out, "\"row\":1,\"n\":2,") &&
                      strstr(r.out, "\"beta_hat\":1.3862943611198906,"),
                  "--safetensors BF16 tensor: row 1 has beta_hat = log 2/0.5 (%s)", r.out);
        run_free(&r);
        snprintf(args, sizeof args, "diagnose --safetensors %s --tensor nope",
                 tmp(6, "m.safetensors"));
        r = run(args);
        ATS_CHECK(r.status == 1 && strstr(r.err, "nope") && strstr(r.err, "logits") &&
                      strstr(r.err, "other"),
                  "an unknown tensor: exit 1 naming the tensors present (%s)", r.err);
        run_free(&r);
    }

    FILE *f = fopen(tmp(5, "trunc.npy"), "wb");
    if (f) {
        fputs("\x93NUMPY\x01\x00\x76\x00{'descr': '<f8', 'fortran", f);
        fclose(f);
    }
    snprintf(args, sizeof args, "diagnose --scores %s", tmp(5, "trunc.npy"));
    r = run(args);
    ATS_CHECK(r.status == 1 && strstr(r.err, "trunc.npy"),
              "a truncated .npy: exit 1 naming the file (%s)", r.err);
    run_free(&r);
    snprintf(args, sizeof args, "diagnose --scores %s/missing.npy", tmpdir);
    r = run(args);
    ATS_CHECK(r.status == 1 && strstr(r.err, "missing.npy"), "a missing file: exit 1 (%s)", r.err);
    run_free(&r);
    snprintf(args, sizeof args, "diagnose --q %s --k %s", tmp(1, "q.npy"), tmp(3, "s.npy"));
    r = run(args);
    ATS_CHECK(r.status == 1 && strstr(r.err, "d = 16") && strstr(r.err, "d = 48"),
              "q and k with different d: exit 1 naming both (%s)", r.err);
    run_free(&r);
    snprintf(args, sizeof args, "diagnose --scores %s --causal", tmp(2, "k.npy"));
    r = run(args);
    ATS_CHECK(r.status == 1 && strstr(r.err, "--causal"),
              "--causal with more rows than columns: exit 1 (%s)", r.err);
    run_free(&r);

    snprintf(args, sizeof args, "diagnose --scores %s --q %s --k %s", tmp(3, "s.npy"),
             tmp(1, "q.npy"), tmp(2, "k.npy"));
    expect_usage(args, "exactly one input", NULL);
    snprintf(args, sizeof args, "diagnose --q %s", tmp(1, "q.npy"));
    expect_usage(args, "--q and --k", NULL);
    expect_usage("diagnose --tensor x", "--safetensors and --tensor", NULL);
    expect_usage("diagnose", "exactly one input", NULL);
    snprintf(args, sizeof args, "diagnose --scores %s --policy nope", tmp(3, "s.npy"));
    expect_usage(args, "unknown policy 'nope'", "qwen-logn");
    snprintf(args, sizeof args, "diagnose --scores %s --window 1", tmp(3, "s.npy"));
    expect_usage(args, "--window", "> 1");
    snprintf(args, sizeof args, "diagnose --scores %s --beta -1", tmp(3, "s.npy"));
    expect_usage(args, "--beta", ">= 0");
    snprintf(args, sizeof args, "diagnose --scores %s --policy qwen-logn --train-len 1",
             tmp(3, "s.npy"));
    expect_usage(args, "--train-len", NULL);

    // policies: the usage errors.
    expect_usage("policies --policy qwen-logn", "--n", "--pos");
    expect_usage("policies --policy nope --n 10", "unknown policy 'nope'", NULL);
    expect_usage("policies --n 10 --pos 10", "--pos 10", "--n 10");
    expect_usage("policies --n 10 --factor 0", "--factor", NULL);
    expect_usage("policies --list --n 10", "--list", NULL);
    expect_usage("policies --n 10 --plot x.gif", "--plot", ".png");
    expect_usage("policies --n 10 --plot x.png", "--plot", "several");
}

struct pol_check {
    int records, ok;
};

// THEORY.md section 5's last-row table, a few cells, through the CLI.
static void check_policy(const cJSON *o, void *ctx) {
    struct pol_check *c = ctx;
    const char *p = str(o, "policy");
    double n = num(o, "n"), m = num(o, "multiplier");
    double want = NAN;
    if (strcmp(p, "qwen-logn") == 0)
        want = n == 4096 ? 1.090909 : 1.818182;
    else if (strcmp(p, "llama4") == 0)
        want = n == 4096 ? 1 : 1.485981;
    else if (strcmp(p, "grok2") == 0)
        want = n == 4096 ? 1.199965 : 2.000000;
    c->records++;
    c->ok += fabs(m - want) <= 5e-7 && num(o, "pos") == n - 1 && strcmp(str(o, "scope"), "all") == 0 &&
             strcmp(str(o, "dependence"), "row") == 0;
}

static void test_policies_cli(void) {
    struct run r = run("policies --policy qwen-logn,llama4,grok2 --n 4096,1048576");
    struct pol_check c = {0, 0};
    each_record(r.out, check_policy, &c);
    ATS_CHECK(r.status == 0 && c.records == 6 && c.ok == 6,
              "policies: THEORY.md 5's table at n = 4096 and 1048576 (%d of %d)", c.ok, c.records);
    run_free(&r);
    r = run("policies --list --format csv");
    ATS_CHECK(r.status == 0 && count_lines(r.out) == 1 + ats_policy_count() &&
                  strncmp(r.out, "policy,family,source,formula,scope,dependence\n", 46) == 0,
              "policies --list names all %lld policies", (long long)ats_policy_count());
    run_free(&r);
    r = run("policies --policy yarn,qwen-logn --combine --n 65536");
    ATS_CHECK(r.status == 0 && strstr(r.out, "\"policy\":\"yarn+qwen-logn\"") &&
                  strstr(r.out, "\"scope\":\"mixed\"") && strstr(r.out, "\"extrapolated\":1") &&
                  strstr(r.err, "extrapolated"),
              "--combine multiplies per scope; Qwen past its table says so");
    run_free(&r);
    char args[2048];
    snprintf(args, sizeof args, "policies --n 1e3:1e6:30:log --plot %s", tmp(6, "pol.svg"));
    r = run(args);
    ATS_CHECK(r.status == 0 && access(tmp(6, "pol.svg"), F_OK) == 0 &&
                  count_lines(r.out) == 30 * ats_policy_count(),
              "policies --plot draws every policy over a log range");
    run_free(&r);
}

// The options issue 11 added: bad values are usage errors (exit 2) naming the option; a mask
// that does not fit the logits is a runtime error (exit 1) naming both shapes.
static void test_new_option_errors(void) {
    const char *sc = "--scores tests/golden/fixtures/scores_2d.npy";
    const char *qk = "--q tests/golden/fixtures/q.npy --k tests/golden/fixtures/k.npy";
    char args[1024];
    static const struct {
        int qk;
        const char *opts, *n1, *n2;
    } cases[] = {
        {1, "--scale 0", "--scale", "> 0"},
        {1, "--scale -1", "--scale", NULL},
        {0, "--scale 0.5", "--scale applies to --q/--k only", NULL},
        {1, "--masked-logits", "--masked-logits applies to logits", NULL},
        {0, "--target-len 1", "--target-len", "[2, 2^53]"},
        {0, "--target-len 1e6.5", "--target-len", NULL},
        {0, "--rows 3,3", "--rows", "given twice"},
        {0, "--rows 100000", "--rows", "outside"},
        {0, "--rows -1", "--rows", NULL},
        {0, "--plot heads.jpg", "--plot", ".png, .svg or .pdf"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(args, sizeof args, "diagnose %s %s", cases[i].qk ? qk : sc, cases[i].opts);
        expect_usage(args, cases[i].n1, cases[i].n2);
    }
    snprintf(args, sizeof args,
             "/usr/bin/python3 -c \"import numpy as np; np.save('%s/m.npy', np.ones((3, 7), "
             "bool))\"",
             tmpdir);
    ATS_CHECK(system(args) == 0, "a (3, 7) bool mask written with NumPy");
    snprintf(args, sizeof args, "diagnose %s --mask %s/m.npy", sc, tmpdir);
    struct run r = run(args);
    ATS_CHECK(r.status == 1 && strstr(r.err, "--mask of shape (3, 7) does not broadcast") &&
                  r.out[0] == '\0',
              "a mask of the wrong shape: exit 1 naming both shapes (%s)", r.err);
    run_free(&r);
}

int main(void) {
    if (cli_run_init() != 0)
        return 1;
    test_new_option_errors();
    test_simplex_rows();
    test_qk_and_policy();
    test_bad_inputs();
    test_policies_cli();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return ats_test_summary();
}
