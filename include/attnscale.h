/*
 * attnscale.h: the public API of libattnscale.
 *
 * libattnscale computes the phase transitions of softmax attention under inverse-temperature
 * scaling at long context (see docs in the repository: THEORY.md sections are cited as
 * "THEORY.md 2.2"). Everything a program needs is declared here; the CLI in tools/cli/ uses
 * nothing else.
 *
 * Conventions
 *   - Fallible calls return an int status from enum ats_status (0 = ATS_STATUS_OK);
 *     ats_strerror() names it. The library never prints and never exits; a replaceable
 *     handler (silent by default) receives a one-line reason for every error it reports.
 *   - Element counts and indices are int64_t, byte counts size_t.
 *   - Outputs first, then inputs, then sizes, then scalar parameters.
 *
 * Worked example: the exact simplex layer of arXiv 2510.05554 at the critical scale.
 *
 *     struct ats_simplex_params p = ats_simplex_params_default();
 *     p.n = 1024; p.d = 1024; p.rho = 0.5;
 *     p.scale = ATS_SCALE_GAMMA; p.gamma = 2.0;          // beta = 2 log 1024
 *     struct ats_simplex s;
 *     int rc = ats_simplex_eval(&s, &p);
 *     if (rc != ATS_STATUS_OK) fprintf(stderr, "%s\n", ats_strerror(rc));
 *     // s.regime == ATS_REGIME_CRITICAL, s.a_self = 1024/2047, s.rho_out ~ 0.80027
 *
 * Writing records (JSON Lines or CSV):
 *
 *     struct ats_writer *w;
 *     ats_writer_alloc(&w, stdout, ATS_FORMAT_JSON);
 *     ats_writer_int(w, "n", 1024);
 *     ats_writer_double(w, "rho_out", s.rho_out);
 *     ats_writer_end_record(w);                           // {"n":1024,"rho_out":0.80027...}
 *     ats_writer_free(w);
 */
#ifndef ATTNSCALE_H
#define ATTNSCALE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ATS_VERSION "0.1.0"

// Largest integer every count (n, d, ...) may take: 2^53, where doubles stop being exact.
#define ATS_INT_EXACT_MAX 9007199254740992LL

// ----------------------------------------------------------------------------
// Status codes and errors

enum ats_status {
    ATS_STATUS_OK = 0,
    ATS_STATUS_EINVAL, // malformed input (syntax, inconsistent records)
    ATS_STATUS_ENOMEM, // allocation failed or would exceed the size limits
    ATS_STATUS_EDOM,   // a parameter is outside its mathematical domain
    ATS_STATUS_ERANGE, // a result or a count does not fit its type or limit
    ATS_STATUS_EUNSUP, // valid but not supported by this build
    ATS_STATUS_EIO,    // reading or writing a file failed
    ATS_STATUS_ENUM,   // a numerical method failed (no convergence, non-finite result)
    ATS_STATUS_EARG,   // an experiment's arguments are invalid or inconsistent (the CLI's
                       // usage error, exit 2; Python's ValueError)
    ATS_STATUS_ECANCEL, // the run was cancelled (ats_run_cancel)
};

// Short English text for a status; never NULL ("unknown status" for unknown values).
const char *ats_strerror(int status);

// Receives every error the library reports: a one-line reason, the source location and the
// status. The default handler does nothing. The handler is process-wide: set it once, before
// any threads start.
typedef void ats_error_handler_t(const char *reason, const char *file, int line, int status);

// Installs h (NULL restores the silent default) and returns the previous handler.
ats_error_handler_t *ats_set_error_handler(ats_error_handler_t *h);

// The reason of the last error the library reported on the calling thread ("" if none):
// thread-local storage, valid until the thread's next library call that fails.
const char *ats_last_error(void);

// A multi-line, NUL-terminated description of the build: version, git hash, compiler flags,
// BLAS configuration and OpenMP threads. Static storage; do not free.
const char *ats_build_info(void);

// ----------------------------------------------------------------------------
// Numeric option values: "x", "a,b,c", "lo:hi:k" (k evenly spaced values, both ends
// included) or "lo:hi:k:log" (evenly spaced in log; integer domains get the nearest integers,
// repeats dropped). Every value must be finite and lie in a domain. The parser and the writers use
// the C locale's decimal point whatever LC_NUMERIC says.

// Largest number of values one text may expand to.
#define ATS_VALUES_MAX 10000000

struct ats_domain {
    double lo, hi;   // bounds (use -HUGE_VAL / HUGE_VAL for none)
    int lo_open;     // 1: lo itself is excluded
    int hi_open;     // 1: hi itself is excluded
    int integer;     // 1: every value must be an integer (|v| <= ATS_INT_EXACT_MAX), written
                     // exactly (no rounding to the nearest double)
};

struct ats_values {
    double *v;     // count values, owned; release with ats_values_clear
    int64_t count;
};

// Where parsing failed: the offending item is text[offset .. offset+length), and for a
// value outside the domain, value holds it.
struct ats_parse_diag {
    int64_t offset, length;
    double value;
};

// Parses text into out (caller-owned struct; its array is allocated here).
// Returns ATS_STATUS_EINVAL (not a number, empty item, malformed range or k < 1, k = 1 with
// lo != hi, an integer domain given a non-integer), ATS_STATUS_EDOM (a value outside dom,
// or not finite), ATS_STATUS_ERANGE (more than ATS_VALUES_MAX values) or ATS_STATUS_ENOMEM.
// On failure out is empty and diag (if not NULL) says where.
int ats_values_parse(struct ats_values *out, const char *text, const struct ats_domain *dom,
                     struct ats_parse_diag *diag);

// Frees the array and empties v (NULL or an empty v is fine).
void ats_values_clear(struct ats_values *v);

// "a number in [0, 1)", "an integer >= 2", ... : the values dom accepts, for messages.
void ats_domain_describe(char *buf, size_t size, const struct ats_domain *dom);

// 1 when v lies in dom (finite, within the bounds, an integer where dom asks for one).
int ats_domain_contains(const struct ats_domain *dom, double v);

// ----------------------------------------------------------------------------
// Record writers: JSON Lines (one object per line) or CSV (header row from the first
// record). A record is built key by key and emitted by ats_writer_end_record.
// Non-finite doubles are written as null in JSON and as inf, -inf or nan in CSV.
// Doubles use the fewest of 15, 16 or 17 significant digits that read back to the same double.

enum ats_format { ATS_FORMAT_JSON, ATS_FORMAT_CSV };

struct ats_writer;

// f stays owned by the caller and must outlive the writer.
int ats_writer_alloc(struct ats_writer **w, FILE *f, enum ats_format fmt);
void ats_writer_free(struct ats_writer *w);

// Add one field to the record under construction. Keys are copied.
int ats_writer_double(struct ats_writer *w, const char *key, double v);
int ats_writer_int(struct ats_writer *w, const char *key, int64_t v);
int ats_writer_string(struct ats_writer *w, const char *key, const char *v);

// CSV only (a no-op for JSON): fixes the columns before the first record, so records of
// several kinds can share one file; a record's missing columns are left empty. Without it the
// first record's keys are the columns. Returns ATS_STATUS_EINVAL after the first record.
int ats_writer_csv_columns(struct ats_writer *w, const char *const *keys, int64_t count);

// Emits the record and starts a new one. For CSV every key of the record must be a column
// (ATS_STATUS_EINVAL otherwise, and nothing of the record is written). Returns
// ATS_STATUS_EIO if the stream reports a write error.
int ats_writer_end_record(struct ats_writer *w);

struct ats_record;

// Adds every field of r (doubles with a csv_format printed with it in CSV) and ends the record:
// the status of ats_writer_end_record.
int ats_writer_record(struct ats_writer *w, const struct ats_record *r);

// ----------------------------------------------------------------------------
// Records: what every experiment yields, one at a time (a flat list of key/value fields, the
// keys of DESIGN.md's CLI contract). Keys and string values point to static storage or to
// storage of the producer (a run) that stays valid until its next step.

enum ats_field_type { ATS_FIELD_DOUBLE, ATS_FIELD_INT, ATS_FIELD_STRING };

struct ats_field {
    const char *key;
    enum ats_field_type type;
    double d;               // ATS_FIELD_DOUBLE
    int64_t i;              // ATS_FIELD_INT
    const char *s;          // ATS_FIELD_STRING
    const char *csv_format; // NULL: the writer's form; else a printf format for the one value
                            // ("%.17g", "%g" for a double, "%lld" for an int) used in CSV
};

#define ATS_RECORD_FIELDS 64

struct ats_record {
    int64_t count; // fields in use; 0 marks the end of a run
    struct ats_field field[ATS_RECORD_FIELDS];
};

// Empties r; the adders append one field (at most ATS_RECORD_FIELDS: a contract, asserted).
void ats_record_clear(struct ats_record *r);
void ats_record_double(struct ats_record *r, const char *key, double v);
void ats_record_int(struct ats_record *r, const char *key, int64_t v);
void ats_record_string(struct ats_record *r, const char *key, const char *v);
// Sets the CSV format of the field added last.
void ats_record_csv_format(struct ats_record *r, const char *fmt);
// The field named key, or NULL.
const struct ats_field *ats_record_find(const struct ats_record *r, const char *key);

// ----------------------------------------------------------------------------
// Philox4x32-10 counter-based random numbers (Salmon et al., SC'11; Random123).
//
// A stream is keyed by (seed, stream): the 64-bit seed is the Philox key, the 64-bit stream id
// fills counter words 2-3 and a block index counts in words 0-1. Give every independent unit of
// work (a trial, a chunk of keys) its own stream id, derived from its index, never from a
// thread number: the draws then do not depend on how work is spread over threads.

struct ats_rng {
    uint32_t key[2];
    uint32_t ctr[4];
    uint32_t buf[4];
    unsigned pos;       // next unused word of buf (4: refill)
    int has_spare;      // Box-Muller's second normal is waiting in spare
    double spare;
};

// One Philox4x32-10 block: out = philox(ctr, key).
void ats_philox4x32_10(uint32_t out[4], const uint32_t ctr[4], const uint32_t key[2]);

// uniform takes two words (the first is the high half); gamma, beta and sphere reject and so
// use a variable number of words; all of them are bit-identical for a given (seed, stream) on
// one platform (normal, gamma, beta and sphere go through libm's log, sin and cos). With
// assertions off, gamma and beta return NaN for a shape that is not finite and positive.
void ats_rng_init(struct ats_rng *r, uint64_t seed, uint64_t stream);
uint32_t ats_rng_u32(struct ats_rng *r);
double ats_rng_uniform(struct ats_rng *r);     // [0, 1), multiples of 2^-53
double ats_rng_uniform_pos(struct ats_rng *r); // (0, 1], multiples of 2^-53
double ats_rng_normal(struct ats_rng *r);      // N(0, 1), Box-Muller
double ats_rng_gamma(struct ats_rng *r, double shape);         // Gamma(shape, 1), shape > 0
double ats_rng_beta(struct ats_rng *r, double a, double b);    // Beta(a, b), a, b > 0
void ats_rng_sphere(struct ats_rng *r, double *x, int64_t d);  // x: (d,), uniform on S^{d-1}

// ----------------------------------------------------------------------------
// The exact simplex layer (THEORY.md 2.2-2.6): n tokens with |x_i|^2 = q and pairwise cosine
// rho, pre-LN self-attention at inverse temperature beta with residual alpha.

enum ats_regime {
    ATS_REGIME_SUBCRITICAL,
    ATS_REGIME_CRITICAL,
    ATS_REGIME_SUPERCRITICAL,
};

// "subcritical", "critical" or "supercritical".
const char *ats_regime_name(enum ats_regime r);

enum ats_scale { ATS_SCALE_BETA, ATS_SCALE_GAMMA };

struct ats_simplex_params {
    int64_t n;            // tokens, n >= 2
    int64_t d;            // dimension, d >= 2 (enters eta only)
    double rho;           // pairwise cosine, 0 <= rho < 1
    double alpha;         // residual, alpha >= 0
    double q;             // squared token norm, q > 0
    enum ats_scale scale; // which of beta, gamma is given
    double beta;          // inverse temperature >= 0 (scale == ATS_SCALE_BETA)
    double gamma;         // beta = gamma log n, gamma >= 0 (scale == ATS_SCALE_GAMMA)
};

// n = 2, d = 2, rho = 0, alpha = 0, q = 1, beta given as 0.
struct ats_simplex_params ats_simplex_params_default(void);

struct ats_simplex {
    double beta, gamma;   // both, one of them derived from the other
    double gamma_c;       // 1/(1 - rho)
    double kappa;         // gamma (1 - rho)
    enum ats_regime regime; // critical when |kappa - 1| <= 1e-9
    double a_self;        // A_ii
    double b_other;       // A_ij, i != j
    double q_out;         // |x_i'|^2
    double rho_out;       // rho' = <y_i', y_j'>
    double lambda;        // (1 - rho')/(1 - rho)
    double eta;           // ||J||_F^2 / (n d)
    double rho_out_limit; // rho' as n -> infinity at the same gamma, alpha, q
    double eta_limit;     // eta as n, d -> infinity at the same gamma, alpha, q
};

// Evaluates the closed forms in log space: exact to a few ulps for n up to 2^53 and any
// beta. Returns ATS_STATUS_EDOM for a parameter outside its domain (named through the error
// handler) and ATS_STATUS_ERANGE when gamma log n overflows.
int ats_simplex_eval(struct ats_simplex *out, const struct ats_simplex_params *p);

// ----------------------------------------------------------------------------
// Paper 2 (arXiv 2605.08505; THEORY.md section 3): one query q on S^(d-1), n keys i.i.d.
// uniform on S^(d-1), weights w_j ∝ exp(beta <q, k_j>) (the inverse-temperature convention of
// THEORY.md 3.1), output y = sum_j w_j k_j (value matrix = identity).

// Constants of THEORY.md 3.2 for d >= 2: c_d = Gamma(d/2)/(sqrt(pi) Gamma((d-1)/2)),
// kappa_d = c_d/(d-1), beta* = (kappa_d n)^(2/(d-1)). NAN for d < 2 or n <= 0.
double ats_sphere_c(int64_t d);
double ats_sphere_kappa(int64_t d);
double ats_sphere_beta_star(int64_t d, double n);

// I_{nu+1}(x)/I_nu(x) for nu >= 0 (half-integers included) and x >= 0, to a few ulps for x from
// 0 to 1e8 and nu up to 2048 (THEORY.md 3.3); NAN for arguments outside that domain.
double ats_bessel_ratio(double nu, double x);

// A_d(beta) = I_{d/2}(beta)/I_{d/2-1}(beta): the mean resultant length E<q, y> as n -> inf.
double ats_sphere_A(int64_t d, double beta);

// Subcritical predictions (THEORY.md 3.3) at (d, n, beta): the law of large numbers and the
// Gaussian fluctuations, and the finite-beta forms of max weight, effective size and entropy.
struct ats_sphere_sub {
    double A;        // A_d(beta): predicted <y, q>
    double bias;     // beta (1 - A_d(beta)) -> (d-1)/2
    double var_perp; // sigma_perp^2(beta): n Var of one tangential coordinate of y
    double var_par;  // sigma_par^2(beta): n Var of <y, q>
    double w1;       // e^beta / (n M_d(beta))
    double n_eff;    // n M(beta)^2 / M(2 beta)
    double entropy;  // log n + log M_d(beta) - beta A_d(beta)
};
// ATS_STATUS_EDOM for d < 2 or d > 2^20 (a cost cap), n < 1 or beta < 0; a field whose value
// overflows comes back as +inf.
int ats_sphere_subcritical(struct ats_sphere_sub *out, int64_t d, double n, double beta);

// K_d = (d-1) Gamma((2d-4)/(d-1)) log 2 (THEORY.md 3.5): E[1 - w_(1)] ~ K_d beta*/beta.
// +inf at d = 2 (Gamma(0): there the mean decays like (log tau')/tau' instead).
double ats_sphere_K(int64_t d);

// The critical limit (THEORY.md 3.4) at tau' = beta/beta*: E[W_1], E[sum W_k^2] by numerical
// integration (relative accuracy 1e-8), for d >= 2 and tau' > 0; either output may be NULL.
// The cost grows with d (about 1 s at d = 100); values below ~1e-300 come back as 0.
int ats_ppp_expect(double *ew1, double *esw2, int64_t d, double tau_prime);

// Upper incomplete gamma Gamma(s, x) for s > 0, x >= 0 (the PPP sampler's tail, THEORY.md 3.4).
double ats_gamma_upper(double s, double x);

enum ats_sampler { ATS_SAMPLER_EXACT, ATS_SAMPLER_PPP };

struct ats_query_params {
    int64_t d;            // >= 2
    double n;             // keys, an integer >= 1 (exact sampler); ignored by ppp
    double beta;          // >= 0; for ppp this field IS tau' = beta/beta* (> 0, finite) and
                          // beta* is not used
    enum ats_sampler sampler;
    int64_t topk;         // ordered weights to keep per trial, 0..ATS_QUERY_TOPK_MAX
    int64_t chunk;        // keys per chunk of the exact sampler (0: the default 65536)
    uint64_t seed;
    int threads;          // 0: the OpenMP default; < 0 is EDOM
};

#define ATS_QUERY_TOPK_MAX 16

// One trial: the statistics of the weights and of y (THEORY.md 3.1). For ppp, the n -> inf
// critical limit of the same quantities (THEORY.md 3.4); cos_yq is then NAN (it tends to 1:
// radial carries the information).
struct ats_query_trial {
    double w1;        // largest weight
    double sum_w2;    // sum of squared weights
    double entropy;   // -sum w log w (nats)
    double cos_yq;    // <y, q>
    double radial;    // beta* (1 - <y, q>) (exact) or its PPP limit sum W_k Gamma_k^(2/(d-1))/2
    double perp;      // one tangential coordinate of y (exact); PPP: of n^(1/(d-1)) P_perp y
    double top[ATS_QUERY_TOPK_MAX]; // ordered weights w_(1) >= w_(2) >= ...
};

// d = 3, n = 1000, beta = 1, exact sampler, topk = 0, chunk = 0 (65536), seed = 1, threads 0.
struct ats_query_params ats_query_params_default(void);

// Runs trials [t0, t0 + ntrials) into out: (ntrials,). Trial t, chunk c draws from the Philox
// stream (seed, t * 2^32 + c): the results do not depend on threads or on how the trials are
// split across calls. Returns ATS_STATUS_EDOM for parameters outside their domains,
// ATS_STATUS_ERANGE for more than 2^32 trials or chunks per trial, or a ppp point whose tail
// would need more than 2^26 points (large d with small tau'), ATS_STATUS_ENOMEM.
int ats_query_run(struct ats_query_trial *out, const struct ats_query_params *p, int64_t t0,
                  int64_t ntrials);

// ----------------------------------------------------------------------------
// Paper 1 on general tokens (arXiv 2510.05554; THEORY.md 2.1, 2.4-2.8): n tokens x_i in R^d,
// pre-LN y_i = x_i/|x_i|, A = row-softmax(beta Y Y^T), x_i' = sum_j A_ij y_j + alpha x_i.
// The layer is computed in panels of rows through BLAS, one panel per thread: memory
// O(threads panel n + n d) (never an n x n matrix), the token Gram rows reused across a grid
// of beta.

enum ats_tokens {
    ATS_TOKENS_SIMPLEX,        // sqrt(1-rho) e_i + sqrt(rho) e_n (0-based; |x_i| = 1), d >= n+1
    ATS_TOKENS_ALMOST_SIMPLEX, // sqrt(rho) z_0 + sqrt(1-rho) z_i, z_0..z_n i.i.d. N(0, I_d/d)
    ATS_TOKENS_SPHERE,         // uniform on S^(d-1) (rho plays no part)
};

// "simplex", "almost-simplex", "sphere".
const char *ats_tokens_name(enum ats_tokens t);

// Draws n tokens into x: (n, d) row-major, from the Philox stream (seed, stream) (z_0 first,
// then z_1..z_n row by row; the simplex draws nothing). Returns ATS_STATUS_EDOM for n < 1,
// d < 1, rho outside [0, 1), ATS_STATUS_EINVAL for the simplex with d < n + 1.
int ats_tokens_draw(double *x, enum ats_tokens kind, int64_t n, int64_t d, double rho,
                    uint64_t seed, uint64_t stream);

// ATS_STATUS_OK when every row of x: (n, d) has a finite, non-zero norm and finite entries;
// otherwise ATS_STATUS_EDOM with a reason naming the first bad row (0-based).
int ats_tokens_check(const double *x, int64_t n, int64_t d);

// Reads tokens from a 2-D float32 or float64 .npy file (C order): *x (rows, cols) allocated
// with malloc (free() it), *n = rows, *d = cols, every row checked as ats_tokens_check.
// Errors: those of ats_npy_open, ATS_STATUS_EINVAL for another number of dimensions,
// ATS_STATUS_EUNSUP for float16, ATS_STATUS_EDOM for a bad row, ATS_STATUS_ENOMEM.
int ats_tokens_load(double **x, int64_t *n, int64_t *d, const char *path);

enum ats_precision { ATS_PRECISION_F64, ATS_PRECISION_F32 };
enum ats_eta_method { ATS_ETA_NONE, ATS_ETA_HUTCHINSON, ATS_ETA_EXACT };

struct ats_layer_params {
    int64_t n, d;                 // tokens, dimension: n >= 1 (n >= 2 with pairs), d >= 1
    double alpha;                 // residual >= 0
    const double *beta;           // (nbeta,) inverse temperatures, each finite and >= 0
    int64_t nbeta;                // >= 1
    int pairs;                    // 0: row metrics only; 1: also rho_out and lambda (a pass
                                  // over pairs, n^2 d per beta); 2: also lambda_angle (an
                                  // arccos per pair)
    enum ats_eta_method eta;      // backward metric: none, Hutchinson (JVP) or exact (2.5)
    int64_t probes;               // Rademacher probes for Hutchinson, >= 1
    uint64_t seed, stream;        // the probes' Philox stream
    enum ats_precision precision; // f32: tokens rounded to float, float GEMMs; sums in double
    int threads;                  // 0: OpenMP's default; < 0 is EDOM
    int64_t block;                // rows per panel (0: chosen from n, d and probes)
};

// n = d = 2, alpha 0, no beta, pairs 0, eta none, probes 16, seed 1, stream 0, f64,
// threads 0, block 0.
struct ats_layer_params ats_layer_params_default(void);

// Metrics of the layer at one beta. Row means over i of: a_self = A_ii, entropy =
// -sum_j A_ij log A_ij, support = 1/sum_j A_ij^2 (effective number of attended tokens).
// Pair means over i < j: rho_out = <y_i', y_j'>, lambda = (1 - <y_i', y_j'>)/(1 - <y_i, y_j>)
// (THEORY.md 2.8), lambda_angle = arccos<y_i', y_j'> / arccos<y_i, y_j>. NAN when not asked.
// eta = ||J||_F^2/(n d): exact, or the Hutchinson mean over probes with eta_var the sample
// variance of the per-probe values |JV|^2/(n d) (NAN for one probe; 0 for exact).
struct ats_layer_metrics {
    double a_self, entropy, support;
    double rho_out, lambda, lambda_angle;
    double eta, eta_var;
};

// Runs the layer on tokens x: (n, d) for every beta of p into out: (nbeta,). The results
// depend on x, p and the panel size, never on the thread count (bit for bit). BLAS is set to
// one thread during the call (restored after), the work spread over OpenMP threads instead.
// Errors: ATS_STATUS_EDOM (a parameter outside its domain; a bad row of x; with pairs, two
// tokens parallel to working precision, 1 - cosine <= 8 (d + 4) eps, for which lambda is
// undefined), ATS_STATUS_ENOMEM (the workspace, whose
// size the reason states, could not be allocated), each with a reason.
int ats_layer_metrics(struct ats_layer_metrics *out, const double *x,
                      const struct ats_layer_params *p);

// ----------------------------------------------------------------------------
// Production attention-scaling policies (THEORY.md section 5). A policy multiplies the
// standard logit <q,k>/sqrt(d_h) by m, on all head dimensions or only on the rotary (or the
// non-rotary) ones, and m is fixed by the configuration (static), depends on the query
// position p (row) or on the current total length n (length).

enum ats_policy_scope {
    ATS_POLICY_SCOPE_ALL,       // every head dimension
    ATS_POLICY_SCOPE_ROTARY,    // rotary dimensions only (cos/sin amplitude a: m = a^2)
    ATS_POLICY_SCOPE_NONROTARY, // the pass-through dimensions only
};

enum ats_policy_dependence {
    ATS_POLICY_STATIC, // the same at every position
    ATS_POLICY_ROW,    // depends on the 0-based query position p
    ATS_POLICY_LENGTH, // depends on the current total length n
};

// "all", "rotary", "nonrotary"; "static", "row", "length".
const char *ats_policy_scope_name(enum ats_policy_scope s);
const char *ats_policy_dependence_name(enum ats_policy_dependence d);

// Policy parameters. NAN (or, for finetuned, -1) selects each policy's shipped default, so
// one struct serves every policy. Names follow the CLI options of DESIGN.md.
struct ats_policy_params {
    double train_len;        // --train-len L: original / training / normalising length
    double factor;           // --factor S: YaRN, GPT-OSS, LongRoPE, DeepSeek scale factor
    double max_len;          // --max-len M: max_position_embeddings / deployment length (YaRN
                             // and LongRoPE use s = M/L when --factor is absent)
    double mscale;           // --mscale C (YaRN, DeepSeek)
    double mscale_all_dim;   // --mscale-all-dim C (YaRN, DeepSeek)
    double attention_factor; // --attention-factor A (YaRN, DeepSeek)
    int finetuned;           // --finetuned: dynamic YaRN starts at s = M/L (0, 1, or -1)
    double floor_scale;      // --floor-scale F (Llama 4; Inkling's N_floor)
    double attn_scale;       // --attn-scale A (Llama 4; Inkling's alpha)
    double beta_slope;       // --beta-slope B (Mistral)
    double temperature_len;  // --temperature-len T (Grok-2)
    double slope;            // --slope S (SSMax)
    double d;                // --d D (sphere-critical)
};

// Every field NAN, finetuned -1.
struct ats_policy_params ats_policy_params_default(void);

struct ats_policy_info {
    const char *name;    // the CLI name ("qwen-logn")
    const char *family;  // model family it ships in ("Qwen-7B/14B (logn_attn)")
    const char *source;  // where the formula is taken from
    const char *formula; // one line of text
    enum ats_policy_scope scope;
    enum ats_policy_dependence dependence;
};

// The registry: ids 0 .. ats_policy_count() - 1, in DESIGN.md's order.
int64_t ats_policy_count(void);
const struct ats_policy_info *ats_policy_get(int64_t id); // NULL outside the range
int64_t ats_policy_find(const char *name);                // -1 when unknown

struct ats_policy_value {
    double multiplier; // m on the dimensions of its scope
    double m_rot;      // resulting multiplier on rotary dimensions
    double m_pass;     // resulting multiplier on non-rotary dimensions
    enum ats_policy_scope scope;
    enum ats_policy_dependence dependence;
    int extrapolated;  // 1 when evaluated beyond the source's reference table (Qwen p > 32766)
};

// Multiplier of policy id for the query at 0-based position pos in a sequence of total
// length n (pos < n; row policies use pos, length policies n); p must not be NULL (use
// ats_policy_params_default() for the shipped defaults). Returns ATS_STATUS_EINVAL for
// an unknown id, ATS_STATUS_EDOM for pos < 0, n < pos + 1 or a parameter outside the
// policy's domain (named through the error handler).
int ats_policy_eval(struct ats_policy_value *out, int64_t id, const struct ats_policy_params *p,
                    int64_t pos, int64_t n);

// Composes policies multiplicatively per scope: acc->m_rot *= v->m_rot, acc->m_pass *=
// v->m_pass; start from ats_policy_identity(). The scope and multiplier are read off the
// resulting pair: all (m_rot == m_pass), rotary (m_pass == 1), nonrotary (m_rot == 1), and
// otherwise no single multiplier applies (multiplier NAN). The dependence is the non-static
// one, and row when a row and a length policy meet (the value then depends on the position);
// extrapolated stays set once any part sets it.
struct ats_policy_value ats_policy_identity(void);
void ats_policy_combine(struct ats_policy_value *acc, const struct ats_policy_value *v);

// ----------------------------------------------------------------------------
// The gap-counting diagnostic of one row of attention logits (THEORY.md section 4).
// Gaps D_j = s_max - s_j sorted ascending, D_(1) = 0 the maximum itself.

struct ats_row_stats {
    int64_t n;           // logits in the row
    double beta_hat;     // accumulation scale max_{k >= 2} log k / D_(k); +inf on a tie at the
                         // maximum; NAN for n < 2
    double beta_hat_k10; // the same over k >= 10 (robust); NAN for n < 10
    double beta_half;    // root of sum_{j != argmax} exp(-beta D_j) = 1 (max weight 1/2);
                         // 0 when n = 2, NAN when n = 1, +inf when another logit ties the
                         // maximum
    double entropy;      // of the softmax at the applied beta (nats)
    double w1;           // largest weight at the applied beta
    double beta;         // the applied beta
    double ratio;        // beta / beta_hat_k10 (NAN when beta_hat_k10 is)
    int regime;          // enum ats_regime by ratio and window (THEORY.md 4.2), -1 when the
                         // ratio is NAN (too few logits)
};

// Doubles of workspace ats_row_stats needs for a row of n logits.
int64_t ats_row_stats_workspace(int64_t n);

// Statistics of the row s: (n,) at inverse temperature beta >= 0 with regime window w > 1
// (subcritical below ratio 1/w, supercritical above w). ws: ats_row_stats_workspace(n)
// doubles. s must be finite (the caller names a bad row and column). Returns ATS_STATUS_EDOM
// for n < 1, a non-finite logit, beta < 0 or w <= 1.
int ats_row_stats(struct ats_row_stats *out, const double *s, int64_t n, double beta, double w,
                  double *ws);

// The same row at another beta: only entropy, w1, beta, ratio and regime change. s and ws as
// left by ats_row_stats (the sorted gaps are kept in ws).
int ats_row_stats_rebeta(struct ats_row_stats *out, int64_t n, double beta, double w,
                         const double *ws);

// A block of rows in parallel (OpenMP, threads > 0 or 0 for the default): row i of s: (nrows,
// cols) row-major sees its first lens[i] logits (lens NULL: all cols) at inverse temperatures
// beta[c] * mult[i] (mult NULL: 1) and windows window[c], c < ncombo; out: (nrows, ncombo).
// Results do not depend on threads. ws: ats_row_block_workspace(cols, threads) doubles.
// A row with lens[i] = 0 (every key masked) gets n = 0, NAN statistics and regime -1.
// A non-finite logit returns ATS_STATUS_EDOM with the first such (row, column) of the block
// in *bad_row, *bad_col (both -1 otherwise).
int64_t ats_row_block_workspace(int64_t cols, int threads);
int ats_row_block(struct ats_row_stats *out, const double *s, int64_t nrows, int64_t cols,
                  const int64_t *lens, const double *mult, const double *beta,
                  const double *window, int64_t ncombo, int threads, double *ws,
                  int64_t *bad_row, int64_t *bad_col);

// Logits of queries against keys: s = scale q k^T through CBLAS (scale 1/sqrt(d) is the
// usual). s: (nq, nk) out; q: (nq, d); k: (nk, d), all row-major.
void ats_scores_qk(double *s, const double *q, const double *k, int64_t nq, int64_t nk,
                   int64_t d, double scale);

// Least-squares fits of the accumulation scale against n (THEORY.md 4.4) over length buckets
// (the median beta_hat_k10 of the rows in each bucket).
struct ats_fit {
    double slope, intercept; // of the fit's own line (see below)
    double r2;               // coefficient of determination on the fit's own scale
    double resid_sd;         // residual standard deviation on the fit's own scale
    double log_rmse;         // RMS error of log beta_hat (comparable across laws); NAN when a
                             // prediction is <= 0
};

struct ats_law_fits {
    int64_t buckets;     // length buckets with a finite median
    double n_min, n_max; // range of the bucket lengths (medians of each bucket's lengths)
    double n_largest;    // the largest length of any row fitted
    struct ats_fit log_law; // beta_hat = slope log n + intercept
    struct ats_fit polylog; // log beta_hat = xi log log n + c  (slope = xi)
    struct ats_fit power;   // log beta_hat = e log n + c       (slope = e = 2/alpha)
    const char *best;       // "log", "polylog" or "power": the smallest log_rmse
};

// beta_hat at length n under law ("log", "polylog" or "power") of f (THEORY.md 4.4).
double ats_law_predict(const struct ats_law_fits *f, const char *law, double n);

// Buckets: lengths within a factor 2^(1/4) share one (exact lengths when few distinct).
// Fits need at least 3 buckets with a finite median beta_hat and n >= 3 (ATS_STATUS_EDOM
// otherwise, with the reason). bucket_n, bucket_beta: caller arrays of count entries that
// receive the bucket medians (may be NULL).
int ats_fit_laws(struct ats_law_fits *out, double *bucket_n, double *bucket_beta,
                 const double *n, const double *beta_hat, int64_t count);

// THEORY.md 4.5: for policy id at the last row of each bucket length n_b, the least-squares
// slope of log(beta m(n_b)/beta_hat(n_b)) against log n_b (0 keeps rows critical) and the
// ratio beta m / beta_hat at the largest length fitted (fits->n_largest), with beta_hat(n)
// from the best fit. m is the policy's multiplier on its scope: for a rotary-only policy that
// is not the factor on the whole logit (the caller decides whether to rank it).
struct ats_policy_rank {
    int64_t id;
    double slope;
    double ratio_at_max;
};

int ats_rank_policy(struct ats_policy_rank *out, int64_t id, const struct ats_policy_params *p,
                    const struct ats_law_fits *fits, const double *bucket_n, int64_t nb,
                    double beta);

// ----------------------------------------------------------------------------
// Arrays from files: NumPy .npy (version 1-3, C order, little- or big-endian float16,
// float32, float64) and safetensors (F16, BF16, F32, F64, one named tensor). The file is read
// with pread a block of rows at a time (never mapped), so arrays larger than memory work and
// a file that shrinks while it is read is an error, not a crash.

// ATS_DTYPE_BOOL: one byte per element, 0 false, anything else true (read as 0 or 1); NumPy's
// bool ('|b1'), for masks.
enum ats_dtype { ATS_DTYPE_F16, ATS_DTYPE_BF16, ATS_DTYPE_F32, ATS_DTYPE_F64, ATS_DTYPE_BOOL };

// "float16", "bfloat16", "float32", "float64", "bool".
const char *ats_dtype_name(enum ats_dtype t);

struct ats_array;

// Opens and validates path (header, dtype, shape, size against the file length). Errors:
// ATS_STATUS_EIO (cannot open or read; not a regular file: FIFOs, directories and devices are
// refused without blocking), ATS_STATUS_EINVAL (malformed header, Fortran order,
// object arrays, a size that does not match the file, bytes after the data),
// ATS_STATUS_EUNSUP (another dtype, a structured dtype, a format version other than 1-3, more
// than 64 dimensions), ATS_STATUS_ENOMEM, each with a reason through the error handler. A
// scalar (shape ()) is 1 row of 1 column.
int ats_npy_open(struct ats_array **a, const char *path);

// As ats_npy_open, also accepting NumPy bool arrays (ATS_DTYPE_BOOL): masks.
int ats_npy_open_mask(struct ats_array **a, const char *path);

// Opens tensor name of a safetensors file: the errors of ats_npy_open, a data buffer the
// tensors do not fill exactly, and ATS_STATUS_EINVAL naming the tensors present when name is
// not one of them.
int ats_safetensors_open(struct ats_array **a, const char *path, const char *name);

void ats_array_close(struct ats_array *a);

int ats_array_ndim(const struct ats_array *a);
int64_t ats_array_dim(const struct ats_array *a, int axis); // 1 for axis >= ndim; axis >= 0
enum ats_dtype ats_array_dtype(const struct ats_array *a);

// Rows of the array seen as 2-D (rows = product of all but the last dimension, cols = the last
// dimension; a 1-D array is one row): rows [row0, row0 + nrows) converted to double into
// out: (nrows, cols) row-major. Values are converted exactly (NaN and Inf pass through: the
// caller decides). Returns ATS_STATUS_EDOM for a range outside the array, ATS_STATUS_EIO
// ("FILE changed while being read") when the file no longer holds the rows. Safe to call
// from several threads on one array.
int64_t ats_array_rows(const struct ats_array *a);
int64_t ats_array_cols(const struct ats_array *a);
int ats_array_read_rows(double *out, const struct ats_array *a, int64_t row0, int64_t nrows);

// Writes data: (rows, cols) row-major doubles as a C-order .npy of dtype t (float16 rounds to
// nearest even); ndim 1 writes shape (cols,) with rows == 1, through an atomic file (below).
// Returns ATS_STATUS_EIO on a write failure (no file written), ATS_STATUS_EUNSUP for bfloat16
// (not a NumPy dtype) and ATS_STATUS_EINVAL for another ndim.
int ats_npy_write(const char *path, const double *data, int64_t rows, int64_t cols, int ndim,
                  enum ats_dtype t);

// ----------------------------------------------------------------------------
// Output files that appear whole or not at all: written under a temporary name beside the
// target (".NAME.XXXXXX"), every write, the flush, fsync and close checked, renamed over the
// target by ats_atomic_commit; on failure or ats_atomic_abort the temporary is removed and an
// earlier file of that name is untouched. A target that exists and is not a regular file
// (/dev/stdout, a FIFO) is written in place with the same checks. Every file the library and
// the CLI write goes through this.
struct ats_atomic;

// Errors: ATS_STATUS_EIO (the directory is not writable, the target is a directory),
// ATS_STATUS_ENOMEM.
int ats_atomic_open(struct ats_atomic **a, const char *path);
FILE *ats_atomic_stream(struct ats_atomic *a);
// Frees a. ATS_STATUS_EIO naming the file when a write, the flush, fsync, close or rename failed.
int ats_atomic_commit(struct ats_atomic *a);
void ats_atomic_abort(struct ats_atomic *a); // frees a; NULL is fine
// Removes every temporary not yet committed: async-signal-safe, for a front-end's SIGINT,
// SIGTERM and SIGHUP handlers (and exit paths).
void ats_atomic_cleanup(void);

// 1 when paths a and b name the same file (the same device and inode, or the same path once
// symbolic links of the directories are resolved), else 0: an output must not be an input.
int ats_same_file(const char *a, const char *b);

// ----------------------------------------------------------------------------
// Figures through cairo: PNG, SVG or PDF chosen by the file name's extension (.png .svg
// .pdf). Always write the data as CSV beside a figure: the figure is for eyes, the CSV for
// re-plotting.

struct ats_plot_axes {
    const char *title;    // NULL: none
    const char *xlabel, *ylabel;
    int xlog, ylog;       // 1: logarithmic axis (data <= 0 is left out)
    double xmin, xmax;    // axis range; NAN: from the data
    double ymin, ymax;
};

// Default axes: no labels, linear, ranges from the data.
struct ats_plot_axes ats_plot_axes_default(void);

// How a series is drawn (its dashed field): a line, or points without a line.
enum ats_plot_style {
    ATS_PLOT_STYLE_SOLID = 0,  // solid line
    ATS_PLOT_STYLE_DASHED = 1, // dashed line
    ATS_PLOT_STYLE_DOTS,       // points only: small dots (radius 1.5 device units)
    ATS_PLOT_STYLE_MARKERS     // points only: filled circles of radius 4 with a white rim
};

struct ats_plot_series {
    const double *x, *y;  // (n,) each; a non-finite y breaks the line
    const double *yerr;   // (n,) half-lengths of error bars, or NULL
    int64_t n;
    const char *label;    // legend entry; NULL: not in the legend
    int dashed;           // enum ats_plot_style: 0 solid, 1 dashed line, or points only
    int color;            // index into the colour cycle; -1: black
};

// ATS_STATUS_OK when path ends in .png, .svg or .pdf, else ATS_STATUS_EINVAL (checks a
// figure's name before any work is done).
int ats_plot_check_path(const char *path);

// Line plot of ns series. A log axis gets one tick per decade; when that gives fewer than two
// ticks, 1, 2 and 5 times each power of ten; when that gives fewer than three, every 1..9
// times. Returns ATS_STATUS_EINVAL (unknown extension, no data, n < 0), ATS_STATUS_EDOM (an
// empty or non-finite axis range) or ATS_STATUS_EIO (cairo could not write the file).
int ats_plot_lines(const char *path, const struct ats_plot_axes *axes,
                   const struct ats_plot_series *series, int64_t ns);

// Colour maps of a heat map.
enum ats_plot_cmap {
    ATS_PLOT_CMAP_VIRIDIS = 0, // ats_plot_colormap
    ATS_PLOT_CMAP_DIVERGING    // ats_plot_colormap_diverging: blue, white at the middle, red
};

struct ats_heatmap {
    const double *z;      // (ny, nx) row-major: z[iy * nx + ix]; non-finite cells are grey
    const double *x;      // (nx,) strictly increasing cell centres
    const double *y;      // (ny,) strictly increasing cell centres
    int64_t nx, ny;
    double zmin, zmax;    // colour range; NAN: from the data
    const char *zlabel;   // colour bar label
    // Optional; zero (or NULL) keeps the plain map above.
    int cmap;                        // enum ats_plot_cmap
    const char *const *xcats;        // (nx,) labels at the column centres instead of numeric
    const char *const *ycats;        // (ny,) ticks, or NULL (thinned to every k-th from the
                                     // left / the top when they would overlap). Row labels
                                     // widen the left margin up to 300 units; beyond that
                                     // what all share at the start and then at the end (from
                                     // a separator such as '.') shows as "...", so
                                     // "model.layers.12.self_attn" keeps "...layers.12..."
    const double *zticks;            // (nzticks,) colour bar ticks instead of linear ones,
    const char *const *zticklabels;  // (nzticks,) with their labels (NULL: zticks is unused)
    int64_t nzticks;
    int band;                        // 1: [band_lo, band_hi] bracketed on the colour bar, and
    double band_lo, band_hi;         // a white dot ringed in black on every finite cell
                                     // outside it
};

// Heat map with a colour bar, and overlay curves (e.g. the dashed critical line) drawn on
// top, clipped to the plot area. Axes ranges default to the cells' extent. Errors as
// ats_plot_lines, plus ATS_STATUS_EINVAL for non-increasing x or y, band_lo > band_hi (or
// NaN) with band set, nzticks < 0.
int ats_plot_heatmap(const char *path, const struct ats_plot_axes *axes,
                     const struct ats_heatmap *map, const struct ats_plot_series *overlay,
                     int64_t noverlay);

// The colour bar's colour for t in [0, 1] (viridis), as 8-bit RGB.
void ats_plot_colormap(unsigned char rgb[3], double t);

// The diverging map's colour for t in [0, 1] (ColorBrewer RdBu, reversed as matplotlib's
// RdBu_r: dark blue at 0, near-white (247, 247, 247) at 0.5, dark red at 1), as 8-bit RGB.
void ats_plot_colormap_diverging(unsigned char rgb[3], double t);

// ----------------------------------------------------------------------------
// In-memory arrays: an ats_array over a caller's buffer, read like a file's (ats_array_rows,
// ats_array_read_rows, ...). data: the elements in C order, native byte order, dtype t, shape
// (ndim,) with 0 <= ndim <= 64 and every entry >= 0; the buffer is not copied and must outlive
// the array (ats_array_close frees only the handle). Errors: ATS_STATUS_EINVAL (a bad shape or
// an element count that overflows), ATS_STATUS_ENOMEM.
int ats_array_wrap(struct ats_array **a, const void *data, enum ats_dtype t, const int64_t *shape,
                   int ndim);

// ----------------------------------------------------------------------------
// Figures as data: what a run draws (a --plot, or one figure of `reproduce`), computed by the
// library, drawn by ats_figure_draw (src/plot). rows: the table written as CSV beside the
// figure (reproduce), or NULL for a --plot (its records are the run's own).

struct ats_figure {
    const char *name;                     // reproduce: files NAME.png and NAME.csv; else NULL
    int heatmap;                          // 1: map with series as overlay; 0: line plot
    struct ats_plot_axes axes;
    struct ats_heatmap map;               // heatmap only
    const struct ats_plot_series *series; // (nseries,)
    int64_t nseries;
    const struct ats_record *rows;        // (nrows,) the figure's table
    int64_t nrows;
};

// Draws f to path (png, svg or pdf by extension): the errors of ats_plot_lines and
// ats_plot_heatmap.
int ats_figure_draw(const struct ats_figure *f, const char *path);

// A --plot: the figure drawn into path (.png, .svg or .pdf) and, when it has a table (rows),
// the table as CSV beside it (path with its extension replaced by .csv).
int ats_figure_plot(const struct ats_figure *f, const char *path);

// Writes f's table as CSV (header from the first row's keys) to DIR/NAME.csv and draws it to
// DIR/NAME.png. ATS_STATUS_EIO (with the file named) when a file cannot be written.
int ats_figure_save(const struct ats_figure *f, const char *dir);

// ----------------------------------------------------------------------------
// Experiments: every command of the CLI is a library run that every front-end (CLI, Python,
// MPI) drives the same way (init / step / finish):
//
//     const struct ats_command *cmd = ats_command_find("simplex");
//     struct ats_simplex_spec spec;
//     cmd->spec_default(&spec);             // every option absent
//     double n = 1024, rho = 0.5, g[3] = {1, 2, 3};
//     spec.n = (struct ats_values){&n, 1};  // not owned by the spec; the run copies it
//     spec.rho = (struct ats_values){&rho, 1};
//     spec.gamma = (struct ats_values){g, 3};
//     struct ats_run *run;
//     int rc = cmd->run_alloc(&run, &spec); // ATS_STATUS_EARG: a usage error (the reason
//                                           // through ats_last_error())
//     struct ats_record rec;
//     while ((rc = ats_run_next(run, &rec)) == ATS_STATUS_OK && rec.count > 0)
//         ats_writer_record(w, &rec);       // {"n":1024,"d":1024,"rho":0.5,...}
//     ats_run_free(run);
//
// Each command describes its options in a table (struct ats_option): the CLI builds getopt
// and --help from it, Python its keyword arguments (dashes as underscores). A spec field
// targeted by an option is "absent" as spec_default leaves it: an empty value list, a NULL
// text, a choice of -1, a NAN number, a flag of 0; the run applies the documented default.
// Values are checked against the option's domain by run_alloc as well as by the CLI's parser.

struct ats_run;

// The next record into *rec: ATS_STATUS_OK with rec->count > 0, or ATS_STATUS_OK with
// rec->count == 0 once the run is over; otherwise the failure (reason through
// ats_last_error(); ATS_STATUS_EARG for a usage error found late, e.g. a parameter a closed
// form refuses). A run that failed stays failed. rec's strings stay valid until the next call.
int ats_run_next(struct ats_run *run, struct ats_record *rec);

// Work done and the total, in the run's own units (grid points, trials, rows), for progress.
void ats_run_progress(const struct ats_run *run, double *done, double *total);

// The next note the run has for the user (a remark, never an error), or NULL: the library
// never prints, front-ends show these on stderr.
const char *ats_run_note(struct ats_run *run);

// CSV columns to declare before the first record (records of several kinds), or NULL.
const char *const *ats_run_csv_columns(const struct ats_run *run, int64_t *count);

// After the last record: the figure the spec's plot asked for, or NULL.
const struct ats_figure *ats_run_figure(const struct ats_run *run);

// Figures of `reproduce` one at a time: *fig is the next figure with its table, NULL at the
// end (valid until the next call). For other runs ATS_STATUS_EINVAL.
int ats_run_next_figure(struct ats_run *run, const struct ats_figure **fig);

// Asks a run working in another thread (or from a signal handler) to stop: its current or
// next step returns ATS_STATUS_ECANCEL soon (between trials, chunks or blocks of rows), and
// every later one too. Safe to call at any time from any thread.
void ats_run_cancel(struct ats_run *run);

void ats_run_free(struct ats_run *run); // NULL is fine

enum ats_option_kind {
    ATS_OPTION_VALUES, // a value list or range: struct ats_values in the spec
    ATS_OPTION_NUMBER, // one number: double in the spec (NAN absent)
    ATS_OPTION_CHOICE, // one of choices: int index in the spec (-1 absent)
    ATS_OPTION_FLAG,   // int in the spec, 1 when given
    ATS_OPTION_TEXT,   // a string (file name, list of names): const char * in the spec
    ATS_OPTION_ARRAY,  // an in-memory array (Python): const struct ats_array * in the spec
};

struct ats_option {
    const char *name;           // "tau-prime" (Python: tau_prime)
    enum ats_option_kind kind;
    size_t offset;              // of the target field in the command's spec
    struct ats_domain domain;   // VALUES, NUMBER
    const char *const *choices; // CHOICE: names, NULL-terminated
    const char *metavar;        // "N", "FILE" (NULL for flags and arrays)
    const char *help;           // what it is, its range and its default; lines end in '\n'
                                // and continue after the first
    const char *section;        // help heading it starts (NULL: under the previous one)
};

struct ats_command {
    const char *name;           // "simplex"
    const char *usage;          // the usage lines, "attnscale simplex --n N ..."
    const char *doc;            // what it computes (paragraphs)
    const char *records;        // the record keys, their meaning; an example
    const struct ats_option *options;
    int64_t noptions;
    size_t spec_size;
    void (*spec_default)(void *spec);
    int (*run_alloc)(struct ats_run **run, const void *spec);
    int operand;                // 1: one positional operand, the spec's `target` text
};

// The commands in DESIGN.md's order: simplex, phase, query, policies, diagnose, reproduce.
int64_t ats_command_count(void);
const struct ats_command *ats_command_get(int64_t i); // NULL outside the range
const struct ats_command *ats_command_find(const char *name); // NULL when unknown
// The option of cmd named name (dashes or underscores), or NULL.
const struct ats_option *ats_command_option(const struct ats_command *cmd, const char *name);

// The value of TEXT option name in spec (a file name, a list of names), or NULL when absent
// or not a TEXT option.
const char *ats_command_text(const struct ats_command *cmd, const void *spec, const char *name);

// ATS_STATUS_EARG, naming both, when path (the output of option opt, e.g. "--output") is the
// same file as an input of spec (--scores, --q, --k, --mask, --safetensors, --tokens) or as
// its --plot. Every run checks its --plot so; front-ends check the files they write.
int ats_command_check_output(const struct ats_command *cmd, const void *spec, const char *opt,
                             const char *path);

// Specs. Value lists are grids: one record per combination, the last option listed fastest
// as in each command's records. Common to the random experiments: seed (NUMBER, an integer in
// [0, 2^53], default 1) and threads (NUMBER, an integer in [1, 4096], absent: OpenMP's default);
// results never depend on threads.

// `simplex`: the closed forms of THEORY.md 2.2-2.6 over (n, d, rho, alpha, q, gamma | beta).
struct ats_simplex_spec {
    struct ats_values n, d, rho, gamma, beta, alpha, q;
    int metric;       // what plot draws: lambda, rho_out, a_self, eta (-1: lambda)
    const char *plot; // figure file (png/svg/pdf) or NULL
    double seed, threads; // accepted, no effect
};

// `phase`: the self-attention layer metrics over (n, d, rho, alpha, trials, probes, gamma |
// beta) for a token configuration (THEORY.md 2.1, 2.4-2.8).
struct ats_phase_spec {
    struct ats_values n, d, rho, gamma, beta, alpha, trials, probes;
    const char *metric;                // comma list of metric names (NULL: lambda)
    int config;                        // simplex, almost-simplex, sphere, file (-1: almost-simplex,
                                       // or file with tokens)
    const char *tokens;                // (n, d) .npy file, or NULL
    const struct ats_array *tokens_array; // (n, d) in memory, or NULL
    int eta_method;                    // hutchinson, exact (-1: hutchinson)
    int precision;                     // f64, f32 (-1: f64)
    double block;                      // rows per panel (NAN: automatic)
    const char *plot;
    double seed, threads;
};

// `query`: one query against n keys on the sphere (THEORY.md 3), over (d, n, beta | tau', trials).
struct ats_query_spec {
    struct ats_values d, n, beta, tau_prime, trials;
    int sampler;      // exact, ppp (-1: exact)
    int theory;       // flag: the *_theory columns
    double seed, threads;
};

// `policies`: policy multipliers over (n, pos) (THEORY.md 5).
struct ats_policies_spec {
    const char *policy;   // comma list or "all" (NULL: all)
    struct ats_values n, pos;
    int list, combine;    // flags
    const char *plot;
    struct ats_policy_params params; // NAN (finetuned -1): shipped defaults
    double seed, threads;
};

// One input of a diagnose over several layers (attnscale.torch: one attention call each).
// Leading axes of scores / q are heads (flattened in C order); k may have fewer heads
// (grouped-query attention: query head h uses key head h / (heads / kv_heads)).
struct ats_diagnose_layer {
    const char *name;               // the "layer" of its records
    const struct ats_array *scores; // (..., rows, n) logits, or NULL with q and k
    const struct ats_array *q, *k;  // (..., rows, d) and (..., n, d)
    const struct ats_array *mask;   // broadcastable to (..., rows, n), or NULL
    double scale;                   // logits = scale q.k; NAN: 1/sqrt(d)
    int masked_logits;              // logits at the mask thresholds are keys not seen
    int causal;                     // row p sees keys 0..p only (as the spec's causal)
};

// `diagnose`: the gap-counting diagnostic on rows of logits (THEORY.md 4).
struct ats_diagnose_spec {
    const char *scores, *q, *k, *safetensors, *tensor, *mask; // files
    const struct ats_array *scores_array, *q_array, *k_array, *mask_array; // in memory
    int causal, masked_logits;
    struct ats_values beta, window;
    struct ats_values rows;        // 0-based row indices of every head (count 0: all)
    double scale;                  // q.k multiplier (NAN: 1/sqrt(d))
    double target_len;             // THEORY.md 4.6 at this length (NAN: none)
    const char *policy;            // a policy name or "all", or NULL
    const char *plot;
    struct ats_policy_params params;
    const struct ats_diagnose_layer *layers; // (nlayers,) instead of the inputs above
    int64_t nlayers;
    double seed, threads;
};

// The layer x head heat map of the median ratio beta/beta_hat_k10 (`diagnose --plot` with
// several heads; attnscale.torch.plot_heads): ratio (nlayers, nheads) row-major, NAN where a
// head has no finite ratio; layers: row labels (NULL: layer indices). A diverging colour map
// centred on 1 (log scale), the critical window [1/window, window] marked. Writes path (.png,
// .svg or .pdf) and beside it the table as CSV (path with its extension replaced by .csv:
// layer, head, ratio_median). Errors: ATS_STATUS_EINVAL (extension, nlayers or nheads < 1,
// more than 65536 cells, window not finite and > 1; nothing written), ATS_STATUS_ENOMEM,
// ATS_STATUS_EIO.
int ats_diagnose_plot_heads(const char *path, const char *const *layers, int64_t nlayers,
                            int64_t nheads, const double *ratio, double window);

// `reproduce`: the papers' figures (THEORY.md 2.11, 3.7); its run yields figures
// (ats_run_next_figure), not records.
struct ats_reproduce_spec {
    const char *target;   // paper1, paper2 or all (the operand)
    int quick;
    const char *outdir;   // where front-ends save the figures (NULL: out); the run ignores it
    double seed, threads;
};

#ifdef __cplusplus
}
#endif

#endif // ATTNSCALE_H
