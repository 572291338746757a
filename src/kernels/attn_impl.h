/*
 * attn_impl.h: the body of the blocked self-attention kernel, included twice by attn.c with
 * R = double / float (GEMM, EXP and FN naming the matching BLAS call, libm exp
 * and suffix). Sums over rows, columns and probes are always accumulated in double.
 *
 * Layout (row-major, R unless said otherwise):
 *   Y    (n, d)       unit tokens y_i = x_i / r_i, r_i = |x_i| in double
 *   G_B  (b, n)       rows i0..i0+b of the Gram Y Y^T, computed once per block and reused for
 *                     every beta of the chunk (THEORY.md 2.8)
 *   A_B  (b, n)       softmax rows at one beta
 *   dY   (n, m, d)    the probes' tangent dy_k = (V_k - <y_k, V_k> y_k)/r_k (THEORY.md 2.7),
 *                     token-major so that rows (i, p) of a block are contiguous
 *   dG_B (b m, n)     rows (i, p) of dG = dY Y^T + Y dY^T, reused across beta as G_B is
 *   dA_B (b m, n)     rows (i, p) of dA = A o (beta dG - rowsum(A o beta dG))
 *   JV_B (b m, d)     rows (i, p) of JV = dA Y + A dY + alpha V: one GEMM (b m, n) x (n, d)
 *                     and one (b, n) x (n, m d), whose output has the same (i, p) layout
 *   Xo   (chunk, n, d) outputs x' for the betas of the chunk (pairs only), normalised in place
 *
 * Pass 1 (per chunk of betas, per block of rows): G_B and dG_B once, then per beta the
 * softmax with the row statistics, M_B = A_B Y, the outputs, the probes' JV rows and the exact
 * eta rows. Pass 2 (pairs): per block, the upper part G_B[:, i0:] once, then per beta the
 * output Gram rows Y'_B Y'[i0:]^T and the pair sums for j > i. Per-row results go to arrays
 * indexed by (beta, row) and are summed in row order afterwards, and a block's rows are split
 * over threads without sharing sums, so nothing depends on the thread count; OpenBLAS
 * partitions a GEMM's output, not its inner dimension, so its results do not either.
 */

static int FN(normalise_outputs)(R *xo, int64_t n, int64_t d, int nt) {
    int64_t bad = -1;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        R *row = xo + i * d;
        double s = 0;
        for (int64_t l = 0; l < d; l++)
            s += (double)row[l] * (double)row[l];
        double r = sqrt(s);
        if (!(r > 0) || !isfinite(r)) {
#pragma omp critical(attn_bad_output)
            if (bad < 0 || i < bad)
                bad = i;
            continue;
        }
        for (int64_t l = 0; l < d; l++)
            row[l] = (R)((double)row[l] / r);
    }
    if (bad >= 0)
        ATS_ERROR(ATS_STATUS_ENUM, "output row %lld has norm zero or is not finite",
                  (long long)bad);
    return ATS_STATUS_OK;
}

// Rademacher probes in (i, p, l) layout from one Philox stream read in probe order, so probe p
// is the same whatever the number of probes; then dY = (V - <y, V> y)/r.
static void FN(make_probes)(R *dy, signed char *v, const R *y, const double *r,
                            const struct attn_job *jb, int nt) {
    int64_t n = jb->n, d = jb->d, m = jb->probes;
    struct ats_rng rng;
    ats_rng_init(&rng, jb->seed, jb->stream);
    uint32_t word = 0;
    int bits = 0;
    for (int64_t p = 0; p < m; p++)
        for (int64_t i = 0; i < n; i++)
            for (int64_t l = 0; l < d; l++) {
                if (!bits) {
                    word = ats_rng_u32(&rng);
                    bits = 32;
                }
                v[(i * m + p) * d + l] = (word & 1u) ? 1 : -1;
                word >>= 1;
                bits--;
            }
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t ip = 0; ip < n * m; ip++) {
        int64_t i = ip / m;
        const signed char *vr = v + ip * d;
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
// p, Gram row gr, g = G p, t = (G o G) p and |C_i y_i|^2 = cy2.
static double FN(eta_row)(const R *p, const R *gr, const R *g, const R *t, double cy2,
                          const double *r, int64_t n, int64_t d, int64_t i, double beta,
                          double alpha) {
    double pg = 0, pgg = 0, pgi2 = 0, pt = 0;
    for (int64_t j = 0; j < n; j++) {
        double pj = (double)p[j], gj = (double)g[j], gij = (double)gr[j];
        pg += pj * gj;
        pgg += pj * gj * gj;
        pgi2 += pj * gij * gij;
        pt += pj * (double)t[j];
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

static int FN(run)(const struct attn_job *jb) {
    const int64_t n = jb->n, d = jb->d, nb = jb->nbeta, B = jb->block, K = jb->chunk;
    const int64_t m = jb->eta == ATS_ETA_HUTCHINSON ? jb->probes : 0;
    const int exact = jb->eta == ATS_ETA_EXACT, nt = jb->threads;
    const double alpha = jb->alpha;
    const size_t es = sizeof(R);
    size_t need = ats_attn_workspace(jb, es);
    char *ws = need == SIZE_MAX ? NULL : ats_malloc(need);
    if (!ws)
        ATS_ERROR(ATS_STATUS_ENOMEM, "the layer needs %.3g GB of workspace (n = %lld, d = %lld)",
                  (double)need / 1e9, (long long)n, (long long)d);
    openblas_set_num_threads(nt);
    // Carve the workspace: doubles first, then R arrays, then the probe signs.
    double *r = (double *)(void *)ws, *rows = r + n, *pairsum = rows + 3 * nb * n,
           *erow = pairsum + (jb->pairs ? 3 * nb * n : 0), *jvn = erow + (exact ? nb * n : 0),
           *psum = jvn + B * m;
    R *y = (R *)(void *)(psum + nb * m), *gb = y + n * d, *ab = gb + B * n, *mb = ab + B * n,
      *xo = mb + B * d, *dy = xo + (jb->pairs ? K * n * d : 0), *dg = dy + n * m * d,
      *da = dg + B * m * n, *jv = da + B * m * n, *gv = jv + B * m * d,
      *vb = gv + (exact ? B * n : 0), *tb = vb + (exact ? B * n : 0),
      *hb = tb + (exact ? B * n : 0), *wb = hb + (exact ? B * n : 0);
    signed char *v = (signed char *)(void *)(wb + (exact ? B * d : 0));

    for (int64_t i = 0; i < n; i++) { // pre-LN, with scaling against overflow
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
    if (m) {
        FN(make_probes)(dy, v, y, r, jb, nt);
        for (int64_t k = 0; k < nb * m; k++)
            psum[k] = 0;
    }
    const int in = (int)n, id = (int)d, im = (int)m;
    int rc = ATS_STATUS_OK;
    for (int64_t c0 = 0; c0 < nb && rc == ATS_STATUS_OK; c0 += K) {
        int64_t kc = nb - c0 < K ? nb - c0 : K;
        // Pass 1: rows block by block, every beta of the chunk.
        for (int64_t i0 = 0; i0 < n; i0 += B) {
            int64_t b = n - i0 < B ? n - i0 : B;
            int ib = (int)b;
            GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, ib, in, id, 1, y + i0 * d, id, y, id,
                 0, gb, in);
            if (m) { // dG_B rows (i, p): dY_B Y^T, plus Y_B dY^T read transposed from da
                GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, ib * im, in, id, 1, dy + i0 * m * d,
                     id, y, id, 0, dg, in);
                GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, ib, in * im, id, 1, y + i0 * d, id,
                     dy, id, 0, da, in * im);
#pragma omp parallel for num_threads(nt) schedule(static)
                for (int64_t ip = 0; ip < b * m; ip++) {
                    int64_t i = ip / m, p = ip % m;
                    R *row = dg + ip * n;
                    const R *tr = da + i * n * m + p;
                    for (int64_t j = 0; j < n; j++)
                        row[j] += tr[j * m];
                }
            }
            for (int64_t kb = 0; kb < kc; kb++) {
                int64_t k = c0 + kb;
                double beta = jb->beta[k];
#pragma omp parallel for num_threads(nt) schedule(static)
                for (int64_t i = 0; i < b; i++) {
                    double st[3];
                    FN(softmax_row)(ab + i * n, st, gb + i * n, n, i0 + i, beta);
                    for (int s = 0; s < 3; s++)
                        rows[(s * nb + k) * n + i0 + i] = st[s];
                }
                if (jb->pairs || exact)
                    GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, ib, id, in, 1, ab, in, y, id, 0,
                         mb, id);
                if (jb->pairs) {
                    R *xk = xo + kb * n * d;
                    for (int64_t i = 0; i < b; i++)
                        for (int64_t l = 0; l < d; l++)
                            xk[(i0 + i) * d + l] =
                                (R)((double)mb[i * d + l] + alpha * jb->x[(i0 + i) * d + l]);
                }
                if (m) {
#pragma omp parallel for num_threads(nt) schedule(static)
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
                    GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, ib * im, id, in, 1, da, in, y,
                         id, 0, jv, id);
                    GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, ib, im * id, in, 1, ab, in, dy,
                         im * id, 1, jv, im * id);
#pragma omp parallel for num_threads(nt) schedule(static)
                    for (int64_t ip = 0; ip < b * m; ip++) {
                        const R *row = jv + ip * d;
                        const signed char *vr = v + (i0 * m + ip) * d;
                        double s = 0;
                        for (int64_t l = 0; l < d; l++) {
                            double t = (double)row[l] + alpha * (double)vr[l];
                            s += t * t;
                        }
                        jvn[ip] = s;
                    }
                    for (int64_t ip = 0; ip < b * m; ip++)
                        psum[k * m + ip % m] += jvn[ip];
                }
                if (exact) {
                    // g = G p = Y m_i; t = (G o G) p by column blocks of G; v_j = p_j (G_ij - g_i).
                    GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, ib, in, id, 1, mb, id, y, id, 0,
                         gv, in);
                    for (int64_t j0 = 0; j0 < n; j0 += B) {
                        int jbk = (int)(n - j0 < B ? n - j0 : B);
                        GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, jbk, in, id, 1, y + j0 * d,
                             id, y, id, 0, hb, in);
                        for (int64_t e = 0; e < (int64_t)jbk * n; e++)
                            hb[e] *= hb[e];
                        GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, ib, in, jbk, 1, ab + j0,
                             in, hb, in, j0 ? 1 : 0, tb, in);
                    }
                    for (int64_t i = 0; i < b; i++) {
                        R gi = gv[i * n + i0 + i];
                        for (int64_t j = 0; j < n; j++)
                            vb[i * n + j] = ab[i * n + j] * (gb[i * n + j] - gi);
                    }
                    GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, ib, id, in, 1, vb, in, y, id, 0,
                         wb, id);
#pragma omp parallel for num_threads(nt) schedule(static)
                    for (int64_t i = 0; i < b; i++) {
                        double cy2 = 0;
                        for (int64_t l = 0; l < d; l++)
                            cy2 += (double)wb[i * d + l] * (double)wb[i * d + l];
                        erow[k * n + i0 + i] =
                            FN(eta_row)(ab + i * n, gb + i * n, gv + i * n, tb + i * n, cy2, r, n,
                                        d, i0 + i, beta, alpha);
                    }
                }
            }
        }
        if (!jb->pairs)
            continue;
        // Pass 2: pairs i < j from the upper block rows of G and of the output Gram.
        for (int64_t kb = 0; kb < kc && rc == ATS_STATUS_OK; kb++)
            rc = FN(normalise_outputs)(xo + kb * n * d, n, d, nt);
        for (int64_t i0 = 0; i0 < n && rc == ATS_STATUS_OK; i0 += B) {
            int64_t b = n - i0 < B ? n - i0 : B, w = n - i0;
            GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)b, (int)w, id, 1, y + i0 * d, id,
                 y + i0 * d, id, 0, gb, (int)w);
            int64_t par_i = -1, par_j = -1;
            for (int64_t i = 0; i < b && par_i < 0; i++)
                for (int64_t j = i + 1; j < w; j++)
                    if (!(1 - (double)gb[i * w + j] > 0)) {
                        par_i = i0 + i;
                        par_j = i0 + j;
                        break;
                    }
            if (par_i >= 0) {
                ats_error(__FILE__, __LINE__, ATS_STATUS_EDOM,
                          "tokens %lld and %lld are parallel (cosine 1): lambda is undefined",
                          (long long)par_i, (long long)par_j);
                rc = ATS_STATUS_EDOM;
                break;
            }
            for (int64_t kb = 0; kb < kc; kb++) {
                int64_t k = c0 + kb;
                const R *yo = xo + kb * n * d + i0 * d;
                GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)b, (int)w, id, 1, yo, id, yo, id,
                     0, ab, (int)w);
#pragma omp parallel for num_threads(nt) schedule(static)
                for (int64_t i = 0; i < b; i++) {
                    double so = 0, sl = 0, sa = 0;
                    for (int64_t j = i + 1; j < w; j++) {
                        double g = (double)gb[i * w + j], go = (double)ab[i * w + j];
                        so += go;
                        sl += (1 - go) / (1 - g);
                        if (jb->pairs > 1)
                            sa += acos(fmin(go, 1)) / acos(fmax(fmin(g, 1), -1));
                    }
                    pairsum[(0 * nb + k) * n + i0 + i] = so;
                    pairsum[(1 * nb + k) * n + i0 + i] = sl;
                    pairsum[(2 * nb + k) * n + i0 + i] = sa;
                }
            }
        }
    }
    if (rc == ATS_STATUS_OK) {
        double npairs = 0.5 * (double)n * (double)(n - 1);
        for (int64_t k = 0; k < nb; k++) {
            struct ats_layer_metrics *o = &jb->out[k];
            double s[3] = {0, 0, 0}, q[3] = {0, 0, 0}, e = 0;
            for (int64_t i = 0; i < n; i++)
                for (int t = 0; t < 3; t++) {
                    s[t] += rows[(t * nb + k) * n + i];
                    if (jb->pairs)
                        q[t] += pairsum[(t * nb + k) * n + i];
                }
            o->a_self = s[0] / (double)n;
            o->entropy = s[1] / (double)n;
            o->support = s[2] / (double)n;
            o->rho_out = jb->pairs ? q[0] / npairs : NAN;
            o->lambda = jb->pairs ? q[1] / npairs : NAN;
            o->lambda_angle = jb->pairs > 1 ? q[2] / npairs : NAN;
            o->eta = o->eta_var = NAN;
            if (exact) {
                for (int64_t i = 0; i < n; i++)
                    e += erow[k * n + i];
                o->eta = e / ((double)n * (double)d);
                o->eta_var = 0;
            } else if (m) {
                double nd = (double)n * (double)d, mean = 0, var = 0;
                for (int64_t p = 0; p < m; p++)
                    mean += psum[k * m + p] / nd;
                mean /= (double)m;
                for (int64_t p = 0; p < m; p++)
                    var += (psum[k * m + p] / nd - mean) * (psum[k * m + p] / nd - mean);
                o->eta = mean;
                o->eta_var = m > 1 ? var / (double)(m - 1) : NAN;
            }
        }
    }
    ats_free(ws);
    return rc;
}
