/*
 * cli.h: the attnscale command-line tool. Every command is an experiment of the library
 * (struct ats_command): the CLI builds getopt_long and --help from the command's option table,
 * fills its spec, runs it and writes the records (or, for reproduce, saves the figures).
 * Only include/attnscale.h is used from the library.
 */
#ifndef ATS_CLI_H
#define ATS_CLI_H

#include <stdio.h>

#include "attnscale.h"

enum { CLI_EXIT_OK = 0, CLI_EXIT_FAILURE = 1, CLI_EXIT_USAGE = 2 };

// State common to every command: its name, verbosity (0 quiet .. 4, default 2) and output.
struct cli {
    const char *cmd;      // "simplex", ...
    int verbosity;
    enum ats_format format;
    const char *output;   // NULL: stdout
    FILE *out;
    struct ats_writer *writer;
};

// Usage error: "attnscale CMD: MESSAGE" and a hint to --help on stderr, exit 2.
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3), noreturn))
#endif
void cli_usage(const struct cli *c, const char *fmt, ...);

// Runtime failure: "attnscale CMD: MESSAGE" on stderr, exit 1.
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3), noreturn))
#endif
void cli_fail(const struct cli *c, const char *fmt, ...);

// Diagnostics on stderr when verbosity >= level.
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
void cli_msg(const struct cli *c, int level, const char *fmt, ...);

// A failed library call: a usage error (exit 2) for ATS_STATUS_EARG, else a runtime failure
// (exit 1), with the library's reason.
#if defined(__GNUC__)
__attribute__((noreturn))
#endif
void cli_status(const struct cli *c, int status);

// Parses argv (argv[0] the command's name) into spec through cmd's option table and the
// common options; *operand receives the positional operand of a command that takes one (NULL
// when absent). Exits 0 after --help, 2 on a usage error.
void cli_parse(struct cli *c, const struct ats_command *cmd, void *spec, const char **operand,
               int argc, char **argv);

// Frees what cli_parse allocated in spec (the value lists).
void cli_spec_clear(const struct ats_command *cmd, void *spec);

// Progress on stderr (a line only when stderr is a terminal and verbosity >= 2, from two
// seconds into the run: share done, count, rate, elapsed time and ETA), a few updates a
// second; final = 1 ends the line (when one was shown).
struct cli_progress {
    int on, shown;
    double start, last;
};
void cli_progress_init(struct cli_progress *p, const struct cli *c);
void cli_progress_show(struct cli_progress *p, const struct cli *c, const struct ats_run *run,
                       int final);

// A thread that shows the progress of run while the caller steps it (a single record or
// figure can take minutes); cli_ticker_stop joins it and shows the final line.
struct cli_ticker;
struct cli_ticker *cli_ticker_start(const struct cli *c, const struct ats_run *run);
void cli_ticker_stop(struct cli_ticker *t); // NULL is fine

// Runs a record command: parse, run, write, draw its --plot. Returns the exit status.
int cli_run_records(const struct ats_command *cmd, int argc, char **argv);

// `reproduce`: saves each figure of the run into --outdir.
int cli_run_reproduce(const struct ats_command *cmd, int argc, char **argv);

#endif // ATS_CLI_H
