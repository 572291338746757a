/*
 * test_cli_phase.c: `attnscale phase` as users run it (DESIGN.md "phase"; THEORY.md 2.1-2.10):
 *   1. usage errors: exit 2, nothing on stdout, one line naming the option, then the hint;
 *   2. --config simplex: every metric against THEORY.md 2.2 and 2.6 evaluated here in long
 *      double, and against the printed test vectors of THEORY.md 2.10 (n = 6, d = 9; n = 1024
 *      at gamma = 0.5, 1, 1.5 gamma_c) to their printed digits; stderr exactly 0;
 *   3. Hutchinson eta on the built simplex within 4 standard errors of 2.6, and almost-simplex
 *      tokens at d = 8192 close to the simplex lambda (tolerance from the cosine fluctuations);
 *   4. --tokens: explicit simplex .npy files (float64 and float32) give the closed forms, the
 *      exact Jacobian-block eta included; bad files exit 1 naming the row or the problem;
 *   5. identical output for --threads 1 and 2 (f64 and f32); another --seed, other values;
 *   6. statistics: standard errors, gamma = 0 (uniform attention) and gamma = 50 (identity
 *      attention: lambda = 1, eta = (1 - 1/d) E[1/|x|^2], THEORY.md 2.4);
 *   7. CSV and JSON carry the same records; header; record counts; --plot PNG files.
 * Run: make build/tests/test_cli_phase && build/tests/test_cli_phase
 */
#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>

#include "attnscale.h"
#include "cli_run.h"
#include "test.h"

static char path_buf[8][320];

static const char *tmp(int slot, const char *name) {
    snprintf(path_buf[slot], sizeof path_buf[slot], "%s/%s", tmpdir, name);
    return path_buf[slot];
}

// ---------------------------------------------------------------------------
// Records

enum { MAXREC = 512 };

struct rec {
    char config[24], metric[16], eta_method[16], precision[8];
    double n, d, rho, alpha, gamma, beta, trials, probes, value, stderr_, median;
    int rho_null, stderr_null;
};

struct recs {
    int count;
    struct rec r[MAXREC];
};

static double num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static void copy_str(char *dst, size_t size, const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    snprintf(dst, size, "%s", cJSON_IsString(v) ? v->valuestring : "?");
}

static void add_record(const cJSON *o, void *ctx) {
    struct recs *rs = ctx;
    if (rs->count >= MAXREC)
        return;
    struct rec *r = &rs->r[rs->count++];
    copy_str(r->config, sizeof r->config, o, "config");
    copy_str(r->metric, sizeof r->metric, o, "metric");
    copy_str(r->eta_method, sizeof r->eta_method, o, "eta_method");
    copy_str(r->precision, sizeof r->precision, o, "precision");
    r->n = num(o, "n");
    r->d = num(o, "d");
    r->rho = num(o, "rho");
    r->alpha = num(o, "alpha");
    r->gamma = num(o, "gamma");
    r->beta = num(o, "beta");
    r->trials = num(o, "trials");
    r->probes = num(o, "probes");
    r->value = num(o, "value");
    r->stderr_ = num(o, "stderr");
    r->median = num(o, "median");
    r->rho_null = cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "rho"));
    r->stderr_null = cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "stderr"));
}

// Runs "attnscale phase ARGS" and parses its JSON records into rs; returns the exit status.
static int phase_json(struct recs *rs, const char *args) {
    char cmd[4000];
    snprintf(cmd, sizeof cmd, "phase %s", args);
    struct run r = run(cmd);
    rs->count = 0;
    each_record(r.out, add_record, rs);
    if (r.status != 0)
        printf("  'attnscale %s' exited %d: %s", cmd, r.status, r.err);
    int st = r.status;
    run_free(&r);
    return st;
}

// The record of (rho, alpha, gamma, metric); NULL when absent. NaN rho matches any rho.
static const struct rec *find(const struct recs *rs, double rho, double alpha, double gamma,
                              const char *metric) {
    for (int i = 0; i < rs->count; i++) {
        const struct rec *r = &rs->r[i];
        // gamma = 0.5/(1 - 0.8) is 2.5000000000000004 in double: match to 1e-14
        if ((isnan(rho) || r->rho == rho) && r->alpha == alpha &&
            fabs(r->gamma - gamma) <= 1e-14 * gamma && strcmp(r->metric, metric) == 0)
            return r;
    }
    return NULL;
}

static const struct rec *find_beta(const struct recs *rs, double rho, double alpha, double beta,
                                   const char *metric) {
    for (int i = 0; i < rs->count; i++) {
        const struct rec *r = &rs->r[i];
        if ((isnan(rho) || r->rho == rho) && r->alpha == alpha && r->beta == beta &&
            strcmp(r->metric, metric) == 0)
            return r;
    }
    return NULL;
}

// ---------------------------------------------------------------------------
// THEORY.md 2.2 and 2.6 in long double, written from the document (not from src/theory).

struct sref {
    long double a, b, rho_out, lambda, eta, entropy, support, angle;
};

static struct sref simplex_ref(long double n, long double d, long double rho, long double alpha,
                               long double q, long double beta) {
    struct sref s;
    long double E = expl(beta * (1 - rho));
    long double a = E / (E + n - 1), b = 1 / (E + n - 1);
    long double s1 = 1 + (n - 1) * rho, sq = sqrtl(q);
    long double c = a - b + alpha * sq;
    long double qp = c * c + 2 * c * b * s1 + b * b * n * s1;
    s.a = a;
    s.b = b;
    s.rho_out = (c * c * rho + 2 * c * b * s1 + b * b * n * s1) / qp;
    s.lambda = c * c / qp;
    long double w = 1 - rho, Q2 = a * a + (n - 1) * b * b, Q3 = a * a * a + (n - 1) * b * b * b;
    long double T1 = w * (1 - Q2) - w * w * a * (1 - a);
    long double T2 = w * w * (Q2 - 2 * Q3 + Q2 * Q2) -
                     w * w * w * (a * a * (1 - a) * (1 - a) + (n - 1) * a * a * b * b);
    long double Jd = (a * a * (d - 1) + 2 * a * beta * T1 + beta * beta * T2) / q +
                     (2 * alpha / sq) * (a * (d - 1) + beta * T1) + alpha * alpha * d;
    long double uw = -(a - b) * (1 - rho * rho) - b * s1 * w;
    long double uu = 1 - 2 * ((a - b) * rho + b * s1) + (a - b) * (a - b) + 2 * (a - b) * b * s1 +
                     b * b * n * s1;
    long double Jo = (b * b / q) * ((d - 1) + 2 * beta * uw + beta * beta * uu * (1 - rho * rho));
    s.eta = (Jd + (n - 1) * Jo) / d;
    s.entropy = -a * logl(a) - (n - 1) * b * logl(b);
    s.support = 1 / Q2;
    s.angle = acosl(s.rho_out) / acosl(rho);
    return s;
}

static long double sref_metric(const struct sref *s, const char *m) {
    if (strcmp(m, "lambda") == 0)
        return s->lambda;
    if (strcmp(m, "lambda_angle") == 0)
        return s->angle;
    if (strcmp(m, "eta") == 0)
        return s->eta;
    if (strcmp(m, "rho_out") == 0)
        return s->rho_out;
    if (strcmp(m, "a_self") == 0)
        return s->a;
    if (strcmp(m, "entropy") == 0)
        return s->entropy;
    if (strcmp(m, "support") == 0)
        return s->support;
    return NAN;
}

// Tolerance of a double evaluation of the closed forms against the long-double reference.
// rho_out, lambda, a_self, entropy, support: a few operations on quantities of order one
// (relative error a few ulps, 1e-14 leaves a factor 45). eta sums terms as large as
// beta^2 T2 (<= 81 * 0.02 at beta = 9) and cancels them to results >= 0.05: 1e-13.
// lambda_angle divides by acos(rho') near rho' = 1, which amplifies the error of rho' by
// 1/(2 (1 - rho')), capped here by the smallest 1 - rho' of the grid (~1e-3): 1e-12.
static double closed_rtol(const char *m) {
    if (strcmp(m, "eta") == 0)
        return 1e-13;
    if (strcmp(m, "lambda_angle") == 0)
        return 1e-12;
    return 1e-14;
}

// ---------------------------------------------------------------------------
// 1. Usage errors

// exit 2, empty stdout, the first stderr line names both needles, the second is the hint.
static void phase_usage(const char *args, const char *needle1, const char *needle2) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "phase %s", args);
    struct run r = run(cmd);
    const char *nl = strchr(r.err, '\n');
    size_t first = nl ? (size_t)(nl - r.err) : strlen(r.err);
    char line[1024];
    snprintf(line, sizeof line, "%.*s", (int)(first < sizeof line - 1 ? first : sizeof line - 1),
             r.err);
    int ok = r.status == 2 && r.out[0] == '\0' && strstr(line, needle1) &&
             (!needle2 || strstr(line, needle2)) && count_lines(r.err) == 2 && nl &&
             strncmp(nl + 1, "Try 'attnscale phase --help'", 28) == 0;
    ATS_CHECK(ok, "'%s' -> exit 2, one line naming '%s'%s%s (exit %d, stderr: %s)", cmd, needle1,
              needle2 ? " and " : "", needle2 ? needle2 : "", r.status, r.err);
    run_free(&r);
}

static void test_usage(void) {
    char a[1024];
    phase_usage("--gamma 1", "--n is required", NULL);
    phase_usage("--n 8", "--gamma", "--beta");
    phase_usage("--n 8 --gamma 1 --beta 1", "--gamma and --beta", "exclusive");
    phase_usage("--n 8 --beta 1 --gamma 1", "--gamma and --beta", "exclusive");
    phase_usage("--n 8 --gamma 1 --rho 1", "--rho", "[0, 1)");
    phase_usage("--n 8 --gamma 1 --rho -0.1", "--rho", "[0, 1)");
    phase_usage("--n 8 --gamma -1", "--gamma", ">= 0");
    phase_usage("--n 8 --beta -0.5", "--beta", ">= 0");
    phase_usage("--n 8 --gamma 1 --alpha -1", "--alpha", ">= 0");
    phase_usage("--n 0 --gamma 1", "--n", "[2, ");
    phase_usage("--n 1 --gamma 1", "--n", "[2, ");
    phase_usage("--n 8.5 --gamma 1", "--n", "integer");
    phase_usage("--n 8 --d 0 --gamma 1", "--d", "[1, ");
    phase_usage("--n 8 --gamma 1 --trials 0", "--trials", "[1, ");
    phase_usage("--n 8 --gamma 1 --metric eta --probes 0", "--probes", "[1, ");
    phase_usage("--n 8 --gamma 1 --metric bogus", "--metric", "'bogus'");
    phase_usage("--n 8 --gamma 1 --metric lambda,lambda", "--metric", "twice");
    phase_usage("--n 8 --gamma 1 --metric ,", "--metric", "empty");
    phase_usage("--n 8 --gamma 1 --config bogus", "--config", "'bogus'");
    phase_usage("--n 8 --gamma 1 --metric eta --eta-method bogus", "--eta-method", "'bogus'");
    phase_usage("--n 8 --gamma 1 --precision f16", "--precision", "'f16'");
    phase_usage("--n 8 --gamma 1 --config sphere --rho 0.3", "--rho", "sphere");
    snprintf(a, sizeof a, "--tokens %s --config sphere --gamma 1", tmp(0, "none.npy"));
    phase_usage(a, "--tokens", "--config sphere");
    snprintf(a, sizeof a, "--tokens %s --n 8 --gamma 1", tmp(0, "none.npy"));
    phase_usage(a, "--n and --d", "tokens file");
    snprintf(a, sizeof a, "--tokens %s --rho 0.5 --gamma 1", tmp(0, "none.npy"));
    phase_usage(a, "--rho", "file");
    phase_usage("--config file --gamma 1", "--config file", "--tokens");
    phase_usage("--n 8 --gamma 1 --probes 4", "--probes", "--metric eta");
    phase_usage("--n 8 --gamma 1 --eta-method exact", "--eta-method", "--metric eta");
    phase_usage("--n 8 --gamma 1 --metric eta --eta-method exact --probes 4", "--probes",
                "hutchinson");
    snprintf(a, sizeof a, "--n 8 --gamma 0,1 --metric lambda,eta --plot %s", tmp(1, "u.png"));
    phase_usage(a, "--plot", "one --metric");
    snprintf(a, sizeof a, "--n 8 --gamma 0,1 --plot %s", tmp(1, "u.ext"));
    phase_usage(a, "--plot", ".png");
    snprintf(a, sizeof a, "--n 8,16 --rho 0.2,0.5 --gamma 0,1 --plot %s", tmp(1, "u.png"));
    phase_usage(a, "--plot", "one value of --n");
    snprintf(a, sizeof a, "--n 8 --gamma 1 --plot %s", tmp(1, "u.png"));
    phase_usage(a, "--plot", "--gamma");
    phase_usage("--n 8 --gamma 1 --bogus", "unknown option '--bogus'", NULL);
    phase_usage("--n 8 --gamma 1 extra", "unexpected argument 'extra'", NULL);
    phase_usage("--n 8 --gamma 1e308", "--gamma", "overflows");
    phase_usage("--n 8 --d 8 --gamma 1 --config simplex --metric eta", "d >= n + 1",
                "n = 8, d = 8");
    ATS_CHECK(access(tmp(1, "u.png"), F_OK) != 0, "a usage error writes no figure");
}

// ---------------------------------------------------------------------------
// 2. The exact simplex: closed forms

// Every record of rs against simplex_ref at its own inputs (q = 1); stderr exactly 0 and the
// median equal to the value. Returns the number of records checked.
static int check_closed(const struct recs *rs, const char *what) {
    int bad = 0, shown = 0;
    for (int i = 0; i < rs->count; i++) {
        const struct rec *r = &rs->r[i];
        long double beta = (long double)r->gamma * logl((long double)r->n);
        struct sref s = simplex_ref(r->n, r->d, r->rho, r->alpha, 1, beta);
        long double ref = sref_metric(&s, r->metric);
        double rtol = closed_rtol(r->metric);
        int ok = fabsl(r->value - ref) <= rtol * fabsl(ref) && r->stderr_ == 0 &&
                 r->median == r->value && strcmp(r->config, "simplex") == 0 &&
                 // the record's beta is gamma log n in double: a couple of ulps
                 fabsl(r->beta - beta) <= 4 * DBL_EPSILON * beta;
        if (!ok && shown++ < 5)
            printf("  %s: rho %g alpha %g gamma %.17g %s: got %.17g ref %.17Lg se %g\n", what,
                   r->rho, r->alpha, r->gamma, r->metric, r->value, ref, r->stderr_);
        bad += !ok;
    }
    ATS_CHECK(bad == 0 && rs->count > 0,
              "%s: %d records against THEORY.md 2.2/2.6 in long double, stderr 0 (%d bad)", what,
              rs->count, bad);
    return rs->count;
}

static void test_simplex_closed(void) {
    struct recs *rs = malloc(sizeof *rs);
    // n = 6, d = 9 (THEORY.md 2.10's first table): every metric, 3 rho x 2 alpha x 3 beta.
    int st = phase_json(rs, "--config simplex --n 6 --d 9 --rho 0.2,0.5,0.8 --alpha 0,0.7 "
                            "--beta 0.5,3,9 --metric lambda,rho_out,a_self,eta,entropy,support,"
                            "lambda_angle --eta-method exact");
    ATS_CHECK(st == 0 && rs->count == 3 * 2 * 3 * 7, "simplex n = 6: %d records (want %d)",
              rs->count, 3 * 2 * 3 * 7);
    check_closed(rs, "simplex n = 6, d = 9");
    // THEORY.md 2.10's printed vectors: rho' to 10 digits (half a unit of the last: 5e-11), eta
    // to 8 digits (5e-9).
    static const double tab[5][5] = {{0.2, 0, 3, 0.4731715173, 0.59659789},
                                     {0.5, 0, 3, 0.8945788907, 0.37137636},
                                     {0.5, 0.7, 3, 0.7364081197, 1.58873183},
                                     {0.8, 0, 9, 0.9518867119, 0.48457913},
                                     {0.8, 0.7, 9, 0.8982579655, 1.82663760}};
    for (int i = 0; i < 5; i++) {
        const struct rec *ro = find_beta(rs, tab[i][0], tab[i][1], tab[i][2], "rho_out");
        const struct rec *re = find_beta(rs, tab[i][0], tab[i][1], tab[i][2], "eta");
        ATS_CHECK_CLOSE(ro ? ro->value : NAN, tab[i][3], 5e-11, 0,
                        "THEORY 2.10 n = 6, d = 9: rho = %g, alpha = %g, beta = %g: rho'",
                        tab[i][0], tab[i][1], tab[i][2]);
        ATS_CHECK_CLOSE(re ? re->value : NAN, tab[i][4], 5e-9, 0,
                        "THEORY 2.10 n = 6, d = 9: rho = %g, alpha = %g, beta = %g: eta",
                        tab[i][0], tab[i][1], tab[i][2]);
    }

    // Without --d the simplex is built in d = n + 1 (the --help default).
    st = phase_json(rs, "--config simplex --n 6 --rho 0.5 --beta 3 --metric eta "
                        "--eta-method exact");
    ATS_CHECK(st == 0 && rs->count == 1 && rs->r[0].d == 7, "simplex default d = n + 1 = 7");
    check_closed(rs, "simplex n = 6, default d");

    // n = 1024, d = 1025 (THEORY.md 2.10's second table): gamma = (0.5, 1, 1.5) / (1 - rho) for
    // rho = 0.2, 0.5, 0.8, all in one grid of 9 gammas.
    st = phase_json(rs, "--config simplex --n 1024 --rho 0.2,0.5,0.8 --alpha 0,0.5 "
                        "--gamma 0.625,1,1.25,1.875,2,2.5,3,5,7.5 "
                        "--metric a_self,rho_out,lambda,eta --eta-method exact");
    ATS_CHECK(st == 0 && rs->count == 3 * 2 * 9 * 4 && rs->r[0].d == 1025,
              "simplex n = 1024: %d records in d = 1025", rs->count);
    check_closed(rs, "simplex n = 1024, d = 1025");
    static const double a_tab[3] = {0.03033175, 0.50024426, 0.96972567};
    static const double rhos[3] = {0.2, 0.5, 0.8}, mult[3] = {0.5, 1, 1.5};
    // Printed to 8 digits: half a unit of the last is 5e-9.
    for (int ir = 0; ir < 3; ir++)
        for (int k = 0; k < 3; k++) {
            double g = mult[k] / (1 - rhos[ir]);
            for (int ia = 0; ia < 2; ia++) {
                const struct rec *r = find(rs, rhos[ir], ia * 0.5, g, "a_self");
                ATS_CHECK_CLOSE(r ? r->value : NAN, a_tab[k], 5e-9, 0,
                                "THEORY 2.10 n = 1024: a at %g gamma_c, rho = %g, alpha = %g",
                                mult[k], rhos[ir], ia * 0.5);
            }
        }
    static const struct {
        double alpha, rho;
        const char *metric;
        double v[3];
    } big[] = {
        {0, 0.5, "rho_out", {0.99913817, 0.80027341, 0.51539600}},
        {0, 0.5, "lambda", {0.00172366, 0.39945319, 0.96920801}},
        {0, 0.5, "eta", {0.00206776, 0.25596802, 0.94038161}},
        {0, 0.2, "rho_out", {0.99657157, 0.50097591, 0.21006792}},
        {0, 0.8, "rho_out", {0.99978425, 0.94124068, 0.80966796}},
        {0.5, 0.5, "rho_out", {0.88932528, 0.69252731, 0.51021308}},
        {0.5, 0.5, "eta", {0.28569519, 1.00994744, 2.15961718}},
    };
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++)
        for (int k = 0; k < 3; k++) {
            const struct rec *r =
                find(rs, big[i].rho, big[i].alpha, mult[k] / (1 - big[i].rho), big[i].metric);
            ATS_CHECK_CLOSE(r ? r->value : NAN, big[i].v[k], 5e-9, 0,
                            "THEORY 2.10 n = 1024, alpha = %g, rho = %g, %g gamma_c: %s",
                            big[i].alpha, big[i].rho, mult[k], big[i].metric);
        }
    free(rs);
}

// ---------------------------------------------------------------------------
// 3. Hutchinson eta on the built simplex; almost-simplex at large d

static void test_simplex_hutchinson(void) {
    struct recs *rs = malloc(sizeof *rs);
    enum { M = 2000 };
    char args[512];
    snprintf(args, sizeof args,
             "--config simplex --n 6 --d 9 --rho 0.2,0.5,0.8 --alpha 0,0.7 --beta 3,9 "
             "--metric eta --probes %d",
             M);
    int st = phase_json(rs, args);
    ATS_CHECK(st == 0 && rs->count == 12, "Hutchinson on the simplex: %d records", rs->count);
    int bad = 0;
    for (int i = 0; i < rs->count; i++) {
        const struct rec *r = &rs->r[i];
        struct sref s = simplex_ref(6, 9, r->rho, r->alpha, 1, r->beta);
        // Rademacher probes: Var(v^T M v) = 2 (|M|_F^2 - sum M_ii^2) <= 2 (tr M)^2 for
        // M = J^T J, so one probe's sd is at most sqrt(2) eta; 1.2 covers the sampling error
        // of the estimated sd over 2000 probes (its relative sd is below 5%).
        double bound = 1.2 * sqrt(2.0) * (double)s.eta / sqrt((double)M);
        int ok = fabsl(r->value - s.eta) <= 4 * r->stderr_ && r->stderr_ > 0 &&
                 r->stderr_ <= bound && strcmp(r->eta_method, "hutchinson") == 0 &&
                 r->probes == M;
        if (!ok)
            printf("  rho %g alpha %g beta %g: eta %.6f +- %.2g, 2.6 gives %.6Lf (se bound %.2g)\n",
                   r->rho, r->alpha, r->beta, r->value, r->stderr_, s.eta, bound);
        bad += !ok;
    }
    ATS_CHECK(bad == 0, "Hutchinson eta (2000 probes) within 4 SE of THEORY 2.6, 0 < SE <= "
                        "sqrt(2) eta/sqrt(probes) (%d bad)", bad);
    // The 2.10 vectors, through the probes.
    const struct rec *r = find_beta(rs, 0.5, 0, 3, "eta");
    ATS_CHECK(r && fabs(r->value - 0.37137636) <= 4 * r->stderr_,
              "Hutchinson: rho 0.5, beta 3: %.5f +- %.5f vs 2.10's 0.37137636", r ? r->value : NAN,
              r ? r->stderr_ : NAN);
    r = find_beta(rs, 0.8, 0.7, 9, "eta");
    ATS_CHECK(r && fabs(r->value - 1.82663760) <= 4 * r->stderr_,
              "Hutchinson: rho 0.8, alpha 0.7, beta 9: %.5f +- %.5f vs 2.10's 1.82663760",
              r ? r->value : NAN, r ? r->stderr_ : NAN);

    // Fixed tokens and several trials: probe sets; the pooled standard error shrinks.
    st = phase_json(rs, "--config simplex --n 6 --d 9 --rho 0.5 --beta 3 --metric eta "
                        "--probes 500 --trials 4");
    struct sref s = simplex_ref(6, 9, 0.5L, 0, 1, 3);
    ATS_CHECK(st == 0 && rs->count == 1 && rs->r[0].stderr_ > 0 &&
                  fabsl(rs->r[0].value - s.eta) <= 4 * rs->r[0].stderr_,
              "simplex, 4 trials of 500 probes: %.5f +- %.5f vs %.8Lf", rs->r[0].value,
              rs->r[0].stderr_, s.eta);

    // Almost-simplex, n = 32, d = 8192, 8 draws: the cosines are rho + O(d^-1/2) with sd
    // sigma = (1 - rho^2)/sqrt(d) (one pair of Gaussian vectors; 0.0083 here). Their shared
    // part (|z_0|^2 ~ chi^2_d/d moves every cosine of a draw together) is a draw-to-draw
    // fluctuation: it is in the reported SE. What the SE does not cover is the systematic
    // shift, second order in sigma: the softmax averages e^{beta delta} = 1 + beta^2 sigma^2/2,
    // a shift of rho by beta sigma^2/2 (doubled here for the output side), and lambda's
    // curvature, lambda_rhorho sigma^2/2 (doubled likewise). Tolerance: 4 SE +
    // |lambda_rho| beta sigma^2 + |lambda_rhorho| sigma^2, derivatives by central differences
    // of the long-double closed form.
    enum { N = 32, D = 8192 };
    st = phase_json(rs, "--n 32 --d 8192 --rho 0.5 --gamma 1,2,3 --trials 8 --metric lambda");
    ATS_CHECK(st == 0 && rs->count == 3, "almost-simplex n = 32, d = 8192: %d records",
              rs->count);
    for (int i = 0; i < rs->count; i++) {
        r = &rs->r[i];
        long double beta = (long double)r->gamma * logl(N), h = 1e-5L, rho = 0.5L;
        long double l0 = simplex_ref(N, D, rho, 0, 1, beta).lambda;
        long double lp = simplex_ref(N, D, rho + h, 0, 1, beta).lambda;
        long double lm = simplex_ref(N, D, rho - h, 0, 1, beta).lambda;
        long double l1 = (lp - lm) / (2 * h), l2 = (lp - 2 * l0 + lm) / (h * h);
        long double sig2 = (1 - rho * rho) * (1 - rho * rho) / D;
        long double tol = 4 * r->stderr_ + fabsl(l1) * beta * sig2 + fabsl(l2) * sig2;
        ATS_CHECK(r->stderr_ > 0 && fabsl(r->value - l0) <= tol,
                  "almost-simplex d = 8192, gamma = %g: lambda %.5f +- %.5f vs simplex %.5Lf "
                  "(tol %.4Lf)",
                  r->gamma, r->value, r->stderr_, l0, tol);
    }
    free(rs);
}

// ---------------------------------------------------------------------------
// 4. Tokens from files

// The explicit simplex: x_i = s e_i + r e_n (0-based column n), zero columns up to d, all
// times scale (s = scale sqrt(1 - rho), r = scale sqrt(rho)). Returns rho_eff = r^2/(r^2 + s^2)
// and q_eff = r^2 + s^2 of s and r as stored in dtype t (float32 rounds both).
static void simplex_file(const char *path, int n, int d, double rho, double scale,
                         enum ats_dtype t, long double *rho_eff, long double *q_eff) {
    double *x = calloc((size_t)(n * d), sizeof *x);
    double s = scale * sqrt(1 - rho), r = scale * sqrt(rho);
    if (t == ATS_DTYPE_F32) {
        s = (double)(float)s;
        r = (double)(float)r;
    }
    for (int i = 0; i < n; i++) {
        x[i * d + i] = s;
        x[i * d + n] = r;
    }
    int rc = ats_npy_write(path, x, n, d, 2, t);
    ATS_CHECK(rc == ATS_STATUS_OK, "wrote %s (%s)", path, ats_dtype_name(t));
    free(x);
    long double ls = s, lr = r;
    *rho_eff = lr * lr / (lr * lr + ls * ls);
    *q_eff = lr * lr + ls * ls;
}

// Every record against the closed forms at (rho_eff, q_eff); stderr 0 and rho null throughout.
// Tolerance |got - ref| <= rtol |ref| + atol. The engine forms 1 - <y_i', y_j'> by subtraction
// (general tokens have no closed form to do better), so an absolute error delta of the output
// cosines becomes atol = delta for rho_out, delta/(1 - rho) for lambda and
// delta/(sqrt(1 - rho'^2) acos rho) for lambda_angle (the derivative of acos).
static void check_file(const struct recs *rs, int n, int d, long double rho, long double q,
                       double rtol, double delta, const char *what) {
    int bad = 0;
    for (int i = 0; i < rs->count; i++) {
        const struct rec *r = &rs->r[i];
        struct sref s = simplex_ref(n, d, rho, r->alpha, q, r->beta);
        long double ref = sref_metric(&s, r->metric), atol = 0;
        if (strcmp(r->metric, "rho_out") == 0)
            atol = delta;
        else if (strcmp(r->metric, "lambda") == 0)
            atol = delta / (1 - rho);
        else if (strcmp(r->metric, "lambda_angle") == 0)
            atol = delta / (sqrtl(1 - s.rho_out * s.rho_out) * acosl(rho));
        int ok = fabsl(r->value - ref) <= rtol * fabsl(ref) + atol && r->stderr_ == 0 &&
                 !r->stderr_null && r->rho_null && r->n == n && r->d == d &&
                 strcmp(r->config, "file") == 0;
        if (!ok)
            printf("  %s: alpha %g beta %g %s: got %.17g ref %.17Lg rel %.2Lg se %g rho_null %d\n",
                   what, r->alpha, r->beta, r->metric, r->value, ref,
                   fabsl(r->value - ref) / fabsl(ref), r->stderr_, r->rho_null);
        bad += !ok;
    }
    ATS_CHECK(rs->count == 2 * 2 * 7 && bad == 0,
              "%s: %d records = the simplex closed forms (rtol %.1g, cosines to %.1g), stderr 0, "
              "rho null (%d bad)",
              what, rs->count, rtol, delta, bad);
}

static void test_tokens(void) {
    struct recs *rs = malloc(sizeof *rs);
    enum { N = 6, D = 9 };
    const char *metrics = "--metric lambda,rho_out,a_self,eta,entropy,support,lambda_angle "
                          "--eta-method exact";
    long double rho64, q64, rho32, q32, rho25, q25;
    simplex_file(tmp(0, "sx64.npy"), N, D, 0.2, 1, ATS_DTYPE_F64, &rho64, &q64);
    simplex_file(tmp(1, "sx32.npy"), N, D, 0.3, 1, ATS_DTYPE_F32, &rho32, &q32);
    simplex_file(tmp(2, "sxq.npy"), N, D, 0.5, sqrt(2.5), ATS_DTYPE_F64, &rho25, &q25);
    char args[2048];

    // float64: the file path runs the blocked engine and the exact Jacobian blocks of 2.5 on
    // explicit tokens; the reference is 2.2/2.6: two routes. The outputs are length-n sums,
    // normalised, and their cosines length-d dot products: (n + d + 2) roundings, delta =
    // 4 (n + d) eps leaves a factor ~4. The other metrics are sums of n terms (softmax, row
    // statistics) or, for eta, of terms up to beta^2 T2 (~ 9 x 0.1) against results ~ 0.1-2:
    // 1e-13 (~ 500 ulps).
    const double d64 = 4.0 * (N + D) * DBL_EPSILON, d32 = 4.0 * (N + D) * FLT_EPSILON;
    snprintf(args, sizeof args, "--tokens %s --alpha 0,0.7 --beta 0.5,3 %s", tmp(0, "sx64.npy"),
             metrics);
    ATS_CHECK(phase_json(rs, args) == 0, "--tokens float64 simplex runs");
    check_file(rs, N, D, rho64, q64, 1e-13, d64,
               "--tokens float64 simplex (n = 6, d = 9, rho 0.2)");
    const struct rec *r = find_beta(rs, NAN, 0, 3, "rho_out");
    ATS_CHECK_CLOSE(r ? r->value : NAN, 0.4731715173, 5e-11, 0,
                    "--tokens: THEORY 2.10 rho' (rho 0.2, beta 3) to its 10 digits");
    r = find_beta(rs, NAN, 0, 3, "eta");
    ATS_CHECK_CLOSE(r ? r->value : NAN, 0.59659789, 5e-9, 0,
                    "--tokens: THEORY 2.10 eta (rho 0.2, beta 3) to its 8 digits");

    // q = 2.5: rho' unchanged, eta / q (THEORY.md 2.10: rho = 0.5, beta = 3: 0.14855054); with
    // alpha > 0 the residual adds the unnormalised x_i (alpha sqrt(q) in 2.2).
    snprintf(args, sizeof args, "--tokens %s --alpha 0,0.7 --beta 0.5,3 %s", tmp(2, "sxq.npy"),
             metrics);
    ATS_CHECK(phase_json(rs, args) == 0, "--tokens q = 2.5 simplex runs");
    check_file(rs, N, D, rho25, q25, 1e-13, d64, "--tokens float64 simplex with |x|^2 = 2.5");
    r = find_beta(rs, NAN, 0, 3, "eta");
    ATS_CHECK_CLOSE(r ? r->value : NAN, 0.14855054, 5e-9, 0,
                    "--tokens |x|^2 = 2.5: THEORY 2.10 eta = 0.14855054 (8 digits)");
    r = find_beta(rs, NAN, 0, 3, "rho_out");
    ATS_CHECK_CLOSE(r ? r->value : NAN, 0.8945788907, 5e-11, 0,
                    "--tokens |x|^2 = 2.5: rho' unchanged, 0.8945788907 (10 digits)");

    // float32 file under --precision f64: widened exactly, so it is the exact simplex with the
    // float-rounded s and r: as tight as float64 against (rho_eff, q_eff).
    snprintf(args, sizeof args, "--tokens %s --alpha 0,0.7 --beta 0.5,3 %s", tmp(1, "sx32.npy"),
             metrics);
    ATS_CHECK(phase_json(rs, args) == 0, "--tokens float32 simplex runs");
    check_file(rs, N, D, rho32, q32, 1e-13, d64, "--tokens float32 file, --precision f64");
    // Against the nominal rho = 0.3, q = 1: the float rounding moves rho by 1.5e-8 and q by
    // 2.4e-8; the metrics' relative sensitivities to them are below 6 at these points (the
    // largest, lambda at beta = 0.5 where 1 - rho' = 0.007, moves by 7.8e-8): 1e-6.
    // (At rho = 0.2 the rounding would cancel: sqrt(0.8) = 2 sqrt(0.2).)
    check_file(rs, N, D, 0.3L, 1.0L, 1e-6, d64, "--tokens float32 file vs nominal rho 0.3");
    ATS_CHECK(fabsl(rho32 - 0.3L) > 1e-10, "the float32 rounding really moves rho (%.2Le)",
              rho32 - 0.3L);

    // --precision f32: the Gram, softmax and output GEMMs run in float (sums in double). The
    // output cosines carry delta = 4 (n + d) FLT_EPSILON as above; the softmax sees logits
    // beta G with float errors (beta <= 3) and exp passes them on, and the row and eta sums add
    // ~ n + d float roundings: (n + d)(1 + beta) FLT_EPSILON / 2 = 3.6e-6 of the value; 2e-5
    // leaves a factor ~5.
    snprintf(args, sizeof args, "--tokens %s --alpha 0,0.7 --beta 0.5,3 --precision f32 %s",
             tmp(1, "sx32.npy"), metrics);
    ATS_CHECK(phase_json(rs, args) == 0, "--tokens float32 --precision f32 runs");
    check_file(rs, N, D, rho32, q32, 2e-5, d32, "--tokens float32 file, --precision f32");
    ATS_CHECK(rs->count > 0 && strcmp(rs->r[0].precision, "f32") == 0, "records say f32");

    // Hutchinson on fixed tokens: stderr from the probes (> 0), the deterministic metrics 0.
    snprintf(args, sizeof args, "--tokens %s --beta 3 --metric eta,lambda --probes 400 --trials 2",
             tmp(0, "sx64.npy"));
    ATS_CHECK(phase_json(rs, args) == 0 && rs->count == 2, "--tokens Hutchinson runs");
    {
        struct sref s = simplex_ref(N, D, rho64, 0, q64, 3);
        const struct rec *e = find_beta(rs, NAN, 0, 3, "eta"), *l = find_beta(rs, NAN, 0, 3, "lambda");
        ATS_CHECK(e && l && e->stderr_ > 0 && fabsl(e->value - s.eta) <= 4 * e->stderr_ &&
                      l->stderr_ == 0 && e->trials == 2,
                  "--tokens Hutchinson eta %.5f +- %.5f vs %.8Lf; lambda's stderr 0",
                  e ? e->value : NAN, e ? e->stderr_ : NAN, s.eta);
    }

    // Bad files: exit 1, nothing on stdout, a message naming the row or the problem.
    double *x = calloc(N * D, sizeof *x);
    for (int i = 0; i < N; i++)
        x[i * D + i] = 1;
    x[3 * D + 2] = NAN;
    ats_npy_write(tmp(3, "nan.npy"), x, N, D, 2, ATS_DTYPE_F64);
    x[3 * D + 2] = 0;
    x[4 * D + 4] = 0; // row 4 all zero
    ats_npy_write(tmp(4, "zero.npy"), x, N, D, 2, ATS_DTYPE_F32);
    x[4 * D + 4] = 1;
    x[2 * D + 7] = -HUGE_VAL;
    ats_npy_write(tmp(5, "inf.npy"), x, N, D, 2, ATS_DTYPE_F64);
    x[2 * D + 7] = 0;
    ats_npy_write(tmp(6, "vec.npy"), x, 1, D, 1, ATS_DTYPE_F64);
    ats_npy_write(tmp(7, "half.npy"), x, N, D, 2, ATS_DTYPE_F16);
    free(x);
    static const struct {
        int slot;
        const char *name, *n1, *n2;
    } bad[] = {{3, "nan.npy", "row 3", "nan"},       {4, "zero.npy", "row 4", "norm zero"},
               {5, "inf.npy", "row 2", "inf"},       {6, "vec.npy", "2-D", "1-D"},
               {7, "half.npy", "float16", "float32"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(args, sizeof args, "phase --tokens %s --beta 1", tmp(bad[i].slot, bad[i].name));
        struct run rr = run(args);
        ATS_CHECK(rr.status == 1 && rr.out[0] == '\0' && strstr(rr.err, bad[i].name) &&
                      strstr(rr.err, bad[i].n1) && strstr(rr.err, bad[i].n2) &&
                      count_lines(rr.err) == 1,
                  "--tokens %s: exit 1, one line naming '%s' (exit %d: %s)", bad[i].name,
                  bad[i].n1, rr.status, rr.err);
        run_free(&rr);
    }
    snprintf(args, sizeof args, "phase --tokens %s/missing.npy --beta 1", tmpdir);
    struct run rr = run(args);
    ATS_CHECK(rr.status == 1 && rr.out[0] == '\0' && strstr(rr.err, "missing.npy") &&
                  strstr(rr.err, "No such file"),
              "--tokens missing.npy: exit 1 naming the file (exit %d: %s)", rr.status, rr.err);
    run_free(&rr);
    free(rs);
}

// ---------------------------------------------------------------------------
// 5. Determinism

static void test_determinism(void) {
    // n = 300 is not a multiple of any BLAS or block tile, so the thread count changes how
    // every GEMM's output is split.
    const char *base = "phase --n 300 --d 64 --rho 0.3,0.7 --gamma 0.5,2,4 "
                       "--metric lambda,eta,entropy --trials 2";
    const char *prec[2] = {"f64", "f32"};
    for (int p = 0; p < 2; p++) {
        char a1[512], a2[512];
        snprintf(a1, sizeof a1, "%s --precision %s --threads 1", base, prec[p]);
        snprintf(a2, sizeof a2, "%s --precision %s --threads 2", base, prec[p]);
        struct run t1 = run(a1), t2 = run(a2);
        int same = t1.status == 0 && t2.status == 0 && strcmp(t1.out, t2.out) == 0;
        if (!same && t1.status == 0 && t2.status == 0) {
            const char *u = t1.out, *v = t2.out;
            while (*u && *u == *v)
                u++, v++;
            const char *ls = u;
            while (ls > t1.out && ls[-1] != '\n')
                ls--;
            printf("  first difference at byte %ld, in the record starting: %.200s\n",
                   (long)(u - t1.out), ls);
        }
        ATS_CHECK(same && count_lines(t1.out) == 2 * 3 * 3,
                  "--precision %s: --threads 1 and 2 give identical bytes (%d records)", prec[p],
                  count_lines(t1.out));
        run_free(&t1);
        run_free(&t2);
    }
    // Another seed draws other tokens and probes: every value changes.
    struct recs *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    int s1 = phase_json(a, "--n 100 --d 32 --rho 0.3,0.7 --gamma 0.5,2,4 "
                           "--metric lambda,eta,entropy --trials 2");
    int s2 = phase_json(b, "--n 100 --d 32 --rho 0.3,0.7 --gamma 0.5,2,4 "
                           "--metric lambda,eta,entropy --trials 2 --seed 2");
    int differ = 0;
    for (int i = 0; i < a->count && i < b->count; i++)
        differ += a->r[i].value != b->r[i].value && strcmp(a->r[i].metric, b->r[i].metric) == 0;
    ATS_CHECK(s1 == 0 && s2 == 0 && a->count == 18 && b->count == 18 && differ == 18,
              "--seed 2 changes all %d values (%d do)", a->count, differ);
    // The same seed again: the same values (the default seed is fixed).
    s2 = phase_json(b, "--n 100 --d 32 --rho 0.3,0.7 --gamma 0.5,2,4 "
                       "--metric lambda,eta,entropy --trials 2 --seed 1");
    int same = s2 == 0 && b->count == a->count;
    for (int i = 0; same && i < a->count; i++)
        same = a->r[i].value == b->r[i].value && a->r[i].stderr_ == b->r[i].stderr_;
    ATS_CHECK(same, "--seed 1 is the default seed: identical values");

    // --block only changes the GEMM shapes, hence the order of length-n and length-d sums (a
    // few ulps); lambda divides cosine differences by 1 - rho' >= 0.02 here: rtol 1e-12.
    const char *grid = "--n 50 --d 20 --rho 0.4 --gamma 0.5,3 "
                       "--metric lambda,rho_out,eta,entropy --eta-method exact";
    char args[512];
    s1 = phase_json(a, grid);
    for (int blk = 1; blk <= 7; blk += 6) {
        snprintf(args, sizeof args, "%s --block %d", grid, blk);
        s2 = phase_json(b, args);
        double worst = 0;
        int agree = s1 == 0 && s2 == 0 && a->count == 8 && b->count == 8;
        for (int i = 0; agree && i < a->count; i++) {
            double rel = fabs(a->r[i].value - b->r[i].value) / fabs(a->r[i].value);
            worst = fmax(worst, rel);
            agree = rel <= 1e-12 && strcmp(a->r[i].metric, b->r[i].metric) == 0;
        }
        ATS_CHECK(agree, "--block %d agrees with the automatic block (worst rel %.2g)", blk,
                  worst);
    }
    free(a);
    free(b);
}

// ---------------------------------------------------------------------------
// 6. Statistics

static void test_statistics(void) {
    struct recs *rs = malloc(sizeof *rs);
    // Random draws: eta over 8 trials has a positive standard error; one draw of lambda has
    // none (null); one draw of Hutchinson eta has the probes' standard error.
    int st = phase_json(rs, "--n 64 --d 32 --rho 0.5 --gamma 1,3 --metric eta --trials 8");
    int ok = st == 0 && rs->count == 2;
    for (int i = 0; ok && i < rs->count; i++)
        ok = rs->r[i].stderr_ > 0 && rs->r[i].stderr_ < rs->r[i].value && isfinite(rs->r[i].median);
    ATS_CHECK(ok, "almost-simplex eta, 8 trials: 0 < stderr < value");
    st = phase_json(rs, "--n 64 --d 32 --rho 0.5 --gamma 2 --metric lambda,eta");
    ATS_CHECK(st == 0 && rs->count == 2 && rs->r[0].stderr_null && !rs->r[1].stderr_null &&
                  rs->r[1].stderr_ > 0 && rs->r[0].median == rs->r[0].value,
              "one draw: lambda's stderr is null, Hutchinson eta's is the probes' (> 0)");

    // gamma = 0: beta = 0, uniform attention whatever the tokens: A_ii = 1/n, entropy log n,
    // support n. Each is a mean of n equal terms: a length-n double sum errs by <= n ulps.
    enum { N = 50 };
    st = phase_json(rs, "--n 50 --d 64 --rho 0.5 --gamma 0 --trials 2 "
                        "--metric a_self,entropy,support");
    const double nu = N * DBL_EPSILON;
    const struct rec *r = find(rs, 0.5, 0, 0, "a_self");
    ATS_CHECK(st == 0, "gamma = 0 runs");
    ATS_CHECK_CLOSE(r ? r->value : NAN, 1.0L / N, 0, nu, "gamma = 0: a_self = 1/n");
    r = find(rs, 0.5, 0, 0, "entropy");
    ATS_CHECK_CLOSE(r ? r->value : NAN, logl(N), 0, nu, "gamma = 0: entropy = log n");
    r = find(rs, 0.5, 0, 0, "support");
    ATS_CHECK_CLOSE(r ? r->value : NAN, N, 0, nu, "gamma = 0: support = n");
    ATS_CHECK(r && r->stderr_ < nu * N, "gamma = 0: the trials agree (stderr %g)",
              r ? r->stderr_ : NAN);

    // gamma = 50, rho = 0.5, n = 64, d = 512: beta = 50 log 64 = 208 and the cosines stay below
    // 0.5 + 6 sd (sd ~ (1 - rho^2)/sqrt(d) = 0.033), so off-diagonal weights are below
    // e^{-208 x 0.3} ~ 1e-27: A = I. Then y_i' = y_i (alpha = 0): lambda = 1 up to rounding of
    // the output Gram (cosines ~ 0.5, 1 - cos ~ 0.5: 1e-12 is ~ 5000 ulps of margin).
    // eta: with A = I the Jacobian is blockdiag(P_i/|x_i|) (THEORY.md 2.5: C_i = 0), so
    // eta = (1 - 1/d) mean_i 1/|x_i|^2 (2.4's (1 - 1/d)/q), and |x_i|^2 ~ chi^2_d/d exactly
    // (x_i ~ N(0, I/d)): E[1/|x|^2] = d/(d - 2), sd(1/|x|^2) = d/(d - 2) sqrt(2/(d - 4)).
    enum { T = 8, DD = 512 };
    st = phase_json(rs, "--n 64 --d 512 --rho 0.5 --gamma 50 --trials 8 --metric lambda,eta");
    ATS_CHECK(st == 0 && rs->count == 2, "gamma = 50 runs (%d records)", rs->count);
    r = find(rs, 0.5, 0, 50, "lambda");
    ATS_CHECK_CLOSE(r ? r->value : NAN, 1, 1e-12, 0, "gamma = 50: lambda = 1 (identity attention)");
    r = find(rs, 0.5, 0, 50, "eta");
    double d = DD, mean_inv = d / (d - 2), sd_inv = mean_inv * sqrt(2 / (d - 4));
    double want = (1 - 1 / d) * mean_inv;
    ATS_CHECK(r && fabs(r->value - want) <= 4 * r->stderr_,
              "gamma = 50: eta %.5f +- %.5f within 4 SE of (1 - 1/d) d/(d - 2) = %.5f",
              r ? r->value : NAN, r ? r->stderr_ : NAN, want);
    // A priori, without the reported SE: the mean over tokens of 1/|x_i|^2 has sd at most
    // sd(1/|x|^2) (equality if all the tokens had the same norm), the probes add ~1e-3 of it
    // (d - 1 of d directions of every block: |P v|^2 = d - <y, v>^2), so over 8 trials the
    // value is within 4 sd_inv/sqrt(8) of (1 - 1/d) E[1/q], which is 2/(d - 2) above 1 - 1/d.
    double tol = (1 - 1 / d) * (2 / (d - 2) + 4 * sd_inv / sqrt((double)T));
    ATS_CHECK(r && fabs(r->value - (1 - 1 / d)) <= tol,
              "gamma = 50: eta %.5f near 1 - 1/d = %.5f (tolerance %.4f from chi^2_d/d)",
              r ? r->value : NAN, 1 - 1 / d, tol);
    // The SE estimates an sd below sd_inv/sqrt(8); with 7 degrees of freedom the sample sd
    // exceeds twice the true one with probability 2e-4.
    ATS_CHECK(r && r->stderr_ > 0 && r->stderr_ <= 2 * sd_inv / sqrt((double)T),
              "gamma = 50: eta's stderr %.4f <= 2 sd(1/|x|^2)/sqrt(8) = %.4f",
              r ? r->stderr_ : NAN, 2 * sd_inv / sqrt((double)T));
    // The exact Jacobian-block eta of the same draws: the same expectation, no probe noise.
    st = phase_json(rs, "--n 64 --d 512 --rho 0.5 --gamma 50 --trials 8 --metric eta "
                        "--eta-method exact");
    r = st == 0 && rs->count == 1 ? &rs->r[0] : NULL;
    ATS_CHECK(r && r->stderr_ > 0 && fabs(r->value - want) <= 4 * r->stderr_,
              "gamma = 50, exact eta: %.5f +- %.5f within 4 SE of %.5f", r ? r->value : NAN,
              r ? r->stderr_ : NAN, want);
    free(rs);
}

// ---------------------------------------------------------------------------
// 7. CSV, JSON, record counts, figures

static void test_formats(void) {
    const char *grid = "phase --n 40,60 --d 32 --rho 0.3,0.6 --gamma 0,1.5,3 "
                       "--metric lambda,a_self,entropy --trials 2";
    char args[1024];
    snprintf(args, sizeof args, "%s --format csv", grid);
    struct run c = run(args);
    struct recs *rs = malloc(sizeof *rs);
    int st = phase_json(rs, grid + 6);
    const char *header = "config,n,d,rho,alpha,gamma,beta,trials,probes,eta_method,precision,"
                         "metric,value,stderr,median\n";
    const int want = 2 * 2 * 3 * 3;
    ATS_CHECK(c.status == 0 && strncmp(c.out, header, strlen(header)) == 0,
              "CSV header lists exactly the record keys");
    ATS_CHECK(count_lines(c.out) == 1 + want && st == 0 && rs->count == want,
              "records = 2 n x 2 rho x 3 gamma x 3 metrics = %d (CSV %d, JSON %d)", want,
              count_lines(c.out) - 1, rs->count);
    // Same order, same values: fields 1, 3, 5, 11 (n, rho, gamma, metric) and 12-14.
    int agree = 0;
    const char *line = strchr(c.out, '\n');
    for (int i = 0; line && line[1] && i < rs->count; i++) {
        line++;
        char buf[512];
        const char *e = strchr(line, '\n');
        size_t len = e ? (size_t)(e - line) : strlen(line);
        snprintf(buf, sizeof buf, "%.*s", (int)len, line);
        char *f[16] = {0}, *save = NULL;
        int k = 0;
        for (char *t = strtok_r(buf, ",", &save); t && k < 16; t = strtok_r(NULL, ",", &save))
            f[k++] = t;
        const struct rec *r = &rs->r[i];
        agree += k == 15 && strcmp(f[0], r->config) == 0 && strtod(f[1], NULL) == r->n &&
                 strtod(f[3], NULL) == r->rho && strtod(f[5], NULL) == r->gamma &&
                 strtod(f[6], NULL) == r->beta && strcmp(f[11], r->metric) == 0 &&
                 strtod(f[12], NULL) == r->value && strtod(f[13], NULL) == r->stderr_ &&
                 strtod(f[14], NULL) == r->median;
        line = e;
    }
    ATS_CHECK(agree == want, "CSV and JSON carry the same %d records (%d agree)", want, agree);
    run_free(&c);
    free(rs);

    // rho is null in JSON and nan in CSV for the sphere.
    struct run s = run("phase --config sphere --n 20 --d 8 --gamma 1 --format csv");
    ATS_CHECK(s.status == 0 && strncmp(s.out + strlen(header), "sphere,20,8,nan,", 16) == 0,
              "sphere: CSV rho is nan (%s)", s.out);
    run_free(&s);

    // --plot: a heat map over (rho, gamma) and a line plot against gamma, non-empty PNGs.
    const char *png[2] = {tmp(0, "map.png"), tmp(1, "line.png")};
    snprintf(args, sizeof args,
             "phase --n 32 --d 64 --rho 0.2:0.8:4 --gamma 0:4:5 --plot %s -q", png[0]);
    struct run m = run(args);
    snprintf(args, sizeof args,
             "phase --config simplex --n 32 --rho 0.5 --gamma 0:4:5 --metric eta "
             "--eta-method exact --plot %s -q",
             png[1]);
    struct run l = run(args);
    int status[2] = {m.status, l.status}, lines[2] = {count_lines(m.out), count_lines(l.out)};
    run_free(&m);
    run_free(&l);
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(png[i], "rb");
        unsigned char sig[8] = {0};
        long size = 0;
        if (f) {
            if (fread(sig, 1, 8, f) != 8)
                sig[0] = 0;
            fseek(f, 0, SEEK_END);
            size = ftell(f);
            fclose(f);
        }
        ATS_CHECK(status[i] == 0 && memcmp(sig, "\x89PNG\r\n\x1a\n", 8) == 0 && size > 1000 &&
                      lines[i] == (i == 0 ? 4 * 5 : 5),
                  "--plot %s: a PNG of %ld bytes beside %d records", i == 0 ? "heat map" : "lines",
                  size, lines[i]);
    }
}

int main(void) {
    if (cli_run_init() != 0)
        return 1;
    test_usage();
    test_simplex_closed();
    test_simplex_hutchinson();
    test_tokens();
    test_determinism();
    test_statistics();
    test_formats();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return ats_test_summary();
}
