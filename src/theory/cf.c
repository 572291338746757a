/*
 * cf.c: the modified Lentz evaluation of a continued fraction (see cf.h). Zero partial
 * denominators are replaced by a tiny number, which is the method's standard guard.
 */
#include <math.h>

#include "theory/cf.h"

double ats_cf_lentz(double b0, ats_cf_coef_t *coef, const void *ctx, long max_terms, double tol,
                    long *terms) {
    const double tiny = 1e-300;
    double f = b0 == 0 ? tiny : b0, c = f, d = 0;
    for (long k = 1; k < max_terms; k++) {
        double a, b;
        coef(k, &a, &b, ctx);
        d = b + a * d;
        if (d == 0)
            d = tiny;
        c = b + a / c;
        if (c == 0)
            c = tiny;
        d = 1 / d;
        double delta = c * d;
        f *= delta;
        if (fabs(delta - 1) <= tol) {
            if (terms)
                *terms = k;
            return f;
        }
    }
    if (terms)
        *terms = -1;
    return f;
}
