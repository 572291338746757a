/*
 * simplex.c: the exact simplex layer of arXiv 2510.05554 at finite n (THEORY.md 2.2-2.6).
 *
 * n tokens with |x_i|^2 = q and pairwise cosine rho go through pre-LN self-attention at
 * inverse temperature beta with residual alpha. By symmetry the attention matrix has two
 * values, a = A_ii and b = A_ij, and the output is again a simplex (q', rho'). Everything is
 * evaluated so that no step cancels, for n up to 2^53 and any beta:
 *
 *   t    = beta (1 - rho) - log(n - 1)       (the logit of a)
 *   a    = 1/(1 + e^-t),  b = a e^{-beta (1 - rho)},  a - b = -a expm1(-beta (1 - rho))
 *
 * With beta = gamma log n, t = (kappa - 1) log n - log1p(-1/n) (kappa = gamma (1 - rho)), which
 * keeps full relative accuracy at the critical point.
 *
 * The eta terms of THEORY.md 2.6 contain differences of nearly equal numbers (Q2 - 2 Q3 + Q2^2
 * near a = 1, and (d - 1) + 2 beta uw + beta^2 uu (1 - rho^2) for large beta). They are
 * rewritten here as sums of non-negative terms (derivations below), checked against a
 * brute-force long-double Jacobian in tests/test_simplex.c.
 */
#include <math.h>

#include "core/internal.h"

const char *ats_regime_name(enum ats_regime r) {
    switch (r) {
    case ATS_REGIME_SUBCRITICAL:
        return "subcritical";
    case ATS_REGIME_CRITICAL:
        return "critical";
    case ATS_REGIME_SUPERCRITICAL:
        return "supercritical";
    }
    return "unknown";
}

struct ats_simplex_params ats_simplex_params_default(void) {
    struct ats_simplex_params p = {
        .n = 2, .d = 2, .rho = 0, .alpha = 0, .q = 1, .scale = ATS_SCALE_BETA, .beta = 0, .gamma = 0};
    return p;
}

static int check_params(const struct ats_simplex_params *p) {
    if (p->n < 2 || p->n > ATS_INT_EXACT_MAX)
        ATS_ERROR(ATS_STATUS_EDOM, "n = %lld is outside [2, 2^53]", (long long)p->n);
    if (p->d < 2)
        ATS_ERROR(ATS_STATUS_EDOM, "d = %lld must be at least 2", (long long)p->d);
    if (!(p->rho >= 0 && p->rho < 1))
        ATS_ERROR(ATS_STATUS_EDOM, "rho = %g is outside [0, 1)", p->rho);
    if (!(p->alpha >= 0 && isfinite(p->alpha)))
        ATS_ERROR(ATS_STATUS_EDOM, "alpha = %g must be finite and >= 0", p->alpha);
    if (!(p->q > 0 && isfinite(p->q)))
        ATS_ERROR(ATS_STATUS_EDOM, "q = %g must be finite and > 0", p->q);
    if (p->scale == ATS_SCALE_GAMMA) {
        if (!(p->gamma >= 0 && isfinite(p->gamma)))
            ATS_ERROR(ATS_STATUS_EDOM, "gamma = %g must be finite and >= 0", p->gamma);
    } else if (p->scale == ATS_SCALE_BETA) {
        if (!(p->beta >= 0 && isfinite(p->beta)))
            ATS_ERROR(ATS_STATUS_EDOM, "beta = %g must be finite and >= 0", p->beta);
    } else {
        ATS_ERROR(ATS_STATUS_EINVAL, "scale must be ATS_SCALE_BETA or ATS_SCALE_GAMMA");
    }
    return ATS_STATUS_OK;
}

// THEORY.md 2.3: the n -> infinity limits of rho' and (d -> infinity) eta, from the limiting
// self weight a_inf = 0, 1/2, 1 by regime.
static void simplex_limits(struct ats_simplex *s, double rho, double alpha, double q) {
    double ar = alpha * sqrt(q); // the residual enters only as alpha |x_i|
    double a_inf;
    switch (s->regime) {
    case ATS_REGIME_SUBCRITICAL:
        a_inf = 0;
        if (ar == 0 && rho == 0) {
            // THEORY.md's formula is 0/0 here. With rho = 0 the shared mean term b^2 n s1 ~ 1/n
            // competes with c^2 ~ n^(2 kappa - 2): rho' -> 1 for kappa < 1/2, 1/2 at kappa = 1/2
            // (within the critical tolerance), 0 above [D].
            s->rho_out_limit = fabs(s->kappa - 0.5) <= 1e-9 ? 0.5 : s->kappa < 0.5 ? 1 : 0;
        } else {
            s->rho_out_limit = rho * (1 + ar) * (1 + ar) / (ar * ar + 2 * ar * rho + rho);
        }
        break;
    case ATS_REGIME_CRITICAL: {
        a_inf = 0.5;
        double c = 0.5 + ar;
        s->rho_out_limit = rho * (1 + ar) * (1 + ar) / (c * c + c * rho + rho / 4);
        break;
    }
    default:
        a_inf = 1;
        s->rho_out_limit = rho;
        break;
    }
    double e = a_inf / sqrt(q) + alpha;
    s->eta_limit = e * e; // THEORY.md 2.4, d -> infinity
}

int ats_simplex_eval(struct ats_simplex *out, const struct ats_simplex_params *p) {
    ATS_ASSERT(out && p);
    int rc = check_params(p);
    if (rc != ATS_STATUS_OK)
        return rc;

    const double n = (double)p->n, m = (double)(p->n - 1), d = (double)p->d;
    const double rho = p->rho, omega = 1 - rho, q = p->q, alpha = p->alpha;
    const double logn = log(n);
    struct ats_simplex s;

    // t = log E - log(n - 1), E = exp(beta omega); bw = beta omega.
    double t, bw;
    if (p->scale == ATS_SCALE_GAMMA) {
        s.gamma = p->gamma;
        s.beta = p->gamma * logn;
        if (!isfinite(s.beta))
            ATS_ERROR(ATS_STATUS_ERANGE, "beta = gamma log n overflows (gamma = %g)", p->gamma);
        s.kappa = p->gamma * omega;
        t = (s.kappa - 1) * logn - log1p(-1 / n);
    } else {
        s.beta = p->beta;
        s.gamma = p->beta / logn;
        s.kappa = s.gamma * omega;
        t = p->beta * omega - log(m);
    }
    bw = s.beta * omega;
    s.gamma_c = 1 / omega;
    s.regime = fabs(s.kappa - 1) <= 1e-9   ? ATS_REGIME_CRITICAL
               : s.kappa < 1               ? ATS_REGIME_SUBCRITICAL
                                           : ATS_REGIME_SUPERCRITICAL;

    // Self and cross weights (THEORY.md 2.2) in log space.
    const double log_a = -log1p(exp(-t)); // log of the logistic 1/(1 + e^-t)
    const double a = exp(log_a);
    const double b = exp(log_a - bw);     // a e^{-beta omega} = (1 - a)/(n - 1)
    const double amb = -a * expm1(-bw);   // a - b without cancellation
    const double s1 = 1 + m * rho;        // <y_i, sum_j y_j>

    // Forward map: q' = |x_i'|^2, rho' = <x_i', x_j'>/q', lambda = c^2/q' (all terms >= 0).
    const double c = amb + alpha * sqrt(q);
    const double cross = 2 * c * b * s1 + b * b * n * s1;
    const double q_out = c * c + cross;
    s.a_self = a;
    s.b_other = b;
    s.q_out = q_out;
    s.rho_out = (c * c * rho + cross) / q_out;
    s.lambda = c * c / q_out;

    // Backward metric eta (THEORY.md 2.6) with omega = 1 - rho, m = n - 1, 1 - a = m b:
    //   T1 = omega (1 - Q2) - omega^2 a (1 - a)        with 1 - Q2 = m b (1 + a - b)
    //      = omega m b (1 - b + rho a)
    //   Q2 - 2 Q3 + Q2^2 = a^2 (1-a)^2 + m b^2 (1 - 2b + 2a^2 + m b^2)
    //   T2 = omega^2 (Q2 - 2 Q3 + Q2^2) - omega^3 (a^2 (1-a)^2 + m a^2 b^2)
    //      = omega^2 m b^2 (a^2 (1 + rho n) + 1 - 2b + m b^2)
    // beta enters only with at least one factor b, and beta b -> 0 as beta -> infinity, so
    // beta T1, beta^2 T2 and the off-diagonal terms are formed from bb = beta b: finite for
    // every finite beta, where beta^2 alone would overflow.
    const double beta = s.beta, rq = sqrt(q), bb = beta * b;
    const double bT1 = omega * m * bb * (1 - b + rho * a);
    const double b2T2 = omega * omega * m * bb * bb * (a * a * (1 + rho * n) + 1 - 2 * b + m * b * b);
    const double Jd = (a * a * (d - 1) + 2 * a * bT1 + b2T2) / q +
                      (2 * alpha / rq) * (a * (d - 1) + bT1) + alpha * alpha * d;
    // Off-diagonal block ||P_k + beta u w^T||_F^2 with u = y_k - m_i, w = P_k y_i:
    // in an orthonormal basis {y_k, w/|w|, rest} it is (d - 2) + |w/|w| + beta |w| u|^2, and in
    // the explicit simplex coordinates (|w|^2 = omega (1 + rho), B = beta |w|^2) that is
    //   (d - 2) + [(1 - B a)^2 + (B (1 - b) - rho)^2 + (m - 1) B^2 b^2 + rho omega]/(1 + rho),
    // a sum of squares, equal to THEORY.md 2.6's (d-1) + 2 beta uw + beta^2 uu (1 - rho^2).
    // Multiplied through by b (Jo carries b^2): b e1 = b - bb w2 a, b e2 = bb w2 (1 - b) - rho b,
    // b e3 = bb w2 b with w2 = omega (1 + rho).
    const double w2 = omega * (1 + rho);
    const double f1 = b - bb * w2 * a, f2 = bb * w2 * (1 - b) - rho * b, f3 = bb * w2 * b;
    const double Jo = (b * b * (d - 2) + (f1 * f1 + f2 * f2 + (m - 1) * f3 * f3 + b * b * rho * omega) /
                                             (1 + rho)) /
                      q;
    s.eta = (Jd + m * Jo) / d;

    simplex_limits(&s, rho, alpha, q);
    if (!isfinite(s.rho_out) || !isfinite(s.lambda) || !isfinite(s.eta))
        ATS_ERROR(ATS_STATUS_ENUM, "non-finite simplex result (n = %lld, rho = %g, beta = %g)",
                  (long long)p->n, rho, beta);
    *out = s;
    return ATS_STATUS_OK;
}
