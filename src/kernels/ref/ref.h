/*
 * ref.h: long-double reference implementations of the paper-1 attention layer
 * (arXiv 2510.05554; THEORY.md 2.1, 2.4, 2.5). Internal to libattnscale, never installed.
 *
 * These are the test oracle for the fast kernels and for the closed forms of src/theory/:
 * obvious loops in long double, no BLAS, no threads, no allocation (the caller passes every
 * scratch buffer; the *_ws_len functions give its length in long doubles). They are written to
 * stay accurate where long double is only double (Apple arm64, MSVC): norms are scaled, the
 * softmax subtracts the row max, and the Jacobian-block sums use centred vectors where that is
 * cheap (see layer_ref.c).
 *
 * Shapes: x, xout, y are (n, d) row-major; G is (n, n) row-major; r and softmax rows are (n).
 * Requirements checked with ATS_ASSERT (programmer contracts): non-NULL pointers, n >= 1,
 * d >= 1, row indices in [0, n), workspaces of the documented length.
 * Bad numbers return a status (or NaN from the functions that return a value), reported
 * through ats_error: a row of x with zero or non-finite norm, beta < 0 or not finite,
 * alpha not finite.
 */
#ifndef ATS_KERNELS_REF_H
#define ATS_KERNELS_REF_H

#include <stdint.h>

// ----------------------------------------------------------------------------
// Building blocks

// Pre-layer-norm (THEORY.md 2.1): r_i = |x_i| (Euclidean, computed with scaling so it neither
// overflows nor underflows), y_i = x_i / r_i.
// y: (n, d) out; r: (n) out; x: (n, d).
// Returns ATS_STATUS_OK, or ATS_STATUS_EDOM if a row has zero or non-finite norm (y and r are
// then unspecified).
int ats_ref_normalize(long double *y, long double *r, const long double *x, int64_t n, int64_t d);

// Gram matrix of unit rows: G_ij = <y_i, y_j> (both triangles filled; G_ii is computed, not
// set to 1). Costs n(n+1)/2 dot products of length d. The dot products are the same loop the
// forward pass uses for its scores, so a softmax of beta G_i. equals the forward pass's
// attention row bit for bit.
// G: (n, n) out; y: (n, d), usually from ats_ref_normalize.
void ats_ref_gram(long double *G, const long double *y, int64_t n, int64_t d);

// Stable softmax at inverse temperature beta >= 0 (THEORY.md 1):
// p_j = exp(beta (s_j - s_max)) / sum_l exp(beta (s_l - s_max)).
// p: (n) out; s: (n). p may alias s.
void ats_ref_softmax(long double *p, const long double *s, int64_t n, long double beta);

// ----------------------------------------------------------------------------
// Forward pass (THEORY.md 2.1): y_i = x_i/|x_i|, A = row-softmax(beta Y Y^T) (j = i included),
// x_i' = sum_j A_ij y_j + alpha x_i.

// Workspace length (long doubles) of ats_ref_layer_forward, ats_ref_layer_rows and
// ats_ref_attn_row: n d + 2 n.
int64_t ats_ref_layer_ws_len(int64_t n, int64_t d);

// The whole layer. xout: (n, d) out; x: (n, d); xout must not alias x.
// ws: ats_ref_layer_ws_len(n, d) long doubles. Cost 2 n^2 d.
// Returns ATS_STATUS_OK or ATS_STATUS_EDOM (zero/non-finite row norm, bad beta or alpha).
int ats_ref_layer_forward(long double *xout, const long double *x, int64_t n, int64_t d,
                          long double beta, long double alpha, long double *ws);

// Only the output rows listed: xout row t is x'_{rows[t]}. Bit-identical to the same rows of
// ats_ref_layer_forward. Cost n d (normalise every token) + 2 n d per listed row.
// xout: (nrows, d) out; x: (n, d); rows: (nrows), each in [0, n), repeats allowed (NULL with
// nrows == n: every row, which is ats_ref_layer_forward).
// ws: ats_ref_layer_ws_len(n, d) long doubles. Returns as ats_ref_layer_forward.
int ats_ref_layer_rows(long double *xout, const long double *x, const int64_t *rows, int64_t nrows,
                       int64_t n, int64_t d, long double beta, long double alpha, long double *ws);

// The attention row A_{i,.} (the softmax weights of query i over all n keys, self included).
// p: (n) out; x: (n, d); ws: ats_ref_layer_ws_len(n, d) long doubles.
// Returns ATS_STATUS_OK or ATS_STATUS_EDOM.
int ats_ref_attn_row(long double *p, const long double *x, int64_t n, int64_t d, int64_t i,
                     long double beta, long double *ws);

// ----------------------------------------------------------------------------
// Backward metric eta = ||J||_F^2 / (n d), J = dX'/dX the full (nd) x (nd) Jacobian
// (THEORY.md 2.4), two independent ways.

// Default relative finite-difference step for ats_ref_eta_fd: LDBL_EPSILON^(1/5) / (1 + beta)
// (1.6e-4/(1+beta) for x87 long double, 7.4e-4/(1+beta) where long double is double).
long double ats_ref_eta_fd_h_default(long double beta);

// Workspace length (long doubles) of ats_ref_eta_fd: 4 n d + 2 n.
int64_t ats_ref_eta_fd_ws_len(int64_t n, int64_t d);

// eta by central finite differences of ats_ref_layer_forward: one Jacobian column per input
// coordinate x_kl, from the 4-point stencil (f(-2h) - 8 f(-h) + 8 f(h) - f(2h)) / (12 h) with
// step h |x_k| (h is relative to the token's norm, because the layer sees x_k only through
// x_k/|x_k| and the residual). h <= 0 selects ats_ref_eta_fd_h_default(beta).
// Cost 4 n d forward passes = 8 n^3 d^2: for n, d up to about 20.
// x: (n, d); ws: ats_ref_eta_fd_ws_len(n, d) long doubles.
// Returns eta, or NaN on bad input (reported through ats_error).
long double ats_ref_eta_fd(const long double *x, int64_t n, int64_t d, long double beta,
                           long double alpha, long double h, long double *ws);

// Workspace length (long doubles) of ats_ref_eta_blocks_row: 4 n + d.
int64_t ats_ref_eta_blocks_row_ws_len(int64_t n, int64_t d);

// Row i's share of ||J||_F^2 from the Jacobian-block formulas of THEORY.md 2.5:
// ||J_ii||_F^2 + sum_{k != i} ||J_ik||_F^2 (not divided by n d). Cost 2 n^2 + O(n d).
// For a configuration whose rows are all equivalent (the simplex) eta = this / d.
// G: (n, n) from ats_ref_gram(G, y, ...); y: (n, d) and r: (n) from ats_ref_normalize; G, y
// and r do not depend on beta or alpha, so compute them once and reuse them across a beta
// grid. ws: ats_ref_eta_blocks_row_ws_len(n, d) long doubles.
// Returns the sum, or NaN for beta < 0 or beta/alpha not finite.
long double ats_ref_eta_blocks_row(const long double *G, const long double *y, const long double *r,
                                   int64_t n, int64_t d, int64_t i, long double beta,
                                   long double alpha, long double *ws);

// Workspace length (long doubles) of ats_ref_eta_blocks: n^2 + n d + 5 n + d.
int64_t ats_ref_eta_blocks_ws_len(int64_t n, int64_t d);

// eta for arbitrary tokens from the Jacobian blocks (THEORY.md 2.5): normalise, Gram, then
// (1/(n d)) sum_i ats_ref_eta_blocks_row(i). Cost n^2 d / 2 + n^3 + O(n^2 d).
// x: (n, d); ws: ats_ref_eta_blocks_ws_len(n, d) long doubles.
// Returns eta, or NaN on bad input (reported through ats_error).
long double ats_ref_eta_blocks(const long double *x, int64_t n, int64_t d, long double beta,
                               long double alpha, long double *ws);

// ----------------------------------------------------------------------------
// Token configurations

// Explicit simplex tokens (THEORY.md 2.2): x_i = sqrt(q) (sqrt(1 - rho) e_i + sqrt(rho) e_n)
// for i = 0..n-1 (0-based unit vectors; e_n is the shared direction), zeros elsewhere, so
// |x_i|^2 = q and <y_i, y_j> = rho (i != j), up to rounding.
// x: (n, d) out, needs d >= n + 1.
// Returns ATS_STATUS_OK, ATS_STATUS_EINVAL (d < n + 1) or ATS_STATUS_EDOM (rho outside
// [0, 1), q <= 0 or not finite).
int ats_ref_simplex_tokens(long double *x, int64_t n, int64_t d, long double rho, long double q);

#endif // ATS_KERNELS_REF_H
