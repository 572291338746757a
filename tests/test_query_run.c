/*
 * test_query_run.c: the `query` driver (src/experiments/query_run.c) through the public API
 * only (ats_command_find, spec_default, run_alloc, ats_run_next, ...):
 *   1. the option table (names, kinds, domains, choices, sections) and spec_default;
 *   2. records over a (d, n, beta, trials) grid against statistics recomputed here: the trials
 *      regenerated with ats_query_run in one call on one thread (the driver runs them in
 *      batches on two), then long-double two-pass means, standard errors (THEORY.md 1), the
 *      variance of the tangential coordinate and its fourth-moment standard error; beta*
 *      against THEORY.md 3.2's formula in long double; the grid order (trials fastest), keys
 *      and their order; the theory columns against ats_ppp_expect, ats_sphere_subcritical
 *      (with the n_eff < 10 gating) and ats_sphere_K called directly;
 *   3. tau' given (beta = tau' beta*), the ppp sampler with tau' (n, beta, beta* null) and with
 *      beta and n (tau' = beta/beta*), a single trial (null standard errors), the default seed
 *      and trials;
 *   4. batches: at n = 1e8/7 the driver runs 7 trials as 6 + 1, and the records still equal
 *      the one-call statistics (skipped under AddressSanitizer: it needs 1e8 keys);
 *   5. progress in trials (the total up front, reached at the end), cancellation;
 *   6. every usage error is ATS_STATUS_EARG with the CLI's words; a domain error of the
 *      sampler found late (an infinite beta) is EARG from ats_run_next; a runtime limit (ppp at
 *      large d and small tau') keeps its own status.
 *
 * Tolerances: with u = DBL_EPSILON (twice the unit roundoff, a margin of 2) and m trials, the
 * driver's left-to-right double sum of m values has error <= m u sum|x| (Higham, Accuracy and
 * Stability, 4.2), so its mean is within delta = m u mean|x| of the long-double reference (whose
 * own error, ~1e-19 relative, is negligible). Every other bound below follows from delta and
 * from the m-term sums of squares (see stat_tolerances).
 *
 * Run: make build/tests/test_query_run && build/tests/test_query_run  (about 5 s at -O2 on 2
 * cores, most of it the batch check).
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attnscale.h"
#include "test.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

// ---------------------------------------------------------------------------
// Running a spec

#define MAX_RECORDS 64

struct result {
    int status;
    struct ats_record rec[MAX_RECORDS];
    double done_after[MAX_RECORDS]; // progress after each record
    int64_t n;
    int nnotes;
    double done, total, total_before;
};

static struct result *run_spec(const struct ats_query_spec *spec) {
    const struct ats_command *cmd = ats_command_find("query");
    struct result *r = calloc(1, sizeof *r);
    if (!r || !cmd)
        abort();
    struct ats_run *run = NULL;
    r->status = cmd->run_alloc(&run, spec);
    if (r->status != ATS_STATUS_OK)
        return r;
    double done0;
    ats_run_progress(run, &done0, &r->total_before);
    for (;;) {
        struct ats_record rec;
        int rc = ats_run_next(run, &rec);
        if (rc != ATS_STATUS_OK) {
            r->status = rc;
            break;
        }
        while (ats_run_note(run))
            r->nnotes++;
        if (rec.count == 0)
            break;
        double t;
        if (r->n < MAX_RECORDS) {
            ats_run_progress(run, &r->done_after[r->n], &t);
            r->rec[r->n++] = rec; // keys and strings: static storage
        }
    }
    ats_run_progress(run, &r->done, &r->total);
    ATS_CHECK(ats_run_figure(run) == NULL, "query: no figure");
    ats_run_free(run);
    return r;
}

static struct ats_query_spec spec_new(void) {
    struct ats_query_spec s;
    ats_command_find("query")->spec_default(&s);
    return s;
}

static const struct ats_field *field(const struct ats_record *rec, const char *key) {
    return ats_record_find(rec, key);
}

static double num(const struct ats_record *rec, const char *key) {
    const struct ats_field *f = field(rec, key);
    if (!f)
        return -12345.678; // a value no check expects
    return f->type == ATS_FIELD_DOUBLE ? f->d : f->type == ATS_FIELD_INT ? (double)f->i : NAN;
}

static int same(double a, double b) {
    return (isnan(a) && isnan(b)) || a == b;
}

static const char *const base_keys[] = {
    "d",         "n",      "beta",      "tau_prime",  "beta_star",    "trials",     "sampler",
    "w1",        "w1_se",  "sum_w2",    "sum_w2_se",  "entropy",      "entropy_se", "cos_yq",
    "cos_yq_se", "radial", "radial_se", "n_var_perp", "n_var_perp_se"};
#define NBASE 19
static const char *const theory_keys[] = {"w1_theory",     "sum_w2_theory",     "entropy_theory",
                                          "cos_yq_theory", "n_var_perp_theory", "w1_super"};
#define NTHEORY 6

static int keys_ok(const struct ats_record *rec, int theory) {
    if (rec->count != NBASE + (theory ? NTHEORY : 0))
        return 0;
    for (int i = 0; i < NBASE; i++)
        if (strcmp(rec->field[i].key, base_keys[i]) != 0)
            return 0;
    for (int i = 0; theory && i < NTHEORY; i++)
        if (strcmp(rec->field[NBASE + i].key, theory_keys[i]) != 0)
            return 0;
    // Types: d and trials integers, sampler a string, the rest doubles (null when NaN).
    for (int64_t i = 0; i < rec->count; i++) {
        const char *k = rec->field[i].key;
        enum ats_field_type want = !strcmp(k, "d") || !strcmp(k, "trials") ? ATS_FIELD_INT
                                   : !strcmp(k, "sampler")                 ? ATS_FIELD_STRING
                                                                           : ATS_FIELD_DOUBLE;
        if (rec->field[i].type != want)
            return 0;
    }
    return 1;
}

// ---------------------------------------------------------------------------
// Reference statistics

struct moments {
    long double mean, abs_mean; // mean of x, of |x|
    long double ss;             // sum (x - mean)^2
    long double m2, m4, m3abs;  // biased central moments; mean |x - mean|^3
};

static struct moments moments_of(const struct ats_query_trial *t, int64_t m, size_t offset) {
    struct moments r = {0, 0, 0, 0, 0, 0};
    for (int64_t i = 0; i < m; i++) {
        long double x = *(const double *)((const char *)&t[i] + offset);
        r.mean += x;
        r.abs_mean += fabsl(x);
    }
    r.mean /= (long double)m;
    r.abs_mean /= (long double)m;
    for (int64_t i = 0; i < m; i++) {
        long double c = *(const double *)((const char *)&t[i] + offset) - r.mean;
        r.ss += c * c;
        r.m4 += c * c * c * c;
        r.m3abs += fabsl(c * c * c);
    }
    r.m2 = r.ss / (long double)m;
    r.m4 /= (long double)m;
    r.m3abs /= (long double)m;
    return r;
}

// The reference values and the tolerances on the driver's double results.
struct expect {
    double mean, mean_tol, se, se_tol, var, var_tol, vse, vse_tol;
};

// sqrt over an interval: the largest change of sqrt(y / k) for y within [v - tol, v + tol].
static long double sqrt_spread(long double v, long double tol, long double k) {
    long double hi = sqrtl((v + tol) / k), lo = sqrtl(fmaxl(v - tol, 0) / k);
    return hi - lo;
}

static struct expect stat_tolerances(const struct moments *mo, int64_t m) {
    const long double u = DBL_EPSILON, mm = (long double)m;
    struct expect e;
    // delta: the driver's mean error (header).
    long double delta = mm * u * mo->abs_mean;
    e.mean = (double)mo->mean;
    e.mean_tol = (double)delta;
    if (m < 2) {
        e.se = e.var = e.vse = NAN;
        e.se_tol = e.var_tol = e.vse_tol = 0;
        return e;
    }
    // ss about a mean off by delta grows by m delta^2 (the cross term vanishes about the exact
    // mean); its own m-term sum of squares adds (m + 4) u ss (Higham 4.2 and the squares).
    long double ss_tol = (mm + 4) * u * mo->ss + mm * delta * delta;
    e.se = (double)sqrtl(mo->ss / (mm - 1) / mm);
    e.se_tol = (double)sqrt_spread(mo->ss, ss_tol, (mm - 1) * mm);
    e.var = (double)(mo->ss / (mm - 1));
    e.var_tol = (double)(ss_tol / (mm - 1));
    // D = m4 - m2^2: each sum has relative error (m + 8) u; the mean's error moves m4 by at
    // most 4 delta mean|x - mean|^3 to first order, and m2 by delta^2 (second order, 8 delta^2
    // m2 covers m2^2's change with margin).
    long double dm = mo->m4 - mo->m2 * mo->m2;
    long double d_tol = (mm + 8) * u * (mo->m4 + mo->m2 * mo->m2) + 4 * delta * mo->m3abs +
                        8 * delta * delta * mo->m2;
    e.vse = (double)sqrtl(fmaxl(dm, 0) / mm);
    e.vse_tol = (double)sqrt_spread(fmaxl(dm, 0), d_tol, mm);
    return e;
}

// THEORY.md 3.2: beta* = (kappa_d n)^(2/(d-1)), kappa_d = c_d/(d-1),
// c_d = Gamma(d/2)/(sqrt(pi) Gamma((d-1)/2)); long double through lgammal.
static long double beta_star_ref(int64_t d, double n) {
    const long double pi = 3.141592653589793238462643383279502884L, dl = (long double)d;
    long double c = expl(lgammal(dl / 2) - lgammal((dl - 1) / 2)) / sqrtl(pi);
    return powl(c / (dl - 1) * (long double)n, 2 / (dl - 1));
}

// ---------------------------------------------------------------------------
// One record against the reference

struct point {
    int64_t d;
    double n;     // NAN: ppp without n
    double scale; // beta or tau'
    int by_tau, ppp, theory;
    int64_t trials;
    uint64_t seed;
};

static void check_record(const char *label, const struct ats_record *rec, const struct point *pt) {
    int have_n = !isnan(pt->n);
    double bstar = have_n ? ats_sphere_beta_star(pt->d, pt->n) : NAN;
    double beta = pt->by_tau ? pt->scale * bstar : pt->scale;
    double tau = pt->by_tau ? pt->scale : pt->scale / bstar;
    ATS_CHECK(keys_ok(rec, pt->theory), "%s: keys and their order%s", label,
              pt->theory ? " (with the theory keys)" : "");
    ATS_CHECK(num(rec, "d") == (double)pt->d && same(num(rec, "n"), pt->n) &&
                  num(rec, "trials") == (double)pt->trials,
              "%s: d, n%s, trials", label, have_n ? "" : " (null)");
    const struct ats_field *sf = field(rec, "sampler");
    ATS_CHECK(sf && sf->type == ATS_FIELD_STRING && !strcmp(sf->s, pt->ppp ? "ppp" : "exact"),
              "%s: sampler %s", label, pt->ppp ? "ppp" : "exact");
    ATS_CHECK(same(num(rec, "beta_star"), bstar) && same(num(rec, "beta"), beta) &&
                  same(num(rec, "tau_prime"), tau),
              "%s: beta* from ats_sphere_beta_star, %s", label,
              pt->by_tau ? "beta = tau' beta*" : "tau' = beta/beta*");
    if (have_n)
        // lgamma, exp and pow each to a few ulps, the power 2/(d-1) <= 2 doubling at most:
        // 64 ulps.
        ATS_CHECK_CLOSE(num(rec, "beta_star"), beta_star_ref(pt->d, pt->n), 0, 64 * DBL_EPSILON,
                        "%s: beta* = (kappa_d n)^(2/(d-1)) (THEORY.md 3.2)", label);

    // The trials, regenerated in one call on one thread.
    struct ats_query_params p = ats_query_params_default();
    p.d = pt->d;
    p.n = have_n ? pt->n : 1; // ppp ignores n
    p.sampler = pt->ppp ? ATS_SAMPLER_PPP : ATS_SAMPLER_EXACT;
    p.beta = pt->ppp ? tau : beta;
    p.seed = pt->seed;
    p.threads = 1;
    struct ats_query_trial *tr = malloc((size_t)pt->trials * sizeof *tr);
    if (!tr)
        abort();
    int rc = ats_query_run(tr, &p, 0, pt->trials);
    ATS_CHECK(rc == ATS_STATUS_OK, "%s: reference trials", label);
    if (rc != ATS_STATUS_OK) {
        free(tr);
        return;
    }
    static const char *const keys[5] = {"w1", "sum_w2", "entropy", "cos_yq", "radial"};
    static const char *const se_keys[5] = {"w1_se", "sum_w2_se", "entropy_se", "cos_yq_se",
                                           "radial_se"};
    const size_t offs[5] = {
        offsetof(struct ats_query_trial, w1), offsetof(struct ats_query_trial, sum_w2),
        offsetof(struct ats_query_trial, entropy), offsetof(struct ats_query_trial, cos_yq),
        offsetof(struct ats_query_trial, radial)};
    for (int k = 0; k < 5; k++) {
        struct moments mo = moments_of(tr, pt->trials, offs[k]);
        struct expect e = stat_tolerances(&mo, pt->trials);
        ATS_CHECK_CLOSE(num(rec, keys[k]), e.mean, e.mean_tol, 0, "%s: %s = mean over trials",
                        label, keys[k]);
        ATS_CHECK_CLOSE(num(rec, se_keys[k]), e.se, e.se_tol, 0, "%s: %s = sd/sqrt(trials)%s",
                        label, se_keys[k], pt->trials < 2 ? " (null: one trial)" : "");
    }
    struct moments mo = moments_of(tr, pt->trials, offsetof(struct ats_query_trial, perp));
    struct expect e = stat_tolerances(&mo, pt->trials);
    double scale = pt->ppp ? 1 : pt->n;
    ATS_CHECK_CLOSE(num(rec, "n_var_perp"), scale * e.var, scale * e.var_tol, 2 * DBL_EPSILON,
                    "%s: n_var_perp = %s x sample variance of perp", label, pt->ppp ? "1" : "n");
    ATS_CHECK_CLOSE(num(rec, "n_var_perp_se"), scale * e.vse, scale * e.vse_tol, 2 * DBL_EPSILON,
                    "%s: n_var_perp_se = %s x sqrt((m4 - m2^2)/m)", label, pt->ppp ? "1" : "n");
    free(tr);

    if (!pt->theory)
        return;
    double ew1 = NAN, esw2 = NAN;
    if (ats_ppp_expect(&ew1, &esw2, pt->d, tau) != ATS_STATUS_OK)
        ew1 = esw2 = NAN;
    ATS_CHECK(same(num(rec, "w1_theory"), ew1) && same(num(rec, "sum_w2_theory"), esw2),
              "%s: w1_theory, sum_w2_theory = ats_ppp_expect(d, tau' = %g)", label, tau);
    struct ats_sphere_sub sub;
    int sub_ok = !pt->ppp && ats_sphere_subcritical(&sub, pt->d, pt->n, beta) == ATS_STATUS_OK;
    int gated = !sub_ok || sub.n_eff < 10;
    ATS_CHECK(same(num(rec, "entropy_theory"), gated ? NAN : sub.entropy) &&
                  same(num(rec, "cos_yq_theory"), gated ? NAN : sub.A) &&
                  same(num(rec, "n_var_perp_theory"), gated ? NAN : sub.var_perp),
              "%s: entropy, cos_yq, n_var_perp theory %s", label,
              pt->ppp   ? "null (ppp)"
              : !sub_ok ? "null (outside the subcritical forms' domain)"
              : gated   ? "null (n_eff < 10)"
                        : "from ats_sphere_subcritical");
    double kd = ats_sphere_K(pt->d);
    ATS_CHECK(same(num(rec, "w1_super"), isfinite(kd) ? 1 - kd / tau : NAN),
              "%s: w1_super = 1 - K_d/tau'%s", label, isfinite(kd) ? "" : " (null: K_2 = inf)");
}

// ---------------------------------------------------------------------------
// 1. The option table

static void test_table(void) {
    const struct ats_command *cmd = ats_command_find("query");
    ATS_CHECK(cmd && !strcmp(cmd->name, "query") &&
                  cmd->spec_size == sizeof(struct ats_query_spec) && cmd->operand == 0,
              "ats_command_find(query)");
    if (!cmd)
        return;
    const struct ats_option *o = ats_command_option(cmd, "d");
    ATS_CHECK(o && o->kind == ATS_OPTION_VALUES && o->domain.lo == 2 && o->domain.hi == 1e6 &&
                  o->domain.integer && o->section && !strcmp(o->section, "Options"),
              "d: VALUES, integers in [2, 1e6], starts Options");
    o = ats_command_option(cmd, "n");
    ATS_CHECK(o && o->kind == ATS_OPTION_VALUES && o->domain.lo == 1 &&
                  o->domain.hi == (double)ATS_INT_EXACT_MAX && o->domain.integer,
              "n: integers in [1, 2^53]");
    o = ats_command_option(cmd, "beta");
    ATS_CHECK(o && o->kind == ATS_OPTION_VALUES && o->domain.lo == 0 && !o->domain.lo_open &&
                  o->domain.hi == HUGE_VAL,
              "beta: >= 0");
    o = ats_command_option(cmd, "tau_prime");
    ATS_CHECK(o && !strcmp(o->name, "tau-prime") && o->kind == ATS_OPTION_VALUES &&
                  o->domain.lo == 0 && o->domain.lo_open,
              "tau-prime (found as tau_prime): > 0");
    o = ats_command_option(cmd, "trials");
    ATS_CHECK(o && o->kind == ATS_OPTION_VALUES && o->domain.lo == 1 && o->domain.hi == 1e9 &&
                  o->domain.integer && strstr(o->help, "default 100"),
              "trials: integers in [1, 1e9], default 100");
    o = ats_command_option(cmd, "sampler");
    ATS_CHECK(o && o->kind == ATS_OPTION_CHOICE && o->choices && !strcmp(o->choices[0], "exact") &&
                  !strcmp(o->choices[1], "ppp") && o->choices[2] == NULL,
              "sampler: CHOICE exact, ppp");
    o = ats_command_option(cmd, "theory");
    ATS_CHECK(o && o->kind == ATS_OPTION_FLAG, "theory: FLAG");
    ATS_CHECK(ats_command_option(cmd, "seed") && ats_command_option(cmd, "threads"),
              "seed and threads");
    struct ats_query_spec s = spec_new();
    ATS_CHECK(!s.d.count && !s.n.count && !s.beta.count && !s.tau_prime.count && !s.trials.count &&
                  s.sampler == -1 && s.theory == 0 && isnan(s.seed) && isnan(s.threads),
              "spec_default: every option absent");
}

// ---------------------------------------------------------------------------
// 2. The exact sampler over a grid, with theory

static void test_grid(void) {
    double d[2] = {3, 5}, n[2] = {300, 2000}, beta[2] = {0.7, 60}, trials[2] = {9, 40};
    struct ats_query_spec s = spec_new();
    s.d = (struct ats_values){d, 2};
    s.n = (struct ats_values){n, 2};
    s.beta = (struct ats_values){beta, 2};
    s.trials = (struct ats_values){trials, 2};
    s.theory = 1;
    s.seed = 2385;
    s.threads = 2;
    struct result *r = run_spec(&s);
    ATS_CHECK(r->status == ATS_STATUS_OK && r->n == 16, "grid: 16 records (got %lld, status %d)",
              (long long)r->n, r->status);
    ATS_CHECK(r->total_before == 8 * (9 + 40) && r->done == r->total && r->total == r->total_before,
              "grid: progress total %g trials up front, reached (%g)", r->total_before, r->done);
    int64_t i = 0, gated = 0, open = 0;
    double cum = 0;
    int progress_ok = 1;
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++)
            for (int c = 0; c < 2; c++)
                for (int t = 0; t < 2 && i < r->n; t++, i++) {
                    struct point pt = {(int64_t)d[a],      n[b], beta[c], 0, 0, 1,
                                       (int64_t)trials[t], 2385};
                    char label[96];
                    snprintf(label, sizeof label, "d %g n %g beta %g trials %g", d[a], n[b],
                             beta[c], trials[t]);
                    check_record(label, &r->rec[i], &pt);
                    gated += isnan(num(&r->rec[i], "cos_yq_theory"));
                    open += !isnan(num(&r->rec[i], "cos_yq_theory"));
                    cum += trials[t];
                    progress_ok &= r->done_after[i] == cum;
                }
    ATS_CHECK(progress_ok, "grid: progress after each record = the trials run so far");
    ATS_CHECK(gated > 0 && open > 0,
              "grid: both gated (n_eff < 10) and open subcritical columns "
              "(%lld, %lld)",
              (long long)gated, (long long)open);
    free(r);
}

// ---------------------------------------------------------------------------
// 3. tau', ppp, one trial, defaults

static void test_variants(void) {
    // tau' with the exact sampler: beta = tau' beta*.
    double d3[1] = {3}, n1[1] = {5000}, tau[3] = {0.1, 1, 10}, tr[1] = {25};
    struct ats_query_spec s = spec_new();
    s.d = (struct ats_values){d3, 1};
    s.n = (struct ats_values){n1, 1};
    s.tau_prime = (struct ats_values){tau, 3};
    s.trials = (struct ats_values){tr, 1};
    s.theory = 1;
    s.seed = 77;
    struct result *r = run_spec(&s);
    ATS_CHECK(r->status == ATS_STATUS_OK && r->n == 3, "tau': 3 records");
    for (int64_t i = 0; i < r->n && i < 3; i++) {
        struct point pt = {3, 5000, tau[i], 1, 0, 1, 25, 77};
        char label[64];
        snprintf(label, sizeof label, "exact tau' %g", tau[i]);
        check_record(label, &r->rec[i], &pt);
    }
    free(r);

    // ppp with tau' and no n: n, beta and beta* null; d = 2 has no supercritical rate.
    double d23[2] = {2, 3}, tau2[2] = {0.5, 3}, tr50[1] = {50};
    s = spec_new();
    s.d = (struct ats_values){d23, 2};
    s.tau_prime = (struct ats_values){tau2, 2};
    s.trials = (struct ats_values){tr50, 1};
    s.sampler = 1;
    s.theory = 1;
    s.seed = 11;
    r = run_spec(&s);
    ATS_CHECK(r->status == ATS_STATUS_OK && r->n == 4, "ppp tau': 4 records");
    for (int64_t i = 0; i < r->n && i < 4; i++) {
        struct point pt = {(int64_t)d23[i / 2], NAN, tau2[i % 2], 1, 1, 1, 50, 11};
        char label[64];
        snprintf(label, sizeof label, "ppp d %g tau' %g", d23[i / 2], tau2[i % 2]);
        check_record(label, &r->rec[i], &pt);
    }
    ATS_CHECK(r->n == 4 && isnan(num(&r->rec[0], "n")) && isnan(num(&r->rec[0], "beta")) &&
                  isnan(num(&r->rec[0], "cos_yq")),
              "ppp without n: n, beta and cos_yq null");
    free(r);

    // ppp with beta and n: tau' = beta/beta*.
    double n4[1] = {1e4}, beta2[2] = {2, 30};
    s = spec_new();
    s.d = (struct ats_values){d3, 1};
    s.n = (struct ats_values){n4, 1};
    s.beta = (struct ats_values){beta2, 2};
    s.trials = (struct ats_values){tr50, 1};
    s.sampler = 1;
    s.seed = 12;
    r = run_spec(&s);
    ATS_CHECK(r->status == ATS_STATUS_OK && r->n == 2, "ppp beta: 2 records");
    for (int64_t i = 0; i < r->n && i < 2; i++) {
        struct point pt = {3, 1e4, beta2[i], 0, 1, 0, 50, 12};
        char label[64];
        snprintf(label, sizeof label, "ppp n 1e4 beta %g", beta2[i]);
        check_record(label, &r->rec[i], &pt);
    }
    free(r);

    // One trial: the standard errors and the variance are null.
    double one[1] = {1}, b1[1] = {3};
    s = spec_new();
    s.d = (struct ats_values){d3, 1};
    s.n = (struct ats_values){n1, 1};
    s.beta = (struct ats_values){b1, 1};
    s.trials = (struct ats_values){one, 1};
    r = run_spec(&s);
    ATS_CHECK(r->status == ATS_STATUS_OK && r->n == 1 && isnan(num(&r->rec[0], "w1_se")) &&
                  isnan(num(&r->rec[0], "n_var_perp")) && isnan(num(&r->rec[0], "n_var_perp_se")) &&
                  !isnan(num(&r->rec[0], "w1")),
              "one trial: w1 set, w1_se, n_var_perp, n_var_perp_se null");
    if (r->n == 1) {
        struct point pt = {3, 5000, 3, 0, 0, 0, 1, 1};
        check_record("one trial, default seed", &r->rec[0], &pt);
    }
    free(r);

    // Defaults: 100 trials, seed 1, no theory keys.
    s.trials = (struct ats_values){NULL, 0};
    r = run_spec(&s);
    ATS_CHECK(r->status == ATS_STATUS_OK && r->n == 1 && num(&r->rec[0], "trials") == 100 &&
                  r->rec[0].count == NBASE && r->total == 100 && r->done == 100,
              "defaults: 100 trials, no theory keys, progress 100 of 100");
    if (r->n == 1) {
        struct point pt = {3, 5000, 3, 0, 0, 0, 100, 1};
        check_record("default trials and seed", &r->rec[0], &pt);
    }
    free(r);
}

// ---------------------------------------------------------------------------
// 4. Batches

static void test_batches(void) {
    if (UNDER_ASAN) {
        ats_test_info("batch check skipped under AddressSanitizer (it needs 1e8 keys)");
        return;
    }
    // The driver's batch is floor(1e8 / n) trials = 6 here, so 7 trials run as 6 + 1.
    double d3[1] = {3}, n[1] = {14285715}, tau[1] = {2.385}, tr[1] = {7};
    struct ats_query_spec s = spec_new();
    s.d = (struct ats_values){d3, 1};
    s.n = (struct ats_values){n, 1};
    s.tau_prime = (struct ats_values){tau, 1};
    s.trials = (struct ats_values){tr, 1};
    s.seed = 5;
    struct result *r = run_spec(&s);
    ATS_CHECK(r->status == ATS_STATUS_OK && r->n == 1 && r->done == 7 && r->total == 7,
              "batches: one record, progress 7 of 7");
    if (r->n == 1) {
        struct point pt = {3, 14285715, 2.385, 1, 0, 0, 7, 5};
        check_record("two batches (6 + 1) equal one call", &r->rec[0], &pt);
    }
    free(r);
}

// ---------------------------------------------------------------------------
// 5. Cancellation

static void test_cancel(void) {
    double d3[1] = {3}, n[1] = {1000}, b[2] = {1, 2};
    struct ats_query_spec s = spec_new();
    s.d = (struct ats_values){d3, 1};
    s.n = (struct ats_values){n, 1};
    s.beta = (struct ats_values){b, 2};
    struct ats_run *run = NULL;
    int rc = ats_command_find("query")->run_alloc(&run, &s);
    ATS_CHECK(rc == ATS_STATUS_OK, "a run to cancel");
    if (rc != ATS_STATUS_OK)
        return;
    struct ats_record rec;
    rc = ats_run_next(run, &rec);
    ATS_CHECK(rc == ATS_STATUS_OK && rec.count > 0, "first record before the cancel");
    ats_run_cancel(run);
    rc = ats_run_next(run, &rec);
    int again = ats_run_next(run, &rec);
    ATS_CHECK(rc == ATS_STATUS_ECANCEL && again == ATS_STATUS_ECANCEL && rec.count == 0,
              "after ats_run_cancel: ECANCEL, and the run stays failed (%d, %d)", rc, again);
    ats_run_free(run);
}

// ---------------------------------------------------------------------------
// 6. Errors

static void expect_earg(const char *label, const struct ats_query_spec *s, const char *w1,
                        const char *w2) {
    struct ats_run *run = NULL;
    int rc = ats_command_find("query")->run_alloc(&run, s);
    const char *why = ats_last_error();
    ATS_CHECK(rc == ATS_STATUS_EARG && strstr(why, w1) && (!w2 || strstr(why, w2)),
              "%s: EARG naming '%s'%s%s (got %d: %s)", label, w1, w2 ? " and " : "", w2 ? w2 : "",
              rc, why);
    if (rc == ATS_STATUS_OK)
        ats_run_free(run);
}

static void test_usage(void) {
    double d3[1] = {3}, d1[1] = {1}, n10[1] = {10}, b1[1] = {1}, b0[2] = {1, 0}, t0[1] = {0},
           half[1] = {0.5}, zero[1] = {0};
    struct ats_query_spec s;

    s = spec_new();
    s.n = (struct ats_values){n10, 1};
    s.beta = (struct ats_values){b1, 1};
    expect_earg("no --d", &s, "--d is required (an integer >= 2)", NULL);
    s.d = (struct ats_values){d3, 1};
    s.tau_prime = (struct ats_values){b1, 1};
    expect_earg("--beta and --tau-prime", &s,
                "--beta and --tau-prime are exclusive: give one of them", NULL);
    s.beta = s.tau_prime = (struct ats_values){NULL, 0};
    expect_earg("neither", &s, "one of --beta (>= 0) and --tau-prime (> 0) is required", NULL);

    s = spec_new();
    s.d = (struct ats_values){d3, 1};
    s.beta = (struct ats_values){b1, 1};
    expect_earg("exact without --n", &s, "--n is required (an integer >= 1)", NULL);
    {
        struct ats_run *run = NULL;
        ats_command_find("query")->run_alloc(&run, &s);
        ATS_CHECK(strstr(ats_last_error(), "tau'") == NULL,
                  "exact without --n: no word of tau' (%s)", ats_last_error());
    }
    s.sampler = 1;
    expect_earg("ppp --beta without --n", &s,
                "--n is required (an integer >= 1) to turn --beta into tau'", NULL);
    s.n = (struct ats_values){n10, 1};
    s.beta = (struct ats_values){b0, 2};
    expect_earg("ppp --beta 0", &s, "--beta: the ppp sampler needs beta > 0 (tau' > 0)", NULL);

    // Option domains.
    s = spec_new();
    s.d = (struct ats_values){d1, 1};
    s.n = (struct ats_values){n10, 1};
    s.beta = (struct ats_values){b1, 1};
    expect_earg("--d 1", &s, "--d", NULL);
    s.d = (struct ats_values){d3, 1};
    s.n = (struct ats_values){half, 1};
    expect_earg("--n 0.5", &s, "--n", NULL);
    s.n = (struct ats_values){n10, 1};
    s.trials = (struct ats_values){t0, 1};
    expect_earg("--trials 0", &s, "--trials", NULL);
    s.trials = (struct ats_values){NULL, 0};
    s.beta = (struct ats_values){NULL, 0};
    s.tau_prime = (struct ats_values){zero, 1};
    expect_earg("--tau-prime 0", &s, "--tau-prime", NULL);
    s.tau_prime = (struct ats_values){b1, 1};
    s.sampler = 2;
    expect_earg("--sampler 2", &s, "--sampler", NULL);
    s.sampler = -1;
    s.seed = -1;
    expect_earg("--seed -1", &s, "--seed", NULL);
    s.seed = NAN;
    s.threads = 0;
    expect_earg("--threads 0", &s, "--threads", NULL);

    // A domain error of the sampler, found when the point runs: tau' beta* overflows beta.
    double huge[1] = {1e308}, n6[1] = {1e6};
    s = spec_new();
    s.d = (struct ats_values){d3, 1};
    s.n = (struct ats_values){n6, 1};
    s.tau_prime = (struct ats_values){huge, 1};
    struct ats_run *run = NULL;
    int rc = ats_command_find("query")->run_alloc(&run, &s);
    ATS_CHECK(rc == ATS_STATUS_OK, "tau' 1e308: run_alloc passes (the options are valid)");
    if (rc == ATS_STATUS_OK) {
        struct ats_record rec;
        rc = ats_run_next(run, &rec);
        ATS_CHECK(rc == ATS_STATUS_EARG && strstr(ats_last_error(), "beta = inf") && rec.count == 0,
                  "tau' 1e308: EDOM of ats_query_run is EARG from ats_run_next (%d: %s)", rc,
                  ats_last_error());
        ats_run_free(run);
    }

    // A limit of the ppp sampler: ERANGE stays ERANGE (the CLI's runtime failure, exit 1).
    double d1000[1] = {1000}, small[1] = {1e-3};
    s = spec_new();
    s.d = (struct ats_values){d1000, 1};
    s.tau_prime = (struct ats_values){small, 1};
    s.sampler = 1;
    run = NULL;
    rc = ats_command_find("query")->run_alloc(&run, &s);
    if (rc == ATS_STATUS_OK) {
        struct ats_record rec;
        rc = ats_run_next(run, &rec);
        const char *why = ats_last_error();
        ATS_CHECK(rc == ATS_STATUS_ERANGE && strstr(why, ats_strerror(ATS_STATUS_ERANGE)) &&
                      strstr(why, "points per sample"),
                  "ppp d 1000 tau' 1e-3: ERANGE with the status text and the reason (%d: %s)", rc,
                  why);
        ats_run_free(run);
    } else {
        ATS_CHECK(0, "ppp d 1000 tau' 1e-3: run_alloc passes (%d)", rc);
    }
}

int main(void) {
    test_table();
    test_grid();
    test_variants();
    test_batches();
    test_cancel();
    test_usage();
    return ats_test_summary();
}
