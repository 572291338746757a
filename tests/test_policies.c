/*
 * test_policies.c: the production scaling policies (src/policies/policies.c, THEORY.md 5)
 * against references that share none of the library's code:
 *   1. THEORY.md 5's table "Values at the last row p = n - 1", every row and column, and its
 *      quoted constants (gpt-oss, DeepSeek V3 / V2-Lite, LongRoPE Phi-3, Ministral 3);
 *   2. each source's formula written again here in long double, as the source states it
 *      (Python's math.log(i, L), torch.floor, log2 ...), at the boundary positions of every
 *      off-by-one convention and at n = 4k, 32k, 128k, 1M, with shipped and other parameters;
 *   3. YaRN's attention-factor precedence, g(s) = 1 for s <= 1, the registry (names, order,
 *      scope, dependence), composition, and every EINVAL / EDOM path with its message;
 *   4. THEORY.md 5's "Theory mapping" slopes.
 * Run: make build/tests/test_policies && build/tests/test_policies
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "attnscale.h"
#include "test.h"

// The library evaluates each multiplier with at most ~6 double operations (one or two logs,
// which glibc rounds to < 1 ulp, a division, a multiply-add, a square); the references are long
// double (1e-19). 16 ulps bounds the worst case with a factor-of-2 margin and still catches an
// off-by-one (>= 1e-9 relative at these lengths) or a wrong constant.
static const double RTOL = 16 * DBL_EPSILON;
// THEORY.md prints 6 decimals: a correctly rounded value is within half a unit of the 6th.
static const double ATOL6 = 5e-7;

// ---------------------------------------------------------------------------
// Error capture.

static char last_reason[512];
static int last_status;

static void capture(const char *reason, const char *file, int line, int status) {
    (void)file;
    (void)line;
    snprintf(last_reason, sizeof last_reason, "%s", reason);
    last_status = status;
}

// Multiplier of a named policy; NAN (which fails every closeness check) on any error.
static double m_of(const char *name, struct ats_policy_params p, int64_t pos, int64_t n) {
    struct ats_policy_value v;
    int64_t id = ats_policy_find(name);
    if (id < 0 || ats_policy_eval(&v, id, &p, pos, n) != ATS_STATUS_OK)
        return NAN;
    return v.multiplier;
}

static double m_last(const char *name, struct ats_policy_params p, int64_t n) {
    return m_of(name, p, n - 1, n);
}

static struct ats_policy_params defaults(void) {
    return ats_policy_params_default();
}

// ---------------------------------------------------------------------------
// Reference formulas, long double, written from each source (see policies.c for the quotes).

// get_mscale(scale, mscale): 1 for scale <= 1, else 0.1 mscale ln scale + 1.
static long double ref_g(long double s, long double c) {
    if (s <= 1)
        return 1;
    return 0.1L * c * logl(s) + 1;
}

// transformers _compute_yarn_parameters; a < 0 / c < 0 mean "absent".
static long double ref_yarn(long double s, long double mscale, long double mscale_all_dim,
                            long double attention_factor) {
    long double a;
    if (attention_factor >= 0)
        a = attention_factor;
    else if (mscale > 0 && mscale_all_dim > 0)
        a = ref_g(s, mscale) / ref_g(s, mscale_all_dim);
    else
        a = ref_g(s, 1);
    return a * a;
}

// jquesnelle/yarn dynamic: the state after init and one forward(seq_len = n).
static long double ref_yarn_dynamic(long double n, long double orig, long double max_pos,
                                    int finetuned) {
    long double cached = max_pos;
    long double mscale = finetuned ? ref_g(max_pos / orig, 1) : 1;
    if (n > cached)
        mscale = ref_g(n / orig, 1);
    return mscale * mscale;
}

// DeepSeek-V3 inference/model.py (no s > 1 guard).
static long double ref_deepseek(long double s, long double c, long double orig, long double max) {
    long double g = 1;
    if (max > orig)
        g = 0.1L * c * logl(s) + 1;
    return g * g;
}

// transformers _compute_longrope_parameters: the square of its attention_factor.
static long double ref_longrope(long double s, long double orig) {
    long double a = s <= 1 ? 1 : sqrtl(1 + logl(s) / logl(orig));
    return a * a;
}

// Qwen: logn_list[p] = math.log(p + 1, seq_length) if p + 1 > seq_length else 1.
static long double ref_qwen(long double p, long double l) {
    long double i = p + 1;
    return i > l ? logl(i) / logl(l) : 1;
}

// Llama 4: log(floor((pos + 1) / floor_scale) + 1) * attn_scale + 1.
static long double ref_llama4(long double p, long double a, long double f) {
    return logl(floorl((p + 1) / f) + 1) * a + 1;
}

// Ministral 3: 1 + beta log(1 + floor(pos / L0)).
static long double ref_mistral(long double p, long double b, long double l0) {
    return 1 + b * logl(1 + floorl(p / l0));
}

// sglang: where(q > T, log2(q) / log2(T), 1).
static long double ref_grok2(long double p, long double t) {
    return p > t ? log2l(p) / log2l(t) : 1;
}

// Inkling: 1 + alpha log(clamp((pos + 1) / n_floor, min = 1)).
static long double ref_inkling(long double p, long double a, long double nf) {
    long double r = (p + 1) / nf;
    return 1 + a * logl(r < 1 ? 1 : r);
}

// ---------------------------------------------------------------------------
// 1. THEORY.md 5: the table and the quoted constants.

static void test_theory_table(void) {
    static const int64_t ns[4] = {4096, 32768, 131072, 1048576};
    struct row {
        const char *label, *policy;
        double train_len, factor, floor_scale, attn_scale, beta_slope, temperature_len, max_len;
        double v[4];
    };
    static const struct row rows[] = {
        {"qwen-logn L=2048",
         "qwen-logn",
         2048,
         NAN,
         NAN,
         NAN,
         NAN,
         NAN,
         NAN,
         {1.090909, 1.363636, 1.545455, 1.818182}},
        {"qwen-logn L=8192",
         "qwen-logn",
         8192,
         NAN,
         NAN,
         NAN,
         NAN,
         NAN,
         NAN,
         {1, 1.153846, 1.307692, 1.538462}},
        {"grok2 T=1024",
         "grok2",
         NAN,
         NAN,
         NAN,
         NAN,
         NAN,
         1024,
         NAN,
         {1.199965, 1.499996, 1.699999, 2.000000}},
        {"llama4 (0.1, 8192)",
         "llama4",
         NAN,
         NAN,
         8192,
         0.1,
         NAN,
         NAN,
         NAN,
         {1, 1.160944, 1.283321, 1.485981}},
        {"mistral (0.1, 16384)",
         "mistral",
         16384,
         NAN,
         NAN,
         NAN,
         0.1,
         NAN,
         NAN,
         {1, 1.069315, 1.207944, 1.415888}},
        {"inkling (0.1, 128000)",
         "inkling",
         NAN,
         NAN,
         128000,
         0.1,
         NAN,
         NAN,
         NAN,
         {1, 1, 1.002372, 1.210316}},
        {"yarn-dynamic L=M=4096",
         "yarn-dynamic",
         4096,
         NAN,
         NAN,
         NAN,
         NAN,
         NAN,
         4096,
         {1, 1.459129, 1.813260, 2.416525}},
        {"yarn s=4",
         "yarn",
         NAN,
         4,
         NAN,
         NAN,
         NAN,
         NAN,
         NAN,
         {1.296477, 1.296477, 1.296477, 1.296477}},
        {"su", "su", NAN, NAN, NAN, NAN, NAN, NAN, NAN, {1.333333, 1.666667, 1.888889, 2.222222}},
        {"sqrt-2-log-n",
         "sqrt-2-log-n",
         NAN,
         NAN,
         NAN,
         NAN,
         NAN,
         NAN,
         NAN,
         {4.078668, 4.560089, 4.854586, 5.265538}},
    };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        struct ats_policy_params p = defaults();
        p.train_len = rows[r].train_len;
        p.factor = rows[r].factor;
        p.floor_scale = rows[r].floor_scale;
        p.attn_scale = rows[r].attn_scale;
        p.beta_slope = rows[r].beta_slope;
        p.temperature_len = rows[r].temperature_len;
        p.max_len = rows[r].max_len;
        for (int c = 0; c < 4; c++) {
            ATS_CHECK_CLOSE(m_last(rows[r].policy, p, ns[c]), rows[r].v[c], ATOL6, 0,
                            "THEORY table: %s at n = %lld", rows[r].label, (long long)ns[c]);
            // The same rows with every parameter left at its shipped default.
            ATS_CHECK_CLOSE(m_last(rows[r].policy, r == 1 ? p : defaults(), ns[c]), rows[r].v[c],
                            ATOL6, 0, "THEORY table with defaults: %s at n = %lld", rows[r].label,
                            (long long)ns[c]);
        }
    }
}

static void test_theory_constants(void) {
    struct ats_policy_params p = defaults();
    ATS_CHECK_CLOSE(m_last("gpt-oss", p, 4096), 1.813260, ATOL6, 0, "gpt-oss (1 + 0.1 ln 32)^2");
    ATS_CHECK_CLOSE(m_last("deepseek", p, 4096), 1.873854, ATOL6, 0, "deepseek V3 defaults");
    p.mscale_all_dim = 0.707;
    ATS_CHECK_CLOSE(m_last("deepseek", p, 4096), 1.589626, ATOL6, 0,
                    "deepseek V2-Lite mscale_all_dim 0.707");
    p = defaults();
    ATS_CHECK_CLOSE(m_last("longrope", p, 4096), 1.416667, ATOL6, 0,
                    "longrope Phi-3-128k (L 4096, s = 131072/4096)");
    p.factor = 32;
    ATS_CHECK_CLOSE(m_last("longrope", p, 4096), 1.416667, ATOL6, 0, "longrope --factor 32");
    // Ministral 3: YaRN factor 16 with mscale = mscale_all_dim = 1: amplitude exactly 1.
    p = defaults();
    p.factor = 16;
    p.mscale = 1;
    p.mscale_all_dim = 1;
    p.train_len = 16384;
    ATS_CHECK(m_last("yarn", p, 262144) == 1.0, "Ministral 3 yarn amplitude is exactly 1");
    // An engine that ignores the pair applies g(16) = 1.277259, logits x 1.631391.
    p = defaults();
    p.factor = 16;
    ATS_CHECK_CLOSE(sqrt(m_last("yarn", p, 4096)), 1.277259, ATOL6, 0, "yarn g(16)");
    // THEORY.md 5 prints 1.631391, the square of the rounded 1.277259; the exact
    // (1 + 0.1 ln 16)^2 is 1.6313902, 1.631390 to 6 decimals.
    ATS_CHECK_CLOSE(m_last("yarn", p, 4096), 1.631390, ATOL6, 0, "yarn g(16)^2");
    ATS_CHECK_CLOSE(m_last("yarn", p, 4096), ref_g(16, 1) * ref_g(16, 1), 0, RTOL,
                    "yarn g(16)^2 against the reference");
    // Qwen at p = 2048 (L = 2048): 1.000064 in float32/double.
    ATS_CHECK_CLOSE(m_of("qwen-logn", defaults(), 2048, 2049), 1.000064, ATOL6, 0,
                    "qwen-logn at p = 2048 is 1.000064");
}

// ---------------------------------------------------------------------------
// 2. Independent references at the boundaries and at n = 4k .. 1M.

#define CHECK_REF(got, ref, ...) ATS_CHECK_CLOSE((got), (ref), 0, RTOL, __VA_ARGS__)

static void test_boundaries(void) {
    struct ats_policy_params p = defaults();
    // Llama 4 (0.1, 8192): floor((p+1)/8192) >= 1 first at p = 8191.
    ATS_CHECK(m_of("llama4", p, 8190, 8191) == 1.0, "llama4 p = 8190 is exactly 1");
    for (int64_t q = 8190; q <= 8192; q++)
        CHECK_REF(m_of("llama4", p, q, q + 1), ref_llama4((long double)q, 0.1L, 8192),
                  "llama4 p = %lld", (long long)q);
    ATS_CHECK(m_of("llama4", p, 8191, 8192) > 1.0, "llama4 changes at p = 8191");
    CHECK_REF(m_of("llama4", p, 16382, 16383), 1 + 0.1L * logl(2), "llama4 p = 16382");
    CHECK_REF(m_of("llama4", p, 16383, 16384), 1 + 0.1L * logl(3), "llama4 p = 16383");
    // Mistral (0.1, 16384): floor(p/16384) >= 1 first at p = 16384 (p, not p+1).
    ATS_CHECK(m_of("mistral", p, 16383, 16384) == 1.0, "mistral p = 16383 is exactly 1");
    CHECK_REF(m_of("mistral", p, 16384, 16385), ref_mistral(16384, 0.1L, 16384),
              "mistral p = 16384");
    CHECK_REF(m_of("mistral", p, 16384, 16385), 1 + 0.1L * logl(2),
              "mistral p = 16384 = 1 + 0.1 ln 2");
    CHECK_REF(m_of("mistral", p, 32768, 32769), 1 + 0.1L * logl(3), "mistral p = 32768");
    // Qwen (L = 2048): index p + 1 > L first at p = 2048.
    for (int64_t q = 2046; q <= 2049; q++)
        CHECK_REF(m_of("qwen-logn", p, q, q + 1), ref_qwen((long double)q, 2048),
                  "qwen-logn p = %lld", (long long)q);
    ATS_CHECK(m_of("qwen-logn", p, 2047, 2048) == 1.0, "qwen-logn p = 2047 (index 2048) is 1");
    ATS_CHECK(m_of("qwen-logn", p, 2048, 2049) > 1.0, "qwen-logn changes at p = 2048");
    // Grok-2 (T = 1024): p > T first at p = 1025.
    ATS_CHECK(m_of("grok2", p, 1024, 1025) == 1.0, "grok2 p = 1024 is exactly 1");
    CHECK_REF(m_of("grok2", p, 1025, 1026), ref_grok2(1025, 1024), "grok2 p = 1025");
    ATS_CHECK(m_of("grok2", p, 1025, 1026) > 1.0, "grok2 changes at p = 1025");
    ATS_CHECK(m_of("grok2", p, 0, 1) == 1.0, "grok2 p = 0 is 1 (log2 0 never taken)");
    // Inkling (0.1, 128000): (p+1)/N > 1 first at p = 128000.
    for (int64_t q = 127998; q <= 128001; q++)
        CHECK_REF(m_of("inkling", p, q, q + 1), ref_inkling((long double)q, 0.1L, 128000),
                  "inkling p = %lld", (long long)q);
    ATS_CHECK(m_of("inkling", p, 127999, 128000) == 1.0, "inkling p = 127999 is exactly 1");
    ATS_CHECK(m_of("inkling", p, 128000, 128001) > 1.0, "inkling changes at p = 128000");
    // Dynamic YaRN (L = M = 4096): n > M first at n = 4097.
    ATS_CHECK(m_of("yarn-dynamic", p, 0, 4096) == 1.0, "yarn-dynamic n = 4096 is exactly 1");
    CHECK_REF(m_of("yarn-dynamic", p, 0, 4097), ref_yarn_dynamic(4097, 4096, 4096, 0),
              "yarn-dynamic n = 4097");
    // With M != L the threshold is n > M, not n >= M (at n = M = 4L the rebuilt cache would
    // already carry g(4)); finetuned starts at g(M/L) and keeps it up to n = M.
    struct ats_policy_params y = defaults();
    y.train_len = 2048;
    y.max_len = 8192;
    ATS_CHECK(m_of("yarn-dynamic", y, 0, 8192) == 1.0, "yarn-dynamic L 2048, M 8192: n = M is 1");
    CHECK_REF(m_of("yarn-dynamic", y, 0, 8193), ref_yarn_dynamic(8193, 2048, 8192, 0),
              "yarn-dynamic L 2048, M 8192: n = M + 1");
    y.finetuned = 1;
    CHECK_REF(m_of("yarn-dynamic", y, 0, 1), ref_g(4, 1) * ref_g(4, 1),
              "yarn-dynamic finetuned: g(M/L)^2 from n = 1");
    CHECK_REF(m_of("yarn-dynamic", y, 0, 8192), ref_g(4, 1) * ref_g(4, 1),
              "yarn-dynamic finetuned: g(M/L)^2 at n = M");
    CHECK_REF(m_of("yarn-dynamic", y, 0, 8193), ref_yarn_dynamic(8193, 2048, 8192, 1),
              "yarn-dynamic finetuned: g(n/L)^2 at n = M + 1");
    // DeepSeek: the boost only when max_seq_len > original_seq_len.
    struct ats_policy_params d = defaults();
    d.max_len = 4096;
    ATS_CHECK(m_last("deepseek", d, 100) == 1.0, "deepseek M = L: no boost");
    d.max_len = 4097;
    CHECK_REF(m_last("deepseek", d, 100), ref_deepseek(40, 1, 4096, 4097), "deepseek M = L + 1");
    // SSMax at p = 0 sees one key: s ln 1 = 0.
    ATS_CHECK(m_of("ssmax", p, 0, 1) == 0.0, "ssmax p = 0 is 0");
    ATS_CHECK(m_of("log-n", p, 0, 1) == 0.0 && m_of("sqrt-2-log-n", p, 0, 1) == 0.0,
              "log-n and sqrt-2-log-n at n = 1 are 0");
    ATS_CHECK(m_last("critical", p, 4096) == 1.0 && m_last("sphere-critical", p, 4096) == 1.0,
              "critical and sphere-critical are 1 at n = L = 4096");
    ATS_CHECK(m_last("su", p, 512) == 1.0, "su is 1 at n = 512");
}

// One parameter set of every policy, and its reference at (pos, n).
struct case_ {
    const char *label, *policy;
    struct ats_policy_params p;
};

static long double reference(const struct case_ *c, int64_t pos, int64_t n) {
    const struct ats_policy_params *p = &c->p;
    long double q = (long double)pos, nn = (long double)n;
#define OR(v, def) (isnan(v) ? (long double)(def) : (long double)(v))
    if (!strcmp(c->policy, "yarn"))
        return ref_yarn(OR(p->factor, 4), OR(p->mscale, -1), OR(p->mscale_all_dim, -1),
                        OR(p->attention_factor, -1));
    if (!strcmp(c->policy, "yarn-dynamic"))
        return ref_yarn_dynamic(nn, OR(p->train_len, 4096), OR(p->max_len, OR(p->train_len, 4096)),
                                p->finetuned == 1);
    if (!strcmp(c->policy, "gpt-oss"))
        return ref_yarn(OR(p->factor, 32), -1, -1, -1);
    if (!strcmp(c->policy, "deepseek"))
        return ref_deepseek(OR(p->factor, 40), OR(p->mscale_all_dim, 1), OR(p->train_len, 4096),
                            OR(p->max_len, 16384));
    if (!strcmp(c->policy, "longrope"))
        return ref_longrope(isnan(p->factor) ? OR(p->max_len, 131072) / OR(p->train_len, 4096)
                                             : (long double)p->factor,
                            OR(p->train_len, 4096));
    if (!strcmp(c->policy, "qwen-logn"))
        return ref_qwen(q, OR(p->train_len, 2048));
    if (!strcmp(c->policy, "llama4"))
        return ref_llama4(q, OR(p->attn_scale, 0.1), OR(p->floor_scale, 8192));
    if (!strcmp(c->policy, "mistral"))
        return ref_mistral(q, OR(p->beta_slope, 0.1), OR(p->train_len, 16384));
    if (!strcmp(c->policy, "grok2"))
        return ref_grok2(q, OR(p->temperature_len, 1024));
    if (!strcmp(c->policy, "inkling"))
        return ref_inkling(q, OR(p->attn_scale, 0.1), OR(p->floor_scale, 128000));
    if (!strcmp(c->policy, "ssmax"))
        return OR(p->slope, 0.43) * logl(q + 1);
    if (!strcmp(c->policy, "log-n"))
        return logl(nn);
    if (!strcmp(c->policy, "su"))
        return logl(nn) / logl(512);
    if (!strcmp(c->policy, "sqrt-2-log-n"))
        return sqrtl(2 * logl(nn));
    if (!strcmp(c->policy, "critical"))
        return logl(nn) / logl(OR(p->train_len, 4096));
    if (!strcmp(c->policy, "sphere-critical"))
        return powl(nn / OR(p->train_len, 4096), 2 / (OR(p->d, 64) - 1));
#undef OR
    return NAN;
}

static void test_against_references(void) {
    struct case_ cases[40];
    int nc = 0;
    // Shipped defaults of every policy.
    for (int64_t id = 0; id < ats_policy_count(); id++)
        cases[nc++] = (struct case_){"defaults", ats_policy_get(id)->name, defaults()};
    // Other parameter values ("high-entropy", not round).
    struct ats_policy_params p;
#define ADD(lbl, pol, assign)                                                                      \
    do {                                                                                           \
        p = defaults();                                                                            \
        assign;                                                                                    \
        cases[nc++] = (struct case_){lbl, pol, p};                                                 \
    } while (0)
    ADD("s 2.385", "yarn", p.factor = 2.385);
    ADD("s 40, mscale 1, mscale_all_dim 0.707", "yarn",
        (p.factor = 40, p.mscale = 1, p.mscale_all_dim = 0.707));
    ADD("s 8, attention factor 1.137", "yarn", (p.factor = 8, p.attention_factor = 1.137));
    ADD("L 2048, M 8192, finetuned", "yarn-dynamic",
        (p.train_len = 2048, p.max_len = 8192, p.finetuned = 1));
    ADD("L 2048, M 8192", "yarn-dynamic", (p.train_len = 2048, p.max_len = 8192));
    ADD("s 16.5", "gpt-oss", p.factor = 16.5);
    ADD("s 16, C 0.707, L 4096, M 163840", "deepseek",
        (p.factor = 16, p.mscale_all_dim = 0.707, p.max_len = 163840));
    ADD("L 8192, s 2.385", "longrope", (p.train_len = 8192, p.factor = 2.385));
    ADD("L 4096, M 65536", "longrope", p.max_len = 65536);
    ADD("L 8192", "qwen-logn", p.train_len = 8192);
    ADD("L 3000", "qwen-logn", p.train_len = 3000);
    ADD("(0.137, 5000)", "llama4", (p.attn_scale = 0.137, p.floor_scale = 5000));
    ADD("(0.2385, 12000)", "mistral", (p.beta_slope = 0.2385, p.train_len = 12000));
    ADD("T 2000", "grok2", p.temperature_len = 2000);
    ADD("(0.0713, 65536)", "inkling", (p.attn_scale = 0.0713, p.floor_scale = 65536));
    ADD("s 0.385", "ssmax", p.slope = 0.385);
    ADD("L 2048", "critical", p.train_len = 2048);
    ADD("d 3, L 1000", "sphere-critical", (p.d = 3, p.train_len = 1000));
    ADD("d 128, L 32768", "sphere-critical", (p.d = 128, p.train_len = 32768));
#undef ADD
    static const int64_t ns[4] = {4096, 32768, 131072, 1048576};
    for (int c = 0; c < nc; c++) {
        for (int k = 0; k < 4; k++) {
            int64_t n = ns[k];
            int64_t rows[3] = {n - 1, n / 2, 0};
            for (int r = 0; r < 3; r++) {
                long double ref = reference(&cases[c], rows[r], n);
                double got = m_of(cases[c].policy, cases[c].p, rows[r], n);
                // Exact zeros (ssmax at p = 0) need no relative slack.
                ATS_CHECK_CLOSE(got, ref, 0, RTOL, "%s (%s) at p = %lld, n = %lld", cases[c].policy,
                                cases[c].label, (long long)rows[r], (long long)n);
            }
        }
    }
}

// Static policies are the same at p = 0; row policies do not depend on n; length policies do
// not depend on p.
static void test_dependence_invariants(void) {
    for (int64_t id = 0; id < ats_policy_count(); id++) {
        const struct ats_policy_info *info = ats_policy_get(id);
        struct ats_policy_params p = defaults();
        const int64_t n = 1048576, pos = 200001;
        double a = m_of(info->name, p, pos, n);
        switch (info->dependence) {
        case ATS_POLICY_STATIC:
            ATS_CHECK(a == m_of(info->name, p, 0, 1), "%s: static, same at p = 0, n = 1",
                      info->name);
            break;
        case ATS_POLICY_ROW:
            ATS_CHECK(a == m_of(info->name, p, pos, pos + 1), "%s: row, independent of n",
                      info->name);
            break;
        case ATS_POLICY_LENGTH:
            ATS_CHECK(a == m_of(info->name, p, 0, n), "%s: length, independent of p", info->name);
            break;
        }
    }
}

static void test_qwen_table_end(void) {
    struct ats_policy_value v;
    struct ats_policy_params p = defaults();
    int64_t id = ats_policy_find("qwen-logn");
    ATS_CHECK(ats_policy_eval(&v, id, &p, 32766, 32767) == 0 && v.extrapolated == 0,
              "qwen-logn p = 32766 (index 32767, last table entry) is not extrapolated");
    ATS_CHECK(ats_policy_eval(&v, id, &p, 32767, 32768) == 0 && v.extrapolated == 1,
              "qwen-logn p = 32767 is extrapolated");
    CHECK_REF(v.multiplier, ref_qwen(32767, 2048), "qwen-logn p = 32767 continues the formula");
    for (int64_t i = 0; i < ats_policy_count(); i++) {
        if (i == id)
            continue;
        ATS_CHECK(ats_policy_eval(&v, i, &p, 1048575, 1048576) == 0 && v.extrapolated == 0,
                  "%s never extrapolated", ats_policy_get(i)->name);
    }
}

// ---------------------------------------------------------------------------
// 3. YaRN precedence, g(s) for s <= 1, the other static policies' edge cases.

static void test_yarn_precedence(void) {
    struct ats_policy_params p = defaults();
    p.factor = 40;
    p.mscale = 1;
    p.mscale_all_dim = 0.5;
    p.attention_factor = 1.2345;
    CHECK_REF(m_last("yarn", p, 10), 1.2345L * 1.2345L, "yarn: attention_factor wins over mscales");
    p.attention_factor = NAN;
    CHECK_REF(m_last("yarn", p, 10), ref_yarn(40, 1, 0.5, -1),
              "yarn: both mscales truthy -> g(s,mscale)/g(s,mscale_all_dim)");
    ATS_CHECK(m_last("yarn", p, 10) > 1.0, "yarn: ratio above 1 for mscale > mscale_all_dim");
    p.mscale_all_dim = 0;
    CHECK_REF(m_last("yarn", p, 10), ref_g(40, 1) * ref_g(40, 1), "yarn: mscale_all_dim 0 -> g(s)");
    p.mscale = 0;
    p.mscale_all_dim = 0.5;
    CHECK_REF(m_last("yarn", p, 10), ref_g(40, 1) * ref_g(40, 1), "yarn: mscale 0 -> g(s)");
    p.mscale = 0.8;
    p.mscale_all_dim = NAN;
    CHECK_REF(m_last("yarn", p, 10), ref_g(40, 1) * ref_g(40, 1),
              "yarn: mscale alone (mscale_all_dim missing) -> g(s)");
    p.mscale = NAN;
    p.mscale_all_dim = 0.8;
    CHECK_REF(m_last("yarn", p, 10), ref_g(40, 1) * ref_g(40, 1),
              "yarn: mscale_all_dim alone -> g(s)");
    // g(s) = 1 exactly for s <= 1, in every branch.
    static const double small[3] = {1.0, 0.5, 1e-3};
    for (int k = 0; k < 3; k++) {
        p = defaults();
        p.factor = small[k];
        ATS_CHECK(m_last("yarn", p, 10) == 1.0, "yarn: g(%g) = 1 exactly", small[k]);
        p.mscale = 1;
        p.mscale_all_dim = 0.5;
        ATS_CHECK(m_last("yarn", p, 10) == 1.0, "yarn: g(%g,1)/g(%g,0.5) = 1 exactly", small[k],
                  small[k]);
        ATS_CHECK(m_last("gpt-oss", p, 10) == 1.0, "gpt-oss: concentration 1 at s = %g", small[k]);
        ATS_CHECK(m_last("longrope", p, 10) == 1.0, "longrope: attention factor 1 at s = %g",
                  small[k]);
    }
    // No factor: s = M/L when --max-len is given (transformers 5), else the default 4.
    p = defaults();
    p.max_len = 131072;
    p.train_len = 32768;
    CHECK_REF(m_last("yarn", p, 10), ref_g(4, 1) * ref_g(4, 1), "yarn: s = M/L = 4");
    p.train_len = NAN;
    p.max_len = 262144;
    CHECK_REF(m_last("yarn", p, 10), ref_g(8, 1) * ref_g(8, 1), "yarn: s = M/32768 = 8");
    p.factor = 2;
    CHECK_REF(m_last("yarn", p, 10), ref_g(2, 1) * ref_g(2, 1), "yarn: --factor wins over M/L");
    // LongRoPE: explicit attention factor (Phi-3.5 short/long mscale) is squared.
    p = defaults();
    p.attention_factor = 1.1;
    CHECK_REF(m_last("longrope", p, 10), 1.1L * 1.1L,
              "longrope: explicit attention factor squared");
    // DeepSeek follows its official formula without a guard: below 1 for s < 1.
    p = defaults();
    p.factor = 0.5;
    CHECK_REF(m_last("deepseek", p, 10), ref_deepseek(0.5, 1, 4096, 16384),
              "deepseek: official formula at s = 0.5");
    ATS_CHECK(m_last("deepseek", p, 10) < 1.0, "deepseek: no s <= 1 guard in the official code");
    p.factor = NAN;
    p.mscale_all_dim = 0;
    ATS_CHECK(m_last("deepseek", p, 10) == 1.0, "deepseek: mscale_all_dim 0 -> 1");
    // By default no rotary amplitude (the official code has none); --mscale or
    // --attention-factor add transformers' port's amplitude on the rotary dims.
    {
        struct ats_policy_value v;
        int64_t id = ats_policy_find("deepseek");
        long double all = ref_deepseek(40, 1, 4096, 16384);
        p = defaults();
        ats_policy_eval(&v, id, &p, 9, 10);
        ATS_CHECK(v.m_rot == v.m_pass && v.scope == ATS_POLICY_SCOPE_ALL,
                  "deepseek: all dims only by default");
        p.mscale = 0.5; // a = g(40, 0.5)/g(40, 1) with the V3 mscale_all_dim = 1
        ats_policy_eval(&v, id, &p, 9, 10);
        long double a = ref_g(40, 0.5L) / ref_g(40, 1);
        CHECK_REF(v.m_rot, all * a * a, "deepseek --mscale 0.5: rotary dims x (g(s,.5)/g(s,1))^2");
        CHECK_REF(v.m_pass, all, "deepseek --mscale 0.5: pass-through dims keep the softmax scale");
        ATS_CHECK(isnan(v.multiplier), "deepseek with an amplitude: no single multiplier");
        p.attention_factor = 3; // the explicit factor wins
        ats_policy_eval(&v, id, &p, 9, 10);
        CHECK_REF(v.m_rot, all * 9, "deepseek --attention-factor 3: rotary dims x 9");
    }
    // Parameters a policy does not use are ignored, even out of every domain.
    p = defaults();
    p.factor = -5;
    p.d = 0.5;
    p.slope = -1;
    ATS_CHECK(m_of("qwen-logn", p, 4095, 4096) == m_of("qwen-logn", defaults(), 4095, 4096),
              "qwen-logn ignores --factor, --d, --slope");
}

// ---------------------------------------------------------------------------
// The registry, names, scope and dependence.

static void test_registry(void) {
    static const struct {
        const char *name;
        enum ats_policy_scope scope;
        enum ats_policy_dependence dep;
    } want[] = {
        {"yarn", ATS_POLICY_SCOPE_ROTARY, ATS_POLICY_STATIC},
        {"yarn-dynamic", ATS_POLICY_SCOPE_ROTARY, ATS_POLICY_LENGTH},
        {"gpt-oss", ATS_POLICY_SCOPE_ROTARY, ATS_POLICY_STATIC},
        {"deepseek", ATS_POLICY_SCOPE_ALL, ATS_POLICY_STATIC},
        {"longrope", ATS_POLICY_SCOPE_ROTARY, ATS_POLICY_STATIC},
        {"qwen-logn", ATS_POLICY_SCOPE_ALL, ATS_POLICY_ROW},
        {"llama4", ATS_POLICY_SCOPE_ALL, ATS_POLICY_ROW},
        {"mistral", ATS_POLICY_SCOPE_ALL, ATS_POLICY_ROW},
        {"grok2", ATS_POLICY_SCOPE_ALL, ATS_POLICY_ROW},
        {"inkling", ATS_POLICY_SCOPE_ALL, ATS_POLICY_ROW},
        {"ssmax", ATS_POLICY_SCOPE_ALL, ATS_POLICY_ROW},
        {"log-n", ATS_POLICY_SCOPE_ALL, ATS_POLICY_LENGTH},
        {"su", ATS_POLICY_SCOPE_ALL, ATS_POLICY_LENGTH},
        {"sqrt-2-log-n", ATS_POLICY_SCOPE_ALL, ATS_POLICY_LENGTH},
        {"critical", ATS_POLICY_SCOPE_ALL, ATS_POLICY_LENGTH},
        {"sphere-critical", ATS_POLICY_SCOPE_ALL, ATS_POLICY_LENGTH},
    };
    const int64_t count = (int64_t)(sizeof want / sizeof want[0]);
    ATS_CHECK(ats_policy_count() == count, "16 policies (got %lld)", (long long)ats_policy_count());
    for (int64_t i = 0; i < count && i < ats_policy_count(); i++) {
        const struct ats_policy_info *info = ats_policy_get(i);
        ATS_CHECK(info && !strcmp(info->name, want[i].name), "id %lld is %s (DESIGN.md order)",
                  (long long)i, want[i].name);
        ATS_CHECK(ats_policy_find(want[i].name) == i, "find(%s) = %lld", want[i].name,
                  (long long)i);
        ATS_CHECK(info->scope == want[i].scope && info->dependence == want[i].dep,
                  "%s: scope %s, dependence %s", want[i].name, ats_policy_scope_name(want[i].scope),
                  ats_policy_dependence_name(want[i].dep));
        ATS_CHECK(info->family && info->family[0] && info->source && info->source[0] &&
                      info->formula && info->formula[0],
                  "%s: family, source and formula are set", want[i].name);
        struct ats_policy_value v;
        struct ats_policy_params p = defaults();
        ATS_CHECK(ats_policy_eval(&v, i, &p, 4095, 4096) == 0 && v.scope == want[i].scope &&
                      v.dependence == want[i].dep,
                  "%s: value carries the scope and dependence", want[i].name);
        double mr = v.scope == ATS_POLICY_SCOPE_NONROTARY ? 1.0 : v.multiplier;
        double mp = v.scope == ATS_POLICY_SCOPE_ROTARY ? 1.0 : v.multiplier;
        ATS_CHECK(v.m_rot == mr && v.m_pass == mp, "%s: m_rot %g, m_pass %g from scope %s",
                  want[i].name, v.m_rot, v.m_pass, ats_policy_scope_name(v.scope));
    }
    ATS_CHECK(ats_policy_find("Yarn") == -1, "find is case-sensitive");
    ATS_CHECK(ats_policy_find("qwen") == -1, "find(qwen) = -1 (no prefix match)");
    ATS_CHECK(ats_policy_find("") == -1, "find(\"\") = -1");
    ATS_CHECK(ats_policy_find(NULL) == -1, "find(NULL) = -1");
    ATS_CHECK(ats_policy_find("all") == -1, "find(all) = -1 (the CLI expands it)");
    ATS_CHECK(ats_policy_get(-1) == NULL && ats_policy_get(count) == NULL &&
                  ats_policy_get(INT64_MAX) == NULL && ats_policy_get(INT64_MIN) == NULL,
              "get outside 0..count-1 is NULL");
    ATS_CHECK(!strcmp(ats_policy_scope_name(ATS_POLICY_SCOPE_ALL), "all") &&
                  !strcmp(ats_policy_scope_name(ATS_POLICY_SCOPE_ROTARY), "rotary") &&
                  !strcmp(ats_policy_scope_name(ATS_POLICY_SCOPE_NONROTARY), "nonrotary"),
              "scope names");
    ATS_CHECK(!strcmp(ats_policy_dependence_name(ATS_POLICY_STATIC), "static") &&
                  !strcmp(ats_policy_dependence_name(ATS_POLICY_ROW), "row") &&
                  !strcmp(ats_policy_dependence_name(ATS_POLICY_LENGTH), "length"),
              "dependence names");
    struct ats_policy_params d = ats_policy_params_default();
    ATS_CHECK(isnan(d.train_len) && isnan(d.factor) && isnan(d.max_len) && isnan(d.mscale) &&
                  isnan(d.mscale_all_dim) && isnan(d.attention_factor) && d.finetuned == -1 &&
                  isnan(d.floor_scale) && isnan(d.attn_scale) && isnan(d.beta_slope) &&
                  isnan(d.temperature_len) && isnan(d.slope) && isnan(d.d),
              "params_default: every field NAN, finetuned -1");
}

// ---------------------------------------------------------------------------
// Composition.

static struct ats_policy_value value_of(const char *name, struct ats_policy_params p, int64_t pos,
                                        int64_t n) {
    struct ats_policy_value v = ats_policy_identity();
    v.multiplier = NAN;
    if (ats_policy_eval(&v, ats_policy_find(name), &p, pos, n) != ATS_STATUS_OK)
        v.multiplier = v.m_rot = v.m_pass = NAN;
    return v;
}

static void test_combine(void) {
    struct ats_policy_value id = ats_policy_identity();
    ATS_CHECK(id.multiplier == 1 && id.m_rot == 1 && id.m_pass == 1 &&
                  id.scope == ATS_POLICY_SCOPE_ALL && id.dependence == ATS_POLICY_STATIC &&
                  id.extrapolated == 0,
              "identity: 1 on all dims, static");

    struct ats_policy_value yarn = value_of("yarn", defaults(), 4095, 4096);
    struct ats_policy_value qwen = value_of("qwen-logn", defaults(), 4095, 4096);
    struct ats_policy_value acc = ats_policy_identity();
    ats_policy_combine(&acc, &yarn);
    ATS_CHECK(acc.scope == ATS_POLICY_SCOPE_ROTARY && acc.multiplier == yarn.multiplier &&
                  acc.m_rot == yarn.multiplier && acc.m_pass == 1 &&
                  acc.dependence == ATS_POLICY_STATIC,
              "identity + yarn = yarn (rotary, static)");
    ats_policy_combine(&acc, &qwen);
    CHECK_REF(acc.m_rot, (long double)yarn.multiplier * qwen.multiplier,
              "yarn + qwen: rotary dims get both");
    ATS_CHECK(acc.m_pass == qwen.multiplier, "yarn + qwen: pass-through dims get qwen only");
    ATS_CHECK(isnan(acc.multiplier), "yarn + qwen: no single scalar (multiplier NAN)");
    ATS_CHECK(acc.dependence == ATS_POLICY_ROW, "yarn + qwen: row");

    // Order does not matter for the per-scope products.
    struct ats_policy_value acc2 = ats_policy_identity();
    ats_policy_combine(&acc2, &qwen);
    ats_policy_combine(&acc2, &yarn);
    ATS_CHECK(acc2.m_rot == acc.m_rot && acc2.m_pass == acc.m_pass &&
                  acc2.dependence == acc.dependence,
              "composition commutes");

    // All-dims policies compose to an all-dims scalar.
    struct ats_policy_value ds = value_of("deepseek", defaults(), 4095, 4096);
    acc = ats_policy_identity();
    ats_policy_combine(&acc, &ds);
    ats_policy_combine(&acc, &qwen);
    CHECK_REF(acc.multiplier, (long double)ds.multiplier * qwen.multiplier,
              "deepseek + qwen scalar");
    ATS_CHECK(acc.scope == ATS_POLICY_SCOPE_ALL && acc.m_rot == acc.m_pass, "deepseek + qwen: all");

    // A non-rotary factor, then a rotary one of the same size: all dims.
    struct ats_policy_value nonrot = {.multiplier = 1.5,
                                      .m_rot = 1,
                                      .m_pass = 1.5,
                                      .scope = ATS_POLICY_SCOPE_NONROTARY,
                                      .dependence = ATS_POLICY_STATIC};
    struct ats_policy_value rot = {.multiplier = 1.5,
                                   .m_rot = 1.5,
                                   .m_pass = 1,
                                   .scope = ATS_POLICY_SCOPE_ROTARY,
                                   .dependence = ATS_POLICY_STATIC};
    acc = ats_policy_identity();
    ats_policy_combine(&acc, &nonrot);
    ATS_CHECK(acc.scope == ATS_POLICY_SCOPE_NONROTARY && acc.multiplier == 1.5 && acc.m_rot == 1,
              "identity + nonrotary = nonrotary");
    ats_policy_combine(&acc, &rot);
    ATS_CHECK(acc.scope == ATS_POLICY_SCOPE_ALL && acc.multiplier == 1.5 && acc.m_rot == 1.5 &&
                  acc.m_pass == 1.5,
              "nonrotary 1.5 + rotary 1.5 = all 1.5");

    // Dependence: length + static = length; row + length = row. Extrapolation is sticky.
    struct ats_policy_value su = value_of("su", defaults(), 4095, 4096);
    acc = ats_policy_identity();
    ats_policy_combine(&acc, &yarn);
    ats_policy_combine(&acc, &su);
    ATS_CHECK(acc.dependence == ATS_POLICY_LENGTH, "static + length = length");
    struct ats_policy_value far = value_of("qwen-logn", defaults(), 40000, 40001);
    ats_policy_combine(&acc, &far);
    ATS_CHECK(acc.dependence == ATS_POLICY_ROW && acc.extrapolated == 1,
              "length + row = row; extrapolated carried");
    ats_policy_combine(&acc, &yarn);
    ATS_CHECK(acc.extrapolated == 1 && acc.dependence == ATS_POLICY_ROW,
              "extrapolated and row survive a later static policy");
}

// ---------------------------------------------------------------------------
// Errors: every EINVAL / EDOM path, with the option named in the reason.

static void expect_error(int want, const char *needle, int64_t id, struct ats_policy_params p,
                         int64_t pos, int64_t n, const char *label) {
    struct ats_policy_value v;
    last_reason[0] = 0;
    last_status = 0;
    int rc = ats_policy_eval(&v, id, &p, pos, n);
    ATS_CHECK(rc == want && last_status == want && strstr(last_reason, needle) != NULL,
              "%s -> %s, reason names \"%s\" (rc %d, reason \"%s\")", label, ats_strerror(want),
              needle, rc, last_reason);
}

static void expect_edom(const char *policy, struct ats_policy_params p, const char *needle,
                        const char *label) {
    expect_error(ATS_STATUS_EDOM, needle, ats_policy_find(policy), p, 4095, 4096, label);
}

static void test_errors(void) {
    ats_error_handler_t *old = ats_set_error_handler(capture);
    struct ats_policy_params p = defaults();
    expect_error(ATS_STATUS_EINVAL, "unknown policy", -1, p, 0, 1, "id -1");
    expect_error(ATS_STATUS_EINVAL, "unknown policy", ats_policy_count(), p, 0, 1, "id = count");
    expect_error(ATS_STATUS_EINVAL, "unknown policy", INT64_MAX, p, 0, 1, "id INT64_MAX");
    for (int64_t id = 0; id < ats_policy_count(); id++) {
        expect_error(ATS_STATUS_EDOM, "--pos must be >= 0", id, p, -1, 10, "pos -1");
        expect_error(ATS_STATUS_EDOM, "--n must be >= pos + 1", id, p, 10, 10, "n = pos");
        expect_error(ATS_STATUS_EDOM, "--n must be >= pos + 1", id, p, 0, 0, "n = 0");
        expect_error(ATS_STATUS_EDOM, "--n must be >= pos + 1", id, p, INT64_MAX, INT64_MAX,
                     "pos = n = INT64_MAX");
    }
    const double inf = INFINITY;
#define EDOM_CASE(policy, field, value, needle)                                                    \
    do {                                                                                           \
        p = defaults();                                                                            \
        p.field = (value);                                                                         \
        expect_edom(policy, p, needle, policy " " #field " = " #value);                            \
    } while (0)
    // yarn
    EDOM_CASE("yarn", factor, 0, "--factor must be > 0");
    EDOM_CASE("yarn", factor, -2, "--factor must be > 0");
    EDOM_CASE("yarn", factor, inf, "--factor must be > 0");
    EDOM_CASE("yarn", max_len, 0.5, "--max-len must be >= 1");
    EDOM_CASE("yarn", max_len, inf, "--max-len must be >= 1");
    EDOM_CASE("yarn", mscale, -1, "--mscale must be >= 0");
    EDOM_CASE("yarn", mscale_all_dim, -0.5, "--mscale-all-dim must be >= 0");
    EDOM_CASE("yarn", mscale_all_dim, inf, "--mscale-all-dim must be >= 0");
    EDOM_CASE("yarn", attention_factor, 0, "--attention-factor must be > 0");
    EDOM_CASE("yarn", attention_factor, -1.5, "--attention-factor must be > 0");
    EDOM_CASE("yarn", attention_factor, inf, "--attention-factor must be > 0");
    p = defaults();
    p.max_len = 131072;
    p.train_len = 0;
    expect_edom("yarn", p, "--train-len must be >= 1", "yarn train_len 0 with max_len");
    // yarn-dynamic
    EDOM_CASE("yarn-dynamic", train_len, 0, "--train-len must be >= 1");
    EDOM_CASE("yarn-dynamic", train_len, -inf, "--train-len must be >= 1");
    EDOM_CASE("yarn-dynamic", max_len, 0.5, "--max-len must be >= 1");
    EDOM_CASE("yarn-dynamic", finetuned, 2, "--finetuned must be 0, 1");
    EDOM_CASE("yarn-dynamic", finetuned, -2, "--finetuned must be 0, 1");
    // gpt-oss
    EDOM_CASE("gpt-oss", factor, 0, "--factor must be > 0");
    EDOM_CASE("gpt-oss", factor, -inf, "--factor must be > 0");
    // deepseek
    EDOM_CASE("deepseek", factor, 0, "--factor must be > 0");
    EDOM_CASE("deepseek", train_len, 0, "--train-len must be >= 1");
    EDOM_CASE("deepseek", max_len, 0, "--max-len must be >= 1");
    EDOM_CASE("deepseek", mscale_all_dim, -0.707, "--mscale-all-dim must be >= 0");
    // longrope
    EDOM_CASE("longrope", train_len, 1, "--train-len must be >= 2");
    EDOM_CASE("longrope", factor, -1, "--factor must be > 0");
    EDOM_CASE("longrope", max_len, 0, "--max-len must be >= 1");
    EDOM_CASE("longrope", attention_factor, 0, "--attention-factor must be > 0");
    // qwen-logn
    EDOM_CASE("qwen-logn", train_len, 1, "--train-len must be >= 2");
    EDOM_CASE("qwen-logn", train_len, inf, "--train-len must be >= 2");
    // llama4
    EDOM_CASE("llama4", floor_scale, 0.5, "--floor-scale must be >= 1");
    EDOM_CASE("llama4", attn_scale, -0.1, "--attn-scale must be >= 0");
    EDOM_CASE("llama4", attn_scale, inf, "--attn-scale must be >= 0");
    // mistral
    EDOM_CASE("mistral", train_len, 0, "--train-len must be >= 1");
    EDOM_CASE("mistral", beta_slope, -0.1, "--beta-slope must be >= 0");
    // grok2
    EDOM_CASE("grok2", temperature_len, 1, "--temperature-len must be >= 2");
    EDOM_CASE("grok2", temperature_len, inf, "--temperature-len must be >= 2");
    // inkling
    EDOM_CASE("inkling", floor_scale, 0, "--floor-scale must be >= 1");
    EDOM_CASE("inkling", attn_scale, -1, "--attn-scale must be >= 0");
    // ssmax
    EDOM_CASE("ssmax", slope, -0.43, "--slope must be >= 0");
    EDOM_CASE("ssmax", slope, inf, "--slope must be >= 0");
    // critical, sphere-critical
    EDOM_CASE("critical", train_len, 1.5, "--train-len must be >= 2");
    EDOM_CASE("sphere-critical", train_len, 0.5, "--train-len must be >= 1");
    EDOM_CASE("sphere-critical", d, 1, "--d must be an integer >= 2");
    EDOM_CASE("sphere-critical", d, 2.5, "--d must be an integer >= 2");
    EDOM_CASE("sphere-critical", d, inf, "--d must be an integer >= 2");
#undef EDOM_CASE
    // The reason names the policy too.
    p = defaults();
    p.train_len = 1;
    expect_edom("qwen-logn", p, "qwen-logn: --train-len", "reason starts with the policy name");
    ats_set_error_handler(old);
}

// ---------------------------------------------------------------------------
// 4. THEORY.md 5 "Theory mapping": m ~ 1 + gamma' log(n/L*).

static void test_theory_mapping(void) {
    struct ats_policy_params p = defaults();
    const int64_t n = 1048576;
    // Qwen: m - 1 = log(n/L)/log L exactly, gamma' = 1/log 2048 = 0.1312.
    CHECK_REF(m_last("qwen-logn", p, n) - 1, logl((long double)n / 2048) / logl(2048),
              "qwen-logn: m - 1 = log(n/L)/log L");
    ATS_CHECK_CLOSE(1 / log(2048.0), 0.1312, 5e-5, 0, "qwen gamma' = 0.1312 (4 digits)");
    // Grok-2: m - 1 = log(p/T)/log T, gamma' = 1/log 1024 = 0.1443.
    CHECK_REF(m_last("grok2", p, n) - 1, logl((long double)(n - 1) / 1024) / logl(1024),
              "grok2: m - 1 = log(p/T)/log T");
    ATS_CHECK_CLOSE(1 / log(1024.0), 0.1443, 5e-5, 0, "grok2 gamma' = 0.1443 (4 digits)");
    // Su: exact slope 1/log 512 = 0.1603 per unit of log n.
    double su_slope = (m_last("su", p, n) - m_last("su", p, 1024)) / log(1024.0);
    // Two O(1) values and a difference of size 1.1: a few ulps of 2.2.
    ATS_CHECK_CLOSE(su_slope, 1 / logl(512), 0, 64 * DBL_EPSILON, "su slope 1/log 512");
    ATS_CHECK_CLOSE(su_slope, 0.1603, 5e-5, 0, "su gamma' = 0.1603 (4 digits)");
    // Llama 4, Mistral, Inkling: slope 0.1 asymptotically. Between p + 1 = 2^40 and 2^50 the
    // floor and the +1 move the slope by at most 0.1 F / 2^40 / log 2^10 < 1e-10 (F <= 2^17).
    const int64_t a = (int64_t)1 << 40, b = (int64_t)1 << 50;
    const char *asym[3] = {"llama4", "mistral", "inkling"};
    for (int k = 0; k < 3; k++) {
        double slope =
            (m_of(asym[k], p, b - 1, b) - m_of(asym[k], p, a - 1, a)) / log((double)b / (double)a);
        ATS_CHECK_CLOSE(slope, 0.1, 1e-9, 0, "%s: slope 0.1 per unit of log p", asym[k]);
    }
    // Dynamic YaRN: (1 + 0.1 x)^2 = 1 + 0.2 x + 0.01 x^2, x = log(n/L): slope 0.2 plus a square.
    long double x = logl((long double)n / 4096);
    CHECK_REF(m_last("yarn-dynamic", p, n), 1 + 0.2L * x + 0.01L * x * x,
              "yarn-dynamic = 1 + 0.2 x + 0.01 x^2");
    // Static policies are constant in n (checked at both ends).
    const char *statics[4] = {"yarn", "gpt-oss", "deepseek", "longrope"};
    for (int k = 0; k < 4; k++)
        ATS_CHECK(m_last(statics[k], p, 2) == m_last(statics[k], p, n), "%s constant in n",
                  statics[k]);
}

int main(void) {
    test_theory_table();
    test_theory_constants();
    test_boundaries();
    test_against_references();
    test_dependence_invariants();
    test_qwen_table_end();
    test_yarn_precedence();
    test_registry();
    test_combine();
    test_errors();
    test_theory_mapping();
    return ats_test_summary();
}
