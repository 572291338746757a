/*
 * cli.c: the services every attnscale subcommand uses (see cli.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static char last_error[512];

static void remember_error(const char *reason, const char *file, int line, int status) {
    (void)file;
    (void)line;
    (void)status;
    snprintf(last_error, sizeof last_error, "%s", reason);
}

const char *cli_last_error(void) {
    return last_error;
}

void cli_init(struct cli *c, const char *cmd) {
    memset(c, 0, sizeof *c);
    c->cmd = cmd;
    c->verbosity = 2;
    c->format = ATS_FORMAT_JSON;
    c->seed = 1;
    ats_set_error_handler(remember_error);
    optind = 1;
    opterr = 0; // the CLI words its own messages
}

// "attnscale CMD: MESSAGE\n" on stderr.
static void vmessage(const struct cli *c, const char *fmt, va_list ap) {
    fprintf(stderr, "attnscale %s: ", c->cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void cli_usage(const struct cli *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vmessage(c, fmt, ap);
    va_end(ap);
    fprintf(stderr, "Try 'attnscale %s --help'.\n", c->cmd);
    exit(CLI_EXIT_USAGE);
}

void cli_fail(const struct cli *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vmessage(c, fmt, ap);
    va_end(ap);
    exit(CLI_EXIT_FAILURE);
}

void cli_msg(const struct cli *c, int level, const char *fmt, ...) {
    if (c->verbosity < level)
        return;
    va_list ap;
    va_start(ap, fmt);
    vmessage(c, fmt, ap);
    va_end(ap);
}

int cli_common_option(struct cli *c, int opt, const char *arg, const char *help) {
    switch (opt) {
    case CLI_OPT_FORMAT:
        if (strcmp(arg, "json") == 0)
            c->format = ATS_FORMAT_JSON;
        else if (strcmp(arg, "csv") == 0)
            c->format = ATS_FORMAT_CSV;
        else
            cli_usage(c, "--format: '%s' is not json or csv", arg);
        return 1;
    case CLI_OPT_OUTPUT:
        if (!arg[0])
            cli_usage(c, "--output: empty file name");
        c->output = arg;
        return 1;
    case CLI_OPT_SEED:
    case CLI_OPT_THREADS: {
        const struct ats_domain seed = {0, (double)ATS_INT_EXACT_MAX, 0, 0, 1};
        const struct ats_domain threads = {1, 4096, 0, 0, 1};
        const char *name = opt == CLI_OPT_SEED ? "seed" : "threads";
        struct ats_values v;
        cli_values(c, &v, name, arg, opt == CLI_OPT_SEED ? &seed : &threads);
        if (v.count != 1) {
            ats_values_clear(&v);
            cli_usage(c, "--%s takes one value", name);
        }
        if (opt == CLI_OPT_SEED)
            c->seed = (uint64_t)v.v[0];
        else
            c->threads = (int)v.v[0];
        ats_values_clear(&v);
        return 1;
    }
    case CLI_OPT_HELP:
        fputs(help, stdout);
        fputs(CLI_COMMON_HELP, stdout);
        exit(CLI_EXIT_OK);
    case 'q':
        c->verbosity = c->verbosity > 0 ? c->verbosity - 1 : 0;
        return 1;
    case 'v':
        c->verbosity = c->verbosity < 4 ? c->verbosity + 1 : 4;
        return 1;
    }
    return 0;
}

void cli_bad_option(const struct cli *c, int opt, char **argv) {
    // A short option (possibly inside a cluster such as -xq) is named by optopt; a long one
    // by the argument getopt_long stopped at.
    char shortname[3] = {'-', (char)optopt, '\0'};
    const char *name = optopt > 0 && optopt < 128 ? shortname : argv[optind - 1];
    if (opt == ':')
        cli_usage(c, "option '%s' needs a value", name);
    cli_usage(c, "unknown option '%s'", name);
}

// "[0, 1)", "an integer >= 2", "> 0", ... from a domain.
static void describe_domain(char *buf, size_t size, const struct ats_domain *d) {
    const char *kind = d->integer ? "an integer" : "a number";
    if (d->integer && d->hi == (double)ATS_INT_EXACT_MAX && !d->hi_open) {
        snprintf(buf, size, "%s in [%.17g, 2^53]", kind, d->lo);
        return;
    }
    if (isinf(d->lo) && isinf(d->hi))
        snprintf(buf, size, "%s", kind);
    else if (isinf(d->hi))
        snprintf(buf, size, "%s %s %.17g", kind, d->lo_open ? ">" : ">=", d->lo);
    else if (isinf(d->lo))
        snprintf(buf, size, "%s %s %.17g", kind, d->hi_open ? "<" : "<=", d->hi);
    else
        snprintf(buf, size, "%s in %s%.17g, %.17g%s", kind, d->lo_open ? "(" : "[", d->lo, d->hi,
                 d->hi_open ? ")" : "]");
}

void cli_values(const struct cli *c, struct ats_values *v, const char *name, const char *text,
                const struct ats_domain *dom) {
    struct ats_parse_diag diag = {0, 0, NAN};
    last_error[0] = '\0';
    int rc = ats_values_parse(v, text, dom, &diag);
    if (rc == ATS_STATUS_OK)
        return;
    char accepted[128];
    describe_domain(accepted, sizeof accepted, dom);
    if (rc == ATS_STATUS_ENOMEM)
        cli_fail(c, "--%s: %s", name, ats_strerror(rc));
    cli_usage(c, "--%s: '%.*s': %s (accepted: %s; or a list a,b,c or a range lo:hi:k)", name,
              (int)diag.length, text + diag.offset, last_error[0] ? last_error : ats_strerror(rc),
              accepted);
}

void cli_begin(struct cli *c, int argc, char **argv) {
    if (optind < argc)
        cli_usage(c, "unexpected argument '%s'", argv[optind]);
    if (c->output) {
        c->out = fopen(c->output, "w");
        if (!c->out)
            cli_fail(c, "cannot open '%s' for writing: %s", c->output, strerror(errno));
    } else {
        c->out = stdout;
    }
    int rc = ats_writer_alloc(&c->writer, c->out, c->format);
    if (rc != ATS_STATUS_OK)
        cli_fail(c, "%s", ats_strerror(rc));
}

void cli_end_record(struct cli *c) {
    int rc = ats_writer_end_record(c->writer);
    if (rc != ATS_STATUS_OK)
        cli_fail(c, "writing %s: %s", c->output ? c->output : "stdout",
                 last_error[0] ? last_error : ats_strerror(rc));
}

int cli_finish(struct cli *c) {
    ats_writer_free(c->writer);
    c->writer = NULL;
    int bad = fflush(c->out) != 0 || ferror(c->out);
    if (c->out != stdout)
        bad |= fclose(c->out) != 0;
    if (bad)
        cli_fail(c, "writing %s failed", c->output ? c->output : "stdout");
    return CLI_EXIT_OK;
}

int cli_grid_next(int64_t *idx, const struct ats_values *const *axes, int k) {
    for (int i = k - 1; i >= 0; i--) {
        if (++idx[i] < axes[i]->count)
            return 1;
        idx[i] = 0;
    }
    return 0;
}

void cli_mean_se(double *mean, double *se, const double *first, int64_t m, size_t stride) {
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

double cli_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void cli_scale_option(const struct cli *c, struct ats_values *scale, enum ats_scale *kind,
                      int *have, enum ats_scale given, const char *text) {
    static const struct ats_domain dom_nonneg = {0, HUGE_VAL, 0, 0, 0};
    if (*have && given != *kind)
        cli_usage(c, "--gamma and --beta are exclusive: give one of them");
    *kind = given;
    *have = 1;
    ats_values_clear(scale);
    cli_values(c, scale, given == ATS_SCALE_GAMMA ? "gamma" : "beta", text, &dom_nonneg);
}

void cli_check_gamma(const struct cli *c, enum ats_scale kind, const struct ats_values *scale,
                     const struct ats_values *n) {
    if (kind != ATS_SCALE_GAMMA)
        return;
    double gmax = 0, nmax = 0;
    for (int64_t i = 0; i < scale->count; i++)
        gmax = fmax(gmax, scale->v[i]);
    for (int64_t i = 0; i < n->count; i++)
        nmax = fmax(nmax, n->v[i]);
    if (!isfinite(gmax * log(nmax)))
        cli_usage(c, "--gamma: %g log %g overflows beta", gmax, nmax);
}
