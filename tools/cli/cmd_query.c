/*
 * cmd_query.c: `attnscale query`, one query against n keys uniform on S^(d-1) (arXiv
 * 2605.08505; THEORY.md section 3): Monte Carlo means over trials with standard errors, and
 * with --theory the predictions beside them.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char query_help[] =
    "Usage: attnscale query --d D --n N (--beta B | --tau-prime T) [options]\n"
    "\n"
    "One query q against n keys i.i.d. uniform on the sphere S^(d-1), weights proportional to\n"
    "exp(beta <q, k>) (THEORY.md section 3; arXiv 2605.08505). The critical scale is\n"
    "beta* = (kappa_d n)^(2/(d-1)); tau' = beta/beta* is below 1 subcritical (local averaging),\n"
    "of order 1 critical (a few nearest keys share the mass) and large supercritical (the\n"
    "nearest key wins). Keys are drawn exactly through the Beta law of <q, k> and streamed in\n"
    "chunks, so n can reach 10^10 in memory O(chunk).\n"
    "\n"
    "Options:\n"
    "  --d D            dimension, an integer >= 2\n"
    "  --n N            keys, an integer >= 1 (the ppp sampler needs it only with --beta)\n"
    "  --beta B         inverse temperature >= 0\n"
    "  --tau-prime T    beta/beta* > 0 (instead of --beta)\n"
    "  --trials T       independent trials (default 100)\n"
    "  --sampler S      exact (default) or ppp: the n -> infinity critical limit (Poisson point\n"
    "                   process), at a cost independent of n\n"
    "  --theory         add the predictions: *_theory keys (see below)\n"
    "\n"
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
    "  attnscale query --d 3 --n 1e5 --tau-prime 0.1,1,10 --trials 1000 --theory\n"
    "\n";

enum {
    OPT_D = CLI_OPT_FIRST_COMMAND_OPTION,
    OPT_N,
    OPT_BETA,
    OPT_TAU,
    OPT_TRIALS,
    OPT_SAMPLER,
    OPT_THEORY,
};

// The variance over trials of the perp field and its standard error (from the fourth central
// moment).
static void var_se(double *var, double *se, const struct ats_query_trial *t, int64_t m) {
    double mean, dummy;
    cli_mean_se(&mean, &dummy, &t[0].perp, m, sizeof *t);
    double m2 = 0, m4 = 0;
    for (int64_t i = 0; i < m; i++) {
        double c = (t[i].perp - mean) * (t[i].perp - mean);
        m2 += c;
        m4 += c * c;
    }
    *var = m >= 2 ? m2 / (double)(m - 1) : NAN;
    m2 /= (double)m;
    m4 /= (double)m;
    *se = m >= 2 ? sqrt(fmax(m4 - m2 * m2, 0) / (double)m) : NAN;
}

int cmd_query(int argc, char **argv) {
    static const struct option options[] = {{"d", required_argument, NULL, OPT_D},
                                            {"n", required_argument, NULL, OPT_N},
                                            {"beta", required_argument, NULL, OPT_BETA},
                                            {"tau-prime", required_argument, NULL, OPT_TAU},
                                            {"trials", required_argument, NULL, OPT_TRIALS},
                                            {"sampler", required_argument, NULL, OPT_SAMPLER},
                                            {"theory", no_argument, NULL, OPT_THEORY},
                                            CLI_COMMON_OPTIONS,
                                            {NULL, 0, NULL, 0}};
    const struct ats_domain dom_d = {2, 1e6, 0, 0, 1};
    const struct ats_domain dom_n = {1, (double)ATS_INT_EXACT_MAX, 0, 0, 1};
    const struct ats_domain dom_beta = {0, HUGE_VAL, 0, 0, 0};
    const struct ats_domain dom_tau = {0, HUGE_VAL, 1, 0, 0};
    const struct ats_domain dom_trials = {1, 1e9, 0, 0, 1};
    struct cli c;
    cli_init(&c, "query");
    struct ats_values dv = {0}, nv = {0}, sv = {0}, tv = {0};
    int by_tau = -1, theory = 0, opt;
    enum ats_sampler sampler = ATS_SAMPLER_EXACT;
    while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT, options, NULL)) != -1) {
        if (cli_common_option(&c, opt, optarg, query_help))
            continue;
        switch (opt) {
        case OPT_D:
            ats_values_clear(&dv);
            cli_values(&c, &dv, "d", optarg, &dom_d);
            break;
        case OPT_N:
            ats_values_clear(&nv);
            cli_values(&c, &nv, "n", optarg, &dom_n);
            break;
        case OPT_BETA:
        case OPT_TAU:
            if (by_tau == (opt == OPT_BETA))
                cli_usage(&c, "--beta and --tau-prime are exclusive: give one of them");
            by_tau = opt == OPT_TAU;
            ats_values_clear(&sv);
            cli_values(&c, &sv, by_tau ? "tau-prime" : "beta", optarg,
                       by_tau ? &dom_tau : &dom_beta);
            break;
        case OPT_TRIALS:
            ats_values_clear(&tv);
            cli_values(&c, &tv, "trials", optarg, &dom_trials);
            break;
        case OPT_SAMPLER:
            if (strcmp(optarg, "exact") == 0)
                sampler = ATS_SAMPLER_EXACT;
            else if (strcmp(optarg, "ppp") == 0)
                sampler = ATS_SAMPLER_PPP;
            else
                cli_usage(&c, "--sampler: '%s' is not exact or ppp", optarg);
            break;
        case OPT_THEORY:
            theory = 1;
            break;
        default:
            cli_bad_option(&c, opt, argv);
        }
    }
    if (!dv.count)
        cli_usage(&c, "--d is required (an integer >= 2)");
    if (by_tau < 0)
        cli_usage(&c, "one of --beta (>= 0) and --tau-prime (> 0) is required");
    if (!nv.count && (sampler == ATS_SAMPLER_EXACT || !by_tau))
        cli_usage(&c, "--n is required (an integer >= 1)%s",
                  sampler == ATS_SAMPLER_PPP ? " to turn --beta into tau'" : "");
    if (!tv.count)
        cli_values(&c, &tv, "trials", "100", &dom_trials);
    int have_n = nv.count > 0;
    if (!have_n) // ppp with tau': n plays no part (a single placeholder value)
        cli_values(&c, &nv, "n", "1", &dom_n);
    if (sampler == ATS_SAMPLER_PPP && !by_tau)
        for (int64_t i = 0; i < sv.count; i++)
            if (!(sv.v[i] > 0))
                cli_usage(&c, "--beta: the ppp sampler needs beta > 0 (tau' > 0)");
    cli_begin(&c, argc, argv);

    const struct ats_values *axes[4] = {&dv, &nv, &sv, &tv};
    int64_t idx[4] = {0}, points = dv.count * nv.count * sv.count * tv.count, done = 0;
    int progress = c.verbosity >= 2 && isatty(2);
    double last = cli_now();
    do {
        struct ats_query_params p = ats_query_params_default();
        p.d = (int64_t)dv.v[idx[0]];
        double n = nv.v[idx[1]], scale = sv.v[idx[2]];
        int64_t trials = (int64_t)tv.v[idx[3]];
        double bstar = have_n ? ats_sphere_beta_star(p.d, n) : NAN;
        double beta = by_tau ? scale * bstar : scale, tau = by_tau ? scale : scale / bstar;
        p.n = n;
        p.sampler = sampler;
        p.beta = sampler == ATS_SAMPLER_PPP ? tau : beta; // the ppp sampler takes tau'
        p.seed = c.seed;
        p.threads = c.threads;
        struct ats_query_trial *tr = malloc((size_t)trials * sizeof *tr);
        if (!tr)
            cli_fail(&c, "out of memory for %lld trials", (long long)trials);
        // Trials in batches, for the progress line; the streams depend on the trial index only.
        int64_t batch = sampler == ATS_SAMPLER_EXACT ? (int64_t)fmax(1, 1e8 / fmax(n, 1)) : trials;
        for (int64_t t0 = 0; t0 < trials; t0 += batch) {
            int64_t m = trials - t0 < batch ? trials - t0 : batch;
            int rc = ats_query_run(tr + t0, &p, t0, m);
            if (rc == ATS_STATUS_EDOM)
                cli_usage(&c, "%s", cli_last_error());
            if (rc != ATS_STATUS_OK)
                cli_fail(&c, "%s: %s", ats_strerror(rc), cli_last_error());
            if (progress && cli_now() - last > 0.25) {
                fprintf(stderr, "\rattnscale query: point %lld/%lld, trial %lld/%lld   ",
                        (long long)(done + 1), (long long)points, (long long)(t0 + m),
                        (long long)trials);
                last = cli_now();
            }
        }
        struct ats_writer *w = c.writer;
        ats_writer_int(w, "d", p.d);
        ats_writer_double(w, "n", have_n ? n : NAN);
        ats_writer_double(w, "beta", beta);
        ats_writer_double(w, "tau_prime", tau);
        ats_writer_double(w, "beta_star", bstar);
        ats_writer_int(w, "trials", trials);
        ats_writer_string(w, "sampler", sampler == ATS_SAMPLER_EXACT ? "exact" : "ppp");
        static const char *const keys[5] = {"w1", "sum_w2", "entropy", "cos_yq", "radial"};
        const double *fields[5] = {&tr[0].w1, &tr[0].sum_w2, &tr[0].entropy, &tr[0].cos_yq,
                                   &tr[0].radial};
        for (int k = 0; k < 5; k++) {
            double mean, se;
            cli_mean_se(&mean, &se, fields[k], trials, sizeof *tr);
            char key[32];
            ats_writer_double(w, keys[k], mean);
            snprintf(key, sizeof key, "%s_se", keys[k]);
            ats_writer_double(w, key, se);
        }
        double var, vse, scale_perp = sampler == ATS_SAMPLER_EXACT ? n : 1;
        var_se(&var, &vse, tr, trials);
        ats_writer_double(w, "n_var_perp", scale_perp * var);
        ats_writer_double(w, "n_var_perp_se", scale_perp * vse);
        if (theory) {
            double ew1 = NAN, esw2 = NAN;
            if (ats_ppp_expect(&ew1, &esw2, p.d, tau) != ATS_STATUS_OK)
                ew1 = esw2 = NAN;
            struct ats_sphere_sub sub;
            if (sampler != ATS_SAMPLER_EXACT ||
                ats_sphere_subcritical(&sub, p.d, n, beta) != ATS_STATUS_OK)
                sub = (struct ats_sphere_sub){NAN, NAN, NAN, NAN, NAN, NAN, NAN};
            if (sub.n_eff < 10) // the subcritical forms need many effective keys (3.3)
                sub.entropy = sub.A = sub.var_perp = NAN;
            ats_writer_double(w, "w1_theory", ew1);
            ats_writer_double(w, "sum_w2_theory", esw2);
            ats_writer_double(w, "entropy_theory", sub.entropy);
            ats_writer_double(w, "cos_yq_theory", sub.A);
            ats_writer_double(w, "n_var_perp_theory", sub.var_perp);
            double kd = ats_sphere_K(p.d); // infinite at d = 2: no such rate there
            ats_writer_double(w, "w1_super", isfinite(kd) ? 1 - kd / tau : NAN);
        }
        cli_end_record(&c);
        free(tr);
        done++;
    } while (cli_grid_next(idx, axes, 4));
    if (progress)
        fprintf(stderr, "\rattnscale query: %lld points done%40s\n", (long long)points, "");
    ats_values_clear(&dv);
    ats_values_clear(&nv);
    ats_values_clear(&sv);
    ats_values_clear(&tv);
    return cli_finish(&c);
}
