/*
 * policies.c: the registry of production attention-scaling policies (THEORY.md section 5).
 *
 * Each policy returns the multiplier m that a shipped model (or a paper's rule) applies to the
 * standard logit <q,k>/sqrt(d_h), with the head dimensions it touches (scope) and what it
 * depends on (static configuration, the 0-based query position p, or the total length n).
 * Every formula below was read from the source named beside it and rewritten here; the
 * off-by-one conventions and thresholds are the sources', not THEORY.md's paraphrase, and the
 * places where the two differ are said so in the comments.
 *
 * Conventions:
 *   - a query at 0-based position p sees p + 1 keys; row policies use p, length policies n;
 *   - a cos/sin amplitude a (rotary cache) multiplies q and k, so the rotary part of the logit
 *     by a^2; a query-only factor multiplies the whole logit once and is never squared;
 *   - every field of struct ats_policy_params that is NAN (finetuned: -1) takes the policy's
 *     shipped default; a value outside the policy's domain is rejected (ATS_STATUS_EDOM, the
 *     reason names the CLI option), never clamped;
 *   - the engines compute in float32; this file computes in double (THEORY.md 5).
 *
 * Build: part of build/libattnscale.a (make); tests: tests/test_policies.c.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/internal.h"

// ---------------------------------------------------------------------------
// Identifiers, in DESIGN.md's order (the registry's ids).

enum policy_id {
    POLICY_YARN,
    POLICY_YARN_DYNAMIC,
    POLICY_GPT_OSS,
    POLICY_DEEPSEEK,
    POLICY_LONGROPE,
    POLICY_QWEN_LOGN,
    POLICY_LLAMA4,
    POLICY_MISTRAL,
    POLICY_GROK2,
    POLICY_INKLING,
    POLICY_SSMAX,
    POLICY_LOG_N,
    POLICY_SU,
    POLICY_SQRT_2_LOG_N,
    POLICY_CRITICAL,
    POLICY_SPHERE_CRITICAL,
    POLICY_COUNT
};

// ---------------------------------------------------------------------------
// Shipped defaults, each with where it comes from.

// YaRN: Qwen2.5's published long-context recipe, rope_scaling = {"type": "yarn", "factor": 4.0,
// "original_max_position_embeddings": 32768} (Qwen2.5-7B-Instruct model card). The static
// multiplier depends on the factor only; the original length matters when s = M/L.
#define YARN_FACTOR 4.0
#define YARN_ORIG_LEN 32768.0
// Dynamic YaRN on Llama 2: original length 4096, cache initially max_position_embeddings = 4096
// (THEORY.md 5's table row; jquesnelle/yarn's own signature defaults are Llama 1's 2048).
#define YARN_DYN_ORIG_LEN 4096.0
// gpt-oss ModelConfig: rope_scaling_factor = 32.0, initial_context_length = 4096, and the
// rotary embedding covers the whole head (head_dim = 64).
#define GPT_OSS_FACTOR 32.0
// DeepSeek-V3 inference/model.py ModelArgs: rope_factor = 40, original_seq_len = 4096,
// mscale = 1.0, max_seq_len = 4096 * 4 (> original_seq_len, so the boost applies).
#define DEEPSEEK_FACTOR 40.0
#define DEEPSEEK_ORIG_LEN 4096.0
#define DEEPSEEK_MAX_LEN 16384.0
#define DEEPSEEK_MSCALE 1.0
// Phi-3-mini-128k: original_max_position_embeddings = 4096, max_position_embeddings = 131072.
#define LONGROPE_ORIG_LEN 4096.0
#define LONGROPE_MAX_LEN 131072.0
// Qwen-7B/14B config.json: seq_length = 2048; the logn table covers i = 1 .. 32767.
#define QWEN_SEQ_LEN 2048.0
#define QWEN_TABLE_LAST_POS 32766
// Llama4TextConfig: attn_scale = 0.1, floor_scale = 8192.
#define LLAMA4_ATTN_SCALE 0.1
#define LLAMA4_FLOOR_SCALE 8192.0
// Ministral 3 rope_parameters: llama_4_scaling_beta = 0.1, original_max_position_embeddings =
// 16384 (also its YaRN factor 16 with mscale = mscale_all_dim = 1).
#define MISTRAL_BETA 0.1
#define MISTRAL_ORIG_LEN 16384.0
// Grok-2 config: attn_temperature_len = 1024 (sglang reads it as xai_temperature_len).
#define GROK2_TEMPERATURE_LEN 1024.0
// Inkling checkpoint config: log_scaling_alpha = 0.1, log_scaling_n_floor = 128000 (the
// InklingTextConfig class default is None, i.e. off).
#define INKLING_ALPHA 0.1
#define INKLING_N_FLOOR 128000.0
// SSMax (Nakanishi, arXiv 2501.19399): the learned s is initialised and reported near 0.43.
#define SSMAX_SLOPE 0.43
// Su's entropy-invariant scale normalises at n = 512.
#define SU_BASE 512.0
// critical / sphere-critical: this project's choice [C]: normalise at L = 4096 (Llama 2's
// pretraining context, the same L as yarn-dynamic) and take d = 64, a typical head dimension.
#define CRITICAL_LEN 4096.0
#define SPHERE_D 64.0

// ---------------------------------------------------------------------------
// The registry.

static const struct ats_policy_info registry[POLICY_COUNT] = {
    [POLICY_YARN] =
        {"yarn", "YaRN RoPE (Qwen2.5/Qwen3 long context, Ministral 3, DeepSeek in transformers)",
         "huggingface/transformers src/transformers/modeling_rope_utils.py "
         "_compute_yarn_parameters (get_mscale, attention_factor precedence)",
         "a^2 on rotary dims; a = --attention-factor, else g(s,mscale)/g(s,mscale_all_dim) "
         "if both non-zero, else g(s); g(s,c) = 1 + 0.1 c ln s for s > 1, else 1; "
         "s = --factor (4), or --max-len/--train-len (32768)",
         ATS_POLICY_SCOPE_ROTARY, ATS_POLICY_STATIC},
    [POLICY_YARN_DYNAMIC] =
        {"yarn-dynamic", "Dynamic YaRN (Llama 2 YaRN fine-tunes, jquesnelle/yarn)",
         "jquesnelle/yarn scaled_rope/LlamaDynamicYaRNScaledRotaryEmbedding.py "
         "(forward: yarn(seq_len / original) once seq_len > max_seq_len_cached)",
         "g(s)^2 on rotary dims, s = n/L once n > M (M = --max-len, default L), "
         "else 1 (else g(M/L)^2 with --finetuned); L = --train-len (4096)",
         ATS_POLICY_SCOPE_ROTARY, ATS_POLICY_LENGTH},
    [POLICY_GPT_OSS] = {"gpt-oss", "gpt-oss-20b / gpt-oss-120b",
                        "openai/gpt-oss gpt_oss/torch/model.py "
                        "RotaryEmbedding._compute_concentration_and_inv_freq",
                        "(1 + 0.1 ln s)^2 on rotary dims (every dim is rotary), s = --factor (32)",
                        ATS_POLICY_SCOPE_ROTARY, ATS_POLICY_STATIC},
    [POLICY_DEEPSEEK] =
        {"deepseek", "DeepSeek-V2 / V3 (MLA)",
         "deepseek-ai/DeepSeek-V3 inference/model.py MLA.__init__ softmax_scale",
         "(1 + 0.1 C ln s)^2 on all dims when M > L, else 1; C = --mscale-all-dim (1), "
         "s = --factor (40), L = --train-len (4096), M = --max-len (16384)",
         ATS_POLICY_SCOPE_ALL, ATS_POLICY_STATIC},
    [POLICY_LONGROPE] =
        {"longrope", "Phi-3 / Phi-3.5 (LongRoPE)",
         "huggingface/transformers src/transformers/modeling_rope_utils.py "
         "_compute_longrope_parameters",
         "a^2 on rotary dims; a = --attention-factor, else sqrt(1 + ln s / ln L) for "
         "s > 1, else 1; L = --train-len (4096), s = --factor or --max-len/L (131072/L)",
         ATS_POLICY_SCOPE_ROTARY, ATS_POLICY_STATIC},
    [POLICY_QWEN_LOGN] =
        {"qwen-logn", "Qwen-7B/14B (logn_attn)",
         "Qwen/Qwen-7B modeling_qwen.py QWenAttention (logn_list, logn_tensor)",
         "ln(p+1)/ln L on the query if p+1 > L, else 1; L = --train-len (2048); table "
         "ends at p = 32766",
         ATS_POLICY_SCOPE_ALL, ATS_POLICY_ROW},
    [POLICY_LLAMA4] = {"llama4", "Llama 4 Scout/Maverick (NoPE layers, attn_temperature_tuning)",
                       "huggingface/transformers src/transformers/models/llama4/modeling_llama4.py "
                       "Llama4TextAttention.forward (attn_scales); meta-llama/llama-models llama4",
                       "1 + A ln(1 + floor((p+1)/F)) on the query; A = --attn-scale (0.1), "
                       "F = --floor-scale (8192)",
                       ATS_POLICY_SCOPE_ALL, ATS_POLICY_ROW},
    [POLICY_MISTRAL] =
        {"mistral", "Ministral 3 / Mistral (llama_4_scaling)",
         "huggingface/transformers src/transformers/models/ministral3/"
         "modeling_ministral3.py _get_llama_4_attn_scale (cache_position)",
         "1 + B ln(1 + floor(p/L0)) on the query (p, not p+1); B = --beta-slope (0.1), "
         "L0 = --train-len (16384)",
         ATS_POLICY_SCOPE_ALL, ATS_POLICY_ROW},
    [POLICY_GROK2] = {"grok2", "Grok-2 (attn_temperature_len)",
                      "sgl-project/sglang python/sglang/srt/layers/attention/triton_ops/"
                      "decode_attention.py and extend_attention.py (xai_temperature_len)",
                      "log2(p)/log2(T) if p > T, else 1, after the 30 tanh(z/30) soft-cap; "
                      "T = --temperature-len (1024)",
                      ATS_POLICY_SCOPE_ALL, ATS_POLICY_ROW},
    [POLICY_INKLING] =
        {"inkling", "Inkling (global attention layers)",
         "huggingface/transformers src/transformers/models/inkling/modeling_inkling.py "
         "InklingAttention.forward (log_scaling_alpha, log_scaling_n_floor)",
         "1 + A ln(max((p+1)/N, 1)) on the query and the relative-position bias; "
         "A = --attn-scale (0.1), N = --floor-scale (128000)",
         ATS_POLICY_SCOPE_ALL, ATS_POLICY_ROW},
    [POLICY_SSMAX] = {"ssmax", "Scalable-Softmax (SSMax)",
                      "Nakanishi, Scalable-Softmax Is Superior for Attention, arXiv 2501.19399",
                      "s ln(p+1) (absolute, replaces the logit scale); s = --slope (0.43)",
                      ATS_POLICY_SCOPE_ALL, ATS_POLICY_ROW},
    [POLICY_LOG_N] = {"log-n", "log-length scaling",
                      "Chiang & Cholak, Overcoming a Theoretical Limitation of Self-Attention, "
                      "ACL 2022",
                      "ln n (absolute)", ATS_POLICY_SCOPE_ALL, ATS_POLICY_LENGTH},
    [POLICY_SU] =
        {"su", "entropy-invariant scaling (Su)",
         "Su Jianlin, entropy invariance and the attention scale (kexue.fm/archives/8823)",
         "ln n / ln 512", ATS_POLICY_SCOPE_ALL, ATS_POLICY_LENGTH},
    [POLICY_SQRT_2_LOG_N] = {"sqrt-2-log-n", "Gaussian-logit (random energy model) argument",
                             "maximum of n standard Gaussian logits ~ sqrt(2 ln n) (REM)",
                             "sqrt(2 ln n) (absolute)", ATS_POLICY_SCOPE_ALL, ATS_POLICY_LENGTH},
    [POLICY_CRITICAL] = {"critical", "critical attention scaling (theory)",
                         "arXiv 2510.05554: beta_n = gamma ln n (THEORY.md 2.3)",
                         "ln n / ln L (1 at n = L); L = --train-len (4096)", ATS_POLICY_SCOPE_ALL,
                         ATS_POLICY_LENGTH},
    [POLICY_SPHERE_CRITICAL] = {"sphere-critical", "critical scaling on the sphere (theory)",
                                "arXiv 2605.08505: beta* ~ n^(2/(d-1)) (THEORY.md 3.2)",
                                "(n/L)^(2/(d-1)); d = --d (64), L = --train-len (4096)",
                                ATS_POLICY_SCOPE_ALL, ATS_POLICY_LENGTH},
};

const char *ats_policy_scope_name(enum ats_policy_scope s) {
    switch (s) {
    case ATS_POLICY_SCOPE_ALL:
        return "all";
    case ATS_POLICY_SCOPE_ROTARY:
        return "rotary";
    case ATS_POLICY_SCOPE_NONROTARY:
        return "nonrotary";
    }
    return "unknown";
}

const char *ats_policy_dependence_name(enum ats_policy_dependence d) {
    switch (d) {
    case ATS_POLICY_STATIC:
        return "static";
    case ATS_POLICY_ROW:
        return "row";
    case ATS_POLICY_LENGTH:
        return "length";
    }
    return "unknown";
}

struct ats_policy_params ats_policy_params_default(void) {
    struct ats_policy_params p = {
        .train_len = NAN,
        .factor = NAN,
        .max_len = NAN,
        .mscale = NAN,
        .mscale_all_dim = NAN,
        .attention_factor = NAN,
        .finetuned = -1,
        .floor_scale = NAN,
        .attn_scale = NAN,
        .beta_slope = NAN,
        .temperature_len = NAN,
        .slope = NAN,
        .d = NAN,
    };
    return p;
}

int64_t ats_policy_count(void) {
    return POLICY_COUNT;
}

const struct ats_policy_info *ats_policy_get(int64_t id) {
    if (id < 0 || id >= POLICY_COUNT)
        return NULL;
    return &registry[id];
}

int64_t ats_policy_find(const char *name) {
    if (!name)
        return -1;
    for (int64_t i = 0; i < POLICY_COUNT; i++)
        if (strcmp(registry[i].name, name) == 0)
            return i;
    return -1;
}

// ---------------------------------------------------------------------------
// Parameter helpers. Each check reports through ATS_ERROR (which returns the status) with the
// policy's name and the CLI option, so the CLI can print the reason as it is.

static int given(double v) {
    return !isnan(v);
}

static double or_default(double v, double def) {
    return given(v) ? v : def;
}

// v must be finite and >= lo.
static int need_at_least(const char *policy, const char *opt, double v, double lo) {
    if (!isfinite(v) || v < lo)
        ATS_ERROR(ATS_STATUS_EDOM, "%s: %s must be >= %g (got %g)", policy, opt, lo, v);
    return ATS_STATUS_OK;
}

// v must be finite and > 0.
static int need_positive(const char *policy, const char *opt, double v) {
    if (!isfinite(v) || !(v > 0))
        ATS_ERROR(ATS_STATUS_EDOM, "%s: %s must be > 0 (got %g)", policy, opt, v);
    return ATS_STATUS_OK;
}

#define TRY(call)                                                                                  \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != ATS_STATUS_OK)                                                                  \
            return rc_;                                                                            \
    } while (0)

// floor(a / f) for a >= 0 and f >= 1. When f is an integer the quotient is taken in integers,
// so a multiple of f is never pushed across an integer by rounding; otherwise in double.
static double floor_quotient(int64_t a, double f) {
    if (f == floor(f) && f <= 9007199254740992.0) // 2^53: f is exactly an int64_t
        return (double)(a / (int64_t)f);
    return floor((double)a / f);
}

// YaRN's get_mscale (transformers _compute_yarn_parameters, jquesnelle/yarn, gpt-oss
// concentration): 1 + 0.1 c ln s for s > 1, exactly 1 for s <= 1.
static double yarn_mscale(double s, double c) {
    return s <= 1 ? 1.0 : 1.0 + 0.1 * c * log(s);
}

// ---------------------------------------------------------------------------
// The policies. Each returns a status and writes m; pos is 0-based, n >= pos + 1.

// transformers _compute_yarn_parameters: attention_factor = rope_scaling["attention_factor"]
// when present (tested with "is None", so any given value wins); otherwise
// get_mscale(factor, mscale) / get_mscale(factor, mscale_all_dim) when both are truthy (a
// missing key or 0 is falsy), else get_mscale(factor). The factor multiplies cos and sin, so the
// rotary part of q.k is multiplied by its square. transformers 5 takes factor =
// max_position_embeddings / original_max_position_embeddings only when "factor" is missing
// (4.5x took that ratio whenever the original length was present); here --factor wins and the
// ratio is used when only --max-len is given.
static int eval_yarn(double *m, const struct ats_policy_params *p) {
    const char *name = "yarn";
    double s;
    if (given(p->factor)) {
        s = p->factor;
    } else if (given(p->max_len)) {
        double l = or_default(p->train_len, YARN_ORIG_LEN);
        TRY(need_at_least(name, "--train-len", l, 1));
        TRY(need_at_least(name, "--max-len", p->max_len, 1));
        s = p->max_len / l;
    } else {
        s = YARN_FACTOR;
    }
    TRY(need_positive(name, "--factor", s));
    if (given(p->mscale))
        TRY(need_at_least(name, "--mscale", p->mscale, 0));
    if (given(p->mscale_all_dim))
        TRY(need_at_least(name, "--mscale-all-dim", p->mscale_all_dim, 0));
    double a;
    if (given(p->attention_factor)) {
        TRY(need_positive(name, "--attention-factor", p->attention_factor));
        a = p->attention_factor;
    } else if (given(p->mscale) && p->mscale != 0 && given(p->mscale_all_dim) &&
               p->mscale_all_dim != 0) {
        a = yarn_mscale(s, p->mscale) / yarn_mscale(s, p->mscale_all_dim);
    } else {
        a = yarn_mscale(s, 1);
    }
    *m = a * a;
    return ATS_STATUS_OK;
}

// jquesnelle/yarn LlamaDynamicYaRNScaledRotaryEmbedding: the cos/sin cache starts at
// max_seq_len_cached = max_position_embeddings with mscale 1 (or, finetuned, with
// yarn(max_position_embeddings / original_max_position_embeddings)); forward(seq_len) with
// seq_len > max_seq_len_cached rebuilds it with yarn(seq_len / original), mscale =
// get_mscale(scale). seq_len is the total length n (past + current), so a sequence grown to n
// sees g(n/L)^2 on its rotary dims once n > M.
static int eval_yarn_dynamic(double *m, const struct ats_policy_params *p, int64_t n) {
    const char *name = "yarn-dynamic";
    double l = or_default(p->train_len, YARN_DYN_ORIG_LEN);
    TRY(need_at_least(name, "--train-len", l, 1));
    double cached = or_default(p->max_len, l);
    TRY(need_at_least(name, "--max-len", cached, 1));
    int finetuned = p->finetuned == -1 ? 0 : p->finetuned; // -1: jquesnelle's default, False
    if (finetuned != 0 && finetuned != 1)
        ATS_ERROR(ATS_STATUS_EDOM, "%s: --finetuned must be 0, 1 or -1 (default) (got %d)", name,
                  p->finetuned);
    double a = 1;
    if ((double)n > cached)
        a = yarn_mscale((double)n / l, 1);
    else if (finetuned)
        a = yarn_mscale(cached / l, 1);
    *m = a * a;
    return ATS_STATUS_OK;
}

// openai/gpt-oss RotaryEmbedding: concentration = 0.1 ln(scaling_factor) + 1 when
// scaling_factor > 1, else 1; cos and sin are both multiplied by it (_compute_cos_sin).
static int eval_gpt_oss(double *m, const struct ats_policy_params *p) {
    double s = or_default(p->factor, GPT_OSS_FACTOR);
    TRY(need_positive("gpt-oss", "--factor", s));
    double a = yarn_mscale(s, 1);
    *m = a * a;
    return ATS_STATUS_OK;
}

// deepseek-ai/DeepSeek-V3 inference/model.py, MLA.__init__:
//     softmax_scale = qk_head_dim ** -0.5
//     if max_seq_len > original_seq_len:
//         mscale = 0.1 * mscale * log(rope_factor) + 1.0; softmax_scale *= mscale ** 2
// A softmax-scale change multiplies every dim of the logit. The official code has no s > 1
// guard (for s < 1 its factor is below 1, unlike transformers' get_mscale); that is kept. Its
// `mscale` argument is the one transformers calls mscale_all_dim (the softmax factor), hence
// --mscale-all-dim here. precompute_freqs_cis builds unit-modulus rotations (torch.polar with
// ones), so the official code applies no cos/sin amplitude: the extra rotary factor
// (g(s, mscale)/g(s, mscale_all_dim))^2 that transformers' DeepSeek port puts into its cos/sin
// cache (THEORY.md 5) is not applied by default. It equals 1 for V3 and V2-Lite (equal
// mscales). Asking for it with --mscale or --attention-factor adds it on the rotary dims with
// transformers' precedence (the explicit attention factor, else g(s, mscale)/g(s,
// mscale_all_dim) when both are non-zero, else g(s)), as in that port; the value is then two
// factors (m_rot, m_pass) and no single multiplier.
static int eval_deepseek(double *m, double *rot, const struct ats_policy_params *p) {
    const char *name = "deepseek";
    double s = or_default(p->factor, DEEPSEEK_FACTOR);
    TRY(need_positive(name, "--factor", s));
    double l = or_default(p->train_len, DEEPSEEK_ORIG_LEN);
    TRY(need_at_least(name, "--train-len", l, 1));
    double max_len = or_default(p->max_len, DEEPSEEK_MAX_LEN);
    TRY(need_at_least(name, "--max-len", max_len, 1));
    double c = or_default(p->mscale_all_dim, DEEPSEEK_MSCALE);
    TRY(need_at_least(name, "--mscale-all-dim", c, 0));
    double g = 1;
    if (max_len > l)
        g = 0.1 * c * log(s) + 1.0;
    *m = g * g;
    *rot = 1;
    if (given(p->attention_factor)) {
        TRY(need_positive(name, "--attention-factor", p->attention_factor));
        *rot = p->attention_factor * p->attention_factor;
    } else if (given(p->mscale)) {
        TRY(need_at_least(name, "--mscale", p->mscale, 0));
        double a = p->mscale != 0 && c != 0 ? yarn_mscale(s, p->mscale) / yarn_mscale(s, c)
                                            : yarn_mscale(s, 1);
        *rot = a * a;
    }
    return ATS_STATUS_OK;
}

// transformers _compute_longrope_parameters: attention_factor = rope_scaling["attention_factor"]
// when present; otherwise 1 for factor <= 1, else sqrt(1 + ln(factor) /
// ln(original_max_position_embeddings)), with factor = max_position_embeddings /
// original_max_position_embeddings when the config carries the original length (Phi-3). It
// scales cos and sin, so the rotary logit gets its square: 1 + ln s / ln L. (transformers lets
// that ratio override a config "factor"; here an explicit --factor wins, as DESIGN.md says.)
static int eval_longrope(double *m, const struct ats_policy_params *p) {
    const char *name = "longrope";
    double l = or_default(p->train_len, LONGROPE_ORIG_LEN);
    TRY(need_at_least(name, "--train-len", l, 2)); // ln L divides
    double s;
    if (given(p->factor)) {
        s = p->factor;
    } else {
        double max_len = or_default(p->max_len, LONGROPE_MAX_LEN);
        TRY(need_at_least(name, "--max-len", max_len, 1));
        s = max_len / l;
    }
    TRY(need_positive(name, "--factor", s));
    if (given(p->attention_factor)) {
        TRY(need_positive(name, "--attention-factor", p->attention_factor));
        *m = p->attention_factor * p->attention_factor;
        return ATS_STATUS_OK;
    }
    *m = s <= 1 ? 1.0 : 1.0 + log(s) / log(l);
    return ATS_STATUS_OK;
}

// Qwen-7B modeling_qwen.py: logn_list = [log(i, seq_length) if i > seq_length else 1 for i in
// range(1, 32768)]; the query at absolute position p (seq_start = key_len - query_len) is
// multiplied by logn_tensor[p], i.e. by the entry for i = p + 1 (query only, all dims). The
// table has 32767 entries (p <= 32766); past it the reference code fails on the slice, so the
// formula is extended and the value flagged.
static int eval_qwen_logn(double *m, int *extrapolated, const struct ats_policy_params *p,
                          int64_t pos) {
    double l = or_default(p->train_len, QWEN_SEQ_LEN);
    TRY(need_at_least("qwen-logn", "--train-len", l, 2)); // ln L divides
    double i = (double)pos + 1;
    *m = i > l ? log(i) / log(l) : 1.0;
    *extrapolated = pos > QWEN_TABLE_LAST_POS;
    return ATS_STATUS_OK;
}

// transformers modeling_llama4.py (and llama-models llama4/model.py), NoPE layers:
//     attn_scales = log(floor((cache_position + 1) / floor_scale) + 1) * attn_scale + 1
// multiplies the query (all dims), with the 1-based count p + 1.
static int eval_llama4(double *m, const struct ats_policy_params *p, int64_t pos) {
    const char *name = "llama4";
    double f = or_default(p->floor_scale, LLAMA4_FLOOR_SCALE);
    TRY(need_at_least(name, "--floor-scale", f, 1));
    double a = or_default(p->attn_scale, LLAMA4_ATTN_SCALE);
    TRY(need_at_least(name, "--attn-scale", a, 0));
    *m = 1.0 + a * log1p(floor_quotient(pos + 1, f));
    return ATS_STATUS_OK;
}

// transformers modeling_ministral3.py: _get_llama_4_attn_scale(cache_position, beta,
// original_max_position_embeddings) = 1 + beta * log(1 + floor(positions / L0)) on the query;
// cache_position is 0-based, so p itself (not p + 1): the first change is at p = L0.
static int eval_mistral(double *m, const struct ats_policy_params *p, int64_t pos) {
    const char *name = "mistral";
    double l0 = or_default(p->train_len, MISTRAL_ORIG_LEN);
    TRY(need_at_least(name, "--train-len", l0, 1));
    double b = or_default(p->beta_slope, MISTRAL_BETA);
    TRY(need_at_least(name, "--beta-slope", b, 0));
    *m = 1.0 + b * log1p(floor_quotient(pos, l0));
    return ATS_STATUS_OK;
}

// sglang triton decode_attention.py / extend_attention.py: with xai_temperature_len T > 0,
// the 0-based query index q (decode: seq_len - 1; extend: prefix_len + row) gets
// reg = log2(q) / log2(T) where q > T, else 1, and qk *= reg after the logit soft-cap.
static int eval_grok2(double *m, const struct ats_policy_params *p, int64_t pos) {
    double t = or_default(p->temperature_len, GROK2_TEMPERATURE_LEN);
    TRY(need_at_least("grok2", "--temperature-len", t, 2)); // log2 T divides
    double q = (double)pos;
    *m = q > t ? log(q) / log(t) : 1.0;
    return ATS_STATUS_OK;
}

// transformers modeling_inkling.py, global layers with log_scaling_n_floor set:
//     tau = 1 + log_scaling_alpha * log(clamp((q_positions + 1) / n_floor, min=1))
// multiplies the query and the relative-position bias. For (p+1)/N > 1 the log is taken as
// log1p((p + 1 - N)/N), whose argument is exact for integer p and N.
static int eval_inkling(double *m, const struct ats_policy_params *p, int64_t pos) {
    const char *name = "inkling";
    double nf = or_default(p->floor_scale, INKLING_N_FLOOR);
    TRY(need_at_least(name, "--floor-scale", nf, 1));
    double a = or_default(p->attn_scale, INKLING_ALPHA);
    TRY(need_at_least(name, "--attn-scale", a, 0));
    double i = (double)pos + 1;
    *m = i > nf ? 1.0 + a * log1p((i - nf) / nf) : 1.0;
    return ATS_STATUS_OK;
}

// SSMax (arXiv 2501.19399): softmax(s log(n) z) with n the number of keys the row sees (p + 1
// under a causal mask); the multiplier is absolute (it replaces the logit scale).
static int eval_ssmax(double *m, const struct ats_policy_params *p, int64_t pos) {
    double s = or_default(p->slope, SSMAX_SLOPE);
    TRY(need_at_least("ssmax", "--slope", s, 0));
    *m = s * log((double)pos + 1);
    return ATS_STATUS_OK;
}

// critical: beta_n = gamma log n (arXiv 2510.05554, THEORY.md 2.3), normalised to 1 at n = L.
static int eval_critical(double *m, const struct ats_policy_params *p, int64_t n) {
    double l = or_default(p->train_len, CRITICAL_LEN);
    TRY(need_at_least("critical", "--train-len", l, 2)); // ln L divides
    *m = log((double)n) / log(l);
    return ATS_STATUS_OK;
}

// sphere-critical: beta* ~ n^(2/(d-1)) (arXiv 2605.08505, THEORY.md 3.2), 1 at n = L.
static int eval_sphere_critical(double *m, const struct ats_policy_params *p, int64_t n) {
    const char *name = "sphere-critical";
    double l = or_default(p->train_len, CRITICAL_LEN);
    TRY(need_at_least(name, "--train-len", l, 1));
    double d = or_default(p->d, SPHERE_D);
    if (!isfinite(d) || d < 2 || d != floor(d))
        ATS_ERROR(ATS_STATUS_EDOM, "%s: --d must be an integer >= 2 (got %g)", name, d);
    *m = pow((double)n / l, 2.0 / (d - 1));
    return ATS_STATUS_OK;
}

// ---------------------------------------------------------------------------
// Evaluation and composition.

int ats_policy_eval(struct ats_policy_value *out, int64_t id, const struct ats_policy_params *p,
                    int64_t pos, int64_t n) {
    ATS_ASSERT(out && p);
    if (id < 0 || id >= POLICY_COUNT)
        ATS_ERROR(ATS_STATUS_EINVAL, "unknown policy id %lld (valid: 0..%d)", (long long)id,
                  POLICY_COUNT - 1);
    const struct ats_policy_info *info = &registry[id];
    if (pos < 0)
        ATS_ERROR(ATS_STATUS_EDOM, "%s: --pos must be >= 0 (got %lld)", info->name, (long long)pos);
    if (n < 1 || pos >= n)
        ATS_ERROR(ATS_STATUS_EDOM, "%s: --n must be >= pos + 1 (got n = %lld, pos = %lld)",
                  info->name, (long long)n, (long long)pos);

    double m = 1, deepseek_rot = 1;
    int extrapolated = 0;
    switch ((enum policy_id)id) {
    case POLICY_YARN:
        TRY(eval_yarn(&m, p));
        break;
    case POLICY_YARN_DYNAMIC:
        TRY(eval_yarn_dynamic(&m, p, n));
        break;
    case POLICY_GPT_OSS:
        TRY(eval_gpt_oss(&m, p));
        break;
    case POLICY_DEEPSEEK:
        TRY(eval_deepseek(&m, &deepseek_rot, p));
        break;
    case POLICY_LONGROPE:
        TRY(eval_longrope(&m, p));
        break;
    case POLICY_QWEN_LOGN:
        TRY(eval_qwen_logn(&m, &extrapolated, p, pos));
        break;
    case POLICY_LLAMA4:
        TRY(eval_llama4(&m, p, pos));
        break;
    case POLICY_MISTRAL:
        TRY(eval_mistral(&m, p, pos));
        break;
    case POLICY_GROK2:
        TRY(eval_grok2(&m, p, pos));
        break;
    case POLICY_INKLING:
        TRY(eval_inkling(&m, p, pos));
        break;
    case POLICY_SSMAX:
        TRY(eval_ssmax(&m, p, pos));
        break;
    case POLICY_LOG_N: // Chiang & Cholak: logits times log n
        m = log((double)n);
        break;
    case POLICY_SU: // Su: log_512 n, 1 at n = 512
        m = log((double)n) / log(SU_BASE);
        break;
    case POLICY_SQRT_2_LOG_N: // the largest of n standard Gaussians is about sqrt(2 log n)
        m = sqrt(2 * log((double)n));
        break;
    case POLICY_CRITICAL:
        TRY(eval_critical(&m, p, n));
        break;
    case POLICY_SPHERE_CRITICAL:
        TRY(eval_sphere_critical(&m, p, n));
        break;
    case POLICY_COUNT:
        break;
    }

    out->multiplier = m;
    out->scope = info->scope;
    out->dependence = info->dependence;
    out->extrapolated = extrapolated;
    out->m_rot = info->scope == ATS_POLICY_SCOPE_NONROTARY ? 1.0 : m;
    out->m_pass = info->scope == ATS_POLICY_SCOPE_ROTARY ? 1.0 : m;
    if (deepseek_rot != 1) { // the rotary amplitude asked for on top of the softmax scale
        struct ats_policy_value r = {deepseek_rot, deepseek_rot, 1, ATS_POLICY_SCOPE_ROTARY,
                                     ATS_POLICY_STATIC, 0};
        ats_policy_combine(out, &r);
    }
    return ATS_STATUS_OK;
}

struct ats_policy_value ats_policy_identity(void) {
    struct ats_policy_value v = {.multiplier = 1,
                                 .m_rot = 1,
                                 .m_pass = 1,
                                 .scope = ATS_POLICY_SCOPE_ALL,
                                 .dependence = ATS_POLICY_STATIC,
                                 .extrapolated = 0};
    return v;
}

// m_rot and m_pass multiply; the scope and the scalar multiplier are then read off the pair:
// equal factors act on all dims, a factor of 1 on one side leaves the other side's scope, and
// two different factors other than 1 are no single scalar (multiplier NAN: use m_rot and
// m_pass). The dependence is the non-static one (row when a row and a length policy meet: the
// value then depends on the position and, through the length policy, on n); extrapolated is
// sticky.
void ats_policy_combine(struct ats_policy_value *acc, const struct ats_policy_value *v) {
    ATS_ASSERT(acc && v);
    acc->m_rot *= v->m_rot;
    acc->m_pass *= v->m_pass;
    acc->extrapolated = acc->extrapolated || v->extrapolated;
    if (acc->dependence == ATS_POLICY_STATIC)
        acc->dependence = v->dependence;
    else if (v->dependence != ATS_POLICY_STATIC && v->dependence != acc->dependence)
        acc->dependence = ATS_POLICY_ROW;
    if (acc->m_rot == acc->m_pass) {
        acc->scope = ATS_POLICY_SCOPE_ALL;
        acc->multiplier = acc->m_rot;
    } else if (acc->m_pass == 1) {
        acc->scope = ATS_POLICY_SCOPE_ROTARY;
        acc->multiplier = acc->m_rot;
    } else if (acc->m_rot == 1) {
        acc->scope = ATS_POLICY_SCOPE_NONROTARY;
        acc->multiplier = acc->m_pass;
    } else {
        acc->scope = ATS_POLICY_SCOPE_ALL;
        acc->multiplier = NAN;
    }
}
