/*
 * policy_opts.c: the policy parameter options shared by `policies` and `diagnose`
 * (DESIGN.md CLI contract): --train-len, --factor, --max-len, --mscale, --mscale-all-dim,
 * --attention-factor, --finetuned, --floor-scale, --attn-scale, --beta-slope,
 * --temperature-len, --slope, --d. Each takes one value; an absent option keeps the policy's
 * shipped default.
 */
#define _GNU_SOURCE
#include <math.h>
#include <string.h>

#include "cli.h"

struct param {
    const char *name; // option and record key stem
    int opt;
    size_t offset;    // into struct ats_policy_params
    struct ats_domain dom;
};

#define P(field) offsetof(struct ats_policy_params, field)
static const struct param params[] = {
    {"train-len", CLI_OPT_TRAIN_LEN, P(train_len), {1, HUGE_VAL, 0, 0, 0}},
    {"factor", CLI_OPT_FACTOR, P(factor), {0, HUGE_VAL, 1, 0, 0}},
    {"max-len", CLI_OPT_MAX_LEN, P(max_len), {1, HUGE_VAL, 0, 0, 0}},
    {"mscale", CLI_OPT_MSCALE, P(mscale), {0, HUGE_VAL, 0, 0, 0}},
    {"mscale-all-dim", CLI_OPT_MSCALE_ALL_DIM, P(mscale_all_dim), {0, HUGE_VAL, 0, 0, 0}},
    {"attention-factor", CLI_OPT_ATTENTION_FACTOR, P(attention_factor), {0, HUGE_VAL, 1, 0, 0}},
    {"floor-scale", CLI_OPT_FLOOR_SCALE, P(floor_scale), {0, HUGE_VAL, 1, 0, 0}},
    {"attn-scale", CLI_OPT_ATTN_SCALE, P(attn_scale), {0, HUGE_VAL, 0, 0, 0}},
    {"beta-slope", CLI_OPT_BETA_SLOPE, P(beta_slope), {0, HUGE_VAL, 0, 0, 0}},
    {"temperature-len", CLI_OPT_TEMPERATURE_LEN, P(temperature_len), {1, HUGE_VAL, 0, 0, 0}},
    {"slope", CLI_OPT_SLOPE, P(slope), {0, HUGE_VAL, 0, 0, 0}},
    {"d", CLI_OPT_POLICY_D, P(d), {2, (double)ATS_INT_EXACT_MAX, 0, 0, 1}},
};
#undef P

int cli_policy_option(const struct cli *c, int opt, const char *arg,
                      struct ats_policy_params *p) {
    if (opt == CLI_OPT_FINETUNED) {
        p->finetuned = 1;
        return 1;
    }
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) {
        if (params[i].opt != opt)
            continue;
        struct ats_values v;
        cli_values(c, &v, params[i].name, arg, &params[i].dom);
        if (v.count != 1) {
            ats_values_clear(&v);
            cli_usage(c, "--%s takes one value", params[i].name);
        }
        memcpy((char *)p + params[i].offset, &v.v[0], sizeof(double));
        ats_values_clear(&v);
        return 1;
    }
    return 0;
}

void cli_policy_params_record(struct ats_writer *w, const struct ats_policy_params *p) {
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) {
        double v;
        memcpy(&v, (const char *)p + params[i].offset, sizeof v);
        if (!isnan(v)) {
            char key[32];
            snprintf(key, sizeof key, "%s", params[i].name);
            for (char *k = key; *k; k++)
                *k = *k == '-' ? '_' : *k;
            ats_writer_double(w, key, v);
        }
    }
    if (p->finetuned == 1)
        ats_writer_int(w, "finetuned", 1);
}

const char *cli_policy_names(void) {
    static char names[512];
    if (!names[0]) {
        for (int64_t i = 0; i < ats_policy_count(); i++) {
            size_t len = strlen(names);
            snprintf(names + len, sizeof names - len, "%s%s", i ? ", " : "",
                     ats_policy_get(i)->name);
        }
    }
    return names;
}
