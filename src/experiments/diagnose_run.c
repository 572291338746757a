/*
 * diagnose_run.c: the `diagnose` experiment: the gap-counting diagnostic (THEORY.md section 4)
 * on rows of attention logits (a .npy or safetensors file, q and k files, or arrays in memory,
 * one input or one per layer), read a block of rows at a time.
 *
 * Every leading axis of the input (beyond (rows, n)) is a head. For each layer and head, in
 * order: one "row" record per selected row and (beta, window) combination, then a "summary"
 * record with the laws of beta_hat_k10 over n (4.4) and their extrapolation to --target-len
 * (4.6), then with a policy the "policy" records ranking the policies by how well they keep
 * rows critical (4.5). A mask (or logits that carry one) removes keys from rows; each row's n
 * counts the keys it sees.
 *
 * Memory: one block of rows (about 32 MB of logits), one key head of q/k input, one mask row
 * and a few doubles per row of a head for the fits: never a head's n x n logits of q/k input.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "experiments/diagnose_plot.h"
#include "experiments/run.h"
#include "io/array.h"

// The CSV header: every key of every record kind, in this order; "layer" and "head" come
// after "record" when the input has them, and the keys of the last lists only when asked for.
static const char *const columns[] = {
    "record",      "row",          "n",           "causal",        "beta",          "window",
    "multiplier",  "beta_applied", "beta_hat",    "beta_hat_k10",  "beta_half",
    "entropy",     "w1",           "ratio",       "regime",        "rows",
    "n_min",       "n_max",        "buckets",     "log_slope",     "log_intercept",
    "log_r2",      "log_resid_sd", "log_rmse",    "polylog_xi",    "polylog_c",
    "polylog_r2",  "polylog_resid_sd", "polylog_rmse", "power_e",  "power_c",
    "power_alpha", "power_r2",     "power_resid_sd", "power_rmse", "best",
    "fit_error",   "best_policy",  "policy",      "scope",         "slope",
    "ratio_at_max", "rank"};
static const char *const head_columns[] = {"ratio_median", "share_subcritical", "share_critical",
                                           "share_supercritical", "share_undetermined"};
static const char *const target_columns[] = {
    "target_len", "beta_hat_target_log", "beta_hat_target_polylog", "beta_hat_target_power",
    "beta_hat_target_lo", "beta_hat_target_hi", "recommended_policy", "recommended_factor",
    "ratio_at_target", "factor_to_critical", "robust"};
#define COUNT(a) ((int64_t)(sizeof(a) / sizeof((a)[0])))

// The in-memory arrays (scores_array, q_array, k_array, mask_array) and layers have no entry:
// front-ends that hold arrays (Python) set those fields directly, and each counts as the
// input of the file option of the same name.
#define S struct ats_diagnose_spec
static const struct ats_option options[] = {
    {"scores", ATS_OPTION_TEXT, OPT_OFF(S, scores), DOM_NONE, NULL, "FILE.npy",
     "logits, shape (..., rows, n): every leading index is a head\n",
     "Input (float16, float32 or float64, C order)"},
    {"q", ATS_OPTION_TEXT, OPT_OFF(S, q), DOM_NONE, NULL, "Q.npy",
     "queries (..., rows, d), with --k: logits q.k/sqrt(d) (see --scale)\n", NULL},
    {"k", ATS_OPTION_TEXT, OPT_OFF(S, k), DOM_NONE, NULL, "K.npy",
     "keys (..., n, d), with --q; fewer key heads than query heads is\n"
     "grouped-query attention: query head h uses key head h / (heads / kv_heads)\n",
     NULL},
    {"safetensors", ATS_OPTION_TEXT, OPT_OFF(S, safetensors), DOM_NONE, NULL, "FILE",
     "logits from the tensor --tensor names (F16, BF16, F32, F64)\n", NULL},
    {"tensor", ATS_OPTION_TEXT, OPT_OFF(S, tensor), DOM_NONE, NULL, "NAME",
     "the tensor of --safetensors\n", NULL},
    {"scale", ATS_OPTION_NUMBER, OPT_OFF(S, scale), DOM_POS, NULL, "S",
     "logits = S q.k for --q/--k (default 1/sqrt(d))\n", NULL},
    {"mask", ATS_OPTION_TEXT, OPT_OFF(S, mask), DOM_NONE, NULL, "FILE.npy",
     "keys each row sees, broadcastable to (..., rows, n): bool (false: not\n"
     "seen) or additive float (-inf, <= -1e30 or <= half the dtype's lowest:\n"
     "not seen; other values are added to the logits)\n",
     NULL},
    {"masked-logits", ATS_OPTION_FLAG, OPT_OFF(S, masked_logits), DOM_NONE, NULL, NULL,
     "logits at those mask values are keys not seen (logits saved after the\n"
     "model's additive mask)\n",
     NULL},
    {"causal", ATS_OPTION_FLAG, OPT_OFF(S, causal), DOM_NONE, NULL, NULL,
     "row i sees columns 0..i only (its n is i + 1)\n", NULL},
    {"rows", ATS_OPTION_VALUES, OPT_OFF(S, rows), {0, (double)ATS_INT_EXACT_MAX, 0, 0, 1}, NULL,
     "SPEC", "only these 0-based rows of every head (a list, lo:hi:k or lo:hi:k:log;\n"
     "default all)\n",
     NULL},
    {"beta", ATS_OPTION_VALUES, OPT_OFF(S, beta), DOM_NONNEG, NULL, "B",
     "inverse temperature applied on top of the logits as given (default 1)\n", "Options"},
    {"window", ATS_OPTION_VALUES, OPT_OFF(S, window), {1, HUGE_VAL, 1, 0, 0}, NULL, "W",
     "regime window: subcritical below beta/beta_hat_k10 = 1/W, supercritical\n"
     "above W (default 2, > 1)\n",
     NULL},
    {"policy", ATS_OPTION_TEXT, OPT_OFF(S, policy), DOM_NONE, NULL, "NAME",
     "multiply row i's beta by the policy at position i; all: rank every\n"
     "policy in the summary instead (see attnscale policies --list)\n",
     NULL},
    {"target-len", ATS_OPTION_NUMBER, OPT_OFF(S, target_len),
     {2, (double)ATS_INT_EXACT_MAX, 0, 0, 1}, NULL, "N",
     "extrapolate the laws to length N and say which policy keeps row N\n"
     "critical, by what factor (THEORY.md 4.6; with --policy)\n",
     NULL},
    {"plot", ATS_OPTION_TEXT, OPT_OFF(S, plot), DOM_NONE, NULL, "FILE",
     "draw (png, svg or pdf; its table as CSV beside it): one head: beta_hat_k10\n"
     "against n with the laws; several: the heads' median beta/beta_hat_k10\n",
     NULL},
    OPTIONS_POLICY_PARAMS(S),
    OPTIONS_SEED_THREADS(S),
};
#undef S

static void spec_default(void *spec) {
    command_spec_absent(&command_diagnose, spec);
    ((struct ats_diagnose_spec *)spec)->params = ats_policy_params_default();
}

// ----------------------------------------------------------------------------
// Ranking (THEORY.md 4.5) and extrapolation (4.6)

struct rank_row {
    struct ats_policy_rank r;
    double beta;
    int64_t bi; // the index of beta in --beta's list
    double at_target, factor; // 4.6 under the best law (NAN without --target-len)
    int robust;
};

// |slope| to 9 significant digits: slopes that agree to rounding (log n, critical, su and
// ssmax are all proportional to log n) rank as equals.
static double slope_key(const struct rank_row *r) {
    double a = fabs(r->r.slope);
    if (a == 0 || !isfinite(a))
        return a;
    double scale = pow(10, 8 - floor(log10(a)));
    return nearbyint(a * scale) / scale;
}

// By beta in --beta's order, then rounded |slope|, then registry order: a total order, so
// the ranking does not depend on qsort's handling of equal keys.
static int cmp_rank(const void *x, const void *y) {
    const struct rank_row *a = x, *b = y;
    if (a->bi != b->bi)
        return (a->bi > b->bi) - (a->bi < b->bi);
    double ka = slope_key(a), kb = slope_key(b);
    if (ka != kb)
        return (ka > kb) - (ka < kb);
    return (a->r.id > b->r.id) - (a->r.id < b->r.id);
}

// ----------------------------------------------------------------------------
// Inputs

enum { MAX_NDIM = 64 };

// One layer's input: logits (scores) or q and k, with its mask, seen as heads x (rows, n).
struct input {
    const char *name; // NULL: the single input of the CLI (records carry no "layer")
    struct ats_array *own_scores, *own_q, *own_k, *own_mask; // opened here
    const struct ats_array *scores, *q, *k, *mask;
    const char *kpath; // --k's file, for messages (NULL in memory)
    double scale;
    int causal;        // row p sees keys 0..p only
    int masked;        // logits at the mask thresholds are keys not seen
    double logit_thr;  // a logit <= this is a key not seen (masked)
    double mask_thr;   // a float mask value <= this: not seen
    int64_t heads, kv_heads, rows, n, d;
    int ndim;                  // of the logits (..., rows, n); 2 for a 1-D input
    int64_t shape[MAX_NDIM];   // the logits' shape
    int64_t mstride[MAX_NDIM]; // mask row index per index of axes 0..ndim-2 (0: broadcast)
    int64_t mask_cols;         // 1 (broadcast over keys) or n
};

// The threshold below which a float value marks a key not seen: -1e30, or half the lowest
// value of a float16 (-32752) where that is higher (DESIGN.md: diagnose --mask).
static double mask_threshold(enum ats_dtype t) { return t == ATS_DTYPE_F16 ? -32752.0 : -1e30; }

static void input_close(struct input *in) {
    ats_array_close(in->own_scores);
    ats_array_close(in->own_q);
    ats_array_close(in->own_k);
    ats_array_close(in->own_mask);
}

static int open_npy(struct ats_array **a, const char *opt, const char *path) {
    int rc = ats_npy_open(a, path);
    if (rc != ATS_STATUS_OK)
        ATS_ERROR(rc, "%s: %s", opt, ats_last_error());
    return ATS_STATUS_OK;
}

// "layer NAME: " before a message about a layer's input (nothing for the CLI's one input).
static const char *layer_prefix(char *buf, size_t size, const struct input *in) {
    if (in->name)
        snprintf(buf, size, "layer %s: ", in->name);
    else
        buf[0] = '\0';
    return buf;
}

// Heads and rows of an array (..., rows, cols): the product of the leading axes and the
// second-to-last axis (a 1-D array: one head, one row).
static void heads_rows(const struct ats_array *a, int64_t *heads, int64_t *rows) {
    int nd = ats_array_ndim(a);
    *heads = 1;
    for (int i = 0; i + 2 < nd; i++)
        *heads *= ats_array_dim(a, i);
    *rows = nd >= 2 ? ats_array_dim(a, nd - 2) : 1;
}

static int check_float(const struct ats_array *a, const char *what, const char *pre) {
    if (ats_array_dtype(a) == ATS_DTYPE_BOOL)
        ATS_ERROR(ATS_STATUS_EINVAL, "%s%s: dtype bool is not logits (float16, float32 or "
                                     "float64; a bool array is a --mask)",
                  pre, what);
    return ATS_STATUS_OK;
}

// The shape, heads and sizes of in from its arrays, and the mask's broadcast against them.
static int input_shape(struct input *in) {
    char pre[300];
    layer_prefix(pre, sizeof pre, in);
    int rc;
    if (in->scores) {
        if ((rc = check_float(in->scores, "--scores", pre)) != ATS_STATUS_OK)
            return rc;
        heads_rows(in->scores, &in->heads, &in->rows);
        in->kv_heads = in->heads;
        in->n = ats_array_cols(in->scores);
        int nd = ats_array_ndim(in->scores);
        in->ndim = nd < 2 ? 2 : nd;
        for (int i = 0; i < in->ndim; i++)
            in->shape[i] = nd < 2 ? (i == 0 ? 1 : in->n) : ats_array_dim(in->scores, i);
    } else {
        if ((rc = check_float(in->q, "--q", pre)) != ATS_STATUS_OK ||
            (rc = check_float(in->k, "--k", pre)) != ATS_STATUS_OK)
            return rc;
        int64_t krows;
        heads_rows(in->q, &in->heads, &in->rows);
        heads_rows(in->k, &in->kv_heads, &krows);
        in->d = ats_array_cols(in->q);
        in->n = krows;
        int nq = ats_array_ndim(in->q), nk = ats_array_ndim(in->k);
        if (nk < 2) {
            char file[300] = "";
            if (in->kpath)
                snprintf(file, sizeof file, " '%.200s'", in->kpath);
            ATS_ERROR(ATS_STATUS_EINVAL, "%s--k%s: keys must have shape (..., n, d), not %d axes",
                      pre, file, nk);
        }
        if (ats_array_cols(in->k) != in->d)
            ATS_ERROR(ATS_STATUS_EINVAL, "%s--q has d = %lld but --k has d = %lld", pre,
                      (long long)in->d, (long long)ats_array_cols(in->k));
        if (in->kv_heads < 1 || in->heads % in->kv_heads != 0)
            ATS_ERROR(ATS_STATUS_EINVAL,
                      "%s--q has %lld heads and --k %lld: the key heads must divide the query "
                      "heads (grouped-query attention)",
                      pre, (long long)in->heads, (long long)in->kv_heads);
        // Query head h uses key head h / (heads / kv_heads) in C order: right for one key head,
        // or when the leading axes agree but for the last (the heads, which divide).
        int same = nq == nk;
        for (int i = 0; same && i + 3 < nq; i++)
            same = ats_array_dim(in->q, i) == ats_array_dim(in->k, i);
        if (in->kv_heads > 1 && !same) {
            char qs[128], ks[128];
            int64_t qd[MAX_NDIM], kd[MAX_NDIM];
            for (int i = 0; i < nq; i++)
                qd[i] = ats_array_dim(in->q, i);
            for (int i = 0; i < nk; i++)
                kd[i] = ats_array_dim(in->k, i);
            ats_shape_format(qs, sizeof qs, qd, nq);
            ats_shape_format(ks, sizeof ks, kd, nk);
            ATS_ERROR(ATS_STATUS_EINVAL,
                      "%s--q %s and --k %s: the leading axes must agree but for the last (the "
                      "heads: query head h uses key head h / (heads / kv_heads))",
                      pre, qs, ks);
        }
        in->ndim = nq < 2 ? 2 : nq;
        for (int i = 0; i < in->ndim; i++)
            in->shape[i] = nq < 2 ? 1 : ats_array_dim(in->q, i);
        in->shape[in->ndim - 1] = in->n;
        if (in->d < 1 && in->heads * in->rows > 0 && in->n > 0)
            ATS_ERROR(ATS_STATUS_EINVAL, "%s--q and --k have d = 0: no logits to form", pre);
    }
    if (in->heads * in->rows < 1 || in->n < 1)
        ATS_ERROR(ATS_STATUS_EINVAL, "%sthe input has no logits (%lld rows of %lld)", pre,
                  (long long)(in->heads * in->rows), (long long)in->n);
    if (!in->mask)
        return ATS_STATUS_OK;

    // The mask, right-aligned against the logits' shape (NumPy's broadcasting).
    int md = ats_array_ndim(in->mask);
    char ms[128], ls[128];
    int64_t mshape[MAX_NDIM];
    for (int i = 0; i < md; i++)
        mshape[i] = ats_array_dim(in->mask, i);
    int ok = md <= in->ndim;
    for (int i = 0; ok && i < md; i++) {
        int64_t m = mshape[md - 1 - i], l = in->shape[in->ndim - 1 - i];
        ok = m == 1 || m == l;
    }
    if (!ok) {
        ats_shape_format(ms, sizeof ms, mshape, md);
        ats_shape_format(ls, sizeof ls, in->shape, in->ndim);
        ATS_ERROR(ATS_STATUS_EINVAL, "%s--mask of shape %s does not broadcast to the logits' "
                                     "shape %s",
                  pre, ms, ls);
    }
    // Row index of the mask seen as 2-D for an index of each axis but the last.
    int64_t stride = 1;
    for (int i = in->ndim - 2; i >= 0; i--) {
        int mi = i - (in->ndim - md);
        int64_t m = mi >= 0 ? mshape[mi] : 1;
        in->mstride[i] = m == 1 ? 0 : stride;
        stride *= m;
    }
    in->mask_cols = md >= 1 ? mshape[md - 1] : 1;
    if (ats_array_dtype(in->mask) != ATS_DTYPE_BOOL)
        in->mask_thr = mask_threshold(ats_array_dtype(in->mask));
    return ATS_STATUS_OK;
}

// The CLI's (or Python's unnamed) input of sp into in: usage errors first (ATS_STATUS_EARG),
// then the files.
static int open_input(struct input *in, const struct ats_diagnose_spec *sp) {
    int nq = (sp->q != NULL) + (sp->q_array != NULL), nk = (sp->k != NULL) + (sp->k_array != NULL);
    int nscores = (sp->scores != NULL) + (sp->scores_array != NULL);
    if ((nq > 0) != (nk > 0))
        ATS_ERROR(ATS_STATUS_EARG, "--q and --k go together");
    if ((sp->safetensors != NULL) != (sp->tensor != NULL))
        ATS_ERROR(ATS_STATUS_EARG, "--safetensors and --tensor go together");
    if (nscores + (nq > nk ? nq : nk) + (sp->safetensors != NULL) != 1)
        ATS_ERROR(ATS_STATUS_EARG,
                  "give exactly one input: --scores, --q with --k, or --safetensors");
    if (sp->mask && sp->mask_array)
        ATS_ERROR(ATS_STATUS_EARG, "give one --mask");
    if (nq && sp->masked_logits)
        ATS_ERROR(ATS_STATUS_EARG, "--masked-logits applies to logits given as such, not to "
                                   "--q/--k (use --mask)");
    if (!nq && !isnan(sp->scale))
        ATS_ERROR(ATS_STATUS_EARG, "--scale applies to --q/--k only (logits are taken as given; "
                                   "see --beta)");
    in->scale = sp->scale;
    in->causal = sp->causal != 0;
    in->masked = sp->masked_logits != 0;
    int rc;
    if (sp->scores) {
        if ((rc = open_npy(&in->own_scores, "--scores", sp->scores)) != ATS_STATUS_OK)
            return rc;
        in->scores = in->own_scores;
    } else if (sp->scores_array) {
        in->scores = sp->scores_array;
    } else if (sp->safetensors) {
        rc = ats_safetensors_open(&in->own_scores, sp->safetensors, sp->tensor);
        if (rc != ATS_STATUS_OK)
            ATS_ERROR(rc, "--safetensors: %s", ats_last_error());
        in->scores = in->own_scores;
    } else {
        if (sp->q && (rc = open_npy(&in->own_q, "--q", sp->q)) != ATS_STATUS_OK)
            return rc;
        if (sp->k && (rc = open_npy(&in->own_k, "--k", sp->k)) != ATS_STATUS_OK)
            return rc;
        in->q = sp->q ? in->own_q : sp->q_array;
        in->k = sp->k ? in->own_k : sp->k_array;
        in->kpath = sp->k;
    }
    if (sp->mask) {
        rc = ats_npy_open_mask(&in->own_mask, sp->mask);
        if (rc != ATS_STATUS_OK)
            ATS_ERROR(rc, "--mask: %s", ats_last_error());
        in->mask = in->own_mask;
    } else {
        in->mask = sp->mask_array;
    }
    return input_shape(in);
}

// Layer i of sp->layers into in.
static int layer_input(struct input *in, const struct ats_diagnose_spec *sp, int64_t i) {
    const struct ats_diagnose_layer *l = &sp->layers[i];
    if (!l->name || !*l->name)
        ATS_ERROR(ATS_STATUS_EARG, "layers: layer %lld has no name", (long long)i);
    in->name = l->name;
    char pre[300];
    layer_prefix(pre, sizeof pre, in);
    if ((l->scores != NULL) == (l->q != NULL || l->k != NULL) || (l->q != NULL) != (l->k != NULL))
        ATS_ERROR(ATS_STATUS_EARG, "%sgive either scores or q with k", pre);
    if (l->q && l->masked_logits)
        ATS_ERROR(ATS_STATUS_EARG, "%smasked_logits applies to scores, not to q/k", pre);
    if (!l->q && !isnan(l->scale))
        ATS_ERROR(ATS_STATUS_EARG, "%sscale applies to q/k only", pre);
    if (!isnan(l->scale) && !(l->scale > 0 && isfinite(l->scale)))
        ATS_ERROR(ATS_STATUS_EARG, "%sscale = %g must be finite and > 0", pre, l->scale);
    in->scores = l->scores;
    in->q = l->q;
    in->k = l->k;
    in->mask = l->mask;
    in->scale = l->scale;
    in->causal = sp->causal || l->causal;
    in->masked = l->masked_logits != 0;
    return input_shape(in);
}

// ----------------------------------------------------------------------------
// State

enum { PHASE_ROWS, PHASE_SUMMARY, PHASE_POLICIES, PHASE_DONE };

struct state {
    struct input *in;
    int64_t nin, li, h; // inputs (layers); the layer and head in hand
    int have_layers, have_heads;
    int threads;

    struct ats_values beta, window, sel; // sel: --rows (count 0: every row)
    int64_t ncombo;
    double *cb, *cw; // (ncombo,) beta and window of each combination, window fastest
    int64_t policy_id; // one policy applied to the rows, or -1
    int rank_all, have_policy;
    struct ats_policy_params params;
    double target_len; // NAN: none

    // Sizes over every input: buffers are allocated once for the largest.
    int64_t nmax, dmax, rmax;
    // The block of rows in hand: selected rows [j0, j0 + nr) of the head, record (i, k) next.
    int64_t block, j0, nr, i, k, nsel;
    double *s, *qbuf, *kdata, *mrow, *ws, *mult;
    int64_t kv_loaded; // the key head in kdata, or -1
    int64_t *lens, *rowid;
    struct ats_row_stats *st;
    double *all_n, *all_bh, *all_ratio; // (rmax,) the head's rows, for the fits
    int *all_regime;

    int phase;
    struct ats_law_fits fits;
    int fit_rc;
    char fit_error[RUN_NOTE_LEN];
    double *bn, *bb; // bucket lengths and medians
    double ratio_median;
    double shares[4]; // of the head's rows: subcritical, critical, supercritical, undetermined
    struct rank_row *ranks;
    int64_t nranks, next_rank, rank, pos, recommended;
    double pred[3], band[2]; // 4.6: the three laws at the target; the best law's band

    const char *plot;
    double *heads_ratio; // (nin, hmax) for the heads figure
    int64_t hmax;
    const char **layer_names;

    const char **cols; // the run's CSV columns
};

static void state_free(void *p) {
    struct state *s = p;
    if (!s)
        return;
    for (int64_t i = 0; i < s->nin; i++)
        input_close(&s->in[i]);
    ats_free(s->in);
    ats_values_clear(&s->beta);
    ats_values_clear(&s->window);
    ats_values_clear(&s->sel);
    ats_free(s->cb);
    ats_free(s->cw);
    ats_free(s->s);
    ats_free(s->qbuf);
    ats_free(s->kdata);
    ats_free(s->mrow);
    ats_free(s->ws);
    ats_free(s->mult);
    ats_free(s->lens);
    ats_free(s->rowid);
    ats_free(s->st);
    ats_free(s->all_n);
    ats_free(s->all_bh);
    ats_free(s->all_ratio);
    ats_free(s->all_regime);
    ats_free(s->bn);
    ats_free(s->bb);
    ats_free(s->ranks);
    ats_free(s->heads_ratio);
    ats_free(s->layer_names);
    ats_free(s->cols);
    ats_free(s);
}

// Buffers for a block of rows (about 32 MB of logits), one key head, one mask row and the
// fits of one head.
static int alloc_block(struct state *s) {
    int64_t block = 4194304 / s->nmax;
    int64_t rows = s->sel.count ? s->sel.count : s->rmax;
    block = block < 1 ? 1 : block > rows ? rows : block;
    s->block = block;
    s->s = ats_malloc_array((size_t)block, (size_t)s->nmax * sizeof *s->s);
    if (s->dmax > 0) {
        s->qbuf = ats_malloc_array((size_t)block, (size_t)s->dmax * sizeof *s->qbuf);
        s->kdata = ats_malloc_array((size_t)s->nmax, (size_t)s->dmax * sizeof *s->kdata);
    }
    s->mrow = ats_malloc_array((size_t)s->nmax, sizeof *s->mrow);
    s->ws = ats_malloc_array((size_t)ats_row_block_workspace(s->nmax, s->threads), sizeof *s->ws);
    s->mult = ats_malloc_array((size_t)block, sizeof *s->mult);
    s->lens = ats_malloc_array((size_t)block, sizeof *s->lens);
    s->rowid = ats_malloc_array((size_t)block, sizeof *s->rowid);
    s->st = ats_malloc_array((size_t)block, (size_t)s->ncombo * sizeof *s->st);
    s->all_n = ats_malloc_array((size_t)rows, sizeof *s->all_n);
    s->all_bh = ats_malloc_array((size_t)rows, sizeof *s->all_bh);
    s->all_ratio = ats_malloc_array((size_t)rows, sizeof *s->all_ratio);
    s->all_regime = ats_malloc_array((size_t)rows, sizeof *s->all_regime);
    s->bn = ats_malloc_array((size_t)rows, sizeof *s->bn);
    s->bb = ats_malloc_array((size_t)rows, sizeof *s->bb);
    if (!s->s || (s->dmax > 0 && (!s->qbuf || !s->kdata)) || !s->mrow || !s->ws || !s->mult ||
        !s->lens || !s->rowid || !s->st || !s->all_n || !s->all_bh || !s->all_ratio ||
        !s->all_regime || !s->bn || !s->bb)
        ATS_ERROR(ATS_STATUS_ENOMEM, "out of memory for a block of %lld rows of %lld logits",
                  (long long)block, (long long)s->nmax);
    return ATS_STATUS_OK;
}

// ----------------------------------------------------------------------------
// Rows

// "layer L, head H, " (what applies) before a row's message.
static const char *where(char *buf, size_t size, const struct state *s) {
    const struct input *in = &s->in[s->li];
    if (s->have_layers)
        snprintf(buf, size, "layer %s, head %lld, ", in->name, (long long)s->h);
    else if (s->have_heads)
        snprintf(buf, size, "head %lld, ", (long long)s->h);
    else
        buf[0] = 0;
    return buf;
}

// Row r of the head in hand: row index into the arrays seen as 2-D.
static int64_t flat_row(const struct state *s, int64_t r) {
    return s->h * s->in[s->li].rows + r;
}

// Logits of the block's rows (s->rowid) into s->s: (nr, n).
static int read_block(struct state *s, int64_t nr) {
    struct input *in = &s->in[s->li];
    char at[400];
    int rc;
    if (in->scores) {
        int contiguous = nr > 0 && s->rowid[nr - 1] - s->rowid[0] == nr - 1;
        for (int64_t i = 1; contiguous && i < nr; i++)
            contiguous = s->rowid[i] == s->rowid[i - 1] + 1;
        for (int64_t i = 0; i < nr; i += contiguous ? nr : 1) {
            int64_t m = contiguous ? nr : 1;
            rc = ats_array_read_rows(s->s + i * in->n, in->scores, flat_row(s, s->rowid[i]), m);
            if (rc != ATS_STATUS_OK)
                ATS_ERROR(rc, "%sreading rows %lld..%lld: %s", where(at, sizeof at, s),
                          (long long)s->rowid[i], (long long)s->rowid[i + m - 1],
                          ats_last_error());
        }
        return ATS_STATUS_OK;
    }
    int64_t kv = s->h / (in->heads / in->kv_heads);
    if (s->kv_loaded != kv) {
        rc = ats_array_read_rows(s->kdata, in->k, kv * in->n, in->n);
        if (rc != ATS_STATUS_OK)
            ATS_ERROR(rc, "%s--k: %s", where(at, sizeof at, s), ats_last_error());
        for (int64_t i = 0; i < in->n * in->d; i++)
            if (!isfinite(s->kdata[i]))
                ATS_ERROR(ATS_STATUS_EDOM, "%s--k: key head %lld, row %lld, column %lld is not "
                                           "finite",
                          where(at, sizeof at, s), (long long)kv, (long long)(i / in->d),
                          (long long)(i % in->d));
        s->kv_loaded = kv;
    }
    for (int64_t i = 0; i < nr; i++) {
        rc = ats_array_read_rows(s->qbuf + i * in->d, in->q, flat_row(s, s->rowid[i]), 1);
        if (rc != ATS_STATUS_OK)
            ATS_ERROR(rc, "%s--q: reading row %lld: %s", where(at, sizeof at, s),
                      (long long)s->rowid[i], ats_last_error());
        for (int64_t j = 0; j < in->d; j++)
            if (!isfinite(s->qbuf[i * in->d + j]))
                ATS_ERROR(ATS_STATUS_EDOM, "%s--q: row %lld, column %lld is not finite",
                          where(at, sizeof at, s), (long long)s->rowid[i], (long long)j);
    }
    double scale = isnan(in->scale) ? 1 / sqrt((double)in->d) : in->scale;
    ats_scores_qk(s->s, s->qbuf, s->kdata, nr, in->n, in->d, scale);
    return ATS_STATUS_OK;
}

// The mask row of row r of the head in hand into s->mrow: (mask_cols,).
static int read_mask_row(struct state *s, int64_t r) {
    struct input *in = &s->in[s->li];
    int64_t idx = r * in->mstride[in->ndim - 2], rest = s->h;
    for (int a = in->ndim - 3; a >= 0; a--) { // the head's index along each leading axis
        idx += (rest % in->shape[a]) * in->mstride[a];
        rest /= in->shape[a];
    }
    int rc = ats_array_read_rows(s->mrow, in->mask, idx, 1);
    if (rc != ATS_STATUS_OK) {
        char at[400];
        ATS_ERROR(rc, "%s--mask: row %lld: %s", where(at, sizeof at, s), (long long)r,
                  ats_last_error());
    }
    return ATS_STATUS_OK;
}

// Moves the logits row i of the block sees to its front (their order kept) and sets its
// length: causal columns, the mask (its additive values added) and masked logits. A logit the
// row sees must be finite.
static int select_keys(struct state *s, int64_t i, int64_t r) {
    struct input *in = &s->in[s->li];
    double *row = s->s + i * in->n;
    int64_t end = in->causal ? r + 1 : in->n, m = 0;
    int rc;
    if (in->mask && (rc = read_mask_row(s, r)) != ATS_STATUS_OK)
        return rc;
    int is_bool = in->mask && ats_array_dtype(in->mask) == ATS_DTYPE_BOOL;
    char at[400];
    for (int64_t j = 0; j < end; j++) {
        double v = row[j];
        if (in->mask) {
            double mv = s->mrow[in->mask_cols == 1 ? 0 : j];
            if (isnan(mv))
                ATS_ERROR(ATS_STATUS_EDOM, "%s--mask: row %lld, column %lld is NaN",
                          where(at, sizeof at, s), (long long)r, (long long)j);
            if (is_bool ? mv == 0 : mv <= in->mask_thr)
                continue;
            if (!is_bool)
                v += mv;
        }
        if (in->masked && v <= in->logit_thr)
            continue;
        if (!isfinite(v))
            ATS_ERROR(ATS_STATUS_EDOM, "%srow %lld, column %lld: the logit is %s",
                      where(at, sizeof at, s), (long long)r, (long long)j,
                      isnan(v) ? "NaN" : "infinite");
        row[m++] = v;
    }
    s->lens[i] = m;
    return ATS_STATUS_OK;
}

// The statistics of the next block of the head's selected rows (from s->j0 + s->nr).
static int next_block(struct ats_run *run, struct state *s) {
    int rc = run_check_cancel(run);
    if (rc != ATS_STATUS_OK)
        return rc;
    struct input *in = &s->in[s->li];
    int64_t j0 = s->j0 + s->nr;
    int64_t nr = s->nsel - j0 < s->block ? s->nsel - j0 : s->block;
    for (int64_t i = 0; i < nr; i++)
        s->rowid[i] = s->sel.count ? (int64_t)s->sel.v[j0 + i] : j0 + i;
    if ((rc = read_block(s, nr)) != ATS_STATUS_OK)
        return rc;
    int select = in->mask || in->masked;
    char at[400];
    for (int64_t i = 0; i < nr; i++) {
        int64_t pos = s->rowid[i];
        s->lens[i] = in->causal ? pos + 1 : in->n;
        if (select && (rc = select_keys(s, i, pos)) != ATS_STATUS_OK)
            return rc;
        s->mult[i] = 1;
        if (s->policy_id >= 0) {
            struct ats_policy_value v;
            rc = ats_policy_eval(&v, s->policy_id, &s->params, pos, in->causal ? pos + 1 : in->n);
            if (rc != ATS_STATUS_OK)
                ATS_ERROR(rc, "%s--policy at row %lld: %s", where(at, sizeof at, s),
                          (long long)pos, ats_last_error());
            s->mult[i] = v.multiplier;
        }
    }
    int64_t bad_row, bad_col;
    rc = ats_row_block(s->st, s->s, nr, in->n, s->lens, s->mult, s->cb, s->cw, s->ncombo,
                       s->threads, s->ws, &bad_row, &bad_col);
    if (rc != ATS_STATUS_OK && bad_row >= 0)
        ATS_ERROR(ATS_STATUS_EDOM, "%srow %lld, column %lld: the logit is %s",
                  where(at, sizeof at, s), (long long)s->rowid[bad_row], (long long)bad_col,
                  isnan(s->s[bad_row * in->n + bad_col]) ? "NaN" : "infinite");
    if (rc != ATS_STATUS_OK)
        ATS_ERROR(rc, "%s%s: %s", where(at, sizeof at, s), ats_strerror(rc), ats_last_error());
    for (int64_t i = 0; i < nr; i++) {
        s->all_n[j0 + i] = (double)s->lens[i];
        s->all_bh[j0 + i] = s->st[i * s->ncombo].beta_hat_k10;
        s->all_ratio[j0 + i] = s->st[i * s->ncombo].ratio;
        s->all_regime[j0 + i] = s->st[i * s->ncombo].regime;
    }
    s->j0 = j0;
    s->nr = nr;
    s->i = s->k = 0;
    return ATS_STATUS_OK;
}

// "layer" and "head" of the record, when the run has them.
static void head_keys(const struct state *s, struct ats_record *rec) {
    if (s->have_layers)
        ats_record_string(rec, "layer", s->in[s->li].name);
    if (s->have_heads)
        ats_record_int(rec, "head", s->h);
}

static void row_record(struct state *s, struct ats_record *rec) {
    const struct ats_row_stats *o = &s->st[s->i * s->ncombo + s->k];
    ats_record_string(rec, "record", "row");
    head_keys(s, rec);
    ats_record_int(rec, "row", s->rowid[s->i]);
    ats_record_int(rec, "n", o->n);
    ats_record_int(rec, "causal", s->in[s->li].causal);
    if (s->policy_id >= 0)
        ats_record_string(rec, "policy", ats_policy_get(s->policy_id)->name);
    ats_record_double(rec, "beta", s->cb[s->k]);
    ats_record_double(rec, "window", s->cw[s->k]);
    ats_record_double(rec, "multiplier", s->mult[s->i]);
    ats_record_double(rec, "beta_applied", o->beta);
    ats_record_double(rec, "beta_hat", o->beta_hat);
    ats_record_double(rec, "beta_hat_k10", o->beta_hat_k10);
    ats_record_double(rec, "beta_half", o->beta_half);
    ats_record_double(rec, "entropy", o->entropy);
    ats_record_double(rec, "w1", o->w1);
    ats_record_double(rec, "ratio", o->ratio);
    ats_record_string(rec, "regime",
                      o->regime < 0 ? "undetermined" : ats_regime_name((enum ats_regime)o->regime));
}

// ----------------------------------------------------------------------------
// Summary, extrapolation and ranking

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

// The shares of the head's rows in each regime at the first beta and window (the last for
// rows without a regime: fewer than 10 keys seen).
static void regime_shares(struct state *s) {
    int64_t count[4] = {0, 0, 0, 0};
    for (int64_t i = 0; i < s->nsel; i++)
        count[s->all_regime[i] < 0 ? 3 : s->all_regime[i]]++;
    for (int r = 0; r < 4; r++)
        s->shares[r] = (double)count[r] / (double)s->nsel;
}

// Median of the head's finite ratios (NAN when none); reorders all_ratio.
static double ratio_median(struct state *s) {
    int64_t m = 0;
    for (int64_t i = 0; i < s->nsel; i++)
        if (isfinite(s->all_ratio[i]))
            s->all_ratio[m++] = s->all_ratio[i];
    if (m == 0)
        return NAN;
    qsort(s->all_ratio, (size_t)m, sizeof *s->all_ratio, cmp_double);
    return m % 2 ? s->all_ratio[m / 2] : 0.5 * (s->all_ratio[m / 2 - 1] + s->all_ratio[m / 2]);
}

static const char *const law_names[3] = {"log", "polylog", "power"};

// THEORY.md 4.6 for rank r: the ratio at the target under the best law, its factor, and
// whether every law keeps it inside [1/W, W].
static void at_target(struct state *s, struct rank_row *r) {
    r->at_target = r->factor = NAN;
    r->robust = 0;
    int64_t N = (int64_t)s->target_len;
    struct ats_policy_value v;
    if (ats_policy_eval(&v, r->r.id, &s->params, N - 1, N) != ATS_STATUS_OK)
        return;
    double w = s->window.v[0], best = ats_law_predict(&s->fits, s->fits.best, s->target_len);
    r->at_target = best > 0 ? r->beta * v.multiplier / best : NAN;
    r->factor = 1 / r->at_target;
    int robust = 1;
    for (int l = 0; l < 3; l++) {
        double ratio = s->pred[l] > 0 ? r->beta * v.multiplier / s->pred[l] : NAN;
        robust = robust && ratio >= 1 / w && ratio <= w;
    }
    r->robust = robust;
}

// The three laws at the target and the best law's band: its prediction times
// exp(-/+ 2 sd), sd the residual sd in log beta_hat (for the log law, fitted in beta_hat
// itself, the same from its log residuals: log_rmse sqrt(k / (k - 2)) over k buckets).
static void predict_target(struct state *s) {
    const struct ats_fit *f[3] = {&s->fits.log_law, &s->fits.polylog, &s->fits.power};
    int best = 0;
    for (int l = 0; l < 3; l++) {
        double p = ats_law_predict(&s->fits, law_names[l], s->target_len);
        s->pred[l] = p > 0 && isfinite(p) ? p : NAN;
        if (strcmp(s->fits.best, law_names[l]) == 0)
            best = l;
    }
    double k = (double)s->fits.buckets;
    double sd = best == 0 ? f[0]->log_rmse * sqrt(k / (k - 2)) : f[best]->resid_sd;
    s->band[0] = s->pred[best] * exp(-2 * sd);
    s->band[1] = s->pred[best] * exp(2 * sd);
}

// Recommended policy (4.6) among the first beta's ranks: the first robust one in ranking
// order (the smallest |slope|), else the smallest |log ratio at target|; -1 when none.
static int64_t recommend(const struct state *s) {
    int64_t best = -1;
    for (int64_t i = 0; i < s->nranks && s->ranks[i].bi == 0; i++)
        if (s->ranks[i].robust)
            return i;
    for (int64_t i = 0; i < s->nranks && s->ranks[i].bi == 0; i++) {
        double a = fabs(log(s->ranks[i].at_target));
        if (isfinite(a) && (best < 0 || a < fabs(log(s->ranks[best].at_target))))
            best = i;
    }
    return best;
}

// The fits of beta_hat_k10 over n (THEORY.md 4.4), then the policies ranked by |slope| for
// each beta (4.5), sorted, and 4.6 at the target; notes for the policies left out (for the
// first head only: every head has the same policies).
static int fit_and_rank(struct ats_run *run, struct state *s) {
    int rc = run_check_cancel(run);
    if (rc != ATS_STATUS_OK)
        return rc;
    int first_head = s->li == 0 && s->h == 0;
    s->ratio_median = ratio_median(s);
    regime_shares(s);
    s->fit_rc = ats_fit_laws(&s->fits, s->bn, s->bb, s->all_n, s->all_bh, s->nsel);
    snprintf(s->fit_error, sizeof s->fit_error, "%s",
             s->fit_rc == ATS_STATUS_OK ? "" : ats_last_error());
    int64_t np = s->have_policy && s->fit_rc == ATS_STATUS_OK
                     ? (s->rank_all ? ats_policy_count() : 1)
                     : 0;
    ats_free(s->ranks);
    s->ranks = ats_malloc_array((size_t)(np * s->beta.count + 1), sizeof *s->ranks);
    if (!s->ranks)
        ATS_ERROR(ATS_STATUS_ENOMEM, "out of memory");
    s->nranks = s->next_rank = 0;
    s->recommended = -1;
    if (s->fit_rc == ATS_STATUS_OK && !isnan(s->target_len))
        predict_target(s);
    for (int64_t b = 0; b < s->beta.count; b++) {
        for (int64_t p = 0; p < np; p++) {
            int64_t id = s->rank_all ? p : s->policy_id;
            struct ats_policy_value v;
            int64_t big = (int64_t)llround(s->fits.n_largest);
            if (ats_policy_eval(&v, id, &s->params, big - 1, big) == ATS_STATUS_OK &&
                (v.scope != ATS_POLICY_SCOPE_ALL || isnan(v.multiplier))) {
                if (b == 0 && first_head)
                    run_note(run, "note: %s not ranked: it scales %s dimensions only",
                             ats_policy_get(id)->name, ats_policy_scope_name(v.scope));
                continue;
            }
            struct rank_row *r = &s->ranks[s->nranks];
            if (ats_rank_policy(&r->r, id, &s->params, &s->fits, s->bn, s->fits.buckets,
                                s->beta.v[b]) == ATS_STATUS_OK) {
                r->beta = s->beta.v[b];
                r->bi = b;
                if (!isnan(s->target_len))
                    at_target(s, r);
                s->nranks++;
            } else if (b == 0 && first_head) {
                run_note(run, "note: %s not ranked: %s", ats_policy_get(id)->name,
                         ats_last_error());
            }
        }
    }
    qsort(s->ranks, (size_t)s->nranks, sizeof *s->ranks, cmp_rank);
    if (!isnan(s->target_len))
        s->recommended = recommend(s);
    return ATS_STATUS_OK;
}

static void fit_record(struct ats_record *rec, const struct ats_fit *f, const char *const *keys) {
    ats_record_double(rec, keys[0], f->slope);
    ats_record_double(rec, keys[1], f->intercept);
    ats_record_double(rec, keys[2], f->r2);
    ats_record_double(rec, keys[3], f->resid_sd);
    ats_record_double(rec, keys[4], f->log_rmse);
}

static void summary_record(struct ats_run *run, struct state *s, struct ats_record *rec) {
    static const char *const log_keys[] = {"log_slope", "log_intercept", "log_r2",
                                           "log_resid_sd", "log_rmse"};
    static const char *const polylog_keys[] = {"polylog_xi", "polylog_c", "polylog_r2",
                                               "polylog_resid_sd", "polylog_rmse"};
    static const char *const power_keys[] = {"power_e", "power_c", "power_r2", "power_resid_sd",
                                             "power_rmse"};
    ats_record_string(rec, "record", "summary");
    head_keys(s, rec);
    ats_record_int(rec, "rows", s->nsel);
    if (s->have_heads) {
        static const char *const share_keys[4] = {"share_subcritical", "share_critical",
                                                  "share_supercritical", "share_undetermined"};
        ats_record_double(rec, "ratio_median", s->ratio_median);
        for (int r = 0; r < 4; r++)
            ats_record_double(rec, share_keys[r], s->shares[r]);
    }
    if (s->fit_rc == ATS_STATUS_OK) {
        ats_record_double(rec, "n_min", s->fits.n_min);
        ats_record_double(rec, "n_max", s->fits.n_max);
        ats_record_int(rec, "buckets", s->fits.buckets);
        fit_record(rec, &s->fits.log_law, log_keys);
        fit_record(rec, &s->fits.polylog, polylog_keys);
        fit_record(rec, &s->fits.power, power_keys);
        ats_record_double(rec, "power_alpha", 2 / s->fits.power.slope);
        ats_record_string(rec, "best", s->fits.best);
        if (s->nranks > 0 && s->ranks[0].bi == 0) // the first beta's best
            ats_record_string(rec, "best_policy", ats_policy_get(s->ranks[0].r.id)->name);
        if (!isnan(s->target_len)) {
            ats_record_double(rec, "target_len", s->target_len);
            ats_record_double(rec, "beta_hat_target_log", s->pred[0]);
            ats_record_double(rec, "beta_hat_target_polylog", s->pred[1]);
            ats_record_double(rec, "beta_hat_target_power", s->pred[2]);
            ats_record_double(rec, "beta_hat_target_lo", s->band[0]);
            ats_record_double(rec, "beta_hat_target_hi", s->band[1]);
            if (s->recommended >= 0) {
                const struct rank_row *r = &s->ranks[s->recommended];
                ats_record_string(rec, "recommended_policy", ats_policy_get(r->r.id)->name);
                ats_record_double(rec, "recommended_factor", r->factor);
            }
        }
    } else {
        ats_record_string(rec, "fit_error", s->fit_error);
    }
    if (s->have_policy && s->fit_rc != ATS_STATUS_OK && s->li == 0 && s->h == 0)
        run_note(run, "note: policies not ranked: %s", s->fit_error);
}

// Ranks per beta, competition style (1, 2, 2, 4): equal rounded slopes share a rank, listed
// in registry order.
static void policy_record(struct state *s, struct ats_record *rec) {
    int64_t i = s->next_rank;
    const struct rank_row *r = &s->ranks[i];
    int first = i == 0 || r->bi != s->ranks[i - 1].bi;
    s->pos = first ? 1 : s->pos + 1;
    if (first || slope_key(r) != slope_key(&s->ranks[i - 1]))
        s->rank = s->pos;
    ats_record_string(rec, "record", "policy");
    head_keys(s, rec);
    ats_record_string(rec, "policy", ats_policy_get(r->r.id)->name);
    ats_record_string(rec, "scope", "all");
    ats_record_double(rec, "beta", r->beta);
    ats_record_double(rec, "slope", r->r.slope);
    ats_record_double(rec, "ratio_at_max", r->r.ratio_at_max);
    ats_record_int(rec, "rank", s->rank);
    if (!isnan(s->target_len)) {
        ats_record_double(rec, "target_len", s->target_len);
        ats_record_double(rec, "ratio_at_target", r->at_target);
        ats_record_double(rec, "factor_to_critical", r->factor);
        ats_record_int(rec, "robust", r->robust);
    }
    s->next_rank++;
}

// ----------------------------------------------------------------------------
// The figure

// After the last head: the law of the one head, or the heads' median ratios.
static int finish_plot(struct ats_run *run, struct state *s) {
    struct figure *f = NULL;
    int rc;
    if (s->nin == 1 && s->in[0].heads == 1) {
        if (s->fit_rc != ATS_STATUS_OK)
            ATS_ERROR(ATS_STATUS_EDOM, "--plot: no law to draw: %s", s->fit_error);
        rc = diagnose_law_figure(&f, s->all_n, s->all_bh, s->nsel, s->bn, s->bb,
                                 s->fits.buckets, &s->fits, s->target_len, NULL);
    } else if (s->have_layers) {
        rc = diagnose_heads_figure(&f, s->layer_names, s->nin, s->hmax, s->heads_ratio,
                                   s->window.v[0]);
    } else {
        // One input (..., A, heads, rows, n): a row per index of the axes before the last
        // leading one (layers, when the array is a model's), a column per head.
        const struct input *in = &s->in[0];
        int64_t cols = in->shape[in->ndim - 3];
        rc = diagnose_heads_figure(&f, NULL, in->heads / cols, cols, s->heads_ratio,
                                   s->window.v[0]);
    }
    if (rc != ATS_STATUS_OK)
        return rc;
    run->figure = f;
    return ATS_STATUS_OK;
}

// ----------------------------------------------------------------------------

// The head after the one in hand (s->phase PHASE_DONE after the last).
static void next_head(struct state *s) {
    if (++s->h == s->in[s->li].heads) {
        s->h = 0;
        s->li++;
    }
    s->kv_loaded = -1;
    if (s->li == s->nin) {
        s->phase = PHASE_DONE;
        return;
    }
    s->nsel = s->sel.count ? s->sel.count : s->in[s->li].rows;
    s->j0 = s->nr = s->i = s->k = 0;
    s->phase = PHASE_ROWS;
}

static int next(struct ats_run *run, void *state, struct ats_record *rec) {
    struct state *s = state;
    int rc;
    for (;;) {
        switch (s->phase) {
        case PHASE_ROWS:
            if (s->i >= s->nr) {
                if (s->j0 + s->nr >= s->nsel) {
                    s->phase = PHASE_SUMMARY;
                    continue;
                }
                if ((rc = next_block(run, s)) != ATS_STATUS_OK)
                    return rc;
            }
            row_record(s, rec);
            if (++s->k == s->ncombo) {
                s->k = 0;
                s->i++;
                run->done = run->done + 1; // one writer: no atomic add needed
            }
            return ATS_STATUS_OK;
        case PHASE_SUMMARY:
            if ((rc = fit_and_rank(run, s)) != ATS_STATUS_OK)
                return rc;
            if (s->heads_ratio)
                s->heads_ratio[s->li * s->hmax + s->h] = s->ratio_median;
            summary_record(run, s, rec);
            s->phase = PHASE_POLICIES;
            return ATS_STATUS_OK;
        case PHASE_POLICIES:
            if (s->next_rank < s->nranks) {
                policy_record(s, rec);
                return ATS_STATUS_OK;
            }
            if (s->plot && s->li == s->nin - 1 && s->h == s->in[s->li].heads - 1 &&
                (rc = finish_plot(run, s)) != ATS_STATUS_OK)
                return rc;
            next_head(s);
            continue;
        default:
            return ATS_STATUS_OK;
        }
    }
}

static const struct run_ops ops = {next, NULL, state_free};

// The run's CSV columns: the base list with "layer" and "head" after "record" when the run
// has them, then the head and target keys when asked for.
static int make_columns(struct state *s, int64_t *count) {
    int64_t n = COUNT(columns) + 2 + COUNT(head_columns) + COUNT(target_columns), k = 0;
    s->cols = ats_malloc_array((size_t)n, sizeof *s->cols);
    if (!s->cols)
        ATS_ERROR(ATS_STATUS_ENOMEM, "out of memory");
    s->cols[k++] = columns[0];
    if (s->have_layers)
        s->cols[k++] = "layer";
    if (s->have_heads)
        s->cols[k++] = "head";
    for (int64_t i = 1; i < COUNT(columns); i++)
        s->cols[k++] = columns[i];
    for (int64_t i = 0; s->have_heads && i < COUNT(head_columns); i++)
        s->cols[k++] = head_columns[i];
    for (int64_t i = 0; !isnan(s->target_len) && i < COUNT(target_columns); i++)
        s->cols[k++] = target_columns[i];
    *count = k;
    return ATS_STATUS_OK;
}

// The --rows list: distinct, and inside every input's rows.
static int check_rows(const struct state *s) {
    for (int64_t i = 0; i < s->sel.count; i++) {
        for (int64_t l = 0; l < s->nin; l++)
            if (s->sel.v[i] >= (double)s->in[l].rows) {
                char pre[300];
                ATS_ERROR(ATS_STATUS_EARG, "--rows: row %.17g is outside %sthe input's %lld rows "
                                           "(0..%lld)",
                          s->sel.v[i], layer_prefix(pre, sizeof pre, &s->in[l]),
                          (long long)s->in[l].rows, (long long)(s->in[l].rows - 1));
            }
        for (int64_t j = 0; j < i; j++)
            if (s->sel.v[j] == s->sel.v[i])
                ATS_ERROR(ATS_STATUS_EARG, "--rows: row %.17g is given twice", s->sel.v[i]);
    }
    return ATS_STATUS_OK;
}

// The policy at the first and last positions of every input, before any output; it must
// multiply whole logits (a rotary-only factor depends on the model's rotary share).
static int check_policy(const struct state *s, const char *name) {
    for (int64_t l = 0; l < s->nin; l++) {
        const struct input *in = &s->in[l];
        struct ats_policy_value v;
        int64_t last = in->rows - 1;
        if (ats_policy_eval(&v, s->policy_id, &s->params, 0, in->causal ? 1 : in->n) !=
                ATS_STATUS_OK ||
            ats_policy_eval(&v, s->policy_id, &s->params, last, in->causal ? last + 1 : in->n) !=
                ATS_STATUS_OK)
            ATS_ERROR(ATS_STATUS_EARG, "--policy %s: %s", name, ats_last_error());
        if (v.scope != ATS_POLICY_SCOPE_ALL || isnan(v.multiplier))
            ATS_ERROR(ATS_STATUS_EARG,
                      "--policy %s scales %s head dimensions only, not whole logits: apply it "
                      "when computing the logits instead",
                      name,
                      isnan(v.multiplier) ? "rotary and pass-through"
                                          : ats_policy_scope_name(v.scope));
    }
    return ATS_STATUS_OK;
}

// A policy parameter given without --policy would be ignored: a usage error instead.
static int params_without_policy(const struct ats_diagnose_spec *sp) {
    size_t lo = offsetof(struct ats_diagnose_spec, params), hi = lo + sizeof sp->params;
    for (int64_t i = 0; i < command_diagnose.noptions; i++) {
        const struct ats_option *o = &command_diagnose.options[i];
        if (o->offset < lo || o->offset >= hi)
            continue;
        const char *t = (const char *)sp + o->offset;
        double v = NAN;
        int flag = 0;
        if (o->kind == ATS_OPTION_FLAG)
            memcpy(&flag, t, sizeof flag);
        else
            memcpy(&v, t, sizeof v);
        if (flag == 1 || !isnan(v))
            ATS_ERROR(ATS_STATUS_EARG, "--%s is a policy parameter: it applies with --policy "
                                       "NAME or --policy all",
                      o->name);
    }
    return ATS_STATUS_OK;
}

// Everything before the first record: the spec, the policy name, the inputs, the buffers and
// the policy at the first and last positions.
static int setup(struct state *s, const struct ats_diagnose_spec *sp) {
    int rc = sp->beta.count ? values_copy(&s->beta, &sp->beta) : values_one(&s->beta, 1);
    if (rc == ATS_STATUS_OK)
        rc = sp->window.count ? values_copy(&s->window, &sp->window) : values_one(&s->window, 2);
    if (rc == ATS_STATUS_OK)
        rc = values_copy(&s->sel, &sp->rows);
    if (rc != ATS_STATUS_OK)
        return rc;
    s->threads = spec_threads(sp->threads);
    s->params = sp->params;
    s->target_len = sp->target_len;
    s->policy_id = -1;
    s->have_policy = sp->policy != NULL;
    s->rank_all = sp->policy && strcmp(sp->policy, "all") == 0;
    if (sp->policy && !s->rank_all) {
        s->policy_id = ats_policy_find(sp->policy);
        if (s->policy_id < 0) {
            char names[512];
            policy_names(names, sizeof names);
            ATS_ERROR(ATS_STATUS_EARG, "--policy: unknown policy '%s' (known: %s, or all)",
                      sp->policy, names);
        }
    }
    if (!sp->policy && (rc = params_without_policy(sp)) != ATS_STATUS_OK)
        return rc;
    if (sp->plot && ats_plot_check_path(sp->plot) != ATS_STATUS_OK)
        ATS_ERROR(ATS_STATUS_EARG, "--plot: '%s' must end in .png, .svg or .pdf", sp->plot);
    s->plot = sp->plot;

    // The inputs: the spec's one, or its layers.
    s->have_layers = sp->nlayers > 0;
    if (s->have_layers &&
        (sp->scores || sp->q || sp->k || sp->safetensors || sp->tensor || sp->mask ||
         sp->scores_array || sp->q_array || sp->k_array || sp->mask_array || sp->masked_logits ||
         !isnan(sp->scale)))
        ATS_ERROR(ATS_STATUS_EARG, "layers replace --scores, --q, --k, --safetensors, --mask, "
                                   "--masked-logits and --scale: give one or the other");
    if (sp->nlayers < 0 || (sp->nlayers > 0 && !sp->layers))
        ATS_ERROR(ATS_STATUS_EARG, "layers: %lld layers", (long long)sp->nlayers);
    int64_t nin = s->have_layers ? sp->nlayers : 1;
    s->in = ats_malloc_array((size_t)nin, sizeof *s->in);
    if (!s->in)
        ATS_ERROR(ATS_STATUS_ENOMEM, "out of memory");
    memset(s->in, 0, (size_t)nin * sizeof *s->in);
    for (int64_t l = 0; l < nin; l++) {
        s->nin = l + 1;
        rc = s->have_layers ? layer_input(&s->in[l], sp, l) : open_input(&s->in[l], sp);
        if (rc != ATS_STATUS_OK)
            return rc;
        struct input *in = &s->in[l];
        in->logit_thr = in->scores ? mask_threshold(ats_array_dtype(in->scores)) : -HUGE_VAL;
        if (in->causal && in->rows > in->n) {
            char pre[300];
            ATS_ERROR(ATS_STATUS_EINVAL,
                      "%s--causal: sequences of %lld positions but only %lld columns (position p "
                      "sees columns 0..p)",
                      layer_prefix(pre, sizeof pre, in), (long long)in->rows, (long long)in->n);
        }
        s->nmax = in->n > s->nmax ? in->n : s->nmax;
        s->dmax = in->q && in->d > s->dmax ? in->d : s->dmax;
        s->rmax = in->rows > s->rmax ? in->rows : s->rmax;
        s->hmax = in->heads > s->hmax ? in->heads : s->hmax;
        s->have_heads = s->have_heads || s->have_layers || in->ndim > 2;
    }
    if ((rc = check_rows(s)) != ATS_STATUS_OK)
        return rc;

    // Combinations of beta and window, in option order.
    s->ncombo = s->beta.count * s->window.count;
    s->cb = ats_malloc_array((size_t)s->ncombo, sizeof *s->cb);
    s->cw = ats_malloc_array((size_t)s->ncombo, sizeof *s->cw);
    if (!s->cb || !s->cw)
        ATS_ERROR(ATS_STATUS_ENOMEM, "out of memory");
    for (int64_t i = 0; i < s->beta.count; i++)
        for (int64_t j = 0; j < s->window.count; j++) {
            s->cb[i * s->window.count + j] = s->beta.v[i];
            s->cw[i * s->window.count + j] = s->window.v[j];
        }
    if ((rc = alloc_block(s)) != ATS_STATUS_OK)
        return rc;
    if (s->plot && (s->nin > 1 || s->in[0].heads > 1)) {
        s->heads_ratio = ats_malloc_array((size_t)(s->nin * s->hmax), sizeof *s->heads_ratio);
        s->layer_names = ats_malloc_array((size_t)s->nin, sizeof *s->layer_names);
        if (!s->heads_ratio || !s->layer_names)
            ATS_ERROR(ATS_STATUS_ENOMEM, "out of memory");
        for (int64_t i = 0; i < s->nin * s->hmax; i++)
            s->heads_ratio[i] = NAN;
        for (int64_t l = 0; l < s->nin; l++)
            s->layer_names[l] = s->in[l].name;
    }
    if (s->policy_id >= 0 && (rc = check_policy(s, sp->policy)) != ATS_STATUS_OK)
        return rc;
    s->li = 0;
    s->h = -1; // next_head moves to the first head
    return ATS_STATUS_OK;
}

static int run_alloc(struct ats_run **out, const void *spec_) {
    const struct ats_diagnose_spec *sp = spec_;
    int rc = command_check_spec(&command_diagnose, sp);
    if (rc != ATS_STATUS_OK)
        return rc;
    struct state *s = ats_malloc(sizeof *s);
    if (!s)
        ATS_ERROR(ATS_STATUS_ENOMEM, "no memory for a run");
    memset(s, 0, sizeof *s);
    rc = setup(s, sp);
    if (rc != ATS_STATUS_OK) {
        state_free(s);
        return rc;
    }
    next_head(s);
    double total = 0;
    for (int64_t l = 0; l < s->nin; l++)
        total += (double)s->in[l].heads * (double)(s->sel.count ? s->sel.count : s->in[l].rows);
    int64_t ncols;
    if ((rc = make_columns(s, &ncols)) != ATS_STATUS_OK) {
        state_free(s);
        return rc;
    }
    const char *const *cols = s->cols;
    rc = run_new(out, &ops, s, total);
    if (rc != ATS_STATUS_OK)
        return rc;
    (*out)->columns = cols;
    (*out)->ncolumns = ncols;
    return ATS_STATUS_OK;
}

const struct ats_command command_diagnose = {
    "diagnose",
    "Usage: attnscale diagnose (--scores FILE.npy | --q Q.npy --k K.npy |\n"
    "                           --safetensors FILE --tensor NAME) [options]\n",
    "Per row of attention logits: the accumulation scale beta_hat (the critical inverse\n"
    "temperature of the row), the half-mass scale, entropy and largest weight at the applied\n"
    "beta, and the regime (THEORY.md 4.1-4.2; arXiv 2605.12697). Then a summary fitting\n"
    "beta_hat against the row length n (log n, (log n)^xi and n^(2/alpha) laws) and, with\n"
    "--policy, how well each scaling policy keeps the rows critical as n grows (4.4-4.5);\n"
    "with --target-len, the laws extrapolated to that length and the policy that keeps its\n"
    "rows critical (4.6). Every leading axis of the input is a head, each with its own rows,\n"
    "summary and ranking.\n",
    "Records: \"record\":\"row\" with row, n, beta, window, multiplier, beta_applied, beta_hat\n"
    "(k0 = 2), beta_hat_k10, beta_half, entropy, w1, ratio, regime (subcritical | critical |\n"
    "supercritical | undetermined below 10 logits); infinite values (ties at the maximum) are\n"
    "null. Then \"record\":\"summary\" with the fits (slope, intercept, r2, resid_sd and log_rmse\n"
    "of each law; best) or fit_error, and with --policy \"record\":\"policy\" rows: slope of\n"
    "log(beta m/beta_hat) against log n (0 keeps rows critical), ratio_at_max, rank.\n"
    "With heads every record carries head (and ratio_median, the median ratio of the head's\n"
    "rows at the first beta, is in its summary). With --target-len the summary adds\n"
    "target_len, beta_hat_target_log / _polylog / _power, the best law's band\n"
    "beta_hat_target_lo / _hi (its prediction times exp(-/+ 2 residual sd of log beta_hat)),\n"
    "recommended_policy and recommended_factor; policy records add ratio_at_target,\n"
    "factor_to_critical (what the policy's multiplier at N must be multiplied by) and robust\n"
    "(1: the ratio at N is inside the first --window under all three laws).\n"
    "A NaN or Inf logit a row sees is an error naming the row and column (exit 1).\n"
    "\n"
    "Examples:\n"
    "  attnscale diagnose --scores logits.npy --causal --policy all --format csv\n"
    "  attnscale diagnose --q q.npy --k k.npy --mask mask.npy --rows 1:32767:64:log \\\n"
    "      --policy all --target-len 131072 --plot heads.png\n",
    options,
    (int64_t)(sizeof options / sizeof options[0]),
    sizeof(struct ats_diagnose_spec),
    spec_default,
    run_alloc,
    0,
};
