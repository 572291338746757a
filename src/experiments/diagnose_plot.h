/*
 * diagnose_plot.h: the figures of `diagnose --plot` as data (struct figure, run.h), drawn by
 * ats_figure_draw; ats_diagnose_plot_heads (include/attnscale.h) draws the second one with its
 * CSV. Implemented in diagnose_plot.c.
 */
#ifndef ATS_EXPERIMENTS_DIAGNOSE_PLOT_H
#define ATS_EXPERIMENTS_DIAGNOSE_PLOT_H

#include <stdint.h>

#include "experiments/run.h"

// One head: beta_hat_k10 against n on log-log axes. Every row with finite beta_hat > 0 is a
// small grey dot (at most 50000 drawn: beyond that every k-th in row order, and the legend says
// so), the bucket medians are black markers, and the three laws of THEORY.md 4.4 (log:
// slope log n + intercept; polylog: exp(xi log log n + c); power: exp(e log n + c)) are solid
// lines over [fits->n_min, fits->n_max], named in the legend with their parameters and log
// RMSE, the best one marked "best". When target_len (NAN: none) exceeds n_max each law goes
// on dashed to target_len, where a marker shows its prediction; a finite target_len > 0 draws
// a dashed black vertical line at N (legend "target N = ...").
// n, bh: (count,) each row's length and beta_hat_k10; bucket_n, bucket_bh: (nb,) the bucket
// medians of ats_fit_laws; fits from ats_fit_laws (best set); title NULL: a default one.
// Table (f->f.rows), one row per bucket: n, beta_hat_k10_median, beta_hat_log,
// beta_hat_polylog, beta_hat_power (each law's prediction at the bucket's n).
// *out owns everything it points to (figure_free); nothing is borrowed from the arguments.
// Errors: ATS_STATUS_EDOM (fits' range not 1 < n_min <= n_max finite), ATS_STATUS_ENOMEM.
int diagnose_law_figure(struct figure **out, const double *n, const double *bh, int64_t count,
                        const double *bucket_n, const double *bucket_bh, int64_t nb,
                        const struct ats_law_fits *fits, double target_len, const char *title);

// Several heads: the layer x head heat map of ratio (nlayers, nheads) row-major (the median
// ratio beta/beta_hat_k10 of each head). Colour: z = log2 ratio on the diverging map
// ats_plot_colormap_diverging (blue below 1, near-white at 1, red above) with symmetric limits
// +-L, L = max(largest finite |log2 ratio|, 2 log2 window), so the window fills at most the
// middle half of the bar; colour-bar ticks at powers of two labelled as ratios (1/4, 1/2, 1,
// 2, 4, ...). Non-finite or non-positive ratios are grey cells. Layer 0 is the top row,
// labelled by layers[i] (NULL, or a NULL entry: the index i); columns are the heads 0..H-1.
// The critical window [1/window, window]: bracketed on the colour bar, and every cell outside
// it carries a white dot ringed in black. Table: layer (name, or the index as an integer),
// head, ratio_median, in row-major order of ratio.
// Errors: ATS_STATUS_EINVAL (nlayers or nheads < 1, more than 65536 cells, window not finite
// and > 1), ATS_STATUS_ENOMEM.
int diagnose_heads_figure(struct figure **out, const char *const *layers, int64_t nlayers,
                          int64_t nheads, const double *ratio, double window);

#endif // ATS_EXPERIMENTS_DIAGNOSE_PLOT_H
