/*
 * cmd_simplex.c: `attnscale simplex`, the exact finite-n closed forms of the simplex layer
 * (THEORY.md 2.2-2.6), one record per combination of the option values.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char simplex_help[] =
    "Usage: attnscale simplex --n N --rho R (--gamma G | --beta B) [options]\n"
    "\n"
    "Exact closed forms for pre-LN self-attention on n simplex tokens (|x_i|^2 = q, pairwise\n"
    "cosine rho) at inverse temperature beta = gamma log n with residual alpha (THEORY.md 2.2-2.6;\n"
    "arXiv 2510.05554). Exact for every n up to 2^53; evaluated in log space.\n"
    "\n"
    "Options:\n"
    "  --n N          tokens, an integer >= 2 (required; 1e12 is accepted)\n"
    "  --rho R        pairwise cosine, 0 <= rho < 1 (required)\n"
    "  --gamma G      beta = G log n, G >= 0 (one of --gamma, --beta is required)\n"
    "  --beta B       inverse temperature, B >= 0\n"
    "  --alpha A      residual weight, A >= 0 (default 0)\n"
    "  --q Q          squared token norm, Q > 0 (default 1)\n"
    "  --d D          dimension, an integer >= 2 (default n); enters eta only\n"
    "\n"
    "Figure:\n"
    "  --plot FILE    draw --metric (png, svg or pdf by extension): a heat map over (rho, gamma)\n"
    "                 with the dashed critical curve gamma = 1/(1-rho) when --rho and --gamma\n"
    "                 (or --beta) both have several values and the other options one; else a\n"
    "                 line against gamma (or beta), one line per combination of the others\n"
    "  --metric M     lambda (default), rho_out, a_self or eta\n"
    "\n"
    "The closed forms are exact and cheap: --seed and --threads are accepted and have no effect.\n"
    "\n"
    "Record keys: n d rho alpha q gamma beta, then gamma_c (= 1/(1-rho)), kappa (= gamma (1-rho)),\n"
    "regime (subcritical | critical | supercritical; critical when |kappa-1| <= 1e-9),\n"
    "a_self (A_ii), rho_out (rho'), lambda (= (1-rho')/(1-rho)), eta (= ||J||_F^2/(n d)),\n"
    "rho_out_limit (n -> inf at the same gamma, alpha, q) and eta_limit (n, d -> inf).\n"
    "\n"
    "Example:\n"
    "  attnscale simplex --n 1024 --rho 0.5 --gamma 0:4:41\n"
    "\n";

enum {
    OPT_N = CLI_OPT_FIRST_COMMAND_OPTION,
    OPT_D,
    OPT_RHO,
    OPT_GAMMA,
    OPT_BETA,
    OPT_ALPHA,
    OPT_Q,
    OPT_PLOT,
    OPT_METRIC,
};

static const char *const metrics[] = {"lambda", "rho_out", "a_self", "eta"};

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

// The axes of the record grid, outermost first; gamma (or beta) varies fastest.
enum { AX_N, AX_D, AX_RHO, AX_ALPHA, AX_Q, AX_SCALE, NAXES };

int cmd_simplex(int argc, char **argv) {
    static const struct option options[] = {
        {"n", required_argument, NULL, OPT_N},         {"d", required_argument, NULL, OPT_D},
        {"rho", required_argument, NULL, OPT_RHO},     {"gamma", required_argument, NULL, OPT_GAMMA},
        {"beta", required_argument, NULL, OPT_BETA},   {"alpha", required_argument, NULL, OPT_ALPHA},
        {"q", required_argument, NULL, OPT_Q},         {"plot", required_argument, NULL, OPT_PLOT},
        {"metric", required_argument, NULL, OPT_METRIC}, CLI_COMMON_OPTIONS,
        {NULL, 0, NULL, 0}};
    const struct ats_domain dom_n = {2, (double)ATS_INT_EXACT_MAX, 0, 0, 1};
    const struct ats_domain dom_d = dom_n;
    const struct ats_domain dom_rho = {0, 1, 0, 1, 0};
    const struct ats_domain dom_nonneg = {0, HUGE_VAL, 0, 0, 0};
    const struct ats_domain dom_pos = {0, HUGE_VAL, 1, 0, 0};

    struct cli c;
    cli_init(&c, "simplex");
    struct ats_values n = {0}, d = {0}, rho = {0}, scale = {0}, alpha = {0}, q = {0};
    enum ats_scale kind = ATS_SCALE_GAMMA;
    int have_scale = 0, metric = 0, have_metric = 0;
    const char *plot = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT, options, NULL)) != -1) {
        if (cli_common_option(&c, opt, optarg, simplex_help))
            continue;
        // A repeated option replaces its earlier value, as getopt users expect.
        switch (opt) {
        case OPT_N:
            ats_values_clear(&n);
            cli_values(&c, &n, "n", optarg, &dom_n);
            break;
        case OPT_D:
            ats_values_clear(&d);
            cli_values(&c, &d, "d", optarg, &dom_d);
            break;
        case OPT_RHO:
            ats_values_clear(&rho);
            cli_values(&c, &rho, "rho", optarg, &dom_rho);
            break;
        case OPT_GAMMA:
        case OPT_BETA:
            cli_scale_option(&c, &scale, &kind, &have_scale,
                             opt == OPT_GAMMA ? ATS_SCALE_GAMMA : ATS_SCALE_BETA, optarg);
            break;
        case OPT_ALPHA:
            ats_values_clear(&alpha);
            cli_values(&c, &alpha, "alpha", optarg, &dom_nonneg);
            break;
        case OPT_Q:
            ats_values_clear(&q);
            cli_values(&c, &q, "q", optarg, &dom_pos);
            break;
        case OPT_PLOT:
            plot = optarg;
            break;
        case OPT_METRIC: {
            int found = -1;
            for (int i = 0; i < 4; i++)
                if (strcmp(optarg, metrics[i]) == 0)
                    found = i;
            if (found < 0)
                cli_usage(&c, "--metric: '%s' is not lambda, rho_out, a_self or eta", optarg);
            metric = found;
            have_metric = 1;
            break;
        }
        default:
            cli_bad_option(&c, opt, argv);
        }
    }
    if (!n.count)
        cli_usage(&c, "--n is required (an integer >= 2)");
    if (!rho.count)
        cli_usage(&c, "--rho is required (0 <= rho < 1)");
    if (!have_scale)
        cli_usage(&c, "one of --gamma and --beta is required (>= 0)");
    if (have_metric && !plot)
        cli_usage(&c, "--metric chooses what --plot draws: give --plot FILE too");
    // Defaults go through the same parser, so every list is owned and freed alike.
    if (!alpha.count)
        cli_values(&c, &alpha, "alpha", "0", &dom_nonneg);
    if (!q.count)
        cli_values(&c, &q, "q", "1", &dom_pos);
    const struct ats_domain dom_same = {0, 0, 0, 0, 1};
    if (!d.count) // --d absent: the value 0 stands for d = n
        cli_values(&c, &d, "d", "0", &dom_same);
    // The option domains match the library's, so the only failure left is beta = gamma log n
    // overflowing: check it before any record is written.
    cli_check_gamma(&c, kind, &scale, &n);
    const struct ats_values *axes[NAXES] = {&n, &d, &rho, &alpha, &q, &scale};
    static const char *const names[NAXES] = {"n", "d", "rho", "alpha", "q", "gamma"};
    const struct cli_grid grid = {axes, names, NAXES, AX_RHO, AX_N, kind};
    int64_t idx[NAXES] = {0}, records = 0;
    double *z = NULL;
    if (plot) {
        int64_t total = cli_grid_plot_check(&c, plot, &grid);
        z = malloc((size_t)total * sizeof *z);
        if (!z)
            cli_fail(&c, "--plot: out of memory for %lld values", (long long)total);
    }
    cli_begin(&c, argc, argv);
    int warned = 0;
    do {
        struct ats_simplex_params p = ats_simplex_params_default();
        p.n = (int64_t)n.v[idx[0]];
        p.d = d.v[idx[1]] > 0 ? (int64_t)d.v[idx[1]] : p.n;
        p.rho = rho.v[idx[2]];
        p.alpha = alpha.v[idx[3]];
        p.q = q.v[idx[4]];
        p.scale = kind;
        if (kind == ATS_SCALE_GAMMA)
            p.gamma = scale.v[idx[5]];
        else
            p.beta = scale.v[idx[5]];
        if (p.d < p.n && !warned) {
            cli_msg(&c, 2,
                    "note: d = %lld < n = %lld: an exact simplex of n tokens needs d >= n; "
                    "eta is the formula's value",
                    (long long)p.d, (long long)p.n);
            warned = 1;
        }
        struct ats_simplex s;
        int rc = ats_simplex_eval(&s, &p);
        if (rc == ATS_STATUS_ERANGE || rc == ATS_STATUS_EDOM)
            cli_usage(&c, "%s", cli_last_error());
        if (rc != ATS_STATUS_OK)
            cli_fail(&c, "%s: %s", ats_strerror(rc), cli_last_error());
        struct ats_writer *w = c.writer;
        ats_writer_int(w, "n", p.n);
        ats_writer_int(w, "d", p.d);
        ats_writer_double(w, "rho", p.rho);
        ats_writer_double(w, "alpha", p.alpha);
        ats_writer_double(w, "q", p.q);
        ats_writer_double(w, "gamma", s.gamma);
        ats_writer_double(w, "beta", s.beta);
        ats_writer_double(w, "gamma_c", s.gamma_c);
        ats_writer_double(w, "kappa", s.kappa);
        ats_writer_string(w, "regime", ats_regime_name(s.regime));
        ats_writer_double(w, "a_self", s.a_self);
        ats_writer_double(w, "rho_out", s.rho_out);
        ats_writer_double(w, "lambda", s.lambda);
        ats_writer_double(w, "eta", s.eta);
        ats_writer_double(w, "rho_out_limit", s.rho_out_limit);
        ats_writer_double(w, "eta_limit", s.eta_limit);
        cli_end_record(&c);
        if (z)
            z[records] = metric_value(&s, metric);
        records++;
    } while (cli_grid_next(idx, axes, NAXES));
    if (plot) {
        char title[160];
        if (rho.count > 1)
            snprintf(title, sizeof title, "exact simplex: %s, n = %.0f, alpha = %g",
                     metrics[metric], n.v[0], alpha.v[0]);
        else
            snprintf(title, sizeof title, "exact simplex: %s, rho = %g", metrics[metric], rho.v[0]);
        // lambda and a_self live in [0, 1]: a fixed colour range makes maps comparable.
        double zr = metric == 0 || metric == 2 ? 1 : NAN;
        cli_grid_plot(&c, plot, &grid, title, metrics[metric], zr == 1 ? 0 : NAN, zr, z, NULL);
    }
    free(z);
    struct ats_values *owned[] = {&n, &d, &rho, &alpha, &q, &scale};
    for (int a = 0; a < NAXES; a++)
        ats_values_clear(owned[a]);
    return cli_finish(&c);
}
