/*
 * query_run.c: the `query` experiment: one query against n keys uniform on S^(d-1) (arXiv
 * 2605.08505; THEORY.md section 3) over every combination of (d, n, beta | tau', trials), the
 * last fastest: one record per combination with the means over trials and their standard
 * errors (THEORY.md 1), the variance of the tangential coordinate with its fourth-moment
 * standard error, and with theory the predictions beside them (3.3-3.5).
 *
 * Trials run in batches between which progress (run->done / run->total, in trials) moves and
 * cancellation is checked; trial t draws from streams that depend on t only, so the batches do
 * not change the results. Memory: the trials of one combination.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "experiments/run.h"
#include "experiments/stats.h"

static const char *const samplers[] = {"exact", "ppp", NULL};

#define S struct ats_query_spec
// One option per entry, in the order of the help (kept out of clang-format's way).
// clang-format off
static const struct ats_option options[] = {
    {"d", ATS_OPTION_VALUES, OPT_OFF(S, d), {2, 1e6, 0, 0, 1}, NULL, "D",
     "dimension, an integer >= 2\n", "Options"},
    {"n", ATS_OPTION_VALUES, OPT_OFF(S, n), {1, (double)ATS_INT_EXACT_MAX, 0, 0, 1}, NULL, "N",
     "keys, an integer >= 1 (the ppp sampler needs it only with --beta)\n", NULL},
    {"beta", ATS_OPTION_VALUES, OPT_OFF(S, beta), DOM_NONNEG, NULL, "B",
     "inverse temperature >= 0\n", NULL},
    {"tau-prime", ATS_OPTION_VALUES, OPT_OFF(S, tau_prime), DOM_POS, NULL, "T",
     "beta/beta* > 0 (instead of --beta)\n", NULL},
    {"trials", ATS_OPTION_VALUES, OPT_OFF(S, trials), {1, 1e9, 0, 0, 1}, NULL, "T",
     "independent trials (default 100)\n", NULL},
    {"sampler", ATS_OPTION_CHOICE, OPT_OFF(S, sampler), DOM_NONE, samplers, "S",
     "exact (default) or ppp: the n -> infinity critical limit (Poisson point\n"
     "process), at a cost independent of n\n",
     NULL},
    {"theory", ATS_OPTION_FLAG, OPT_OFF(S, theory), DOM_NONE, NULL, NULL,
     "add the predictions: *_theory keys (see below)\n", NULL},
    OPTIONS_SEED_THREADS(S),
};
// clang-format on
#undef S

static void spec_default(void *spec) {
    command_spec_absent(&command_query, spec);
}

// The axes of the record grid, outermost first; trials varies fastest.
enum { AX_D, AX_N, AX_SCALE, AX_TRIALS, NAXES };

struct state {
    struct ats_values ax[NAXES]; // AX_SCALE: beta, or tau' when by_tau
    int by_tau, have_n, theory;
    enum ats_sampler sampler;
    uint64_t seed;
    int threads;
    int64_t idx[NAXES];
    int started, finished;
};

static void state_free(void *p) {
    struct state *s = p;
    if (!s)
        return;
    for (int a = 0; a < NAXES; a++)
        ats_values_clear(&s->ax[a]);
    ats_free(s);
}

static const struct ats_values *const *axes_of(const struct state *s, const struct ats_values **a) {
    for (int i = 0; i < NAXES; i++)
        a[i] = &s->ax[i];
    return a;
}

// The theory columns at (d, n, beta, tau') (THEORY.md 3.3-3.5).
static void theory_record(struct ats_record *rec, const struct state *s, int64_t d, double n,
                          double beta, double tau) {
    double ew1 = NAN, esw2 = NAN;
    if (ats_ppp_expect(&ew1, &esw2, d, tau) != ATS_STATUS_OK)
        ew1 = esw2 = NAN;
    struct ats_sphere_sub sub;
    if (s->sampler != ATS_SAMPLER_EXACT ||
        ats_sphere_subcritical(&sub, d, n, beta) != ATS_STATUS_OK)
        sub = (struct ats_sphere_sub){NAN, NAN, NAN, NAN, NAN, NAN, NAN};
    if (sub.n_eff < 10) // the subcritical forms need many effective keys (3.3)
        sub.entropy = sub.A = sub.var_perp = NAN;
    ats_record_double(rec, "w1_theory", ew1);
    ats_record_double(rec, "sum_w2_theory", esw2);
    ats_record_double(rec, "entropy_theory", sub.entropy);
    ats_record_double(rec, "cos_yq_theory", sub.A);
    ats_record_double(rec, "n_var_perp_theory", sub.var_perp);
    double kd = ats_sphere_K(d); // infinite at d = 2: no such rate there
    ats_record_double(rec, "w1_super", isfinite(kd) ? 1 - kd / tau : NAN);
}

// Trials [0, trials) of p into tr, in batches (progress and cancellation between them).
static int run_trials(struct ats_run *run, struct ats_query_trial *tr,
                      const struct ats_query_params *p, int64_t trials) {
    int64_t batch =
        p->sampler == ATS_SAMPLER_EXACT ? (int64_t)fmax(1, 1e8 / fmax(p->n, 1)) : trials;
    for (int64_t t0 = 0; t0 < trials; t0 += batch) {
        int rc = run_check_cancel(run);
        if (rc != ATS_STATUS_OK)
            return rc;
        int64_t m = trials - t0 < batch ? trials - t0 : batch;
        rc = ats_query_run(tr + t0, p, t0, m);
        if (rc == ATS_STATUS_EDOM)
            ATS_ERROR(ATS_STATUS_EARG, "%s", ats_last_error());
        if (rc != ATS_STATUS_OK)
            ATS_ERROR(rc, "%s: %s", ats_strerror(rc), ats_last_error());
        run->done = run->done + (double)m;
    }
    return ATS_STATUS_OK;
}

static int next(struct ats_run *run, void *state, struct ats_record *rec) {
    struct state *s = state;
    const struct ats_values *a[NAXES];
    if (s->finished)
        return ATS_STATUS_OK;
    if (s->started && !grid_next(s->idx, axes_of(s, a), NAXES)) {
        s->finished = 1;
        return ATS_STATUS_OK;
    }
    s->started = 1;
    int rc = run_check_cancel(run);
    if (rc != ATS_STATUS_OK)
        return rc;
    const int64_t *idx = s->idx;
    struct ats_query_params p = ats_query_params_default();
    p.d = (int64_t)s->ax[AX_D].v[idx[AX_D]];
    double n = s->ax[AX_N].v[idx[AX_N]], scale = s->ax[AX_SCALE].v[idx[AX_SCALE]];
    int64_t trials = (int64_t)s->ax[AX_TRIALS].v[idx[AX_TRIALS]];
    double bstar = s->have_n ? ats_sphere_beta_star(p.d, n) : NAN;
    double beta = s->by_tau ? scale * bstar : scale, tau = s->by_tau ? scale : scale / bstar;
    p.n = n;
    p.sampler = s->sampler;
    p.beta = s->sampler == ATS_SAMPLER_PPP ? tau : beta; // the ppp sampler takes tau'
    p.seed = s->seed;
    p.threads = s->threads;
    struct ats_query_trial *tr = ats_malloc_array((size_t)trials, sizeof *tr);
    if (!tr)
        ATS_ERROR(ATS_STATUS_ENOMEM, "out of memory for %lld trials", (long long)trials);
    rc = run_trials(run, tr, &p, trials);
    if (rc != ATS_STATUS_OK) {
        ats_free(tr);
        return rc;
    }
    ats_record_int(rec, "d", p.d);
    ats_record_double(rec, "n", s->have_n ? n : NAN);
    ats_record_double(rec, "beta", beta);
    ats_record_double(rec, "tau_prime", tau);
    ats_record_double(rec, "beta_star", bstar);
    ats_record_int(rec, "trials", trials);
    ats_record_string(rec, "sampler", samplers[s->sampler]);
    static const char *const keys[5] = {"w1", "sum_w2", "entropy", "cos_yq", "radial"};
    static const char *const se_keys[5] = {"w1_se", "sum_w2_se", "entropy_se", "cos_yq_se",
                                           "radial_se"};
    const double *fields[5] = {&tr[0].w1, &tr[0].sum_w2, &tr[0].entropy, &tr[0].cos_yq,
                               &tr[0].radial};
    for (int k = 0; k < 5; k++) {
        double mean, se;
        ats_stat_mean_se(&mean, &se, fields[k], trials, sizeof *tr);
        ats_record_double(rec, keys[k], mean);
        ats_record_double(rec, se_keys[k], se);
    }
    double var, vse, scale_perp = s->sampler == ATS_SAMPLER_EXACT ? n : 1;
    ats_stat_var_se(&var, &vse, &tr[0].perp, trials, sizeof *tr);
    ats_free(tr);
    ats_record_double(rec, "n_var_perp", scale_perp * var);
    ats_record_double(rec, "n_var_perp_se", scale_perp * vse);
    if (s->theory)
        theory_record(rec, s, p.d, n, beta, tau);
    return ATS_STATUS_OK;
}

static const struct run_ops ops = {next, NULL, state_free};

// The usage checks of the CLI, in its order (after the option domains).
static int check(const struct ats_query_spec *sp) {
    if (sp->beta.count && sp->tau_prime.count)
        ATS_ERROR(ATS_STATUS_EARG, "--beta and --tau-prime are exclusive: give one of them");
    if (!sp->d.count)
        ATS_ERROR(ATS_STATUS_EARG, "--d is required (an integer >= 2)");
    if (!sp->beta.count && !sp->tau_prime.count)
        ATS_ERROR(ATS_STATUS_EARG, "one of --beta (>= 0) and --tau-prime (> 0) is required");
    int ppp = sp->sampler == ATS_SAMPLER_PPP, by_tau = sp->tau_prime.count > 0;
    if (!sp->n.count && (!ppp || !by_tau))
        ATS_ERROR(ATS_STATUS_EARG, "--n is required (an integer >= 1)%s",
                  ppp ? " to turn --beta into tau'" : "");
    if (ppp && !by_tau)
        for (int64_t i = 0; i < sp->beta.count; i++)
            if (!(sp->beta.v[i] > 0))
                ATS_ERROR(ATS_STATUS_EARG, "--beta: the ppp sampler needs beta > 0 (tau' > 0)");
    return ATS_STATUS_OK;
}

static int run_alloc(struct ats_run **out, const void *spec_) {
    const struct ats_query_spec *sp = spec_;
    int rc = command_check_spec(&command_query, sp);
    if (rc == ATS_STATUS_OK)
        rc = check(sp);
    if (rc != ATS_STATUS_OK)
        return rc;
    struct state *s = ats_malloc(sizeof *s);
    if (!s)
        ATS_ERROR(ATS_STATUS_ENOMEM, "no memory for a run");
    memset(s, 0, sizeof *s);
    s->by_tau = sp->tau_prime.count > 0;
    s->have_n = sp->n.count > 0;
    s->theory = sp->theory != 0;
    s->sampler = sp->sampler == ATS_SAMPLER_PPP ? ATS_SAMPLER_PPP : ATS_SAMPLER_EXACT;
    s->seed = isnan(sp->seed) ? 1 : (uint64_t)sp->seed;
    s->threads = spec_threads(sp->threads);
    rc = values_copy(&s->ax[AX_D], &sp->d);
    // ppp with tau': n plays no part (a single placeholder value, written as null).
    if (rc == ATS_STATUS_OK)
        rc = s->have_n ? values_copy(&s->ax[AX_N], &sp->n) : values_one(&s->ax[AX_N], 1);
    if (rc == ATS_STATUS_OK)
        rc = values_copy(&s->ax[AX_SCALE], s->by_tau ? &sp->tau_prime : &sp->beta);
    if (rc == ATS_STATUS_OK)
        rc = sp->trials.count ? values_copy(&s->ax[AX_TRIALS], &sp->trials)
                              : values_one(&s->ax[AX_TRIALS], 100);
    if (rc != ATS_STATUS_OK) {
        state_free(s);
        return rc;
    }
    // Progress in trials: every (d, n, beta) runs every trials value.
    double trials = 0;
    for (int64_t i = 0; i < s->ax[AX_TRIALS].count; i++)
        trials += s->ax[AX_TRIALS].v[i];
    double total = (double)s->ax[AX_D].count * (double)s->ax[AX_N].count *
                   (double)s->ax[AX_SCALE].count * trials;
    // The exact sampler's cost: every key of every trial, at the rate measured on 2 cores
    // (1.2e8 keys/s at d = 3, 4e7 at d = 64: docs/PERFORMANCE.md).
    double keys = 0, seconds = 0;
    for (int64_t i = 0; s->sampler == ATS_SAMPLER_EXACT && i < s->ax[AX_D].count; i++)
        for (int64_t j = 0; j < s->ax[AX_N].count; j++) {
            double k = s->ax[AX_N].v[j] * trials * (double)s->ax[AX_SCALE].count;
            keys += k;
            seconds += k * (1 + (s->ax[AX_D].v[i] - 3) / 32) / 1.2e8;
        }
    if ((rc = run_new(out, &ops, s, total)) != ATS_STATUS_OK)
        return rc;
    char what[96];
    snprintf(what, sizeof what, "about %.3g keys to draw", keys);
    run_note_cost(*out, seconds, what,
                  "lower --trials or --n, or for the n -> infinity limit use --sampler ppp");
    return ATS_STATUS_OK;
}

const struct ats_command command_query = {
    "query",
    "Usage: attnscale query --d D --n N (--beta B | --tau-prime T) [options]\n",
    "One query q against n keys i.i.d. uniform on the sphere S^(d-1), weights proportional to\n"
    "exp(beta <q, k>) (THEORY.md section 3; arXiv 2605.08505). The critical scale is\n"
    "beta* = (kappa_d n)^(2/(d-1)); tau' = beta/beta* is below 1 subcritical (local averaging),\n"
    "of order 1 critical (a few nearest keys share the mass) and large supercritical (the\n"
    "nearest key wins). Keys are drawn exactly through the Beta law of <q, k> and streamed in\n"
    "chunks, so n can reach 10^10 in memory O(chunk).\n",
    "Record keys: d, n, beta, tau_prime, beta_star, trials, sampler, then means over trials with\n"
    "their standard errors (_se, null when trials < 2): w1 (largest weight), sum_w2, entropy,\n"
    "cos_yq (<y, q>), radial (beta* (1 - <y, q>)), and n_var_perp (n times the variance over\n"
    "trials of one tangential coordinate of y; ppp: of n^(1/(d-1)) P_perp y). With --theory:\n"
    "w1_theory and sum_w2_theory from the critical limit at the same tau' (THEORY.md 3.4),\n"
    "cos_yq_theory = A_d(beta), n_var_perp_theory = sigma_perp^2(beta), entropy_theory\n"
    "(3.3, subcritical forms: null where they predict fewer than 10 effective keys) and\n"
    "w1_super = 1 - K_d/tau' (3.5, the supercritical rate, for large tau').\n"
    "Convention: exp(beta <q,k>) (if a paper uses exp(-beta |q-k|^2), its beta is half).\n"
    "\n"
    "Example:\n"
    "  attnscale query --d 3 --n 1e5 --tau-prime 0.1,1,10 --trials 1000 --theory\n",
    options,
    (int64_t)(sizeof options / sizeof options[0]),
    sizeof(struct ats_query_spec),
    spec_default,
    run_alloc,
    0,
};
