/*
 * stats.h: the summary statistics of the experiment drivers: Monte Carlo means and their
 * standard errors (THEORY.md 1), the variance of a field with its fourth-moment standard error,
 * the pooled standard error of Hutchinson probes, the median, and fixed-width histograms.
 * Internal to the library and its tests (tests/test_stats.c); not installed.
 *
 * Each function reproduces, operation for operation, the code it replaces in tools/cli
 * (cli_mean_se in cli.c, var_se in cmd_query.c, the pooled Hutchinson standard error and
 * median in cmd_phase.c, the two histograms of cmd_reproduce.c): the same sums in the same
 * order, so that results are bit-identical to the CLI's. Do not "improve" the arithmetic
 * (compensated sums, one-pass moments, a precomputed 1/width) without accepting changed
 * output bytes.
 *
 * Strided inputs: the values are first[0], first[stride], first[2 stride], ... with stride
 * in bytes, so one double field of an array of records is read in place (stride
 * sizeof(double) for a plain array; sizeof(struct rec) for &recs[0].field).
 */
#ifndef ATS_EXPERIMENTS_STATS_H
#define ATS_EXPERIMENTS_STATS_H

#include <stddef.h>
#include <stdint.h>

// Mean of m values first[0], first[stride], ... (stride in bytes) and its standard error
// (sample sd / sqrt(m); NAN for m < 2), THEORY.md 1:
//   mean = (sum_i x_i) / m                       (one left-to-right sum),
//   se   = sqrt(sum_i (x_i - mean)^2 / (m - 1) / m)   (two-pass, divided in that order).
// m >= 1; mean and se are written, first is read.
void ats_stat_mean_se(double *mean, double *se, const double *first, int64_t m, size_t stride);

// Sample variance (m - 1 denominator; NAN for m < 2) and its standard error from the fourth
// central moment, sqrt((m4 - m2^2)/m) with biased m2, m4 (NAN for m < 2), as cmd_query.c's
// var_se. With mean from ats_stat_mean_se and c_i = (x_i - mean)^2:
//   var = sum_i c_i / (m - 1),
//   m2 = sum_i c_i / m,  m4 = sum_i c_i^2 / m,  se = sqrt(max(m4 - m2^2, 0) / m).
// (m4 - m2^2)/m estimates Var(c)/m, the asymptotic variance of the sample variance; for
// N(mu, s^2) data se -> s^2 sqrt(2/m). The max(., 0) guards rounding at m4 ~ m2^2 (m = 2, or
// near-constant data). m >= 1; first: the m values at stride bytes.
void ats_stat_var_se(double *var, double *se, const double *first, int64_t m, size_t stride);

// Pooled standard error of nt groups of np values each, given each group's mean (means) and
// sample variance (vars, ignored when np == 1), around the grand mean `mean`: within-group
// plus between-group sums of squares over nt np - 1 degrees of freedom, as cmd_phase.c (NAN
// when nt np < 2). means: (nt,) at mstride bytes; vars: (nt,) at vstride bytes, or NULL when
// np == 1. mean is the caller's grand mean (cmd_phase passes ats_stat_mean_se of the means):
//   ss = sum_t [ (np - 1) vars_t + np (means_t - mean)^2 ]    ((np - 1) vars_t := 0 for np = 1),
//   N = nt np,  se = sqrt(ss / (N - 1) / N).
// When means_t and vars_t are the group means and sample variances of nt np values, ss is
// their total sum of squares about their mean, so se = std(values, ddof = 1)/sqrt(N), the
// THEORY.md 1 standard error of the mean of all N values. nt >= 1, np >= 1.
double ats_stat_pooled_se(const double *means, size_t mstride, const double *vars, size_t vstride,
                          int64_t nt, int64_t np, double mean);

// Median of v: (m,), sorted in place (m >= 1): ascending by qsort, then v[m/2] for odd m and
// 0.5 (v[m/2 - 1] + v[m/2]) for even m. NaNs compare equal to everything, so with a NaN in v
// the order and the result are unspecified (as in cmd_phase.c).
double ats_stat_median(double *v, int64_t m);

// Histogram density: dens: (nbins,) zeroed then, for each value x = first[i*stride] * scale,
// bin b = floor((x - lo) / width) gets `weight` added when 0 <= b < nbins; with closed != 0 a
// value with b == nbins goes to the last bin. Values with any other b, and NaN, are dropped.
// The weight is the caller's: 1 for counts, 1/(m width) for a density over m values (the
// dropped ones included, as the CLI's figures normalise).
//
// closed != 0 folds the whole interval [lo + nbins width, lo + (nbins + 1) width) into the
// last bin, not just the top edge; for data <= lo + nbins width that is numpy.histogram's
// closed last bin.
//
// The two CLI histograms:
//   - ordered weights (cmd_reproduce.c `histogram`): b = floor(t BINS), last bin closed,
//     weight BINS/m. Call with scale = BINS, lo = 0, width = 1: x - 0 and x / 1 are exact,
//     so b is floor(t BINS) bit for bit. The natural lo = 0, width = 1.0/BINS, scale = 1
//     bins the same mathematically, but t / fl(1/BINS) can round differently from t BINS at
//     a bin edge (fl(1/40) > 1/40, so t = k/40 can land in bin k - 1).
//   - fluctuations (fig_subcritical): b = floor((sqrt(n) perp - lo) / width), open top,
//     weight 1/(trials width): scale = sqrt(n), closed = 0.
// nbins >= 1, width > 0, m >= 0.
void ats_stat_histogram(double *dens, int64_t nbins, double lo, double width, const double *first,
                        int64_t m, size_t stride, double scale, double weight, int closed);

#endif // ATS_EXPERIMENTS_STATS_H
