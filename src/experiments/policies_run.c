/*
 * policies_run.c: the `policies` experiment: the logit multipliers of production
 * attention-scaling policies (THEORY.md section 5) at every (n, pos) point, one record per
 * policy and point (or, with combine, per point: the product of the chosen policies per
 * scope), the --list records of the registry, and the --plot figure (multiplier against the
 * length on a log axis).
 *
 * Every value is evaluated in run_alloc, before the first record: a parameter outside a
 * policy's domain is a usage error (ATS_STATUS_EARG) reported before any output.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "experiments/run.h"

#define S struct ats_policies_spec
// One option per entry, in the order of the help (kept out of clang-format's way).
// clang-format off
static const struct ats_option options[] = {
    {"policy", ATS_OPTION_TEXT, OPT_OFF(S, policy), DOM_NONE, NULL, "NAMES",
     "policies by name, comma-separated, or all (default all)\n", "Options"},
    {"n", ATS_OPTION_VALUES, OPT_OFF(S, n), {1, (double)ATS_INT_EXACT_MAX, 0, 0, 1}, NULL, "N",
     "total length; alone it means the last row, P = N - 1\n", NULL},
    {"pos", ATS_OPTION_VALUES, OPT_OFF(S, pos), {0, (double)ATS_INT_EXACT_MAX - 1, 0, 0, 1},
     NULL, "P", "0-based query position; alone it means N = P + 1\n", NULL},
    {"combine", ATS_OPTION_FLAG, OPT_OFF(S, combine), DOM_NONE, NULL, NULL,
     "one record per point: the product of the chosen policies per scope\n", NULL},
    {"list", ATS_OPTION_FLAG, OPT_OFF(S, list), DOM_NONE, NULL, NULL,
     "name every policy with its model family, source and formula\n", NULL},
    {"plot", ATS_OPTION_TEXT, OPT_OFF(S, plot), DOM_NONE, NULL, "FILE",
     "multiplier against --n (or --pos + 1, whichever has several values) on\n"
     "a log axis (png, svg or pdf)\n",
     NULL},
    OPTIONS_POLICY_PARAMS(S),
    OPTIONS_SEED_THREADS(S),
};
// clang-format on
#undef S

static void spec_default(void *spec) {
    command_spec_absent(&command_policies, spec);
    ((struct ats_policies_spec *)spec)->params = ats_policy_params_default();
}

struct state {
    int list;
    int64_t next; // the next record: a policy id (list) or s * npts + k
    int finished;
    // The points and their values (not list): vals[s * npts + k], s over the nser series.
    int64_t *ids, np; // the chosen policies
    int64_t *pn, *pp, npts;
    struct ats_policy_value *vals;
    int64_t nser;
    int combine, x_is_n; // x_is_n: the plot's x axis is n (else pos + 1)
    char combined[1024]; // the joined name with combine ("a+b+c")
    struct ats_policy_params params;
    const char *plot;
};

static void state_free(void *p) {
    struct state *s = p;
    if (!s)
        return;
    ats_free(s->ids);
    ats_free(s->pn);
    ats_free(s->pp);
    ats_free(s->vals);
    ats_free(s);
}

static const char *series_name(const struct state *s, int64_t i) {
    return s->combine ? s->combined : ats_policy_get(s->ids[i])->name;
}

// ----------------------------------------------------------------------------
// The figure: one line per series against n (or pos + 1), 10 colours, then dashed.

static int finish_plot(struct ats_run *run, const struct state *s) {
    const int64_t npts = s->npts, nser = s->nser;
    struct figure *f = figure_new(NULL);
    FIGURE_NEED(f);
    struct ats_plot_series *ser = figure_alloc(f, (size_t)nser * sizeof *ser);
    double *x = figure_alloc(f, (size_t)npts * sizeof *x);
    double *y = figure_alloc(f, (size_t)(nser * npts) * sizeof *y);
    FIGURE_NEED(ser && x && y);
    // Against the option that varies: the total length n, or the keys the query sees.
    for (int64_t k = 0; k < npts; k++)
        x[k] = s->x_is_n ? (double)s->pn[k] : (double)s->pp[k] + 1;
    for (int64_t i = 0; i < nser; i++) {
        for (int64_t k = 0; k < npts; k++)
            y[i * npts + k] = s->vals[i * npts + k].multiplier;
        const char *label = figure_printf(f, "%s", series_name(s, i));
        FIGURE_NEED(label);
        ser[i] = (struct ats_plot_series){x,     y + i * npts,      NULL,         npts,
                                          label, (int)(i / 10 % 2), (int)(i % 10)};
    }
    struct ats_figure *fig = &f->f;
    fig->heatmap = 0;
    fig->axes = ats_plot_axes_default();
    fig->axes.title = "attention-scaling policies: logit multiplier";
    fig->axes.xlabel = s->x_is_n ? "context length n (query at the last row unless --pos)"
                                 : "keys seen by the query (p + 1)";
    fig->axes.ylabel = "multiplier";
    fig->axes.xlog = 1;
    fig->series = ser;
    fig->nseries = nser;
    run->figure = f;
    return ATS_STATUS_OK;
}

// ----------------------------------------------------------------------------
// Records

static void list_record(struct ats_record *rec, const struct ats_policy_info *in) {
    ats_record_string(rec, "policy", in->name);
    ats_record_string(rec, "family", in->family);
    ats_record_string(rec, "source", in->source);
    ats_record_string(rec, "formula", in->formula);
    ats_record_string(rec, "scope", ats_policy_scope_name(in->scope));
    ats_record_string(rec, "dependence", ats_policy_dependence_name(in->dependence));
}

static const char *scope_name(const struct ats_policy_value *v) {
    return isnan(v->multiplier) ? "mixed" : ats_policy_scope_name(v->scope);
}

static void value_record(struct ats_record *rec, const char *name, int64_t n, int64_t pos,
                         const struct ats_policy_value *v, const struct ats_policy_params *p) {
    ats_record_string(rec, "policy", name);
    ats_record_int(rec, "n", n);
    ats_record_int(rec, "pos", pos);
    ats_record_double(rec, "multiplier", v->multiplier);
    ats_record_string(rec, "scope", scope_name(v));
    ats_record_string(rec, "dependence", ats_policy_dependence_name(v->dependence));
    ats_record_double(rec, "m_rot", v->m_rot);
    ats_record_double(rec, "m_pass", v->m_pass);
    ats_record_int(rec, "extrapolated", v->extrapolated);
    policy_params_record(rec, p);
}

static int next(struct ats_run *run, void *state, struct ats_record *rec) {
    struct state *s = state;
    if (s->finished)
        return ATS_STATUS_OK;
    int64_t total = s->list ? ats_policy_count() : s->nser * s->npts;
    if (s->next == total) {
        s->finished = 1;
        if (s->list)
            return ATS_STATUS_OK;
        int extrapolated = 0;
        for (int64_t i = 0; i < total; i++)
            extrapolated |= s->vals[i].extrapolated;
        if (extrapolated)
            run_note(run, "note: qwen-logn past its reference table (p > 32766): the formula is "
                          "extended beyond what the source tabulates (extrapolated = 1)");
        return s->plot ? finish_plot(run, s) : ATS_STATUS_OK;
    }
    int rc = run_check_cancel(run);
    if (rc != ATS_STATUS_OK)
        return rc;
    int64_t i = s->next++;
    if (s->list) {
        list_record(rec, ats_policy_get(i));
    } else {
        int64_t k = i % s->npts;
        value_record(rec, series_name(s, i / s->npts), s->pn[k], s->pp[k], &s->vals[i], &s->params);
    }
    run->done = (double)s->next;
    return ATS_STATUS_OK;
}

static const struct run_ops ops = {next, NULL, state_free};

// ----------------------------------------------------------------------------
// Set-up: the policy list, the points, every value, the plot checks.

// "all" or a comma list of names into s->ids.
static int parse_policies(struct state *s, const char *text) {
    int64_t total = ats_policy_count(), names = 1;
    for (const char *q = text; *q; q++)
        names += *q == ',';
    s->ids = ats_malloc_array((size_t)(names > total ? names : total), sizeof *s->ids);
    if (!s->ids)
        ATS_ERROR(ATS_STATUS_ENOMEM, "out of memory");
    s->np = 0;
    if (strcmp(text, "all") == 0) {
        for (int64_t i = 0; i < total; i++)
            s->ids[s->np++] = i;
        return ATS_STATUS_OK;
    }
    char known[512];
    policy_names(known, sizeof known);
    const char *p = text;
    for (;;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char name[64];
        if (len == 0 || len >= sizeof name)
            ATS_ERROR(ATS_STATUS_EARG, "--policy: '%s' is not a list of policy names (%s, or all)",
                      text, known);
        memcpy(name, p, len);
        name[len] = '\0';
        int64_t id = ats_policy_find(name);
        if (id < 0)
            ATS_ERROR(ATS_STATUS_EARG, "--policy: unknown policy '%s' (known: %s, or all)", name,
                      known);
        for (int64_t i = 0; i < s->np; i++)
            if (s->ids[i] == id)
                ATS_ERROR(ATS_STATUS_EARG, "--policy: '%s' is given twice", name);
        s->ids[s->np++] = id;
        if (!e)
            break;
        p = e + 1;
    }
    return ATS_STATUS_OK;
}

// The (n, pos) points: both lists crossed (n outer), or one derived from the other.
static int make_points(struct state *s, const struct ats_values *nv,
                       const struct ats_values *posv) {
    int64_t nn = nv->count ? nv->count : 1, npos = posv->count ? posv->count : 1;
    if (nn > INT64_MAX / npos)
        ATS_ERROR(ATS_STATUS_ENOMEM, "out of memory");
    s->npts = nn * npos;
    s->pn = ats_malloc_array((size_t)s->npts, sizeof *s->pn);
    s->pp = ats_malloc_array((size_t)s->npts, sizeof *s->pp);
    if (!s->pn || !s->pp)
        ATS_ERROR(ATS_STATUS_ENOMEM, "out of memory");
    for (int64_t i = 0; i < nn; i++)
        for (int64_t j = 0; j < npos; j++) {
            int64_t k = i * npos + j;
            s->pn[k] = nv->count ? (int64_t)nv->v[i] : (int64_t)posv->v[j] + 1;
            s->pp[k] = posv->count ? (int64_t)posv->v[j] : s->pn[k] - 1;
            if (s->pp[k] >= s->pn[k])
                ATS_ERROR(ATS_STATUS_EARG,
                          "--pos %lld is not inside --n %lld (positions are 0-based)",
                          (long long)s->pp[k], (long long)s->pn[k]);
        }
    return ATS_STATUS_OK;
}

static int evaluate(struct state *s) {
    s->nser = s->combine ? 1 : s->np;
    if (s->nser > 0 && s->npts > INT64_MAX / s->nser)
        ATS_ERROR(ATS_STATUS_ENOMEM, "out of memory");
    s->vals = ats_malloc_array((size_t)(s->nser * s->npts), sizeof *s->vals);
    if (!s->vals)
        ATS_ERROR(ATS_STATUS_ENOMEM, "out of memory");
    for (int64_t k = 0; k < s->npts; k++) {
        struct ats_policy_value acc = ats_policy_identity();
        for (int64_t i = 0; i < s->np; i++) {
            struct ats_policy_value v;
            int rc = ats_policy_eval(&v, s->ids[i], &s->params, s->pp[k], s->pn[k]);
            if (rc == ATS_STATUS_EDOM)
                ATS_ERROR(ATS_STATUS_EARG, "%s", ats_last_error());
            if (rc != ATS_STATUS_OK)
                ATS_ERROR(rc, "%s: %s", ats_strerror(rc), ats_last_error());
            if (s->combine)
                ats_policy_combine(&acc, &v);
            else
                s->vals[i * s->npts + k] = v;
        }
        if (s->combine)
            s->vals[k] = acc;
    }
    return ATS_STATUS_OK;
}

static int plot_check(const char *plot, const struct state *s, const struct ats_values *nv,
                      const struct ats_values *posv) {
    if (ats_plot_check_path(plot) != ATS_STATUS_OK)
        ATS_ERROR(ATS_STATUS_EARG, "--plot: '%s' must end in .png, .svg or .pdf", plot);
    if (s->npts < 2)
        ATS_ERROR(ATS_STATUS_EARG,
                  "--plot needs several lengths (--n or --pos with several values)");
    if (nv->count > 1 && posv->count > 1)
        ATS_ERROR(ATS_STATUS_EARG, "--plot draws against one axis: give several values to --n or "
                                   "to --pos, not both");
    return ATS_STATUS_OK;
}

static int setup(struct state *s, const struct ats_policies_spec *sp) {
    if (sp->list) {
        if (sp->n.count || sp->pos.count || sp->plot || sp->combine)
            ATS_ERROR(ATS_STATUS_EARG, "--list takes no --n, --pos, --plot or --combine");
        s->list = 1;
        return ATS_STATUS_OK;
    }
    s->combine = sp->combine != 0;
    s->params = sp->params;
    s->plot = sp->plot;
    s->x_is_n = sp->n.count > 1;
    int rc = parse_policies(s, sp->policy ? sp->policy : "all");
    if (rc != ATS_STATUS_OK)
        return rc;
    if (!sp->n.count && !sp->pos.count)
        ATS_ERROR(ATS_STATUS_EARG,
                  "give --n N (the last row of N tokens) or --pos P (a 0-based position)");
    if ((rc = make_points(s, &sp->n, &sp->pos)) != ATS_STATUS_OK)
        return rc;
    if ((rc = evaluate(s)) != ATS_STATUS_OK)
        return rc;
    if (sp->plot && (rc = plot_check(sp->plot, s, &sp->n, &sp->pos)) != ATS_STATUS_OK)
        return rc;
    for (int64_t i = 0; s->combine && i < s->np; i++) {
        size_t len = strlen(s->combined);
        snprintf(s->combined + len, sizeof s->combined - len, "%s%s", i ? "+" : "",
                 ats_policy_get(s->ids[i])->name);
    }
    return ATS_STATUS_OK;
}

static int run_alloc(struct ats_run **out, const void *spec_) {
    const struct ats_policies_spec *sp = spec_;
    int rc = command_check_spec(&command_policies, sp);
    if (rc != ATS_STATUS_OK)
        return rc;
    struct state *s = ats_malloc(sizeof *s);
    if (!s)
        ATS_ERROR(ATS_STATUS_ENOMEM, "no memory for a run");
    memset(s, 0, sizeof *s);
    if ((rc = setup(s, sp)) != ATS_STATUS_OK) {
        state_free(s);
        return rc;
    }
    double total = s->list ? (double)ats_policy_count() : (double)(s->nser * s->npts);
    return run_new(out, &ops, s, total);
}

const struct ats_command command_policies = {
    "policies",
    "Usage: attnscale policies [--policy NAME[,NAME...]|all] (--n N | --pos P) [options]\n"
    "       attnscale policies --list\n",
    "The logit multiplier of production attention-scaling policies (THEORY.md section 5): the\n"
    "factor m on <q,k>/sqrt(d_h) at query position P (0-based) in a sequence of N tokens, with\n"
    "the head dimensions it applies to (scope) and what it depends on.\n",
    "Record keys: policy, n, pos, multiplier (on its scope; null when no single factor\n"
    "applies), scope (all | rotary | nonrotary | mixed), dependence (static | row | length),\n"
    "m_rot and m_pass (the resulting factors on rotary and pass-through dimensions),\n"
    "extrapolated (1 past the source's reference table), and any parameter given.\n"
    "With --list: policy, family, source, formula, scope, dependence.\n"
    "\n"
    "Example:\n"
    "  attnscale policies --policy qwen-logn,llama4 --n 4096,32768,131072\n",
    options,
    (int64_t)(sizeof options / sizeof options[0]),
    sizeof(struct ats_policies_spec),
    spec_default,
    run_alloc,
    0,
};
