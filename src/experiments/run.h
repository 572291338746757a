/*
 * run.h: what the experiment drivers share (internal): struct ats_run and its operations,
 * notes for the user, progress, figures with the storage they point to, the command registry
 * and the generic checks of a spec against its command's option table.
 *
 * A driver (simplex_run.c, phase_run.c, ...) defines its spec's option table, a spec_default,
 * and a run_alloc that checks the spec (usage errors as ATS_STATUS_EARG, before any work),
 * copies what it needs into its own state and hands that state to run_new with its ops.
 * ats_run_next then calls ops->next once per record.
 */
#ifndef ATS_EXPERIMENTS_RUN_H
#define ATS_EXPERIMENTS_RUN_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "attnscale.h"

struct run_ops {
    // Fills rec with the next record, or leaves rec->count = 0 at the end; a status on failure.
    int (*next)(struct ats_run *run, void *state, struct ats_record *rec);
    // reproduce only (NULL otherwise): the next figure, *fig = NULL at the end.
    int (*next_figure)(struct ats_run *run, void *state, const struct ats_figure **fig);
    void (*free)(void *state);
};

#define RUN_NOTE_LEN 512

struct figure;

struct ats_run {
    const struct run_ops *ops;
    void *state;
    _Atomic double done;    // progress, in the driver's units (read by other threads)
    double total;
    int status;             // a failure is sticky
    volatile sig_atomic_t cancelled; // set by ats_run_cancel (any thread, a signal handler)
    char (*notes)[RUN_NOTE_LEN]; // pending notes are notes[note_head .. note_count)
    int64_t note_head, note_count, note_cap;
    char note_out[RUN_NOTE_LEN]; // the note handed out last
    const char *const *columns;
    int64_t ncolumns;
    struct figure *figure;  // the --plot figure, set by the driver after its last record
};

// A new run over state with total units of work (progress); on failure (ENOMEM)
// ops->free(state) has been called.
int run_new(struct ats_run **out, const struct run_ops *ops, void *state, double total);

// ATS_STATUS_ECANCEL (reported) once ats_run_cancel was called, else ATS_STATUS_OK: drivers
// call it between units of work (trials, chunks, blocks of rows).
int run_check_cancel(const struct ats_run *run);

// Queues a note for the user (the queue grows as needed; a note is dropped only when no
// memory is left for it).
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void run_note(struct ats_run *run, const char *fmt, ...);

// ----------------------------------------------------------------------------
// Figures: an ats_figure and an arena holding everything it points to.

struct figure {
    struct ats_figure f;
    struct arena_block *arena;
    struct ats_record *rows; // f.rows, grown by figure_add_row
    int64_t cap;
};

struct figure *figure_new(const char *name); // NULL when out of memory
void figure_free(struct figure *g);          // NULL is fine
// Zeroed storage freed with the figure (NULL when out of memory).
void *figure_alloc(struct figure *g, size_t bytes);
// A formatted string in the figure's storage (NULL when out of memory).
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
char *figure_printf(struct figure *g, const char *fmt, ...);
// Appends a copy of rec (keys and strings copied into the figure's storage) to the table.
int figure_add_row(struct figure *g, const struct ats_record *rec);

// In a function building struct figure *f for a --plot: a failed allocation p frees f and
// returns ATS_STATUS_ENOMEM.
#define FIGURE_NEED(p)                                                                         \
    do {                                                                                       \
        if (!(p)) {                                                                            \
            figure_free(f);                                                                    \
            ATS_ERROR(ATS_STATUS_ENOMEM, "--plot: out of memory");                             \
        }                                                                                      \
    } while (0)

// ----------------------------------------------------------------------------
// Grids of records for --plot (simplex, phase): axes outermost first, gamma (or beta) the last
// (fastest); names are the options' names; ax_rho and ax_n index the rho and n axes.

struct grid {
    const struct ats_values *const *axes;
    const char *const *names;
    int naxes, ax_rho, ax_n;
    enum ats_scale kind;
};

// Checks plot path against the grid before any work (ATS_STATUS_EARG with the CLI's words):
// the extension, at most 10^8 records, several increasing gamma values and, for a heat map
// (rho with several values), one value on every other axis and increasing rho. *total: the
// number of records.
int grid_plot_check(int64_t *total, const char *path, const struct grid *g);

// The figure of z (one value per record, in record order; zerr NULL or error bar
// half-lengths for line plots): a heat map over (rho, gamma) with the dashed critical curve
// when rho has several values, else lines against gamma; colour range [zlo, zhi] (NAN: the
// data's).
int grid_plot_figure(struct figure **out, const struct grid *g, const char *title,
                     const char *zlabel, double zlo, double zhi, const double *z,
                     const double *zerr);

// Advances the odometer idx over axes[0..k) (the last fastest); 0 once every combination has
// been visited.
int grid_next(int64_t *idx, const struct ats_values *const *axes, int k);

// ----------------------------------------------------------------------------
// Specs

// The most records one run writes (10^8: some 25 GB of JSON Lines).
#define RUN_RECORDS_MAX 1e8

// Checks every VALUES, NUMBER and CHOICE field of spec against cmd's table (ATS_STATUS_EARG
// naming the option; an empty list or a NAN number is "absent" and passes), the size of the
// grid of value lists (RUN_RECORDS_MAX) and that --plot is not an input.
int command_check_spec(const struct ats_command *cmd, const void *spec);

// Sets every field targeted by cmd's options to "absent" (the rest of spec zeroed first).
void command_spec_absent(const struct ats_command *cmd, void *spec);

// Runs estimated longer than this say so in a note before they start.
#define RUN_LONG_SECONDS 600.0

// The note for a run estimated at seconds (a rate measured on this project's 2-core machine:
// an order of magnitude, not a promise) when that exceeds RUN_LONG_SECONDS: what it does,
// the time, and how to shorten it.
void run_note_cost(struct ats_run *run, double seconds, const char *what, const char *advice);

// ATS_STATUS_EARG (what, the bytes needed and the machine's, then advice) when bytes exceed
// the physical memory: checked before a run allocates.
int memory_bound(double bytes, const char *what, const char *advice);

// Copies a value list (an empty list stays empty): ATS_STATUS_ENOMEM.
int values_copy(struct ats_values *dst, const struct ats_values *src);

// The one-value list {v} in dst (owned): ATS_STATUS_ENOMEM.
int values_one(struct ats_values *dst, double v);

// With gamma given (kind ATS_SCALE_GAMMA), beta = gamma log n must be finite for the largest
// of both lists: ATS_STATUS_EARG before any record otherwise.
int gamma_check(enum ats_scale kind, const struct ats_values *gamma, const struct ats_values *n);

// threads as a spec holds it (NAN absent) to the library's convention (0: OpenMP's default).
int spec_threads(double threads);

// The registry's entries, defined by the drivers.
extern const struct ats_command command_simplex, command_phase, command_query, command_policies,
    command_diagnose, command_reproduce;

// Option table helpers for the drivers' tables.
#define OPT_OFF(type, field) offsetof(type, field)
#define DOM_ANY {-HUGE_VAL, HUGE_VAL, 0, 0, 0}
#define DOM_NONNEG {0, HUGE_VAL, 0, 0, 0}
#define DOM_POS {0, HUGE_VAL, 1, 0, 0}
#define DOM_SEED {0, (double)ATS_INT_EXACT_MAX, 0, 0, 1}
#define DOM_THREADS {1, 4096, 0, 0, 1}
#define DOM_NONE {0, 0, 0, 0, 0}

// The seed and threads options every command takes, for a spec type with fields seed, threads.
#define OPTIONS_SEED_THREADS(type)                                                             \
    {"seed", ATS_OPTION_NUMBER, OPT_OFF(type, seed), DOM_SEED, NULL, "S",                     \
     "random seed, an integer >= 0 (default 1); results do not depend\n"                      \
     "on the thread count\n",                                                                  \
     "Run"},                                                                                    \
        {"threads", ATS_OPTION_NUMBER, OPT_OFF(type, threads), DOM_THREADS, NULL, "T",        \
         "threads, an integer >= 1 (default: OMP_NUM_THREADS or all cores)\n", NULL}

// The policy parameter options (policies, diagnose) for a spec type with a params field.
#define OPTIONS_POLICY_PARAMS(type)                                                            \
    {"train-len", ATS_OPTION_NUMBER, OPT_OFF(type, params.train_len), {1, HUGE_VAL, 0, 0, 0},   \
     NULL, "L",                                                                                \
     "original/training length (Qwen seq_length; YaRN, LongRoPE and\n"                        \
     "DeepSeek original length; Mistral L0; critical normalisation)\n",                      \
     "Policy parameters (one value each; absent: the policy's shipped default, see --list)"},  \
        {"factor", ATS_OPTION_NUMBER, OPT_OFF(type, params.factor), DOM_POS, NULL, "S",         \
         "YaRN, GPT-OSS, LongRoPE, DeepSeek scale factor\n", NULL},                            \
        {"max-len", ATS_OPTION_NUMBER, OPT_OFF(type, params.max_len), {1, HUGE_VAL, 0, 0, 0},   \
         NULL, "M",                                                                            \
         "max_position_embeddings (LongRoPE/YaRN s = M/L without\n"                           \
         "--factor; dynamic YaRN cache; DeepSeek deployment length)\n",                       \
         NULL},                                                                                \
        {"mscale", ATS_OPTION_NUMBER, OPT_OFF(type, params.mscale), DOM_NONNEG, NULL, "C",      \
         "YaRN/DeepSeek mscale\n", NULL},                                                      \
        {"mscale-all-dim", ATS_OPTION_NUMBER, OPT_OFF(type, params.mscale_all_dim), DOM_NONNEG, \
         NULL, "C", "YaRN/DeepSeek mscale_all_dim\n", NULL},                                   \
        {"attention-factor", ATS_OPTION_NUMBER, OPT_OFF(type, params.attention_factor),         \
         DOM_POS, NULL, "A", "YaRN/DeepSeek attention factor\n", NULL},                        \
        {"finetuned", ATS_OPTION_FLAG, OPT_OFF(type, params.finetuned), DOM_NONE, NULL, NULL,   \
         "dynamic YaRN starts at s = M/L\n", NULL},                                            \
        {"floor-scale", ATS_OPTION_NUMBER, OPT_OFF(type, params.floor_scale), DOM_POS, NULL,    \
         "F", "Llama 4 floor scale (Inkling: N_floor)\n", NULL},                               \
        {"attn-scale", ATS_OPTION_NUMBER, OPT_OFF(type, params.attn_scale), DOM_NONNEG, NULL,   \
         "A", "Llama 4 attention scale (Inkling: alpha)\n", NULL},                             \
        {"beta-slope", ATS_OPTION_NUMBER, OPT_OFF(type, params.beta_slope), DOM_NONNEG, NULL,   \
         "B", "Mistral's beta slope\n", NULL},                                                 \
        {"temperature-len", ATS_OPTION_NUMBER, OPT_OFF(type, params.temperature_len),           \
         {1, HUGE_VAL, 0, 0, 0}, NULL, "T", "Grok-2's temperature length\n", NULL},            \
        {"slope", ATS_OPTION_NUMBER, OPT_OFF(type, params.slope), DOM_NONNEG, NULL, "S",        \
         "SSMax's slope s\n", NULL},                                                           \
        {"d", ATS_OPTION_NUMBER, OPT_OFF(type, params.d), {2, (double)ATS_INT_EXACT_MAX, 0, 0, 1}, \
         NULL, "D", "head dimension of sphere-critical\n", NULL}

// The policy parameters given (not NAN; finetuned when 1) appended to rec, keys with '_'.
void policy_params_record(struct ats_record *rec, const struct ats_policy_params *p);

// "yarn, yarn-dynamic, ..." into buf for messages (512 bytes hold them all).
void policy_names(char *buf, size_t size);

// Monotonic seconds.
double run_clock(void);

#endif // ATS_EXPERIMENTS_RUN_H
