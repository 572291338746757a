/*
 * test_reproduce_run.c: the `reproduce` run (src/experiments/reproduce_run.c) through the
 * public API: ats_command_find("reproduce"), its spec, ats_run_next_figure, ats_figure_save.
 *   - paper2 --quick once (~20 s on 2 cores; the whole test ~27 s): every figure in order
 *     with the release's names, CSV headers and row counts; every figure saved (CSV and PNG
 *     written, the CSV's header line as the release's); the tables against theory where that
 *     is cheap:
 *       regime: the critical-limit rows of w1 equal ats_ppp_expect (THEORY.md 3.4) bit for bit
 *         with w1_se = 0; at d = 3, tau' = 1, n = 1e5, the exact-sampler E[w1] against the
 *         exact limit 0.37379896 (THEORY.md 3.4; finite n = 1e5 differs by 3e-6) within
 *         4 SE + 3e-6; entropies at most log n;
 *       ordered: each histogram integrates to 1 (every weight lies in [0, 1], the top edge
 *         closed: a sum of m terms BINS/m times 1/BINS, exact up to m rounding errors), and
 *         the PPP histogram's mean of W_1 (bin centres) against E[W_1] = ats_ppp_expect within
 *         half a bin + 4 SE (the SE from the binned second moment);
 *       fluctuation: the Gaussian column integrates to erf(4/sqrt 2) (midpoint rule over
 *         +-4 sd, 30 bins: error below 1e-4), the sample density to at most 1 and at least
 *         1 - 3/400 (400 trials; under the Gaussian law the expected count outside +-4 sd is
 *         0.025), sigma_perp2 = ats_sphere_subcritical's var_perp (THEORY.md 3.3);
 *       bias: the limit column is (d - 1)/2; beta (1 - <y,q>) against the finite-beta law
 *         beta (1 - A_d(beta)) (THEORY.md 3.3) within 4 SE + 0.5 tau' (finite n: THEORY.md
 *         3.4's radial limit gives beta (1 - <y,q>) = (d - 1)/2 + c tau' with c = 0.15 to
 *         0.18 at d = 3, 0.08 at d = 4 in its reference table);
 *       heat: two_over_beta = 2/beta, n_keys = 20000, kappa0 = 50, the finite-n drop NAN
 *         exactly where n kappa0/(2 beta) < 200, drop = before - after, and beta = 200 against
 *         ats_heat_run called directly (stream 7000000) bit for bit;
 *     progress rises to total = 11 figures; the first note names paper 2.
 *   - all: the five sub-run figures (simplex maps, sharpening, residual, policies) and paper
 *     1's first phase map (~3 s): rows = the sub-runs' records (the simplex lambda against
 *     ats_simplex_eval bit for bit), the sub-run's drawing (heat map or lines), saved; notes.
 *   - usage errors (ATS_STATUS_EARG with the CLI's words), ats_run_next refused, cancellation.
 * Run: make build/tests/test_reproduce_run && build/tests/test_reproduce_run
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attnscale.h"
#include "experiments/heat.h"
#include "test.h"

static char dir[256];

static struct ats_reproduce_spec spec0(const char *target) {
    struct ats_reproduce_spec s;
    ats_command_find("reproduce")->spec_default(&s);
    s.target = target;
    return s;
}

static double num(const struct ats_record *r, const char *key) {
    const struct ats_field *f = ats_record_find(r, key);
    if (!f)
        return NAN;
    return f->type == ATS_FIELD_INT ? (double)f->i : f->d;
}

static const char *str(const struct ats_record *r, const char *key) {
    const struct ats_field *f = ats_record_find(r, key);
    return f && f->type == ATS_FIELD_STRING ? f->s : "";
}

// The first row's keys joined by commas: the CSV header ats_figure_save writes.
static void header_of(char *buf, size_t size, const struct ats_figure *f) {
    buf[0] = '\0';
    if (!f->nrows)
        return;
    for (int64_t i = 0; i < f->rows[0].count; i++) {
        size_t len = strlen(buf);
        snprintf(buf + len, size - len, "%s%s", i ? "," : "", f->rows[0].field[i].key);
    }
}

// Saves f and checks both files: the CSV's first line is header, the PNG has its signature.
static void check_saved(const struct ats_figure *f, const char *header) {
    int rc = ats_figure_save(f, dir);
    ATS_CHECK(rc == ATS_STATUS_OK, "%s: saved (%s)", f->name, rc ? ats_last_error() : "ok");
    char path[512], line[1024] = "";
    snprintf(path, sizeof path, "%s/%s.csv", dir, f->name);
    FILE *in = fopen(path, "r");
    int64_t lines = 0;
    if (in) {
        if (fgets(line, sizeof line, in))
            lines++;
        char rest[4096];
        while (fgets(rest, sizeof rest, in))
            lines++;
        fclose(in);
    }
    line[strcspn(line, "\n")] = '\0';
    ATS_CHECK(strcmp(line, header) == 0, "%s.csv header '%s'", f->name, line);
    ATS_CHECK(lines == f->nrows + 1, "%s.csv: %lld lines for %lld rows", f->name, (long long)lines,
              (long long)f->nrows);
    unlink(path);
    snprintf(path, sizeof path, "%s/%s.png", dir, f->name);
    unsigned char sig[8] = {0};
    in = fopen(path, "rb");
    size_t got = in ? fread(sig, 1, 8, in) : 0;
    if (in)
        fclose(in);
    ATS_CHECK(got == 8 && memcmp(sig, "\x89PNG\r\n\x1a\n", 8) == 0, "%s.png drawn", f->name);
    unlink(path);
}

// ---------------------------------------------------------------------------
// paper2 figures against theory

static void check_regime(const struct ats_figure *f, int64_t d, int w1) {
    int ok_limit = 1, ok_se = 1, ok_h = 1, found = 0;
    for (int64_t i = 0; i < f->nrows; i++) {
        const struct ats_record *r = &f->rows[i];
        double n = num(r, "n"), tau = num(r, "tau_prime");
        if (w1 && isinf(n)) {
            double ew1, esw2;
            double ref = ats_ppp_expect(&ew1, &esw2, d, tau) == ATS_STATUS_OK ? ew1 : NAN;
            double got = num(r, "w1");
            ok_limit &= (isnan(ref) && isnan(got)) || got == ref;
            ok_se &= num(r, "w1_se") == 0;
            ok_limit &= strcmp(str(r, "source"), "critical limit (quadrature)") == 0;
        }
        if (!w1 && !isinf(n))
            ok_h &= num(r, "entropy") <= log(n) * (1 + 1e-15) && num(r, "entropy") >= 0;
        if (w1 && d == 3 && n == 1e5 && tau == 1) {
            found = 1;
            // THEORY.md 3.4: E[W_1] = 0.37379896 at tau' = 1 (quadrature); n = 1e5 exact
            // finite-n value 0.373797.
            ATS_CHECK_CLOSE(num(r, "w1"), 0.37379896, 4 * num(r, "w1_se") + 3e-6, 0,
                            "regime d = 3, n = 1e5, tau' = 1: E[w1] against the limit (4 SE)");
        }
    }
    if (w1) {
        ATS_CHECK(ok_limit, "%s: critical-limit rows = ats_ppp_expect bit for bit", f->name);
        ATS_CHECK(ok_se, "%s: critical-limit w1_se = 0", f->name);
        if (d == 3)
            ATS_CHECK(found, "%s: the n = 1e5, tau' = 1 row is there", f->name);
    } else {
        ATS_CHECK(ok_h, "%s: 0 <= entropy <= log n", f->name);
    }
}

static void check_ordered(const struct ats_figure *f, double tau) {
    enum { BINS = 40 };
    double mass[3][2] = {{0}}, m1 = 0, m2 = 0;
    for (int64_t i = 0; i < f->nrows; i++) {
        const struct ats_record *r = &f->rows[i];
        int k = (int)num(r, "order") - 1;
        double lo = num(r, "bin_lo"), hi = num(r, "bin_hi");
        if (k < 0 || k > 2)
            continue;
        mass[k][0] += num(r, "density_n_keys") * (hi - lo);
        mass[k][1] += num(r, "density_ppp") * (hi - lo);
        if (k == 0) {
            double c = (lo + hi) / 2, p = num(r, "density_ppp") * (hi - lo);
            m1 += c * p;
            m2 += c * c * p;
        }
    }
    for (int k = 0; k < 3; k++) {
        // m = 2000 or 8000 additions of BINS/m, each rounded: relative error <= m u.
        ATS_CHECK_CLOSE(mass[k][0], 1, 0, 1e-11, "%s: w_(%d) histogram (n keys) integrates to 1",
                        f->name, k + 1);
        ATS_CHECK_CLOSE(mass[k][1], 1, 0, 1e-11, "%s: w_(%d) histogram (ppp) integrates to 1",
                        f->name, k + 1);
    }
    double ew1, esw2;
    if (ats_ppp_expect(&ew1, &esw2, 3, tau) == ATS_STATUS_OK) {
        double se = sqrt(fmax(m2 - m1 * m1, 0) / 8000); // 8000 PPP trials (--quick)
        ATS_CHECK_CLOSE(m1, ew1, 0.5 / BINS + 4 * se, 0,
                        "%s: binned mean of W_1 against E[W_1] (half a bin + 4 SE)", f->name);
    }
}

static void check_fluctuation(const struct ats_figure *f) {
    double beta = NAN, gmass = 0, dmass = 0, width = 0;
    int nb = 0, ok_sigma = 1;
    for (int64_t i = 0; i <= f->nrows; i++) {
        const struct ats_record *r = i < f->nrows ? &f->rows[i] : NULL;
        if (!r || num(r, "beta") != beta) {
            if (nb) {
                ATS_CHECK_CLOSE(gmass, erf(4 / sqrt(2)), 1e-4, 0,
                                "fluctuation beta = %g: Gaussian column integrates to "
                                "erf(4/sqrt 2)",
                                beta);
                ATS_CHECK(dmass <= 1 + 1e-12 && dmass >= 1 - 3.0 / 400,
                          "fluctuation beta = %g: density integrates to %.6g in [1 - 3/400, 1]",
                          beta, dmass);
            }
            if (!r)
                break;
            beta = num(r, "beta");
            gmass = dmass = 0;
            nb = 0;
            width = num(&f->rows[i + 1], "bin_centre") - num(r, "bin_centre");
            struct ats_sphere_sub sub;
            ok_sigma &= ats_sphere_subcritical(&sub, 3, 2e4, beta) == ATS_STATUS_OK &&
                        sub.var_perp == num(r, "sigma_perp2");
        }
        gmass += num(r, "gaussian_density") * width;
        dmass += num(r, "density") * width;
        nb++;
    }
    ATS_CHECK(ok_sigma, "fluctuation: sigma_perp2 = ats_sphere_subcritical's var_perp");
}

static void check_bias(const struct ats_figure *f) {
    int ok_limit = 1;
    for (int64_t i = 0; i < f->nrows; i++) {
        const struct ats_record *r = &f->rows[i];
        int64_t d = (int64_t)num(r, "d");
        double n = num(r, "n"), beta = num(r, "beta");
        ok_limit &= num(r, "limit") == (double)(d - 1) / 2;
        struct ats_sphere_sub sub;
        if (ats_sphere_subcritical(&sub, d, n, beta) != ATS_STATUS_OK) {
            ATS_CHECK(0, "bias: subcritical prediction at d = %lld beta = %g", (long long)d, beta);
            continue;
        }
        double tau = beta / ats_sphere_beta_star(d, n);
        ATS_CHECK_CLOSE(num(r, "beta_one_minus_cos"), sub.bias, 4 * num(r, "se") + 0.5 * tau, 0,
                        "bias d = %lld beta = %g (tau' = %.3g): beta (1 - <y,q>) against "
                        "beta (1 - A_d) within 4 SE + 0.5 tau'",
                        (long long)d, beta, tau);
    }
    ATS_CHECK(ok_limit, "bias: the limit column is (d - 1)/2");
}

static void check_heat(const struct ats_figure *f, uint64_t seed) {
    int ok = 1;
    for (int64_t i = 0; i < f->nrows; i++) {
        const struct ats_record *r = &f->rows[i];
        double beta = num(r, "beta");
        ok &= num(r, "two_over_beta") == 2 / beta && num(r, "kappa0") == 50 &&
              num(r, "n_keys") == 20000;
        ok &= num(r, "drop_limit") == num(r, "var_before") - num(r, "var_after_limit");
        ok &= isnan(num(r, "drop_n_keys")) == (20000 * 50 / (2 * beta) < 200);
    }
    ATS_CHECK(ok, "heat: 2/beta, kappa0, n_keys, drop = before - after, NAN below 200 keys");
    struct ats_heat_params p = ats_heat_params_default(); // reproduce --quick's parameters
    p.seed = seed;
    struct ats_heat_result h;
    int rc = ats_heat_run(&h, &p, 200, 7000000);
    const struct ats_record *r = &f->rows[0];
    ATS_CHECK(rc == ATS_STATUS_OK && num(r, "beta") == 200 &&
                  h.var_before == num(r, "var_before") &&
                  h.var_after_limit == num(r, "var_after_limit") &&
                  h.drop_limit == num(r, "drop_limit") &&
                  h.var_after_n_keys == num(r, "var_after_n_keys") &&
                  h.drop_n_keys == num(r, "drop_n_keys"),
              "heat beta = 200: the row is ats_heat_run(stream 7000000) bit for bit");
}

static void test_paper2(void) {
    static const char *const names[] = {"paper2_regime_w1_d3",
                                        "paper2_regime_entropy_d3",
                                        "paper2_regime_w1_d4",
                                        "paper2_regime_entropy_d4",
                                        "paper2_regime_w1_d6",
                                        "paper2_regime_entropy_d6",
                                        "paper2_ordered_tau1",
                                        "paper2_ordered_tau5",
                                        "paper2_fluctuation_d3",
                                        "paper2_bias",
                                        "paper2_heat"};
    static const int64_t nrows[] = {36, 36, 36, 36, 36, 36, 120, 120, 90, 12, 7};
    static const char *const regime_w = "d,n,tau_prime,w1,w1_se,source";
    static const char *const regime_h = "d,n,tau_prime,entropy,entropy_se,source";
    static const char *const headers[] = {
        regime_w,
        regime_h,
        regime_w,
        regime_h,
        regime_w,
        regime_h,
        "tau_prime,order,bin_lo,bin_hi,density_n_keys,density_ppp",
        "tau_prime,order,bin_lo,bin_hi,density_n_keys,density_ppp",
        "beta,bin_centre,density,gaussian_density,sigma_perp2",
        "d,n,beta,beta_one_minus_cos,se,limit",
        "beta,kappa0,var_before,var_after_limit,drop_limit,var_after_n_keys,drop_n_keys,n_keys,"
        "two_over_beta"};
    const int nfig = (int)(sizeof names / sizeof names[0]);
    struct ats_reproduce_spec sp = spec0("paper2");
    sp.quick = 1;
    struct ats_run *run;
    int rc = ats_command_find("reproduce")->run_alloc(&run, &sp);
    if (!ATS_CHECK(rc == ATS_STATUS_OK, "paper2 --quick: run_alloc"))
        return;
    double done, total, last = 0;
    ats_run_progress(run, &done, &total);
    ATS_CHECK(done == 0 && total == nfig, "paper2: progress 0 of %d figures", nfig);
    const struct ats_figure *f;
    int k = 0, monotone = 1;
    while ((rc = ats_run_next_figure(run, &f)) == ATS_STATUS_OK && f) {
        if (k == 0) {
            const char *note = ats_run_note(run);
            ATS_CHECK(note && strcmp(note, "paper 2 (arXiv 2605.08505), quick") == 0,
                      "paper2: first note '%s'", note ? note : "(none)");
        }
        while (ats_run_note(run))
            ;
        if (k >= nfig) {
            ATS_CHECK(0, "paper2: an extra figure '%s'", f->name);
            break;
        }
        ATS_CHECK(strcmp(f->name, names[k]) == 0, "paper2 figure %d is %s (%s)", k + 1, names[k],
                  f->name);
        char h[1024];
        header_of(h, sizeof h, f);
        ATS_CHECK(strcmp(h, headers[k]) == 0 && f->nrows == nrows[k], "%s: columns %s, %lld rows",
                  f->name, h, (long long)f->nrows);
        ATS_CHECK(!f->heatmap && f->nseries > 0 && f->series && f->axes.title,
                  "%s: a line plot with a title and %lld series", f->name, (long long)f->nseries);
        if (strcmp(h, headers[k]) == 0 && f->nrows == nrows[k]) {
            if (k < 6)
                check_regime(f, k < 2 ? 3 : k < 4 ? 4 : 6, k % 2 == 0);
            else if (k < 8)
                check_ordered(f, k == 6 ? 1 : 5);
            else if (k == 8)
                check_fluctuation(f);
            else if (k == 9)
                check_bias(f);
            else
                check_heat(f, 1);
        }
        check_saved(f, headers[k]);
        ats_run_progress(run, &done, &total);
        monotone &= done >= last;
        last = done;
        k++;
    }
    ATS_CHECK(rc == ATS_STATUS_OK && k == nfig, "paper2: %d figures, then the end (%s)", k,
              rc ? ats_last_error() : "ok");
    ats_run_progress(run, &done, &total);
    ATS_CHECK(monotone && done == total, "paper2: progress rises to %g of %g", done, total);
    rc = ats_run_next_figure(run, &f);
    ATS_CHECK(rc == ATS_STATUS_OK && !f, "paper2: NULL again after the end");
    ats_run_free(run);
}

// ---------------------------------------------------------------------------
// all: the sub-run figures, then the first phase map of paper 1.

static void test_all_head(void) {
    struct ats_reproduce_spec sp = spec0("all");
    sp.quick = 1;
    struct ats_run *run;
    int rc = ats_command_find("reproduce")->run_alloc(&run, &sp);
    if (!ATS_CHECK(rc == ATS_STATUS_OK, "all --quick: run_alloc"))
        return;
    static const char *const names[] = {
        "simplex_lambda_n1024", "simplex_eta_n1024", "simplex_sharpening",
        "simplex_residual",     "policies",          "paper1_fig1_lambda_d512"};
    static const int64_t nrows[] = {49 * 101, 49 * 101, 6 * 121, 4 * 61, 12 * 200, 25 * 51};
    static const int heat[] = {1, 1, 0, 0, 0, 1};
    const char *simplex_keys = "n,d,rho,alpha,q,gamma,beta,gamma_c,kappa,regime,a_self,rho_out,"
                               "lambda,eta,rho_out_limit,eta_limit";
    for (int k = 0; k < 6; k++) {
        const struct ats_figure *f;
        rc = ats_run_next_figure(run, &f);
        if (!ATS_CHECK(rc == ATS_STATUS_OK && f, "all: figure %d (%s)", k + 1,
                       rc ? ats_last_error() : "ok"))
            break;
        ATS_CHECK(strcmp(f->name, names[k]) == 0 && f->nrows == nrows[k] && f->heatmap == heat[k],
                  "all figure %d: %s with %lld rows, %s (%s, %lld rows)", k + 1, names[k],
                  (long long)nrows[k], heat[k] ? "a heat map" : "lines", f->name,
                  (long long)f->nrows);
        char h[1024];
        header_of(h, sizeof h, f);
        if (k < 4)
            ATS_CHECK(strcmp(h, simplex_keys) == 0, "%s: the simplex record keys", f->name);
        if (k == 0) {
            // The sub-run's records: lambda against the closed form called directly.
            int ok = 1;
            for (int64_t i = 0; i < f->nrows; i += 97) {
                const struct ats_record *r = &f->rows[i];
                struct ats_simplex_params p = ats_simplex_params_default();
                p.n = 1024;
                p.d = 1025;
                p.rho = num(r, "rho");
                p.scale = ATS_SCALE_GAMMA;
                p.gamma = num(r, "gamma");
                struct ats_simplex o;
                ok &= ats_simplex_eval(&o, &p) == ATS_STATUS_OK && o.lambda == num(r, "lambda");
            }
            ATS_CHECK(ok, "simplex_lambda_n1024: lambda = ats_simplex_eval bit for bit");
            ATS_CHECK(f->map.nx == 49 && f->map.ny == 101 && f->nseries >= 1,
                      "simplex_lambda_n1024: a 49 x 101 map with the critical curve");
        }
        if (k == 4)
            ATS_CHECK(f->nseries == 12 && strcmp(str(&f->rows[0], "policy"), "yarn") == 0,
                      "policies: 12 series, yarn first");
        if (k == 5) {
            // ats_run_note's text lives until the next call: copy it.
            char n1[512] = "", n2[512] = "";
            const char *note = ats_run_note(run);
            snprintf(n1, sizeof n1, "%s", note ? note : "(none)");
            note = ats_run_note(run);
            snprintf(n2, sizeof n2, "%s", note ? note : "(none)");
            ATS_CHECK(strcmp(n1, "paper 1 (arXiv 2510.05554), quick") == 0, "note '%s'", n1);
            ATS_CHECK(strcmp(n2, "paper1_fig1_lambda_d512 (n = 256, 1 trial(s) per point)") == 0,
                      "note '%s'", n2);
            while ((note = ats_run_note(run)))
                ATS_CHECK(0, "no further note ('%s')", note);
            ATS_CHECK(strcmp(str(&f->rows[0], "config"), "almost-simplex") == 0 &&
                          num(&f->rows[0], "n") == 256 && num(&f->rows[0], "d") == 512 &&
                          strcmp(str(&f->rows[0], "metric"), "lambda") == 0,
                      "paper1_fig1_lambda_d512: almost-simplex, n = 256, d = 512, lambda");
        }
        header_of(h, sizeof h, f);
        check_saved(f, h);
    }
    ats_run_free(run); // mid-run, with a figure handed out
}

// ---------------------------------------------------------------------------
// Errors and cancellation

static void expect_earg(struct ats_reproduce_spec sp, const char *words, const char *what) {
    struct ats_run *run = NULL;
    int rc = ats_command_find("reproduce")->run_alloc(&run, &sp);
    ATS_CHECK(rc == ATS_STATUS_EARG && strstr(ats_last_error(), words) != NULL, "%s: EARG '%s'",
              what, ats_last_error());
    if (rc == ATS_STATUS_OK)
        ats_run_free(run);
}

static void test_errors(void) {
    const struct ats_command *cmd = ats_command_find("reproduce");
    ATS_CHECK(cmd && cmd->operand == 1 && ats_command_option(cmd, "quick") &&
                  ats_command_option(cmd, "outdir") && ats_command_option(cmd, "seed") &&
                  ats_command_option(cmd, "threads"),
              "reproduce: an operand and quick, outdir, seed, threads");
    expect_earg(spec0(NULL), "name one target: paper1, paper2 or all", "no target");
    expect_earg(spec0("paper3"), "unknown target 'paper3' (paper1, paper2 or all)", "paper3");
    struct ats_reproduce_spec sp = spec0("paper2");
    sp.outdir = "";
    expect_earg(sp, "--outdir: empty directory name", "empty outdir");
    sp = spec0("paper2");
    sp.seed = -1;
    expect_earg(sp, "--seed", "seed -1");
    sp = spec0("paper2");
    sp.threads = 0.5;
    expect_earg(sp, "--threads", "threads 0.5");

    struct ats_run *run;
    sp = spec0("paper2");
    sp.quick = 1;
    int rc = cmd->run_alloc(&run, &sp);
    if (!ATS_CHECK(rc == ATS_STATUS_OK, "paper2: run_alloc"))
        return;
    struct ats_record rec;
    ATS_CHECK(ats_run_next(run, &rec) == ATS_STATUS_EINVAL, "ats_run_next on reproduce: EINVAL");
    ats_run_free(run);

    rc = cmd->run_alloc(&run, &sp);
    const struct ats_figure *f = (const struct ats_figure *)1;
    ats_run_cancel(run);
    rc = ats_run_next_figure(run, &f);
    ATS_CHECK(rc == ATS_STATUS_ECANCEL && f == NULL, "cancelled before the first figure: ECANCEL");
    ATS_CHECK(ats_run_next_figure(run, &f) == ATS_STATUS_ECANCEL, "and it stays failed");
    ats_run_free(run);

    // Cancelled after the first figure of `all` (cheap), inside the next sub-run.
    sp = spec0("all");
    sp.quick = 1;
    rc = cmd->run_alloc(&run, &sp);
    rc = ats_run_next_figure(run, &f);
    ATS_CHECK(rc == ATS_STATUS_OK && f, "all: a first figure");
    ats_run_cancel(run);
    ATS_CHECK(ats_run_next_figure(run, &f) == ATS_STATUS_ECANCEL && !f,
              "all: cancelled after it: ECANCEL");
    ats_run_free(run);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/test_reproduce_run_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_errors();
    test_all_head();
    test_paper2();
    rmdir(dir);
    return ats_test_summary();
}
