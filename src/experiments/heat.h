/*
 * heat.h: the backward heat equation of THEORY.md 3.6 as a Monte Carlo experiment (d = 3,
 * V = I): a cloud of queries drawn from the von Mises-Fisher law vMF(kappa0, e_3) is pushed
 * through the attention map whose keys follow the same law, and the tangent variance of the
 * cloud is measured before and after, (a) for the n = infinity map and (b) for n keys.
 * Internal to the library (src/experiments/reproduce_run.c draws paper2_heat from it) and its
 * tests (tests/test_heat.c); not installed.
 *
 * Per query x (a point of S^2) the statistic is v(x) = (x_1^2 + x_2^2)/2, the variance per
 * tangent coordinate of a cloud concentrated near the pole e_3 (|P_perp x|^2 / 2):
 *   n = infinity: the attention output is T(x) = A_3(|t|) t/|t| with t = beta x + kappa0 e_3
 *     (THEORY.md 3.6), so the normalised map is x -> t/|t| and A_3 cancels; no keys drawn.
 *   n keys: y = sum_j w_j k_j with w_j ∝ exp(beta <x, k_j>), k_j i.i.d. vMF(kappa0, e_3)
 *     (fresh keys for every query), and the map is x -> y/|y| (y/|y| needs no normaliser, so
 *     the weights are exp(beta (<x, k_j> - max_l <x, k_l>)) unnormalised).
 * The variance drop (before minus after) is 2/beta to first order: the Euler step of size
 * 1/beta of d rho/dt = -Delta_S rho (THEORY.md 3.6).
 */
#ifndef ATS_EXPERIMENTS_HEAT_H
#define ATS_EXPERIMENTS_HEAT_H

#include <signal.h>
#include <stdint.h>

#include "attnscale.h"

// One point of vMF(kappa, e_3) on S^2 into v (x, y, z): two words of r,
//   w = 1 + log(u + (1 - u) e^{-2 kappa}) / kappa     (u = ats_rng_uniform_pos, in (0, 1])
// (the inverse CDF of w = <v, e_3>, density kappa e^{kappa w} / (2 sinh kappa) on [-1, 1]),
// phi = 2 pi ats_rng_uniform, v = (s cos phi, s sin phi, w) with s = sqrt(max(0, 1 - w^2)).
// kappa > 0.
void ats_heat_vmf3(double v[3], double kappa, struct ats_rng *r);

struct ats_heat_params {
    double kappa0;          // concentration of queries and keys, > 0 (default 50)
    int64_t queries;        // queries through the n = infinity map, >= 1 (default 4000)
    int64_t finite_queries; // queries through the map of n keys, >= 0 (default 100)
    int64_t n_keys;         // keys per finite query, >= 1 (default 20000)
    uint64_t seed;          // default 1
    // Checked between finite queries when not NULL: a non-zero value stops the run with
    // ATS_STATUS_ECANCEL (a run's cancel flag).
    const volatile sig_atomic_t *cancel;
};

// kappa0 = 50, queries = 4000, finite_queries = 100, n_keys = 20000 (reproduce --quick),
// seed = 1, cancel = NULL.
struct ats_heat_params ats_heat_params_default(void);

// One beta's result. The variances are means over the queries of v(x) (before) and of v of the
// mapped point (after); the standard errors are those of the per-query drops (THEORY.md 1).
struct ats_heat_result {
    double beta;
    double var_before;        // the n = infinity queries before the map (E = A_3(kappa0)/kappa0)
    double var_after_limit;   // ... after x -> t/|t|
    double drop_limit;        // var_before - var_after_limit
    double drop_limit_se;     // standard error of drop_limit
    double var_before_n_keys; // the finite queries before the map
    double var_after_n_keys;  // ... after x -> y/|y|
    double drop_n_keys;       // var_before_n_keys - var_after_n_keys
    double drop_n_keys_se;    // its standard error (NAN for fewer than 2 finite queries)
};

// Runs one beta (> 0, finite) from the Philox stream (p->seed, stream): the n = infinity
// queries first (two words each), then for each finite query the query and its n_keys keys in
// turn (two words per point). reproduce's paper2_heat uses stream 7000000 + i for the i-th
// beta. Errors: ATS_STATUS_EDOM (a parameter outside its domain), ATS_STATUS_ENOMEM (the keys
// of one query, 24 n_keys bytes), ATS_STATUS_ECANCEL.
int ats_heat_run(struct ats_heat_result *out, const struct ats_heat_params *p, double beta,
                 uint64_t stream);

#endif // ATS_EXPERIMENTS_HEAT_H
