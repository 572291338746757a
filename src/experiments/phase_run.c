/*
 * phase_run.c: the `phase` experiment, paper 1's phase diagrams on general tokens (THEORY.md
 * 2.1, 2.4-2.8; arXiv 2510.05554): the layer metrics over a grid of (n, d, rho, alpha, trials,
 * probes, gamma | beta) for simplex, almost-simplex, sphere or file tokens, as means over
 * trials with standard errors and medians; one grid point (every gamma at once, one engine
 * run per trial) is computed when its first record is asked for.
 *
 * Streams: trial t draws its tokens from the Philox stream (seed, 2t) and its probes from
 * (seed, 2t + 1), whatever the other options, so a record can be recomputed alone (and the
 * points of a map share their random numbers, which keeps maps smooth).
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "experiments/run.h"
#include "experiments/stats.h"

enum metric { M_LAMBDA, M_ANGLE, M_ETA, M_RHO_OUT, M_A_SELF, M_ENTROPY, M_SUPPORT, NMETRICS };
static const char *const metric_names[NMETRICS] = {
    "lambda", "lambda_angle", "eta", "rho_out", "a_self", "entropy", "support"};

enum config { CFG_SIMPLEX, CFG_ALMOST, CFG_SPHERE, CFG_FILE };
static const char *const config_names[] = {"simplex", "almost-simplex", "sphere", "file", NULL};
static const char *const eta_names[] = {"hutchinson", "exact", NULL};
static const char *const precision_names[] = {"f64", "f32", NULL};

#define S struct ats_phase_spec
static const struct ats_option options[] = {
    {"config", ATS_OPTION_CHOICE, OPT_OFF(S, config), DOM_NONE, config_names, "C",
     "almost-simplex (default): x_i = sqrt(rho) z_0 + sqrt(1-rho) z_i,\n"
     "z ~ N(0, I/d); simplex: exact equiangular tokens |x_i| = 1 (closed\n"
     "forms, THEORY.md 2.2 and 2.6; Hutchinson eta builds them, d >= n+1);\n"
     "sphere: uniform on S^(d-1); file: --tokens\n",
     "Tokens"},
    {"tokens", ATS_OPTION_TEXT, OPT_OFF(S, tokens), DOM_NONE, NULL, "FILE",
     "an (n, d) float32 or float64 .npy (implies --config file; n and d come\n"
     "from the file; a zero-norm, NaN or Inf row is an error naming the row)\n",
     NULL},
    {"n", ATS_OPTION_VALUES, OPT_OFF(S, n), {2, 1e9, 0, 0, 1}, NULL, "N",
     "tokens, an integer >= 2 (required unless --tokens)\n", NULL},
    {"d", ATS_OPTION_VALUES, OPT_OFF(S, d), {1, 1e9, 0, 0, 1}, NULL, "D",
     "dimension, an integer >= 1 (default 512; simplex: n + 1)\n", NULL},
    {"rho", ATS_OPTION_VALUES, OPT_OFF(S, rho), {0, 1, 0, 1, 0}, NULL, "R",
     "generating cosine, 0 <= R < 1 (default 0.5; simplex and almost-simplex)\n", NULL},
    {"gamma", ATS_OPTION_VALUES, OPT_OFF(S, gamma), DOM_NONNEG, NULL, "G",
     "beta = G log n, G >= 0 (one of --gamma, --beta is required)\n", "Layer"},
    {"beta", ATS_OPTION_VALUES, OPT_OFF(S, beta), DOM_NONNEG, NULL, "B",
     "inverse temperature, B >= 0\n", NULL},
    {"alpha", ATS_OPTION_VALUES, OPT_OFF(S, alpha), DOM_NONNEG, NULL, "A",
     "residual weight, A >= 0 (default 0, the paper's experiments)\n", NULL},
    {"metric", ATS_OPTION_TEXT, OPT_OFF(S, metric), DOM_NONE, NULL, "M",
     "lambda (default), lambda_angle, eta, rho_out, a_self, entropy, support,\n"
     "or a comma list (one record per metric)\n",
     NULL},
    {"trials", ATS_OPTION_VALUES, OPT_OFF(S, trials), {1, 1e9, 0, 0, 1}, NULL, "T",
     "token draws (default 1; with fixed tokens, probe sets) per point\n", NULL},
    {"probes", ATS_OPTION_VALUES, OPT_OFF(S, probes), {1, 1e9, 0, 0, 1}, NULL, "P",
     "Rademacher probes per trial for eta (default 16)\n", NULL},
    {"eta-method", ATS_OPTION_CHOICE, OPT_OFF(S, eta_method), DOM_NONE, eta_names, "M",
     "hutchinson (default; analytic JVP, THEORY.md 2.7) or exact (the\n"
     "Jacobian blocks of THEORY.md 2.5, cost n^2 d + n^3 per gamma)\n",
     NULL},
    {"precision", ATS_OPTION_CHOICE, OPT_OFF(S, precision), DOM_NONE, precision_names, "P",
     "f64 (default) or f32 (float GEMMs; sums stay double)\n", NULL},
    {"block", ATS_OPTION_NUMBER, OPT_OFF(S, block), {1, 1e9, 0, 0, 1}, NULL, "B",
     "rows per block, an integer >= 1 (default: from n, d and probes)\n", NULL},
    {"plot", ATS_OPTION_TEXT, OPT_OFF(S, plot), DOM_NONE, NULL, "FILE",
     "png, svg or pdf by extension: the metric's heat map over (rho, gamma)\n"
     "with the dashed curve gamma = 1/(1-rho) when --rho and --gamma have\n"
     "several values and the other options one (one --metric); else lines\n"
     "against gamma with error bars\n",
     "Figure"},
    OPTIONS_SEED_THREADS(S),
};
#undef S

static void spec_default(void *spec) {
    command_spec_absent(&command_phase, spec);
}

// The axes of the record grid, outermost first; gamma (or beta) varies fastest.
enum { AX_N, AX_D, AX_RHO, AX_ALPHA, AX_TRIALS, AX_PROBES, AX_SCALE, NAXES };
static const char *const axis_names[NAXES] = {"n",      "d",      "rho",  "alpha",
                                              "trials", "probes", "gamma"};

struct state {
    struct ats_values ax[NAXES];
    const struct ats_values *axp[NAXES]; // &ax[i], for grid
    struct grid grid;                    // the axes as a record grid (grid_next, --plot)
    enum ats_scale kind;
    enum config config;
    double *x;              // file tokens (n, d), or NULL
    char *tokens;           // the file's name, for messages
    int metric[NMETRICS];   // the metrics asked for, in order
    int nmetric;
    int want_eta, closed, has_rho, fixed_tokens, pairs;
    enum ats_eta_method eta;
    enum ats_precision precision;
    int64_t block;
    uint64_t seed;
    int threads;
    int64_t idx[NAXES];
    int started, finished;
    // The current point: per trial, per beta (trial-major), and the records still to hand out.
    struct ats_layer_metrics *res;
    double *beta, *vals;
    int64_t pn, pd, nt, np;
    double prho, palpha;
    int64_t pending, next_rec; // records of the point: nbeta x nmetric
    char *plot;
    double *zv, *ze;           // the plotted mean and stderr per record
    int64_t records;
};

static void state_free(void *p) {
    struct state *s = p;
    if (!s)
        return;
    for (int a = 0; a < NAXES; a++)
        ats_values_clear(&s->ax[a]);
    ats_free(s->x);
    ats_free(s->tokens);
    ats_free(s->res);
    ats_free(s->beta);
    ats_free(s->vals);
    ats_free(s->plot);
    ats_free(s->zv);
    ats_free(s->ze);
    ats_free(s);
}

static double metric_of(const struct ats_layer_metrics *o, int m) {
    switch (m) {
    case M_LAMBDA:
        return o->lambda;
    case M_ANGLE:
        return o->lambda_angle;
    case M_ETA:
        return o->eta;
    case M_RHO_OUT:
        return o->rho_out;
    case M_A_SELF:
        return o->a_self;
    case M_ENTROPY:
        return o->entropy;
    default:
        return o->support;
    }
}

// The closed forms of the exact simplex (THEORY.md 2.2, 2.6) as layer metrics.
static int simplex_metrics(struct ats_layer_metrics *o, int64_t n, int64_t d, double rho,
                           double alpha, double beta) {
    struct ats_simplex_params sp = ats_simplex_params_default();
    sp.n = n;
    sp.d = d;
    sp.rho = rho;
    sp.alpha = alpha;
    sp.beta = beta;
    struct ats_simplex s;
    if (ats_simplex_eval(&s, &sp) != ATS_STATUS_OK)
        ATS_ERROR(ATS_STATUS_EARG, "%s", ats_last_error());
    double a = s.a_self, b = s.b_other, nm1 = (double)(n - 1);
    o->a_self = a;
    o->entropy = (a > 0 ? -a * log(a) : 0) + (b > 0 ? -nm1 * b * log(b) : 0);
    o->support = 1 / (a * a + nm1 * b * b);
    o->rho_out = s.rho_out;
    o->lambda = s.lambda;
    o->lambda_angle = acos(s.rho_out) / acos(rho);
    o->eta = s.eta;
    o->eta_var = 0;
    return ATS_STATUS_OK;
}

// The dimension of a point: --d's value, or where it was not given (0) the default, n + 1 for
// the simplex (its explicit construction) and 512 otherwise.
static int64_t dimension(enum config config, double dv, int64_t n) {
    return dv > 0 ? (int64_t)dv : config == CFG_SIMPLEX ? n + 1 : 512;
}

// Every trial of the grid point at s->idx, for every beta.
static int compute_point(struct ats_run *run, struct state *s) {
    const int64_t *idx = s->idx;
    const int64_t nb = s->ax[AX_SCALE].count;
    s->pn = (int64_t)s->ax[AX_N].v[idx[AX_N]];
    s->pd = dimension(s->config, s->ax[AX_D].v[idx[AX_D]], s->pn);
    s->prho = s->ax[AX_RHO].v[idx[AX_RHO]];
    s->palpha = s->ax[AX_ALPHA].v[idx[AX_ALPHA]];
    s->nt = (int64_t)s->ax[AX_TRIALS].v[idx[AX_TRIALS]];
    s->np = (int64_t)s->ax[AX_PROBES].v[idx[AX_PROBES]];
    for (int64_t k = 0; k < nb; k++)
        s->beta[k] = s->kind == ATS_SCALE_GAMMA ? s->ax[AX_SCALE].v[k] * log((double)s->pn)
                                                : s->ax[AX_SCALE].v[k];
    ats_free(s->res);
    ats_free(s->vals);
    s->res = ats_malloc_array((size_t)(s->nt * nb), sizeof *s->res);
    s->vals = ats_malloc_array((size_t)s->nt, sizeof *s->vals);
    if (!s->res || !s->vals)
        ATS_ERROR(ATS_STATUS_ENOMEM, "out of memory for %lld trials", (long long)s->nt);
    double *x = NULL;
    if (!s->closed && !s->x) {
        if ((double)s->pn * (double)s->pd > 1e12 / sizeof *x)
            ATS_ERROR(ATS_STATUS_ENOMEM, "n = %lld, d = %lld: %.3g GB of tokens is too much memory",
                      (long long)s->pn, (long long)s->pd, (double)s->pn * (double)s->pd * 8 / 1e9);
        x = ats_malloc_array((size_t)(s->pn * s->pd), sizeof *x);
        if (!x)
            ATS_ERROR(ATS_STATUS_ENOMEM, "out of memory for n = %lld, d = %lld tokens (%.3g GB)",
                      (long long)s->pn, (long long)s->pd, (double)s->pn * (double)s->pd * 8 / 1e9);
    }
    int rc = ATS_STATUS_OK;
    for (int64_t t = 0; t < s->nt && rc == ATS_STATUS_OK; t++) {
        struct ats_layer_metrics *o = s->res + t * nb;
        if ((rc = run_check_cancel(run)) != ATS_STATUS_OK)
            break;
        if (s->closed) {
            for (int64_t k = 0; k < nb && rc == ATS_STATUS_OK; k++)
                rc = simplex_metrics(&o[k], s->pn, s->pd, s->prho, s->palpha, s->beta[k]);
            continue;
        }
        if (x) {
            static const enum ats_tokens kinds[] = {ATS_TOKENS_SIMPLEX, ATS_TOKENS_ALMOST_SIMPLEX,
                                                    ATS_TOKENS_SPHERE};
            if (ats_tokens_draw(x, kinds[s->config], s->pn, s->pd, s->prho, s->seed,
                                2 * (uint64_t)t) != ATS_STATUS_OK) {
                ats_error(__FILE__, __LINE__, ATS_STATUS_EARG, "%s", ats_last_error());
                rc = ATS_STATUS_EARG;
                break;
            }
        }
        struct ats_layer_params p = ats_layer_params_default();
        p.n = s->pn;
        p.d = s->pd;
        p.alpha = s->palpha;
        p.beta = s->beta;
        p.nbeta = nb;
        p.pairs = s->pairs;
        p.eta = s->want_eta ? s->eta : ATS_ETA_NONE;
        p.probes = s->np;
        p.seed = s->seed;
        p.stream = 2 * (uint64_t)t + 1;
        p.precision = s->precision;
        p.threads = s->threads;
        p.block = s->block;
        rc = ats_layer_metrics(o, x ? x : s->x, &p);
        if (rc == ATS_STATUS_EDOM && s->config == CFG_FILE)
            ats_error(__FILE__, __LINE__, rc, "--tokens %s: %s", s->tokens, ats_last_error());
        else if (rc != ATS_STATUS_OK)
            ats_error(__FILE__, __LINE__, rc, "%s: %s", ats_strerror(rc), ats_last_error());
        run->done = run->done + 1.0 / (double)s->nt;
    }
    ats_free(x);
    s->pending = nb * s->nmetric;
    s->next_rec = 0;
    return rc;
}

// Record r of the current point: beta index r / nmetric, metric r % nmetric.
static void point_record(struct state *s, int64_t r, struct ats_record *rec) {
    const int64_t nb = s->ax[AX_SCALE].count, nt = s->nt, np = s->np;
    int64_t k = r / s->nmetric;
    int m = s->metric[r % s->nmetric];
    double mean, se;
    for (int64_t t = 0; t < nt; t++)
        s->vals[t] = metric_of(&s->res[t * nb + k], m);
    ats_stat_mean_se(&mean, &se, s->vals, nt, sizeof *s->vals);
    int hutch = m == M_ETA && !s->closed && s->eta == ATS_ETA_HUTCHINSON;
    if (s->closed || (s->fixed_tokens && !hutch))
        se = 0; // exact for the given tokens
    else if (hutch && (s->fixed_tokens || nt == 1))
        // Pool the nt np probe values: within-trial variance plus the spread of the trial
        // means, over nt np - 1 degrees of freedom.
        se = ats_stat_pooled_se(s->vals, sizeof *s->vals, &s->res[k].eta_var,
                                (size_t)nb * sizeof *s->res, nt, np, mean);
    double med = ats_stat_median(s->vals, nt);
    ats_record_string(rec, "config", config_names[s->config]);
    ats_record_int(rec, "n", s->pn);
    ats_record_int(rec, "d", s->pd);
    ats_record_double(rec, "rho", s->has_rho ? s->prho : NAN);
    ats_record_double(rec, "alpha", s->palpha);
    ats_record_double(rec, "gamma", s->kind == ATS_SCALE_GAMMA ? s->ax[AX_SCALE].v[k]
                                                               : s->beta[k] / log((double)s->pn));
    ats_record_double(rec, "beta", s->beta[k]);
    ats_record_int(rec, "trials", nt);
    ats_record_double(rec, "probes",
                      s->want_eta && s->eta == ATS_ETA_HUTCHINSON ? (double)np : NAN);
    ats_record_string(rec, "eta_method", !s->want_eta               ? "none"
                                         : s->eta == ATS_ETA_EXACT ? "exact"
                                                                   : "hutchinson");
    ats_record_string(rec, "precision", s->precision == ATS_PRECISION_F32 ? "f32" : "f64");
    ats_record_string(rec, "metric", metric_names[m]);
    ats_record_double(rec, "value", mean);
    ats_record_double(rec, "stderr", se);
    ats_record_double(rec, "median", med);
    if (s->zv) {
        s->zv[s->records] = mean;
        s->ze[s->records] = se;
    }
    s->records++;
}

static int finish_plot(struct ats_run *run, struct state *s) {
    char title[200];
    const char *m = metric_names[s->metric[0]];
    if (s->ax[AX_RHO].count > 1)
        snprintf(title, sizeof title, "%s: %s, n = %.0f, d = %lld, alpha = %g",
                 config_names[s->config], m, s->ax[AX_N].v[0],
                 (long long)dimension(s->config, s->ax[AX_D].v[0], (int64_t)s->ax[AX_N].v[0]),
                 s->ax[AX_ALPHA].v[0]);
    else
        snprintf(title, sizeof title, "%s: %s", config_names[s->config], m);
    // lambda, lambda_angle and a_self live in [0, 1]: a fixed range makes maps comparable.
    int unit = s->metric[0] == M_LAMBDA || s->metric[0] == M_ANGLE || s->metric[0] == M_A_SELF;
    return grid_plot_figure(&run->figure, &s->grid, title, m, unit ? 0 : NAN, unit ? 1 : NAN, s->zv,
                            s->ze);
}

static int next(struct ats_run *run, void *state, struct ats_record *rec) {
    struct state *s = state;
    if (s->finished)
        return ATS_STATUS_OK;
    if (s->next_rec == s->pending) {
        s->idx[AX_SCALE] = s->ax[AX_SCALE].count - 1; // one engine run covers every gamma
        if (s->started && !grid_next(s->idx, s->grid.axes, NAXES)) {
            s->finished = 1;
            return s->plot ? finish_plot(run, s) : ATS_STATUS_OK;
        }
        s->idx[AX_SCALE] = 0;
        s->started = 1;
        double done = run->done;
        int rc = compute_point(run, s);
        if (rc != ATS_STATUS_OK)
            return rc;
        run->done = floor(done + 0.5) + 1;
    }
    point_record(s, s->next_rec++, rec);
    return ATS_STATUS_OK;
}

static const struct run_ops ops = {next, NULL, state_free};

// --metric's comma list into s->metric.
static int parse_metrics(struct state *s, const char *text) {
    s->nmetric = 0;
    const char *p = text;
    for (;;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len > 0) {
            int found = -1;
            for (int i = 0; i < NMETRICS; i++)
                if (strlen(metric_names[i]) == len && strncmp(p, metric_names[i], len) == 0)
                    found = i;
            if (found < 0)
                ATS_ERROR(ATS_STATUS_EARG,
                          "--metric: '%.*s' is not lambda, lambda_angle, eta, rho_out, a_self, "
                          "entropy or support",
                          (int)(len > 64 ? 64 : len), p);
            for (int i = 0; i < s->nmetric; i++)
                if (s->metric[i] == found)
                    ATS_ERROR(ATS_STATUS_EARG, "--metric: '%s' is listed twice",
                              metric_names[found]);
            s->metric[s->nmetric++] = found;
        }
        if (!e)
            break;
        p = e + 1;
    }
    if (!s->nmetric)
        ATS_ERROR(ATS_STATUS_EARG, "--metric: empty list");
    return ATS_STATUS_OK;
}

// The tokens of the file or the in-memory array into s->x; *n, *d their shape.
static int load_tokens(struct state *s, const struct ats_phase_spec *sp, int64_t *n, int64_t *d) {
    if (sp->tokens) {
        int rc = ats_tokens_load(&s->x, n, d, sp->tokens);
        if (rc == ATS_STATUS_EIO || rc == ATS_STATUS_ENOMEM)
            return rc; // the reason names the file
        if (rc != ATS_STATUS_OK)
            ATS_ERROR(rc, "--tokens %s: %s", sp->tokens, ats_last_error());
        return ATS_STATUS_OK;
    }
    const struct ats_array *a = sp->tokens_array;
    if (ats_array_ndim(a) != 2)
        ATS_ERROR(ATS_STATUS_EINVAL, "tokens: an (n, d) array is needed, not %d axes",
                  ats_array_ndim(a));
    if (ats_array_dtype(a) != ATS_DTYPE_F32 && ats_array_dtype(a) != ATS_DTYPE_F64)
        ATS_ERROR(ATS_STATUS_EUNSUP, "tokens: %s is not supported (float32 or float64)",
                  ats_dtype_name(ats_array_dtype(a)));
    *n = ats_array_rows(a);
    *d = ats_array_cols(a);
    if (*n < 1 || *d < 1)
        ATS_ERROR(ATS_STATUS_EINVAL, "tokens: an empty array (%lld x %lld)", (long long)*n,
                  (long long)*d);
    s->x = ats_malloc_array((size_t)(*n * *d), sizeof *s->x);
    if (!s->x)
        ATS_ERROR(ATS_STATUS_ENOMEM, "out of memory for %lld x %lld tokens", (long long)*n,
                  (long long)*d);
    int rc = ats_array_read_rows(s->x, a, 0, *n);
    if (rc == ATS_STATUS_OK && (rc = ats_tokens_check(s->x, *n, *d)) != ATS_STATUS_OK)
        ATS_ERROR(rc, "tokens: %s", ats_last_error());
    return rc;
}

static int setup(struct state *s, const struct ats_phase_spec *sp) {
    int rc = command_check_spec(&command_phase, sp);
    if (rc != ATS_STATUS_OK)
        return rc;
    int have_tokens = sp->tokens || sp->tokens_array;
    if (sp->tokens && sp->tokens_array)
        ATS_ERROR(ATS_STATUS_EARG, "give the tokens as a file or as an array, not both");
    s->config = sp->config < 0 ? CFG_ALMOST : (enum config)sp->config;
    if (have_tokens && sp->config >= 0 && s->config != CFG_FILE)
        ATS_ERROR(ATS_STATUS_EARG, "--tokens reads file tokens: it does not go with --config %s",
                  config_names[s->config]);
    if (have_tokens)
        s->config = CFG_FILE;
    if (s->config == CFG_FILE && !have_tokens)
        ATS_ERROR(ATS_STATUS_EARG, "--config file needs --tokens FILE.npy");
    if (s->config == CFG_FILE && (sp->n.count || sp->d.count))
        ATS_ERROR(ATS_STATUS_EARG, "--n and --d come from the tokens file: do not give them");
    if (s->config != CFG_FILE && !sp->n.count)
        ATS_ERROR(ATS_STATUS_EARG, "--n is required (an integer >= 2)");
    if ((s->config == CFG_FILE || s->config == CFG_SPHERE) && sp->rho.count)
        ATS_ERROR(ATS_STATUS_EARG, "--rho plays no part with --config %s", config_names[s->config]);
    if (sp->gamma.count && sp->beta.count)
        ATS_ERROR(ATS_STATUS_EARG, "--gamma and --beta are exclusive: give one of them");
    if (!sp->gamma.count && !sp->beta.count)
        ATS_ERROR(ATS_STATUS_EARG, "one of --gamma and --beta is required (>= 0)");
    s->kind = sp->gamma.count ? ATS_SCALE_GAMMA : ATS_SCALE_BETA;
    if ((rc = parse_metrics(s, sp->metric ? sp->metric : "lambda")) != ATS_STATUS_OK)
        return rc;
    s->eta = sp->eta_method == 1 ? ATS_ETA_EXACT : ATS_ETA_HUTCHINSON;
    s->precision = sp->precision == 1 ? ATS_PRECISION_F32 : ATS_PRECISION_F64;
    for (int i = 0; i < s->nmetric; i++)
        s->want_eta |= s->metric[i] == M_ETA;
    if (!s->want_eta && (sp->eta_method >= 0 || sp->probes.count))
        ATS_ERROR(ATS_STATUS_EARG, "--eta-method and --probes apply to --metric eta only");
    if (s->eta == ATS_ETA_EXACT && sp->probes.count)
        ATS_ERROR(ATS_STATUS_EARG, "--probes applies to --eta-method hutchinson only");
    if (sp->plot && s->nmetric != 1)
        ATS_ERROR(ATS_STATUS_EARG, "--plot draws one --metric: give one");
    s->block = isnan(sp->block) ? 0 : (int64_t)sp->block;
    s->seed = isnan(sp->seed) ? 1 : (uint64_t)sp->seed;
    s->threads = spec_threads(sp->threads);
    if (sp->plot && !(s->plot = ats_malloc(strlen(sp->plot) + 1)))
        ATS_ERROR(ATS_STATUS_ENOMEM, "out of memory");
    if (sp->plot)
        strcpy(s->plot, sp->plot);

    // The axes; absent ones take their defaults: d 0 (n + 1 for the simplex, else 512), rho a
    // placeholder written as null for sphere and file, alpha 0, trials 1, probes 16.
    const struct ats_values *src[NAXES] = {&sp->n,      &sp->d,      &sp->rho,
                                           &sp->alpha,  &sp->trials, &sp->probes,
                                           s->kind == ATS_SCALE_GAMMA ? &sp->gamma : &sp->beta};
    static const double defaults[NAXES] = {0, 0, 0.5, 0, 1, 16, 0};
    if (have_tokens) {
        int64_t fn, fd;
        if ((rc = load_tokens(s, sp, &fn, &fd)) != ATS_STATUS_OK)
            return rc;
        if (sp->tokens)
            s->tokens = ats_malloc(strlen(sp->tokens) + 1);
        if (sp->tokens && !s->tokens)
            ATS_ERROR(ATS_STATUS_ENOMEM, "out of memory");
        if (sp->tokens)
            strcpy(s->tokens, sp->tokens);
        if (fn < 2)
            ATS_ERROR(ATS_STATUS_EDOM, "--tokens %s: %lld token; the layer metrics need n >= 2",
                      sp->tokens ? sp->tokens : "(array)", (long long)fn);
        if ((rc = values_one(&s->ax[AX_N], (double)fn)) != ATS_STATUS_OK ||
            (rc = values_one(&s->ax[AX_D], (double)fd)) != ATS_STATUS_OK)
            return rc;
    }
    for (int a = 0; a < NAXES && rc == ATS_STATUS_OK; a++)
        if (!s->ax[a].count)
            rc = src[a]->count ? values_copy(&s->ax[a], src[a]) : values_one(&s->ax[a], defaults[a]);
    if (rc != ATS_STATUS_OK)
        return rc;
    if ((rc = gamma_check(s->kind, &s->ax[AX_SCALE], &s->ax[AX_N])) != ATS_STATUS_OK)
        return rc;
    s->closed = s->config == CFG_SIMPLEX && !(s->want_eta && s->eta == ATS_ETA_HUTCHINSON);
    s->has_rho = s->config == CFG_SIMPLEX || s->config == CFG_ALMOST;
    s->fixed_tokens = s->config == CFG_FILE || s->config == CFG_SIMPLEX;
    for (int64_t i = 0; s->config == CFG_SIMPLEX && i < s->ax[AX_N].count; i++)
        for (int64_t j = 0; j < s->ax[AX_D].count; j++) {
            double nv = s->ax[AX_N].v[i], dv = s->ax[AX_D].v[j];
            if (dv > 0 && dv < nv)
                ATS_ERROR(ATS_STATUS_EARG,
                          "--config simplex: n = %g equiangular tokens need d >= n (got d = %g)",
                          nv, dv);
            if (dv > 0 && dv < nv + 1 && !s->closed)
                ATS_ERROR(ATS_STATUS_EARG,
                          "Hutchinson eta on the simplex builds the tokens: it needs d >= n + 1 "
                          "(n = %g, d = %g; --eta-method exact needs no tokens)",
                          nv, dv);
        }
    // The tokens, the layer's output and its tangent at the largest n and d: a floor of what
    // a trial holds, checked before anything is allocated.
    if (!s->closed) {
        double nmax = 0, dmax = 0;
        for (int64_t i = 0; i < s->ax[AX_N].count; i++)
            nmax = fmax(nmax, s->ax[AX_N].v[i]);
        for (int64_t i = 0; i < s->ax[AX_D].count; i++)
            dmax = fmax(dmax, (double)dimension(s->config, s->ax[AX_D].v[i], (int64_t)nmax));
        char what[96];
        snprintf(what, sizeof what, "phase at n = %.0f, d = %.0f", nmax, dmax);
        if ((rc = memory_bound(3 * nmax * dmax * 8, what, "lower --n or --d")) != ATS_STATUS_OK)
            return rc;
    }
    for (int a = 0; a < NAXES; a++)
        s->axp[a] = &s->ax[a];
    s->grid = (struct grid){s->axp, axis_names, NAXES, AX_RHO, AX_N, s->kind};
    if (s->plot) {
        int64_t total;
        if ((rc = grid_plot_check(&total, s->plot, &s->grid)) != ATS_STATUS_OK)
            return rc;
        s->zv = ats_malloc_array((size_t)total, sizeof *s->zv);
        s->ze = ats_malloc_array((size_t)total, sizeof *s->ze);
        if (!s->zv || !s->ze)
            ATS_ERROR(ATS_STATUS_ENOMEM, "--plot: out of memory for %lld values", (long long)total);
    }
    for (int i = 0; i < s->nmetric; i++)
        if (s->metric[i] == M_ANGLE)
            s->pairs = 2;
        else if ((s->metric[i] == M_LAMBDA || s->metric[i] == M_RHO_OUT) && !s->pairs)
            s->pairs = 1;
    s->beta = ats_malloc_array((size_t)s->ax[AX_SCALE].count, sizeof *s->beta);
    if (!s->beta)
        ATS_ERROR(ATS_STATUS_ENOMEM, "out of memory");
    return ATS_STATUS_OK;
}

static int run_alloc(struct ats_run **out, const void *spec) {
    struct state *s = ats_malloc(sizeof *s);
    if (!s)
        ATS_ERROR(ATS_STATUS_ENOMEM, "no memory for a run");
    memset(s, 0, sizeof *s);
    int rc = setup(s, spec);
    if (rc != ATS_STATUS_OK) {
        state_free(s);
        return rc;
    }
    double points = 1;
    for (int a = 0; a < AX_SCALE; a++)
        points *= (double)s->ax[a].count;
    // The layer's products: about 3 n^2 d flops per beta forward and 4 n^2 d more per probe
    // for Hutchinson's eta, at 3e10 flop/s on 2 cores (an order of magnitude).
    double flops = 0;
    for (int64_t i = 0; !s->closed && i < s->ax[AX_N].count; i++)
        for (int64_t j = 0; j < s->ax[AX_D].count; j++)
            for (int64_t t = 0; t < s->ax[AX_TRIALS].count; t++)
                for (int64_t p = 0; p < s->ax[AX_PROBES].count; p++) {
                    double n = s->ax[AX_N].v[i];
                    double d = (double)dimension(s->config, s->ax[AX_D].v[j], (int64_t)n);
                    double per = 3 + (s->want_eta && s->eta == ATS_ETA_HUTCHINSON
                                          ? 4 * s->ax[AX_PROBES].v[p]
                                          : 0);
                    flops += per * n * n * d * s->ax[AX_TRIALS].v[t] *
                             (double)s->ax[AX_SCALE].count;
                }
    flops *= (double)s->ax[AX_RHO].count * (double)s->ax[AX_ALPHA].count;
    if ((rc = run_new(out, &ops, s, points)) != ATS_STATUS_OK)
        return rc;
    char what[96];
    snprintf(what, sizeof what, "about %.3g flops in the layer's products", flops);
    run_note_cost(*out, flops / 3e10, what, "lower --n, --d, --trials or --probes");
    return ATS_STATUS_OK;
}

const struct ats_command command_phase = {
    "phase",
    "Usage: attnscale phase --n N (--gamma G | --beta B) [options]\n"
    "       attnscale phase --tokens FILE.npy (--gamma G | --beta B) [options]\n",
    "Pre-LN self-attention on n tokens in R^d at inverse temperature beta = gamma log n with\n"
    "residual alpha (THEORY.md 2.1-2.8; arXiv 2510.05554): the forward metrics and the\n"
    "backward metric eta = ||J||_F^2/(n d), averaged over trials. The layer runs in blocks of\n"
    "rows through BLAS (memory O(block n + n d), never n x n); the Gram rows are computed once\n"
    "per draw and reused across the gamma values.\n",
    "Metrics (THEORY.md 2.8): lambda = mean over pairs of (1-<y_i',y_j'>)/(1-<y_i,y_j>),\n"
    "lambda_angle = mean of arccos<y_i',y_j'>/arccos<y_i,y_j>, rho_out = mean <y_i',y_j'>,\n"
    "a_self = mean A_ii, entropy = mean row entropy (nats), support = mean 1/sum_j A_ij^2.\n"
    "\n"
    "Record keys: config, n, d, rho (null for sphere and file), alpha, gamma, beta, trials,\n"
    "probes (null without Hutchinson eta), eta_method (none without eta), precision, metric,\n"
    "value (mean over trials), stderr (standard error over trials and probes; 0 where the\n"
    "value is exact; null when it cannot be estimated, i.e. one random draw of a probe-free\n"
    "metric) and median (over trials; eta is heavy-tailed at small d, where |x|^2 can be\n"
    "tiny). With one trial and Hutchinson eta, stderr is the probes' standard error for that\n"
    "draw.\n"
    "\n"
    "Example:\n"
    "  attnscale phase --n 256 --d 512 --rho 0.02:0.98:25 --gamma 0:10:51 --plot lambda.png\n",
    options,
    (int64_t)(sizeof options / sizeof options[0]),
    sizeof(struct ats_phase_spec),
    spec_default,
    run_alloc,
    0,
};
