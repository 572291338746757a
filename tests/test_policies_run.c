/*
 * test_policies_run.c: the `policies` driver (src/experiments/policies_run.c) through the
 * public API only (ats_command_find, spec_default, run_alloc, ats_run_next, ...):
 *   1. the option table (names, kinds, domains, sections) and spec_default (every option
 *      absent, the policy parameters at ats_policy_params_default());
 *   2. --list: one record per registry entry, its six keys from ats_policy_get;
 *   3. values: records of several runs (n only, pos only, n x pos crossed, given parameters)
 *      against ats_policy_eval called here, in the documented order (series-major, then n,
 *      then pos) with the documented keys;
 *   4. --combine: one record per point whose m_rot and m_pass are the products of the chosen
 *      policies' factors (THEORY.md 5: composition per scope), scope and multiplier read off
 *      the pair as ats_policy_combine documents, the name joined with '+';
 *   5. the qwen-logn extrapolation note after the last record, and none without it;
 *   6. --plot: no figure before the end, then one series per policy (or one with --combine)
 *      with the right x (n, or pos + 1), labels, log x axis, colours then dashes; drawn to a PNG;
 *   7. every usage error is ATS_STATUS_EARG from run_alloc with the CLI's words, before any
 *      record; progress reaches its total.
 * Run: make build/tests/test_policies_run && build/tests/test_policies_run
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attnscale.h"
#include "test.h"

// ---------------------------------------------------------------------------
// Running a spec

#define MAX_RECORDS 512

struct result {
    int status;             // of run_alloc, or of the first failing ats_run_next
    struct ats_run *run;    // kept for its figure; freed by result_free
    struct ats_record *rec; // (n,)
    int64_t n;
    char notes[8][512];
    int nnotes;
    int64_t notes_before_end; // notes seen while records were still coming
    int figure_before_end;    // a figure was visible before the end
    double done, total;
};

static struct result run_spec(const struct ats_policies_spec *spec) {
    const struct ats_command *cmd = ats_command_find("policies");
    struct result r;
    memset(&r, 0, sizeof r);
    r.rec = calloc(MAX_RECORDS, sizeof *r.rec);
    if (!r.rec || !cmd)
        abort();
    r.status = cmd->run_alloc(&r.run, spec);
    if (r.status != ATS_STATUS_OK) {
        r.run = NULL;
        return r;
    }
    for (;;) {
        struct ats_record rec;
        int rc = ats_run_next(r.run, &rec);
        if (rc != ATS_STATUS_OK) {
            r.status = rc;
            break;
        }
        const char *note;
        while ((note = ats_run_note(r.run)) != NULL) {
            if (r.nnotes < 8)
                snprintf(r.notes[r.nnotes++], sizeof r.notes[0], "%s", note);
            if (rec.count > 0)
                r.notes_before_end++;
        }
        if (rec.count == 0)
            break;
        if (ats_run_figure(r.run))
            r.figure_before_end = 1;
        if (r.n < MAX_RECORDS)
            r.rec[r.n++] = rec; // strings: static or the run's, which stays alive
    }
    ats_run_progress(r.run, &r.done, &r.total);
    return r;
}

static void result_free(struct result *r) {
    ats_run_free(r->run);
    free(r->rec);
}

static struct ats_policies_spec spec_new(void) {
    struct ats_policies_spec s;
    ats_command_find("policies")->spec_default(&s);
    return s;
}

static double num(const struct ats_record *rec, const char *key) {
    const struct ats_field *f = ats_record_find(rec, key);
    if (!f)
        return NAN;
    return f->type == ATS_FIELD_DOUBLE ? f->d : f->type == ATS_FIELD_INT ? (double)f->i : NAN;
}

static const char *str(const struct ats_record *rec, const char *key) {
    const struct ats_field *f = ats_record_find(rec, key);
    return f && f->type == ATS_FIELD_STRING ? f->s : "";
}

// Doubles equal bit for bit (NaN equal to NaN): the driver passes values through unchanged.
static int same(double a, double b) {
    return (isnan(a) && isnan(b)) || a == b;
}

// rec's keys are exactly want[0..n) in that order.
static int keys_are(const struct ats_record *rec, const char *const *want, int64_t n) {
    if (rec->count != n)
        return 0;
    for (int64_t i = 0; i < n; i++)
        if (strcmp(rec->field[i].key, want[i]) != 0)
            return 0;
    return 1;
}

static const char *const value_keys[] = {"policy",     "n",     "pos",    "multiplier",  "scope",
                                         "dependence", "m_rot", "m_pass", "extrapolated"};
#define NVALUE_KEYS 9

static const char *scope_of(const struct ats_policy_value *v) {
    return isnan(v->multiplier) ? "mixed" : ats_policy_scope_name(v->scope);
}

// rec against v = ats_policy_eval(id, p, pos, n) called here.
static int value_matches(const struct ats_record *rec, const char *name,
                         const struct ats_policy_value *v, int64_t n, int64_t pos) {
    return strcmp(str(rec, "policy"), name) == 0 && num(rec, "n") == (double)n &&
           num(rec, "pos") == (double)pos && same(num(rec, "multiplier"), v->multiplier) &&
           strcmp(str(rec, "scope"), scope_of(v)) == 0 &&
           strcmp(str(rec, "dependence"), ats_policy_dependence_name(v->dependence)) == 0 &&
           same(num(rec, "m_rot"), v->m_rot) && same(num(rec, "m_pass"), v->m_pass) &&
           num(rec, "extrapolated") == (double)v->extrapolated;
}

// ---------------------------------------------------------------------------
// 1. The option table

static void test_table(void) {
    const struct ats_command *cmd = ats_command_find("policies");
    ATS_CHECK(cmd && strcmp(cmd->name, "policies") == 0, "ats_command_find(policies)");
    if (!cmd)
        return;
    ATS_CHECK(cmd->spec_size == sizeof(struct ats_policies_spec) && cmd->operand == 0,
              "spec size and no operand");
    const struct ats_option *o = ats_command_option(cmd, "policy");
    ATS_CHECK(o && o->kind == ATS_OPTION_TEXT && o->section && !strcmp(o->section, "Options"),
              "policy: TEXT, starts the Options section");
    o = ats_command_option(cmd, "n");
    ATS_CHECK(o && o->kind == ATS_OPTION_VALUES && o->domain.lo == 1 &&
                  o->domain.hi == (double)ATS_INT_EXACT_MAX && o->domain.integer,
              "n: VALUES, integers in [1, 2^53]");
    o = ats_command_option(cmd, "pos");
    ATS_CHECK(o && o->kind == ATS_OPTION_VALUES && o->domain.lo == 0 &&
                  o->domain.hi == (double)ATS_INT_EXACT_MAX - 1 && o->domain.integer,
              "pos: VALUES, integers in [0, 2^53 - 1]");
    ATS_CHECK(ats_command_option(cmd, "list") &&
                  ats_command_option(cmd, "list")->kind == ATS_OPTION_FLAG &&
                  ats_command_option(cmd, "combine") &&
                  ats_command_option(cmd, "combine")->kind == ATS_OPTION_FLAG,
              "list, combine: FLAG");
    ATS_CHECK(ats_command_option(cmd, "plot") &&
                  ats_command_option(cmd, "plot")->kind == ATS_OPTION_TEXT,
              "plot: TEXT");
    static const char *const params[] = {
        "train-len",        "factor",    "max-len",     "mscale",     "mscale-all-dim",
        "attention-factor", "finetuned", "floor-scale", "attn-scale", "beta-slope",
        "temperature-len",  "slope",     "d",           "seed",       "threads"};
    int all = 1;
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++)
        all &= ats_command_option(cmd, params[i]) != NULL;
    ATS_CHECK(all, "the policy parameters, seed and threads are options");
    ATS_CHECK(ats_command_option(cmd, "train_len") != NULL, "underscores find train-len");
    int helps = 1;
    for (int64_t i = 0; i < cmd->noptions; i++) {
        const char *h = cmd->options[i].help;
        helps &= h && h[0] && h[strlen(h) - 1] == '\n';
    }
    ATS_CHECK(helps, "every option has a help line ending in a newline");
    ATS_CHECK(cmd->usage && strstr(cmd->usage, "attnscale policies --list") && cmd->records &&
                  strstr(cmd->records, "extrapolated"),
              "usage and records texts");

    struct ats_policies_spec s = spec_new();
    struct ats_policy_params d = ats_policy_params_default();
    ATS_CHECK(s.policy == NULL && s.n.count == 0 && s.pos.count == 0 && !s.list && !s.combine &&
                  s.plot == NULL && isnan(s.seed) && isnan(s.threads),
              "spec_default: every option absent");
    ATS_CHECK(s.params.finetuned == d.finetuned && isnan(s.params.train_len) &&
                  isnan(s.params.factor) && isnan(s.params.d) && isnan(s.params.slope),
              "spec_default: params = ats_policy_params_default() (finetuned -1)");
}

// ---------------------------------------------------------------------------
// 2. --list

static void test_list(void) {
    struct ats_policies_spec s = spec_new();
    s.list = 1;
    s.policy = "nonsense"; // ignored by --list, as the CLI does
    struct result r = run_spec(&s);
    ATS_CHECK(r.status == ATS_STATUS_OK && r.n == ats_policy_count(),
              "--list: one record per policy (%lld of %lld)", (long long)r.n,
              (long long)ats_policy_count());
    static const char *const keys[] = {"policy",  "family", "source",
                                       "formula", "scope",  "dependence"};
    int ok = 1;
    for (int64_t i = 0; i < r.n; i++) {
        const struct ats_policy_info *in = ats_policy_get(i);
        ok &= keys_are(&r.rec[i], keys, 6) && !strcmp(str(&r.rec[i], "policy"), in->name) &&
              !strcmp(str(&r.rec[i], "family"), in->family) &&
              !strcmp(str(&r.rec[i], "source"), in->source) &&
              !strcmp(str(&r.rec[i], "formula"), in->formula) &&
              !strcmp(str(&r.rec[i], "scope"), ats_policy_scope_name(in->scope)) &&
              !strcmp(str(&r.rec[i], "dependence"), ats_policy_dependence_name(in->dependence));
    }
    ATS_CHECK(ok, "--list: keys policy family source formula scope dependence, from the registry");
    ATS_CHECK(r.total == (double)ats_policy_count() && r.done == r.total,
              "--list: progress %g of %g", r.done, r.total);
    ATS_CHECK(ats_run_figure(r.run) == NULL && r.nnotes == 0, "--list: no figure, no note");
    result_free(&r);
}

// ---------------------------------------------------------------------------
// 3. Values

// Runs policies over the points (pn[k], pp[k]) and compares every record with
// ats_policy_eval, series-major; extra: parameter keys expected after the nine value keys.
static void check_values(const char *label, const char *policy_text, const int64_t *ids, int64_t np,
                         struct ats_values nv, struct ats_values posv, const int64_t *pn,
                         const int64_t *pp, int64_t npts, const struct ats_policy_params *params,
                         const char *const *extra, const double *extra_v, int nextra) {
    struct ats_policies_spec s = spec_new();
    s.policy = policy_text;
    s.n = nv;
    s.pos = posv;
    if (params)
        s.params = *params;
    struct result r = run_spec(&s);
    ATS_CHECK(r.status == ATS_STATUS_OK && r.n == np * npts, "%s: %lld records (got %lld)", label,
              (long long)(np * npts), (long long)r.n);
    const char *keys[NVALUE_KEYS + 16];
    memcpy(keys, value_keys, sizeof value_keys);
    for (int i = 0; i < nextra; i++)
        keys[NVALUE_KEYS + i] = extra[i];
    int ok_keys = 1, ok_vals = 1, ok_extra = 1;
    for (int64_t i = 0; i < np && r.n == np * npts; i++)
        for (int64_t k = 0; k < npts; k++) {
            const struct ats_record *rec = &r.rec[i * npts + k];
            struct ats_policy_value v;
            struct ats_policy_params p = params ? *params : ats_policy_params_default();
            int rc = ats_policy_eval(&v, ids[i], &p, pp[k], pn[k]);
            ok_keys &= keys_are(rec, keys, NVALUE_KEYS + nextra);
            ok_vals &= rc == ATS_STATUS_OK &&
                       value_matches(rec, ats_policy_get(ids[i])->name, &v, pn[k], pp[k]);
            for (int e = 0; e < nextra; e++)
                ok_extra &= num(rec, extra[e]) == extra_v[e];
        }
    ATS_CHECK(ok_keys,
              "%s: keys policy n pos multiplier scope dependence m_rot m_pass "
              "extrapolated%s",
              label, nextra ? " then the given parameters" : "");
    ATS_CHECK(ok_vals, "%s: every record is ats_policy_eval at its (n, pos)", label);
    if (nextra)
        ATS_CHECK(ok_extra, "%s: the given parameters' values", label);
    ATS_CHECK(r.total == (double)(np * npts) && r.done == r.total, "%s: progress %g of %g", label,
              r.done, r.total);
    ATS_CHECK(r.nnotes == 0 && ats_run_figure(r.run) == NULL, "%s: no note, no figure", label);
    result_free(&r);
}

static void test_values(void) {
    int64_t qwen = ats_policy_find("qwen-logn"), llama4 = ats_policy_find("llama4"),
            yarn = ats_policy_find("yarn"), logn = ats_policy_find("log-n");
    ATS_CHECK(qwen >= 0 && llama4 >= 0 && yarn >= 0 && logn >= 0, "policies exist");

    // n only: pos = n - 1.
    double n3[3] = {4096, 32768, 131072};
    int64_t pn3[3] = {4096, 32768, 131072}, pp3[3] = {4095, 32767, 131071};
    int64_t ids2[2] = {qwen, llama4};
    // yarn and log-n here: qwen-logn past p = 32766 adds a note (tested on its own below).
    int64_t ids_yl[2] = {yarn, logn};
    check_values("n only (yarn, log-n)", "yarn,log-n", ids_yl, 2, (struct ats_values){n3, 3},
                 (struct ats_values){NULL, 0}, pn3, pp3, 3, NULL, NULL, NULL, 0);

    // pos only: n = pos + 1.
    double pos3[3] = {0, 17, 2047};
    int64_t qn[3] = {1, 18, 2048}, qp[3] = {0, 17, 2047};
    check_values("pos only (qwen-logn, llama4)", "qwen-logn,llama4", ids2, 2,
                 (struct ats_values){NULL, 0}, (struct ats_values){pos3, 3}, qn, qp, 3, NULL, NULL,
                 NULL, 0);

    // n x pos crossed, n outer.
    double n2[2] = {3000, 20000}, pos2[2] = {11, 2999};
    int64_t cn[4] = {3000, 3000, 20000, 20000}, cp[4] = {11, 2999, 11, 2999};
    check_values("n x pos crossed", "qwen-logn,llama4", ids2, 2, (struct ats_values){n2, 2},
                 (struct ats_values){pos2, 2}, cn, cp, 4, NULL, NULL, NULL, 0);

    // all: every policy, in registry order.
    int64_t all[64];
    int64_t count = ats_policy_count();
    for (int64_t i = 0; i < count && i < 64; i++)
        all[i] = i;
    double n1[1] = {8192};
    int64_t an[1] = {8192}, ap[1] = {8191};
    check_values("all at n = 8192", "all", all, count, (struct ats_values){n1, 1},
                 (struct ats_values){NULL, 0}, an, ap, 1, NULL, NULL, NULL, 0);
    check_values("policy absent means all", NULL, all, count, (struct ats_values){n1, 1},
                 (struct ats_values){NULL, 0}, an, ap, 1, NULL, NULL, NULL, 0);

    // Given parameters follow, keys with '_', in the option order; finetuned when 1.
    struct ats_policy_params p = ats_policy_params_default();
    p.train_len = 2048;
    p.factor = 4.5;
    p.finetuned = 1;
    static const char *const extra[] = {"train_len", "factor", "finetuned"};
    const double extra_v[] = {2048, 4.5, 1};
    int64_t ids_yq[2] = {yarn, qwen};
    check_values("given parameters", "yarn,qwen-logn", ids_yq, 2, (struct ats_values){n3, 1},
                 (struct ats_values){NULL, 0}, pn3, pp3, 1, &p, extra, extra_v, 3);
}

// ---------------------------------------------------------------------------
// 4. --combine

static void test_combine(void) {
    const char *names[] = {"yarn", "qwen-logn", "llama4", "longrope"};
    const int64_t np = 4;
    int64_t ids[4];
    for (int i = 0; i < 4; i++)
        ids[i] = ats_policy_find(names[i]);
    double nv[3] = {30000, 65536, 100000};
    double posv[1] = {20000}; // past qwen-logn's and llama4's thresholds, inside the table
    struct ats_policies_spec s = spec_new();
    s.policy = "yarn,qwen-logn,llama4,longrope";
    s.n = (struct ats_values){nv, 3};
    s.pos = (struct ats_values){posv, 1};
    s.combine = 1;
    struct result r = run_spec(&s);
    ATS_CHECK(r.status == ATS_STATUS_OK && r.n == 3, "combine: one record per point (got %lld)",
              (long long)r.n);
    int ok = 1, ok_name = 1, ok_keys = 1, mixed = 0;
    for (int64_t k = 0; k < r.n && k < 3; k++) {
        const struct ats_record *rec = &r.rec[k];
        // The composition rule (THEORY.md 5): factors multiply per dimension class.
        double m_rot = 1, m_pass = 1;
        int extrap = 0, row = 0, length = 0;
        for (int64_t i = 0; i < np; i++) {
            struct ats_policy_value v;
            struct ats_policy_params p = ats_policy_params_default();
            ok &= ats_policy_eval(&v, ids[i], &p, 20000, (int64_t)nv[k]) == ATS_STATUS_OK;
            m_rot *= v.m_rot;
            m_pass *= v.m_pass;
            extrap |= v.extrapolated;
            row |= v.dependence == ATS_POLICY_ROW;
            length |= v.dependence == ATS_POLICY_LENGTH;
        }
        const char *scope;
        double mult;
        if (m_rot == m_pass) {
            scope = "all";
            mult = m_rot;
        } else if (m_pass == 1) {
            scope = "rotary";
            mult = m_rot;
        } else if (m_rot == 1) {
            scope = "nonrotary";
            mult = m_pass;
        } else {
            scope = "mixed";
            mult = NAN;
        }
        mixed |= strcmp(scope, "mixed") == 0;
        const char *dep = row ? "row" : length ? "length" : "static";
        ok_keys &= keys_are(rec, value_keys, NVALUE_KEYS);
        ok_name &= strcmp(str(rec, "policy"), "yarn+qwen-logn+llama4+longrope") == 0;
        ok &= num(rec, "n") == nv[k] && num(rec, "pos") == 20000 &&
              same(num(rec, "m_rot"), m_rot) && same(num(rec, "m_pass"), m_pass) &&
              same(num(rec, "multiplier"), mult) && strcmp(str(rec, "scope"), scope) == 0 &&
              strcmp(str(rec, "dependence"), dep) == 0 && num(rec, "extrapolated") == extrap;
    }
    ATS_CHECK(ok_keys, "combine: the value keys");
    ATS_CHECK(ok_name, "combine: policy is the names joined with '+'");
    ATS_CHECK(ok, "combine: m_rot, m_pass are the products per scope; scope, multiplier, "
                  "dependence read off them");
    ATS_CHECK(mixed, "combine: yarn (rotary) with qwen-logn (all) gives scope mixed, "
                     "multiplier null");
    ATS_CHECK(r.done == 3 && r.total == 3, "combine: progress %g of %g", r.done, r.total);
    result_free(&r);
}

// ---------------------------------------------------------------------------
// 5. The extrapolation note

static const char note_words[] =
    "note: qwen-logn past its reference table (p > 32766): the formula is extended beyond what "
    "the source tabulates (extrapolated = 1)";

static void test_note(void) {
    double nv[2] = {1000, 40000};
    struct ats_policies_spec s = spec_new();
    s.policy = "llama4,qwen-logn";
    s.n = (struct ats_values){nv, 2};
    struct result r = run_spec(&s);
    ATS_CHECK(r.status == ATS_STATUS_OK && r.n == 4, "note run: 4 records");
    ATS_CHECK(r.n == 4 && num(&r.rec[3], "extrapolated") == 1 &&
                  num(&r.rec[2], "extrapolated") == 0,
              "qwen-logn at p = 39999 is extrapolated, at p = 999 not");
    ATS_CHECK(r.nnotes == 1 && strcmp(r.notes[0], note_words) == 0,
              "the qwen-logn note, once, in the CLI's words (got '%s')",
              r.nnotes ? r.notes[0] : "");
    ATS_CHECK(r.notes_before_end == 0, "the note comes after the last record");
    result_free(&r);

    // Within the table: no note.
    double n_in[1] = {32767}; // p = 32766, the table's last row
    s.n = (struct ats_values){n_in, 1};
    s.policy = "qwen-logn";
    r = run_spec(&s);
    ATS_CHECK(r.status == ATS_STATUS_OK && r.n == 1 && num(&r.rec[0], "extrapolated") == 0 &&
                  r.nnotes == 0,
              "qwen-logn at p = 32766: not extrapolated, no note");
    result_free(&r);

    // Combined: the product inherits the flag, the note follows.
    double n_out[1] = {50000};
    s.n = (struct ats_values){n_out, 1};
    s.policy = "qwen-logn,log-n";
    s.combine = 1;
    r = run_spec(&s);
    ATS_CHECK(r.status == ATS_STATUS_OK && r.n == 1 && num(&r.rec[0], "extrapolated") == 1 &&
                  r.nnotes == 1,
              "combine: extrapolated and the note");
    result_free(&r);
}

// ---------------------------------------------------------------------------
// 6. --plot

static long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void test_plot(void) {
    char dir[] = "/tmp/test_policies_run_XXXXXX";
    if (!mkdtemp(dir)) {
        ATS_CHECK(0, "mkdtemp");
        return;
    }
    char path[256];
    snprintf(path, sizeof path, "%s/policies.png", dir);

    // Every policy against n: more than 10 series, so the 11th is dashed.
    double nv[5] = {1024, 4096, 16384, 65536, 262144};
    struct ats_policies_spec s = spec_new();
    s.n = (struct ats_values){nv, 5};
    s.plot = path;
    struct result r = run_spec(&s);
    int64_t count = ats_policy_count();
    ATS_CHECK(r.status == ATS_STATUS_OK && r.n == count * 5, "plot all: %lld records",
              (long long)(count * 5));
    ATS_CHECK(!r.figure_before_end, "plot: no figure before the last record");
    const struct ats_figure *f = ats_run_figure(r.run);
    ATS_CHECK(f != NULL, "plot: a figure after the last record");
    if (f) {
        ATS_CHECK(f->nseries == count && !f->heatmap && f->name == NULL && f->nrows == 0,
                  "plot: a line plot of %lld series (got %lld), no table", (long long)count,
                  (long long)f->nseries);
        ATS_CHECK(
            f->axes.xlog == 1 && !f->axes.ylog && f->axes.title &&
                !strcmp(f->axes.title, "attention-scaling policies: logit multiplier") &&
                f->axes.xlabel &&
                !strcmp(f->axes.xlabel, "context length n (query at the last row unless --pos)") &&
                f->axes.ylabel && !strcmp(f->axes.ylabel, "multiplier"),
            "plot: title, labels, log x axis");
        int ok = 1;
        for (int64_t i = 0; i < f->nseries; i++) {
            const struct ats_plot_series *se = &f->series[i];
            ok &= se->n == 5 && se->label && !strcmp(se->label, ats_policy_get(i)->name) &&
                  se->color == (int)(i % 10) && se->dashed == (int)(i / 10 % 2) && !se->yerr;
            for (int64_t k = 0; k < se->n && k < 5; k++)
                ok &= se->x[k] == nv[k] && same(se->y[k], num(&r.rec[i * 5 + k], "multiplier"));
        }
        ATS_CHECK(ok, "plot: series per policy (label, colour i mod 10, dashed from the 11th), "
                      "x = n, y = the records' multipliers");
        int rc = ats_figure_draw(f, path);
        ATS_CHECK(rc == ATS_STATUS_OK && file_size(path) > 1000,
                  "plot: ats_figure_draw writes a PNG (%ld bytes)", file_size(path));
    }
    result_free(&r);
    unlink(path);

    // Against pos + 1, combined: one series with the joined name.
    double pos[4] = {9, 99, 999, 9999};
    snprintf(path, sizeof path, "%s/combined.svg", dir);
    s = spec_new();
    s.policy = "llama4,log-n";
    s.pos = (struct ats_values){pos, 4};
    s.combine = 1;
    s.plot = path;
    r = run_spec(&s);
    f = ats_run_figure(r.run);
    ATS_CHECK(r.status == ATS_STATUS_OK && r.n == 4 && f && f->nseries == 1,
              "plot combined: one series");
    if (f && f->nseries == 1) {
        const struct ats_plot_series *se = &f->series[0];
        int ok = se->n == 4 && se->label && !strcmp(se->label, "llama4+log-n") && se->color == 0 &&
                 se->dashed == 0;
        for (int64_t k = 0; k < 4 && se->n == 4; k++)
            ok &= se->x[k] == pos[k] + 1 && same(se->y[k], num(&r.rec[k], "multiplier"));
        ATS_CHECK(ok, "plot combined: label joined, x = pos + 1, y = the multipliers");
        ATS_CHECK(f->axes.xlabel && !strcmp(f->axes.xlabel, "keys seen by the query (p + 1)"),
                  "plot against pos: the x label");
        int rc = ats_figure_draw(f, path);
        ATS_CHECK(rc == ATS_STATUS_OK && file_size(path) > 100,
                  "plot combined: drawn to SVG (%ld bytes)", file_size(path));
    }
    result_free(&r);
    unlink(path);
    rmdir(dir);
}

// ---------------------------------------------------------------------------
// 7. Usage errors

static void expect_earg(const char *label, const struct ats_policies_spec *s, const char *w1,
                        const char *w2) {
    struct ats_run *run = NULL;
    int rc = ats_command_find("policies")->run_alloc(&run, s);
    const char *why = ats_last_error();
    ATS_CHECK(rc == ATS_STATUS_EARG && strstr(why, w1) && (!w2 || strstr(why, w2)),
              "%s: EARG naming '%s'%s%s (got %d: %s)", label, w1, w2 ? " and " : "", w2 ? w2 : "",
              rc, why);
    if (rc == ATS_STATUS_OK)
        ats_run_free(run);
}

static void test_usage(void) {
    double n1[1] = {4096}, n2[2] = {100, 200}, pos1[1] = {5}, pos2[2] = {1, 2};
    double bad_n[1] = {0}, frac_pos[1] = {2.5}, big_pos[1] = {4096};
    struct ats_policies_spec s;

    s = spec_new();
    s.list = 1;
    s.n = (struct ats_values){n1, 1};
    expect_earg("--list --n", &s, "--list takes no --n, --pos, --plot or --combine", NULL);
    s = spec_new();
    s.list = 1;
    s.pos = (struct ats_values){pos1, 1};
    expect_earg("--list --pos", &s, "--list takes no", NULL);
    s = spec_new();
    s.list = 1;
    s.plot = "x.png";
    expect_earg("--list --plot", &s, "--list takes no", NULL);
    s = spec_new();
    s.list = 1;
    s.combine = 1;
    expect_earg("--list --combine", &s, "--list takes no", NULL);

    char known[1024] = "";
    for (int64_t i = 0; i < ats_policy_count(); i++)
        snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "",
                 ats_policy_get(i)->name);
    char want[1200];
    s = spec_new();
    s.n = (struct ats_values){n1, 1};
    s.policy = "yarn,qwen";
    snprintf(want, sizeof want, "--policy: unknown policy 'qwen' (known: %s, or all)", known);
    expect_earg("unknown policy", &s, want, NULL);
    s.policy = "yarn,,llama4";
    snprintf(want, sizeof want,
             "--policy: 'yarn,,llama4' is not a list of policy names (%s, or all)", known);
    expect_earg("empty name", &s, want, NULL);
    s.policy = "";
    expect_earg("empty list", &s, "is not a list of policy names", NULL);
    s.policy = "all,yarn";
    expect_earg("all inside a list", &s, "unknown policy 'all'", NULL);

    s = spec_new();
    s.policy = "yarn";
    expect_earg("no --n, no --pos", &s,
                "give --n N (the last row of N tokens) or --pos P (a 0-based position)", NULL);
    s.n = (struct ats_values){n1, 1};
    s.pos = (struct ats_values){big_pos, 1};
    expect_earg("pos outside n", &s, "--pos 4096 is not inside --n 4096 (positions are 0-based)",
                NULL);

    // Option domains (checked against the table).
    s = spec_new();
    s.n = (struct ats_values){bad_n, 1};
    expect_earg("--n 0", &s, "--n", NULL);
    s = spec_new();
    s.pos = (struct ats_values){frac_pos, 1};
    expect_earg("--pos 2.5", &s, "--pos", NULL);
    s = spec_new();
    s.n = (struct ats_values){n1, 1};
    s.params.factor = 0;
    expect_earg("--factor 0", &s, "--factor", NULL);
    s.params.factor = NAN;
    s.params.d = 1;
    expect_earg("--d 1", &s, "--d", NULL);

    // A policy's own domain: an EDOM of ats_policy_eval, before any record.
    s = spec_new();
    s.n = (struct ats_values){n1, 1};
    s.policy = "llama4,qwen-logn";
    s.params.train_len = 1.5;
    expect_earg("qwen-logn --train-len 1.5", &s, "qwen-logn: --train-len must be >= 2", NULL);

    // Plot checks.
    s = spec_new();
    s.n = (struct ats_values){n2, 2};
    s.plot = "out.jpg";
    expect_earg("--plot extension", &s, "--plot: 'out.jpg' must end in .png, .svg or .pdf", NULL);
    s.n = (struct ats_values){n1, 1};
    s.plot = "out.png";
    expect_earg("--plot one length", &s,
                "--plot needs several lengths (--n or --pos with several values)", NULL);
    s.n = (struct ats_values){n2, 2};
    s.pos = (struct ats_values){pos2, 2};
    expect_earg("--plot both axes", &s,
                "--plot draws against one axis: give several values to --n or to --pos, not "
                "both",
                NULL);
    // The CLI's order: a policy's domain error comes before the plot checks.
    s = spec_new();
    s.n = (struct ats_values){n1, 1};
    s.plot = "out.jpg";
    s.policy = "qwen-logn";
    s.params.train_len = 1.5;
    expect_earg("domain before plot", &s, "--train-len must be >= 2", NULL);

    // Cancellation before the first record.
    s = spec_new();
    s.n = (struct ats_values){n2, 2};
    struct ats_run *run = NULL;
    int rc = ats_command_find("policies")->run_alloc(&run, &s);
    ATS_CHECK(rc == ATS_STATUS_OK, "a run to cancel");
    if (rc == ATS_STATUS_OK) {
        struct ats_record rec;
        ats_run_cancel(run);
        rc = ats_run_next(run, &rec);
        int again = ats_run_next(run, &rec);
        ATS_CHECK(rc == ATS_STATUS_ECANCEL && again == ATS_STATUS_ECANCEL && rec.count == 0,
                  "cancelled run: ECANCEL, and it stays failed (got %d, %d)", rc, again);
        ats_run_free(run);
    }
}

int main(void) {
    test_table();
    test_list();
    test_values();
    test_combine();
    test_note();
    test_plot();
    test_usage();
    return ats_test_summary();
}
