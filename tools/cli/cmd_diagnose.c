/*
 * cmd_diagnose.c: `attnscale diagnose`, the gap-counting diagnostic (THEORY.md section 4) on
 * rows of attention logits read from .npy or safetensors, a block of rows at a time.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char diagnose_help[] =
    "Usage: attnscale diagnose (--scores FILE.npy | --q Q.npy --k K.npy |\n"
    "                           --safetensors FILE --tensor NAME) [options]\n"
    "\n"
    "Per row of attention logits: the accumulation scale beta_hat (the critical inverse\n"
    "temperature of the row), the half-mass scale, entropy and largest weight at the applied\n"
    "beta, and the regime (THEORY.md 4.1-4.2; arXiv 2605.12697). Then a summary fitting\n"
    "beta_hat against the row length n (log n, (log n)^xi and n^(2/alpha) laws) and, with\n"
    "--policy, how well each scaling policy keeps the rows critical as n grows (4.4-4.5).\n"
    "\n"
    "Input (float16, float32 or float64, C order):\n"
    "  --scores FILE.npy    logits, shape (rows, n) (more leading axes are more rows)\n"
    "  --q Q.npy --k K.npy  queries (rows, d) and keys (n, d): logits q.k/sqrt(d)\n"
    "  --safetensors FILE --tensor NAME   logits from a named tensor (F16, BF16, F32, F64)\n"
    "  --causal             row i sees columns 0..i only (its n is i + 1)\n"
    "\n"
    "Options:\n"
    "  --beta B       inverse temperature applied on top of the logits as given (default 1)\n"
    "  --window W     regime window: subcritical below beta/beta_hat_k10 = 1/W, supercritical\n"
    "                 above W (default 2, > 1)\n"
    "  --policy NAME  multiply row i's beta by the policy at position i; all: rank every\n"
    "                 policy in the summary instead (see attnscale policies --list)\n"
    "\n" CLI_POLICY_HELP
    "\n"
    "Records: \"record\":\"row\" with row, n, beta, window, multiplier, beta_applied, beta_hat\n"
    "(k0 = 2), beta_hat_k10, beta_half, entropy, w1, ratio, regime (subcritical | critical |\n"
    "supercritical | undetermined below 10 logits); infinite values (ties at the maximum) are\n"
    "null. Then \"record\":\"summary\" with the fits (slope, intercept, r2, resid_sd and log_rmse\n"
    "of each law; best) or fit_error, and with --policy \"record\":\"policy\" rows: slope of\n"
    "log(beta m/beta_hat) against log n (0 keeps rows critical), ratio_at_max, rank.\n"
    "A NaN or Inf logit a row sees is an error naming the row and column (exit 1).\n"
    "\n"
    "Example:\n"
    "  attnscale diagnose --scores logits.npy --causal --policy all --format csv\n"
    "\n";

enum {
    OPT_SCORES = CLI_OPT_FIRST_COMMAND_OPTION,
    OPT_Q,
    OPT_K,
    OPT_SAFETENSORS,
    OPT_TENSOR,
    OPT_CAUSAL,
    OPT_BETA,
    OPT_WINDOW,
    OPT_POLICY,
};

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

struct input {
    struct ats_array *scores, *q, *k;
    double *kdata; // keys (n, d), read whole
    int64_t rows, n, d;
    int64_t seq;   // rows per sequence: the second-to-last axis; row r is at position r % seq
};

// Rows of a (..., seq, cols) array form sequences of seq positions (a 1-D array: one row).
static int64_t seq_len(const struct ats_array *a) {
    int nd = ats_array_ndim(a);
    return nd >= 2 ? ats_array_dim(a, nd - 2) : 1;
}

static struct ats_array *open_npy(const struct cli *c, const char *opt, const char *path) {
    struct ats_array *a;
    if (ats_npy_open(&a, path) != ATS_STATUS_OK)
        cli_fail(c, "%s: %s", opt, cli_last_error());
    return a;
}

static void open_input(const struct cli *c, struct input *in, const char *scores,
                       const char *q, const char *k, const char *st, const char *tensor) {
    memset(in, 0, sizeof *in);
    if ((q != NULL) != (k != NULL))
        cli_usage(c, "--q and --k go together");
    if ((st != NULL) != (tensor != NULL))
        cli_usage(c, "--safetensors and --tensor go together");
    if ((scores != NULL) + (q != NULL) + (st != NULL) != 1)
        cli_usage(c, "give exactly one input: --scores, --q with --k, or --safetensors");
    if (scores)
        in->scores = open_npy(c, "--scores", scores);
    if (st && ats_safetensors_open(&in->scores, st, tensor) != ATS_STATUS_OK)
        cli_fail(c, "--safetensors: %s", cli_last_error());
    if (in->scores) {
        in->rows = ats_array_rows(in->scores);
        in->n = ats_array_cols(in->scores);
        in->seq = seq_len(in->scores);
    } else {
        in->q = open_npy(c, "--q", q);
        in->k = open_npy(c, "--k", k);
        in->rows = ats_array_rows(in->q);
        in->d = ats_array_cols(in->q);
        in->seq = seq_len(in->q);
        in->n = ats_array_rows(in->k);
        if (ats_array_ndim(in->k) != 2)
            cli_fail(c, "--k '%s': keys must have shape (n, d), not %d axes", k,
                     ats_array_ndim(in->k));
        if (ats_array_cols(in->k) != in->d)
            cli_fail(c, "--q has d = %lld but --k has d = %lld", (long long)in->d,
                     (long long)ats_array_cols(in->k));
        in->kdata = malloc((size_t)(in->n * in->d) * sizeof *in->kdata);
        if (!in->kdata)
            cli_fail(c, "out of memory for the keys (%lld x %lld)", (long long)in->n,
                     (long long)in->d);
        if (ats_array_read_rows(in->kdata, in->k, 0, in->n) != ATS_STATUS_OK)
            cli_fail(c, "--k: %s", cli_last_error());
    }
    if (in->rows < 1 || in->n < 1)
        cli_fail(c, "the input has no logits (%lld rows of %lld)", (long long)in->rows,
                 (long long)in->n);
}

// Reads logits of rows [r0, r0 + nr) into s: (nr, n).
static void read_block(const struct cli *c, const struct input *in, double *s, double *qbuf,
                       int64_t r0, int64_t nr) {
    if (in->scores) {
        if (ats_array_read_rows(s, in->scores, r0, nr) != ATS_STATUS_OK)
            cli_fail(c, "reading rows %lld..%lld: %s", (long long)r0, (long long)(r0 + nr - 1),
                     cli_last_error());
        return;
    }
    if (ats_array_read_rows(qbuf, in->q, r0, nr) != ATS_STATUS_OK)
        cli_fail(c, "--q: reading rows %lld..%lld: %s", (long long)r0, (long long)(r0 + nr - 1),
                 cli_last_error());
    for (int64_t i = 0; i < nr * in->d; i++)
        if (!isfinite(qbuf[i]))
            cli_fail(c, "--q: row %lld, column %lld is not finite", (long long)(r0 + i / in->d),
                     (long long)(i % in->d));
    ats_scores_qk(s, qbuf, in->kdata, nr, in->n, in->d);
}

static void write_fit(struct ats_writer *w, const char *law, const char *slope_key,
                      const char *icpt_key, const struct ats_fit *f) {
    char key[40];
    ats_writer_double(w, slope_key, f->slope);
    ats_writer_double(w, icpt_key, f->intercept);
    snprintf(key, sizeof key, "%s_r2", law);
    ats_writer_double(w, key, f->r2);
    snprintf(key, sizeof key, "%s_resid_sd", law);
    ats_writer_double(w, key, f->resid_sd);
    snprintf(key, sizeof key, "%s_rmse", law);
    ats_writer_double(w, key, f->log_rmse);
}

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

int cmd_diagnose(int argc, char **argv) {
    static const struct option options[] = {{"scores", required_argument, NULL, OPT_SCORES},
                                            {"q", required_argument, NULL, OPT_Q},
                                            {"k", required_argument, NULL, OPT_K},
                                            {"safetensors", required_argument, NULL, OPT_SAFETENSORS},
                                            {"tensor", required_argument, NULL, OPT_TENSOR},
                                            {"causal", no_argument, NULL, OPT_CAUSAL},
                                            {"beta", required_argument, NULL, OPT_BETA},
                                            {"window", required_argument, NULL, OPT_WINDOW},
                                            {"policy", required_argument, NULL, OPT_POLICY},
                                            {"d", required_argument, NULL, CLI_OPT_POLICY_D},
                                            CLI_POLICY_OPTIONS,
                                            CLI_COMMON_OPTIONS,
                                            {NULL, 0, NULL, 0}};
    const struct ats_domain dom_beta = {0, HUGE_VAL, 0, 0, 0};
    const struct ats_domain dom_window = {1, HUGE_VAL, 1, 0, 0};
    struct cli c;
    cli_init(&c, "diagnose");
    struct ats_policy_params params = ats_policy_params_default();
    struct ats_values betav = {0}, windowv = {0};
    const char *scores = NULL, *qpath = NULL, *kpath = NULL, *st = NULL, *tensor = NULL,
               *policy = NULL;
    int causal = 0, opt;
    while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT, options, NULL)) != -1) {
        if (cli_common_option(&c, opt, optarg, diagnose_help) ||
            cli_policy_option(&c, opt, optarg, &params))
            continue;
        switch (opt) {
        case OPT_SCORES:
            scores = optarg;
            break;
        case OPT_Q:
            qpath = optarg;
            break;
        case OPT_K:
            kpath = optarg;
            break;
        case OPT_SAFETENSORS:
            st = optarg;
            break;
        case OPT_TENSOR:
            tensor = optarg;
            break;
        case OPT_CAUSAL:
            causal = 1;
            break;
        case OPT_BETA:
            ats_values_clear(&betav);
            cli_values(&c, &betav, "beta", optarg, &dom_beta);
            break;
        case OPT_WINDOW:
            ats_values_clear(&windowv);
            cli_values(&c, &windowv, "window", optarg, &dom_window);
            break;
        case OPT_POLICY:
            policy = optarg;
            break;
        default:
            cli_bad_option(&c, opt, argv);
        }
    }
    if (!betav.count)
        cli_values(&c, &betav, "beta", "1", &dom_beta);
    if (!windowv.count)
        cli_values(&c, &windowv, "window", "2", &dom_window);
    int64_t policy_id = -1;
    int rank_all = policy && strcmp(policy, "all") == 0;
    if (policy && !rank_all) {
        policy_id = ats_policy_find(policy);
        if (policy_id < 0)
            cli_usage(&c, "--policy: unknown policy '%s' (known: %s, or all)", policy,
                      cli_policy_names());
    }
    if (optind < argc)
        cli_usage(&c, "unexpected argument '%s'", argv[optind]);

    struct input in;
    open_input(&c, &in, scores, qpath, kpath, st, tensor);
    if (causal && in.seq > in.n)
        cli_fail(&c, "--causal: sequences of %lld positions but only %lld columns (position p "
                     "sees columns 0..p)",
                 (long long)in.seq, (long long)in.n);

    // Combinations of beta and window, in option order.
    int64_t ncombo = betav.count * windowv.count;
    double *cb = malloc((size_t)ncombo * sizeof *cb), *cw = malloc((size_t)ncombo * sizeof *cw);
    if (!cb || !cw)
        cli_fail(&c, "out of memory");
    for (int64_t i = 0; i < betav.count; i++)
        for (int64_t j = 0; j < windowv.count; j++) {
            cb[i * windowv.count + j] = betav.v[i];
            cw[i * windowv.count + j] = windowv.v[j];
        }

    // A block of rows: about 32 MB of logits.
    int64_t block = 4194304 / in.n;
    block = block < 1 ? 1 : block > in.rows ? in.rows : block;
    double *s = malloc((size_t)(block * in.n) * sizeof *s);
    double *qbuf = in.q ? malloc((size_t)(block * in.d) * sizeof *qbuf) : NULL;
    double *ws = malloc((size_t)ats_row_block_workspace(in.n, c.threads) * sizeof *ws);
    double *mult = malloc((size_t)block * sizeof *mult);
    int64_t *lens = malloc((size_t)block * sizeof *lens);
    struct ats_row_stats *st_out = malloc((size_t)(block * ncombo) * sizeof *st_out);
    double *all_n = malloc((size_t)in.rows * sizeof *all_n);
    double *all_bh = malloc((size_t)in.rows * sizeof *all_bh);
    if (!s || (in.q && !qbuf) || !ws || !mult || !lens || !st_out || !all_n || !all_bh)
        cli_fail(&c, "out of memory for a block of %lld rows of %lld logits", (long long)block,
                 (long long)in.n);

    // The policy is checked at the first and last positions before any output; it must
    // multiply whole logits (a rotary-only factor depends on the model's rotary share).
    if (policy_id >= 0) {
        struct ats_policy_value v;
        int64_t last = in.seq - 1;
        if (ats_policy_eval(&v, policy_id, &params, 0, causal ? 1 : in.n) != ATS_STATUS_OK ||
            ats_policy_eval(&v, policy_id, &params, last, causal ? last + 1 : in.n) !=
                ATS_STATUS_OK)
            cli_usage(&c, "--policy %s: %s", policy, cli_last_error());
        if (v.scope != ATS_POLICY_SCOPE_ALL || isnan(v.multiplier))
            cli_usage(&c, "--policy %s scales %s head dimensions only, not whole logits: apply it "
                          "when computing the logits instead",
                      policy, isnan(v.multiplier) ? "rotary and pass-through" :
                              ats_policy_scope_name(v.scope));
    }
    cli_begin(&c, argc, argv);
    if (c.format == ATS_FORMAT_CSV)
        ats_writer_csv_columns(c.writer, columns, (int64_t)(sizeof columns / sizeof columns[0]));

    int progress = c.verbosity >= 2 && isatty(2);
    double last_progress = cli_now();
    for (int64_t r0 = 0; r0 < in.rows; r0 += block) {
        int64_t nr = in.rows - r0 < block ? in.rows - r0 : block;
        read_block(&c, &in, s, qbuf, r0, nr);
        for (int64_t i = 0; i < nr; i++) {
            int64_t row = r0 + i, pos = row % in.seq;
            lens[i] = causal ? pos + 1 : in.n;
            mult[i] = 1;
            if (policy_id >= 0) {
                struct ats_policy_value v;
                if (ats_policy_eval(&v, policy_id, &params, pos, causal ? pos + 1 : in.n) !=
                    ATS_STATUS_OK)
                    cli_fail(&c, "--policy at row %lld: %s", (long long)row, cli_last_error());
                mult[i] = v.multiplier;
            }
        }
        int64_t bad_row, bad_col;
        int rc = ats_row_block(st_out, s, nr, in.n, lens, mult, cb, cw, ncombo, c.threads, ws,
                               &bad_row, &bad_col);
        if (rc != ATS_STATUS_OK && bad_row >= 0)
            cli_fail(&c, "row %lld, column %lld: the logit is %s", (long long)(r0 + bad_row),
                     (long long)bad_col, isnan(s[bad_row * in.n + bad_col]) ? "NaN" : "infinite");
        if (rc != ATS_STATUS_OK)
            cli_fail(&c, "%s: %s", ats_strerror(rc), cli_last_error());
        for (int64_t i = 0; i < nr; i++) {
            all_n[r0 + i] = (double)lens[i];
            all_bh[r0 + i] = st_out[i * ncombo].beta_hat_k10;
            for (int64_t k = 0; k < ncombo; k++) {
                const struct ats_row_stats *o = &st_out[i * ncombo + k];
                struct ats_writer *w = c.writer;
                ats_writer_string(w, "record", "row");
                ats_writer_int(w, "row", r0 + i);
                ats_writer_int(w, "n", o->n);
                ats_writer_int(w, "causal", causal);
                if (policy_id >= 0)
                    ats_writer_string(w, "policy", policy);
                ats_writer_double(w, "beta", cb[k]);
                ats_writer_double(w, "window", cw[k]);
                ats_writer_double(w, "multiplier", mult[i]);
                ats_writer_double(w, "beta_applied", o->beta);
                ats_writer_double(w, "beta_hat", o->beta_hat);
                ats_writer_double(w, "beta_hat_k10", o->beta_hat_k10);
                ats_writer_double(w, "beta_half", o->beta_half);
                ats_writer_double(w, "entropy", o->entropy);
                ats_writer_double(w, "w1", o->w1);
                ats_writer_double(w, "ratio", o->ratio);
                ats_writer_string(w, "regime", o->regime < 0 ? "undetermined"
                                                             : ats_regime_name((enum ats_regime)o->regime));
                cli_end_record(&c);
            }
        }
        if (progress && cli_now() - last_progress > 0.25) {
            fprintf(stderr, "\rattnscale diagnose: %lld/%lld rows", (long long)(r0 + nr),
                    (long long)in.rows);
            last_progress = cli_now();
        }
    }
    if (progress)
        fprintf(stderr, "\rattnscale diagnose: %lld/%lld rows\n", (long long)in.rows,
                (long long)in.rows);

    // Summary: the laws of beta_hat_k10 over n (THEORY.md 4.4), then the policies ranked by
    // |slope| for each beta (THEORY.md 4.5).
    struct ats_law_fits fits;
    double *bn = malloc((size_t)in.rows * sizeof *bn);
    if (!bn)
        cli_fail(&c, "out of memory");
    int fit_rc = ats_fit_laws(&fits, bn, NULL, all_n, all_bh, in.rows);
    char fit_error[512];
    snprintf(fit_error, sizeof fit_error, "%s", fit_rc == ATS_STATUS_OK ? "" : cli_last_error());
    int64_t np = policy && fit_rc == ATS_STATUS_OK ? (rank_all ? ats_policy_count() : 1) : 0;
    struct rank_row *ranks = malloc((size_t)(np * betav.count + 1) * sizeof *ranks);
    if (!ranks)
        cli_fail(&c, "out of memory");
    int64_t nranks = 0;
    for (int64_t b = 0; b < betav.count; b++) {
        for (int64_t p = 0; p < np; p++) {
            int64_t id = rank_all ? p : policy_id;
            struct ats_policy_value v;
            int64_t big = (int64_t)llround(fits.n_largest);
            if (ats_policy_eval(&v, id, &params, big - 1, big) == ATS_STATUS_OK &&
                (v.scope != ATS_POLICY_SCOPE_ALL || isnan(v.multiplier))) {
                if (b == 0)
                    cli_msg(&c, 2, "note: %s not ranked: it scales %s dimensions only",
                            ats_policy_get(id)->name, ats_policy_scope_name(v.scope));
                continue;
            }
            struct rank_row *r = &ranks[nranks];
            if (ats_rank_policy(&r->r, id, &params, &fits, bn, fits.buckets, betav.v[b]) ==
                ATS_STATUS_OK) {
                r->beta = betav.v[b];
                nranks++;
            } else if (b == 0) {
                cli_msg(&c, 2, "note: %s not ranked: %s", ats_policy_get(id)->name,
                        cli_last_error());
            }
        }
    }
    qsort(ranks, (size_t)nranks, sizeof *ranks, cmp_rank);

    struct ats_writer *w = c.writer;
    ats_writer_string(w, "record", "summary");
    ats_writer_int(w, "rows", in.rows);
    if (fit_rc == ATS_STATUS_OK) {
        ats_writer_double(w, "n_min", fits.n_min);
        ats_writer_double(w, "n_max", fits.n_max);
        ats_writer_int(w, "buckets", fits.buckets);
        write_fit(w, "log", "log_slope", "log_intercept", &fits.log_law);
        write_fit(w, "polylog", "polylog_xi", "polylog_c", &fits.polylog);
        write_fit(w, "power", "power_e", "power_c", &fits.power);
        ats_writer_double(w, "power_alpha", 2 / fits.power.slope);
        ats_writer_string(w, "best", fits.best);
        if (nranks > 0)
            ats_writer_string(w, "best_policy", ats_policy_get(ranks[0].r.id)->name);
    } else {
        ats_writer_string(w, "fit_error", fit_error);
    }
    cli_end_record(&c);
    if (policy && fit_rc != ATS_STATUS_OK)
        cli_msg(&c, 2, "note: policies not ranked: %s", fit_error);
    // Ranks per beta, competition style (1, 2, 2, 4): equal rounded slopes share a rank, listed
    // in registry order.
    for (int64_t i = 0, rank = 0, pos = 0; i < nranks; i++) {
        int first = i == 0 || ranks[i].beta != ranks[i - 1].beta;
        pos = first ? 1 : pos + 1;
        if (first || slope_key(&ranks[i]) != slope_key(&ranks[i - 1]))
            rank = pos;
        ats_writer_string(w, "record", "policy");
        ats_writer_string(w, "policy", ats_policy_get(ranks[i].r.id)->name);
        ats_writer_string(w, "scope", "all");
        ats_writer_double(w, "beta", ranks[i].beta);
        ats_writer_double(w, "slope", ranks[i].r.slope);
        ats_writer_double(w, "ratio_at_max", ranks[i].r.ratio_at_max);
        ats_writer_int(w, "rank", rank);
        cli_end_record(&c);
    }
    free(ranks);

    free(bn);
    free(cb);
    free(cw);
    free(s);
    free(qbuf);
    free(ws);
    free(mult);
    free(lens);
    free(st_out);
    free(all_n);
    free(all_bh);
    free(in.kdata);
    ats_array_close(in.scores);
    ats_array_close(in.q);
    ats_array_close(in.k);
    ats_values_clear(&betav);
    ats_values_clear(&windowv);
    return cli_finish(&c);
}
