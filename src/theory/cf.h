/*
 * cf.h: continued fractions by the modified Lentz method (Lentz 1976; Thompson and Barnett,
 * J. Comput. Phys. 64 (1986) 490), shared by the Bessel ratios, the incomplete gamma function
 * and E_1. Internal to libattnscale.
 */
#ifndef ATS_THEORY_CF_H
#define ATS_THEORY_CF_H

// The coefficients a_k, b_k (k >= 1) of F = b_0 + a_1/(b_1 + a_2/(b_2 + ...)).
typedef void ats_cf_coef_t(long k, double *a, double *b, const void *ctx);

// F, stopping when a convergent changes by at most tol (relative). *terms (if not NULL)
// receives the number of terms used, or -1 when max_terms did not reach tol; F is then the
// last convergent.
double ats_cf_lentz(double b0, ats_cf_coef_t *coef, const void *ctx, long max_terms, double tol,
                    long *terms);

#endif // ATS_THEORY_CF_H
