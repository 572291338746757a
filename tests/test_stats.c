/*
 * test_stats.c: the statistics unit of the experiment drivers (src/experiments/stats.h).
 *
 * References are computed by NumPy at test time, not by this code: the inputs are generated
 * here from fixed seeds (splitmix64, Box-Muller), written with %.17g (which round-trips every
 * double) to a temporary file, and one /usr/bin/python3 run (popen) of the script embedded
 * below prints NumPy's values with repr (round-trips too): mean and std(ddof=1)/sqrt(m),
 * var(ddof=1) and the fourth-moment standard error written in NumPy, std of all nt np values
 * for the pooled standard error, numpy.median, numpy.histogram. Without python3 or NumPy the
 * test prints "SKIP: ..." and runs every check that does not need them.
 *
 * Checks that need no reference:
 *   - bit-identity with verbatim copies of the CLI code the unit replaces (legacy_* below:
 *     cli_mean_se of tools/cli/cli.c, var_se of cmd_query.c, the pooled Hutchinson standard
 *     error and median of cmd_phase.c, histogram and fig_subcritical's loop of
 *     cmd_reproduce.c), on the same structs and strides those callers use;
 *   - m = 1 and nt np = 1 give NAN, strided equals contiguous, np = 1 pooling equals the plain
 *     standard error, the median sorts its input, histogram edges, the closed top fold and
 *     dropped NaN/Inf/out-of-range values;
 *   - a Monte Carlo check that the variance's standard error is right for N(0, 1) samples;
 *   - broken contracts abort (ATS_ASSERT), in a child process.
 *
 * Tolerances: u = DBL_EPSILON/2 is the unit roundoff; each NumPy comparison states the
 * first-order rounding bound it uses (both codes' errors, ours with left-to-right sums, NumPy's
 * pairwise, whose bound is smaller, bounded the same way).
 *
 * Run: make build/tests/test_stats && build/tests/test_stats
 */
#include <float.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attnscale.h"
#include "experiments/stats.h"
#include "test.h"

static const double u = DBL_EPSILON / 2;

// ---------------------------------------------------------------------------
// Deterministic inputs: splitmix64, u01 in (0, 1), Box-Muller normals.

struct rng {
    uint64_t s;
    int have;
    double spare;
};

static uint64_t splitmix64(struct rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

static double u01(struct rng *r) {
    return ((double)(splitmix64(r) >> 11) + 0.5) * 0x1p-53;
}

static double normal(struct rng *r) {
    if (r->have) {
        r->have = 0;
        return r->spare;
    }
    double rad = sqrt(-2 * log(u01(r))), th = 6.283185307179586 * u01(r);
    r->spare = rad * sin(th);
    r->have = 1;
    return rad * cos(th);
}

static struct rng rng_seed(uint64_t seed) {
    struct rng r = {seed * 0x2545F4914F6CDD1Du + 0x1234567u, 0, 0};
    return r;
}

static double *normals(int64_t m, double mu, double sd, uint64_t seed) {
    double *x = malloc((size_t)m * sizeof *x);
    struct rng r = rng_seed(seed);
    for (int64_t i = 0; i < m; i++)
        x[i] = mu + sd * normal(&r);
    return x;
}

static int same_bits(const double *a, const double *b, int64_t n) {
    return memcmp(a, b, (size_t)n * sizeof *a) == 0;
}

// Rounding errors in units of ref's last place, for INFO lines.
static double ulps(double got, double ref) {
    double a = fabs(ref);
    return fabs(got - ref) / (nextafter(a, INFINITY) - a);
}

// ---------------------------------------------------------------------------
// The CLI code this unit replaces, copied verbatim (only renamed), the bit-identity reference.

// tools/cli/cli.c: cli_mean_se.
static void legacy_cli_mean_se(double *mean, double *se, const double *first, int64_t m,
                               size_t stride) {
    const char *base = (const char *)first;
    double s = 0, v = 0;
    for (int64_t i = 0; i < m; i++)
        s += *(const double *)(base + (size_t)i * stride);
    *mean = s / (double)m;
    for (int64_t i = 0; i < m; i++) {
        double dv = *(const double *)(base + (size_t)i * stride) - *mean;
        v += dv * dv;
    }
    *se = m >= 2 ? sqrt(v / (double)(m - 1) / (double)m) : NAN;
}

// tools/cli/cmd_query.c: var_se.
static void legacy_var_se(double *var, double *se, const struct ats_query_trial *t, int64_t m) {
    double mean, dummy;
    legacy_cli_mean_se(&mean, &dummy, &t[0].perp, m, sizeof *t);
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

// tools/cli/cmd_phase.c: the pooled Hutchinson standard error of metric k (vals: the trial
// means, res: (nt, nb) records with eta_var, mean: cli_mean_se of vals).
static double legacy_pooled_se(const double *vals, const struct ats_layer_metrics *res, int64_t nb,
                               int64_t k, int64_t nt, int64_t np, double mean) {
    double se;
    double ss = 0;
    for (int64_t t = 0; t < nt; t++) {
        double dv = vals[t] - mean, var = res[t * nb + k].eta_var;
        ss += (double)(np - 1) * (np > 1 ? var : 0) + (double)np * dv * dv;
    }
    double tot = (double)(nt * np);
    se = tot > 1 ? sqrt(ss / (tot - 1) / tot) : NAN;
    return se;
}

// tools/cli/cmd_phase.c: cmp_double and median.
static int legacy_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double legacy_median(double *v, int64_t m) {
    qsort(v, (size_t)m, sizeof *v, legacy_cmp_double);
    return m % 2 ? v[m / 2] : 0.5 * (v[m / 2 - 1] + v[m / 2]);
}

// tools/cli/cmd_reproduce.c: histogram (ordered weights).
enum { BINS = 40 };

static void legacy_histogram(double *dens, const struct ats_query_trial *t, int64_t m, int k) {
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

// tools/cli/cmd_reproduce.c: fig_subcritical's fluctuation histogram (one beta).
enum { HB = 30 };

static void legacy_fluct(double *dens, const struct ats_query_trial *t, int64_t trials, double n,
                         double sd) {
    double lo = -4 * sd, width = 8 * sd / HB;
    for (int b = 0; b < HB; b++)
        dens[b] = 0;
    for (int64_t j = 0; j < trials; j++) {
        int b = (int)floor((sqrt(n) * t[j].perp - lo) / width);
        if (b >= 0 && b < HB)
            dens[b] += 1 / ((double)trials * width);
    }
}

// ---------------------------------------------------------------------------
// NumPy cases: each test registers its values (a contiguous copy) and this unit's results;
// after one Python run, compare_cases() checks them against NumPy's.

enum kind { K_MEAN_SE, K_VAR_SE, K_POOLED, K_MEDIAN, K_HIST };
static const char *const kind_names[] = {"mean_se", "var_se", "pooled", "median", "hist"};

enum { MAX_CASES = 48, MAX_VALS = 64 };

struct np_case {
    char name[48];
    enum kind kind;
    double *x; // (m,) contiguous
    int64_t m;
    double par[6]; // pooled: nt, np; hist: lo, hi, nbins, scale, density, weight
    int npar;
    double got[MAX_VALS];
    int ngot;
    double ref[MAX_VALS];
    int nref; // -1 until NumPy answered
};

static struct np_case cases[MAX_CASES];
static int ncases;

static struct np_case *np_case_add(const char *name, enum kind kind, const double *first, int64_t m,
                                   size_t stride) {
    if (ncases == MAX_CASES) {
        fprintf(stderr, "test_stats: raise MAX_CASES\n");
        exit(1);
    }
    struct np_case *c = &cases[ncases++];
    snprintf(c->name, sizeof c->name, "%s", name);
    c->kind = kind;
    c->m = m;
    c->x = malloc((size_t)m * sizeof *c->x);
    for (int64_t i = 0; i < m; i++)
        c->x[i] = *(const double *)((const char *)first + (size_t)i * stride);
    c->nref = -1;
    return c;
}

static const char numpy_script[] =
    "import sys\n"
    "import numpy as np\n"
    "\n"
    "def moments(x):\n"
    "    c = x - x.mean()\n"
    "    return [np.abs(x).mean(), np.mean(c**2), np.mean(np.abs(c)**3), np.mean(c**4)]\n"
    "\n"
    "lines = open(sys.argv[1]).read().split('\\n')\n"
    "i = 0\n"
    "while i < len(lines):\n"
    "    h = lines[i].split()\n"
    "    i += 1\n"
    "    if not h:\n"
    "        continue\n"
    "    name, kind, m = h[0], h[1], int(h[2])\n"
    "    p = [float(s) for s in h[3:]]\n"
    "    x = np.array([float(s) for s in lines[i:i + m]], dtype=np.float64)\n"
    "    i += m\n"
    "    if kind == 'mean_se':\n"
    "        r = [x.mean(), x.std(ddof=1) / np.sqrt(m)] + moments(x)\n"
    "    elif kind == 'var_se':\n"
    "        c = x - x.mean()\n"
    "        m2, m4 = np.mean(c**2), np.mean(c**4)\n"
    "        r = [x.var(ddof=1), np.sqrt(max(m4 - m2 * m2, 0.0) / m)] + moments(x)\n"
    "    elif kind == 'pooled':\n"
    "        nt, npr = int(p[0]), int(p[1])\n"
    "        g = x.reshape(nt, npr)\n"
    "        gm = g.mean(axis=1)\n"
    "        within = ((g - gm[:, None])**2).sum()\n"
    "        between = npr * ((gm - x.mean())**2).sum()\n"
    "        r = [x.std(ddof=1) / np.sqrt(m), within, between, np.abs(x).max()] + moments(x)\n"
    "    elif kind == 'median':\n"
    "        r = [np.median(x)]\n"
    "    elif kind == 'hist':\n"
    "        lo, hi, nbins, scale, density = p[0], p[1], int(p[2]), p[3], p[4] != 0\n"
    "        r = list(np.histogram(x * scale, bins=nbins, range=(lo, hi), density=density)[0])\n"
    "    else:\n"
    "        raise SystemExit('unknown kind ' + kind)\n"
    "    print(name, ' '.join(repr(float(v)) for v in r))\n";

static char tmpdir[64];

static int write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

// Why NumPy cannot run (into why), or 0 when it can.
static int numpy_missing(char *why, size_t size) {
    if (access("/usr/bin/python3", X_OK) != 0) {
        snprintf(why, size, "no /usr/bin/python3");
        return 1;
    }
    if (system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
        snprintf(why, size, "/usr/bin/python3 cannot import numpy; apt-get install python3-numpy");
        return 1;
    }
    return 0;
}

// Writes every case, runs the script once, and fills in each case's ref.
static void run_numpy(void) {
    char script[128], input[128], cmd[400];
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ats_test_stats_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        ATS_CHECK(0, "numpy: temporary directory created");
        return;
    }
    snprintf(script, sizeof script, "%s/stats_ref.py", tmpdir);
    snprintf(input, sizeof input, "%s/cases.txt", tmpdir);
    int ok = write_text(script, numpy_script) == 0;
    FILE *f = fopen(input, "w");
    ok = ok && f;
    for (int k = 0; ok && k < ncases; k++) {
        const struct np_case *c = &cases[k];
        fprintf(f, "%s %s %lld", c->name, kind_names[c->kind], (long long)c->m);
        for (int j = 0; j < c->npar; j++)
            fprintf(f, " %.17g", c->par[j]);
        fprintf(f, "\n");
        for (int64_t i = 0; i < c->m; i++)
            fprintf(f, "%.17g\n", c->x[i]);
    }
    if (f)
        ok = fclose(f) == 0 && ok;
    ATS_CHECK(ok, "numpy: %d cases written to %s", ncases, input);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s", script, input);
    FILE *p = ok ? popen(cmd, "r") : NULL;
    char *line = NULL;
    size_t cap = 0;
    while (p && getline(&line, &cap, p) > 0) {
        char *s = line, *end;
        size_t len = strcspn(s, " \n");
        for (int k = 0; k < ncases; k++) {
            struct np_case *c = &cases[k];
            if (strlen(c->name) != len || strncmp(c->name, s, len) != 0)
                continue;
            s += len;
            c->nref = 0;
            for (double v = strtod(s, &end); end != s && c->nref < MAX_VALS; v = strtod(s, &end)) {
                c->ref[c->nref++] = v;
                s = end;
            }
            break;
        }
    }
    free(line);
    int st = p ? pclose(p) : -1;
    ATS_CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "numpy: %s exited cleanly (status %d)", cmd, st);
    remove(script);
    remove(input);
    rmdir(tmpdir);
}

// ---------------------------------------------------------------------------
// Tolerances (first-order rounding bounds; u the unit roundoff).
//
// A left-to-right sum of m terms errs by at most (m - 1) u sum |x_i|; pairwise summation
// (NumPy) by less, so (m - 1) u bounds both. With the computed mean off by delta <= m u
// mean|x|, the two-pass sum of squares sum (x_i - mean)^2 is exact-mean's plus m delta^2
// (relative delta^2/m2) and rounds by (m + 2) u (subtraction, square, sum).

// Relative bound of one side's two-pass sum of squares (m2: biased variance; mabs: mean|x|).
static double ss_rel(double m, double mabs, double m2) {
    double delta = m * u * mabs;
    return (m + 2) * u + delta * delta / m2;
}

static void check_mean_se(const struct np_case *c) {
    double m = (double)c->m, mabs = c->ref[2], m2 = c->ref[3];
    // Both sums' bounds (m - 1) u sum|x| each, plus the division's rounding.
    double atol = 2 * m * u * mabs + 2 * u * fabs(c->ref[0]);
    ATS_CHECK_CLOSE(c->got[0], c->ref[0], atol, 0,
                    "mean_se %s: mean = numpy mean (2 m u mean|x| rounding bound)", c->name);
    // se = sqrt(ss / (m - 1) / m): half the sum of squares' relative error plus 3 roundings,
    // for each side.
    double rtol = 2 * (ss_rel(m, mabs, m2) / 2 + 3 * u);
    ATS_CHECK_CLOSE(c->got[1], c->ref[1], 0, rtol,
                    "mean_se %s: se = numpy std(ddof=1)/sqrt(m) (rtol %.3g = 2 x two-pass "
                    "bound)",
                    c->name, rtol);
    ats_test_info("mean_se %s: mean off by %.3g ulp, se by %.3g ulp", c->name,
                  ulps(c->got[0], c->ref[0]), ulps(c->got[1], c->ref[1]));
}

static void check_var_se(const struct np_case *c) {
    double m = (double)c->m, mabs = c->ref[2], m2 = c->ref[3], m3 = c->ref[4], m4 = c->ref[5];
    double e2 = ss_rel(m, mabs, m2) + u; // sum c_i, then / m (or / (m - 1))
    ATS_CHECK_CLOSE(c->got[0], c->ref[0], 0, 2 * e2,
                    "var_se %s: var = numpy var(ddof=1) (rtol 2 x two-pass bound %.3g)", c->name,
                    2 * e2);
    // sum c_i^2: c_i^2 = (x_i - mean)^4 carries 7 u and the sum (m - 1) u; the mean's error
    // delta moves it by 4 delta sum|x - mean|^3 to first order; then / m.
    double delta = m * u * mabs;
    double e4 = (m + 7) * u + 4 * delta * m3 / m4 + u;
    // Y = m4 - m2^2 errs by m4 e4 + m2^2 (2 e2 + u) + u |Y| per side, se = sqrt(Y / m), and
    // |sqrt a - sqrt b| <= min(sqrt|a - b|, |a - b| / sqrt b).
    double y = m * c->ref[1] * c->ref[1];
    double dy = 2 * (m4 * e4 + m2 * m2 * (2 * e2 + u) + u * y) / m;
    double tol = c->ref[1] > 0 ? fmin(sqrt(dy), dy / c->ref[1]) : sqrt(dy);
    tol += 3 * u * c->ref[1];
    ATS_CHECK_CLOSE(c->got[1], c->ref[1], tol, 0,
                    "var_se %s: se = numpy sqrt(max(m4 - m2^2, 0)/m) (atol %.3g from the moments' "
                    "bounds)",
                    c->name, tol);
    ats_test_info("var_se %s: var off by %.3g ulp, se by %.3g ulp", c->name,
                  ulps(c->got[0], c->ref[0]), ulps(c->got[1], c->ref[1]));
}

static void check_pooled(const struct np_case *c) {
    double nt = c->par[0], np = c->par[1], n = nt * np;
    double w = c->ref[1], b = c->ref[2], a = c->ref[3], mabs = c->ref[4], m2 = c->ref[5];
    double ss = w + b;
    // Ours, from group means (error <= np u A, A = max|x|), sample variances (relative
    // (np + 3) u, times np - 1: + u, summed with the between term: + u), the grand mean of the
    // means (<= (nt + np) u A), so dv_t = mean_t - mean errs by <= (2 np + nt) u A + u |dv_t|:
    //   err(ss) <= W (np + 5) u + 2 (2 np + nt) u A sum_t np |dv_t| + 4 u B + (nt + 1) u ss,
    // with sum_t np |dv_t| <= sqrt(nt np B) (Cauchy-Schwarz); se = sqrt(ss/(N-1)/N) halves it
    // and adds 3 u. NumPy: std(ddof=1)/sqrt(N) of all N values, the two-pass bound.
    double err_ss = w * (np + 5) * u + 2 * (2 * np + nt) * u * a * sqrt(nt * np * b) + 4 * u * b +
                    (nt + 1) * u * ss;
    double rtol = (ss > 0 ? err_ss / (2 * ss) : 0) + 3 * u + ss_rel(n, mabs, m2) / 2 + 4 * u;
    ATS_CHECK_CLOSE(c->got[0], c->ref[0], 0, rtol,
                    "pooled %s: se = numpy std(all nt np values, ddof=1)/sqrt(nt np) (rtol %.3g, "
                    "the first-order bound of both)",
                    c->name, rtol);
    ats_test_info("pooled %s: identity holds to %.3g ulp (bound %.3g ulp)", c->name,
                  ulps(c->got[0], c->ref[0]), rtol / (2 * u));
}

static void check_median(const struct np_case *c) {
    // Exact: both pick the same order statistics and form (a + b)/2 or 0.5 (a + b), the same
    // rounding of a + b halved exactly (no underflow at these magnitudes).
    ATS_CHECK_CLOSE(c->got[0], c->ref[0], 0, 0, "median %s (m = %lld): = numpy median, exactly",
                    c->name, (long long)c->m);
}

static void check_hist(const struct np_case *c) {
    double lo = c->par[0], hi = c->par[1], nbins = c->par[2], density = c->par[4],
           weight = c->par[5];
    double width = (hi - lo) / nbins;
    int bad = 0;
    double worst = 0;
    for (int b = 0; b < c->ngot; b++) {
        double tol = 0;
        if (density != 0) {
            // Ours: count additions of one weight (count u) after weight's 2 roundings; NumPy:
            // n / diff(edges) / n.sum() (2 u), the diff of two linspace edges, each off by
            // <= u (hi - lo) + u max(|lo|, |hi|) (2 of those), and its width (hi - lo)/nbins
            // against the caller's, hi = fl(lo + nbins width) (3 more): 6 relative to width.
            double count = round(c->got[b] / weight);
            tol =
                ((count + 4) * u + 2 * u + 6 * u * ((hi - lo) + fmax(fabs(lo), fabs(hi))) / width) *
                fabs(c->ref[b]);
        }
        double err = fabs(c->got[b] - c->ref[b]);
        worst = fmax(worst, c->ref[b] != 0 ? err / fabs(c->ref[b]) : err);
        if (!(err <= tol)) {
            if (bad < 5)
                printf("  %s bin %d: got %.17g ref %.17g tol %.3g\n", c->name, b, c->got[b],
                       c->ref[b], tol);
            bad++;
        }
    }
    ATS_CHECK(bad == 0 && c->ngot == c->nref,
              "hist %s: %d bins = numpy.histogram(%s) (%s; %d bad, worst rel %.3g)", c->name,
              c->ngot, density != 0 ? "density=True" : "counts",
              density != 0 ? "count + few ulp rounding bound" : "exact counts", bad, worst);
}

static void compare_cases(void) {
    for (int k = 0; k < ncases; k++) {
        const struct np_case *c = &cases[k];
        int expect = c->kind == K_MEAN_SE || c->kind == K_VAR_SE ? 6
                     : c->kind == K_POOLED                       ? 8
                     : c->kind == K_MEDIAN                       ? 1
                                                                 : c->ngot;
        if (!ATS_CHECK(c->nref == expect, "numpy answered case %s (%d values, want %d)", c->name,
                       c->nref, expect))
            continue;
        switch (c->kind) {
        case K_MEAN_SE:
            check_mean_se(c);
            break;
        case K_VAR_SE:
            check_var_se(c);
            break;
        case K_POOLED:
            check_pooled(c);
            break;
        case K_MEDIAN:
            check_median(c);
            break;
        case K_HIST:
            check_hist(c);
            break;
        }
    }
}

// ---------------------------------------------------------------------------
// Mean and standard error

struct rec {
    double w;
    int32_t tag;
    double x;
    char pad[12];
};

static void mean_case(const char *name, const double *first, int64_t m, size_t stride) {
    struct np_case *c = np_case_add(name, K_MEAN_SE, first, m, stride);
    double lm, ls;
    ats_stat_mean_se(&c->got[0], &c->got[1], first, m, stride);
    c->ngot = 2;
    legacy_cli_mean_se(&lm, &ls, first, m, stride);
    ATS_CHECK(same_bits(&lm, &c->got[0], 1) && same_bits(&ls, &c->got[1], 1),
              "mean_se %s (m = %lld): bit-identical to cli_mean_se", name, (long long)m);
}

static void test_mean_se(void) {
    double one = 2.385, mean, se;
    ats_stat_mean_se(&mean, &se, &one, 1, sizeof one);
    ATS_CHECK(mean == 2.385 && isnan(se), "mean_se m = 1: mean is the value, se NAN (%g, %g)", mean,
              se);

    const double two[2] = {2.385, -0.7173};
    mean_case("mean_m2", two, 2, sizeof *two);
    double *x7 = normals(7, 2.385, 1.7, 11);
    mean_case("mean_m7", x7, 7, sizeof *x7);
    double *big = normals(100003, 2.385, 1.7, 12);
    mean_case("mean_m100003", big, 100003, sizeof *big);
    double *off = normals(4099, 1e4, 0.731, 14); // mean >> sd: the two-pass form matters
    mean_case("mean_offset_m4099", off, 4099, sizeof *off);

    // One field of an array of structs, against the same values contiguous.
    enum { MS = 1009 };
    struct rec *r = calloc(MS, sizeof *r);
    double *xs = normals(MS, -0.4187, 2.9, 13);
    for (int64_t i = 0; i < MS; i++) {
        r[i].w = -1e300;
        r[i].tag = (int32_t)i;
        r[i].x = xs[i];
    }
    double sm, ss, cm, cs;
    ats_stat_mean_se(&sm, &ss, &r[0].x, MS, sizeof *r);
    ats_stat_mean_se(&cm, &cs, xs, MS, sizeof *xs);
    ATS_CHECK(same_bits(&sm, &cm, 1) && same_bits(&ss, &cs, 1),
              "mean_se strided (stride %zu bytes) = contiguous, bit for bit", sizeof *r);
    mean_case("mean_strided_m1009", &r[0].x, MS, sizeof *r);
    free(x7);
    free(big);
    free(off);
    free(r);
    free(xs);
}

// ---------------------------------------------------------------------------
// Variance and its standard error

static struct ats_query_trial *trials_with_perp(const double *x, int64_t m) {
    struct ats_query_trial *t = calloc((size_t)m, sizeof *t);
    for (int64_t i = 0; i < m; i++) {
        t[i].w1 = 0.5;
        t[i].perp = x[i];
        t[i].cos_yq = -x[i];
    }
    return t;
}

static void var_case(const char *name, const double *x, int64_t m) {
    struct ats_query_trial *t = trials_with_perp(x, m);
    struct np_case *c = np_case_add(name, K_VAR_SE, &t[0].perp, m, sizeof *t);
    ats_stat_var_se(&c->got[0], &c->got[1], &t[0].perp, m, sizeof *t);
    c->ngot = 2;
    double lv, ls;
    legacy_var_se(&lv, &ls, t, m);
    ATS_CHECK(same_bits(&lv, &c->got[0], 1) && same_bits(&ls, &c->got[1], 1),
              "var_se %s (m = %lld, stride %zu): bit-identical to cmd_query.c var_se", name,
              (long long)m, sizeof *t);
    double cv, cs;
    ats_stat_var_se(&cv, &cs, x, m, sizeof *x);
    ATS_CHECK(same_bits(&cv, &c->got[0], 1) && same_bits(&cs, &c->got[1], 1),
              "var_se %s: strided = contiguous, bit for bit", name);
    free(t);
}

// For N(2.385, 1) samples of size m (R replicates): E[(m4 - m2^2)/m] = 2 (m-1)(m-2)/m^3
// exactly (E m2^2 = (m-1)(m+1)/m^2 and E m4 = 3 (m-1)^2/m^2 for normal data), so se^2 is
// checked for bias, se against sqrt(2/m), and the spread of the var estimates across
// replicates against Var(s^2) = 2/(m-1), the quantity se estimates. Each at 4 Monte Carlo
// standard errors (THEORY.md 1), plus the stated O(1/m) bias where the target is a limit.
static void test_var_se_monte_carlo(void) {
    enum { M = 200, R = 20000 };
    double *x = malloc(M * sizeof *x), *se2 = malloc(R * sizeof *se2),
           *vars = malloc(R * sizeof *vars);
    struct rng r = rng_seed(2385);
    for (int k = 0; k < R; k++) {
        for (int i = 0; i < M; i++)
            x[i] = 2.385 + normal(&r);
        double se;
        ats_stat_var_se(&vars[k], &se, x, M, sizeof *x);
        se2[k] = se * se;
    }
    double mse2, mse2_se;
    ats_stat_mean_se(&mse2, &mse2_se, se2, R, sizeof *se2);
    double m = M, exact = 2 * (m - 1) * (m - 2) / (m * m * m);
    ATS_CHECK_CLOSE(mse2, exact, 4 * mse2_se, 0,
                    "var_se Monte Carlo (m = %d, %d replicates): mean se^2 = 2(m-1)(m-2)/m^3 "
                    "within 4 Monte Carlo SE",
                    M, R);
    double rms = sqrt(mse2), rms_se = mse2_se / (2 * rms);
    double bias = fabs(sqrt(exact) - sqrt(2 / m));
    ATS_CHECK_CLOSE(rms, sqrt(2 / m), 4 * rms_se + bias, 0,
                    "var_se Monte Carlo: rms se = sqrt(2/m) = %.6f within 4 MC SE + the known "
                    "O(1/m) bias %.3g",
                    sqrt(2 / m), bias);
    double vv, vv_se;
    ats_stat_var_se(&vv, &vv_se, vars, R, sizeof *vars);
    ATS_CHECK_CLOSE(vv, 2 / (m - 1), 4 * vv_se, 0,
                    "var_se Monte Carlo: the var estimates spread with Var(s^2) = 2/(m-1) (what "
                    "se estimates) within 4 of its SE");
    free(x);
    free(se2);
    free(vars);
}

static void test_var_se(void) {
    double one = -0.7173, var, se;
    ats_stat_var_se(&var, &se, &one, 1, sizeof one);
    ATS_CHECK(isnan(var) && isnan(se), "var_se m = 1: NAN, NAN (%g, %g)", var, se);
    const double flat[7] = {0.375, 0.375, 0.375, 0.375, 0.375, 0.375, 0.375};
    ats_stat_var_se(&var, &se, flat, 7, sizeof *flat);
    ATS_CHECK(var == 0 && se == 0, "var_se of constant (dyadic) data: 0, 0 (%g, %g)", var, se);

    // m = 2: c_1 = c_2, so m4 = m2^2 and se = 0 in exact arithmetic; ours gives 0, NumPy's
    // pow(c, 4) rounding leaves ~sqrt(ulp), inside the sqrt|a - b| form of the bound.
    const double two[2] = {2.385, -0.7173};
    var_case("var_m2", two, 2);
    double *x7 = normals(7, 2.385, 1.7, 21);
    var_case("var_m7", x7, 7);
    double *big = normals(100003, -0.4187, 0.0051, 22);
    var_case("var_m100003", big, 100003);
    enum { MU = 5003, ME = 20011 };
    double *un = malloc(MU * sizeof *un), *ex = malloc(ME * sizeof *ex);
    struct rng r = rng_seed(23);
    for (int i = 0; i < MU; i++)
        un[i] = -1.3 + 4.2 * u01(&r);
    for (int i = 0; i < ME; i++) // skewed: the mean's error enters sum c^2 at first order
        ex[i] = 0.4 - 1.9 * log(u01(&r));
    var_case("var_uniform_m5003", un, MU);
    var_case("var_exponential_m20011", ex, ME);
    free(x7);
    free(big);
    free(un);
    free(ex);
    test_var_se_monte_carlo();
}

// ---------------------------------------------------------------------------
// Pooled standard error

// nt groups of np values (group offsets so the between term matters); means and vars as
// cmd_phase has them: a plain array of trial means, eta_var in (nt, nb) records.
static void pooled_case(const char *name, int64_t nt, int64_t np, uint64_t seed) {
    enum { NB = 3, K = 1 };
    int64_t n = nt * np;
    double *x = malloc((size_t)n * sizeof *x), *means = malloc((size_t)nt * sizeof *means);
    struct ats_layer_metrics *res = calloc((size_t)(nt * NB), sizeof *res);
    struct rng r = rng_seed(seed);
    for (int64_t t = 0; t < nt; t++) {
        double off = 0.6 * normal(&r);
        for (int64_t j = 0; j < np; j++)
            x[t * np + j] = 2.385 + off + 1.3 * normal(&r);
        double se;
        ats_stat_mean_se(&means[t], &se, &x[t * np], np, sizeof *x);
        double var = NAN; // NAN for one probe, as ats_layer_metrics reports it
        if (np > 1)
            ats_stat_var_se(&var, &se, &x[t * np], np, sizeof *x);
        for (int64_t k = 0; k < NB; k++)
            res[t * NB + k].eta_var = k == K ? var : 1e300;
    }
    double mean, mse;
    ats_stat_mean_se(&mean, &mse, means, nt, sizeof *means);
    struct np_case *c = np_case_add(name, K_POOLED, x, n, sizeof *x);
    c->par[0] = (double)nt;
    c->par[1] = (double)np;
    c->npar = 2;
    c->got[0] = ats_stat_pooled_se(means, sizeof *means, &res[0 * NB + K].eta_var, NB * sizeof *res,
                                   nt, np, mean);
    c->ngot = 1;
    double legacy = legacy_pooled_se(means, res, NB, K, nt, np, mean);
    ATS_CHECK(same_bits(&legacy, &c->got[0], 1),
              "pooled %s (nt = %lld, np = %lld): bit-identical to cmd_phase.c's pooled se", name,
              (long long)nt, (long long)np);
    if (np == 1) {
        double ignored = ats_stat_pooled_se(means, sizeof *means, NULL, 0, nt, np, mean);
        ATS_CHECK(same_bits(&ignored, &c->got[0], 1) && same_bits(&mse, &c->got[0], 1),
                  "pooled %s: np = 1 ignores vars (NULL or NAN alike) and equals mean_se's se "
                  "of the means bit for bit (%.17g)",
                  name, mse);
    }
    free(x);
    free(means);
    free(res);
}

static void test_pooled_se(void) {
    double m1 = 2.385;
    double se = ats_stat_pooled_se(&m1, sizeof m1, NULL, 0, 1, 1, m1);
    ATS_CHECK(isnan(se), "pooled nt = np = 1: NAN (%g)", se);
    pooled_case("pooled_nt1_np9", 1, 9, 31);
    pooled_case("pooled_nt3_np2", 3, 2, 32);
    pooled_case("pooled_nt5_np8", 5, 8, 33);
    pooled_case("pooled_nt37_np16", 37, 16, 34);
    pooled_case("pooled_nt64_np1", 64, 1, 35);
}

// ---------------------------------------------------------------------------
// Median

static void median_case(const char *name, const double *x, int64_t m) {
    struct np_case *c = np_case_add(name, K_MEDIAN, x, m, sizeof *x);
    double *v = malloc((size_t)m * sizeof *v), *w = malloc((size_t)m * sizeof *w);
    memcpy(v, x, (size_t)m * sizeof *v);
    memcpy(w, x, (size_t)m * sizeof *w);
    c->got[0] = ats_stat_median(v, m);
    c->ngot = 1;
    int sorted = 1;
    for (int64_t i = 1; i < m; i++)
        sorted &= v[i - 1] <= v[i];
    double legacy = legacy_median(w, m);
    ATS_CHECK(sorted && same_bits(&legacy, &c->got[0], 1) && same_bits(v, w, m),
              "median %s (m = %lld): v sorted in place, result and order bit-identical to "
              "cmd_phase.c's",
              name, (long long)m);
    free(v);
    free(w);
}

static void test_median(void) {
    const double one[1] = {-0.7173};
    median_case("median_m1", one, 1);
    const double two[2] = {2.385, -0.7173};
    median_case("median_m2", two, 2);
    double *x7 = normals(7, 2.385, 1.7, 41);
    median_case("median_m7", x7, 7);
    const double ties[10] = {3.125, -1.75, 2.385, 0.5, 2.385, -1.75, 2.385, 3.125, 0.5, 2.385};
    median_case("median_ties_m10", ties, 10);
    const double ties_mid[6] = {0.5, 2.385, -1.75, 2.385, 3.125, -0.125};
    median_case("median_ties_middle_m6", ties_mid, 6);
    const double flat[5] = {1.0625, 1.0625, 1.0625, 1.0625, 1.0625};
    median_case("median_all_equal_m5", flat, 5);
    double *x1000 = normals(1001, -0.4187, 2.9, 42);
    median_case("median_m1000", x1000, 1000);
    median_case("median_m1001", x1000, 1001);
    double *tied = malloc(999 * sizeof *tied);
    struct rng r = rng_seed(43);
    for (int i = 0; i < 999; i++)
        tied[i] = ties[splitmix64(&r) % 10];
    median_case("median_ties_m999", tied, 999);
    free(x7);
    free(x1000);
    free(tied);
}

// ---------------------------------------------------------------------------
// Histograms

static struct np_case *hist_case(const char *name, const double *x, int64_t m, double lo,
                                 double width, int64_t nbins, double scale, double weight,
                                 int closed, int density) {
    struct np_case *c = np_case_add(name, K_HIST, x, m, sizeof *x);
    c->par[0] = lo;
    c->par[1] = lo + (double)nbins * width;
    c->par[2] = (double)nbins;
    c->par[3] = scale;
    c->par[4] = density;
    c->par[5] = weight;
    c->npar = 6;
    ats_stat_histogram(c->got, nbins, lo, width, x, m, sizeof *x, scale, weight, closed);
    c->ngot = (int)nbins;
    return c;
}

static double total(const double *d, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += d[i];
    return s;
}

// In range and out of range on dyadic edges (lo = -3.25, width = 3/8: edges, x - lo and
// (x - lo)/width at edges are exact in both codes, so edge values bin alike).
static void test_histogram_numpy_cases(void) {
    enum { NB = 17, MI = 5003, MO = 4001 };
    const double lo = -3.25, width = 0.375, hi = lo + NB * width;
    struct rng r = rng_seed(51);
    double *in = malloc((MI + NB + 1) * sizeof *in);
    int64_t m = 0;
    for (int i = 0; i < MI; i++)
        in[m++] = lo + (hi - lo) * u01(&r);
    for (int k = 0; k <= NB; k++) // every edge, lo and the closed top hi included
        in[m++] = lo + k * width;
    hist_case("hist_in_range_closed", in, m, lo, width, NB, 1, 1 / ((double)m * width), 1, 1);
    hist_case("hist_in_range_counts", in, m, lo, width, NB, 1, 1, 1, 0);

    // Normal data spilling out on both sides. Open top: values just above hi are dropped by
    // both (NumPy keeps hi itself, so hi is left out here).
    double *out = normals(MO + 2, 0.4, 2.5, 52);
    out[MO] = nextafter(hi, INFINITY);
    out[MO + 1] = nextafter(lo, -INFINITY);
    double cnt[NB];
    ats_stat_histogram(cnt, NB, lo, width, out, MO + 2, sizeof *out, 1, 1, 0);
    double inside = total(cnt, NB);
    ATS_CHECK(inside > 0 && inside < MO, "hist open top: %g of %d values in range", inside, MO + 2);
    hist_case("hist_out_of_range_counts", out, MO + 2, lo, width, NB, 1, 1, 0, 0);
    hist_case("hist_out_of_range_density", out, MO + 2, lo, width, NB, 1, 1 / (inside * width), 0,
              1);

    // Closed top with values out of range: closed folds [hi, hi + width) into the last bin,
    // NumPy drops (hi, ...), so that interval is left out of this data set (hi itself kept).
    double *cl = normals(MO + 1, 0.4, 2.5, 53);
    int64_t mc = 0;
    for (int64_t i = 0; i < MO; i++)
        if (!(cl[i] > hi && cl[i] < hi + width))
            cl[mc++] = cl[i];
    cl[mc++] = hi;
    hist_case("hist_closed_out_of_range_counts", cl, mc, lo, width, NB, 1, 1, 1, 0);

    // The fluctuation histogram (fig_subcritical): scale sqrt(n), non-dyadic width; random
    // values (no edge hits), and two far outliers dropped.
    const double n = 2e4, sd = sqrt(0.5), flo = -4 * sd, fw = 8 * sd / HB;
    double *perp = normals(2002, 0, sd / sqrt(n), 54);
    perp[2000] = 4.5 * sd / sqrt(n);
    perp[2001] = -7 * sd / sqrt(n);
    double fc[HB];
    ats_stat_histogram(fc, HB, flo, fw, perp, 2002, sizeof *perp, sqrt(n), 1, 0);
    hist_case("hist_fluctuation_counts", perp, 2002, flo, fw, HB, sqrt(n), 1, 0, 0);
    hist_case("hist_fluctuation_density", perp, 2002, flo, fw, HB, sqrt(n),
              1 / (total(fc, HB) * fw), 0, 1);

    // The ordered-weight recipe (scale BINS, lo 0, width 1) against NumPy on the raw weights
    // over (0, 1): the same bins away from the edges.
    double *t = malloc(3001 * sizeof *t);
    for (int i = 0; i < 3001; i++)
        t[i] = pow(u01(&r), 2.7);
    struct np_case *c =
        hist_case("hist_ordered_recipe", t, 3001, 0, 1, BINS, BINS, (double)BINS / 3001, 1, 1);
    c->par[1] = 1; // NumPy's range (0, 1) on t itself (scale 1), width 1/BINS
    c->par[3] = 1;
    free(in);
    free(out);
    free(cl);
    free(perp);
    free(t);
}

static void test_histogram(void) {
    // The ordered-weight histogram: weights in [0, 1] with every edge k/BINS, its neighbours
    // and the random values in between, in cmd_reproduce's struct.
    enum { MR = 2000, ME = 3 * (BINS + 1) };
    struct ats_query_trial *t = calloc(MR + ME, sizeof *t);
    struct rng r = rng_seed(61);
    int64_t m = 0;
    for (int k = 0; k <= BINS; k++) {
        double e = (double)k / BINS;
        t[m++].top[1] = e;
        t[m++].top[1] = nextafter(e, -1);
        t[m++].top[1] = nextafter(e, 2);
    }
    for (int i = 0; i < MR; i++)
        t[m++].top[1] = u01(&r) * u01(&r);
    double got[BINS], ref[BINS], natural[BINS];
    legacy_histogram(ref, t, m, 1);
    ats_stat_histogram(got, BINS, 0, 1, &t[0].top[1], m, sizeof *t, BINS, (double)BINS / (double)m,
                       1);
    ATS_CHECK(same_bits(got, ref, BINS),
              "histogram ordered weights (scale BINS, lo 0, width 1, closed): bit-identical to "
              "cmd_reproduce.c's histogram, %lld values incl. every edge k/%d and neighbours",
              (long long)m, BINS);
    int differ = 0;
    for (int k = 0; k <= BINS; k++) {
        double e = (double)k / BINS;
        differ += floor(e / (1.0 / BINS)) != floor(e * BINS);
    }
    ats_stat_histogram(natural, BINS, 0, 1.0 / BINS, &t[0].top[1], m, sizeof *t, 1,
                       (double)BINS / (double)m, 1);
    ats_test_info("histogram: width = 1.0/%d instead of scale %d bins %d of the %d edges k/%d "
                  "differently (fl(1/%d) > 1/%d); the histograms %s",
                  BINS, BINS, differ, BINS + 1, BINS, BINS, BINS,
                  same_bits(natural, ref, BINS) ? "agree anyway" : "differ");

    // The fluctuation histogram, in cmd_reproduce's struct (n = 2e4, sigma_perp^2 = 0.5).
    enum { TR = 400 };
    struct ats_query_trial *f = calloc(TR, sizeof *f);
    const double n = 2e4, sd = sqrt(0.5);
    for (int j = 0; j < TR; j++)
        f[j].perp = 1.15 * sd / sqrt(n) * normal(&r);
    double fl[HB], fs[HB];
    legacy_fluct(fl, f, TR, n, sd);
    double lo = -4 * sd, width = 8 * sd / HB;
    ats_stat_histogram(fs, HB, lo, width, &f[0].perp, TR, sizeof *f, sqrt(n),
                       1 / ((double)TR * width), 0);
    ATS_CHECK(same_bits(fs, fl, HB),
              "histogram fluctuations (scale sqrt(n), open top): bit-identical to "
              "fig_subcritical's loop (%g of %d values in range)",
              total(fs, HB) * TR * width, TR);

    // Edge semantics, on lo = 0, width = 0.25, 4 bins (hi = 1): -0 and lo go to bin 0, hi to
    // the last bin only when closed, [hi, hi + width) folds into it when closed, NaN, +-Inf,
    // huge and negative values are dropped.
    const double e[] = {-0.0, 0,        0.25,      1,     1.2,    1.25, -1e-300,
                        NAN,  INFINITY, -INFINITY, 1e300, -1e300, 0.999};
    const int64_t ne = (int64_t)(sizeof e / sizeof *e);
    double hc[4], ho[4];
    ats_stat_histogram(hc, 4, 0, 0.25, e, ne, sizeof *e, 1, 1, 1);
    ats_stat_histogram(ho, 4, 0, 0.25, e, ne, sizeof *e, 1, 1, 0);
    ATS_CHECK(hc[0] == 2 && hc[1] == 1 && hc[2] == 0 && hc[3] == 3,
              "histogram closed: -0, 0 -> bin 0; 0.25 -> bin 1; 0.999, 1, 1.2 -> bin 3; 1.25, "
              "-1e-300, NaN, +-Inf, +-1e300 dropped (%g %g %g %g)",
              hc[0], hc[1], hc[2], hc[3]);
    ATS_CHECK(ho[0] == 2 && ho[1] == 1 && ho[2] == 0 && ho[3] == 1,
              "histogram open: 1 and 1.2 dropped too (%g %g %g %g)", ho[0], ho[1], ho[2], ho[3]);
    double z[3] = {5, 5, 5};
    ats_stat_histogram(z, 3, 0, 1, NULL, 0, sizeof(double), 1, 1, 1);
    ATS_CHECK(z[0] == 0 && z[1] == 0 && z[2] == 0, "histogram of m = 0 values: zeroed");
    free(t);
    free(f);
    test_histogram_numpy_cases();
}

// ---------------------------------------------------------------------------
// Contracts: ATS_ASSERT aborts (checked in a child, its message silenced).

#ifndef NDEBUG
static int aborts(void (*fn)(void)) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stderr))
            _exit(3);
        fn();
        _exit(0);
    }
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return 0;
    return WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
}

static void median_empty(void) {
    double v[1] = {1};
    (void)ats_stat_median(v, 0);
}

static void histogram_zero_width(void) {
    double d[2], x[1] = {1};
    ats_stat_histogram(d, 2, 0, 0, x, 1, sizeof *x, 1, 1, 0);
}

static void mean_short_stride(void) {
    double x[2] = {1, 2}, mean, se;
    ats_stat_mean_se(&mean, &se, x, 2, 4);
}

static void pooled_no_vars(void) {
    double mu[2] = {1, 2};
    (void)ats_stat_pooled_se(mu, sizeof *mu, NULL, sizeof *mu, 2, 3, 1.5);
}

static void test_contracts(void) {
    ATS_CHECK(aborts(median_empty), "contract: median of m = 0 aborts");
    ATS_CHECK(aborts(histogram_zero_width), "contract: histogram width 0 aborts");
    ATS_CHECK(aborts(mean_short_stride), "contract: mean_se stride < sizeof(double) aborts");
    ATS_CHECK(aborts(pooled_no_vars), "contract: pooled se with np > 1 and vars NULL aborts");
}
#endif

int main(void) {
    test_mean_se();
    test_var_se();
    test_pooled_se();
    test_median();
    test_histogram();
#ifndef NDEBUG
    test_contracts();
#else
    printf("SKIP: contract checks (NDEBUG build: ATS_ASSERT is off)\n");
#endif
    char why[128];
    if (numpy_missing(why, sizeof why)) {
        printf("SKIP: %d NumPy reference comparisons (%s)\n", ncases, why);
    } else {
        run_numpy();
        compare_cases();
    }
    for (int k = 0; k < ncases; k++)
        free(cases[k].x);
    return ats_test_summary();
}
