/*
 * diagnose_run.c: the `diagnose` experiment: the gap-counting diagnostic (THEORY.md section 4)
 * on rows of attention logits (a .npy or safetensors file, q and k files, or arrays in memory),
 * read a block of rows at a time. One "row" record per row and (beta, window) combination,
 * then a "summary" record with the laws of beta_hat_k10 over n (4.4) and, with a policy, the
 * "policy" records ranking the policies by how well they keep rows critical (4.5).
 *
 * Memory: one block of rows (about 32 MB of logits), the keys of q/k input, and two doubles
 * per row for the fits; the records of a block are handed out one by one.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "experiments/run.h"

// The CSV header: every key of every record kind, in this order.
static const char *const columns[] = {
    "record",      "row",          "n",           "causal",        "beta",          "window",
    "multiplier",  "beta_applied", "beta_hat",    "beta_hat_k10",  "beta_half",
    "entropy",     "w1",           "ratio",       "regime",        "rows",
    "n_min",       "n_max",        "buckets",     "log_slope",     "log_intercept",
    "log_r2",      "log_resid_sd", "log_rmse",    "polylog_xi",    "polylog_c",
    "polylog_r2",  "polylog_resid_sd", "polylog_rmse", "power_e",  "power_c",
    "power_alpha", "power_r2",     "power_resid_sd", "power_rmse", "best",
    "fit_error",   "best_policy",  "policy",      "scope",         "slope",
    "ratio_at_max", "rank"};

// The in-memory arrays (scores_array, q_array, k_array) have no entry: front-ends that hold
// arrays (Python) set those fields directly, and each counts as the input of the file option
// of the same name.
#define S struct ats_diagnose_spec
static const struct ats_option options[] = {
    {"scores", ATS_OPTION_TEXT, OPT_OFF(S, scores), DOM_NONE, NULL, "FILE.npy",
     "logits, shape (rows, n) (more leading axes are more rows)\n",
     "Input (float16, float32 or float64, C order)"},
    {"q", ATS_OPTION_TEXT, OPT_OFF(S, q), DOM_NONE, NULL, "Q.npy",
     "queries (rows, d), with --k: logits q.k/sqrt(d)\n", NULL},
    {"k", ATS_OPTION_TEXT, OPT_OFF(S, k), DOM_NONE, NULL, "K.npy", "keys (n, d), with --q\n",
     NULL},
    {"safetensors", ATS_OPTION_TEXT, OPT_OFF(S, safetensors), DOM_NONE, NULL, "FILE",
     "logits from the tensor --tensor names (F16, BF16, F32, F64)\n", NULL},
    {"tensor", ATS_OPTION_TEXT, OPT_OFF(S, tensor), DOM_NONE, NULL, "NAME",
     "the tensor of --safetensors\n", NULL},
    {"causal", ATS_OPTION_FLAG, OPT_OFF(S, causal), DOM_NONE, NULL, NULL,
     "row i sees columns 0..i only (its n is i + 1)\n", NULL},
    {"beta", ATS_OPTION_VALUES, OPT_OFF(S, beta), DOM_NONNEG, NULL, "B",
     "inverse temperature applied on top of the logits as given (default 1)\n", "Options"},
    {"window", ATS_OPTION_VALUES, OPT_OFF(S, window), {1, HUGE_VAL, 1, 0, 0}, NULL, "W",
     "regime window: subcritical below beta/beta_hat_k10 = 1/W, supercritical\n"
     "above W (default 2, > 1)\n",
     NULL},
    {"policy", ATS_OPTION_TEXT, OPT_OFF(S, policy), DOM_NONE, NULL, "NAME",
     "multiply row i's beta by the policy at position i; all: rank every\n"
     "policy in the summary instead (see attnscale policies --list)\n",
     NULL},
    OPTIONS_POLICY_PARAMS(S),
    OPTIONS_SEED_THREADS(S),
};
#undef S

static void spec_default(void *spec) {
    command_spec_absent(&command_diagnose, spec);
    ((struct ats_diagnose_spec *)spec)->params = ats_policy_params_default();
}

// ----------------------------------------------------------------------------
// Ranking (THEORY.md 4.5)

struct rank_row {
    struct ats_policy_rank r;
    double beta;
};

// |slope| to 9 significant digits: slopes that agree to rounding (log n, critical, su and
// ssmax are all proportional to log n) rank as equals.
static double slope_key(const struct rank_row *r) {
    double a = fabs(r->r.slope);
    if (a == 0 || !isfinite(a))
        return a;
    double scale = pow(10, 8 - floor(log10(a)));
    return nearbyint(a * scale) / scale;
}

// By beta, then rounded |slope|, then registry order: a total order, so the ranking does not
// depend on qsort's handling of equal keys.
static int cmp_rank(const void *x, const void *y) {
    const struct rank_row *a = x, *b = y;
    if (a->beta != b->beta)
        return (a->beta > b->beta) - (a->beta < b->beta);
    double ka = slope_key(a), kb = slope_key(b);
    if (ka != kb)
        return (ka > kb) - (ka < kb);
    return (a->r.id > b->r.id) - (a->r.id < b->r.id);
}

// ----------------------------------------------------------------------------
// State

enum { PHASE_ROWS, PHASE_SUMMARY, PHASE_POLICIES, PHASE_DONE };

struct state {
    // Input: arrays opened here (closed with the state) or the caller's.
    struct ats_array *own_scores, *own_q, *own_k;
    const struct ats_array *scores, *q; // what the rows are read from (one of them)
    double *kdata;                      // keys (n, d), read whole (q/k input)
    int64_t rows, n, d;
    int64_t seq; // rows per sequence: the second-to-last axis; row r is at position r % seq
    int causal, threads;

    struct ats_values beta, window;
    int64_t ncombo;
    double *cb, *cw; // (ncombo,) beta and window of each combination, window fastest
    int64_t policy_id; // one policy applied to the rows, or -1
    int rank_all, have_policy;
    struct ats_policy_params params;

    // The block of rows in hand: rows [r0, r0 + nr), record (i, k) next.
    int64_t block, r0, nr, i, k;
    double *s, *qbuf, *ws, *mult;
    int64_t *lens;
    struct ats_row_stats *st;
    double *all_n, *all_bh; // (rows,) every row's n and beta_hat_k10, for the fits

    int phase;
    struct ats_law_fits fits;
    int fit_rc;
    char fit_error[RUN_NOTE_LEN];
    double *bn; // bucket lengths
    struct rank_row *ranks;
    int64_t nranks, next_rank, rank, pos;
};

static void state_free(void *p) {
    struct state *s = p;
    if (!s)
        return;
    ats_array_close(s->own_scores);
    ats_array_close(s->own_q);
    ats_array_close(s->own_k);
    ats_free(s->kdata);
    ats_values_clear(&s->beta);
    ats_values_clear(&s->window);
    ats_free(s->cb);
    ats_free(s->cw);
    ats_free(s->s);
    ats_free(s->qbuf);
    ats_free(s->ws);
    ats_free(s->mult);
    ats_free(s->lens);
    ats_free(s->st);
    ats_free(s->all_n);
    ats_free(s->all_bh);
    ats_free(s->bn);
    ats_free(s->ranks);
    ats_free(s);
}

// Rows of a (..., seq, cols) array form sequences of seq positions (a 1-D array: one row).
static int64_t seq_len(const struct ats_array *a) {
    int nd = ats_array_ndim(a);
    return nd >= 2 ? ats_array_dim(a, nd - 2) : 1;
}

static int open_npy(struct ats_array **a, const char *opt, const char *path) {
    int rc = ats_npy_open(a, path);
    if (rc != ATS_STATUS_OK)
        ATS_ERROR(rc, "%s: %s", opt, ats_last_error());
    return ATS_STATUS_OK;
}

// The one input of sp into s: usage errors first (ATS_STATUS_EARG), then the files.
static int open_input(struct state *s, const struct ats_diagnose_spec *sp) {
    int nq = (sp->q != NULL) + (sp->q_array != NULL), nk = (sp->k != NULL) + (sp->k_array != NULL);
    int nscores = (sp->scores != NULL) + (sp->scores_array != NULL);
    if ((nq > 0) != (nk > 0))
        ATS_ERROR(ATS_STATUS_EARG, "--q and --k go together");
    if ((sp->safetensors != NULL) != (sp->tensor != NULL))
        ATS_ERROR(ATS_STATUS_EARG, "--safetensors and --tensor go together");
    if (nscores + (nq > nk ? nq : nk) + (sp->safetensors != NULL) != 1)
        ATS_ERROR(ATS_STATUS_EARG,
                  "give exactly one input: --scores, --q with --k, or --safetensors");
    int rc = ATS_STATUS_OK;
    if (sp->scores) {
        rc = open_npy(&s->own_scores, "--scores", sp->scores);
        s->scores = s->own_scores;
    } else if (sp->scores_array) {
        s->scores = sp->scores_array;
    } else if (sp->safetensors) {
        rc = ats_safetensors_open(&s->own_scores, sp->safetensors, sp->tensor);
        if (rc != ATS_STATUS_OK)
            ATS_ERROR(rc, "--safetensors: %s", ats_last_error());
        s->scores = s->own_scores;
    }
    if (rc != ATS_STATUS_OK)
        return rc;
    if (s->scores) {
        s->rows = ats_array_rows(s->scores);
        s->n = ats_array_cols(s->scores);
        s->seq = seq_len(s->scores);
    } else {
        if (sp->q) {
            rc = open_npy(&s->own_q, "--q", sp->q);
            if (rc != ATS_STATUS_OK)
                return rc;
        }
        s->q = sp->q ? s->own_q : sp->q_array;
        const struct ats_array *k = sp->k_array;
        if (sp->k) {
            rc = open_npy(&s->own_k, "--k", sp->k);
            if (rc != ATS_STATUS_OK)
                return rc;
            k = s->own_k;
        }
        s->rows = ats_array_rows(s->q);
        s->d = ats_array_cols(s->q);
        s->seq = seq_len(s->q);
        s->n = ats_array_rows(k);
        if (ats_array_ndim(k) != 2) {
            if (sp->k)
                ATS_ERROR(ATS_STATUS_EINVAL, "--k '%s': keys must have shape (n, d), not %d axes",
                          sp->k, ats_array_ndim(k));
            ATS_ERROR(ATS_STATUS_EINVAL, "--k: keys must have shape (n, d), not %d axes",
                      ats_array_ndim(k));
        }
        if (ats_array_cols(k) != s->d)
            ATS_ERROR(ATS_STATUS_EINVAL, "--q has d = %lld but --k has d = %lld",
                      (long long)s->d, (long long)ats_array_cols(k));
        s->kdata = ats_malloc_array((size_t)(s->n * s->d), sizeof *s->kdata);
        if (!s->kdata && s->n * s->d > 0)
            ATS_ERROR(ATS_STATUS_ENOMEM, "out of memory for the keys (%lld x %lld)",
                      (long long)s->n, (long long)s->d);
        if (s->n * s->d > 0) {
            rc = ats_array_read_rows(s->kdata, k, 0, s->n);
            if (rc != ATS_STATUS_OK)
                ATS_ERROR(rc, "--k: %s", ats_last_error());
        }
    }
    if (s->rows < 1 || s->n < 1)
        ATS_ERROR(ATS_STATUS_EINVAL, "the input has no logits (%lld rows of %lld)",
                  (long long)s->rows, (long long)s->n);
    // q k^T / sqrt(d) needs a coordinate (the CLI would have stopped in BLAS).
    if (s->q && s->d < 1)
        ATS_ERROR(ATS_STATUS_EINVAL, "--q and --k have d = 0: no logits to form");
    return ATS_STATUS_OK;
}

// Buffers for a block of rows: about 32 MB of logits.
static int alloc_block(struct state *s) {
    int64_t block = 4194304 / s->n;
    block = block < 1 ? 1 : block > s->rows ? s->rows : block;
    s->block = block;
    s->s = ats_malloc_array((size_t)block, (size_t)s->n * sizeof *s->s);
    s->qbuf = s->q ? ats_malloc_array((size_t)block, (size_t)s->d * sizeof *s->qbuf) : NULL;
    s->ws = ats_malloc_array((size_t)ats_row_block_workspace(s->n, s->threads), sizeof *s->ws);
    s->mult = ats_malloc_array((size_t)block, sizeof *s->mult);
    s->lens = ats_malloc_array((size_t)block, sizeof *s->lens);
    s->st = ats_malloc_array((size_t)block, (size_t)s->ncombo * sizeof *s->st);
    s->all_n = ats_malloc_array((size_t)s->rows, sizeof *s->all_n);
    s->all_bh = ats_malloc_array((size_t)s->rows, sizeof *s->all_bh);
    if (!s->s || (s->q && !s->qbuf) || !s->ws || !s->mult || !s->lens || !s->st || !s->all_n ||
        !s->all_bh)
        ATS_ERROR(ATS_STATUS_ENOMEM, "out of memory for a block of %lld rows of %lld logits",
                  (long long)block, (long long)s->n);
    return ATS_STATUS_OK;
}

// ----------------------------------------------------------------------------
// Rows

// Reads logits of rows [r0, r0 + nr) into s->s: (nr, n).
static int read_block(struct state *s, int64_t r0, int64_t nr) {
    int rc;
    if (s->scores) {
        rc = ats_array_read_rows(s->s, s->scores, r0, nr);
        if (rc != ATS_STATUS_OK)
            ATS_ERROR(rc, "reading rows %lld..%lld: %s", (long long)r0, (long long)(r0 + nr - 1),
                      ats_last_error());
        return ATS_STATUS_OK;
    }
    rc = ats_array_read_rows(s->qbuf, s->q, r0, nr);
    if (rc != ATS_STATUS_OK)
        ATS_ERROR(rc, "--q: reading rows %lld..%lld: %s", (long long)r0, (long long)(r0 + nr - 1),
                  ats_last_error());
    for (int64_t i = 0; i < nr * s->d; i++)
        if (!isfinite(s->qbuf[i]))
            ATS_ERROR(ATS_STATUS_EDOM, "--q: row %lld, column %lld is not finite",
                      (long long)(r0 + i / s->d), (long long)(i % s->d));
    ats_scores_qk(s->s, s->qbuf, s->kdata, nr, s->n, s->d);
    return ATS_STATUS_OK;
}

// The statistics of the next block of rows (from s->r0 + s->nr).
static int next_block(struct ats_run *run, struct state *s) {
    int rc = run_check_cancel(run);
    if (rc != ATS_STATUS_OK)
        return rc;
    int64_t r0 = s->r0 + s->nr;
    int64_t nr = s->rows - r0 < s->block ? s->rows - r0 : s->block;
    rc = read_block(s, r0, nr);
    if (rc != ATS_STATUS_OK)
        return rc;
    for (int64_t i = 0; i < nr; i++) {
        int64_t row = r0 + i, pos = row % s->seq;
        s->lens[i] = s->causal ? pos + 1 : s->n;
        s->mult[i] = 1;
        if (s->policy_id >= 0) {
            struct ats_policy_value v;
            rc = ats_policy_eval(&v, s->policy_id, &s->params, pos, s->causal ? pos + 1 : s->n);
            if (rc != ATS_STATUS_OK)
                ATS_ERROR(rc, "--policy at row %lld: %s", (long long)row, ats_last_error());
            s->mult[i] = v.multiplier;
        }
    }
    int64_t bad_row, bad_col;
    rc = ats_row_block(s->st, s->s, nr, s->n, s->lens, s->mult, s->cb, s->cw, s->ncombo,
                       s->threads, s->ws, &bad_row, &bad_col);
    if (rc != ATS_STATUS_OK && bad_row >= 0)
        ATS_ERROR(ATS_STATUS_EDOM, "row %lld, column %lld: the logit is %s",
                  (long long)(r0 + bad_row), (long long)bad_col,
                  isnan(s->s[bad_row * s->n + bad_col]) ? "NaN" : "infinite");
    if (rc != ATS_STATUS_OK)
        ATS_ERROR(rc, "%s: %s", ats_strerror(rc), ats_last_error());
    for (int64_t i = 0; i < nr; i++) {
        s->all_n[r0 + i] = (double)s->lens[i];
        s->all_bh[r0 + i] = s->st[i * s->ncombo].beta_hat_k10;
    }
    s->r0 = r0;
    s->nr = nr;
    s->i = s->k = 0;
    return ATS_STATUS_OK;
}

static void row_record(struct state *s, struct ats_record *rec) {
    const struct ats_row_stats *o = &s->st[s->i * s->ncombo + s->k];
    ats_record_string(rec, "record", "row");
    ats_record_int(rec, "row", s->r0 + s->i);
    ats_record_int(rec, "n", o->n);
    ats_record_int(rec, "causal", s->causal);
    if (s->policy_id >= 0)
        ats_record_string(rec, "policy", ats_policy_get(s->policy_id)->name);
    ats_record_double(rec, "beta", s->cb[s->k]);
    ats_record_double(rec, "window", s->cw[s->k]);
    ats_record_double(rec, "multiplier", s->mult[s->i]);
    ats_record_double(rec, "beta_applied", o->beta);
    ats_record_double(rec, "beta_hat", o->beta_hat);
    ats_record_double(rec, "beta_hat_k10", o->beta_hat_k10);
    ats_record_double(rec, "beta_half", o->beta_half);
    ats_record_double(rec, "entropy", o->entropy);
    ats_record_double(rec, "w1", o->w1);
    ats_record_double(rec, "ratio", o->ratio);
    ats_record_string(rec, "regime",
                      o->regime < 0 ? "undetermined" : ats_regime_name((enum ats_regime)o->regime));
}

// ----------------------------------------------------------------------------
// Summary and ranking

// The fits of beta_hat_k10 over n (THEORY.md 4.4), then the policies ranked by |slope| for
// each beta (4.5), sorted; notes for the policies left out.
static int fit_and_rank(struct ats_run *run, struct state *s) {
    int rc = run_check_cancel(run);
    if (rc != ATS_STATUS_OK)
        return rc;
    s->bn = ats_malloc_array((size_t)s->rows, sizeof *s->bn);
    if (!s->bn)
        ATS_ERROR(ATS_STATUS_ENOMEM, "out of memory");
    s->fit_rc = ats_fit_laws(&s->fits, s->bn, NULL, s->all_n, s->all_bh, s->rows);
    snprintf(s->fit_error, sizeof s->fit_error, "%s",
             s->fit_rc == ATS_STATUS_OK ? "" : ats_last_error());
    int64_t np = s->have_policy && s->fit_rc == ATS_STATUS_OK
                     ? (s->rank_all ? ats_policy_count() : 1)
                     : 0;
    s->ranks = ats_malloc_array((size_t)(np * s->beta.count + 1), sizeof *s->ranks);
    if (!s->ranks)
        ATS_ERROR(ATS_STATUS_ENOMEM, "out of memory");
    s->nranks = 0;
    for (int64_t b = 0; b < s->beta.count; b++) {
        for (int64_t p = 0; p < np; p++) {
            int64_t id = s->rank_all ? p : s->policy_id;
            struct ats_policy_value v;
            int64_t big = (int64_t)llround(s->fits.n_largest);
            if (ats_policy_eval(&v, id, &s->params, big - 1, big) == ATS_STATUS_OK &&
                (v.scope != ATS_POLICY_SCOPE_ALL || isnan(v.multiplier))) {
                if (b == 0)
                    run_note(run, "note: %s not ranked: it scales %s dimensions only",
                             ats_policy_get(id)->name, ats_policy_scope_name(v.scope));
                continue;
            }
            struct rank_row *r = &s->ranks[s->nranks];
            if (ats_rank_policy(&r->r, id, &s->params, &s->fits, s->bn, s->fits.buckets,
                                s->beta.v[b]) == ATS_STATUS_OK) {
                r->beta = s->beta.v[b];
                s->nranks++;
            } else if (b == 0) {
                run_note(run, "note: %s not ranked: %s", ats_policy_get(id)->name,
                         ats_last_error());
            }
        }
    }
    qsort(s->ranks, (size_t)s->nranks, sizeof *s->ranks, cmp_rank);
    return ATS_STATUS_OK;
}

static void fit_record(struct ats_record *rec, const struct ats_fit *f, const char *const *keys) {
    ats_record_double(rec, keys[0], f->slope);
    ats_record_double(rec, keys[1], f->intercept);
    ats_record_double(rec, keys[2], f->r2);
    ats_record_double(rec, keys[3], f->resid_sd);
    ats_record_double(rec, keys[4], f->log_rmse);
}

static void summary_record(struct ats_run *run, struct state *s, struct ats_record *rec) {
    static const char *const log_keys[] = {"log_slope", "log_intercept", "log_r2",
                                           "log_resid_sd", "log_rmse"};
    static const char *const polylog_keys[] = {"polylog_xi", "polylog_c", "polylog_r2",
                                               "polylog_resid_sd", "polylog_rmse"};
    static const char *const power_keys[] = {"power_e", "power_c", "power_r2", "power_resid_sd",
                                             "power_rmse"};
    ats_record_string(rec, "record", "summary");
    ats_record_int(rec, "rows", s->rows);
    if (s->fit_rc == ATS_STATUS_OK) {
        ats_record_double(rec, "n_min", s->fits.n_min);
        ats_record_double(rec, "n_max", s->fits.n_max);
        ats_record_int(rec, "buckets", s->fits.buckets);
        fit_record(rec, &s->fits.log_law, log_keys);
        fit_record(rec, &s->fits.polylog, polylog_keys);
        fit_record(rec, &s->fits.power, power_keys);
        ats_record_double(rec, "power_alpha", 2 / s->fits.power.slope);
        ats_record_string(rec, "best", s->fits.best);
        if (s->nranks > 0)
            ats_record_string(rec, "best_policy", ats_policy_get(s->ranks[0].r.id)->name);
    } else {
        ats_record_string(rec, "fit_error", s->fit_error);
    }
    if (s->have_policy && s->fit_rc != ATS_STATUS_OK)
        run_note(run, "note: policies not ranked: %s", s->fit_error);
}

// Ranks per beta, competition style (1, 2, 2, 4): equal rounded slopes share a rank, listed
// in registry order.
static void policy_record(struct state *s, struct ats_record *rec) {
    int64_t i = s->next_rank;
    const struct rank_row *r = &s->ranks[i];
    int first = i == 0 || r->beta != s->ranks[i - 1].beta;
    s->pos = first ? 1 : s->pos + 1;
    if (first || slope_key(r) != slope_key(&s->ranks[i - 1]))
        s->rank = s->pos;
    ats_record_string(rec, "record", "policy");
    ats_record_string(rec, "policy", ats_policy_get(r->r.id)->name);
    ats_record_string(rec, "scope", "all");
    ats_record_double(rec, "beta", r->beta);
    ats_record_double(rec, "slope", r->r.slope);
    ats_record_double(rec, "ratio_at_max", r->r.ratio_at_max);
    ats_record_int(rec, "rank", s->rank);
    s->next_rank++;
}

// ----------------------------------------------------------------------------

static int next(struct ats_run *run, void *state, struct ats_record *rec) {
    struct state *s = state;
    int rc;
    if (s->phase == PHASE_ROWS) {
        if (s->i >= s->nr) {
            if (s->r0 + s->nr >= s->rows) {
                s->phase = PHASE_SUMMARY;
            } else if ((rc = next_block(run, s)) != ATS_STATUS_OK) {
                return rc;
            }
        }
        if (s->phase == PHASE_ROWS) {
            row_record(s, rec);
            if (++s->k == s->ncombo) {
                s->k = 0;
                s->i++;
                run->done = (double)(s->r0 + s->i);
            }
            return ATS_STATUS_OK;
        }
    }
    if (s->phase == PHASE_SUMMARY) {
        if ((rc = fit_and_rank(run, s)) != ATS_STATUS_OK)
            return rc;
        summary_record(run, s, rec);
        s->phase = PHASE_POLICIES;
        return ATS_STATUS_OK;
    }
    if (s->phase == PHASE_POLICIES && s->next_rank < s->nranks) {
        policy_record(s, rec);
        return ATS_STATUS_OK;
    }
    s->phase = PHASE_DONE;
    return ATS_STATUS_OK;
}

static const struct run_ops ops = {next, NULL, state_free};

// Everything before the first record: the spec, the policy name, the input, the buffers and
// the policy at the first and last positions.
static int setup(struct state *s, const struct ats_diagnose_spec *sp) {
    int rc = sp->beta.count ? values_copy(&s->beta, &sp->beta) : values_one(&s->beta, 1);
    if (rc == ATS_STATUS_OK)
        rc = sp->window.count ? values_copy(&s->window, &sp->window) : values_one(&s->window, 2);
    if (rc != ATS_STATUS_OK)
        return rc;
    s->causal = sp->causal != 0;
    s->threads = spec_threads(sp->threads);
    s->params = sp->params;
    s->policy_id = -1;
    s->have_policy = sp->policy != NULL;
    s->rank_all = sp->policy && strcmp(sp->policy, "all") == 0;
    if (sp->policy && !s->rank_all) {
        s->policy_id = ats_policy_find(sp->policy);
        if (s->policy_id < 0) {
            char names[512];
            policy_names(names, sizeof names);
            ATS_ERROR(ATS_STATUS_EARG, "--policy: unknown policy '%s' (known: %s, or all)",
                      sp->policy, names);
        }
    }
    if ((rc = open_input(s, sp)) != ATS_STATUS_OK)
        return rc;
    if (s->causal && s->seq > s->n)
        ATS_ERROR(ATS_STATUS_EINVAL,
                  "--causal: sequences of %lld positions but only %lld columns (position p "
                  "sees columns 0..p)",
                  (long long)s->seq, (long long)s->n);

    // Combinations of beta and window, in option order.
    s->ncombo = s->beta.count * s->window.count;
    s->cb = ats_malloc_array((size_t)s->ncombo, sizeof *s->cb);
    s->cw = ats_malloc_array((size_t)s->ncombo, sizeof *s->cw);
    if (!s->cb || !s->cw)
        ATS_ERROR(ATS_STATUS_ENOMEM, "out of memory");
    for (int64_t i = 0; i < s->beta.count; i++)
        for (int64_t j = 0; j < s->window.count; j++) {
            s->cb[i * s->window.count + j] = s->beta.v[i];
            s->cw[i * s->window.count + j] = s->window.v[j];
        }
    if ((rc = alloc_block(s)) != ATS_STATUS_OK)
        return rc;

    // The policy is checked at the first and last positions before any output; it must
    // multiply whole logits (a rotary-only factor depends on the model's rotary share).
    if (s->policy_id >= 0) {
        struct ats_policy_value v;
        int64_t last = s->seq - 1;
        if (ats_policy_eval(&v, s->policy_id, &s->params, 0, s->causal ? 1 : s->n) !=
                ATS_STATUS_OK ||
            ats_policy_eval(&v, s->policy_id, &s->params, last, s->causal ? last + 1 : s->n) !=
                ATS_STATUS_OK)
            ATS_ERROR(ATS_STATUS_EARG, "--policy %s: %s", sp->policy, ats_last_error());
        if (v.scope != ATS_POLICY_SCOPE_ALL || isnan(v.multiplier))
            ATS_ERROR(ATS_STATUS_EARG,
                      "--policy %s scales %s head dimensions only, not whole logits: apply it "
                      "when computing the logits instead",
                      sp->policy,
                      isnan(v.multiplier) ? "rotary and pass-through"
                                          : ats_policy_scope_name(v.scope));
    }
    return ATS_STATUS_OK;
}

static int run_alloc(struct ats_run **out, const void *spec_) {
    const struct ats_diagnose_spec *sp = spec_;
    int rc = command_check_spec(&command_diagnose, sp);
    if (rc != ATS_STATUS_OK)
        return rc;
    struct state *s = ats_malloc(sizeof *s);
    if (!s)
        ATS_ERROR(ATS_STATUS_ENOMEM, "no memory for a run");
    memset(s, 0, sizeof *s);
    s->phase = PHASE_ROWS;
    rc = setup(s, sp);
    if (rc != ATS_STATUS_OK) {
        state_free(s);
        return rc;
    }
    int64_t rows = s->rows;
    rc = run_new(out, &ops, s, (double)rows);
    if (rc != ATS_STATUS_OK)
        return rc;
    (*out)->columns = columns;
    (*out)->ncolumns = (int64_t)(sizeof columns / sizeof columns[0]);
    return ATS_STATUS_OK;
}

const struct ats_command command_diagnose = {
    "diagnose",
    "Usage: attnscale diagnose (--scores FILE.npy | --q Q.npy --k K.npy |\n"
    "                           --safetensors FILE --tensor NAME) [options]\n",
    "Per row of attention logits: the accumulation scale beta_hat (the critical inverse\n"
    "temperature of the row), the half-mass scale, entropy and largest weight at the applied\n"
    "beta, and the regime (THEORY.md 4.1-4.2; arXiv 2605.12697). Then a summary fitting\n"
    "beta_hat against the row length n (log n, (log n)^xi and n^(2/alpha) laws) and, with\n"
    "--policy, how well each scaling policy keeps the rows critical as n grows (4.4-4.5).\n",
    "Records: \"record\":\"row\" with row, n, beta, window, multiplier, beta_applied, beta_hat\n"
    "(k0 = 2), beta_hat_k10, beta_half, entropy, w1, ratio, regime (subcritical | critical |\n"
    "supercritical | undetermined below 10 logits); infinite values (ties at the maximum) are\n"
    "null. Then \"record\":\"summary\" with the fits (slope, intercept, r2, resid_sd and log_rmse\n"
    "of each law; best) or fit_error, and with --policy \"record\":\"policy\" rows: slope of\n"
    "log(beta m/beta_hat) against log n (0 keeps rows critical), ratio_at_max, rank.\n"
    "A NaN or Inf logit a row sees is an error naming the row and column (exit 1).\n"
    "\n"
    "Example:\n"
    "  attnscale diagnose --scores logits.npy --causal --policy all --format csv\n",
    options,
    (int64_t)(sizeof options / sizeof options[0]),
    sizeof(struct ats_diagnose_spec),
    spec_default,
    run_alloc,
    0,
};
