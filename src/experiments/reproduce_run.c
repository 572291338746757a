/*
 * reproduce_run.c: the `reproduce` experiment: the papers' figures as data (struct ats_figure
 * with its CSV table), one at a time through ats_run_next_figure; the front-end saves each
 * (ats_figure_save) and the run itself never writes a file.
 *   paper1: THEORY.md 2.11 for arXiv 2510.05554: Figures 1-2 (lambda, eta) over (rho, gamma)
 *     for almost-simplex tokens at d = 512, 32, 2 through the `phase` run, the exact simplex
 *     on the same grid through the `simplex` run, and rank collapse over depth (2.9).
 *   paper2: THEORY.md 3.7 for arXiv 2605.08505: the regime diagram (E[w1], E[H] against tau'),
 *     the ordered weights against the PPP law, the subcritical fluctuations and bias (one query
 *     through ats_query_run, statistics through stats.h) and the backward heat equation
 *     (heat.c, THEORY.md 3.6).
 *   all: the exact simplex maps and the scaling policies (the `simplex` and `policies` runs),
 *     then paper1 and paper2.
 * The papers' own grids are unknown, so the grids are this project's choices [C]. Every
 * table, its CSV formats and every drawing are those of the release's cmd_reproduce.c
 * (784934a), so the files are byte-identical.
 *
 * Sub-runs (phase, simplex, policies) are built from their specs directly: their records are
 * the figure's table, their --plot figure (spec.plot a dummy "x.png") its drawing; the sub-run
 * stays alive while the figure is handed out (the drawing points into its storage).
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "experiments/heat.h"
#include "experiments/run.h"
#include "experiments/stats.h"

#define S struct ats_reproduce_spec
static const struct ats_option options[] = {
    {"quick", ATS_OPTION_FLAG, OPT_OFF(S, quick), DOM_NONE, NULL, NULL,
     "fewer trials and smaller n\n", "Options"},
    {"outdir", ATS_OPTION_TEXT, OPT_OFF(S, outdir), DOM_NONE, NULL, "DIR",
     "where the files go (default out; created if missing)\n", NULL},
    OPTIONS_SEED_THREADS(S),
};
#undef S

static void spec_default(void *spec) {
    command_spec_absent(&command_reproduce, spec);
}

// ----------------------------------------------------------------------------
// The figures in order: steps of the run.

enum kind {
    K_SIMPLEX_MAP, // all: simplex_{lambda,eta}_n1024 (arg 0, 1)
    K_SHARPENING,  // all: simplex_sharpening
    K_RESIDUAL,    // all: simplex_residual
    K_POLICIES,    // all: policies
    K_PHASE,       // paper1_fig{1,2}_{lambda,eta}_d{512,32,2}: arg = 3 fig + k
    K_P1_SIMPLEX,  // paper1_simplex_{lambda,eta} (arg 0, 1)
    K_DEPTH,       // paper1_depth
    K_REGIME_W,    // paper2_regime_w1_d{3,4,6}: arg = index of d (computes both statistics)
    K_REGIME_H,    // paper2_regime_entropy_d{3,4,6}
    K_ORDERED,     // paper2_ordered_tau{1,5} (arg 0, 1)
    K_FLUCTUATION, // paper2_fluctuation_d3
    K_BIAS,        // paper2_bias
    K_HEAT,        // paper2_heat
};

struct step {
    enum kind kind;
    int arg;
    const char *note; // queued when the step starts (the CLI's messages), or NULL
};

#define MAX_STEPS 32

struct state {
    int quick;
    uint64_t seed;
    int threads;
    struct step steps[MAX_STEPS];
    int nsteps, cur;
    struct figure *fig;  // the figure handed out last
    struct ats_run *sub; // the sub-run its drawing points into, or NULL
    // The regime diagram of one d, computed for the w1 figure and kept for the entropy one:
    // (nn + 1) x ntau values each, series in = nn the critical limit.
    double *tau, *w, *we, *h, *he;
    int64_t d;
    int nn, ntau;
};

static void regime_clear(struct state *s) {
    ats_free(s->tau);
    ats_free(s->w);
    ats_free(s->we);
    ats_free(s->h);
    ats_free(s->he);
    s->tau = s->w = s->we = s->h = s->he = NULL;
}

static void release(struct state *s) {
    figure_free(s->fig);
    s->fig = NULL;
    ats_run_free(s->sub);
    s->sub = NULL;
}

static void state_free(void *p) {
    struct state *s = p;
    if (!s)
        return;
    release(s);
    regime_clear(s);
    ats_free(s);
}

// A failed allocation while building s->fig.
#define NEED(p)                                                                                    \
    do {                                                                                           \
        if (!(p))                                                                                  \
            ATS_ERROR(ATS_STATUS_ENOMEM, "out of memory");                                         \
    } while (0)

static double *copy_doubles(struct figure *g, const double *v, int64_t n) {
    double *c = figure_alloc(g, (size_t)n * sizeof *c);
    if (c)
        memcpy(c, v, (size_t)n * sizeof *c);
    return c;
}

// Adds rec to the figure's table (rec's csv formats are static strings).
static int add_row(struct state *s, const struct ats_record *rec) {
    return figure_add_row(s->fig, rec);
}

// ----------------------------------------------------------------------------
// Paper 2: one query against n keys (THEORY.md 3).

// The trials of one point into *out (owned by the caller; NULL with ATS_STATUS_OK when the
// critical limit cannot be sampled there: a note says so).
static int run_trials(struct ats_run *run, const struct state *s, struct ats_query_trial **out,
                      int64_t d, double n, double beta, enum ats_sampler sampler, int64_t trials,
                      int topk) {
    *out = NULL;
    int rc = run_check_cancel(run);
    if (rc != ATS_STATUS_OK)
        return rc;
    struct ats_query_params p = ats_query_params_default();
    p.d = d;
    p.n = n;
    p.beta = beta;
    p.sampler = sampler;
    p.topk = topk;
    p.seed = s->seed;
    p.threads = s->threads;
    struct ats_query_trial *t = ats_malloc_array((size_t)trials, sizeof *t);
    if (!t)
        ATS_ERROR(ATS_STATUS_ENOMEM, "out of memory");
    rc = ats_query_run(t, &p, 0, trials);
    if (rc == ATS_STATUS_ERANGE && sampler == ATS_SAMPLER_PPP) {
        // Large d at small tau' needs more points than the sampler allows: no limit point.
        run_note(run, "note: no critical-limit sample at d = %lld, tau' = %g (%s)", (long long)d,
                 beta, ats_last_error());
        ats_free(t);
        return ATS_STATUS_OK;
    }
    if (rc != ATS_STATUS_OK) {
        ats_free(t);
        if (rc == ATS_STATUS_EARG)
            rc = ATS_STATUS_EINVAL; // a parameter of ours, not the user's
        ATS_ERROR(rc, "query d = %lld n = %g beta = %g: %s", (long long)d, n, beta,
                  ats_last_error());
    }
    *out = t;
    return ATS_STATUS_OK;
}

// The regime diagram's n (THEORY.md 3.7 lists 1e3 to 1e6; --quick stops at 1e5).
static const double ns_full[4] = {1e3, 1e4, 1e5, 1e6}, ns_quick[3] = {1e3, 1e4, 1e5};

// Figure 1 data: E[w1] and E[H] against tau' for several n, and the critical limit, at the
// step's d (index id of 3, 4, 6). Series 0..nn-1: finite n (exact sampler); nn: the PPP limit
// (w1 by the exact integral, H by Monte Carlo).
static int regime_compute(struct ats_run *run, struct state *s, int id) {
    static const int64_t ds[3] = {3, 4, 6};
    const double *ns = s->quick ? ns_quick : ns_full;
    int nn = s->quick ? 3 : 4, ntau = s->quick ? 9 : 17;
    int64_t trials = s->quick ? 200 : 1000, ppp_trials = s->quick ? 500 : 4000;
    int64_t d = ds[id];
    regime_clear(s);
    size_t cells = (size_t)(ntau * (nn + 1));
    s->tau = ats_malloc_array((size_t)ntau, sizeof(double));
    s->w = ats_malloc_array(cells, sizeof(double));
    s->we = ats_malloc_array(cells, sizeof(double));
    s->h = ats_malloc_array(cells, sizeof(double));
    s->he = ats_malloc_array(cells, sizeof(double));
    NEED(s->tau && s->w && s->we && s->h && s->he);
    s->d = d;
    s->nn = nn;
    s->ntau = ntau;
    double *tau = s->tau, *w = s->w, *we = s->we, *h = s->h, *he = s->he;
    for (int it = 0; it < ntau; it++)
        tau[it] = pow(10, -2 + 4.0 * it / (ntau - 1));
    const double base = run->done;
    for (int in = 0; in <= nn; in++) {
        for (int it = 0; it < ntau; it++) {
            int k = in * ntau + it, rc;
            struct ats_query_trial *t;
            if (in < nn) {
                double beta = tau[it] * ats_sphere_beta_star(d, ns[in]);
                rc = run_trials(run, s, &t, d, ns[in], beta, ATS_SAMPLER_EXACT, trials, 0);
                if (rc != ATS_STATUS_OK)
                    return rc;
                ats_stat_mean_se(&w[k], &we[k], &t[0].w1, trials, sizeof *t);
                ats_stat_mean_se(&h[k], &he[k], &t[0].entropy, trials, sizeof *t);
            } else {
                // The PPP needs about (56/tau')^((d-1)/2) points per sample to reach its
                // 1e-12 tail (weights exp(-(tau'/2) Gamma^(2/(d-1))) down to e^-28): the
                // limit's entropy is sampled only where that stays below 2e5 points.
                double points = pow(56 / tau[it], 0.5 * (double)(d - 1));
                t = NULL;
                if (points <= 2e5) {
                    rc = run_trials(run, s, &t, d, 1, tau[it], ATS_SAMPLER_PPP, ppp_trials, 0);
                    if (rc != ATS_STATUS_OK)
                        return rc;
                }
                double sw2;
                if (ats_ppp_expect(&w[k], &sw2, d, tau[it]) != ATS_STATUS_OK)
                    w[k] = NAN; // outside the quadrature's range: a gap in the curve
                we[k] = 0;
                h[k] = he[k] = NAN;
                if (t)
                    ats_stat_mean_se(&h[k], &he[k], &t[0].entropy, ppp_trials, sizeof *t);
            }
            ats_free(t);
            run->done = base + (double)(k + 1) / (double)cells;
        }
    }
    return ATS_STATUS_OK;
}

// The w1 (pass 0) or entropy (pass 1) figure of the regime data in s.
static int regime_figure(struct state *s, int pass) {
    const double *ns = s->quick ? ns_quick : ns_full;
    const int nn = s->nn, ntau = s->ntau;
    const int64_t d = s->d, cells = (int64_t)ntau * (nn + 1);
    char name[64];
    snprintf(name, sizeof name,
             pass == 0 ? "paper2_regime_w1_d%lld" : "paper2_regime_entropy_d%lld", (long long)d);
    NEED(s->fig = figure_new(name));
    struct figure *g = s->fig;
    const double *y = pass == 0 ? s->w : s->h, *e = pass == 0 ? s->we : s->he;
    // The figure's CSV: the statistic it draws, per n (inf: the critical limit).
    struct ats_record rec;
    for (int in = 0; in <= nn; in++)
        for (int it = 0; it < ntau; it++) {
            ats_record_clear(&rec);
            ats_record_int(&rec, "d", d);
            ats_record_csv_format(&rec, "%lld");
            ats_record_double(&rec, "n", in < nn ? ns[in] : HUGE_VAL);
            ats_record_csv_format(&rec, "%.17g");
            ats_record_double(&rec, "tau_prime", s->tau[it]);
            ats_record_csv_format(&rec, "%.17g");
            ats_record_double(&rec, pass == 0 ? "w1" : "entropy", y[in * ntau + it]);
            ats_record_csv_format(&rec, "%.17g");
            ats_record_double(&rec, pass == 0 ? "w1_se" : "entropy_se", e[in * ntau + it]);
            ats_record_csv_format(&rec, "%.17g");
            ats_record_string(&rec, "source",
                              in < nn     ? "exact sampler"
                              : pass == 0 ? "critical limit (quadrature)"
                                          : "critical limit (ppp sampler)");
            int rc = add_row(s, &rec);
            if (rc != ATS_STATUS_OK)
                return rc;
        }
    double *tau = copy_doubles(g, s->tau, ntau), *yc = copy_doubles(g, y, cells);
    double *ec = copy_doubles(g, e, cells);
    struct ats_plot_series *ser = figure_alloc(g, (size_t)(nn + 1) * sizeof *ser);
    NEED(tau && yc && ec && ser);
    for (int in = 0; in <= nn; in++) {
        const char *label = in < nn ? figure_printf(g, "n = %.0e", ns[in])
                                    : figure_printf(g, "n -> inf (critical limit)");
        NEED(label);
        ser[in] = (struct ats_plot_series){tau,   yc + in * ntau, ec + in * ntau,   ntau,
                                           label, in == nn,       in < nn ? in : -1};
    }
    struct ats_figure *f = &g->f;
    f->series = ser;
    f->nseries = nn + 1;
    f->axes = ats_plot_axes_default();
    NEED(f->axes.title = figure_printf(g, "d = %lld: %s against tau' = beta/beta*", (long long)d,
                                       pass == 0 ? "E[w1]" : "E[entropy]"));
    f->axes.xlabel = "tau' = beta/beta*";
    f->axes.ylabel = pass == 0 ? "E[largest weight]" : "E[entropy] (nats)";
    f->axes.xlog = 1;
    if (pass == 1)
        regime_clear(s);
    return ATS_STATUS_OK;
}

// Figure 2: ordered weights at tau' = 1 and 5, n keys against the PPP law (d = 3).
enum { BINS = 40 };

// Density of w_(k+1) over m trials in BINS bins of [0, 1] (the top edge in the last bin):
// b = floor(w BINS) bit for bit with lo 0, width 1, scale BINS (stats.h); NANs without trials.
static void histogram(double *dens, const struct ats_query_trial *t, int64_t m, int k) {
    if (!t) {
        for (int b = 0; b < BINS; b++)
            dens[b] = NAN;
        return;
    }
    ats_stat_histogram(dens, BINS, 0, 1, &t[0].top[k], m, sizeof *t, BINS, (double)BINS / (double)m,
                       1);
}

static int fig_ordered(struct ats_run *run, struct state *s, int i) {
    static const double taus[2] = {1, 5};
    double n = s->quick ? 1e4 : 1e5;
    int64_t trials = s->quick ? 2000 : 10000, ppp = s->quick ? 8000 : 40000;
    char name[64];
    snprintf(name, sizeof name, "paper2_ordered_tau%g", taus[i]);
    double beta = taus[i] * ats_sphere_beta_star(3, n);
    struct ats_query_trial *te, *tp;
    int rc = run_trials(run, s, &te, 3, n, beta, ATS_SAMPLER_EXACT, trials, 3);
    if (rc != ATS_STATUS_OK)
        return rc;
    rc = run_trials(run, s, &tp, 3, 1, taus[i], ATS_SAMPLER_PPP, ppp, 3);
    if (rc != ATS_STATUS_OK) {
        ats_free(te);
        return rc;
    }
    double de[3][BINS], dp[3][BINS];
    for (int k = 0; k < 3; k++) {
        histogram(de[k], te, trials, k);
        histogram(dp[k], tp, ppp, k);
    }
    ats_free(te);
    ats_free(tp);

    NEED(s->fig = figure_new(name));
    struct figure *g = s->fig;
    double *centre = figure_alloc(g, BINS * sizeof *centre);
    double *dec = copy_doubles(g, &de[0][0], 3 * BINS), *dpc = copy_doubles(g, &dp[0][0], 3 * BINS);
    struct ats_plot_series *ser = figure_alloc(g, 6 * sizeof *ser);
    NEED(centre && dec && dpc && ser);
    for (int b = 0; b < BINS; b++)
        centre[b] = (b + 0.5) / BINS;
    struct ats_record rec;
    for (int k = 0; k < 3; k++) {
        for (int b = 0; b < BINS; b++) {
            ats_record_clear(&rec);
            ats_record_double(&rec, "tau_prime", taus[i]);
            ats_record_csv_format(&rec, "%g");
            ats_record_int(&rec, "order", k + 1);
            ats_record_csv_format(&rec, "%lld");
            ats_record_double(&rec, "bin_lo", (double)b / BINS);
            ats_record_csv_format(&rec, "%.17g");
            ats_record_double(&rec, "bin_hi", (double)(b + 1) / BINS);
            ats_record_csv_format(&rec, "%.17g");
            ats_record_double(&rec, "density_n_keys", de[k][b]);
            ats_record_csv_format(&rec, "%.17g");
            ats_record_double(&rec, "density_ppp", dp[k][b]);
            ats_record_csv_format(&rec, "%.17g");
            if ((rc = add_row(s, &rec)) != ATS_STATUS_OK)
                return rc;
        }
        const char *le = figure_printf(g, "w_(%d), n = %.0e", k + 1, n);
        const char *lp = figure_printf(g, "w_(%d), limit (ppp)", k + 1);
        NEED(le && lp);
        ser[2 * k] = (struct ats_plot_series){centre, dec + k * BINS, NULL, BINS, le, 0, k};
        ser[2 * k + 1] = (struct ats_plot_series){centre, dpc + k * BINS, NULL, BINS, lp, 1, k};
    }
    struct ats_figure *f = &g->f;
    f->series = ser;
    f->nseries = 6;
    f->axes = ats_plot_axes_default();
    NEED(f->axes.title = figure_printf(g, "d = 3, tau' = %g: ordered weights", taus[i]));
    f->axes.xlabel = "weight";
    f->axes.ylabel = "density";
    f->axes.xmin = 0;
    f->axes.xmax = 1;
    return ATS_STATUS_OK;
}

// Figure 3a: sqrt(n) (P_perp y)_1 at d = 3 (beta^(-(d-3)/4) = 1) against N(0, sigma_perp^2).
static int fig_fluctuation(struct ats_run *run, struct state *s) {
    double n = s->quick ? 2e4 : 1e5;
    int64_t trials = s->quick ? 400 : 2000;
    static const double betas[3] = {10, 40, 100};
    enum { HB = 30 };
    NEED(s->fig = figure_new("paper2_fluctuation_d3"));
    struct figure *g = s->fig;
    // Bin centres, densities and the Gaussian law per beta: (3, HB) each.
    double *cx = figure_alloc(g, 3 * HB * sizeof *cx),
           *dens = figure_alloc(g, 3 * HB * sizeof *dens);
    double *gauss = figure_alloc(g, 3 * HB * sizeof *gauss);
    struct ats_plot_series *ser = figure_alloc(g, 6 * sizeof *ser);
    NEED(cx && dens && gauss && ser);
    const double base = run->done;
    struct ats_record rec;
    for (int i = 0; i < 3; i++) {
        struct ats_query_trial *t;
        int rc = run_trials(run, s, &t, 3, n, betas[i], ATS_SAMPLER_EXACT, trials, 0);
        if (rc != ATS_STATUS_OK)
            return rc;
        struct ats_sphere_sub sub;
        if ((rc = ats_sphere_subcritical(&sub, 3, n, betas[i])) != ATS_STATUS_OK) {
            ats_free(t);
            ATS_ERROR(rc, "subcritical prediction: %s", ats_last_error());
        }
        double sd = sqrt(sub.var_perp), lo = -4 * sd, width = 8 * sd / HB;
        double *c = cx + i * HB, *dn = dens + i * HB, *ga = gauss + i * HB;
        for (int b = 0; b < HB; b++) {
            c[b] = lo + (b + 0.5) * width;
            ga[b] = exp(-c[b] * c[b] / (2 * sub.var_perp)) /
                    sqrt(2 * 3.14159265358979323846 * sub.var_perp);
        }
        ats_stat_histogram(dn, HB, lo, width, &t[0].perp, trials, sizeof *t, sqrt(n),
                           1 / ((double)trials * width), 0);
        ats_free(t);
        for (int b = 0; b < HB; b++) {
            ats_record_clear(&rec);
            ats_record_double(&rec, "beta", betas[i]);
            ats_record_csv_format(&rec, "%g");
            ats_record_double(&rec, "bin_centre", c[b]);
            ats_record_csv_format(&rec, "%.17g");
            ats_record_double(&rec, "density", dn[b]);
            ats_record_csv_format(&rec, "%.17g");
            ats_record_double(&rec, "gaussian_density", ga[b]);
            ats_record_csv_format(&rec, "%.17g");
            ats_record_double(&rec, "sigma_perp2", sub.var_perp);
            ats_record_csv_format(&rec, "%.17g");
            if ((rc = add_row(s, &rec)) != ATS_STATUS_OK)
                return rc;
        }
        run->done = base + (i + 1) / 3.0;
    }
    // The three betas share one axis: sigma_perp^2 stays near 1/2 at d = 3 (THEORY.md 3.3).
    for (int i = 0; i < 3; i++) {
        const char *ld = figure_printf(g, "beta = %g, n = %.0e", betas[i], n);
        const char *lg = figure_printf(g, "N(0, sigma_perp^2(%g))", betas[i]);
        NEED(ld && lg);
        ser[2 * i] = (struct ats_plot_series){cx + i * HB, dens + i * HB, NULL, HB, ld, 0, i};
        ser[2 * i + 1] = (struct ats_plot_series){cx + i * HB, gauss + i * HB, NULL, HB, lg, 1, i};
    }
    struct ats_figure *f = &g->f;
    f->series = ser;
    f->nseries = 6;
    f->axes = ats_plot_axes_default();
    f->axes.title = "d = 3, subcritical: sqrt(n) (P_perp y)_1 is Gaussian";
    f->axes.xlabel = "sqrt(n) (P_perp y)_1";
    f->axes.ylabel = "density";
    return ATS_STATUS_OK;
}

// Figure 3b: beta (1 - <y,q>) -> (d - 1)/2 for 1 << beta << beta*, d = 3, 4.
static int fig_bias(struct ats_run *run, struct state *s) {
    double n = s->quick ? 2e4 : 1e5;
    int64_t trials = s->quick ? 400 : 2000;
    static const double bb[6] = {5, 10, 20, 40, 100, 200};
    NEED(s->fig = figure_new("paper2_bias"));
    struct figure *g = s->fig;
    // (2, 6) each: per d, per beta.
    double *bias = figure_alloc(g, 12 * sizeof *bias), *bse = figure_alloc(g, 12 * sizeof *bse);
    double *lim = figure_alloc(g, 12 * sizeof *lim), *bx = copy_doubles(g, bb, 6);
    struct ats_plot_series *ser = figure_alloc(g, 4 * sizeof *ser);
    NEED(bias && bse && lim && bx && ser);
    const double base = run->done;
    struct ats_record rec;
    for (int id = 0; id < 2; id++) {
        int64_t d = 3 + id;
        for (int i = 0; i < 6; i++) {
            struct ats_query_trial *t;
            int rc = run_trials(run, s, &t, d, n, bb[i], ATS_SAMPLER_EXACT, trials, 0);
            if (rc != ATS_STATUS_OK)
                return rc;
            double m, se;
            ats_stat_mean_se(&m, &se, &t[0].cos_yq, trials, sizeof *t);
            ats_free(t);
            int k = id * 6 + i;
            bias[k] = bb[i] * (1 - m);
            bse[k] = bb[i] * se;
            lim[k] = (double)(d - 1) / 2;
            ats_record_clear(&rec);
            ats_record_int(&rec, "d", d);
            ats_record_csv_format(&rec, "%lld");
            ats_record_double(&rec, "n", n);
            ats_record_csv_format(&rec, "%.17g");
            ats_record_double(&rec, "beta", bb[i]);
            ats_record_csv_format(&rec, "%g");
            ats_record_double(&rec, "beta_one_minus_cos", bias[k]);
            ats_record_csv_format(&rec, "%.17g");
            ats_record_double(&rec, "se", bse[k]);
            ats_record_csv_format(&rec, "%.17g");
            ats_record_double(&rec, "limit", lim[k]);
            ats_record_csv_format(&rec, "%g");
            if ((rc = add_row(s, &rec)) != ATS_STATUS_OK)
                return rc;
            run->done = base + (k + 1) / 12.0;
        }
    }
    ser[0] = (struct ats_plot_series){bx, bias, bse, 6, "d = 3", 0, 0};
    ser[1] = (struct ats_plot_series){bx, lim, NULL, 6, "(d - 1)/2 = 1", 1, 0};
    ser[2] = (struct ats_plot_series){bx, bias + 6, bse + 6, 6, "d = 4", 0, 1};
    ser[3] = (struct ats_plot_series){bx, lim + 6, NULL, 6, "(d - 1)/2 = 1.5", 1, 1};
    struct ats_figure *f = &g->f;
    f->series = ser;
    f->nseries = 4;
    f->axes = ats_plot_axes_default();
    f->axes.title = "subcritical bias: beta (1 - <y,q>) -> (d-1)/2";
    f->axes.xlabel = "beta";
    f->axes.ylabel = "beta (1 - <y, q>)";
    f->axes.xlog = 1;
    return ATS_STATUS_OK;
}

// Figure 4: the backward heat equation (THEORY.md 3.6), d = 3, von Mises-Fisher keys (heat.c).
static int fig_heat(struct ats_run *run, struct state *s) {
    enum { NB = 7 };
    static const double betas[NB] = {200, 500, 1000, 2000, 5000, 10000, 20000};
    struct ats_heat_params p = ats_heat_params_default();
    p.kappa0 = 50;
    p.queries = s->quick ? 4000 : 20000;
    p.finite_queries = s->quick ? 100 : 400;
    p.n_keys = s->quick ? 20000 : 100000;
    p.seed = s->seed;
    p.cancel = &run->cancelled;
    NEED(s->fig = figure_new("paper2_heat"));
    struct figure *g = s->fig;
    double *bx = copy_doubles(g, betas, NB), *drop = figure_alloc(g, NB * sizeof *drop);
    double *dropn = figure_alloc(g, NB * sizeof *dropn), *two = figure_alloc(g, NB * sizeof *two);
    struct ats_plot_series *ser = figure_alloc(g, 3 * sizeof *ser);
    NEED(bx && drop && dropn && two && ser);
    const double base = run->done;
    struct ats_record rec;
    for (int i = 0; i < NB; i++) {
        double beta = betas[i];
        struct ats_heat_result r;
        int rc = run_check_cancel(run);
        if (rc == ATS_STATUS_OK)
            rc = ats_heat_run(&r, &p, beta, 7000000 + (uint64_t)i);
        if (rc != ATS_STATUS_OK)
            return rc;
        drop[i] = r.drop_limit;
        // With n keys only about n kappa0/(2 beta) fall inside the 1/sqrt(beta) neighbourhood
        // that sets y: below ~10 of them the finite-n drop is noise, so it is not drawn.
        dropn[i] = (double)p.n_keys * p.kappa0 / (2 * beta) >= 200 ? r.drop_n_keys : NAN;
        two[i] = 2 / beta;
        ats_record_clear(&rec);
        ats_record_double(&rec, "beta", beta);
        ats_record_csv_format(&rec, "%g");
        ats_record_double(&rec, "kappa0", p.kappa0);
        ats_record_csv_format(&rec, "%g");
        ats_record_double(&rec, "var_before", r.var_before);
        ats_record_csv_format(&rec, "%.17g");
        ats_record_double(&rec, "var_after_limit", r.var_after_limit);
        ats_record_csv_format(&rec, "%.17g");
        ats_record_double(&rec, "drop_limit", drop[i]);
        ats_record_csv_format(&rec, "%.17g");
        ats_record_double(&rec, "var_after_n_keys", r.var_after_n_keys);
        ats_record_csv_format(&rec, "%.17g");
        ats_record_double(&rec, "drop_n_keys", dropn[i]);
        ats_record_csv_format(&rec, "%.17g");
        ats_record_int(&rec, "n_keys", p.n_keys);
        ats_record_csv_format(&rec, "%lld");
        ats_record_double(&rec, "two_over_beta", two[i]);
        ats_record_csv_format(&rec, "%.17g");
        if ((rc = add_row(s, &rec)) != ATS_STATUS_OK)
            return rc;
        run->done = base + (i + 1) / (double)NB;
    }
    const char *lab = figure_printf(g, "%lld keys, %lld queries", (long long)p.n_keys,
                                    (long long)p.finite_queries);
    NEED(lab);
    ser[0] = (struct ats_plot_series){bx, drop, NULL, NB, "n -> inf (exact map)", 0, 0};
    ser[1] = (struct ats_plot_series){bx, dropn, NULL, NB, lab, 0, 1};
    ser[2] = (struct ats_plot_series){bx, two, NULL, NB, "2/beta", 1, -1};
    struct ats_figure *f = &g->f;
    f->series = ser;
    f->nseries = 3;
    f->axes = ats_plot_axes_default();
    f->axes.title = "backward heat flow: vMF(50) queries lose 2/beta of tangent variance";
    f->axes.xlabel = "beta";
    f->axes.ylabel = "variance drop per tangent coordinate";
    f->axes.xlog = 1;
    f->axes.ylog = 1;
    return ATS_STATUS_OK;
}

// ----------------------------------------------------------------------------
// Sub-runs: phase, simplex and policies with their own specs; their records are the table.

// The values of text ("0.02:0.98:25") under the domain of cmd's option opt, parsed as the
// CLI parses the option, into dst (owned by the caller).
static int parse_values(struct ats_values *dst, const struct ats_command *cmd, const char *opt,
                        const char *text) {
    const struct ats_option *o = ats_command_option(cmd, opt);
    ATS_ASSERT(o && o->kind == ATS_OPTION_VALUES);
    int rc = ats_values_parse(dst, text, &o->domain, NULL);
    if (rc != ATS_STATUS_OK)
        ATS_ERROR(ATS_STATUS_EINVAL, "--%s %s: %s", opt, text, ats_last_error());
    return ATS_STATUS_OK;
}

// The index of name among the choices of cmd's option opt (-1 when it is not one).
static int choice_index(const struct ats_command *cmd, const char *opt, const char *name) {
    const struct ats_option *o = ats_command_option(cmd, opt);
    ATS_ASSERT(o && o->kind == ATS_OPTION_CHOICE);
    for (int i = 0; o->choices[i]; i++)
        if (strcmp(o->choices[i], name) == 0)
            return i;
    return -1;
}

// Runs spec through cmd into a new figure `name`: every record a row of its table, the
// sub-run's --plot figure its drawing. notes: pass the sub-run's notes on (the CLI ran phase
// without -q, simplex and policies with it).
static int sub_figure(struct ats_run *run, struct state *s, const struct ats_command *cmd,
                      const void *spec, const char *name, int notes) {
    struct ats_run *sub = NULL;
    int rc = cmd->run_alloc(&sub, spec);
    if (rc != ATS_STATUS_OK) {
        if (rc == ATS_STATUS_EARG)
            rc = ATS_STATUS_EINVAL; // a spec of ours, not the user's
        ATS_ERROR(rc, "%s failed: %s", cmd->name, ats_last_error());
    }
    s->sub = sub;
    NEED(s->fig = figure_new(name));
    const double base = run->done;
    struct ats_record rec;
    for (;;) {
        if ((rc = run_check_cancel(run)) != ATS_STATUS_OK)
            return rc;
        rc = ats_run_next(sub, &rec);
        const char *note;
        while ((note = ats_run_note(sub)))
            if (notes)
                run_note(run, "%s", note);
        if (rc != ATS_STATUS_OK) {
            if (rc == ATS_STATUS_EARG)
                rc = ATS_STATUS_EINVAL;
            ATS_ERROR(rc, "%s failed: %s", cmd->name, ats_last_error());
        }
        if (rec.count == 0)
            break;
        if ((rc = add_row(s, &rec)) != ATS_STATUS_OK)
            return rc;
        double done, total;
        ats_run_progress(sub, &done, &total);
        if (total > 0)
            run->done = base + done / total;
    }
    const struct ats_figure *f = ats_run_figure(sub);
    if (!f)
        ATS_ERROR(ATS_STATUS_EINVAL, "%s failed: no figure", cmd->name);
    // The drawing points into the sub-run's storage: s->sub lives as long as s->fig.
    struct ats_figure *mine = &s->fig->f;
    mine->heatmap = f->heatmap;
    mine->axes = f->axes;
    mine->map = f->map;
    mine->series = f->series;
    mine->nseries = f->nseries;
    return ATS_STATUS_OK;
}

// The value lists of a sub-run's spec, freed once its run has copied them.
struct lists {
    struct ats_values v[8];
    int n;
};

static void lists_clear(struct lists *l) {
    for (int i = 0; i < l->n; i++)
        ats_values_clear(&l->v[i]);
    l->n = 0;
}

// dst = the values of text (NULL: dst stays absent), the array kept in l.
static int spec_values(struct lists *l, struct ats_values *dst, const struct ats_command *cmd,
                       const char *opt, const char *text) {
    if (!text)
        return ATS_STATUS_OK;
    ATS_ASSERT(l->n < 8);
    struct ats_values *v = &l->v[l->n];
    int rc = parse_values(v, cmd, opt, text);
    if (rc != ATS_STATUS_OK)
        return rc;
    l->n++;
    *dst = *v;
    return ATS_STATUS_OK;
}

// One `simplex` figure over value texts (d and alpha may be NULL: absent) with --plot of metric.
static int simplex_figure(struct ats_run *run, struct state *s, const char *name, const char *n,
                          const char *d, const char *rho, const char *alpha, const char *gamma,
                          const char *metric) {
    const struct ats_command *cmd = ats_command_find("simplex");
    ATS_ASSERT(cmd);
    struct ats_simplex_spec sp;
    cmd->spec_default(&sp);
    struct lists l = {.n = 0};
    int rc = spec_values(&l, &sp.n, cmd, "n", n);
    if (rc == ATS_STATUS_OK)
        rc = spec_values(&l, &sp.d, cmd, "d", d);
    if (rc == ATS_STATUS_OK)
        rc = spec_values(&l, &sp.rho, cmd, "rho", rho);
    if (rc == ATS_STATUS_OK)
        rc = spec_values(&l, &sp.alpha, cmd, "alpha", alpha);
    if (rc == ATS_STATUS_OK)
        rc = spec_values(&l, &sp.gamma, cmd, "gamma", gamma);
    sp.metric = choice_index(cmd, "metric", metric);
    sp.plot = "x.png";
    if (rc == ATS_STATUS_OK)
        rc = sub_figure(run, s, cmd, &sp, name, 0);
    lists_clear(&l);
    return rc;
}

// `all`: the exact simplex maps at n = 1024 (arg 0 lambda, 1 eta).
static int fig_simplex_map(struct ats_run *run, struct state *s, int arg) {
    return simplex_figure(run, s, arg ? "simplex_eta_n1024" : "simplex_lambda_n1024", "1024",
                          "1025", "0.02:0.98:49", NULL, "0:10:101", arg ? "eta" : "lambda");
}

static int fig_policies(struct ats_run *run, struct state *s) {
    const struct ats_command *cmd = ats_command_find("policies");
    ATS_ASSERT(cmd);
    struct ats_policies_spec sp;
    cmd->spec_default(&sp);
    sp.policy = "yarn,yarn-dynamic,gpt-oss,deepseek,longrope,qwen-logn,llama4,mistral,"
                "grok2,inkling,su,critical";
    sp.plot = "x.png";
    struct lists l = {.n = 0};
    int rc = spec_values(&l, &sp.n, cmd, "n", "1e3:1e7:200:log");
    if (rc == ATS_STATUS_OK)
        rc = sub_figure(run, s, cmd, &sp, "policies", 0);
    lists_clear(&l);
    return rc;
}

// ----------------------------------------------------------------------------
// Paper 1 (THEORY.md 2.11): Figure 1 (lambda) and Figure 2 (eta, Hutchinson) over (rho, gamma)
// for almost-simplex tokens at d = 512, 32, 2, through the `phase` run; the exact simplex
// at the same n beside them; and rank collapse over depth (2.9).

static const char *p1_n(const struct state *s) {
    return s->quick ? "256" : "1024";
}
static const char *p1_rho(const struct state *s) {
    return s->quick ? "0.02:0.98:25" : "0.02:0.98:49";
}
static const char *p1_gamma(const struct state *s) {
    return s->quick ? "0:10:51" : "0:10:101";
}

// arg = 3 fig + k: fig 0 lambda, 1 eta; k indexes d = 512, 32, 2.
static int fig_phase(struct ats_run *run, struct state *s, int arg) {
    static const char *const dims[3] = {"512", "32", "2"};
    int fig = arg / 3, k = arg % 3;
    const char *trials = s->quick ? "1" : "4";
    char name[64];
    snprintf(name, sizeof name, "paper1_fig%d_%s_d%s", fig + 1, fig ? "eta" : "lambda", dims[k]);
    run_note(run, "%s (n = %s, %s trial(s) per point)", name, p1_n(s), trials);
    const struct ats_command *cmd = ats_command_find("phase");
    ATS_ASSERT(cmd);
    struct ats_phase_spec sp;
    cmd->spec_default(&sp);
    sp.config = choice_index(cmd, "config", "almost-simplex");
    sp.metric = fig ? "eta" : "lambda";
    sp.seed = (double)s->seed;
    sp.threads = s->threads ? (double)s->threads : NAN; // absent: phase's default
    sp.plot = "x.png";
    struct lists l = {.n = 0};
    int rc = spec_values(&l, &sp.n, cmd, "n", p1_n(s));
    if (rc == ATS_STATUS_OK)
        rc = spec_values(&l, &sp.d, cmd, "d", dims[k]);
    if (rc == ATS_STATUS_OK)
        rc = spec_values(&l, &sp.rho, cmd, "rho", p1_rho(s));
    if (rc == ATS_STATUS_OK)
        rc = spec_values(&l, &sp.gamma, cmd, "gamma", p1_gamma(s));
    if (rc == ATS_STATUS_OK)
        rc = spec_values(&l, &sp.trials, cmd, "trials", trials);
    if (rc == ATS_STATUS_OK)
        rc = sub_figure(run, s, cmd, &sp, name, 1);
    lists_clear(&l);
    return rc;
}

// The exact simplex on paper 1's grid, d = n + 1 (arg 0 lambda, 1 eta).
static int fig_p1_simplex(struct ats_run *run, struct state *s, int arg) {
    return simplex_figure(run, s, arg ? "paper1_simplex_eta" : "paper1_simplex_lambda", p1_n(s),
                          s->quick ? "257" : "1025", p1_rho(s), NULL, p1_gamma(s),
                          arg ? "eta" : "lambda");
}

// Rank collapse over depth (THEORY.md 2.9): the simplex layer maps a simplex to a simplex, so
// L layers at the same beta iterate (q, rho) -> (q', rho'); with alpha = 0, q drops out.
static int fig_depth(struct state *s) {
    enum { L = 60, NG = 5 };
    const int64_t n = s->quick ? 256 : 1024;
    static const double rho0 = 0.5, frac[NG] = {0.5, 1, 1.5, 2, 3};
    NEED(s->fig = figure_new("paper1_depth"));
    struct figure *g = s->fig;
    double *layer = figure_alloc(g, (L + 1) * sizeof *layer);
    double *rho = figure_alloc(g, NG * (L + 1) * sizeof *rho); // (NG, L + 1)
    struct ats_plot_series *ser = figure_alloc(g, NG * sizeof *ser);
    NEED(layer && rho && ser);
    struct ats_record rec;
    for (int k = 0; k < NG; k++) {
        double gamma = frac[k] / (1 - rho0); // frac times the first layer's gamma_c
        double *r = rho + k * (L + 1);
        r[0] = rho0;
        for (int l = 1; l <= L; l++) {
            struct ats_simplex_params p = ats_simplex_params_default();
            p.n = n;
            p.d = n + 1;
            p.rho = r[l - 1];
            p.scale = ATS_SCALE_GAMMA;
            p.gamma = gamma;
            struct ats_simplex out;
            // Once rho' rounds to 1 the tokens have collapsed: the map stays there.
            r[l] = p.rho < 1 && ats_simplex_eval(&out, &p) == ATS_STATUS_OK ? out.rho_out : 1;
        }
        for (int l = 0; l <= L; l++) {
            ats_record_clear(&rec);
            ats_record_int(&rec, "n", n);
            ats_record_csv_format(&rec, "%lld");
            ats_record_double(&rec, "gamma", gamma);
            ats_record_csv_format(&rec, "%.17g");
            ats_record_int(&rec, "layer", l);
            ats_record_csv_format(&rec, "%lld");
            ats_record_double(&rec, "rho", r[l]);
            ats_record_csv_format(&rec, "%.17g");
            int rc = add_row(s, &rec);
            if (rc != ATS_STATUS_OK)
                return rc;
        }
    }
    for (int l = 0; l <= L; l++)
        layer[l] = l;
    for (int k = 0; k < NG; k++) {
        const char *label = figure_printf(g, "gamma = %.2g gamma_c", frac[k]);
        NEED(label);
        ser[k] = (struct ats_plot_series){layer, rho + k * (L + 1), NULL, L + 1, label, 0, k};
    }
    struct ats_figure *f = &g->f;
    f->series = ser;
    f->nseries = NG;
    f->axes = ats_plot_axes_default();
    NEED(f->axes.title =
             figure_printf(g, "simplex layers iterated: rank collapse, n = %lld, rho_0 = %g",
                           (long long)n, rho0));
    f->axes.xlabel = "layer";
    f->axes.ylabel = "rho (pairwise cosine)";
    return ATS_STATUS_OK;
}

// ----------------------------------------------------------------------------
// The run

static int build(struct ats_run *run, struct state *s, const struct step *st) {
    switch (st->kind) {
    case K_SIMPLEX_MAP:
        return fig_simplex_map(run, s, st->arg);
    case K_SHARPENING:
        return simplex_figure(run, s, "simplex_sharpening", "1e2,1e3,1e4,1e6,1e9,1e12", NULL, "0.5",
                              NULL, "0:6:121", "a_self");
    case K_RESIDUAL:
        return simplex_figure(run, s, "simplex_residual", "1024", NULL, "0.5", "0,0.25,0.5,1",
                              "0:6:61", "rho_out");
    case K_POLICIES:
        return fig_policies(run, s);
    case K_PHASE:
        return fig_phase(run, s, st->arg);
    case K_P1_SIMPLEX:
        return fig_p1_simplex(run, s, st->arg);
    case K_DEPTH:
        return fig_depth(s);
    case K_REGIME_W: {
        int rc = regime_compute(run, s, st->arg);
        return rc == ATS_STATUS_OK ? regime_figure(s, 0) : rc;
    }
    case K_REGIME_H:
        return regime_figure(s, 1);
    case K_ORDERED:
        return fig_ordered(run, s, st->arg);
    case K_FLUCTUATION:
        return fig_fluctuation(run, s);
    case K_BIAS:
        return fig_bias(run, s);
    case K_HEAT:
        return fig_heat(run, s);
    }
    ATS_ERROR(ATS_STATUS_EINVAL, "reproduce: unknown step %d", (int)st->kind);
}

// One figure per call; the one handed out before is freed first (with its sub-run).
static int next_figure(struct ats_run *run, void *state, const struct ats_figure **out) {
    struct state *s = state;
    release(s);
    *out = NULL;
    if (s->cur >= s->nsteps) {
        regime_clear(s);
        return ATS_STATUS_OK;
    }
    int rc = run_check_cancel(run);
    if (rc != ATS_STATUS_OK)
        return rc;
    const struct step *st = &s->steps[s->cur];
    if (st->note)
        run_note(run, "%s", st->note);
    run->done = s->cur;
    rc = build(run, s, st);
    if (rc != ATS_STATUS_OK) {
        release(s);
        return rc;
    }
    s->cur++;
    run->done = s->cur;
    *out = &s->fig->f;
    return ATS_STATUS_OK;
}

static const struct run_ops ops = {NULL, next_figure, state_free};

static void add_step(struct state *s, enum kind kind, int arg, const char *note) {
    ATS_ASSERT(s->nsteps < MAX_STEPS);
    s->steps[s->nsteps++] = (struct step){kind, arg, note};
}

static int run_alloc(struct ats_run **out, const void *spec_) {
    const struct ats_reproduce_spec *sp = spec_;
    int rc = command_check_spec(&command_reproduce, sp);
    if (rc != ATS_STATUS_OK)
        return rc;
    if (sp->outdir && !sp->outdir[0])
        ATS_ERROR(ATS_STATUS_EARG, "--outdir: empty directory name");
    if (!sp->target)
        ATS_ERROR(ATS_STATUS_EARG, "name one target: paper1, paper2 or all");
    int all = strcmp(sp->target, "all") == 0, paper1 = strcmp(sp->target, "paper1") == 0;
    if (!all && !paper1 && strcmp(sp->target, "paper2") != 0)
        ATS_ERROR(ATS_STATUS_EARG, "unknown target '%s' (paper1, paper2 or all)", sp->target);
    struct state *s = ats_malloc(sizeof *s);
    if (!s)
        ATS_ERROR(ATS_STATUS_ENOMEM, "no memory for a run");
    memset(s, 0, sizeof *s);
    s->quick = sp->quick != 0;
    s->seed = isnan(sp->seed) ? 1 : (uint64_t)sp->seed;
    s->threads = spec_threads(sp->threads);
    if (all) { // the exact simplex maps and the policies, through their own runs
        add_step(s, K_SIMPLEX_MAP, 0, NULL);
        add_step(s, K_SIMPLEX_MAP, 1, NULL);
        add_step(s, K_SHARPENING, 0, NULL);
        add_step(s, K_RESIDUAL, 0, NULL);
        add_step(s, K_POLICIES, 0, NULL);
    }
    if (all || paper1) {
        for (int i = 0; i < 6; i++)
            add_step(s, K_PHASE, i,
                     i          ? NULL
                     : s->quick ? "paper 1 (arXiv 2510.05554), quick"
                                : "paper 1 (arXiv 2510.05554)");
        add_step(s, K_P1_SIMPLEX, 0, NULL);
        add_step(s, K_P1_SIMPLEX, 1, NULL);
        add_step(s, K_DEPTH, 0, NULL);
    }
    if (!paper1) {
        for (int id = 0; id < 3; id++) {
            add_step(s, K_REGIME_W, id,
                     id         ? NULL
                     : s->quick ? "paper 2 (arXiv 2605.08505), quick"
                                : "paper 2 (arXiv 2605.08505)");
            add_step(s, K_REGIME_H, id, NULL);
        }
        add_step(s, K_ORDERED, 0, NULL);
        add_step(s, K_ORDERED, 1, NULL);
        add_step(s, K_FLUCTUATION, 0, NULL);
        add_step(s, K_BIAS, 0, NULL);
        add_step(s, K_HEAT, 0, NULL);
    }
    return run_new(out, &ops, s, s->nsteps);
}

const struct ats_command command_reproduce = {
    "reproduce",
    "Usage: attnscale reproduce paper1|paper2|all [--quick] [--outdir DIR]\n",
    "paper1: the figures of THEORY.md 2.11 for arXiv 2510.05554 (pre-LN self-attention,\n"
    "almost-simplex tokens, alpha = 0), each a heat map over (rho, gamma) with the dashed\n"
    "critical curve gamma = 1/(1-rho):\n"
    "  paper1_fig1_lambda_d{512,32,2}  Figure 1: lambda, a sharp transition on the curve at\n"
    "                        d = 512, a smeared band at d = 32, a middle phase at d = 2\n"
    "  paper1_fig2_eta_d{512,32,2}     Figure 2: eta (Hutchinson, 16 Rademacher probes)\n"
    "  paper1_simplex_{lambda,eta}     the exact simplex on the same grid (closed forms)\n"
    "  paper1_depth           rho over 60 iterated simplex layers (rank collapse, 2.9)\n"
    "Grid: n = 1024, rho 0.02..0.98 step 0.02, gamma 0..10 step 0.1, 4 draws per point\n"
    "(hours on 2 cores); --quick: n = 256, rho step 0.04, gamma step 0.2, 1 draw (minutes).\n"
    "\n"
    "paper2: the figures of THEORY.md 3.7 for arXiv 2605.08505 (one query, n keys on the\n"
    "sphere) as PNG with a CSV of the plotted numbers beside each:\n"
    "  paper2_regime_{w1,entropy}_d{3,4,6}  E[w1] and E[H] against tau' = beta/beta* for several\n"
    "                        n, collapsing onto the critical limit (dashed)\n"
    "  paper2_ordered_tau{1,5}   histograms of w_(1), w_(2), w_(3) at n keys against the\n"
    "                        Poisson-point-process law (dashed), d = 3\n"
    "  paper2_fluctuation_d3  sqrt(n) P_perp y against its Gaussian law, beta = 10, 40, 100\n"
    "  paper2_bias            beta (1 - <y,q>) against beta with the limit (d-1)/2, d = 3, 4\n"
    "  paper2_heat            a von Mises-Fisher cloud through the attention map: the variance\n"
    "                        drop against 2/beta (backward heat equation, THEORY.md 3.6)\n"
    "At least 10^3 trials per point by default; --quick uses fewer trials and smaller n (a few\n"
    "minutes on 2 cores). The parameters are this project's choices (THEORY.md 3.7 [C]).\n"
    "\n"
    "all: paper1 and paper2, plus the exact-simplex maps at n = 1024 and the scaling policies.\n",
    "Files: every figure as NAME.png with NAME.csv beside it in --outdir (the plotted numbers,\n"
    "a header row first).\n"
    "\n"
    "Example:\n"
    "  attnscale reproduce paper2 --quick --outdir out\n",
    options,
    (int64_t)(sizeof options / sizeof options[0]),
    sizeof(struct ats_reproduce_spec),
    spec_default,
    run_alloc,
    1,
};
