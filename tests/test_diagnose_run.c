/*
 * test_diagnose_run.c: the `diagnose` run through the public API (ats_command_find, spec,
 * ats_run_next), on .npy fixtures written here and on arrays in memory:
 *   - every row record against ats_row_stats called directly on the same row (bit for bit),
 *     in order, with the keys in order, for several (beta, window) combinations, causal rows,
 *     a policy's multiplier (ats_policy_eval) and rows of several sequences (a 3-D array);
 *   - the summary against ats_fit_laws called directly (bit for bit), or its fit_error;
 *   - the ranking: ats_rank_policy's slopes, sorted by |slope| to 9 significant digits (here
 *     through printf's %.8e rounding) then registry order, competition ranks (1, 2, 2, 4) on
 *     the causal simplex rows where the log-n family ties;
 *   - in-memory float32 / float64 arrays give the records of the same data from a file;
 *   - q/k input against logits computed in long double, within the bound the dot product's
 *     rounding and the smallest gap allow;
 *   - rows spread over several blocks (the ~32 MB block of logits), with the progress;
 *   - usage errors (ATS_STATUS_EARG) and runtime failures with the CLI's words; the NaN logit
 *     named by row and column; cancellation; the CSV columns.
 * Run: make build/tests/test_diagnose_run && build/tests/test_diagnose_run
 */
#define _GNU_SOURCE
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attnscale.h"
#include "test.h"

static char dir[256];

static const char *path(int slot, const char *name) {
    static char buf[8][320];
    snprintf(buf[slot], sizeof buf[slot], "%s/%s", dir, name);
    return buf[slot];
}

static struct ats_diagnose_spec spec0(void) {
    struct ats_diagnose_spec s;
    ats_command_find("diagnose")->spec_default(&s);
    return s;
}

// ---------------------------------------------------------------------------
// Running a spec to the end

struct result {
    int alloc_rc, rc;         // run_alloc's status; the first failing next's (or OK)
    char err[512];            // ats_last_error() after the failure
    struct ats_run *run;      // kept alive: the records' strings point into it
    struct ats_record *rec;   // the records, in order
    int64_t n;
    char notes[8][512];
    int nnotes;
    double *done;             // progress after each record
};

static struct result collect(const struct ats_diagnose_spec *sp) {
    struct result r;
    memset(&r, 0, sizeof r);
    const struct ats_command *cmd = ats_command_find("diagnose");
    r.alloc_rc = cmd->run_alloc(&r.run, sp);
    if (r.alloc_rc != ATS_STATUS_OK) {
        snprintf(r.err, sizeof r.err, "%s", ats_last_error());
        r.run = NULL;
        return r;
    }
    int64_t cap = 0;
    for (;;) {
        if (r.n == cap) {
            cap = cap ? 2 * cap : 64;
            r.rec = realloc(r.rec, (size_t)cap * sizeof *r.rec);
            r.done = realloc(r.done, (size_t)cap * sizeof *r.done);
        }
        r.rc = ats_run_next(r.run, &r.rec[r.n]);
        if (r.rc != ATS_STATUS_OK) {
            snprintf(r.err, sizeof r.err, "%s", ats_last_error());
            break;
        }
        const char *note;
        while ((note = ats_run_note(r.run)) != NULL)
            if (r.nnotes < 8)
                snprintf(r.notes[r.nnotes++], sizeof r.notes[0], "%s", note);
        if (r.rec[r.n].count == 0)
            break;
        double total;
        ats_run_progress(r.run, &r.done[r.n], &total);
        r.n++;
    }
    return r;
}

static void result_free(struct result *r) {
    ats_run_free(r->run);
    free(r->rec);
    free(r->done);
}

static const struct ats_field *field(const struct ats_record *rec, const char *key) {
    return ats_record_find(rec, key);
}

static double num(const struct ats_record *rec, const char *key) {
    const struct ats_field *f = field(rec, key);
    if (!f)
        return NAN;
    return f->type == ATS_FIELD_DOUBLE ? f->d : f->type == ATS_FIELD_INT ? (double)f->i : NAN;
}

static const char *str(const struct ats_record *rec, const char *key) {
    const struct ats_field *f = field(rec, key);
    return f && f->type == ATS_FIELD_STRING ? f->s : "";
}

static int is_kind(const struct ats_record *rec, const char *kind) {
    return strcmp(str(rec, "record"), kind) == 0;
}

// Equal doubles, NaN equal to NaN: the bit-for-bit checks.
static int same(double a, double b) {
    return (isnan(a) && isnan(b)) || a == b;
}

static int same_record(const struct ats_record *a, const struct ats_record *b) {
    if (a->count != b->count)
        return 0;
    for (int64_t i = 0; i < a->count; i++) {
        const struct ats_field *x = &a->field[i], *y = &b->field[i];
        if (strcmp(x->key, y->key) != 0 || x->type != y->type)
            return 0;
        if (x->type == ATS_FIELD_DOUBLE && !same(x->d, y->d))
            return 0;
        if (x->type == ATS_FIELD_INT && x->i != y->i)
            return 0;
        if (x->type == ATS_FIELD_STRING && strcmp(x->s, y->s) != 0)
            return 0;
    }
    return 1;
}

static int same_results(const struct result *a, const struct result *b) {
    if (a->rc != b->rc || a->n != b->n)
        return 0;
    for (int64_t i = 0; i < a->n; i++)
        if (!same_record(&a->rec[i], &b->rec[i]))
            return 0;
    return 1;
}

// ---------------------------------------------------------------------------
// What the rows must be: ats_row_stats on the same logits

struct expect {
    const double *s;     // (rows, n) logits
    int64_t rows, n, seq;
    int causal;
    const double *beta, *window;
    int64_t nb, nw;
    int64_t policy;      // -1: none
    struct ats_policy_params params;
};

static const char *const row_keys[] = {"record",  "row",        "n",        "causal",
                                       "beta",    "window",     "multiplier", "beta_applied",
                                       "beta_hat", "beta_hat_k10", "beta_half", "entropy",
                                       "w1",      "ratio",      "regime"};

// Checks the leading row records of r against e; fills all_n, all_bh (rows,) with each row's
// length and beta_hat_k10 for the summary. Returns the index of the first record after them.
static int64_t check_rows(const struct result *r, const struct expect *e, double *all_n,
                          double *all_bh, const char *label) {
    double *ws = malloc((size_t)ats_row_stats_workspace(e->n) * sizeof *ws);
    int64_t at = 0, bad = 0;
    char first[256] = "";
    for (int64_t row = 0; row < e->rows; row++) {
        int64_t pos = row % e->seq, len = e->causal ? pos + 1 : e->n;
        double m = 1;
        if (e->policy >= 0) {
            struct ats_policy_value v;
            m = ats_policy_eval(&v, e->policy, &e->params, pos, e->causal ? pos + 1 : e->n) ==
                        ATS_STATUS_OK
                    ? v.multiplier
                    : NAN;
        }
        for (int64_t b = 0; b < e->nb; b++) {
            for (int64_t w = 0; w < e->nw; w++, at++) {
                struct ats_row_stats o;
                ats_row_stats(&o, e->s + row * e->n, len, e->beta[b] * m, e->window[w], ws);
                if (b == 0 && w == 0) {
                    all_n[row] = (double)len;
                    all_bh[row] = o.beta_hat_k10;
                }
                if (at >= r->n) {
                    bad++;
                    continue;
                }
                const struct ats_record *rec = &r->rec[at];
                // The keys in order, the policy after causal when one is applied.
                int keys_ok = rec->count == 15 + (e->policy >= 0);
                for (int64_t i = 0, j = 0; keys_ok && i < rec->count; i++) {
                    if (e->policy >= 0 && i == 4) {
                        keys_ok = strcmp(rec->field[i].key, "policy") == 0 &&
                                  strcmp(rec->field[i].s, ats_policy_get(e->policy)->name) == 0;
                        continue;
                    }
                    keys_ok = strcmp(rec->field[i].key, row_keys[j++]) == 0;
                }
                const char *regime =
                    o.regime < 0 ? "undetermined" : ats_regime_name((enum ats_regime)o.regime);
                int ok = keys_ok && is_kind(rec, "row") && num(rec, "row") == (double)row &&
                         num(rec, "n") == (double)o.n && num(rec, "causal") == e->causal &&
                         field(rec, "row")->type == ATS_FIELD_INT &&
                         same(num(rec, "beta"), e->beta[b]) &&
                         same(num(rec, "window"), e->window[w]) &&
                         same(num(rec, "multiplier"), m) &&
                         same(num(rec, "beta_applied"), o.beta) &&
                         same(num(rec, "beta_hat"), o.beta_hat) &&
                         same(num(rec, "beta_hat_k10"), o.beta_hat_k10) &&
                         same(num(rec, "beta_half"), o.beta_half) &&
                         same(num(rec, "entropy"), o.entropy) && same(num(rec, "w1"), o.w1) &&
                         same(num(rec, "ratio"), o.ratio) && strcmp(str(rec, "regime"), regime) == 0;
                if (!ok && !bad++)
                    snprintf(first, sizeof first,
                             "record %lld (row %lld, beta %g, window %g): beta_hat %.17g vs "
                             "%.17g, regime %s vs %s, keys %s",
                             (long long)at, (long long)row, e->beta[b], e->window[w],
                             num(rec, "beta_hat"), o.beta_hat, str(rec, "regime"), regime,
                             keys_ok ? "ok" : "wrong");
            }
        }
    }
    ATS_CHECK(bad == 0 && r->n >= at, "%s: %lld row records equal ats_row_stats (%lld bad%s%s)",
              label, (long long)at, (long long)bad, bad ? ": " : "", first);
    free(ws);
    return at;
}

// The summary record against ats_fit_laws on the same lengths and beta_hat_k10.
static void check_summary(const struct ats_record *rec, const double *all_n, const double *all_bh,
                          int64_t rows, const char *label) {
    struct ats_law_fits f;
    int rc = ats_fit_laws(&f, NULL, NULL, all_n, all_bh, rows);
    if (rc != ATS_STATUS_OK) {
        char want[512];
        snprintf(want, sizeof want, "%s", ats_last_error());
        ATS_CHECK(is_kind(rec, "summary") && num(rec, "rows") == (double)rows &&
                      strcmp(str(rec, "fit_error"), want) == 0 && !field(rec, "best") &&
                      rec->count == 3,
                  "%s: summary carries ats_fit_laws's error '%s' (got '%s')", label, want,
                  str(rec, "fit_error"));
        return;
    }
    static const char *const keys[] = {
        "record",      "rows",          "n_min",         "n_max",         "buckets",
        "log_slope",   "log_intercept", "log_r2",        "log_resid_sd",  "log_rmse",
        "polylog_xi",  "polylog_c",     "polylog_r2",    "polylog_resid_sd", "polylog_rmse",
        "power_e",     "power_c",       "power_r2",      "power_resid_sd", "power_rmse",
        "power_alpha", "best"};
    int keys_ok = rec->count >= 22;
    for (int i = 0; keys_ok && i < 22; i++)
        keys_ok = strcmp(rec->field[i].key, keys[i]) == 0;
    const struct ats_fit *laws[3] = {&f.log_law, &f.polylog, &f.power};
    int ok = keys_ok && is_kind(rec, "summary") && num(rec, "rows") == (double)rows &&
             same(num(rec, "n_min"), f.n_min) && same(num(rec, "n_max"), f.n_max) &&
             num(rec, "buckets") == (double)f.buckets &&
             same(num(rec, "power_alpha"), 2 / f.power.slope) &&
             strcmp(str(rec, "best"), f.best) == 0;
    for (int l = 0; l < 3; l++) {
        ok = ok && same(rec->field[5 + 5 * l].d, laws[l]->slope) &&
             same(rec->field[6 + 5 * l].d, laws[l]->intercept) &&
             same(rec->field[7 + 5 * l].d, laws[l]->r2) &&
             same(rec->field[8 + 5 * l].d, laws[l]->resid_sd) &&
             same(rec->field[9 + 5 * l].d, laws[l]->log_rmse);
    }
    ATS_CHECK(ok, "%s: summary equals ats_fit_laws (%lld buckets, best %s; keys %s)", label,
              (long long)f.buckets, f.best, keys_ok ? "ok" : "wrong");
}

static void write_f64(const char *p, const double *x, int64_t rows, int64_t cols) {
    int rc = ats_npy_write(p, x, rows, cols, 2, ATS_DTYPE_F64);
    if (rc != ATS_STATUS_OK)
        fprintf(stderr, "writing %s: %s\n", p, ats_last_error());
}

// ---------------------------------------------------------------------------
// Causal simplex rows: row i holds 1 at column i and 0.3 before it (NaN after: never seen).

enum { NS = 600 };
static double *simplex;

static void make_simplex(void) {
    simplex = malloc((size_t)NS * NS * sizeof *simplex);
    for (int i = 0; i < NS; i++)
        for (int j = 0; j < NS; j++)
            simplex[i * NS + j] = j == i ? 1 : j < i ? 0.3 : NAN;
    write_f64(path(0, "simplex.npy"), simplex, NS, NS);
}

static void test_rows_and_summary(void) {
    double beta[2] = {0.5, 2.385}, window[2] = {2, 3.5};
    struct ats_diagnose_spec sp = spec0();
    sp.scores = path(0, "simplex.npy");
    sp.causal = 1;
    sp.beta = (struct ats_values){beta, 2};
    sp.window = (struct ats_values){window, 2};
    sp.threads = 1;
    struct result r = collect(&sp);
    ATS_CHECK(r.alloc_rc == ATS_STATUS_OK && r.rc == ATS_STATUS_OK,
              "causal simplex file: the run completes (%s)", r.err);
    struct expect e = {simplex, NS, NS, NS, 1, beta, window, 2, 2, -1, ats_policy_params_default()};
    double *all_n = malloc(NS * sizeof *all_n), *all_bh = malloc(NS * sizeof *all_bh);
    int64_t at = check_rows(&r, &e, all_n, all_bh, "causal simplex, 2 betas x 2 windows");
    ATS_CHECK(at == 4 * NS && r.n == at + 1, "one record per row and combination, then the "
              "summary only (%lld records)", (long long)r.n);
    if (r.n > at)
        check_summary(&r.rec[at], all_n, all_bh, NS, "causal simplex");
    ATS_CHECK(r.nnotes == 0, "no notes without a policy (%d)", r.nnotes);
    // Rows of length < 10 have no beta_hat_k10: regime undetermined, ratio NAN.
    ATS_CHECK(strcmp(str(&r.rec[0], "regime"), "undetermined") == 0 &&
                  isnan(num(&r.rec[0], "ratio")) && num(&r.rec[0], "n") == 1,
              "row 0 (n = 1): regime undetermined");

    // Progress: rows, after each row's last record; the total is the row count.
    double done, total;
    ats_run_progress(r.run, &done, &total);
    ATS_CHECK(total == NS && done == NS && r.done[0] == 0 && r.done[3] == 1 && r.done[4] == 1 &&
                  r.done[4 * NS - 1] == NS,
              "progress in rows: %g of %g at the end, 1 after the 4 records of row 0", done, total);

    // Threads do not change anything.
    sp.threads = 3;
    struct result r3 = collect(&sp);
    ATS_CHECK(same_results(&r, &r3), "--threads 3 gives the records of --threads 1");
    result_free(&r3);
    sp.threads = NAN;
    struct result rd = collect(&sp);
    ATS_CHECK(same_results(&r, &rd), "threads absent (OpenMP's default): the same records");
    result_free(&rd);
    result_free(&r);

    // Defaults: beta 1, window 2.
    sp = spec0();
    sp.scores = path(0, "simplex.npy");
    sp.causal = 1;
    double one = 1, two = 2;
    struct expect e1 = {simplex, NS, NS, NS, 1, &one, &two, 1, 1, -1, ats_policy_params_default()};
    r = collect(&sp);
    at = check_rows(&r, &e1, all_n, all_bh, "defaults beta 1, window 2");
    ATS_CHECK(r.n == at + 1 && num(&r.rec[at], "rows") == NS, "then the summary");
    result_free(&r);

    // One policy: row i's beta times the policy at position i; the policy key in every row.
    sp.policy = "critical";
    int64_t crit = ats_policy_find("critical");
    struct expect ep = {simplex, NS, NS, NS, 1, &one, &two, 1, 1, crit, ats_policy_params_default()};
    r = collect(&sp);
    at = check_rows(&r, &ep, all_n, all_bh, "--policy critical");
    ATS_CHECK(r.n == at + 2 && strcmp(str(&r.rec[at], "best_policy"), "critical") == 0 &&
                  is_kind(&r.rec[at + 1], "policy") &&
                  strcmp(str(&r.rec[at + 1], "policy"), "critical") == 0 &&
                  num(&r.rec[at + 1], "rank") == 1 && field(&r.rec[at + 1], "rank")->type ==
                  ATS_FIELD_INT,
              "--policy critical: summary names it best, one policy record of rank 1");
    if (r.n > at)
        check_summary(&r.rec[at], all_n, all_bh, NS, "--policy critical");
    result_free(&r);
    free(all_n);
    free(all_bh);
}

// ---------------------------------------------------------------------------
// The ranking

// |x| rounded to 9 significant digits by printf (an independent rounding from the driver's).
static double key9(double x) {
    char buf[64];
    snprintf(buf, sizeof buf, "%.8e", fabs(x));
    return strtod(buf, NULL);
}

static void test_ranking(void) {
    double beta[2] = {1, 2.385};
    struct ats_diagnose_spec sp = spec0();
    sp.scores = path(0, "simplex.npy");
    sp.causal = 1;
    sp.policy = "all";
    sp.beta = (struct ats_values){beta, 2};
    struct result r = collect(&sp);
    ATS_CHECK(r.rc == ATS_STATUS_OK, "--policy all completes (%s)", r.err);
    int64_t at = 2 * NS;
    ATS_CHECK(r.n > at && is_kind(&r.rec[at], "summary") && !field(&r.rec[0], "policy"),
              "--policy all: no policy key in the row records");
    // The same fits and bucket lengths as the driver's, from ats_row_stats directly.
    double *all_n = malloc(NS * sizeof *all_n), *all_bh = malloc(NS * sizeof *all_bh);
    double one = 1, two = 2;
    struct expect e = {simplex, NS, NS, NS, 1, beta, &two, 2, 1, -1, ats_policy_params_default()};
    check_rows(&r, &e, all_n, all_bh, "--policy all rows");
    (void)one;
    struct ats_law_fits f;
    double *bn = malloc(NS * sizeof *bn);
    int rc = ats_fit_laws(&f, bn, NULL, all_n, all_bh, NS);
    ATS_CHECK(rc == ATS_STATUS_OK, "the causal simplex rows fit (status %d)", rc);
    struct ats_policy_params pp = ats_policy_params_default();

    // Expected set: every policy scaling whole logits at the largest length; the others noted.
    int64_t big = (int64_t)llround(f.n_largest), want_ranked = 0, want_notes = 0;
    char notes_ok = 1;
    for (int64_t id = 0; id < ats_policy_count(); id++) {
        struct ats_policy_value v;
        if (ats_policy_eval(&v, id, &pp, big - 1, big) == ATS_STATUS_OK &&
            (v.scope != ATS_POLICY_SCOPE_ALL || isnan(v.multiplier))) {
            char want[256];
            snprintf(want, sizeof want, "note: %s not ranked: it scales %s dimensions only",
                     ats_policy_get(id)->name, ats_policy_scope_name(v.scope));
            int found = 0;
            for (int i = 0; i < r.nnotes; i++)
                found |= strcmp(r.notes[i], want) == 0;
            notes_ok &= (char)found;
            want_notes++;
        } else {
            want_ranked++;
        }
    }
    ATS_CHECK(notes_ok && r.nnotes == want_notes && want_notes > 0,
              "a note for each of the %lld rotary-only policies (%d notes; first: %s)",
              (long long)want_notes, r.nnotes, r.nnotes ? r.notes[0] : "none");
    ATS_CHECK(r.n == at + 1 + 2 * want_ranked,
              "one policy record per ranked policy and beta (%lld, want %lld)",
              (long long)(r.n - at - 1), (long long)(2 * want_ranked));

    // Order, values and competition ranks, per beta.
    int64_t bad = 0, ties = 0, rank1 = 0;
    char first[256] = "";
    for (int64_t i = at + 1; i < r.n; i++) {
        const struct ats_record *p = &r.rec[i];
        int64_t id = ats_policy_find(str(p, "policy"));
        double b = num(p, "beta");
        struct ats_policy_rank want;
        int ok = id >= 0 &&
                 ats_rank_policy(&want, id, &pp, &f, bn, f.buckets, b) == ATS_STATUS_OK &&
                 same(num(p, "slope"), want.slope) &&
                 same(num(p, "ratio_at_max"), want.ratio_at_max) &&
                 strcmp(str(p, "scope"), "all") == 0 && p->count == 7 &&
                 b == beta[(i - at - 1) / want_ranked];
        // Sorted: rounded |slope| non-decreasing within a beta, registry order among equals.
        if (i > at + 1 && num(&r.rec[i - 1], "beta") == b) {
            double k0 = key9(num(&r.rec[i - 1], "slope")), k1 = key9(num(p, "slope"));
            ok = ok && (k0 < k1 || (k0 == k1 && ats_policy_find(str(&r.rec[i - 1], "policy")) < id));
            ties += k0 == k1;
        }
        // Competition rank: 1 + the policies of the same beta with a smaller rounded |slope|.
        int64_t smaller = 0;
        for (int64_t j = at + 1; j < r.n; j++)
            smaller += num(&r.rec[j], "beta") == b &&
                       key9(num(&r.rec[j], "slope")) < key9(num(p, "slope"));
        ok = ok && num(p, "rank") == (double)(1 + smaller);
        rank1 += num(p, "rank") == 1 && b == 1;
        if (!ok && !bad++)
            snprintf(first, sizeof first, "record %lld: %s beta %g slope %.17g rank %g",
                     (long long)i, str(p, "policy"), b, num(p, "slope"), num(p, "rank"));
    }
    ATS_CHECK(bad == 0, "policy records: ats_rank_policy's values, sorted, competition ranks%s%s",
              bad ? ": " : "", first);
    ATS_CHECK(ties > 0 && rank1 >= 2, "ties share a rank: %lld tied neighbours, %lld at rank 1 "
              "for beta 1 (the log-n family)", (long long)ties, (long long)rank1);
    // A rank after a tie skips (1, 2, 2, 4): a new rank is the record's position in its group.
    int skip_ok = 1;
    for (int64_t i = at + 1, pos = 0; i < r.n; i++) {
        int first_of_group = i == at + 1 || num(&r.rec[i - 1], "beta") != num(&r.rec[i], "beta");
        pos = first_of_group ? 1 : pos + 1;
        if (first_of_group || num(&r.rec[i - 1], "rank") != num(&r.rec[i], "rank"))
            skip_ok &= num(&r.rec[i], "rank") == (double)pos;
    }
    ATS_CHECK(skip_ok, "competition ranks: a new rank is the position in its beta group");
    ATS_CHECK(strcmp(str(&r.rec[at], "best_policy"), str(&r.rec[at + 1], "policy")) == 0,
              "best_policy is the first ranked (%s)", str(&r.rec[at], "best_policy"));
    check_summary(&r.rec[at], all_n, all_bh, NS, "--policy all");
    free(bn);
    free(all_n);
    free(all_bh);
    result_free(&r);

    // Policies given but no fit (too few lengths): a fit_error and a note.
    double x[2 * 12];
    for (int i = 0; i < 24; i++)
        x[i] = sin(1.7 * i);
    write_f64(path(1, "two.npy"), x, 2, 12);
    sp = spec0();
    sp.scores = path(1, "two.npy");
    sp.policy = "log-n";
    r = collect(&sp);
    double an[2], ab[2];
    struct expect e2 = {x, 2, 12, 2, 0, &one, &two, 1, 1, ats_policy_find("log-n"), pp};
    at = check_rows(&r, &e2, an, ab, "two rows of 12, --policy log-n");
    ATS_CHECK(r.n == at + 1, "no policy records without a fit");
    if (r.n > at) {
        check_summary(&r.rec[at], an, ab, 2, "two rows");
        char want[600];
        snprintf(want, sizeof want, "note: policies not ranked: %s", str(&r.rec[at], "fit_error"));
        ATS_CHECK(r.nnotes == 1 && strcmp(r.notes[0], want) == 0, "the note '%s' (got '%s')",
                  want, r.nnotes ? r.notes[0] : "none");
    }
    result_free(&r);
}

// ---------------------------------------------------------------------------
// In-memory arrays, several sequences

static void test_arrays(void) {
    // float64 in memory against the file.
    struct ats_diagnose_spec sp = spec0();
    sp.scores = path(0, "simplex.npy");
    sp.causal = 1;
    sp.policy = "all";
    struct result rf = collect(&sp);
    struct ats_array *a;
    int64_t shape[2] = {NS, NS};
    ats_array_wrap(&a, simplex, ATS_DTYPE_F64, shape, 2);
    sp.scores = NULL;
    sp.scores_array = a;
    struct result rm = collect(&sp);
    ATS_CHECK(rf.rc == ATS_STATUS_OK && rf.n > NS && same_results(&rf, &rm),
              "a float64 array in memory gives the file's %lld records", (long long)rf.n);
    result_free(&rm);
    result_free(&rf);
    ats_array_close(a); // after the run: the run never closes the caller's array

    // float32 in memory against a float32 file.
    float *s32 = malloc((size_t)NS * NS * sizeof *s32);
    for (int64_t i = 0; i < (int64_t)NS * NS; i++)
        s32[i] = (float)simplex[i];
    ats_npy_write(path(2, "simplex32.npy"), simplex, NS, NS, 2, ATS_DTYPE_F32);
    sp = spec0();
    sp.scores = path(2, "simplex32.npy");
    sp.causal = 1;
    rf = collect(&sp);
    ats_array_wrap(&a, s32, ATS_DTYPE_F32, shape, 2);
    sp.scores = NULL;
    sp.scores_array = a;
    rm = collect(&sp);
    ATS_CHECK(rf.rc == ATS_STATUS_OK && rf.n == NS + 1 && same_results(&rf, &rm),
              "a float32 array in memory gives the float32 file's records");
    result_free(&rm);
    result_free(&rf);
    ats_array_close(a);
    free(s32);

    // (2, 6, 7): two heads of 6 positions; each head's records are those of its 2-D slice
    // (rows and summary), with "head" first after "record" and the summary's ratio_median.
    double x[2 * 6 * 7];
    for (int i = 0; i < 84; i++)
        x[i] = cos(0.37 * i * i);
    int64_t sh3[3] = {2, 6, 7}, sh2[2] = {6, 7};
    ats_array_wrap(&a, x, ATS_DTYPE_F64, sh3, 3);
    sp = spec0();
    sp.scores_array = a;
    sp.causal = 1;
    struct result r = collect(&sp);
    int64_t at = 0, ok = r.rc == ATS_STATUS_OK;
    for (int h = 0; h < 2; h++) {
        struct ats_array *slice;
        ats_array_wrap(&slice, x + h * 42, ATS_DTYPE_F64, sh2, 2);
        sp.scores_array = slice;
        struct result one = collect(&sp);
        for (int64_t i = 0; ok && i < one.n; i++, at++) {
            struct ats_record rec = at < r.n ? r.rec[at] : (struct ats_record){0};
            ok = rec.count > 1 && strcmp(rec.field[1].key, "head") == 0 && rec.field[1].i == h;
            memmove(&rec.field[1], &rec.field[2], (size_t)(rec.count - 2) * sizeof rec.field[0]);
            rec.count--;
            if (ok && is_kind(&rec, "summary")) { // ratio_median and 4 shares follow rows
                ok = strcmp(rec.field[2].key, "ratio_median") == 0 &&
                     strcmp(rec.field[6].key, "share_undetermined") == 0;
                double sum = 0;
                for (int f = 3; ok && f < 7; f++)
                    sum += rec.field[f].d;
                ok = ok && fabs(sum - 1) < 1e-12;
                memmove(&rec.field[2], &rec.field[7],
                        (size_t)(rec.count - 7) * sizeof rec.field[0]);
                rec.count -= 5;
            }
            ok = ok && same_record(&rec, &one.rec[i]);
        }
        result_free(&one);
        ats_array_close(slice);
    }
    ATS_CHECK(ok && at == r.n && r.n == 2 * 7,
              "(2, 6, 7) causal: two heads, each with the records of its (6, 7) slice (%lld "
              "records)",
              (long long)r.n);
    result_free(&r);
    ats_array_close(a);
}

// ---------------------------------------------------------------------------
// q/k input

static void test_qk(void) {
    enum { R = 12, N = 50, D = 7 };
    double q[R * D], k[N * D], s[R * N];
    struct ats_rng g;
    ats_rng_init(&g, 2385, 3);
    for (int i = 0; i < R * D; i++)
        q[i] = ats_rng_normal(&g);
    for (int i = 0; i < N * D; i++)
        k[i] = ats_rng_normal(&g);
    // Logits in long double, then the smallest gap any row has (the error amplifier).
    long double maxqk = 0, mingap = HUGE_VALL;
    for (int i = 0; i < R; i++) {
        for (int j = 0; j < N; j++) {
            long double t = 0, nq = 0, nk = 0;
            for (int c = 0; c < D; c++) {
                t += (long double)q[i * D + c] * k[j * D + c];
                nq += (long double)q[i * D + c] * q[i * D + c];
                nk += (long double)k[j * D + c] * k[j * D + c];
            }
            s[i * N + j] = (double)(t / sqrtl((long double)D));
            maxqk = fmaxl(maxqk, sqrtl(nq * nk) / sqrtl((long double)D));
        }
        double smax = -HUGE_VAL;
        for (int j = 0; j < N; j++)
            smax = fmax(smax, s[i * N + j]);
        for (int j = 0; j < N; j++)
            if (s[i * N + j] < smax)
                mingap = fminl(mingap, smax - s[i * N + j]);
    }
    write_f64(path(3, "q.npy"), q, R, D);
    write_f64(path(4, "k.npy"), k, N, D);
    struct ats_diagnose_spec sp = spec0();
    sp.q = path(3, "q.npy");
    sp.k = path(4, "k.npy");
    double beta = 2.385, window = 2;
    sp.beta = (struct ats_values){&beta, 1};
    struct result r = collect(&sp);
    ATS_CHECK(r.rc == ATS_STATUS_OK && r.n == R + 1, "q/k files: %d rows and a summary (%s)", R,
              r.err);
    // A dot product of length D errs by at most D eps |q||k| (plus the 1/sqrt(d) scale and the
    // final rounding): every gap by twice that, so beta_hat, beta_half and w1 (smooth in the
    // gaps, at worst through 1/D_(k)) move by a relative 2 delta / min gap; entropy by at most
    // beta 2 delta (2 log n) absolutely.
    double delta = (double)((D + 2) * DBL_EPSILON * maxqk);
    double rtol = 4 * delta / (double)mingap + 16 * DBL_EPSILON;
    double atol_h = beta * 2 * delta * 2 * log((double)N) + 16 * DBL_EPSILON;
    double *ws = malloc((size_t)ats_row_stats_workspace(N) * sizeof *ws);
    int bad = 0;
    double worst = 0;
    for (int i = 0; i < R && i < r.n; i++) {
        struct ats_row_stats o;
        ats_row_stats(&o, s + i * N, N, beta, window, ws);
        const struct ats_record *rec = &r.rec[i];
        double rel[4] = {num(rec, "beta_hat") / o.beta_hat - 1,
                         num(rec, "beta_hat_k10") / o.beta_hat_k10 - 1,
                         num(rec, "beta_half") / o.beta_half - 1, num(rec, "w1") / o.w1 - 1};
        for (int c = 0; c < 4; c++) {
            worst = fmax(worst, fabs(rel[c]));
            bad += !(fabs(rel[c]) <= rtol);
        }
        bad += !(fabs(num(rec, "entropy") - o.entropy) <= atol_h) ||
               num(rec, "row") != i || num(rec, "n") != N ||
               strcmp(str(rec, "regime"), ats_regime_name((enum ats_regime)o.regime)) != 0;
    }
    ATS_CHECK(bad == 0 && mingap > 1e-9,
              "q/k: rows against long-double logits q.k/sqrt(d) (worst rel %.3g, tol %.3g, min gap "
              "%.3Lg)", worst, rtol, mingap);
    free(ws);

    // q and k in memory (float64), and q from memory with k from the file.
    struct ats_array *qa, *ka;
    int64_t qs[2] = {R, D}, ks[2] = {N, D};
    ats_array_wrap(&qa, q, ATS_DTYPE_F64, qs, 2);
    ats_array_wrap(&ka, k, ATS_DTYPE_F64, ks, 2);
    struct ats_diagnose_spec sm = sp;
    sm.q = sm.k = NULL;
    sm.q_array = qa;
    sm.k_array = ka;
    struct result rm = collect(&sm);
    ATS_CHECK(same_results(&r, &rm), "q/k arrays in memory give the files' records");
    result_free(&rm);
    sm.k = sp.k;
    sm.k_array = NULL;
    rm = collect(&sm);
    ATS_CHECK(same_results(&r, &rm), "q in memory with k from a file: the same records");
    result_free(&rm);

    // Keys of shape (1, n, d): one key head that every query row uses, the same records.
    sm = spec0();
    sm.q_array = qa;
    int64_t k3[3] = {1, N, D};
    struct ats_array *k3a;
    ats_array_wrap(&k3a, k, ATS_DTYPE_F64, k3, 3);
    sm.k_array = k3a;
    rm = collect(&sm);
    result_free(&r);
    sm.k_array = ka;
    r = collect(&sm);
    ATS_CHECK(r.rc == ATS_STATUS_OK && r.n == R + 1 && same_results(&r, &rm),
              "keys (1, n, d) against queries (rows, d): the records of keys (n, d)");
    result_free(&rm);
    result_free(&r);
    ats_array_close(k3a);

    // Runtime failures of q/k input.
    ats_npy_write(path(5, "k1.npy"), k, 1, N * D, 1, ATS_DTYPE_F64);
    sm.k_array = NULL;
    sm.k = path(5, "k1.npy");
    r = collect(&sm);
    ATS_CHECK(r.alloc_rc == ATS_STATUS_EINVAL && strstr(r.err, "--k '") &&
                  strstr(r.err, "k1.npy") && strstr(r.err, "not 1 axes"),
              "1-D keys file: EINVAL naming it '%s'", r.err);
    result_free(&r);
    int64_t k5[2] = {N * D / 5, 5};
    ats_array_wrap(&k3a, k, ATS_DTYPE_F64, k5, 2);
    sm.k = NULL;
    sm.k_array = k3a;
    r = collect(&sm);
    ATS_CHECK(r.alloc_rc == ATS_STATUS_EINVAL && strstr(r.err, "--q has d = 7 but --k has d = 5"),
              "d mismatch: EINVAL '%s'", r.err);
    result_free(&r);
    ats_array_close(k3a);
    double qbad[R * D];
    memcpy(qbad, q, sizeof qbad);
    qbad[2 * D + 3] = INFINITY;
    struct ats_array *qb;
    ats_array_wrap(&qb, qbad, ATS_DTYPE_F64, qs, 2);
    sm.q_array = qb;
    sm.k_array = ka;
    r = collect(&sm);
    ATS_CHECK(r.alloc_rc == ATS_STATUS_OK && r.rc == ATS_STATUS_EDOM && r.n == 0 &&
                  strcmp(r.err, "--q: row 2, column 3 is not finite") == 0,
              "an infinite query coordinate: EDOM '%s'", r.err);
    result_free(&r);
    ats_array_close(qb);
    ats_array_close(qa);
    ats_array_close(ka);
}

// ---------------------------------------------------------------------------
// Several blocks: 4194304 / n = 3 rows per block at n = 2^20 + 1, so 4 rows take two blocks.

static void test_blocks(void) {
    enum { R = 4 };
    const int64_t n = 1048577;
    float *x = malloc((size_t)(R * n) * sizeof *x);
    double *xd = malloc((size_t)(R * n) * sizeof *xd);
    struct ats_rng g;
    ats_rng_init(&g, 7, 11);
    for (int64_t i = 0; i < R * n; i++) {
        x[i] = (float)ats_rng_normal(&g);
        xd[i] = x[i];
    }
    struct ats_array *a;
    int64_t shape[2] = {R, n};
    ats_array_wrap(&a, x, ATS_DTYPE_F32, shape, 2);
    struct ats_diagnose_spec sp = spec0();
    sp.scores_array = a;
    double beta[2] = {1, 3}, two = 2;
    sp.beta = (struct ats_values){beta, 2};
    struct result r = collect(&sp);
    double an[R], ab[R];
    struct expect e = {xd, R, n, R, 0, beta, &two, 2, 1, -1, ats_policy_params_default()};
    int64_t at = check_rows(&r, &e, an, ab, "rows of 2^20 + 1 logits over two blocks");
    ATS_CHECK(r.rc == ATS_STATUS_OK && r.n == at + 1, "then the summary");
    if (r.n > at)
        check_summary(&r.rec[at], an, ab, R, "two blocks (one length: no fit)");
    ATS_CHECK(r.n == 9 && r.done[1] == 1 && r.done[5] == 3 && r.done[7] == 4 && r.done[8] == 4,
              "progress crosses the block: %g %g %g rows", r.done[1], r.done[5], r.done[7]);
    result_free(&r);

    // A NaN in the second block is reported after the first block's records.
    x[3 * n + 17] = NAN;
    r = collect(&sp);
    ATS_CHECK(r.rc == ATS_STATUS_EDOM && r.n == 6 &&
                  strcmp(r.err, "row 3, column 17: the logit is NaN") == 0,
              "a NaN in block 2: the 6 records of block 1, then EDOM '%s'", r.err);
    ats_run_free(r.run);
    free(r.rec);
    free(r.done);
    ats_array_close(a);
    free(x);
    free(xd);
}

// ---------------------------------------------------------------------------
// Errors

static void expect_arg(const struct ats_diagnose_spec *sp, const char *words, const char *what) {
    struct result r = collect(sp);
    ATS_CHECK(r.alloc_rc == ATS_STATUS_EARG && strstr(r.err, words) && !r.run,
              "%s: ATS_STATUS_EARG with '%s' (got %d '%s')", what, words, r.alloc_rc, r.err);
    result_free(&r);
}

static void test_errors(void) {
    struct ats_diagnose_spec sp = spec0();
    expect_arg(&sp, "give exactly one input: --scores, --q with --k, or --safetensors",
               "no input");
    sp.scores = path(0, "simplex.npy");
    sp.q = path(3, "q.npy");
    sp.k = path(4, "k.npy");
    expect_arg(&sp, "give exactly one input", "--scores with --q/--k");
    sp = spec0();
    sp.scores = path(0, "simplex.npy");
    struct ats_array *a;
    int64_t shape[2] = {NS, NS};
    ats_array_wrap(&a, simplex, ATS_DTYPE_F64, shape, 2);
    sp.scores_array = a;
    expect_arg(&sp, "give exactly one input", "--scores and scores_array");
    sp = spec0();
    sp.q = path(3, "q.npy");
    expect_arg(&sp, "--q and --k go together", "--q alone");
    sp = spec0();
    sp.k_array = a;
    expect_arg(&sp, "--q and --k go together", "k_array alone");
    sp = spec0();
    sp.safetensors = path(0, "x.safetensors");
    expect_arg(&sp, "--safetensors and --tensor go together", "--safetensors alone");
    sp = spec0();
    sp.tensor = "logits";
    expect_arg(&sp, "--safetensors and --tensor go together", "--tensor alone");

    sp = spec0();
    sp.scores = path(0, "simplex.npy");
    sp.policy = "nope";
    expect_arg(&sp, "--policy: unknown policy 'nope' (known: yarn, ", "unknown policy");
    sp.policy = "yarn";
    sp.causal = 1;
    expect_arg(&sp, "--policy yarn scales rotary head dimensions only, not whole logits",
               "a rotary-only policy");
    double bad = -1, w1 = 1;
    sp = spec0();
    sp.scores = path(0, "simplex.npy");
    sp.beta = (struct ats_values){&bad, 1};
    expect_arg(&sp, "--beta", "beta < 0");
    sp.beta = (struct ats_values){NULL, 0};
    sp.window = (struct ats_values){&w1, 1};
    expect_arg(&sp, "--window", "window = 1");
    sp.window = (struct ats_values){NULL, 0};
    sp.params.train_len = 0.5;
    expect_arg(&sp, "--train-len", "train_len < 1");
    sp.params = ats_policy_params_default();
    sp.threads = 0;
    expect_arg(&sp, "--threads", "threads = 0");
    sp.threads = NAN;
    // The policy at the last position of a 5-row sequence of 3 columns: pos 4 >= n.
    double x15[15] = {0};
    int64_t s53[2] = {5, 3};
    struct ats_array *b;
    ats_array_wrap(&b, x15, ATS_DTYPE_F64, s53, 2);
    sp = spec0();
    sp.scores_array = b;
    sp.policy = "log-n";
    expect_arg(&sp, "--policy log-n: ", "the policy outside its positions");

    // Runtime failures: the statuses and the CLI's words.
    sp = spec0();
    sp.scores_array = b;
    sp.causal = 1;
    struct result r = collect(&sp);
    ATS_CHECK(r.alloc_rc == ATS_STATUS_EINVAL &&
                  strstr(r.err, "--causal: sequences of 5 positions but only 3 columns"),
              "causal with more positions than columns: EINVAL '%s'", r.err);
    result_free(&r);
    ats_array_close(b);
    int64_t s05[2] = {0, 5};
    ats_array_wrap(&b, x15, ATS_DTYPE_F64, s05, 2);
    sp = spec0();
    sp.scores_array = b;
    r = collect(&sp);
    ATS_CHECK(r.alloc_rc == ATS_STATUS_EINVAL &&
                  strcmp(r.err, "the input has no logits (0 rows of 5)") == 0,
              "no rows: EINVAL '%s'", r.err);
    result_free(&r);
    ats_array_close(b);
    sp = spec0();
    sp.scores = path(1, "missing.npy");
    r = collect(&sp);
    ATS_CHECK(r.alloc_rc == ATS_STATUS_EIO && strncmp(r.err, "--scores: ", 10) == 0 &&
                  strstr(r.err, "missing.npy"),
              "a missing file: EIO '%s'", r.err);
    result_free(&r);
    sp = spec0();
    sp.safetensors = path(1, "missing.safetensors");
    sp.tensor = "t";
    r = collect(&sp);
    ATS_CHECK(r.alloc_rc == ATS_STATUS_EIO && strncmp(r.err, "--safetensors: ", 15) == 0,
              "a missing safetensors file: EIO '%s'", r.err);
    result_free(&r);

    // NaN and Inf logits a row sees: EDOM naming the row and column; unseen ones are fine.
    double y[3 * 4] = {0.1, 0.2, 0.3, 0.4, 0.5, NAN, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2};
    int64_t s34[2] = {3, 4};
    ats_array_wrap(&b, y, ATS_DTYPE_F64, s34, 2);
    sp = spec0();
    sp.scores_array = b;
    r = collect(&sp);
    ATS_CHECK(r.rc == ATS_STATUS_EDOM && r.n == 0 &&
                  strcmp(r.err, "row 1, column 1: the logit is NaN") == 0,
              "a NaN logit: EDOM '%s'", r.err);
    struct ats_record rec;
    ATS_CHECK(ats_run_next(r.run, &rec) == ATS_STATUS_EDOM && rec.count == 0,
              "a failed run stays failed");
    result_free(&r);
    y[5] = -INFINITY;
    r = collect(&sp);
    ATS_CHECK(r.rc == ATS_STATUS_EDOM && strcmp(r.err, "row 1, column 1: the logit is infinite") == 0,
              "an infinite logit: EDOM '%s'", r.err);
    result_free(&r);
    y[5] = 0.6;
    y[2] = NAN; // row 0 sees column 0 only, row 1 columns 0..1
    sp.causal = 1;
    r = collect(&sp);
    ATS_CHECK(r.rc == ATS_STATUS_OK && r.n == 4, "causal: a NaN no row sees is fine (%s)", r.err);
    result_free(&r);
    ats_array_close(b);
    ats_array_close(a);
}

// ---------------------------------------------------------------------------
// The command's table, CSV columns, cancellation

static void test_command(void) {
    const struct ats_command *cmd = ats_command_find("diagnose");
    ATS_CHECK(cmd && strcmp(cmd->name, "diagnose") == 0 && cmd->spec_size ==
              sizeof(struct ats_diagnose_spec) && !cmd->operand,
              "ats_command_find(\"diagnose\")");
    if (!cmd)
        return;
    static const char *const names[] = {"scores", "q", "k", "safetensors", "tensor", "causal",
                                        "beta", "window", "policy", "train-len", "factor",
                                        "max-len", "finetuned", "slope", "d", "seed", "threads"};
    int ok = 1;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        ok &= ats_command_option(cmd, names[i]) != NULL;
    ATS_CHECK(ok && ats_command_option(cmd, "train_len") && !ats_command_option(cmd, "scores_array"),
              "options named as the CLI's (arrays set directly, not options)");
    struct ats_diagnose_spec sp = spec0();
    ATS_CHECK(!sp.scores && !sp.scores_array && !sp.policy && sp.beta.count == 0 &&
                  isnan(sp.params.train_len) && sp.params.finetuned == -1 && isnan(sp.threads) &&
                  isnan(sp.seed) && sp.causal == 0,
              "spec_default: everything absent, policy parameters at their shipped defaults");

    sp.scores = path(0, "simplex.npy");
    struct ats_run *run;
    int rc = cmd->run_alloc(&run, &sp);
    static const char *const want[] = {
        "record",      "row",          "n",           "causal",        "beta",          "window",
        "multiplier",  "beta_applied", "beta_hat",    "beta_hat_k10",  "beta_half",
        "entropy",     "w1",           "ratio",       "regime",        "rows",
        "n_min",       "n_max",        "buckets",     "log_slope",     "log_intercept",
        "log_r2",      "log_resid_sd", "log_rmse",    "polylog_xi",    "polylog_c",
        "polylog_r2",  "polylog_resid_sd", "polylog_rmse", "power_e",  "power_c",
        "power_alpha", "power_r2",     "power_resid_sd", "power_rmse", "best",
        "fit_error",   "best_policy",  "policy",      "scope",         "slope",
        "ratio_at_max", "rank"};
    int64_t count = 0;
    const char *const *cols = rc == ATS_STATUS_OK ? ats_run_csv_columns(run, &count) : NULL;
    ok = cols && count == (int64_t)(sizeof want / sizeof want[0]);
    for (int64_t i = 0; ok && i < count; i++)
        ok = strcmp(cols[i], want[i]) == 0;
    ATS_CHECK(ok, "CSV columns: the %lld of every record kind, in the CLI's order",
              (long long)count);
    ATS_CHECK(rc == ATS_STATUS_OK && ats_run_figure(run) == NULL, "no figure");
    // Cancelled before the first block: ECANCEL now and after.
    ats_run_cancel(run);
    struct ats_record rec;
    ATS_CHECK(ats_run_next(run, &rec) == ATS_STATUS_ECANCEL &&
                  ats_run_next(run, &rec) == ATS_STATUS_ECANCEL,
              "ats_run_cancel: ATS_STATUS_ECANCEL");
    const struct ats_figure *fig;
    ATS_CHECK(ats_run_next_figure(run, &fig) != ATS_STATUS_OK, "no figures to iterate");
    ats_run_free(run);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/ats_test_diagnose_run_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    make_simplex();
    test_command();
    test_rows_and_summary();
    test_ranking();
    test_arrays();
    test_qk();
    test_blocks();
    test_errors();
    free(simplex);
    static const char *const files[] = {"simplex.npy", "simplex32.npy", "two.npy", "q.npy",
                                        "k.npy",       "k1.npy"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        unlink(path(0, files[i]));
    rmdir(dir);
    return ats_test_summary();
}
