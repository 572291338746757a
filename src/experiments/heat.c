/*
 * heat.c: the backward heat equation Monte Carlo of THEORY.md 3.6 (see heat.h): vMF(kappa0)
 * queries through the n = infinity attention map and through the map of n vMF(kappa0) keys,
 * with the tangent variance before and after.
 *
 * The loops keep the order of operations of the code they came from (cmd_reproduce.c's
 * fig_heat, release 784934a), so reproduce's paper2_heat.csv is byte-identical; the standard
 * errors are computed beside the sums and do not touch them.
 *
 * Build: part of build/libattnscale.a (make lib); tests: make build/tests/test_heat.
 */
#include <math.h>
#include <stdint.h>

#include "core/internal.h"
#include "experiments/heat.h"
#include "experiments/stats.h"

void ats_heat_vmf3(double v[3], double kappa, struct ats_rng *r) {
    ATS_ASSERT(v && r && kappa > 0);
    double u = ats_rng_uniform_pos(r);
    double w = 1 + log(u + (1 - u) * exp(-2 * kappa)) / kappa;
    double phi = 2 * 3.14159265358979323846 * ats_rng_uniform(r), s = sqrt(fmax(0, 1 - w * w));
    v[0] = s * cos(phi);
    v[1] = s * sin(phi);
    v[2] = w;
}

struct ats_heat_params ats_heat_params_default(void) {
    struct ats_heat_params p = {50, 4000, 100, 20000, 1, NULL};
    return p;
}

int ats_heat_run(struct ats_heat_result *out, const struct ats_heat_params *p, double beta,
                 uint64_t stream) {
    ATS_ASSERT(out && p);
    const double kappa0 = p->kappa0;
    if (!(kappa0 > 0) || !isfinite(kappa0))
        ATS_ERROR(ATS_STATUS_EDOM, "heat: kappa0 = %g is not a finite number > 0", kappa0);
    if (!(beta > 0) || !isfinite(beta))
        ATS_ERROR(ATS_STATUS_EDOM, "heat: beta = %g is not a finite number > 0", beta);
    if (p->queries < 1 || p->finite_queries < 0 || p->n_keys < 1)
        ATS_ERROR(ATS_STATUS_EDOM,
                  "heat: queries = %lld (>= 1), finite_queries = %lld (>= 0), n_keys = %lld "
                  "(>= 1)",
                  (long long)p->queries, (long long)p->finite_queries, (long long)p->n_keys);
    const int64_t queries = p->queries, finite_q = p->finite_queries, nkeys = p->n_keys;
    // Per-query drops for the standard errors: (queries + finite_q,); the keys: (n_keys, 3).
    double *drops = ats_malloc_array((size_t)(queries + finite_q), sizeof *drops);
    double *k = finite_q > 0 ? ats_malloc_array((size_t)nkeys, 3 * sizeof *k) : NULL;
    if (!drops || (finite_q > 0 && !k)) {
        ats_free(drops);
        ats_free(k);
        ATS_ERROR(ATS_STATUS_ENOMEM, "heat: no memory for %lld keys", (long long)nkeys);
    }
    struct ats_rng r;
    ats_rng_init(&r, p->seed, stream);

    // n = infinity: T/|T| = (beta x + kappa0 mu)/|beta x + kappa0 mu| (A_d cancels).
    double sb = 0, sa = 0;
    for (int64_t j = 0; j < queries; j++) {
        double q[3];
        ats_heat_vmf3(q, kappa0, &r);
        double t[3] = {beta * q[0], beta * q[1], beta * q[2] + kappa0};
        double nt = sqrt(t[0] * t[0] + t[1] * t[1] + t[2] * t[2]);
        double before = q[0] * q[0] + q[1] * q[1], after = (t[0] * t[0] + t[1] * t[1]) / (nt * nt);
        sb += before;
        sa += after;
        drops[j] = (before - after) / 2;
    }

    // n keys from vMF(kappa0): y = sum w_j k_j with w_j ∝ exp(beta <x, k_j>).
    double sfn = 0, sfb = 0;
    for (int64_t j = 0; j < finite_q; j++) {
        if (p->cancel && *p->cancel) {
            ats_free(drops);
            ats_free(k);
            ATS_ERROR(ATS_STATUS_ECANCEL, "cancelled");
        }
        double q[3], y[3] = {0, 0, 0}, mx = -HUGE_VAL; // y/|y| needs no normaliser
        ats_heat_vmf3(q, kappa0, &r);
        for (int64_t m = 0; m < nkeys; m++) {
            ats_heat_vmf3(k + 3 * m, kappa0, &r);
            double sdot = q[0] * k[3 * m] + q[1] * k[3 * m + 1] + q[2] * k[3 * m + 2];
            mx = sdot > mx ? sdot : mx;
        }
        for (int64_t m = 0; m < nkeys; m++) {
            const double *km = k + 3 * m;
            double e = exp(beta * (q[0] * km[0] + q[1] * km[1] + q[2] * km[2] - mx));
            y[0] += e * km[0];
            y[1] += e * km[1];
            y[2] += e * km[2];
        }
        double ny = sqrt(y[0] * y[0] + y[1] * y[1] + y[2] * y[2]);
        double before = q[0] * q[0] + q[1] * q[1], after = (y[0] * y[0] + y[1] * y[1]) / (ny * ny);
        sfb += before;
        sfn += after;
        drops[queries + j] = (before - after) / 2;
    }
    ats_free(k);

    out->beta = beta;
    out->var_before = sb / (2.0 * (double)queries);
    out->var_after_limit = sa / (2.0 * (double)queries);
    out->drop_limit = out->var_before - out->var_after_limit;
    double mean;
    ats_stat_mean_se(&mean, &out->drop_limit_se, drops, queries, sizeof *drops);
    if (finite_q > 0) {
        out->var_before_n_keys = sfb / (2.0 * (double)finite_q);
        out->var_after_n_keys = sfn / (2.0 * (double)finite_q);
        out->drop_n_keys = out->var_before_n_keys - out->var_after_n_keys;
        ats_stat_mean_se(&mean, &out->drop_n_keys_se, drops + queries, finite_q, sizeof *drops);
    } else {
        out->var_before_n_keys = out->var_after_n_keys = out->drop_n_keys = NAN;
        out->drop_n_keys_se = NAN;
    }
    ats_free(drops);
    return ATS_STATUS_OK;
}
