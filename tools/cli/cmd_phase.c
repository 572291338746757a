/*
 * cmd_phase.c: `attnscale phase`, paper 1's phase diagrams on general tokens (THEORY.md 2.1,
 * 2.4-2.8; arXiv 2510.05554): the layer metrics over a grid of (n, d, rho, alpha, gamma) for
 * simplex, almost-simplex, sphere or file tokens, means over trials with standard errors.
 *
 * Streams: trial t draws its tokens from the Philox stream (seed, 2t) and its probes from
 * (seed, 2t + 1), whatever the other options, so a record can be recomputed alone (and the
 * points of a map share their random numbers, which keeps maps smooth).
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char phase_help[] =
    "Usage: attnscale phase --n N (--gamma G | --beta B) [options]\n"
    "       attnscale phase --tokens FILE.npy (--gamma G | --beta B) [options]\n"
    "\n"
    "Pre-LN self-attention on n tokens in R^d at inverse temperature beta = gamma log n with\n"
    "residual alpha (THEORY.md 2.1-2.8; arXiv 2510.05554): the forward metrics and the\n"
    "backward metric eta = ||J||_F^2/(n d), averaged over trials. The layer runs in blocks of\n"
    "rows through BLAS (memory O(block n + n d), never n x n); the Gram rows are computed once\n"
    "per draw and reused across the gamma values.\n"
    "\n"
    "Tokens:\n"
    "  --config C       almost-simplex (default): x_i = sqrt(rho) z_0 + sqrt(1-rho) z_i,\n"
    "                   z ~ N(0, I/d); simplex: exact equiangular tokens |x_i| = 1 (closed\n"
    "                   forms, THEORY.md 2.2 and 2.6; Hutchinson eta builds them, d >= n+1);\n"
    "                   sphere: uniform on S^(d-1); file: --tokens\n"
    "  --tokens FILE    an (n, d) float32 or float64 .npy (implies --config file; n and d come\n"
    "                   from the file; a zero-norm, NaN or Inf row is an error naming the row)\n"
    "  --n N            tokens, an integer >= 2 (required unless --tokens)\n"
    "  --d D            dimension, an integer >= 1 (default 512; simplex: n + 1)\n"
    "  --rho R          generating cosine, 0 <= R < 1 (default 0.5; simplex and almost-simplex)\n"
    "\n"
    "Layer:\n"
    "  --gamma G        beta = G log n, G >= 0 (one of --gamma, --beta is required)\n"
    "  --beta B         inverse temperature, B >= 0\n"
    "  --alpha A        residual weight, A >= 0 (default 0, the paper's experiments)\n"
    "  --metric M       lambda (default), lambda_angle, eta, rho_out, a_self, entropy, support,\n"
    "                   or a comma list (one record per metric)\n"
    "  --trials T       token draws (default 1; with fixed tokens, probe sets) per point\n"
    "  --probes P       Rademacher probes per trial for eta (default 16)\n"
    "  --eta-method M   hutchinson (default; analytic JVP, THEORY.md 2.7) or exact (the\n"
    "                   Jacobian blocks of THEORY.md 2.5, cost n^2 d + n^3 per gamma)\n"
    "  --precision P    f64 (default) or f32 (float GEMMs; sums stay double)\n"
    "  --block B        rows per block, an integer >= 1 (default: from n, d and probes)\n"
    "\n"
    "Figure:\n"
    "  --plot FILE      png, svg or pdf by extension: the metric's heat map over (rho, gamma)\n"
    "                   with the dashed curve gamma = 1/(1-rho) when --rho and --gamma have\n"
    "                   several values and the other options one (one --metric); else lines\n"
    "                   against gamma with error bars\n"
    "\n"
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
    "  attnscale phase --n 256 --d 512 --rho 0.02:0.98:25 --gamma 0:10:51 --plot lambda.png\n"
    "\n";

enum {
    OPT_N = CLI_OPT_FIRST_COMMAND_OPTION,
    OPT_D,
    OPT_RHO,
    OPT_GAMMA,
    OPT_BETA,
    OPT_ALPHA,
    OPT_TRIALS,
    OPT_PROBES,
    OPT_METRIC,
    OPT_CONFIG,
    OPT_TOKENS,
    OPT_ETA_METHOD,
    OPT_PRECISION,
    OPT_BLOCK,
    OPT_PLOT,
};

enum metric { M_LAMBDA, M_ANGLE, M_ETA, M_RHO_OUT, M_A_SELF, M_ENTROPY, M_SUPPORT, NMETRICS };
static const char *const metric_names[NMETRICS] = {
    "lambda", "lambda_angle", "eta", "rho_out", "a_self", "entropy", "support"};

enum config { CFG_SIMPLEX, CFG_ALMOST, CFG_SPHERE, CFG_FILE };
static const char *const config_names[] = {"simplex", "almost-simplex", "sphere", "file"};

// The axes of the record grid, outermost first; gamma (or beta) varies fastest.
enum { AX_N, AX_D, AX_RHO, AX_ALPHA, AX_TRIALS, AX_PROBES, AX_SCALE, NAXES };

struct setup {
    enum config config;
    const double *x;       // file tokens (n, d), or NULL
    int metric[NMETRICS];  // the metrics asked for, in order
    int nmetric;
    enum ats_eta_method eta;
    enum ats_precision precision;
    int64_t block;
};

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
static void simplex_metrics(const struct cli *c, struct ats_layer_metrics *o, int64_t n,
                            int64_t d, double rho, double alpha, double beta) {
    struct ats_simplex_params sp = ats_simplex_params_default();
    sp.n = n;
    sp.d = d;
    sp.rho = rho;
    sp.alpha = alpha;
    sp.beta = beta;
    struct ats_simplex s;
    int rc = ats_simplex_eval(&s, &sp);
    if (rc != ATS_STATUS_OK)
        cli_usage(c, "%s", cli_last_error());
    double a = s.a_self, b = s.b_other, nm1 = (double)(n - 1);
    o->a_self = a;
    o->entropy = (a > 0 ? -a * log(a) : 0) + (b > 0 ? -nm1 * b * log(b) : 0);
    o->support = 1 / (a * a + nm1 * b * b);
    o->rho_out = s.rho_out;
    o->lambda = s.lambda;
    o->lambda_angle = acos(s.rho_out) / acos(rho);
    o->eta = s.eta;
    o->eta_var = 0;
}

// The dimension of a point: --d's value, or where it was not given (0) the default, n + 1 for
// the simplex (its explicit construction) and 512 otherwise.
static int64_t dimension(enum config config, double dv, int64_t n) {
    return dv > 0 ? (int64_t)dv : config == CFG_SIMPLEX ? n + 1 : 512;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int64_t m) {
    qsort(v, (size_t)m, sizeof *v, cmp_double);
    return m % 2 ? v[m / 2] : 0.5 * (v[m / 2 - 1] + v[m / 2]);
}

int cmd_phase(int argc, char **argv) {
    static const struct option options[] = {
        {"n", required_argument, NULL, OPT_N},
        {"d", required_argument, NULL, OPT_D},
        {"rho", required_argument, NULL, OPT_RHO},
        {"gamma", required_argument, NULL, OPT_GAMMA},
        {"beta", required_argument, NULL, OPT_BETA},
        {"alpha", required_argument, NULL, OPT_ALPHA},
        {"trials", required_argument, NULL, OPT_TRIALS},
        {"probes", required_argument, NULL, OPT_PROBES},
        {"metric", required_argument, NULL, OPT_METRIC},
        {"config", required_argument, NULL, OPT_CONFIG},
        {"tokens", required_argument, NULL, OPT_TOKENS},
        {"eta-method", required_argument, NULL, OPT_ETA_METHOD},
        {"precision", required_argument, NULL, OPT_PRECISION},
        {"block", required_argument, NULL, OPT_BLOCK},
        {"plot", required_argument, NULL, OPT_PLOT},
        CLI_COMMON_OPTIONS,
        {NULL, 0, NULL, 0}};
    const struct ats_domain dom_n = {2, 1e9, 0, 0, 1};
    const struct ats_domain dom_d = {1, 1e9, 0, 0, 1};
    const struct ats_domain dom_rho = {0, 1, 0, 1, 0};
    const struct ats_domain dom_nonneg = {0, HUGE_VAL, 0, 0, 0};
    const struct ats_domain dom_count = {1, 1e9, 0, 0, 1};
    const struct ats_domain dom_same = {0, 0, 0, 0, 1};

    struct cli c;
    cli_init(&c, "phase");
    struct ats_values n = {0}, d = {0}, rho = {0}, scale = {0}, alpha = {0}, trials = {0},
                      probes = {0}, block = {0};
    enum ats_scale kind = ATS_SCALE_GAMMA;
    int have_scale = 0, have_config = 0, opt;
    struct setup s = {CFG_ALMOST, NULL, {M_LAMBDA}, 1, ATS_ETA_HUTCHINSON, ATS_PRECISION_F64, 0};
    const char *plot = NULL, *tokens = NULL, *eta_method = NULL;
    while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT, options, NULL)) != -1) {
        if (cli_common_option(&c, opt, optarg, phase_help))
            continue;
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
        case OPT_TRIALS:
            ats_values_clear(&trials);
            cli_values(&c, &trials, "trials", optarg, &dom_count);
            break;
        case OPT_PROBES:
            ats_values_clear(&probes);
            cli_values(&c, &probes, "probes", optarg, &dom_count);
            break;
        case OPT_BLOCK:
            ats_values_clear(&block);
            cli_values(&c, &block, "block", optarg, &dom_count);
            if (block.count != 1)
                cli_usage(&c, "--block takes one value");
            s.block = (int64_t)block.v[0];
            break;
        case OPT_METRIC: {
            s.nmetric = 0;
            char *list = strdup(optarg), *save = NULL;
            if (!list)
                cli_fail(&c, "out of memory");
            for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                int found = -1;
                for (int i = 0; i < NMETRICS; i++)
                    if (strcmp(tok, metric_names[i]) == 0)
                        found = i;
                if (found < 0)
                    cli_usage(&c, "--metric: '%s' is not lambda, lambda_angle, eta, rho_out, "
                                  "a_self, entropy or support", tok);
                for (int i = 0; i < s.nmetric; i++)
                    if (s.metric[i] == found)
                        cli_usage(&c, "--metric: '%s' is listed twice", tok);
                s.metric[s.nmetric++] = found;
            }
            free(list);
            if (!s.nmetric)
                cli_usage(&c, "--metric: empty list");
            break;
        }
        case OPT_CONFIG: {
            int found = -1;
            for (int i = 0; i < 4; i++)
                if (strcmp(optarg, config_names[i]) == 0)
                    found = i;
            if (found < 0)
                cli_usage(&c, "--config: '%s' is not simplex, almost-simplex, sphere or file",
                          optarg);
            s.config = (enum config)found;
            have_config = 1;
            break;
        }
        case OPT_TOKENS:
            tokens = optarg;
            break;
        case OPT_ETA_METHOD:
            if (strcmp(optarg, "hutchinson") == 0)
                s.eta = ATS_ETA_HUTCHINSON;
            else if (strcmp(optarg, "exact") == 0)
                s.eta = ATS_ETA_EXACT;
            else
                cli_usage(&c, "--eta-method: '%s' is not hutchinson or exact", optarg);
            eta_method = optarg;
            break;
        case OPT_PRECISION:
            if (strcmp(optarg, "f64") == 0)
                s.precision = ATS_PRECISION_F64;
            else if (strcmp(optarg, "f32") == 0)
                s.precision = ATS_PRECISION_F32;
            else
                cli_usage(&c, "--precision: '%s' is not f64 or f32", optarg);
            break;
        case OPT_PLOT:
            plot = optarg;
            break;
        default:
            cli_bad_option(&c, opt, argv);
        }
    }
    if (tokens && have_config && s.config != CFG_FILE)
        cli_usage(&c, "--tokens reads file tokens: it does not go with --config %s",
                  config_names[s.config]);
    if (tokens)
        s.config = CFG_FILE;
    if (s.config == CFG_FILE && !tokens)
        cli_usage(&c, "--config file needs --tokens FILE.npy");
    if (s.config == CFG_FILE && (n.count || d.count))
        cli_usage(&c, "--n and --d come from the tokens file: do not give them");
    if (s.config != CFG_FILE && !n.count)
        cli_usage(&c, "--n is required (an integer >= 2)");
    if ((s.config == CFG_FILE || s.config == CFG_SPHERE) && rho.count)
        cli_usage(&c, "--rho plays no part with --config %s", config_names[s.config]);
    if (!have_scale)
        cli_usage(&c, "one of --gamma and --beta is required (>= 0)");
    int want_eta = 0;
    for (int i = 0; i < s.nmetric; i++)
        want_eta |= s.metric[i] == M_ETA;
    if (!want_eta && (eta_method || probes.count))
        cli_usage(&c, "--eta-method and --probes apply to --metric eta only");
    if (s.eta == ATS_ETA_EXACT && probes.count)
        cli_usage(&c, "--probes applies to --eta-method hutchinson only");
    if (plot && s.nmetric != 1)
        cli_usage(&c, "--plot draws one --metric: give one");

    double *xfile = NULL;
    if (tokens) {
        int64_t fn, fd;
        int rc = ats_tokens_load(&xfile, &fn, &fd, tokens);
        if (rc == ATS_STATUS_EIO || rc == ATS_STATUS_ENOMEM)
            cli_fail(&c, "%s", cli_last_error());
        if (rc != ATS_STATUS_OK)
            cli_fail(&c, "--tokens %s: %s", tokens, cli_last_error());
        if (fn < 2)
            cli_fail(&c, "--tokens %s: %lld token; the layer metrics need n >= 2", tokens,
                     (long long)fn);
        char buf[32];
        snprintf(buf, sizeof buf, "%lld", (long long)fn);
        cli_values(&c, &n, "n", buf, &dom_n);
        snprintf(buf, sizeof buf, "%lld", (long long)fd);
        cli_values(&c, &d, "d", buf, &dom_d);
        s.x = xfile;
    }
    if (!d.count) // 0 stands for the default: n + 1 for the simplex, else 512
        cli_values(&c, &d, "d", "0", &dom_same);
    if (!rho.count) // sphere and file: a placeholder written as null
        cli_values(&c, &rho, "rho", "0.5", &dom_rho);
    if (!alpha.count)
        cli_values(&c, &alpha, "alpha", "0", &dom_nonneg);
    if (!trials.count)
        cli_values(&c, &trials, "trials", "1", &dom_count);
    if (!probes.count)
        cli_values(&c, &probes, "probes", "16", &dom_count);
    cli_check_gamma(&c, kind, &scale, &n);
    const int closed = s.config == CFG_SIMPLEX && !(want_eta && s.eta == ATS_ETA_HUTCHINSON);
    const int has_rho = s.config == CFG_SIMPLEX || s.config == CFG_ALMOST;
    const int fixed_tokens = s.config == CFG_FILE || s.config == CFG_SIMPLEX;
    for (int64_t i = 0; s.config == CFG_SIMPLEX && i < n.count; i++)
        for (int64_t j = 0; j < d.count; j++) {
            double nv = n.v[i], dv = d.v[j];
            if (dv > 0 && dv < nv)
                cli_usage(&c, "--config simplex: n = %g equiangular tokens need d >= n "
                              "(got d = %g)", nv, dv);
            if (dv > 0 && dv < nv + 1 && !closed)
                cli_usage(&c, "Hutchinson eta on the simplex builds the tokens: it needs "
                              "d >= n + 1 (n = %g, d = %g; --eta-method exact needs no tokens)",
                          nv, dv);
        }

    const struct ats_values *axes[NAXES] = {&n, &d, &rho, &alpha, &trials, &probes, &scale};
    static const char *const names[NAXES] = {"n",      "d",      "rho",  "alpha",
                                             "trials", "probes", "gamma"};
    const struct cli_grid grid = {axes, names, NAXES, AX_RHO, AX_N, kind};
    double *zv = NULL, *ze = NULL;
    if (plot) {
        int64_t total = cli_grid_plot_check(&c, plot, &grid);
        zv = malloc((size_t)total * sizeof *zv);
        ze = malloc((size_t)total * sizeof *ze);
        if (!zv || !ze)
            cli_fail(&c, "--plot: out of memory for %lld values", (long long)total);
    }
    cli_begin(&c, argc, argv);

    int pairs = 0; // 1: rho_out and lambda; 2: also lambda_angle
    for (int i = 0; i < s.nmetric; i++)
        if (s.metric[i] == M_ANGLE)
            pairs = 2;
        else if ((s.metric[i] == M_LAMBDA || s.metric[i] == M_RHO_OUT) && !pairs)
            pairs = 1;
    int64_t points = 1, done = 0, records = 0;
    for (int a = 0; a < AX_SCALE; a++)
        points *= axes[a]->count;
    int progress = c.verbosity >= 2 && isatty(2);
    double last = cli_now(), start = last;
    int64_t nb = scale.count;
    double *beta = malloc((size_t)nb * sizeof *beta);
    if (!beta)
        cli_fail(&c, "out of memory");
    int64_t idx[NAXES] = {0};
    do {
        int64_t pn = (int64_t)n.v[idx[AX_N]];
        int64_t pd = dimension(s.config, d.v[idx[AX_D]], pn);
        double prho = rho.v[idx[AX_RHO]], palpha = alpha.v[idx[AX_ALPHA]];
        int64_t nt = (int64_t)trials.v[idx[AX_TRIALS]], np = (int64_t)probes.v[idx[AX_PROBES]];
        for (int64_t k = 0; k < nb; k++)
            beta[k] = kind == ATS_SCALE_GAMMA ? scale.v[k] * log((double)pn) : scale.v[k];
        // Per trial, per beta: the metrics (trial-major).
        struct ats_layer_metrics *res = malloc((size_t)(nt * nb) * sizeof *res);
        double *x = NULL;
        if (!closed && !s.x) {
            if ((double)pn * (double)pd > 1e12 / sizeof *x)
                cli_fail(&c, "n = %lld, d = %lld: %.3g GB of tokens is too much memory",
                         (long long)pn, (long long)pd, (double)pn * (double)pd * 8 / 1e9);
            x = malloc((size_t)(pn * pd) * sizeof *x);
            if (!x)
                cli_fail(&c, "out of memory for n = %lld, d = %lld tokens (%.3g GB)",
                         (long long)pn, (long long)pd, (double)pn * (double)pd * 8 / 1e9);
        }
        if (!res)
            cli_fail(&c, "out of memory for %lld trials", (long long)nt);
        for (int64_t t = 0; t < nt; t++) {
            struct ats_layer_metrics *o = res + t * nb;
            if (closed) {
                for (int64_t k = 0; k < nb; k++)
                    simplex_metrics(&c, &o[k], pn, pd, prho, palpha, beta[k]);
                continue;
            }
            if (x) {
                static const enum ats_tokens kinds[] = {ATS_TOKENS_SIMPLEX,
                                                        ATS_TOKENS_ALMOST_SIMPLEX,
                                                        ATS_TOKENS_SPHERE};
                int rc = ats_tokens_draw(x, kinds[s.config], pn, pd, prho, c.seed,
                                         2 * (uint64_t)t);
                if (rc != ATS_STATUS_OK)
                    cli_usage(&c, "%s", cli_last_error());
            }
            struct ats_layer_params p = ats_layer_params_default();
            p.n = pn;
            p.d = pd;
            p.alpha = palpha;
            p.beta = beta;
            p.nbeta = nb;
            p.pairs = pairs;
            p.eta = want_eta ? s.eta : ATS_ETA_NONE;
            p.probes = np;
            p.seed = c.seed;
            p.stream = 2 * (uint64_t)t + 1;
            p.precision = s.precision;
            p.threads = c.threads;
            p.block = s.block;
            int rc = ats_layer_metrics(o, x ? x : s.x, &p);
            if (rc == ATS_STATUS_EDOM && s.config == CFG_FILE)
                cli_fail(&c, "--tokens %s: %s", tokens, cli_last_error());
            if (rc != ATS_STATUS_OK)
                cli_fail(&c, "%s: %s", ats_strerror(rc), cli_last_error());
            if (progress && cli_now() - last > 0.25) {
                fprintf(stderr, "\rattnscale phase: point %lld/%lld, trial %lld/%lld, %.0f s   ",
                        (long long)(done + 1), (long long)points, (long long)(t + 1),
                        (long long)nt, cli_now() - start);
                last = cli_now();
            }
        }
        free(x);
        double *vals = malloc((size_t)nt * sizeof *vals);
        if (!vals)
            cli_fail(&c, "out of memory");
        for (int64_t k = 0; k < nb; k++)
            for (int im = 0; im < s.nmetric; im++) {
                int m = s.metric[im];
                double mean, se;
                for (int64_t t = 0; t < nt; t++)
                    vals[t] = metric_of(&res[t * nb + k], m);
                cli_mean_se(&mean, &se, vals, nt, sizeof *vals);
                int hutch = m == M_ETA && !closed && s.eta == ATS_ETA_HUTCHINSON;
                if (closed || (fixed_tokens && !hutch))
                    se = 0; // exact for the given tokens
                else if (hutch && (fixed_tokens || nt == 1)) {
                    // Pool the nt np probe values: within-trial variance plus the spread of
                    // the trial means, over nt np - 1 degrees of freedom.
                    double ss = 0;
                    for (int64_t t = 0; t < nt; t++) {
                        double dv = vals[t] - mean, var = res[t * nb + k].eta_var;
                        ss += (double)(np - 1) * (np > 1 ? var : 0) + (double)np * dv * dv;
                    }
                    double tot = (double)(nt * np);
                    se = tot > 1 ? sqrt(ss / (tot - 1) / tot) : NAN;
                }
                double med = median(vals, nt);
                struct ats_writer *w = c.writer;
                ats_writer_string(w, "config", config_names[s.config]);
                ats_writer_int(w, "n", pn);
                ats_writer_int(w, "d", pd);
                ats_writer_double(w, "rho", has_rho ? prho : NAN);
                ats_writer_double(w, "alpha", palpha);
                ats_writer_double(w, "gamma", kind == ATS_SCALE_GAMMA ? scale.v[k] : beta[k] / log((double)pn));
                ats_writer_double(w, "beta", beta[k]);
                ats_writer_int(w, "trials", nt);
                ats_writer_double(w, "probes",
                                  want_eta && s.eta == ATS_ETA_HUTCHINSON ? (double)np : NAN);
                ats_writer_string(w, "eta_method", !want_eta                ? "none"
                                                   : s.eta == ATS_ETA_EXACT ? "exact"
                                                                            : "hutchinson");
                ats_writer_string(w, "precision", s.precision == ATS_PRECISION_F32 ? "f32" : "f64");
                ats_writer_string(w, "metric", metric_names[m]);
                ats_writer_double(w, "value", mean);
                ats_writer_double(w, "stderr", se);
                ats_writer_double(w, "median", med);
                cli_end_record(&c);
                if (zv) {
                    zv[records] = mean;
                    ze[records] = se;
                }
                records++;
            }
        free(vals);
        free(res);
        done++;
        idx[AX_SCALE] = nb - 1; // one engine run covers every gamma
    } while (cli_grid_next(idx, axes, NAXES));
    if (progress)
        fprintf(stderr, "\rattnscale phase: %lld points done in %.1f s%30s\n", (long long)points,
                cli_now() - start, "");
    if (plot) {
        char title[200];
        const char *m = metric_names[s.metric[0]];
        if (rho.count > 1)
            snprintf(title, sizeof title, "%s: %s, n = %.0f, d = %lld, alpha = %g",
                     config_names[s.config], m, n.v[0],
                     (long long)dimension(s.config, d.v[0], (int64_t)n.v[0]), alpha.v[0]);
        else
            snprintf(title, sizeof title, "%s: %s", config_names[s.config], m);
        // lambda, lambda_angle and a_self live in [0, 1]: a fixed range makes maps comparable.
        int unit = s.metric[0] == M_LAMBDA || s.metric[0] == M_ANGLE || s.metric[0] == M_A_SELF;
        cli_grid_plot(&c, plot, &grid, title, m, unit ? 0 : NAN, unit ? 1 : NAN, zv, ze);
    }
    free(zv);
    free(ze);
    free(beta);
    free(xfile);
    struct ats_values *owned[] = {&n, &d, &rho, &alpha, &trials, &probes, &scale, &block};
    for (size_t a = 0; a < sizeof owned / sizeof owned[0]; a++)
        ats_values_clear(owned[a]);
    return cli_finish(&c);
}
