/*
 * cli.c: the services every attnscale command uses (see cli.h): messages and exit codes, and
 * the one option parser, driven by the library's option tables (struct ats_option), that
 * builds the getopt_long table and the --help text and fills a command's spec.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

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

void cli_status(const struct cli *c, int status) {
    const char *why = ats_last_error()[0] ? ats_last_error() : ats_strerror(status);
    if (status == ATS_STATUS_EARG)
        cli_usage(c, "%s", why);
    cli_fail(c, "%s", why);
}

// ----------------------------------------------------------------------------
// Options

// Long option ids: the command's options from OPT_TABLE, the common ones below it.
enum {
    OPT_FORMAT = 1000,
    OPT_OUTPUT,
    OPT_HELP,
    OPT_TABLE = 1100,
};

static const char output_help[] =
    "Output:\n"
    "  --format json|csv   JSON Lines, one object per record (default), or CSV with a header\n"
    "  --output FILE       write the records to FILE instead of stdout (whole or not at all)\n";

static const char common_help[] =
    "  -q, --quiet         less on stderr (repeatable); -v, --verbose more\n"
    "  -h, --help          this help\n"
    "\n"
    "Numeric options take one value, a list a,b,c or a range lo:hi:k (k evenly spaced\n"
    "values, both ends included; lo:hi:k:log spaces them evenly in log, rounding to integers\n"
    "for integer options); one record is written per combination.\n"
    "\n"
    "Exit status: 0 success, 1 runtime failure, 2 usage error.\n";

// The help text: usage, what the command computes, its options by section, its records.
static void print_help(const struct ats_command *cmd) {
    printf("%s\n%s\n", cmd->usage, cmd->doc);
    for (int64_t i = 0; i < cmd->noptions; i++) {
        const struct ats_option *o = &cmd->options[i];
        if (o->kind == ATS_OPTION_ARRAY)
            continue;
        if (o->section)
            printf("%s%s:\n", i ? "\n" : "", o->section);
        else if (i == 0)
            printf("Options:\n");
        char head[64];
        snprintf(head, sizeof head, "  --%s%s%s", o->name, o->metavar ? " " : "",
                 o->metavar ? o->metavar : "");
        // The help's first line beside the name (or below it when the name is long), the
        // others indented under it.
        const int col = 22;
        const char *h = o->help;
        int len = (int)strlen(head);
        if (len + 1 > col)
            printf("%s\n%*s", head, col, "");
        else
            printf("%-*s", col, head);
        for (const char *e; *h; h = e + 1) {
            e = strchr(h, '\n');
            if (!e)
                e = h + strlen(h) - 1;
            printf("%.*s\n", (int)(e - h), h);
            if (e[1])
                printf("%*s", col, "");
        }
    }
    // reproduce writes figures into --outdir: no records, so no --format or --output.
    printf("\n%s\n%s%s", cmd->records, cmd->operand ? "Common:\n" : output_help, common_help);
}

static void bad_option(const struct cli *c, int opt, char **argv) {
    // A short option (possibly inside a cluster such as -xq) is named by optopt; a long one
    // by the argument getopt_long stopped at.
    char shortname[3] = {'-', (char)optopt, '\0'};
    const char *name = optopt > 0 && optopt < 128 ? shortname : argv[optind - 1];
    if (opt == ':')
        cli_usage(c, "option '%s' needs a value", name);
    cli_usage(c, "unknown option '%s'", name);
}

// Parses the value of option --name; any failure is a usage error naming the option, the
// offending item and the accepted values.
static void parse_values(const struct cli *c, struct ats_values *v, const char *name,
                         const char *text, const struct ats_domain *dom) {
    struct ats_parse_diag diag = {0, 0, NAN};
    int rc = ats_values_parse(v, text, dom, &diag);
    if (rc == ATS_STATUS_OK)
        return;
    char accepted[128];
    ats_domain_describe(accepted, sizeof accepted, dom);
    if (rc == ATS_STATUS_ENOMEM)
        cli_fail(c, "--%s: %s", name, ats_strerror(rc));
    cli_usage(c, "--%s: '%.*s': %s (accepted: %s; or a list a,b,c or a range lo:hi:k)", name,
              (int)diag.length, text + diag.offset, ats_last_error(), accepted);
}

// One option's value into its target in spec.
static void set_option(const struct cli *c, const struct ats_option *o, void *spec,
                       const char *arg) {
    char *t = (char *)spec + o->offset;
    switch (o->kind) {
    case ATS_OPTION_VALUES: {
        // A repeated option replaces its earlier value, as getopt users expect.
        struct ats_values *v = (struct ats_values *)(void *)t;
        ats_values_clear(v);
        parse_values(c, v, o->name, arg, &o->domain);
        break;
    }
    case ATS_OPTION_NUMBER: {
        struct ats_values v;
        parse_values(c, &v, o->name, arg, &o->domain);
        double x = v.v[0];
        int64_t count = v.count;
        ats_values_clear(&v);
        if (count != 1)
            cli_usage(c, "--%s takes one value", o->name);
        memcpy(t, &x, sizeof x);
        break;
    }
    case ATS_OPTION_CHOICE: {
        int n = 0, found = -1;
        for (; o->choices[n]; n++)
            if (strcmp(arg, o->choices[n]) == 0)
                found = n;
        if (found < 0) {
            char list[256] = "";
            for (int i = 0; i < n; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                         i == 0 ? "" : i == n - 1 ? " or " : ", ", o->choices[i]);
            cli_usage(c, "--%s: '%s' is not %s", o->name, arg, list);
        }
        memcpy(t, &found, sizeof found);
        break;
    }
    case ATS_OPTION_FLAG: {
        int one = 1;
        memcpy(t, &one, sizeof one);
        break;
    }
    case ATS_OPTION_TEXT:
        if (!arg[0])
            cli_usage(c, "--%s: empty value", o->name);
        memcpy(t, &arg, sizeof arg);
        break;
    case ATS_OPTION_ARRAY:
        break;
    }
}

void cli_parse(struct cli *c, const struct ats_command *cmd, void *spec, const char **operand,
               int argc, char **argv) {
    memset(c, 0, sizeof *c);
    c->cmd = cmd->name;
    c->verbosity = 2;
    c->format = ATS_FORMAT_JSON;
    cmd->spec_default(spec);
    // On the stack: --help and usage errors exit from inside the loop below, and nothing
    // allocated here may be left behind (LeakSanitizer counts it).
    enum { TABLE_MAX = 64 };
    struct option opts[TABLE_MAX + 6];
    if (cmd->noptions > TABLE_MAX)
        cli_fail(c, "%lld options: the parser takes at most %d", (long long)cmd->noptions,
                 TABLE_MAX);
    memset(opts, 0, sizeof opts);
    int k = 0;
    for (int64_t i = 0; i < cmd->noptions; i++) {
        const struct ats_option *o = &cmd->options[i];
        if (o->kind == ATS_OPTION_ARRAY)
            continue;
        opts[k++] = (struct option){o->name, o->kind == ATS_OPTION_FLAG ? no_argument
                                                                         : required_argument,
                                    NULL, OPT_TABLE + (int)i};
    }
    opts[k++] = (struct option){"format", required_argument, NULL, OPT_FORMAT};
    opts[k++] = (struct option){"output", required_argument, NULL, OPT_OUTPUT};
    opts[k++] = (struct option){"help", no_argument, NULL, OPT_HELP};
    opts[k++] = (struct option){"quiet", no_argument, NULL, 'q'};
    opts[k++] = (struct option){"verbose", no_argument, NULL, 'v'};
    optind = 1;
    opterr = 0; // the CLI words its own messages
    int opt;
    // A leading colon: getopt_long reports a missing value as ':'.
    while ((opt = getopt_long(argc, argv, ":qvh", opts, NULL)) != -1) {
        if ((opt == OPT_FORMAT || opt == OPT_OUTPUT) && cmd->operand)
            cli_usage(c, "--%s does not apply: the figures and their CSV go to --outdir",
                      opt == OPT_FORMAT ? "format" : "output");
        switch (opt) {
        case OPT_FORMAT:
            if (strcmp(optarg, "json") == 0)
                c->format = ATS_FORMAT_JSON;
            else if (strcmp(optarg, "csv") == 0)
                c->format = ATS_FORMAT_CSV;
            else
                cli_usage(c, "--format: '%s' is not json or csv", optarg);
            break;
        case OPT_OUTPUT:
            if (!optarg[0])
                cli_usage(c, "--output: empty file name");
            c->output = optarg;
            break;
        case OPT_HELP:
        case 'h':
            print_help(cmd);
            exit(CLI_EXIT_OK);
        case 'q':
            c->verbosity = c->verbosity > 0 ? c->verbosity - 1 : 0;
            break;
        case 'v':
            c->verbosity = c->verbosity < 4 ? c->verbosity + 1 : 4;
            break;
        default:
            if (opt >= OPT_TABLE && opt < OPT_TABLE + cmd->noptions) {
                set_option(c, &cmd->options[opt - OPT_TABLE], spec, optarg);
                break;
            }
            bad_option(c, opt, argv);
        }
    }
    *operand = NULL;
    if (cmd->operand && optind == argc - 1)
        *operand = argv[optind++];
    else if (cmd->operand)
        optind = argc; // none, or several: the command names the problem
    if (optind < argc)
        cli_usage(c, "unexpected argument '%s'", argv[optind]);
}

void cli_spec_clear(const struct ats_command *cmd, void *spec) {
    for (int64_t i = 0; i < cmd->noptions; i++)
        if (cmd->options[i].kind == ATS_OPTION_VALUES)
            ats_values_clear((struct ats_values *)(void *)((char *)spec + cmd->options[i].offset));
}

// ----------------------------------------------------------------------------
// Progress

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void cli_progress_init(struct cli_progress *p, const struct cli *c) {
    p->on = c->verbosity >= 2 && isatty(2);
    p->shown = 0;
    p->start = p->last = now();
}

void cli_progress_show(struct cli_progress *p, const struct cli *c, const struct ats_run *run,
                       int final) {
    if (!p->on)
        return;
    double t = now(), el = t - p->start;
    // Runs shorter than about two seconds show nothing; then a few updates a second.
    if ((!final && t - p->last < 0.25) || (!p->shown && el < 2))
        return;
    p->last = t;
    p->shown = 1;
    double done, total;
    ats_run_progress(run, &done, &total);
    double frac = total > 0 ? fmin(done / total, 1) : 0;
    char eta[48] = "";
    if (!final && frac > 0)
        snprintf(eta, sizeof eta, ", ETA %.0f s", el * (1 - frac) / frac);
    fprintf(stderr, "\rattnscale %s: %3.0f%% (%.0f/%.0f, %.3g/s), %.1f s%s%12s", c->cmd,
            100 * frac, done, total, done / el, el, eta, "");
    if (final)
        fputc('\n', stderr);
}

struct cli_ticker {
    struct cli_progress p;
    const struct cli *c;
    const struct ats_run *run;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
};

static void *ticker_main(void *arg) {
    struct cli_ticker *t = arg;
    pthread_mutex_lock(&t->mu);
    while (!t->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 250000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&t->cv, &t->mu, &until);
        if (!t->stop)
            cli_progress_show(&t->p, t->c, t->run, 0);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

struct cli_ticker *cli_ticker_start(const struct cli *c, const struct ats_run *run) {
    struct cli_ticker *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    cli_progress_init(&t->p, c);
    t->c = c;
    t->run = run;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    if (!t->p.on || pthread_create(&t->thread, NULL, ticker_main, t) != 0) {
        t->p.on = 0; // no thread: nothing shown
        t->stop = -1;
    }
    return t;
}

void cli_ticker_stop(struct cli_ticker *t) {
    if (!t)
        return;
    if (t->stop == 0) {
        pthread_mutex_lock(&t->mu);
        t->stop = 1;
        pthread_cond_signal(&t->cv);
        pthread_mutex_unlock(&t->mu);
        pthread_join(t->thread, NULL);
        cli_progress_show(&t->p, t->c, t->run, 1);
    }
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    free(t);
}
