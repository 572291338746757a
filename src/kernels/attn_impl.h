/*
 * attn_impl.h: the body of the blocked self-attention kernel, included twice by attn.c with
 * R = double / float (GEMM, EXP, EPS and FN naming the BLAS call, libm's exp, the machine
 * epsilon and the suffix). Sums over rows, columns and probes are always accumulated in double.
 * Single-threaded and pure: the caller (src/experiments/phase.c) owns the workspace, the
 * threads and BLAS's thread count; the functions here fill the attn_kernels table of attn.h.
 *
 * Layout (row-major, R unless said otherwise):
 *   Y    (n, d)       unit tokens y_i = x_i / r_i, r_i = |x_i| in double
 *   G_B  (b, n)       rows i0..i0+b of the Gram Y Y^T, computed once per panel and reused for
 *                     every beta of the chunk (THEORY.md 2.8)
 *   A_B  (b, n)       softmax rows at one beta
 *   dY   (n, m, d)    the probes' tangent dy_k = (V_k - <y_k, V_k> y_k)/r_k (THEORY.md 2.7),
 *                     token-major so that rows (i, p) of a block are contiguous
 *   dG_B (b m, n)     rows (i, p) of dG = dY Y^T + Y dY^T, reused across beta as G_B is
 *   dA_B (b m, n)     rows (i, p) of dA = A o (beta dG - rowsum(A o beta dG))
 *   JV_B (b m, d)     rows (i, p) of JV = dA Y + A dY + alpha V: one GEMM (b m, n) x (n, d)
 *                     and one (b, n) x (n, m d), whose output has the same (i, p) layout
 *   Xo   (chunk, n, d) outputs x' for the betas of the chunk (pairs only), normalised in place
 *   A_s, T_s (chunk b, n)  exact eta: every beta's softmax rows and their (G o G) A^T rows,
 *                     G o G formed once per panel in blocks of P rows
 *
 * Rows go in panels of P = job->block rows, each panel through one call with BLAS on one
 * thread (the caller sets it: threaded OpenBLAS 0.3.21 dgemm is not bit-reproducible across
 * thread counts, and two thread pools on the same cores spin against each other). Pass 1 (per
 * chunk of betas, per panel): G rows and dG rows once, then per beta the softmax rows with
 * their statistics, M = A Y, the outputs, the probes' JV rows and the exact eta rows. Pass 2
 * (pairs): per panel the upper G rows G[i0:i0+b, i0:] once, then per beta the output Gram rows
 * and the pair sums for j > i. Per-row results go to arrays indexed by (beta, row) that the
 * caller sums in row order; the panels are fixed by P, so nothing depends on the thread count.
 */

// attn_kernels.prenorm (attn.h): r and Y for rows [i0, i1).
static void FN(prenorm)(const struct attn_job *jb, const struct attn_ws *ws, int64_t i0,
                        int64_t i1) {
    const int64_t d = jb->d;
    double *r = ws->r;
    R *y = ws->y;
    for (int64_t i = i0; i < i1; i++) { // pre-LN, with scaling against overflow
        const double *xr = jb->x + i * d;
        double sc = 0, s = 0;
        for (int64_t l = 0; l < d; l++)
            sc = fmax(sc, fabs(xr[l]));
        for (int64_t l = 0; l < d; l++)
            s += (xr[l] / sc) * (xr[l] / sc);
        r[i] = sc * sqrt(s);
        for (int64_t l = 0; l < d; l++)
            y[i * d + l] = (R)(xr[l] / r[i]);
    }
}

// attn_kernels.normalise (attn.h): rows [i0, i1) of output kb to unit length; the first bad
// row, or -1.
static int64_t FN(normalise)(const struct attn_job *jb, const struct attn_ws *ws, int64_t kb,
                             int64_t i0, int64_t i1) {
    const int64_t n = jb->n, d = jb->d;
    R *xo = (R *)ws->xo + kb * n * d;
    int64_t bad = -1;
    for (int64_t i = i0; i < i1; i++) {
        R *row = xo + i * d;
        double s = 0;
        for (int64_t l = 0; l < d; l++)
            s += (double)row[l] * (double)row[l];
        double r = sqrt(s);
        if (!(r > 0) || !isfinite(r)) {
            if (bad < 0)
                bad = i;
            continue;
        }
        for (int64_t l = 0; l < d; l++)
            row[l] = (R)((double)row[l] / r);
    }
    return bad;
}

// attn_kernels.probe_tangents (attn.h): dY = (V - <y, V> y)/r for probe rows [ip0, ip1).
static void FN(probe_tangents)(const struct attn_job *jb, const struct attn_ws *ws, int64_t ip0,
                               int64_t ip1) {
    const int64_t d = jb->d, m = jb->probes;
    const double *r = ws->r;
    const R *y = ws->y;
    R *dy = ws->dy;
    for (int64_t ip = ip0; ip < ip1; ip++) {
        int64_t i = ip / m;
        const signed char *vr = ws->v + ip * d;
        const R *yr = y + i * d;
        double dot = 0;
        for (int64_t l = 0; l < d; l++)
            dot += (double)vr[l] * (double)yr[l];
        R *out = dy + ip * d;
        for (int64_t l = 0; l < d; l++)
            out[l] = (R)(((double)vr[l] - dot * (double)yr[l]) / r[i]);
    }
}

// Softmax of beta G_i. into a; returns the row's (a_ii, entropy, 1/sum a^2) in st.
static void FN(softmax_row)(R *a, double st[3], const R *g, int64_t n, int64_t i,
                            double beta) {
    R mx = g[0];
    for (int64_t j = 1; j < n; j++)
        mx = g[j] > mx ? g[j] : mx;
    double z = 0, wsum = 0;
    for (int64_t j = 0; j < n; j++) {
        R t = (R)(beta * (double)(g[j] - mx));
        R e = EXP(t);
        a[j] = e;
        z += (double)e;
        wsum += (double)e * (double)t;
    }
    double inv = 1 / z, s2 = 0;
    for (int64_t j = 0; j < n; j++) {
        a[j] = (R)((double)a[j] * inv);
        s2 += (double)a[j] * (double)a[j];
    }
    st[0] = (double)a[i];
    st[1] = log(z) - wsum * inv; // -sum p log p with log p_j = t_j - log z
    st[2] = 1 / s2;
}

// Row i's share of ||J||_F^2 from the Jacobian blocks (THEORY.md 2.5), given its softmax row
// p, Gram row gr, g = G p, pt = p^T (G o G) p and |C_i y_i|^2 = cy2. pt enters only through
// beta^2 pt / r_i^2, so the kernel passes 0 and adds that term once pt is known.
static double FN(eta_row)(const R *p, const R *gr, const R *g, double pt, double cy2,
                          const double *r, int64_t n, int64_t d, int64_t i, double beta,
                          double alpha) {
    double pg = 0, pgg = 0, pgi2 = 0;
    for (int64_t j = 0; j < n; j++) {
        double pj = (double)p[j], gj = (double)g[j], gij = (double)gr[j];
        pg += pj * gj;
        pgg += pj * gj * gj;
        pgi2 += pj * gij * gij;
    }
    double gi = (double)g[i], dm1 = (double)(d - 1);
    double t1 = (1 - pg) - (pgi2 - gi * gi);
    double t2 = (pt - 2 * pgg + pg * pg) - cy2;
    double a = (double)p[i], ri = r[i];
    double sum = (a * a * dm1 + 2 * a * beta * t1 + beta * beta * t2) / (ri * ri) +
                 (2 * alpha / ri) * (a * dm1 + beta * t1) + alpha * alpha * (double)d;
    for (int64_t k = 0; k < n; k++) {
        if (k == i)
            continue;
        double pk = (double)p[k], gik = (double)gr[k], gk = (double)g[k];
        double uw = -gi + gik * gk, uu = 1 - 2 * gk + pg, ww = 1 - gik * gik;
        sum += pk * pk / (r[k] * r[k]) * (dm1 + 2 * beta * uw + beta * beta * uu * ww);
    }
    return sum;
}

// One scratch slice for a panel of P rows (the lengths ats_attn_scratch counts).
struct FN(scratch) {
    R *gb, *ab, *mb, *dg, *da, *jv;
    R *gv, *vb, *hb, *wb; // exact eta only (NULL otherwise)
    R *as, *ts;           // exact eta: the panel's softmax rows and (G o G) A^T rows for every
                          // beta of the chunk, (kc b, n) each
};

static void FN(scratch_carve)(struct FN(scratch) *w, const struct attn_job *jb, R *p) {
    const int64_t n = jb->n, d = jb->d, P = jb->block;
    const int64_t m = jb->eta == ATS_ETA_HUTCHINSON ? jb->probes : 0;
    w->gb = p;
    w->ab = w->gb + P * n;
    w->mb = w->ab + P * n;
    w->dg = w->mb + P * d;
    w->da = w->dg + P * m * n;
    w->jv = w->da + P * m * n;
    w->gv = w->vb = w->hb = w->wb = w->as = w->ts = NULL;
    if (jb->eta == ATS_ETA_EXACT) {
        w->gv = w->jv + P * m * d;
        w->vb = w->gv + P * n;
        w->hb = w->vb + P * n;
        w->wb = w->hb + P * n;
        w->as = w->wb + P * d;
        w->ts = w->as + jb->chunk * P * n;
    }
}

// One panel of rows [i0, i0 + b) through every beta of the chunk [c0, c0 + kc): the Gram rows
// and dG rows once, then per beta the softmax rows, M = A Y, the outputs (pairs), the probes'
// |JV|^2 (pe) and the exact eta rows (erow). scratch is the caller's slice for this call.
static void FN(panel)(const struct attn_job *jb, const struct attn_ws *ws, int64_t i0, int64_t b,
                      int64_t c0, int64_t kc, void *scratch) {
    const int64_t n = jb->n, d = jb->d, nb = jb->nbeta, P = jb->block;
    const int64_t m = jb->eta == ATS_ETA_HUTCHINSON ? jb->probes : 0;
    const int in = (int)n, id = (int)d, im = (int)m, ib = (int)b;
    const double alpha = jb->alpha;
    const R *y = ws->y, *dy = ws->dy;
    struct FN(scratch) sc, *w = &sc;
    FN(scratch_carve)(w, jb, scratch);
    R *gb = w->gb, *mb = w->mb, *dg = w->dg, *da = w->da, *jv = w->jv;
    GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, ib, in, id, 1, y + i0 * d, id, y, id, 0, gb, in);
    if (m) { // dG rows (i, p): dY_i Y^T, plus Y_i dY^T computed into da and read transposed
        GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, ib * im, in, id, 1, dy + i0 * m * d, id, y,
             id, 0, dg, in);
        GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, ib, in * im, id, 1, y + i0 * d, id, dy, id, 0,
             da, in * im);
        for (int64_t ip = 0; ip < b * m; ip++) {
            R *row = dg + ip * n;
            const R *tr = da + (ip / m) * n * m + ip % m;
            for (int64_t j = 0; j < n; j++)
                row[j] += tr[j * m];
        }
    }
    for (int64_t kb = 0; kb < kc; kb++) {
        int64_t k = c0 + kb;
        double beta = jb->beta[k];
        R *ab = w->as ? w->as + kb * b * n : w->ab; // exact eta keeps every beta's rows
        for (int64_t i = 0; i < b; i++) {
            double st[3];
            FN(softmax_row)(ab + i * n, st, gb + i * n, n, i0 + i, beta);
            for (int s = 0; s < 3; s++)
                ws->rows[(s * nb + k) * n + i0 + i] = st[s];
        }
        if (jb->pairs || w->gv)
            GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, ib, id, in, 1, ab, in, y, id, 0, mb, id);
        if (jb->pairs) {
            R *xk = (R *)ws->xo + kb * n * d;
            for (int64_t i = 0; i < b; i++)
                for (int64_t l = 0; l < d; l++)
                    xk[(i0 + i) * d + l] =
                        (R)((double)mb[i * d + l] + alpha * jb->x[(i0 + i) * d + l]);
        }
        if (m) {
            for (int64_t ip = 0; ip < b * m; ip++) {
                const R *a = ab + (ip / m) * n, *g = dg + ip * n;
                R *out = da + ip * n;
                double s = 0;
                for (int64_t j = 0; j < n; j++)
                    s += (double)a[j] * (double)g[j];
                R sr = (R)s, br = (R)beta;
                for (int64_t j = 0; j < n; j++)
                    out[j] = br * a[j] * (g[j] - sr);
            }
            GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, ib * im, id, in, 1, da, in, y, id, 0, jv,
                 id);
            GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, ib, im * id, in, 1, ab, in, dy, im * id, 1,
                 jv, im * id);
            for (int64_t ip = 0; ip < b * m; ip++) {
                const R *row = jv + ip * d;
                const signed char *vr = ws->v + (i0 * m + ip) * d;
                double s = 0;
                for (int64_t l = 0; l < d; l++) {
                    double t = (double)row[l] + alpha * (double)vr[l];
                    s += t * t;
                }
                ws->pe[(k * n + i0) * m + ip] = s;
            }
        }
        if (w->gv) {
            // g = G p = Y m_i; v_j = p_j (G_ij - g_i), C_i y_i = Y^T v.
            R *gv = w->gv, *vb = w->vb, *wb = w->wb;
            GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, ib, in, id, 1, mb, id, y, id, 0, gv, in);
            for (int64_t i = 0; i < b; i++) {
                R gi = gv[i * n + i0 + i];
                for (int64_t j = 0; j < n; j++)
                    vb[i * n + j] = ab[i * n + j] * (gb[i * n + j] - gi);
            }
            GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, ib, id, in, 1, vb, in, y, id, 0, wb, id);
            for (int64_t i = 0; i < b; i++) {
                double cy2 = 0;
                for (int64_t l = 0; l < d; l++)
                    cy2 += (double)wb[i * d + l] * (double)wb[i * d + l];
                ws->erow[k * n + i0 + i] = FN(eta_row)(ab + i * n, gb + i * n, gv + i * n, 0, cy2,
                                                       ws->r, n, d, i0 + i, beta, alpha);
            }
        }
    }
    if (w->as) {
        // pt = p^T (G o G) p for every row and beta: (G o G) by blocks of rows, each computed
        // once and applied to the softmax rows of all the chunk's betas in one GEMM.
        const int mk = (int)(kc * b);
        for (int64_t j0 = 0; j0 < n; j0 += P) {
            int jbk = (int)(n - j0 < P ? n - j0 : P);
            GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, jbk, in, id, 1, y + j0 * d, id, y, id, 0,
                 w->hb, in);
            for (int64_t e = 0; e < (int64_t)jbk * n; e++)
                w->hb[e] *= w->hb[e];
            GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, mk, in, jbk, 1, w->as + j0, in, w->hb,
                 in, j0 ? 1 : 0, w->ts, in);
        }
        for (int64_t kb = 0; kb < kc; kb++)
            for (int64_t i = 0; i < b; i++) {
                const R *p = w->as + (kb * b + i) * n, *t = w->ts + (kb * b + i) * n;
                double pt = 0, beta = jb->beta[c0 + kb], ri = ws->r[i0 + i];
                for (int64_t j = 0; j < n; j++)
                    pt += (double)p[j] * (double)t[j];
                ws->erow[(c0 + kb) * n + i0 + i] += beta * beta * pt / (ri * ri);
            }
    }
}

// The pairs i < j of the panel's rows [i0, i0 + b): the upper Gram rows once, then per beta
// of the chunk the output Gram rows and the row sums of rho', lambda and the angle ratio.
// Returns the first pair (in row order) whose tokens are parallel to working precision
// (1 - <y_i, y_j> <= 8 (d + 4) eps: lambda's denominator is then rounding noise), i returned
// and j in *jpar, before any sum is written; else -1.
static int64_t FN(pairs_panel)(int64_t *jpar, const struct attn_job *jb,
                               const struct attn_ws *ws, int64_t i0, int64_t b, int64_t c0,
                               int64_t kc, void *scratch) {
    const int64_t n = jb->n, d = jb->d, nb = jb->nbeta, wd = n - i0;
    const int id = (int)d;
    const double tol = 8 * (double)(d + 4) * (double)EPS;
    const R *y = ws->y;
    struct FN(scratch) w;
    FN(scratch_carve)(&w, jb, scratch);
    R *gu = w.gb, *pu = w.ab;
    GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)b, (int)wd, id, 1, y + i0 * d, id,
         y + i0 * d, id, 0, gu, (int)wd);
    for (int64_t i = 0; i < b; i++)
        for (int64_t j = i + 1; j < wd; j++)
            if (!(1 - (double)gu[i * wd + j] > tol)) {
                *jpar = i0 + j;
                return i0 + i;
            }
    for (int64_t kb = 0; kb < kc; kb++) {
        int64_t k = c0 + kb;
        const R *yo = (const R *)ws->xo + kb * n * d + i0 * d;
        GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)b, (int)wd, id, 1, yo, id, yo, id, 0, pu,
             (int)wd);
        for (int64_t i = 0; i < b; i++) {
            double so = 0, sl = 0, sa = 0;
            for (int64_t j = i + 1; j < wd; j++) {
                double g = (double)gu[i * wd + j], go = (double)pu[i * wd + j];
                so += go;
                sl += (1 - go) / (1 - g);
                if (jb->pairs > 1)
                    sa += acos(fmax(fmin(go, 1), -1)) / acos(fmax(g, -1));
            }
            ws->pairsum[(0 * nb + k) * n + i0 + i] = so;
            ws->pairsum[(1 * nb + k) * n + i0 + i] = sl;
            ws->pairsum[(2 * nb + k) * n + i0 + i] = sa;
        }
    }
    return -1;
}
