/*
 * layer_ref.c: long-double reference implementations of the paper-1 attention layer
 * (Chen, Lin, Polyanskiy, Rigollet, arXiv 2510.05554; THEORY.md 2.1, 2.4, 2.5, 2.2 tokens).
 *
 * Implements: pre-LN normalisation, Gram matrix, stable softmax, the forward pass (all rows or
 * a subset), eta = ||dX'/dX||_F^2/(n d) by 4-point central finite differences and by the
 * Jacobian-block formulas, and explicit simplex tokens. See ref.h for the API.
 * Built into build/libattnscale.a by `make`; tested by tests/test_ref.c
 * (`make build/tests/test_ref && ./build/tests/test_ref`).
 *
 * Obvious loops, one accumulator, index order: no BLAS, no threads, no allocation. Written to
 * stay accurate when long double is only double (see the comments on each numerical choice).
 */
#include <float.h>
#include <math.h>

#include "core/internal.h"
#include "kernels/ref/ref.h"

// ----------------------------------------------------------------------------
// Building blocks

static long double dot(const long double *restrict a, const long double *restrict b, int64_t d) {
    long double s = 0;
    for (int64_t l = 0; l < d; l++)
        s += a[l] * b[l];
    return s;
}

// |x| with the entries scaled by the power of two 2^-e just above max|x_l| (exact, and no
// division), so the squares neither overflow (|x_l| ~ 1e2466 in long double, 1e154 in double)
// nor underflow to zero. Returns NaN for non-finite entries, 0 for a zero row.
static long double row_norm(const long double *x, int64_t d) {
    long double amax = 0;
    for (int64_t l = 0; l < d; l++) {
        if (!isfinite(x[l]))
            return NAN;
        long double a = fabsl(x[l]);
        if (a > amax)
            amax = a;
    }
    if (amax == 0)
        return 0;
    // amax in [2^(e-1), 2^e). 2^-e is applied as two factors because for subnormal amax it
    // exceeds the largest finite power of two; both products are exact (except for entries so far
    // below amax that they do not matter).
    int e;
    frexpl(amax, &e);
    const long double s1 = ldexpl(1, -e / 2), s2 = ldexpl(1, -e - (-e / 2));
    long double s = 0;
    for (int64_t l = 0; l < d; l++) {
        long double t = x[l] * s1 * s2;
        s += t * t;
    }
    return ldexpl(sqrtl(s), e);
}

int ats_ref_normalize(long double *y, long double *r, const long double *x, int64_t n, int64_t d) {
    ATS_ASSERT(y && r && x && n >= 1 && d >= 1);
    for (int64_t i = 0; i < n; i++) {
        long double ri = row_norm(x + i * d, d);
        if (!(ri > 0) || !isfinite(ri))
            ATS_ERROR(ATS_STATUS_EDOM, "token %lld has norm %Lg (must be positive and finite)",
                      (long long)i, ri);
        r[i] = ri;
        for (int64_t l = 0; l < d; l++)
            y[i * d + l] = x[i * d + l] / ri;
    }
    return ATS_STATUS_OK;
}

void ats_ref_gram(long double *G, const long double *y, int64_t n, int64_t d) {
    ATS_ASSERT(G && y && n >= 1 && d >= 1);
    for (int64_t i = 0; i < n; i++) {
        for (int64_t j = 0; j <= i; j++) {
            // dot(y_i, y_j) and dot(y_j, y_i) are the same products in the same order, so
            // both triangles match the forward pass's scores bit for bit.
            long double g = dot(y + i * d, y + j * d, d);
            G[i * n + j] = g;
            G[j * n + i] = g;
        }
    }
}

void ats_ref_softmax(long double *p, const long double *s, int64_t n, long double beta) {
    ATS_ASSERT(p && s && n >= 1 && beta >= 0);
    long double smax = s[0];
    for (int64_t j = 1; j < n; j++)
        if (s[j] > smax)
            smax = s[j];
    // beta (s_j - s_max) <= 0: every exponential is in (0, 1], the largest is exactly 1, so
    // the sum lies in [1, n] and nothing overflows (THEORY.md 1).
    long double z = 0;
    for (int64_t j = 0; j < n; j++) {
        long double w = expl(beta * (s[j] - smax));
        p[j] = w;
        z += w;
    }
    for (int64_t j = 0; j < n; j++)
        p[j] /= z;
}

static int check_params(long double beta, long double alpha) {
    if (!(beta >= 0) || !isfinite(beta))
        ATS_ERROR(ATS_STATUS_EDOM, "beta = %Lg (must be finite and >= 0)", beta);
    if (!isfinite(alpha))
        ATS_ERROR(ATS_STATUS_EDOM, "alpha = %Lg (must be finite)", alpha);
    return ATS_STATUS_OK;
}

// ----------------------------------------------------------------------------
// Forward pass (THEORY.md 2.1)

int64_t ats_ref_layer_ws_len(int64_t n, int64_t d) {
    return n * d + 2 * n;
}

// Scores s_j = <y_i, y_j> into p, then p = softmax(beta s).
static void attn_row(long double *restrict p, const long double *restrict y, int64_t n, int64_t d,
                     int64_t i, long double beta) {
    for (int64_t j = 0; j < n; j++)
        p[j] = dot(y + i * d, y + j * d, d);
    ats_ref_softmax(p, p, n, beta);
}

// xo = sum_j p_j y_j + alpha x_i, summed over j in index order for every coordinate.
static void layer_row(long double *restrict xo, long double *restrict p,
                      const long double *restrict y, const long double *restrict xi, int64_t n,
                      int64_t d, int64_t i, long double beta, long double alpha) {
    attn_row(p, y, n, d, i, beta);
    for (int64_t l = 0; l < d; l++)
        xo[l] = 0;
    for (int64_t j = 0; j < n; j++)
        for (int64_t l = 0; l < d; l++)
            xo[l] += p[j] * y[j * d + l];
    for (int64_t l = 0; l < d; l++)
        xo[l] += alpha * xi[l];
}

int ats_ref_layer_forward(long double *xout, const long double *x, int64_t n, int64_t d,
                          long double beta, long double alpha, long double *ws) {
    return ats_ref_layer_rows(xout, x, NULL, n, n, d, beta, alpha, ws);
}

int ats_ref_layer_rows(long double *xout, const long double *x, const int64_t *rows, int64_t nrows,
                       int64_t n, int64_t d, long double beta, long double alpha, long double *ws) {
    ATS_ASSERT(xout && x && ws && n >= 1 && d >= 1 && nrows >= 0 && xout != x);
    ATS_ASSERT(rows || nrows == n);
    int rc = check_params(beta, alpha);
    if (rc != ATS_STATUS_OK)
        return rc;
    long double *y = ws, *r = ws + n * d, *p = r + n;
    rc = ats_ref_normalize(y, r, x, n, d);
    if (rc != ATS_STATUS_OK)
        return rc;
    for (int64_t t = 0; t < nrows; t++) {
        int64_t i = rows ? rows[t] : t; // NULL: every row in order
        ATS_ASSERT(i >= 0 && i < n);
        layer_row(xout + t * d, p, y, x + i * d, n, d, i, beta, alpha);
    }
    return ATS_STATUS_OK;
}

int ats_ref_attn_row(long double *p, const long double *x, int64_t n, int64_t d, int64_t i,
                     long double beta, long double *ws) {
    ATS_ASSERT(p && x && ws && n >= 1 && d >= 1 && i >= 0 && i < n);
    int rc = check_params(beta, 0);
    if (rc != ATS_STATUS_OK)
        return rc;
    long double *y = ws, *r = ws + n * d;
    rc = ats_ref_normalize(y, r, x, n, d);
    if (rc != ATS_STATUS_OK)
        return rc;
    attn_row(p, y, n, d, i, beta);
    return ATS_STATUS_OK;
}

// ----------------------------------------------------------------------------
// eta by finite differences (THEORY.md 2.4)

// Step choice for the 4-point stencil f'(x) ~ (f(x-2h) - 8 f(x-h) + 8 f(x+h) - f(x+2h))/(12h):
//   truncation  h^4 |f^(5)| / 30,   rounding  ~ (18/12) eps |f| / h   (eps = LDBL_EPSILON).
// The layer depends on x_k through y_k = x_k/|x_k| and softmax(beta <y_i, y_k>), so with the
// step written h |x_k| the k-th derivative in h scales like (1 + beta)^k. Balancing the two
// terms gives h ~ eps^(1/5)/(1 + beta) and a relative error ~ (1 + beta) eps^(4/5):
// about 5e-16 (1 + beta) for x87 long double (eps = 1.1e-19), 3e-13 (1 + beta) for double.
long double ats_ref_eta_fd_h_default(long double beta) {
    return powl(LDBL_EPSILON, 0.2L) / (1 + fabsl(beta));
}

int64_t ats_ref_eta_fd_ws_len(int64_t n, int64_t d) {
    return 3 * n * d + ats_ref_layer_ws_len(n, d);
}

long double ats_ref_eta_fd(const long double *x, int64_t n, int64_t d, long double beta,
                           long double alpha, long double h, long double *ws) {
    ATS_ASSERT(x && ws && n >= 1 && d >= 1);
    if (check_params(beta, alpha) != ATS_STATUS_OK)
        return NAN;
    if (!(h > 0) || !isfinite(h))
        h = ats_ref_eta_fd_h_default(beta);
    const int64_t nd = n * d;
    long double *xp = ws, *xo = ws + nd, *col = ws + 2 * nd, *lws = ws + 3 * nd;
    static const long double off[4] = {-2, -1, 1, 2};
    static const long double coef[4] = {1, -8, 8, -1};

    for (int64_t t = 0; t < nd; t++)
        xp[t] = x[t];
    long double sum = 0;
    for (int64_t k = 0; k < n; k++) {
        long double rk = row_norm(x + k * d, d);
        if (!(rk > 0) || !isfinite(rk)) {
            ats_error(__FILE__, __LINE__, ATS_STATUS_EDOM, "token %lld has norm %Lg", (long long)k,
                      rk);
            return NAN;
        }
        const long double hk = h * rk;
        for (int64_t l = 0; l < d; l++) {
            const int64_t c = k * d + l;
            for (int64_t t = 0; t < nd; t++)
                col[t] = 0;
            for (int64_t s = 0; s < 4; s++) {
                xp[c] = x[c] + off[s] * hk;
                if (ats_ref_layer_forward(xo, xp, n, d, beta, alpha, lws) != ATS_STATUS_OK)
                    return NAN;
                for (int64_t t = 0; t < nd; t++)
                    col[t] += coef[s] * xo[t];
            }
            xp[c] = x[c];
            // Column c of J is col / (12 hk); its squared norm adds to ||J||_F^2.
            for (int64_t t = 0; t < nd; t++) {
                long double jv = col[t] / (12 * hk);
                sum += jv * jv;
            }
        }
    }
    return sum / (long double)nd;
}

// ----------------------------------------------------------------------------
// eta from the Jacobian blocks (THEORY.md 2.5)
//
// Row i of X' = A Y + alpha X, with p = A_{i.}, m = sum_j p_j y_j, z_j = y_j - m,
// C = sum_j p_j y_j y_j^T - m m^T = sum_j p_j z_j z_j^T (because sum_j p_j = 1),
// P_k = I - y_k y_k^T, dy_k = P_k dx_k / r_k, and dA_ij = A_ij beta (dG_ij - sum_l A_il dG_il):
//   J_ii = (p_i P_i + beta C P_i)/r_i + alpha I        (dG_ii = 2 <y_i, dy_i> = 0)
//   J_ik = (p_k/r_k) [P_k + beta (y_k - m)(P_k y_i)^T]  (k != i; only dG_ik moves)
// Squared Frobenius norms, with P idempotent and ||P_k||^2 = d - 1:
//   ||J_ik||^2 = (p_k^2/r_k^2) [(d-1) + 2 beta <u,w> + beta^2 |u|^2 |w|^2],
//                u = z_k, w = P_k y_i = y_i - G_ik y_k
//   ||J_ii||^2 = (p_i^2 (d-1) + 2 p_i beta T1 + beta^2 T2)/r_i^2
//                + (2 alpha/r_i)(p_i (d-1) + beta T1) + alpha^2 d
//   T1 = tr(C P_i)      = sum_j p_j |P_i z_j|^2
//   T2 = ||C P_i||_F^2  = sum_{j,k} p_j p_k <z_j,z_k> <P_i z_j, P_i z_k>
//                       = sum_{j,k} p_j p_k H_jk (H_jk - e_j e_k),
//   H_jk = <z_j, z_k> = G_jk - g_j - g_k + p^T g  (g = G p),  e_j = <z_j, y_i>.
// These are THEORY.md 2.5's Gram forms written with centred vectors: T1, H_jj, e_j, <u,w>,
// |u|^2 and |w|^2 are O(d) dot products of explicitly formed differences (O(n d) per row,
// never a cancelling "1 - p^T g"), so tightly clustered tokens (rho near 1, large beta) keep
// their relative accuracy in double; only the off-diagonal H_jk of the O(n^2) T2 sum use the
// Gram matrix.

int64_t ats_ref_eta_blocks_row_ws_len(int64_t n, int64_t d) {
    return 4 * n + d;
}

long double ats_ref_eta_blocks_row(const long double *G, const long double *y, const long double *r,
                                   int64_t n, int64_t d, int64_t i, long double beta,
                                   long double alpha, long double *ws) {
    ATS_ASSERT(G && y && r && ws && n >= 1 && d >= 1 && i >= 0 && i < n);
    if (check_params(beta, alpha) != ATS_STATUS_OK)
        return NAN;
    long double *p = ws, *g = ws + n, *hz = ws + 2 * n, *e = ws + 3 * n, *m = ws + 4 * n;
    const long double *yi = y + i * d;
    const long double dm1 = (long double)(d - 1);

    ats_ref_softmax(p, G + i * n, n, beta);
    long double ptg = 0; // p^T G p = |m|^2
    for (int64_t j = 0; j < n; j++) {
        long double s = 0;
        for (int64_t k = 0; k < n; k++)
            s += G[j * n + k] * p[k];
        g[j] = s;
        ptg += p[j] * s;
    }
    for (int64_t l = 0; l < d; l++)
        m[l] = 0;
    for (int64_t j = 0; j < n; j++)
        for (int64_t l = 0; l < d; l++)
            m[l] += p[j] * y[j * d + l];

    // hz_j = |z_j|^2, e_j = <z_j, y_i>, T1 = sum_j p_j |z_j - e_j y_i|^2.
    long double T1 = 0;
    for (int64_t j = 0; j < n; j++) {
        const long double *yj = y + j * d;
        long double zz = 0, zy = 0;
        for (int64_t l = 0; l < d; l++) {
            long double z = yj[l] - m[l];
            zz += z * z;
            zy += z * yi[l];
        }
        long double pz = 0;
        for (int64_t l = 0; l < d; l++) {
            long double t = (yj[l] - m[l]) - zy * yi[l];
            pz += t * t;
        }
        hz[j] = zz;
        e[j] = zy;
        T1 += p[j] * pz;
    }

    long double T2 = 0;
    for (int64_t j = 0; j < n; j++) {
        long double s = 0;
        for (int64_t k = 0; k < n; k++) {
            long double H = j == k ? hz[j] : G[j * n + k] - g[j] - g[k] + ptg;
            s += p[k] * H * (H - e[j] * e[k]);
        }
        T2 += p[j] * s;
    }

    const long double a = p[i], ri = r[i];
    long double sum = (a * a * dm1 + 2 * a * beta * T1 + beta * beta * T2) / (ri * ri) +
                      (2 * alpha / ri) * (a * dm1 + beta * T1) + alpha * alpha * (long double)d;

    for (int64_t k = 0; k < n; k++) {
        if (k == i)
            continue;
        const long double *yk = y + k * d;
        const long double gik = G[i * n + k];
        long double uw = 0, ww = 0;
        for (int64_t l = 0; l < d; l++) {
            long double u = yk[l] - m[l];
            long double w = yi[l] - gik * yk[l];
            uw += u * w;
            ww += w * w;
        }
        long double f = p[k] / r[k];
        sum += f * f * (dm1 + 2 * beta * uw + beta * beta * hz[k] * ww);
    }
    return sum;
}

int64_t ats_ref_eta_blocks_ws_len(int64_t n, int64_t d) {
    return n * n + n * d + n + ats_ref_eta_blocks_row_ws_len(n, d);
}

long double ats_ref_eta_blocks(const long double *x, int64_t n, int64_t d, long double beta,
                               long double alpha, long double *ws) {
    ATS_ASSERT(x && ws && n >= 1 && d >= 1);
    if (check_params(beta, alpha) != ATS_STATUS_OK)
        return NAN;
    long double *y = ws, *r = ws + n * d, *G = r + n, *rws = G + n * n;
    if (ats_ref_normalize(y, r, x, n, d) != ATS_STATUS_OK)
        return NAN;
    ats_ref_gram(G, y, n, d);
    long double sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += ats_ref_eta_blocks_row(G, y, r, n, d, i, beta, alpha, rws);
    return sum / (long double)(n * d);
}

// ----------------------------------------------------------------------------
// Token configurations (THEORY.md 2.2)

int ats_ref_simplex_tokens(long double *x, int64_t n, int64_t d, long double rho, long double q) {
    ATS_ASSERT(x && n >= 1 && d >= 1);
    if (d < n + 1)
        ATS_ERROR(ATS_STATUS_EINVAL, "explicit simplex needs d >= n + 1 (n = %lld, d = %lld)",
                  (long long)n, (long long)d);
    if (!(rho >= 0 && rho < 1))
        ATS_ERROR(ATS_STATUS_EDOM, "rho = %Lg (must be in [0, 1))", rho);
    if (!(q > 0) || !isfinite(q))
        ATS_ERROR(ATS_STATUS_EDOM, "q = %Lg (must be finite and > 0)", q);
    const long double sq = sqrtl(q);
    const long double own = sq * sqrtl(1 - rho), shared = sq * sqrtl(rho);
    for (int64_t t = 0; t < n * d; t++)
        x[t] = 0;
    for (int64_t i = 0; i < n; i++) {
        x[i * d + i] = own;
        x[i * d + n] = shared;
    }
    return ATS_STATUS_OK;
}
