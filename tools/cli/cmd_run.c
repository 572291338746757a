/*
 * cmd_run.c: running a command: the records of simplex, phase, query, policies and diagnose
 * written as JSON Lines or CSV (and their --plot drawn), the figures of reproduce saved into
 * --outdir. The experiments themselves are the library's (src/experiments).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

// A spec big enough for every command's (checked against spec_size).
union spec {
    struct ats_simplex_spec simplex;
    struct ats_phase_spec phase;
    struct ats_query_spec query;
    struct ats_policies_spec policies;
    struct ats_diagnose_spec diagnose;
    struct ats_reproduce_spec reproduce;
};

static void show_notes(const struct cli *c, struct ats_run *run) {
    for (const char *note; (note = ats_run_note(run));)
        cli_msg(c, 2, "%s", note);
}

int cli_run_records(const struct ats_command *cmd, int argc, char **argv) {
    struct cli c;
    union spec spec;
    const char *operand;
    if (cmd->spec_size > sizeof spec)
        abort();
    cli_parse(&c, cmd, &spec, &operand, argc, argv);
    struct ats_run *run;
    int rc = cmd->run_alloc(&run, &spec);
    if (rc != ATS_STATUS_OK)
        cli_status(&c, rc);
    show_notes(&c, run);
    c.out = stdout;
    struct ats_atomic *file = NULL;
    if (c.output) {
        if ((rc = ats_command_check_output(cmd, &spec, "--output", c.output)) != ATS_STATUS_OK ||
            (rc = ats_atomic_open(&file, c.output)) != ATS_STATUS_OK)
            cli_status(&c, rc);
        c.out = ats_atomic_stream(file);
    }
    if ((rc = ats_writer_alloc(&c.writer, c.out, c.format)) != ATS_STATUS_OK)
        cli_status(&c, rc);
    int64_t ncol;
    const char *const *cols = ats_run_csv_columns(run, &ncol);
    if (cols)
        ats_writer_csv_columns(c.writer, cols, ncol);
    struct cli_ticker *tick = cli_ticker_start(&c, run);
    struct ats_record rec;
    while ((rc = ats_run_next(run, &rec)) == ATS_STATUS_OK && rec.count > 0) {
        if (ats_writer_record(c.writer, &rec) != ATS_STATUS_OK)
            cli_fail(&c, "writing %s: %s", c.output ? c.output : "stdout", ats_last_error());
        show_notes(&c, run);
    }
    cli_ticker_stop(tick);
    if (rc != ATS_STATUS_OK)
        cli_status(&c, rc);
    show_notes(&c, run);
    const struct ats_figure *fig = ats_run_figure(run);
    const char *plot = ats_command_text(cmd, &spec, "plot");
    if (fig && plot && ats_figure_plot(fig, plot) != ATS_STATUS_OK)
        cli_fail(&c, "--plot: %s", ats_last_error());
    ats_run_free(run);
    cli_spec_clear(cmd, &spec);
    ats_writer_free(c.writer);
    if (file && ats_atomic_commit(file) != ATS_STATUS_OK)
        cli_fail(&c, "%s", ats_last_error());
    if (!file && (fflush(stdout) != 0 || ferror(stdout)))
        cli_fail(&c, "writing stdout failed");
    return CLI_EXIT_OK;
}

int cli_run_reproduce(const struct ats_command *cmd, int argc, char **argv) {
    struct cli c;
    struct ats_reproduce_spec spec;
    const char *operand;
    cli_parse(&c, cmd, &spec, &operand, argc, argv);
    spec.target = operand;
    const char *outdir = spec.outdir ? spec.outdir : "out";
    struct ats_run *run;
    int rc = cmd->run_alloc(&run, &spec);
    if (rc != ATS_STATUS_OK)
        cli_status(&c, rc);
    if (mkdir(outdir, 0777) != 0 && errno != EEXIST)
        cli_fail(&c, "cannot create '%s': %s", outdir, strerror(errno));
    struct cli_ticker *tick = cli_ticker_start(&c, run);
    const struct ats_figure *fig;
    while ((rc = ats_run_next_figure(run, &fig)) == ATS_STATUS_OK && fig) {
        show_notes(&c, run);
        if (ats_figure_save(fig, outdir) != ATS_STATUS_OK)
            cli_fail(&c, "%s", ats_last_error());
        cli_msg(&c, 2, "wrote %s/%s.png and %s.csv", outdir, fig->name, fig->name);
    }
    cli_ticker_stop(tick);
    show_notes(&c, run);
    if (rc != ATS_STATUS_OK)
        cli_status(&c, rc);
    ats_run_free(run);
    return CLI_EXIT_OK;
}
