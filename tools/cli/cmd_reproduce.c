/*
 * cmd_reproduce.c: `attnscale reproduce paper1|paper2|all [--quick] [--outdir DIR]`: the
 * figures of THEORY.md 2.11 (paper 1's Figures 1-2 through `attnscale phase`, with the exact
 * simplex and depth panels) and 3.7 (paper 2's claims), each as PNG with its CSV beside it;
 * the papers' own grids are unknown, so the grids are the project's choices [C]. `all` adds
 * the exact simplex maps and the scaling policies of `make run`.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static const char reproduce_help[] =
    "Usage: attnscale reproduce paper1|paper2|all [--quick] [--outdir DIR]\n"
    "\n"
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
    "all: paper1 and paper2, plus the exact-simplex maps at n = 1024 and the scaling policies.\n"
    "\n"
    "Options:\n"
    "  --quick         fewer trials and smaller n\n"
    "  --outdir DIR    where the files go (default out; created if missing)\n"
    "\n";

enum { OPT_QUICK = CLI_OPT_FIRST_COMMAND_OPTION, OPT_OUTDIR };

struct ctx {
    struct cli *c;
    const char *outdir;
    int quick;
};

static FILE *open_csv(const struct ctx *x, const char *name, const char *header) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.csv", x->outdir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        cli_fail(x->c, "cannot write '%s': %s", path, strerror(errno));
    fprintf(f, "%s\n", header);
    return f;
}

static void close_csv(const struct ctx *x, FILE *f, const char *name) {
    if (fclose(f) != 0)
        cli_fail(x->c, "writing %s/%s.csv failed", x->outdir, name);
}

static void plot_lines(const struct ctx *x, const char *name, const struct ats_plot_axes *ax,
                       const struct ats_plot_series *s, int64_t ns) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.png", x->outdir, name);
    if (ats_plot_lines(path, ax, s, ns) != ATS_STATUS_OK)
        cli_fail(x->c, "drawing %s: %s", path, cli_last_error());
    cli_msg(x->c, 2, "wrote %s and %s.csv", path, name);
}

static struct ats_query_trial *run_trials(const struct ctx *x, int64_t d, double n, double beta,
                                          enum ats_sampler sampler, int64_t trials, int topk) {
    struct ats_query_params p = ats_query_params_default();
    p.d = d;
    p.n = n;
    p.beta = beta;
    p.sampler = sampler;
    p.topk = topk;
    p.seed = x->c->seed;
    p.threads = x->c->threads;
    struct ats_query_trial *t = malloc((size_t)trials * sizeof *t);
    if (!t)
        cli_fail(x->c, "out of memory");
    int rc = ats_query_run(t, &p, 0, trials);
    if (rc == ATS_STATUS_ERANGE && sampler == ATS_SAMPLER_PPP) {
        // Large d at small tau' needs more points than the sampler allows: no limit point.
        cli_msg(x->c, 2, "note: no critical-limit sample at d = %lld, tau' = %g (%s)",
                (long long)d, beta, cli_last_error());
        free(t);
        return NULL;
    }
    if (rc != ATS_STATUS_OK)
        cli_fail(x->c, "query d = %lld n = %g beta = %g: %s", (long long)d, n, beta,
                 cli_last_error());
    return t;
}

// ---------------------------------------------------------------------------
// Figure 1: E[w1] and E[H] against tau' for several n, and the critical limit.

static void fig_regime(const struct ctx *x) {
    const int64_t ds[3] = {3, 4, 6};
    const double ns_full[4] = {1e3, 1e4, 1e5, 1e6}, ns_quick[3] = {1e3, 1e4, 1e5};
    const double *ns = x->quick ? ns_quick : ns_full;
    int nn = x->quick ? 3 : 4, ntau = x->quick ? 9 : 17;
    int64_t trials = x->quick ? 200 : 1000, ppp_trials = x->quick ? 500 : 4000;
    for (int id = 0; id < 3; id++) {
        int64_t d = ds[id];
        char name_w[64], name_h[64];
        snprintf(name_w, sizeof name_w, "paper2_regime_w1_d%lld", (long long)d);
        snprintf(name_h, sizeof name_h, "paper2_regime_entropy_d%lld", (long long)d);
        // Series 0..nn-1: finite n (exact sampler); nn: PPP limit (w1 exact integral, H by MC).
        double *tau = malloc(sizeof(double) * (size_t)ntau);
        double *w = malloc(sizeof(double) * (size_t)(ntau * (nn + 1)));
        double *we = malloc(sizeof(double) * (size_t)(ntau * (nn + 1)));
        double *h = malloc(sizeof(double) * (size_t)(ntau * (nn + 1)));
        double *he = malloc(sizeof(double) * (size_t)(ntau * (nn + 1)));
        if (!tau || !w || !we || !h || !he)
            cli_fail(x->c, "out of memory");
        for (int it = 0; it < ntau; it++)
            tau[it] = pow(10, -2 + 4.0 * it / (ntau - 1));
        for (int in = 0; in <= nn; in++) {
            for (int it = 0; it < ntau; it++) {
                int k = in * ntau + it;
                struct ats_query_trial *t;
                if (in < nn) {
                    double beta = tau[it] * ats_sphere_beta_star(d, ns[in]);
                    t = run_trials(x, d, ns[in], beta, ATS_SAMPLER_EXACT, trials, 0);
                    cli_mean_se(&w[k], &we[k], &t[0].w1, trials, sizeof *t);
                    cli_mean_se(&h[k], &he[k], &t[0].entropy, trials, sizeof *t);
                } else {
                    // The PPP needs about (56/tau')^((d-1)/2) points per sample to reach its
                    // 1e-12 tail (weights exp(-(tau'/2) Gamma^(2/(d-1))) down to e^-28): the
                    // limit's entropy is sampled only where that stays below 2e5 points.
                    double points = pow(56 / tau[it], 0.5 * (double)(d - 1));
                    t = points <= 2e5
                            ? run_trials(x, d, 1, tau[it], ATS_SAMPLER_PPP, ppp_trials, 0)
                            : NULL;
                    double sw2;
                    if (ats_ppp_expect(&w[k], &sw2, d, tau[it]) != ATS_STATUS_OK)
                        w[k] = NAN; // outside the quadrature's range: a gap in the curve
                    we[k] = 0;
                    h[k] = he[k] = NAN;
                    if (t)
                        cli_mean_se(&h[k], &he[k], &t[0].entropy, ppp_trials, sizeof *t);
                }
                free(t);
            }
        }
        // Each figure's CSV: the statistic it draws, per n (inf: the critical limit).
        for (int pass = 0; pass < 2; pass++) {
            const char *name = pass == 0 ? name_w : name_h;
            const double *y = pass == 0 ? w : h, *e = pass == 0 ? we : he;
            FILE *f = open_csv(x, name, pass == 0 ? "d,n,tau_prime,w1,w1_se,source"
                                                  : "d,n,tau_prime,entropy,entropy_se,source");
            for (int in = 0; in <= nn; in++)
                for (int it = 0; it < ntau; it++)
                    fprintf(f, "%lld,%.17g,%.17g,%.17g,%.17g,%s\n", (long long)d,
                            in < nn ? ns[in] : HUGE_VAL, tau[it], y[in * ntau + it],
                            e[in * ntau + it],
                            in < nn ? "exact sampler"
                                    : pass == 0 ? "critical limit (quadrature)"
                                                : "critical limit (ppp sampler)");
            close_csv(x, f, name);
        }

        struct ats_plot_series s[5];
        char labels[5][32];
        for (int pass = 0; pass < 2; pass++) {
            for (int in = 0; in <= nn; in++) {
                if (in < nn)
                    snprintf(labels[in], sizeof labels[in], "n = %.0e", ns[in]);
                else
                    snprintf(labels[in], sizeof labels[in], "n -> inf (critical limit)");
                double *y = pass == 0 ? w : h, *e = pass == 0 ? we : he;
                s[in] = (struct ats_plot_series){tau, y + in * ntau, e + in * ntau, ntau,
                                                 labels[in], in == nn, in < nn ? in : -1};
            }
            struct ats_plot_axes ax = ats_plot_axes_default();
            char title[128];
            snprintf(title, sizeof title, "d = %lld: %s against tau' = beta/beta*", (long long)d,
                     pass == 0 ? "E[w1]" : "E[entropy]");
            ax.title = title;
            ax.xlabel = "tau' = beta/beta*";
            ax.ylabel = pass == 0 ? "E[largest weight]" : "E[entropy] (nats)";
            ax.xlog = 1;
            plot_lines(x, pass == 0 ? name_w : name_h, &ax, s, nn + 1);
        }
        free(tau);
        free(w);
        free(we);
        free(h);
        free(he);
    }
}

// ---------------------------------------------------------------------------
// Figure 2: ordered weights at tau' = 1 and 5, n keys against the PPP law (d = 3).

enum { BINS = 40 };

static void histogram(double *dens, const struct ats_query_trial *t, int64_t m, int k) {
    for (int b = 0; b < BINS; b++)
        dens[b] = 0;
    for (int64_t i = 0; i < m; i++) {
        int b = (int)floor(t[i].top[k] * BINS);
        if (b >= 0 && b < BINS)
            dens[b] += (double)BINS / (double)m;
        else if (b == BINS)
            dens[BINS - 1] += (double)BINS / (double)m;
    }
}

static void fig_ordered(const struct ctx *x) {
    const double taus[2] = {1, 5};
    double n = x->quick ? 1e4 : 1e5;
    int64_t trials = x->quick ? 2000 : 10000, ppp = x->quick ? 8000 : 40000;
    for (int i = 0; i < 2; i++) {
        char name[64];
        snprintf(name, sizeof name, "paper2_ordered_tau%g", taus[i]);
        double beta = taus[i] * ats_sphere_beta_star(3, n);
        struct ats_query_trial *te = run_trials(x, 3, n, beta, ATS_SAMPLER_EXACT, trials, 3);
        struct ats_query_trial *tp = run_trials(x, 3, 1, taus[i], ATS_SAMPLER_PPP, ppp, 3);
        double centre[BINS], de[3][BINS], dp[3][BINS];
        for (int b = 0; b < BINS; b++)
            centre[b] = (b + 0.5) / BINS;
        FILE *f = open_csv(x, name, "tau_prime,order,bin_lo,bin_hi,density_n_keys,density_ppp");
        struct ats_plot_series s[6];
        char labels[6][48];
        for (int k = 0; k < 3; k++) {
            histogram(de[k], te, trials, k);
            histogram(dp[k], tp, ppp, k);
            for (int b = 0; b < BINS; b++)
                fprintf(f, "%g,%d,%.17g,%.17g,%.17g,%.17g\n", taus[i], k + 1, (double)b / BINS,
                        (double)(b + 1) / BINS, de[k][b], dp[k][b]);
            snprintf(labels[2 * k], sizeof labels[0], "w_(%d), n = %.0e", k + 1, n);
            snprintf(labels[2 * k + 1], sizeof labels[0], "w_(%d), limit (ppp)", k + 1);
            s[2 * k] = (struct ats_plot_series){centre, de[k], NULL, BINS, labels[2 * k], 0, k};
            s[2 * k + 1] = (struct ats_plot_series){centre, dp[k], NULL, BINS, labels[2 * k + 1],
                                                    1, k};
        }
        close_csv(x, f, name);
        struct ats_plot_axes ax = ats_plot_axes_default();
        char title[96];
        snprintf(title, sizeof title, "d = 3, tau' = %g: ordered weights", taus[i]);
        ax.title = title;
        ax.xlabel = "weight";
        ax.ylabel = "density";
        ax.xmin = 0;
        ax.xmax = 1;
        plot_lines(x, name, &ax, s, 6);
        free(te);
        free(tp);
    }
}

// ---------------------------------------------------------------------------
// Figure 3: subcritical fluctuations and bias.

static void fig_subcritical(const struct ctx *x) {
    double n = x->quick ? 2e4 : 1e5;
    int64_t trials = x->quick ? 400 : 2000;
    const double betas[3] = {10, 40, 100};
    enum { HB = 30 };
    double cx[3][HB], dens[3][HB], gauss[3][HB]; // bin centres, densities, per beta
    const char *name = "paper2_fluctuation_d3";
    FILE *f = open_csv(x, name, "beta,bin_centre,density,gaussian_density,sigma_perp2");
    struct ats_plot_series s[6];
    char labels[6][48];
    // sqrt(n) (P_perp y)_1 at d = 3 (beta^(-(d-3)/4) = 1) against N(0, sigma_perp^2(beta)).
    for (int i = 0; i < 3; i++) {
        struct ats_query_trial *t = run_trials(x, 3, n, betas[i], ATS_SAMPLER_EXACT, trials, 0);
        struct ats_sphere_sub sub;
        if (ats_sphere_subcritical(&sub, 3, n, betas[i]) != ATS_STATUS_OK)
            cli_fail(x->c, "subcritical prediction: %s", cli_last_error());
        double sd = sqrt(sub.var_perp), lo = -4 * sd, width = 8 * sd / HB;
        for (int b = 0; b < HB; b++) {
            cx[i][b] = lo + (b + 0.5) * width;
            dens[i][b] = 0;
            gauss[i][b] = exp(-cx[i][b] * cx[i][b] / (2 * sub.var_perp)) /
                          sqrt(2 * 3.14159265358979323846 * sub.var_perp);
        }
        for (int64_t j = 0; j < trials; j++) {
            int b = (int)floor((sqrt(n) * t[j].perp - lo) / width);
            if (b >= 0 && b < HB)
                dens[i][b] += 1 / ((double)trials * width);
        }
        for (int b = 0; b < HB; b++)
            fprintf(f, "%g,%.17g,%.17g,%.17g,%.17g\n", betas[i], cx[i][b], dens[i][b],
                    gauss[i][b], sub.var_perp);
        free(t);
    }
    close_csv(x, f, name);
    // The three betas share one axis: sigma_perp^2 stays near 1/2 at d = 3 (THEORY.md 3.3).
    for (int i = 0; i < 3; i++) {
        snprintf(labels[2 * i], sizeof labels[0], "beta = %g, n = %.0e", betas[i], n);
        snprintf(labels[2 * i + 1], sizeof labels[0], "N(0, sigma_perp^2(%g))", betas[i]);
        s[2 * i] = (struct ats_plot_series){cx[i], dens[i], NULL, HB, labels[2 * i], 0, i};
        s[2 * i + 1] = (struct ats_plot_series){cx[i], gauss[i], NULL, HB, labels[2 * i + 1], 1, i};
    }
    struct ats_plot_axes ax = ats_plot_axes_default();
    ax.title = "d = 3, subcritical: sqrt(n) (P_perp y)_1 is Gaussian";
    ax.xlabel = "sqrt(n) (P_perp y)_1";
    ax.ylabel = "density";
    plot_lines(x, name, &ax, s, 6);

    // Bias: beta (1 - <y,q>) -> (d - 1)/2 for 1 << beta << beta*.
    const double bb[6] = {5, 10, 20, 40, 100, 200};
    const char *bname = "paper2_bias";
    FILE *g = open_csv(x, bname, "d,n,beta,beta_one_minus_cos,se,limit");
    double bias[2][6], bse[2][6], lim[2][6], bx[6];
    for (int id = 0; id < 2; id++) {
        int64_t d = 3 + id;
        for (int i = 0; i < 6; i++) {
            struct ats_query_trial *t = run_trials(x, d, n, bb[i], ATS_SAMPLER_EXACT, trials, 0);
            double m, se;
            cli_mean_se(&m, &se, &t[0].cos_yq, trials, sizeof *t);
            bx[i] = bb[i];
            bias[id][i] = bb[i] * (1 - m);
            bse[id][i] = bb[i] * se;
            lim[id][i] = (double)(d - 1) / 2;
            fprintf(g, "%lld,%.17g,%g,%.17g,%.17g,%g\n", (long long)d, n, bb[i], bias[id][i],
                    bse[id][i], lim[id][i]);
            free(t);
        }
    }
    close_csv(x, g, bname);
    struct ats_plot_series bs[4] = {{bx, bias[0], bse[0], 6, "d = 3", 0, 0},
                                    {bx, lim[0], NULL, 6, "(d - 1)/2 = 1", 1, 0},
                                    {bx, bias[1], bse[1], 6, "d = 4", 0, 1},
                                    {bx, lim[1], NULL, 6, "(d - 1)/2 = 1.5", 1, 1}};
    ax = ats_plot_axes_default();
    ax.title = "subcritical bias: beta (1 - <y,q>) -> (d-1)/2";
    ax.xlabel = "beta";
    ax.ylabel = "beta (1 - <y, q>)";
    ax.xlog = 1;
    plot_lines(x, bname, &ax, bs, 4);
}

// ---------------------------------------------------------------------------
// Figure 4: the backward heat equation (THEORY.md 3.6), d = 3, von Mises-Fisher keys.

// A point of vMF(kappa, e_3) on S^2: w = 1 + log(u + (1 - u) e^{-2 kappa})/kappa.
static void vmf3(double v[3], double kappa, struct ats_rng *r) {
    double u = ats_rng_uniform_pos(r);
    double w = 1 + log(u + (1 - u) * exp(-2 * kappa)) / kappa;
    double phi = 2 * 3.14159265358979323846 * ats_rng_uniform(r), s = sqrt(fmax(0, 1 - w * w));
    v[0] = s * cos(phi);
    v[1] = s * sin(phi);
    v[2] = w;
}

static void fig_heat(const struct ctx *x) {
    const double kappa0 = 50;
    int nb = 7, queries = x->quick ? 4000 : 20000, finite_q = x->quick ? 100 : 400;
    int64_t nkeys = x->quick ? 20000 : 100000;
    const double betas[7] = {200, 500, 1000, 2000, 5000, 10000, 20000};
    const char *name = "paper2_heat";
    FILE *f = open_csv(x, name, "beta,kappa0,var_before,var_after_limit,drop_limit,"
                                "var_after_n_keys,drop_n_keys,n_keys,two_over_beta");
    double drop[7], dropn[7], two[7];
    struct ats_rng r;
    for (int i = 0; i < nb; i++) {
        double beta = betas[i];
        // n = infinity: T/|T| = (beta x + kappa0 mu)/|beta x + kappa0 mu| (A_d cancels).
        double sb = 0, sa = 0;
        ats_rng_init(&r, x->c->seed, 7000000 + (uint64_t)i);
        for (int j = 0; j < queries; j++) {
            double q[3];
            vmf3(q, kappa0, &r);
            double t[3] = {beta * q[0], beta * q[1], beta * q[2] + kappa0};
            double nt = sqrt(t[0] * t[0] + t[1] * t[1] + t[2] * t[2]);
            sb += q[0] * q[0] + q[1] * q[1];
            sa += (t[0] * t[0] + t[1] * t[1]) / (nt * nt);
        }
        double vb = sb / (2.0 * queries), va = sa / (2.0 * queries);
        // n keys from vMF(kappa0): y = sum w_j k_j with w_j ∝ exp(beta <x, k_j>).
        double sfn = 0, sfb = 0;
        double *k = malloc(sizeof(double) * 3 * (size_t)nkeys);
        if (!k)
            cli_fail(x->c, "out of memory");
        for (int j = 0; j < finite_q; j++) {
            double q[3], y[3] = {0, 0, 0}, mx = -HUGE_VAL; // y/|y| needs no normaliser
            vmf3(q, kappa0, &r);
            for (int64_t m = 0; m < nkeys; m++) {
                vmf3(k + 3 * m, kappa0, &r);
                double sdot = q[0] * k[3 * m] + q[1] * k[3 * m + 1] + q[2] * k[3 * m + 2];
                mx = sdot > mx ? sdot : mx;
            }
            for (int64_t m = 0; m < nkeys; m++) {
                const double *km = k + 3 * m;
                double e = exp(beta * (q[0] * km[0] + q[1] * km[1] + q[2] * km[2] - mx));
                y[0] += e * km[0];
                y[1] += e * km[1];
                y[2] += e * km[2];
            }
            double ny = sqrt(y[0] * y[0] + y[1] * y[1] + y[2] * y[2]);
            sfb += q[0] * q[0] + q[1] * q[1];
            sfn += (y[0] * y[0] + y[1] * y[1]) / (ny * ny);
        }
        free(k);
        double vfb = sfb / (2.0 * finite_q), vfa = sfn / (2.0 * finite_q);
        drop[i] = vb - va;
        // With n keys only about n kappa0/(2 beta) fall inside the 1/sqrt(beta) neighbourhood
        // that sets y: below ~10 of them the finite-n drop is noise, so it is not drawn.
        dropn[i] = (double)nkeys * kappa0 / (2 * beta) >= 200 ? vfb - vfa : NAN;
        two[i] = 2 / beta;
        fprintf(f, "%g,%g,%.17g,%.17g,%.17g,%.17g,%.17g,%lld,%.17g\n", beta, kappa0, vb, va,
                drop[i], vfa, dropn[i], (long long)nkeys, two[i]);
    }
    close_csv(x, f, name);
    char lab[64];
    snprintf(lab, sizeof lab, "%lld keys, %d queries", (long long)nkeys, finite_q);
    struct ats_plot_series s[3] = {{betas, drop, NULL, nb, "n -> inf (exact map)", 0, 0},
                                   {betas, dropn, NULL, nb, lab, 0, 1},
                                   {betas, two, NULL, nb, "2/beta", 1, -1}};
    struct ats_plot_axes ax = ats_plot_axes_default();
    ax.title = "backward heat flow: vMF(50) queries lose 2/beta of tangent variance";
    ax.xlabel = "beta";
    ax.ylabel = "variance drop per tangent coordinate";
    ax.xlog = 1;
    ax.ylog = 1;
    plot_lines(x, name, &ax, s, 3);
}

// ---------------------------------------------------------------------------
// `all`: the exact simplex maps and the policies, through their own commands.

static void run_command(const struct ctx *x, int (*cmd)(int, char **), const char *const *args,
                        int nargs) {
    char *argv[32];
    for (int i = 0; i < nargs; i++)
        argv[i] = (char *)args[i];
    argv[nargs] = NULL;
    if (cmd(nargs, argv) != 0)
        cli_fail(x->c, "%s failed", args[0]);
}

static void fig_simplex_and_policies(const struct ctx *x) {
    char csv[5][1024], png[5][1024];
    const char *names[5] = {"simplex_lambda_n1024", "simplex_eta_n1024", "simplex_sharpening",
                            "simplex_residual", "policies"};
    for (int i = 0; i < 5; i++) {
        snprintf(csv[i], sizeof csv[i], "%s/%s.csv", x->outdir, names[i]);
        snprintf(png[i], sizeof png[i], "%s/%s.png", x->outdir, names[i]);
    }
    const char *grid[] = {"--n", "1024", "--d", "1025", "--rho", "0.02:0.98:49", "--gamma",
                          "0:10:101"};
    for (int i = 0; i < 2; i++) {
        const char *a[] = {"simplex", grid[0], grid[1], grid[2], grid[3], grid[4], grid[5], grid[6],
                           grid[7], "--metric", i == 0 ? "lambda" : "eta", "--format", "csv",
                           "--output", csv[i], "--plot", png[i], "-q"};
        run_command(x, cmd_simplex, a, (int)(sizeof a / sizeof a[0]));
    }
    const char *sharp[] = {"simplex", "--n", "1e2,1e3,1e4,1e6,1e9,1e12", "--rho", "0.5",
                           "--gamma", "0:6:121", "--metric", "a_self", "--format", "csv",
                           "--output", csv[2], "--plot", png[2], "-q"};
    run_command(x, cmd_simplex, sharp, (int)(sizeof sharp / sizeof sharp[0]));
    const char *res[] = {"simplex", "--n", "1024", "--rho", "0.5", "--alpha", "0,0.25,0.5,1",
                         "--gamma", "0:6:61", "--metric", "rho_out", "--format", "csv",
                         "--output", csv[3], "--plot", png[3], "-q"};
    run_command(x, cmd_simplex, res, (int)(sizeof res / sizeof res[0]));
    const char *pol[] = {"policies", "--policy",
                         "yarn,yarn-dynamic,gpt-oss,deepseek,longrope,qwen-logn,llama4,mistral,"
                         "grok2,inkling,su,critical",
                         "--n", "1e3:1e7:200:log", "--format", "csv", "--output", csv[4], "--plot",
                         png[4], "-q"};
    run_command(x, cmd_policies, pol, (int)(sizeof pol / sizeof pol[0]));
    for (int i = 0; i < 5; i++)
        cli_msg(x->c, 2, "wrote %s and %s.csv", png[i], names[i]);
}

// Rank collapse over depth (THEORY.md 2.9): the simplex layer maps a simplex to a simplex, so
// L layers at the same beta iterate (q, rho) -> (q', rho'); with alpha = 0, q drops out.
static void fig_depth(const struct ctx *x, int64_t n) {
    enum { L = 60, NG = 5 };
    const double rho0 = 0.5, frac[NG] = {0.5, 1, 1.5, 2, 3};
    double layer[L + 1], rho[NG][L + 1];
    const char *name = "paper1_depth";
    FILE *f = open_csv(x, name, "n,gamma,layer,rho");
    for (int g = 0; g < NG; g++) {
        double gamma = frac[g] / (1 - rho0); // frac times the first layer's gamma_c
        rho[g][0] = rho0;
        for (int l = 1; l <= L; l++) {
            struct ats_simplex_params p = ats_simplex_params_default();
            p.n = n;
            p.d = n + 1;
            p.rho = rho[g][l - 1];
            p.scale = ATS_SCALE_GAMMA;
            p.gamma = gamma;
            struct ats_simplex out;
            // Once rho' rounds to 1 the tokens have collapsed: the map stays there.
            rho[g][l] = p.rho < 1 && ats_simplex_eval(&out, &p) == ATS_STATUS_OK ? out.rho_out : 1;
        }
        for (int l = 0; l <= L; l++)
            fprintf(f, "%lld,%.17g,%d,%.17g\n", (long long)n, gamma, l, rho[g][l]);
    }
    close_csv(x, f, name);
    for (int l = 0; l <= L; l++)
        layer[l] = l;
    char labels[NG][48], title[96];
    struct ats_plot_series ser[NG];
    for (int g = 0; g < NG; g++) {
        snprintf(labels[g], sizeof labels[g], "gamma = %.2g gamma_c", frac[g]);
        ser[g] = (struct ats_plot_series){layer, rho[g], NULL, L + 1, labels[g], 0, g};
    }
    snprintf(title, sizeof title, "simplex layers iterated: rank collapse, n = %lld, rho_0 = %g",
             (long long)n, rho0);
    struct ats_plot_axes ax = ats_plot_axes_default();
    ax.title = title;
    ax.xlabel = "layer";
    ax.ylabel = "rho (pairwise cosine)";
    plot_lines(x, name, &ax, ser, NG);
}

// ---------------------------------------------------------------------------
// Paper 1 (THEORY.md 2.11): Figure 1 (lambda) and Figure 2 (eta, Hutchinson) over (rho, gamma)
// for almost-simplex tokens at d = 512, 32, 2, through `attnscale phase`; the exact simplex
// at the same n beside them; and rank collapse over depth (2.9).

static void fig_paper1(const struct ctx *x) {
    const char *n = x->quick ? "256" : "1024", *rho = x->quick ? "0.02:0.98:25" : "0.02:0.98:49";
    const char *gamma = x->quick ? "0:10:51" : "0:10:101", *trials = x->quick ? "1" : "4";
    char seed[32], threads[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)x->c->seed);
    snprintf(threads, sizeof threads, "%d", x->c->threads);
    static const char *const dims[3] = {"512", "32", "2"};
    for (int fig = 0; fig < 2; fig++)
        for (int k = 0; k < 3; k++) {
            char name[64], csv[1024], png[1024];
            snprintf(name, sizeof name, "paper1_fig%d_%s_d%s", fig + 1, fig ? "eta" : "lambda",
                     dims[k]);
            snprintf(csv, sizeof csv, "%s/%s.csv", x->outdir, name);
            snprintf(png, sizeof png, "%s/%s.png", x->outdir, name);
            cli_msg(x->c, 2, "%s (n = %s, %s trial(s) per point)", name, n, trials);
            const char *a[] = {"phase", "--config", "almost-simplex", "--n", n, "--d", dims[k],
                               "--rho", rho, "--gamma", gamma, "--trials", trials, "--metric",
                               fig ? "eta" : "lambda", "--seed", seed, "--format", "csv",
                               "--output", csv, "--plot", png, "--threads", threads};
            int na = (int)(sizeof a / sizeof a[0]);
            run_command(x, cmd_phase, a, x->c->threads ? na : na - 2); // 0: phase's default
            cli_msg(x->c, 2, "wrote %s and %s.csv", png, name);
        }
    for (int fig = 0; fig < 2; fig++) {
        char name[64], csv[1024], png[1024], dd[32];
        snprintf(name, sizeof name, "paper1_simplex_%s", fig ? "eta" : "lambda");
        snprintf(csv, sizeof csv, "%s/%s.csv", x->outdir, name);
        snprintf(png, sizeof png, "%s/%s.png", x->outdir, name);
        snprintf(dd, sizeof dd, "%lld", atoll(n) + 1);
        const char *a[] = {"simplex", "--n", n, "--d", dd, "--rho", rho, "--gamma", gamma,
                           "--metric", fig ? "eta" : "lambda", "--format", "csv", "--output", csv,
                           "--plot", png, "-q"};
        run_command(x, cmd_simplex, a, (int)(sizeof a / sizeof a[0]));
        cli_msg(x->c, 2, "wrote %s and %s.csv", png, name);
    }
    fig_depth(x, atoll(n));
}

int cmd_reproduce(int argc, char **argv) {
    static const struct option options[] = {{"quick", no_argument, NULL, OPT_QUICK},
                                            {"outdir", required_argument, NULL, OPT_OUTDIR},
                                            CLI_COMMON_OPTIONS,
                                            {NULL, 0, NULL, 0}};
    struct cli c;
    cli_init(&c, "reproduce");
    struct ctx x = {&c, "out", 0};
    int opt;
    while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT, options, NULL)) != -1) {
        if (cli_common_option(&c, opt, optarg, reproduce_help))
            continue;
        switch (opt) {
        case OPT_QUICK:
            x.quick = 1;
            break;
        case OPT_OUTDIR:
            if (!optarg[0])
                cli_usage(&c, "--outdir: empty directory name");
            x.outdir = optarg;
            break;
        default:
            cli_bad_option(&c, opt, argv);
        }
    }
    if (c.output)
        cli_usage(&c, "--output does not apply: the figures and their CSV go to --outdir");
    if (optind != argc - 1)
        cli_usage(&c, "name one target: paper1, paper2 or all");
    const char *target = argv[optind];
    int all = strcmp(target, "all") == 0, paper1 = strcmp(target, "paper1") == 0;
    if (!all && !paper1 && strcmp(target, "paper2") != 0)
        cli_usage(&c, "unknown target '%s' (paper1, paper2 or all)", target);
    if (mkdir(x.outdir, 0777) != 0 && errno != EEXIST)
        cli_fail(&c, "cannot create '%s': %s", x.outdir, strerror(errno));
    if (all) // the commands run with their own state and write only to files
        fig_simplex_and_policies(&x);
    if (all || paper1) {
        cli_msg(&c, 2, "paper 1 (arXiv 2510.05554)%s", x.quick ? ", quick" : "");
        fig_paper1(&x);
    }
    if (paper1)
        return CLI_EXIT_OK;
    cli_msg(&c, 2, "paper 2 (arXiv 2605.08505)%s", x.quick ? ", quick" : "");
    fig_regime(&x);
    fig_ordered(&x);
    fig_subcritical(&x);
    fig_heat(&x);
    return CLI_EXIT_OK;
}
