/*
 * cli.h: what the attnscale subcommands share: usage errors (exit 2), runtime failures
 * (exit 1), numeric option values, the common output options and the record writer.
 * Only include/attnscale.h is used from the library.
 */
#ifndef ATS_CLI_H
#define ATS_CLI_H

#include <getopt.h>
#include <stddef.h>

#include "attnscale.h"

enum { CLI_EXIT_OK = 0, CLI_EXIT_FAILURE = 1, CLI_EXIT_USAGE = 2 };

// State common to every command: its name, verbosity (0 quiet .. 4, default 2) and output.
struct cli {
    const char *cmd;        // "simplex", ...
    int verbosity;
    enum ats_format format;
    const char *output;     // NULL: stdout
    uint64_t seed;          // --seed (default 1)
    int threads;            // --threads (0: the OpenMP default)
    FILE *out;
    struct ats_writer *writer;
};

// Long option ids shared by the commands (above the range of short option characters).
enum {
    CLI_OPT_FORMAT = 1000,
    CLI_OPT_OUTPUT,
    CLI_OPT_HELP,
    CLI_OPT_SEED,
    CLI_OPT_THREADS,
    // policy parameters (policy_opts.c)
    CLI_OPT_TRAIN_LEN,
    CLI_OPT_FACTOR,
    CLI_OPT_MAX_LEN,
    CLI_OPT_MSCALE,
    CLI_OPT_MSCALE_ALL_DIM,
    CLI_OPT_ATTENTION_FACTOR,
    CLI_OPT_FINETUNED,
    CLI_OPT_FLOOR_SCALE,
    CLI_OPT_ATTN_SCALE,
    CLI_OPT_BETA_SLOPE,
    CLI_OPT_TEMPERATURE_LEN,
    CLI_OPT_SLOPE,
    CLI_OPT_POLICY_D,
    CLI_OPT_FIRST_COMMAND_OPTION, // commands number their own options from here
};

// getopt_long entries for --format, --output, --seed, --threads, --help, -q, -v.
#define CLI_COMMON_OPTIONS                                                                     \
    {"format", required_argument, NULL, CLI_OPT_FORMAT},                                      \
        {"output", required_argument, NULL, CLI_OPT_OUTPUT},                                  \
        {"seed", required_argument, NULL, CLI_OPT_SEED},                                      \
        {"threads", required_argument, NULL, CLI_OPT_THREADS},                                \
        {"help", no_argument, NULL, CLI_OPT_HELP}, {"quiet", no_argument, NULL, 'q'},         \
        {"verbose", no_argument, NULL, 'v'}
#define CLI_COMMON_SHORT ":qv" // leading colon: getopt_long reports a missing value as ':'

// The help lines for the common options.
#define CLI_COMMON_HELP                                                                        \
    "Output:\n"                                                                                \
    "  --format json|csv   JSON Lines, one object per record (default), or CSV with a header\n" \
    "  --output FILE       write the records to FILE instead of stdout\n"                      \
    "  --seed S            random seed, an integer >= 0 (default 1); results do not depend\n"  \
    "                      on the thread count\n"                                              \
    "  --threads T         threads, an integer >= 1 (default: OMP_NUM_THREADS or all cores)\n" \
    "  -q, --quiet         less on stderr (repeatable); -v, --verbose more\n"                  \
    "  --help              this help\n"                                                       \
    "\n"                                                                                       \
    "Numeric options take one value, a list a,b,c or a range lo:hi:k (k evenly spaced\n"     \
    "values, both ends included; lo:hi:k:log spaces them evenly in log, rounding to integers\n" \
    "for integer options); one record is written per combination.\n"                          \
    "\n"                                                                                       \
    "Exit status: 0 success, 1 runtime failure, 2 usage error.\n"

void cli_init(struct cli *c, const char *cmd);

// Handles a common option (returns 1) or not (returns 0). Exits 0 after printing help.
int cli_common_option(struct cli *c, int opt, const char *arg, const char *help);

// getopt_long's ':' (a value is missing) and '?' (unknown option) as usage errors (exit 2).
#if defined(__GNUC__)
__attribute__((noreturn))
#endif
void cli_bad_option(const struct cli *c, int opt, char **argv);

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

// Parses the value of option --name through ats_values_parse; any failure is a usage error
// naming the option, the offending item and the accepted values.
void cli_values(const struct cli *c, struct ats_values *v, const char *name, const char *text,
                const struct ats_domain *dom);

// The value lists of --gamma / --beta (one of them, exclusive): a repeated option replaces its
// earlier value; giving the other one is a usage error. *have says whether either was given.
void cli_scale_option(const struct cli *c, struct ats_values *scale, enum ats_scale *kind,
                      int *have, enum ats_scale given, const char *text);

// With --gamma, beta = gamma log n must be finite for every pair of values: a usage error
// before any record is written otherwise.
void cli_check_gamma(const struct cli *c, enum ats_scale kind, const struct ats_values *scale,
                     const struct ats_values *n);

// The last reason the library gave for an error ("" if none).
const char *cli_last_error(void);

// Opens the output and the writer after option parsing; rejects stray operands.
void cli_begin(struct cli *c, int argc, char **argv);

// Emits the record under construction; exits 1 on a write error.
void cli_end_record(struct cli *c);

// Flushes and closes the output; returns the exit status.
int cli_finish(struct cli *c);

// Advances the odometer idx over the value lists axes[0..k) (the last varies fastest);
// returns 0 once every combination has been visited.
int cli_grid_next(int64_t *idx, const struct ats_values *const *axes, int k);

// getopt_long entries and help for the policy parameters.
#define CLI_POLICY_OPTIONS                                                                     \
    {"train-len", required_argument, NULL, CLI_OPT_TRAIN_LEN},                                \
        {"factor", required_argument, NULL, CLI_OPT_FACTOR},                                  \
        {"max-len", required_argument, NULL, CLI_OPT_MAX_LEN},                                \
        {"mscale", required_argument, NULL, CLI_OPT_MSCALE},                                  \
        {"mscale-all-dim", required_argument, NULL, CLI_OPT_MSCALE_ALL_DIM},                  \
        {"attention-factor", required_argument, NULL, CLI_OPT_ATTENTION_FACTOR},              \
        {"finetuned", no_argument, NULL, CLI_OPT_FINETUNED},                                  \
        {"floor-scale", required_argument, NULL, CLI_OPT_FLOOR_SCALE},                        \
        {"attn-scale", required_argument, NULL, CLI_OPT_ATTN_SCALE},                          \
        {"beta-slope", required_argument, NULL, CLI_OPT_BETA_SLOPE},                          \
        {"temperature-len", required_argument, NULL, CLI_OPT_TEMPERATURE_LEN},                \
        {"slope", required_argument, NULL, CLI_OPT_SLOPE}

#define CLI_POLICY_HELP                                                                        \
    "Policy parameters (one value each; absent: the policy's shipped default, see --list):\n"  \
    "  --train-len L         original/training length (Qwen seq_length; YaRN, LongRoPE and\n"  \
    "                        DeepSeek original length; Mistral L0; critical normalisation)\n" \
    "  --factor S            YaRN, GPT-OSS, LongRoPE, DeepSeek scale factor\n"                \
    "  --max-len M           max_position_embeddings (LongRoPE/YaRN s = M/L without\n"        \
    "                        --factor; dynamic YaRN cache; DeepSeek deployment length)\n"     \
    "  --mscale C, --mscale-all-dim C, --attention-factor A   YaRN/DeepSeek magnitudes\n"    \
    "  --finetuned           dynamic YaRN starts at s = M/L\n"                                \
    "  --floor-scale F, --attn-scale A   Llama 4 (Inkling: N_floor, alpha)\n"                \
    "  --beta-slope B        Mistral; --temperature-len T Grok-2; --slope S SSMax\n"          \
    "  --d D                 head dimension of sphere-critical\n"

// Handles a policy parameter option into p (returns 1) or not (0).
int cli_policy_option(const struct cli *c, int opt, const char *arg,
                      struct ats_policy_params *p);

// Adds the explicitly given parameters to the record (keys with '_' for '-').
void cli_policy_params_record(struct ats_writer *w, const struct ats_policy_params *p);

// "yarn, yarn-dynamic, ..." for messages.
const char *cli_policy_names(void);

// Mean of m doubles and its standard error (sample sd / sqrt(m); NAN for m < 2), THEORY.md 1.
// The values are first[0], first[stride], ... with stride in bytes, so one field of an array
// of records is averaged in place (stride sizeof(double) for a plain array).
void cli_mean_se(double *mean, double *se, const double *first, int64_t m, size_t stride);

// Monotonic seconds, for progress lines.
double cli_now(void);

// A record grid for --plot: the value lists of the axes, outermost first, gamma (or beta) the
// last (fastest); names are the options' names; ax_rho and ax_n index the rho and n axes.
struct cli_grid {
    const struct ats_values *const *axes;
    const char *const *names;
    int naxes, ax_rho, ax_n;
    enum ats_scale kind;
};

// Checks --plot FILE against the grid before any record is written (usage errors): the
// extension, at most 10^8 records, several increasing gamma values, and for a heat map (rho
// with several values) one value on every other axis and increasing rho. Returns the number
// of records.
int64_t cli_grid_plot_check(const struct cli *c, const char *path, const struct cli_grid *g);

// Draws z (one value per record, in record order; zerr NULL or error bar half-lengths, used
// by line plots) as a heat map over (rho, gamma) with the dashed critical curve when rho
// has several values, else as lines against gamma; colour range [zlo, zhi] (NAN: the data's).
void cli_grid_plot(const struct cli *c, const char *path, const struct cli_grid *g,
                   const char *title, const char *zlabel, double zlo, double zhi, const double *z,
                   const double *zerr);

// Subcommands: argv[0] is the command name.
int cmd_simplex(int argc, char **argv);
int cmd_policies(int argc, char **argv);
int cmd_diagnose(int argc, char **argv);
int cmd_query(int argc, char **argv);
int cmd_phase(int argc, char **argv);
int cmd_reproduce(int argc, char **argv);

#endif // ATS_CLI_H
