/*
 * bessel_i.h: modified Bessel functions of the first kind for the sphere theory of Paper 2
 * (THEORY.md 3.3), internal to libattnscale (never installed; tests include it).
 *
 * Domain of the accuracy statements: nu >= 0 (any real, in practice nu = d/2 - 1 with d in
 * [2, 4096]) and x from 0 to 1e8 (2e8 for the arguments 2 beta). Nothing here overflows for
 * any finite x: the functions return ratios and logarithms, never I_nu itself. Invalid
 * arguments (nu < 0, x < 0, NaN) give NAN.
 */
#ifndef ATS_THEORY_BESSEL_I_H
#define ATS_THEORY_BESSEL_I_H

// r = I_{nu+1}(x)/I_nu(x), and two quantities that cancel if formed from r:
//   one_minus_r = 1 - r                              (= (2nu+1)/(2x) + O(x^-2) for large x)
//   var         = 1 - r^2 - (2nu+1) r/x = dr/dx      (= (2nu+1)/(2x^2) + O(x^-3))
// var is the variance of s = <q, k> under the von Mises-Fisher law with concentration x on
// S^(2nu+1) (d = 2nu + 2), whose mean is r. x = 0 gives r = 0, 1 - r = 1, var = 1/(2nu+2).
struct ats_bessel_ratio_ext {
    double r, one_minus_r, var;
};
void ats_bessel_ratio_ext(struct ats_bessel_ratio_ext *out, double nu, double x);

// log I_nu(x) (-inf at x = 0 for nu > 0, 0 at x = 0 for nu = 0).
double ats_bessel_log_i(double nu, double x);

// log G_nu(x) - x, where G_nu(x) = Gamma(nu+1) (2/x)^nu I_nu(x) = 0F1(; nu+1; x^2/4)
// = E exp(x <q, k>) for k uniform on S^(2nu+1): with nu = d/2 - 1 this is
// log M_d(x) - x of THEORY.md 3.3. Accurate in absolute terms (not only relative to x).
double ats_bessel_log_g_minus_x(double nu, double x);

#endif // ATS_THEORY_BESSEL_I_H
