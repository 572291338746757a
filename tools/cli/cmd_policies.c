/*
 * cmd_policies.c: `attnscale policies`, the multipliers production models put on their
 * attention logits as the context grows (THEORY.md section 5).
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char policies_help[] =
    "Usage: attnscale policies [--policy NAME[,NAME...]|all] (--n N | --pos P) [options]\n"
    "       attnscale policies --list\n"
    "\n"
    "The logit multiplier of production attention-scaling policies (THEORY.md section 5): the\n"
    "factor m on <q,k>/sqrt(d_h) at query position P (0-based) in a sequence of N tokens, with\n"
    "the head dimensions it applies to (scope) and what it depends on.\n"
    "\n"
    "Options:\n"
    "  --policy NAMES  policies by name, comma-separated, or all (default all)\n"
    "  --n N           total length; alone it means the last row, P = N - 1\n"
    "  --pos P         0-based query position; alone it means N = P + 1\n"
    "  --combine       one record per point: the product of the chosen policies per scope\n"
    "  --list          name every policy with its model family, source and formula\n"
    "  --plot FILE     multiplier against --n (or --pos + 1, whichever has several values) on\n"
    "                  a log axis (png, svg or pdf)\n"
    "\n" CLI_POLICY_HELP
    "\n"
    "Record keys: policy, n, pos, multiplier (on its scope; null when no single factor\n"
    "applies), scope (all | rotary | nonrotary | mixed), dependence (static | row | length),\n"
    "m_rot and m_pass (the resulting factors on rotary and pass-through dimensions),\n"
    "extrapolated (1 past the source's reference table), and any parameter given.\n"
    "\n"
    "Example:\n"
    "  attnscale policies --policy qwen-logn,llama4 --n 4096,32768,131072\n"
    "\n";

enum { OPT_POLICY = CLI_OPT_FIRST_COMMAND_OPTION, OPT_N, OPT_POS, OPT_LIST, OPT_COMBINE, OPT_PLOT };

static void list_policies(struct cli *c) {
    for (int64_t i = 0; i < ats_policy_count(); i++) {
        const struct ats_policy_info *in = ats_policy_get(i);
        ats_writer_string(c->writer, "policy", in->name);
        ats_writer_string(c->writer, "family", in->family);
        ats_writer_string(c->writer, "source", in->source);
        ats_writer_string(c->writer, "formula", in->formula);
        ats_writer_string(c->writer, "scope", ats_policy_scope_name(in->scope));
        ats_writer_string(c->writer, "dependence", ats_policy_dependence_name(in->dependence));
        cli_end_record(c);
    }
}

// Parses "all" or a comma list of names into ids (caller frees).
static int64_t *parse_policies(const struct cli *c, const char *text, int64_t *count) {
    int64_t total = ats_policy_count(), names = 1;
    for (const char *q = text; *q; q++)
        names += *q == ',';
    int64_t *ids = malloc((size_t)(names > total ? names : total) * sizeof *ids);
    if (!ids)
        cli_fail(c, "out of memory");
    *count = 0;
    if (strcmp(text, "all") == 0) {
        for (int64_t i = 0; i < total; i++)
            ids[(*count)++] = i;
        return ids;
    }
    const char *p = text;
    for (;;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char name[64];
        if (len == 0 || len >= sizeof name)
            cli_usage(c, "--policy: '%s' is not a list of policy names (%s, or all)", text,
                      cli_policy_names());
        memcpy(name, p, len);
        name[len] = '\0';
        int64_t id = ats_policy_find(name);
        if (id < 0)
            cli_usage(c, "--policy: unknown policy '%s' (known: %s, or all)", name,
                      cli_policy_names());
        ids[(*count)++] = id;
        if (!e)
            break;
        p = e + 1;
    }
    return ids;
}

static const char *scope_name(const struct ats_policy_value *v) {
    return isnan(v->multiplier) ? "mixed" : ats_policy_scope_name(v->scope);
}

static void write_value(struct cli *c, const char *name, int64_t n, int64_t pos,
                        const struct ats_policy_value *v, const struct ats_policy_params *p) {
    struct ats_writer *w = c->writer;
    ats_writer_string(w, "policy", name);
    ats_writer_int(w, "n", n);
    ats_writer_int(w, "pos", pos);
    ats_writer_double(w, "multiplier", v->multiplier);
    ats_writer_string(w, "scope", scope_name(v));
    ats_writer_string(w, "dependence", ats_policy_dependence_name(v->dependence));
    ats_writer_double(w, "m_rot", v->m_rot);
    ats_writer_double(w, "m_pass", v->m_pass);
    ats_writer_int(w, "extrapolated", v->extrapolated);
    cli_policy_params_record(w, p);
    cli_end_record(c);
}

int cmd_policies(int argc, char **argv) {
    static const struct option options[] = {{"policy", required_argument, NULL, OPT_POLICY},
                                            {"n", required_argument, NULL, OPT_N},
                                            {"pos", required_argument, NULL, OPT_POS},
                                            {"list", no_argument, NULL, OPT_LIST},
                                            {"combine", no_argument, NULL, OPT_COMBINE},
                                            {"plot", required_argument, NULL, OPT_PLOT},
                                            {"d", required_argument, NULL, CLI_OPT_POLICY_D},
                                            CLI_POLICY_OPTIONS,
                                            CLI_COMMON_OPTIONS,
                                            {NULL, 0, NULL, 0}};
    const struct ats_domain dom_n = {1, (double)ATS_INT_EXACT_MAX, 0, 0, 1};
    const struct ats_domain dom_pos = {0, (double)ATS_INT_EXACT_MAX - 1, 0, 0, 1};
    struct cli c;
    cli_init(&c, "policies");
    struct ats_policy_params params = ats_policy_params_default();
    struct ats_values nv = {0}, posv = {0};
    const char *policy_text = "all", *plot = NULL;
    int list = 0, combine = 0, opt;
    while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT, options, NULL)) != -1) {
        if (cli_common_option(&c, opt, optarg, policies_help) ||
            cli_policy_option(&c, opt, optarg, &params))
            continue;
        switch (opt) {
        case OPT_POLICY:
            policy_text = optarg;
            break;
        case OPT_N:
            ats_values_clear(&nv);
            cli_values(&c, &nv, "n", optarg, &dom_n);
            break;
        case OPT_POS:
            ats_values_clear(&posv);
            cli_values(&c, &posv, "pos", optarg, &dom_pos);
            break;
        case OPT_LIST:
            list = 1;
            break;
        case OPT_COMBINE:
            combine = 1;
            break;
        case OPT_PLOT:
            plot = optarg;
            break;
        default:
            cli_bad_option(&c, opt, argv);
        }
    }
    if (list) {
        if (nv.count || posv.count || plot || combine)
            cli_usage(&c, "--list takes no --n, --pos, --plot or --combine");
        cli_begin(&c, argc, argv);
        list_policies(&c);
        return cli_finish(&c);
    }
    int64_t np;
    int64_t *ids = parse_policies(&c, policy_text, &np);
    if (!nv.count && !posv.count)
        cli_usage(&c, "give --n N (the last row of N tokens) or --pos P (a 0-based position)");
    // The (n, pos) points: both lists crossed, or one derived from the other.
    int64_t nn = nv.count ? nv.count : 1, npos = posv.count ? posv.count : 1;
    int64_t npts = nn * npos;
    int64_t *pn = malloc((size_t)npts * sizeof *pn), *pp = malloc((size_t)npts * sizeof *pp);
    if (!pn || !pp)
        cli_fail(&c, "out of memory");
    for (int64_t i = 0; i < nn; i++)
        for (int64_t j = 0; j < npos; j++) {
            int64_t k = i * npos + j;
            pn[k] = nv.count ? (int64_t)nv.v[i] : (int64_t)posv.v[j] + 1;
            pp[k] = posv.count ? (int64_t)posv.v[j] : pn[k] - 1;
            if (pp[k] >= pn[k])
                cli_usage(&c, "--pos %lld is not inside --n %lld (positions are 0-based)",
                          (long long)pp[k], (long long)pn[k]);
        }
    // Evaluate everything before writing: a parameter outside a policy's domain is a usage
    // error, reported before any output.
    int64_t nser = combine ? 1 : np;
    struct ats_policy_value *vals = malloc((size_t)(nser * npts) * sizeof *vals);
    if (!vals)
        cli_fail(&c, "out of memory");
    for (int64_t k = 0; k < npts; k++) {
        struct ats_policy_value acc = ats_policy_identity();
        for (int64_t s = 0; s < np; s++) {
            struct ats_policy_value v;
            int rc = ats_policy_eval(&v, ids[s], &params, pp[k], pn[k]);
            if (rc == ATS_STATUS_EDOM)
                cli_usage(&c, "%s", cli_last_error());
            if (rc != ATS_STATUS_OK)
                cli_fail(&c, "%s: %s", ats_strerror(rc), cli_last_error());
            if (combine)
                ats_policy_combine(&acc, &v);
            else
                vals[s * npts + k] = v;
        }
        if (combine)
            vals[k] = acc;
    }
    if (plot) {
        if (ats_plot_check_path(plot) != ATS_STATUS_OK)
            cli_usage(&c, "--plot: '%s' must end in .png, .svg or .pdf", plot);
        if (npts < 2)
            cli_usage(&c, "--plot needs several lengths (--n or --pos with several values)");
        if (nv.count > 1 && posv.count > 1)
            cli_usage(&c, "--plot draws against one axis: give several values to --n or to "
                          "--pos, not both");
    }
    cli_begin(&c, argc, argv);
    char combined[1024] = "";
    for (int64_t s = 0; combine && s < np; s++)
        snprintf(combined + strlen(combined), sizeof combined - strlen(combined), "%s%s",
                 s ? "+" : "", ats_policy_get(ids[s])->name);
    int extrapolated = 0;
    for (int64_t s = 0; s < nser; s++)
        for (int64_t k = 0; k < npts; k++) {
            const struct ats_policy_value *v = &vals[s * npts + k];
            write_value(&c, combine ? combined : ats_policy_get(ids[s])->name, pn[k], pp[k], v,
                        &params);
            extrapolated |= v->extrapolated;
        }
    if (extrapolated)
        cli_msg(&c, 2, "note: qwen-logn past its reference table (p > 32766): the formula is "
                       "extended beyond what the source tabulates (extrapolated = 1)");
    if (plot) {
        struct ats_plot_series *ser = calloc((size_t)nser, sizeof *ser);
        double *x = malloc((size_t)npts * sizeof *x), *y = malloc((size_t)(nser * npts) * sizeof *y);
        if (!ser || !x || !y)
            cli_fail(&c, "out of memory");
        // Against the option that varies: the total length n, or the keys the query sees.
        for (int64_t k = 0; k < npts; k++)
            x[k] = nv.count > 1 ? (double)pn[k] : (double)pp[k] + 1;
        for (int64_t s = 0; s < nser; s++) {
            for (int64_t k = 0; k < npts; k++)
                y[s * npts + k] = vals[s * npts + k].multiplier;
            ser[s] = (struct ats_plot_series){x, y + s * npts, NULL, npts,
                                              combine ? combined : ats_policy_get(ids[s])->name,
                                              (int)(s / 10 % 2), (int)(s % 10)}; // 10 colours,
                                                                                 // then dashed
        }
        struct ats_plot_axes ax = ats_plot_axes_default();
        ax.title = "attention-scaling policies: logit multiplier";
        ax.xlabel = nv.count > 1 ? "context length n (query at the last row unless --pos)"
                                 : "keys seen by the query (p + 1)";
        ax.ylabel = "multiplier";
        ax.xlog = 1;
        if (ats_plot_lines(plot, &ax, ser, nser) != ATS_STATUS_OK)
            cli_fail(&c, "--plot: %s", cli_last_error());
        free(ser);
        free(x);
        free(y);
    }
    free(vals);
    free(pn);
    free(pp);
    free(ids);
    ats_values_clear(&nv);
    ats_values_clear(&posv);
    return cli_finish(&c);
}
