/*
 * run.c: struct ats_run (init / step / finish for every experiment), the command registry
 * and the checks every spec goes through (see run.h and include/attnscale.h).
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/internal.h"
#include "experiments/run.h"

int run_new(struct ats_run **out, const struct run_ops *ops, void *state, double total) {
    ATS_ASSERT(out && ops);
    struct ats_run *r = ats_malloc(sizeof *r);
    if (!r) {
        ops->free(state);
        ATS_ERROR(ATS_STATUS_ENOMEM, "no memory for a run");
    }
    memset(r, 0, sizeof *r);
    r->ops = ops;
    r->state = state;
    r->total = total;
    *out = r;
    return ATS_STATUS_OK;
}

void run_note(struct ats_run *r, const char *fmt, ...) {
    if (r->note_count == r->note_cap && r->note_head > 0) { // reuse the notes handed out
        memmove(r->notes, r->notes + r->note_head,
                (size_t)(r->note_count - r->note_head) * sizeof *r->notes);
        r->note_count -= r->note_head;
        r->note_head = 0;
    }
    if (r->note_count == r->note_cap) {
        int64_t cap = r->note_cap ? 2 * r->note_cap : 16;
        char(*notes)[RUN_NOTE_LEN] = ats_realloc_array(r->notes, (size_t)cap, sizeof *notes);
        if (!notes)
            return;
        r->notes = notes;
        r->note_cap = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->notes[r->note_count], RUN_NOTE_LEN, fmt, ap);
    va_end(ap);
    r->note_count++;
}

int ats_run_next(struct ats_run *r, struct ats_record *rec) {
    ATS_ASSERT(r && rec);
    ats_record_clear(rec);
    if (r->status != ATS_STATUS_OK)
        ATS_ERROR(r->status, "the run failed before");
    if (!r->ops->next)
        ATS_ERROR(ATS_STATUS_EINVAL, "this run yields figures: use ats_run_next_figure");
    int rc = r->ops->next(r, r->state, rec);
    if (rc != ATS_STATUS_OK) {
        ats_record_clear(rec);
        r->status = rc;
    }
    return rc;
}

int ats_run_next_figure(struct ats_run *r, const struct ats_figure **fig) {
    ATS_ASSERT(r && fig);
    *fig = NULL;
    if (r->status != ATS_STATUS_OK)
        ATS_ERROR(r->status, "the run failed before");
    if (!r->ops->next_figure)
        ATS_ERROR(ATS_STATUS_EINVAL, "this run yields records: use ats_run_next");
    int rc = r->ops->next_figure(r, r->state, fig);
    if (rc != ATS_STATUS_OK) {
        *fig = NULL;
        r->status = rc;
    }
    return rc;
}

void ats_run_progress(const struct ats_run *r, double *done, double *total) {
    ATS_ASSERT(r && done && total);
    *done = r->done;
    *total = r->total;
}

const char *ats_run_note(struct ats_run *r) {
    ATS_ASSERT(r);
    if (r->note_head == r->note_count)
        return NULL;
    memcpy(r->note_out, r->notes[r->note_head++], RUN_NOTE_LEN);
    if (r->note_head == r->note_count)
        r->note_head = r->note_count = 0;
    return r->note_out;
}

const char *const *ats_run_csv_columns(const struct ats_run *r, int64_t *count) {
    ATS_ASSERT(r && count);
    *count = r->ncolumns;
    return r->columns;
}

const struct ats_figure *ats_run_figure(const struct ats_run *r) {
    ATS_ASSERT(r);
    return r->figure ? &r->figure->f : NULL;
}

void ats_run_cancel(struct ats_run *r) {
    ATS_ASSERT(r);
    r->cancelled = 1;
}

int run_check_cancel(const struct ats_run *r) {
    if (r->cancelled)
        ATS_ERROR(ATS_STATUS_ECANCEL, "cancelled");
    return ATS_STATUS_OK;
}

void ats_run_free(struct ats_run *r) {
    if (!r)
        return;
    r->ops->free(r->state);
    figure_free(r->figure);
    ats_free(r->notes);
    ats_free(r);
}

double run_clock(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

// ----------------------------------------------------------------------------
// The registry

static const struct ats_command *const commands[] = {
    &command_simplex,  &command_phase,    &command_query,
    &command_policies, &command_diagnose, &command_reproduce,
};

int64_t ats_command_count(void) {
    return (int64_t)(sizeof commands / sizeof commands[0]);
}

const struct ats_command *ats_command_get(int64_t i) {
    return i >= 0 && i < ats_command_count() ? commands[i] : NULL;
}

const struct ats_command *ats_command_find(const char *name) {
    ATS_ASSERT(name);
    for (int64_t i = 0; i < ats_command_count(); i++)
        if (strcmp(commands[i]->name, name) == 0)
            return commands[i];
    return NULL;
}

// Option names compare with '-' and '_' alike (Python's keywords).
static int same_name(const char *a, const char *b) {
    for (; *a && *b; a++, b++) {
        char x = *a == '_' ? '-' : *a, y = *b == '_' ? '-' : *b;
        if (x != y)
            return 0;
    }
    return *a == *b;
}

const struct ats_option *ats_command_option(const struct ats_command *cmd, const char *name) {
    ATS_ASSERT(cmd && name);
    for (int64_t i = 0; i < cmd->noptions; i++)
        if (same_name(cmd->options[i].name, name))
            return &cmd->options[i];
    return NULL;
}

// ----------------------------------------------------------------------------
// Specs

void command_spec_absent(const struct ats_command *cmd, void *spec) {
    memset(spec, 0, cmd->spec_size);
    for (int64_t i = 0; i < cmd->noptions; i++) {
        const struct ats_option *o = &cmd->options[i];
        char *t = (char *)spec + o->offset;
        double nan = NAN;
        int minus = -1;
        if (o->kind == ATS_OPTION_NUMBER)
            memcpy(t, &nan, sizeof nan);
        else if (o->kind == ATS_OPTION_CHOICE)
            memcpy(t, &minus, sizeof minus);
    }
}

// The TEXT options that name files the run reads, and the one it writes.
static const char *const input_options[] = {"scores", "q", "k", "mask", "safetensors", "tokens"};

const char *ats_command_text(const struct ats_command *cmd, const void *spec, const char *name) {
    ATS_ASSERT(cmd && spec && name);
    const struct ats_option *o = ats_command_option(cmd, name);
    const char *v = NULL;
    if (o && o->kind == ATS_OPTION_TEXT)
        memcpy(&v, (const char *)spec + o->offset, sizeof v);
    return v;
}

// The value lists' grid (one record per combination) within RUN_RECORDS_MAX, before anything
// is allocated for it: else a usage error that says how many and which lists to split.
static int grid_bound(const struct ats_command *cmd, const void *spec) {
    double records = 1;
    char lists[256] = "";
    size_t used = 0;
    for (int64_t i = 0; i < cmd->noptions; i++) {
        const struct ats_option *o = &cmd->options[i];
        if (o->kind != ATS_OPTION_VALUES)
            continue;
        struct ats_values v;
        memcpy(&v, (const char *)spec + o->offset, sizeof v);
        if (v.count > 1) {
            records *= (double)v.count;
            int w = snprintf(lists + used, sizeof lists - used, "%s--%s %lld", used ? " x " : "",
                             o->name, (long long)v.count);
            used = w > 0 && (size_t)w < sizeof lists - used ? used + (size_t)w : used;
        }
    }
    if (records > RUN_RECORDS_MAX)
        ATS_ERROR(ATS_STATUS_EARG,
                  "%s values make %.3g records (about %.3g GB as JSON Lines), above the %.0e one "
                  "run writes: split the run, e.g. one list into ranges run one after another",
                  lists, records, records * 250 / 1e9, RUN_RECORDS_MAX);
    return ATS_STATUS_OK;
}

int command_check_spec(const struct ats_command *cmd, const void *spec) {
    ATS_ASSERT(cmd && spec);
    int rc;
    for (int64_t i = 0; i < cmd->noptions; i++) {
        const struct ats_option *o = &cmd->options[i];
        const char *t = (const char *)spec + o->offset;
        char accepted[128];
        ats_domain_describe(accepted, sizeof accepted, &o->domain);
        if (o->kind == ATS_OPTION_VALUES) {
            struct ats_values v;
            memcpy(&v, t, sizeof v);
            if (v.count < 0 || (v.count > 0 && !v.v))
                ATS_ERROR(ATS_STATUS_EARG, "--%s: a malformed value list", o->name);
            for (int64_t k = 0; k < v.count; k++)
                if (!ats_domain_contains(&o->domain, v.v[k]))
                    ATS_ERROR(ATS_STATUS_EARG, "--%s: %.17g is not %s", o->name, v.v[k],
                              accepted);
        } else if (o->kind == ATS_OPTION_NUMBER) {
            double v;
            memcpy(&v, t, sizeof v);
            if (!isnan(v) && !ats_domain_contains(&o->domain, v))
                ATS_ERROR(ATS_STATUS_EARG, "--%s: %.17g is not %s", o->name, v, accepted);
        } else if (o->kind == ATS_OPTION_CHOICE) {
            int v, n = 0;
            memcpy(&v, t, sizeof v);
            while (o->choices[n])
                n++;
            if (v < -1 || v >= n)
                ATS_ERROR(ATS_STATUS_EARG, "--%s: choice %d is not one of the %d names", o->name,
                          v, n);
        }
    }
    if ((rc = grid_bound(cmd, spec)) != ATS_STATUS_OK)
        return rc;
    const char *plot = ats_command_text(cmd, spec, "plot");
    return plot ? ats_command_check_output(cmd, spec, "--plot", plot) : ATS_STATUS_OK;
}

int ats_command_check_output(const struct ats_command *cmd, const void *spec, const char *opt,
                             const char *path) {
    ATS_ASSERT(cmd && spec && opt && path);
    for (size_t i = 0; i < sizeof input_options / sizeof input_options[0]; i++) {
        const char *in = ats_command_text(cmd, spec, input_options[i]);
        if (in && ats_same_file(path, in))
            ATS_ERROR(ATS_STATUS_EARG,
                      "%s '%.200s' is the input --%s '%.200s': an output must not overwrite an "
                      "input",
                      opt, path, input_options[i], in);
    }
    const char *plot = ats_command_text(cmd, spec, "plot");
    if (plot && strcmp(opt, "--plot") != 0 && ats_same_file(path, plot))
        ATS_ERROR(ATS_STATUS_EARG, "%s '%.200s' is also --plot '%.200s'", opt, path, plot);
    return ATS_STATUS_OK;
}

void run_note_cost(struct ats_run *run, double seconds, const char *what, const char *advice) {
    if (!(seconds > RUN_LONG_SECONDS))
        return;
    double v = seconds / 60;
    const char *unit = "minutes";
    if (v >= 120) {
        v /= 60;
        unit = "hours";
    }
    if (v >= 48 && unit[0] == 'h') {
        v /= 24;
        unit = "days";
    }
    run_note(run, "note: %s: roughly %.2g %s on 2 cores; %s", what, v, unit, advice);
}

int memory_bound(double bytes, const char *what, const char *advice) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    double have = pages > 0 && page > 0 ? (double)pages * (double)page : HUGE_VAL;
    if (bytes > have)
        ATS_ERROR(ATS_STATUS_EARG,
                  "%s needs at least %.3g GB of memory, more than this machine's %.3g GB: %s",
                  what, bytes / 1e9, have / 1e9, advice);
    return ATS_STATUS_OK;
}

int values_copy(struct ats_values *dst, const struct ats_values *src) {
    dst->v = NULL;
    dst->count = 0;
    if (src->count == 0)
        return ATS_STATUS_OK;
    dst->v = ats_malloc_array((size_t)src->count, sizeof *dst->v);
    if (!dst->v)
        ATS_ERROR(ATS_STATUS_ENOMEM, "no memory for %lld values", (long long)src->count);
    memcpy(dst->v, src->v, (size_t)src->count * sizeof *dst->v);
    dst->count = src->count;
    return ATS_STATUS_OK;
}

int values_one(struct ats_values *dst, double v) {
    struct ats_values one = {&v, 1};
    return values_copy(dst, &one);
}

int gamma_check(enum ats_scale kind, const struct ats_values *gamma, const struct ats_values *n) {
    if (kind != ATS_SCALE_GAMMA)
        return ATS_STATUS_OK;
    double gmax = 0, nmax = 0;
    for (int64_t i = 0; i < gamma->count; i++)
        gmax = fmax(gmax, gamma->v[i]);
    for (int64_t i = 0; i < n->count; i++)
        nmax = fmax(nmax, n->v[i]);
    if (!isfinite(gmax * log(nmax)))
        ATS_ERROR(ATS_STATUS_EARG, "--gamma: %g log %g overflows beta", gmax, nmax);
    return ATS_STATUS_OK;
}

int spec_threads(double threads) {
    return isnan(threads) ? 0 : (int)threads;
}

int grid_next(int64_t *idx, const struct ats_values *const *axes, int k) {
    for (int i = k - 1; i >= 0; i--) {
        if (++idx[i] < axes[i]->count)
            return 1;
        idx[i] = 0;
    }
    return 0;
}

// ----------------------------------------------------------------------------
// Policy helpers shared by policies and diagnose

static const struct {
    const char *key;
    size_t offset;
} policy_param_keys[] = {
    {"train_len", offsetof(struct ats_policy_params, train_len)},
    {"factor", offsetof(struct ats_policy_params, factor)},
    {"max_len", offsetof(struct ats_policy_params, max_len)},
    {"mscale", offsetof(struct ats_policy_params, mscale)},
    {"mscale_all_dim", offsetof(struct ats_policy_params, mscale_all_dim)},
    {"attention_factor", offsetof(struct ats_policy_params, attention_factor)},
    {"floor_scale", offsetof(struct ats_policy_params, floor_scale)},
    {"attn_scale", offsetof(struct ats_policy_params, attn_scale)},
    {"beta_slope", offsetof(struct ats_policy_params, beta_slope)},
    {"temperature_len", offsetof(struct ats_policy_params, temperature_len)},
    {"slope", offsetof(struct ats_policy_params, slope)},
    {"d", offsetof(struct ats_policy_params, d)},
};

void policy_params_record(struct ats_record *rec, const struct ats_policy_params *p) {
    for (size_t i = 0; i < sizeof policy_param_keys / sizeof policy_param_keys[0]; i++) {
        double v;
        memcpy(&v, (const char *)p + policy_param_keys[i].offset, sizeof v);
        if (!isnan(v))
            ats_record_double(rec, policy_param_keys[i].key, v);
    }
    if (p->finetuned == 1)
        ats_record_int(rec, "finetuned", 1);
}

void policy_names(char *buf, size_t size) {
    ATS_ASSERT(buf && size > 0);
    buf[0] = '\0';
    for (int64_t i = 0; i < ats_policy_count(); i++) {
        size_t len = strlen(buf);
        snprintf(buf + len, size - len, "%s%s", i ? ", " : "", ats_policy_get(i)->name);
    }
}
