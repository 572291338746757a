/*
 * simplex_run.c: the `simplex` experiment: the exact finite-n closed forms of the simplex layer
 * (THEORY.md 2.2-2.6) over every combination of (n, d, rho, alpha, q, gamma | beta), one record
 * each, and the --plot figure of one metric.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "experiments/run.h"

static const char *const metrics[] = {"lambda", "rho_out", "a_self", "eta", NULL};

#define S struct ats_simplex_spec
static const struct ats_option options[] = {
    {"n", ATS_OPTION_VALUES, OPT_OFF(S, n), {2, (double)ATS_INT_EXACT_MAX, 0, 0, 1}, NULL, "N",
     "tokens, an integer >= 2 (required; 1e12 is accepted)\n", "Options"},
    {"rho", ATS_OPTION_VALUES, OPT_OFF(S, rho), {0, 1, 0, 1, 0}, NULL, "R",
     "pairwise cosine, 0 <= rho < 1 (required)\n", NULL},
    {"gamma", ATS_OPTION_VALUES, OPT_OFF(S, gamma), DOM_NONNEG, NULL, "G",
     "beta = G log n, G >= 0 (one of --gamma, --beta is required)\n", NULL},
    {"beta", ATS_OPTION_VALUES, OPT_OFF(S, beta), DOM_NONNEG, NULL, "B",
     "inverse temperature, B >= 0\n", NULL},
    {"alpha", ATS_OPTION_VALUES, OPT_OFF(S, alpha), DOM_NONNEG, NULL, "A",
     "residual weight, A >= 0 (default 0)\n", NULL},
    {"q", ATS_OPTION_VALUES, OPT_OFF(S, q), DOM_POS, NULL, "Q",
     "squared token norm, Q > 0 (default 1)\n", NULL},
    {"d", ATS_OPTION_VALUES, OPT_OFF(S, d), {2, (double)ATS_INT_EXACT_MAX, 0, 0, 1}, NULL, "D",
     "dimension, an integer >= 2 (default n); enters eta only\n", NULL},
    {"plot", ATS_OPTION_TEXT, OPT_OFF(S, plot), DOM_NONE, NULL, "FILE",
     "draw --metric (png, svg or pdf by extension): a heat map over (rho, gamma)\n"
     "with the dashed critical curve gamma = 1/(1-rho) when --rho and --gamma\n"
     "(or --beta) both have several values and the other options one; else a\n"
     "line against gamma (or beta), one line per combination of the others\n",
     "Figure"},
    {"metric", ATS_OPTION_CHOICE, OPT_OFF(S, metric), DOM_NONE, metrics, "M",
     "lambda (default), rho_out, a_self or eta\n", NULL},
    OPTIONS_SEED_THREADS(S),
};
#undef S

static void spec_default(void *spec) {
    command_spec_absent(&command_simplex, spec);
}

// The axes of the record grid, outermost first; gamma (or beta) varies fastest.
enum { AX_N, AX_D, AX_RHO, AX_ALPHA, AX_Q, AX_SCALE, NAXES };
static const char *const axis_names[NAXES] = {"n", "d", "rho", "alpha", "q", "gamma"};

struct state {
    struct ats_values ax[NAXES];
    const struct ats_values *axp[NAXES]; // &ax[i], for grid
    struct grid grid;                    // the axes as a record grid (grid_next, --plot)
    enum ats_scale kind;
    int64_t idx[NAXES];
    int started, finished, warned;
    int metric;
    const char *plot;
    double *z;    // the plotted metric per record, with plot
    int64_t records;
};

static void state_free(void *p) {
    struct state *s = p;
    if (!s)
        return;
    for (int a = 0; a < NAXES; a++)
        ats_values_clear(&s->ax[a]);
    ats_free(s->z);
    ats_free(s);
}

static double metric_value(const struct ats_simplex *s, int metric) {
    switch (metric) {
    case 1:
        return s->rho_out;
    case 2:
        return s->a_self;
    case 3:
        return s->eta;
    default:
        return s->lambda;
    }
}


static int finish_plot(struct ats_run *run, struct state *s) {
    char title[160];
    if (s->ax[AX_RHO].count > 1)
        snprintf(title, sizeof title, "exact simplex: %s, n = %.0f, alpha = %g",
                 metrics[s->metric], s->ax[AX_N].v[0], s->ax[AX_ALPHA].v[0]);
    else
        snprintf(title, sizeof title, "exact simplex: %s, rho = %g", metrics[s->metric],
                 s->ax[AX_RHO].v[0]);
    // lambda and a_self live in [0, 1]: a fixed colour range makes maps comparable.
    int unit = s->metric == 0 || s->metric == 2;
    return grid_plot_figure(&run->figure, &s->grid, title, metrics[s->metric], unit ? 0 : NAN,
                            unit ? 1 : NAN, s->z, NULL);
}

static int next(struct ats_run *run, void *state, struct ats_record *rec) {
    struct state *s = state;
    if (s->finished)
        return ATS_STATUS_OK;
    if (s->started && !grid_next(s->idx, s->grid.axes, NAXES)) {
        s->finished = 1;
        return s->plot ? finish_plot(run, s) : ATS_STATUS_OK;
    }
    s->started = 1;
    const int64_t *idx = s->idx;
    struct ats_simplex_params p = ats_simplex_params_default();
    p.n = (int64_t)s->ax[AX_N].v[idx[AX_N]];
    p.d = s->ax[AX_D].v[idx[AX_D]] > 0 ? (int64_t)s->ax[AX_D].v[idx[AX_D]] : p.n;
    p.rho = s->ax[AX_RHO].v[idx[AX_RHO]];
    p.alpha = s->ax[AX_ALPHA].v[idx[AX_ALPHA]];
    p.q = s->ax[AX_Q].v[idx[AX_Q]];
    p.scale = s->kind;
    if (s->kind == ATS_SCALE_GAMMA)
        p.gamma = s->ax[AX_SCALE].v[idx[AX_SCALE]];
    else
        p.beta = s->ax[AX_SCALE].v[idx[AX_SCALE]];
    if (p.d < p.n && !s->warned) {
        run_note(run,
                 "note: d = %lld < n = %lld: an exact simplex of n tokens needs d >= n; eta is "
                 "the formula's value",
                 (long long)p.d, (long long)p.n);
        s->warned = 1;
    }
    struct ats_simplex o;
    int rc = ats_simplex_eval(&o, &p);
    if (rc == ATS_STATUS_ERANGE || rc == ATS_STATUS_EDOM)
        ATS_ERROR(ATS_STATUS_EARG, "%s", ats_last_error());
    if (rc != ATS_STATUS_OK)
        ATS_ERROR(rc, "%s: %s", ats_strerror(rc), ats_last_error());
    ats_record_int(rec, "n", p.n);
    ats_record_int(rec, "d", p.d);
    ats_record_double(rec, "rho", p.rho);
    ats_record_double(rec, "alpha", p.alpha);
    ats_record_double(rec, "q", p.q);
    ats_record_double(rec, "gamma", o.gamma);
    ats_record_double(rec, "beta", o.beta);
    ats_record_double(rec, "gamma_c", o.gamma_c);
    ats_record_double(rec, "kappa", o.kappa);
    ats_record_string(rec, "regime", ats_regime_name(o.regime));
    ats_record_double(rec, "a_self", o.a_self);
    ats_record_double(rec, "rho_out", o.rho_out);
    ats_record_double(rec, "lambda", o.lambda);
    ats_record_double(rec, "eta", o.eta);
    ats_record_double(rec, "rho_out_limit", o.rho_out_limit);
    ats_record_double(rec, "eta_limit", o.eta_limit);
    if (s->z)
        s->z[s->records] = metric_value(&o, s->metric);
    s->records++;
    run->done = (double)s->records;
    return ATS_STATUS_OK;
}

static const struct run_ops ops = {next, NULL, state_free};

static int run_alloc(struct ats_run **out, const void *spec_) {
    const struct ats_simplex_spec *sp = spec_;
    int rc = command_check_spec(&command_simplex, sp);
    if (rc != ATS_STATUS_OK)
        return rc;
    if (!sp->n.count)
        ATS_ERROR(ATS_STATUS_EARG, "--n is required (an integer >= 2)");
    if (!sp->rho.count)
        ATS_ERROR(ATS_STATUS_EARG, "--rho is required (0 <= rho < 1)");
    if (sp->gamma.count && sp->beta.count)
        ATS_ERROR(ATS_STATUS_EARG, "--gamma and --beta are exclusive: give one of them");
    if (!sp->gamma.count && !sp->beta.count)
        ATS_ERROR(ATS_STATUS_EARG, "one of --gamma and --beta is required (>= 0)");
    if (sp->metric >= 0 && !sp->plot)
        ATS_ERROR(ATS_STATUS_EARG, "--metric chooses what --plot draws: give --plot FILE too");
    struct state *s = ats_malloc(sizeof *s);
    if (!s)
        ATS_ERROR(ATS_STATUS_ENOMEM, "no memory for a run");
    memset(s, 0, sizeof *s);
    s->kind = sp->gamma.count ? ATS_SCALE_GAMMA : ATS_SCALE_BETA;
    s->metric = sp->metric < 0 ? 0 : sp->metric;
    s->plot = sp->plot;
    const struct ats_values *src[NAXES] = {&sp->n, &sp->d, &sp->rho, &sp->alpha, &sp->q,
                                           s->kind == ATS_SCALE_GAMMA ? &sp->gamma : &sp->beta};
    // Absent options: alpha 0, q 1, and d 0 standing for d = n.
    static const double defaults[NAXES] = {0, 0, 0, 0, 1, 0};
    for (int a = 0; a < NAXES && rc == ATS_STATUS_OK; a++)
        rc = src[a]->count ? values_copy(&s->ax[a], src[a]) : values_one(&s->ax[a], defaults[a]);
    if (rc != ATS_STATUS_OK) {
        state_free(s);
        return rc;
    }
    // The option domains match the library's, so the only failure left is beta = gamma log n
    // overflowing: checked before any record.
    if ((rc = gamma_check(s->kind, &s->ax[AX_SCALE], &s->ax[AX_N])) != ATS_STATUS_OK) {
        state_free(s);
        return rc;
    }
    double total = 1;
    for (int a = 0; a < NAXES; a++) {
        total *= (double)s->ax[a].count;
        s->axp[a] = &s->ax[a];
    }
    s->grid = (struct grid){s->axp, axis_names, NAXES, AX_RHO, AX_N, s->kind};
    if (s->plot) {
        int64_t records;
        rc = grid_plot_check(&records, s->plot, &s->grid);
        if (rc == ATS_STATUS_OK && !(s->z = ats_malloc_array((size_t)records, sizeof *s->z)))
            rc = ATS_STATUS_ENOMEM;
        if (rc != ATS_STATUS_OK) {
            state_free(s);
            if (rc == ATS_STATUS_ENOMEM)
                ATS_ERROR(rc, "--plot: out of memory for %lld values", (long long)records);
            return rc;
        }
    }
    return run_new(out, &ops, s, total);
}

const struct ats_command command_simplex = {
    "simplex",
    "Usage: attnscale simplex --n N --rho R (--gamma G | --beta B) [options]\n",
    "Exact closed forms for pre-LN self-attention on n simplex tokens (|x_i|^2 = q, pairwise\n"
    "cosine rho) at inverse temperature beta = gamma log n with residual alpha (THEORY.md "
    "2.2-2.6;\n"
    "arXiv 2510.05554). Exact for every n up to 2^53; evaluated in log space.\n"
    "The closed forms are exact and cheap: --seed and --threads are accepted and have no "
    "effect.\n",
    "Record keys: n d rho alpha q gamma beta, then gamma_c (= 1/(1-rho)), kappa (= gamma "
    "(1-rho)),\n"
    "regime (subcritical | critical | supercritical; critical when |kappa-1| <= 1e-9),\n"
    "a_self (A_ii), rho_out (rho'), lambda (= (1-rho')/(1-rho)), eta (= ||J||_F^2/(n d)),\n"
    "rho_out_limit (n -> inf at the same gamma, alpha, q) and eta_limit (n, d -> inf).\n"
    "\n"
    "Example:\n"
    "  attnscale simplex --n 1024 --rho 0.5 --gamma 0:4:41\n",
    options,
    (int64_t)(sizeof options / sizeof options[0]),
    sizeof(struct ats_simplex_spec),
    spec_default,
    run_alloc,
    0,
};
