"""attnscale.diagnose with heads, q/k (grouped-query attention), masks, row selection and the
target-length extrapolation (issue 11 item 1), against an independent NumPy reference.

The reference below is written from THEORY.md section 4 alone (float64 NumPy, SciPy's brentq for
the half-mass scale): per-row statistics (4.1, 4.2), length buckets and the three least-squares
laws over bucket medians (4.4), policy slopes (4.5) and the extrapolation to a target length
(4.6). The library is only compared against it, never the source of an expected number; the
only library values used as inputs are the policy multipliers (attnscale.policies, tested on
their own in test_parity.py and the C tests) and, in the formula checks of 4.6, the summary's
own fitted parameters.

Tolerances (both sides compute in float64):
- Per-row statistics, relative 1e-12: beta_hat = max log k / D_(k) is one subtraction (exact
  in both), one log and one division per k, so the two sides differ by a few ulps (libm's log
  against NumPy's, which may be a SIMD implementation); beta_half is the root of a smooth
  monotone function whose relative condition number is ~1 (scaling every gap by c scales the
  root by 1/c), so brentq at rtol 4 eps and the library's Newton agree to ~1e-15; w1 = 1/Z is
  a sum of n positive terms. The entropy gets an absolute 1e-14 beside the relative 1e-12: at
  max weight ~1, H = log Z + beta <D> with Z = 1 + tiny, and log Z has an absolute rounding
  error of ~1e-16 whatever its size.
- Fits, relative 1e-10 on slopes and values, absolute 1e-10 x the scale of the fitted data on
  intercepts, residual sds and RMS errors: bucket medians are the same doubles up to the few
  ulps above; a least-squares line over >= 3 points spread over a factor >= 4 in n amplifies
  that by at most a few hundred, and the intercept loses relative accuracy only by cancellation
  against slope x mean(x) (hence absolute in units of the data), as do residuals of an exact
  law (simplex: they are pure rounding noise).
"""

import math

import numpy as np
import pytest

import attnscale

try:
    from scipy.optimize import brentq
except ImportError:  # pragma: no cover - bisection below
    brentq = None

EPS = np.finfo(np.float64).eps
REL = 1e-12
FIT_REL = 1e-10


def _have_new_api():
    import inspect
    return "layers" in inspect.signature(attnscale.diagnose).parameters


pytestmark = pytest.mark.skipif(
    not _have_new_api(), reason="this build's attnscale.diagnose predates issue 11 (no layers=)")


# ---------------------------------------------------------------------------------------------
# Reference: THEORY.md 4.1-4.2, one row


def _log_sum(x):
    m = x.max()
    return m + math.log(np.sum(np.exp(x - m)))


def _beta_half(gaps):
    """Root of sum_{j != argmax} exp(-beta D_j) = 1 over the sorted gaps (gaps[0] = 0)."""
    n = len(gaps)
    if n == 1:
        return math.nan
    if n == 2:
        return 0.0 if gaps[1] > 0 else math.inf  # e^{-beta D} = 1 only at beta = 0
    rest = gaps[1:]
    if rest[0] == 0:
        return math.inf  # a second maximum: the sum never drops below 1
    g = lambda b: _log_sum(-b * rest)  # noqa: E731  decreasing, root where it crosses 0
    # Each term lies between exp(-b D_(n)) and exp(-b D_(2)): the root lies between these.
    lo, hi = math.log(n - 1) / rest[-1], math.log(n - 1) / rest[0]
    if lo == hi:
        return lo
    lo, hi = lo * (1 - 1e-9), hi * (1 + 1e-9)
    assert g(lo) > 0 > g(hi)
    if brentq is not None:
        return brentq(g, lo, hi, xtol=1e-300, rtol=4 * EPS, maxiter=500)
    for _ in range(2000):  # bisection to adjacent doubles
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        lo, hi = (mid, hi) if g(mid) > 0 else (lo, mid)
    return 0.5 * (lo + hi)


def ref_row(s, beta, window=2.0, half=True):
    """THEORY.md 4.1 statistics of one row of logits s (float64, every entry seen)."""
    s = np.asarray(s, dtype=np.float64)
    n = len(s)
    gaps = np.sort(s.max() - s)
    k = np.arange(1, n + 1, dtype=np.float64)
    with np.errstate(divide="ignore"):
        v = np.log(k[1:]) / gaps[1:]  # D_(k) = 0 for k >= 2: infinite
    bh = float(v.max()) if n >= 2 else math.nan
    bh10 = float(v[8:].max()) if n >= 10 else math.nan
    e = np.exp(-beta * gaps)
    z = float(np.sum(e))
    w = e / z
    entropy = math.log(z) + beta * float(np.sum(w * gaps))
    ratio = beta / bh10 if not math.isnan(bh10) else math.nan
    if math.isnan(ratio):
        regime = "undetermined"
    elif ratio < 1 / window:
        regime = "subcritical"
    elif ratio <= window:
        regime = "critical"
    else:
        regime = "supercritical"
    return dict(n=n, beta_hat=bh, beta_hat_k10=bh10,
                beta_half=_beta_half(gaps) if half else math.nan,
                entropy=entropy, w1=1 / z, ratio=ratio, regime=regime, beta_applied=beta,
                window=window)


def ref_rows(scores, seen=None, beta=1.0, window=2.0, rows=None, mult=None, half=True):
    """Per-row reference over a 2-D (rows, n) float64 array; seen: bool (rows, n) or None."""
    scores = np.asarray(scores, dtype=np.float64)
    idx = range(scores.shape[0]) if rows is None else rows
    out = {}
    for i in idx:
        row = scores[i] if seen is None else scores[i][seen[i]]
        m = 1.0 if mult is None else mult[i]
        r = ref_row(row, beta * m, window, half)
        r["row"] = i
        for key, val in r.items():
            out.setdefault(key, []).append(val)
    return {k: np.array(v) for k, v in out.items()}


# ---------------------------------------------------------------------------------------------
# Reference: THEORY.md 4.4-4.6


def ref_buckets(n, bh):
    """Bucket medians of (n, beta_hat_k10): exact lengths when at most 64 distinct, else
    lengths within a factor 2^(1/4) (floor(4 log2 n)); buckets with a finite positive median."""
    n = np.asarray(n, dtype=np.float64)
    bh = np.asarray(bh, dtype=np.float64)
    keep = (n >= 3) & ~np.isnan(bh)
    n, bh = n[keep], bh[keep]
    key = n if len(np.unique(n)) <= 64 else np.floor(4 * np.log2(n))
    bn, bb = [], []
    for kk in np.unique(key):
        sel = key == kk
        bn.append(np.median(n[sel]))
        bb.append(np.median(bh[sel]))
    bn, bb = np.array(bn), np.array(bb)
    ok = np.isfinite(bb) & (bb > 0)
    return bn[ok], bb[ok], (n.max() if len(n) else math.nan)


def ref_line(x, y):
    xm, ym = x.mean(), y.mean()
    sxx = np.sum((x - xm) ** 2)
    slope = np.sum((x - xm) * (y - ym)) / sxx
    icpt = ym - slope * xm
    res = y - (slope * x + icpt)
    ss, syy = np.sum(res ** 2), np.sum((y - ym) ** 2)
    return dict(slope=slope, intercept=icpt, r2=1 - ss / syy if syy > 0 else 1.0,
                resid_sd=math.sqrt(ss / (len(x) - 2)))


def predict(law, p, n):
    """A law's beta_hat at length n; p: {law: (slope, intercept)}."""
    a, c = p[law]
    if law == "log":
        return a * math.log(n) + c
    if law == "polylog":
        return math.exp(a * math.log(math.log(n)) + c)
    return math.exp(a * math.log(n) + c)


def ref_fits(n, bh):
    bn, bb, largest = ref_buckets(n, bh)
    assert len(bn) >= 3, "the reference needs 3 buckets"
    x, lx = np.log(bn), np.log(np.log(bn))
    fits = {"log": ref_line(x, bb), "polylog": ref_line(lx, np.log(bb)),
            "power": ref_line(x, np.log(bb))}
    p = {law: (f["slope"], f["intercept"]) for law, f in fits.items()}
    for law, f in fits.items():
        pr = np.array([predict(law, p, v) for v in bn])
        with np.errstate(invalid="ignore"):
            f["log_rmse"] = math.sqrt(np.mean((np.log(pr) - np.log(bb)) ** 2))
    rm = {law: f["log_rmse"] for law, f in fits.items()}
    best = min(rm, key=lambda law: (math.isnan(rm[law]), rm[law]))
    return dict(fits=fits, params=p, best=best, bn=bn, bb=bb, largest=largest,
                scale=dict(log=np.ptp(bb) + np.abs(bb).max(),
                           polylog=1 + np.abs(np.log(bb)).max(),
                           power=1 + np.abs(np.log(bb)).max()))


def policy_mult(name, n, params):
    """Multipliers of a policy at the last row of length(s) n (library's policies)."""
    n = np.atleast_1d(np.asarray(n, dtype=np.int64))
    r = attnscale.policies(policy=name, n=[int(v) for v in n], **params)
    assert list(r["n"]) == list(n)
    return np.asarray(r["multiplier"], dtype=np.float64), list(r["scope"])


def ref_policy(name, ref, beta, params):
    """THEORY.md 4.5: slope of log(beta m(n)/beta_hat(n)) over the buckets, ratio at the
    largest length, under the best law."""
    lens = ref["bn"]
    # The policy at the nearest integer length (half away from zero: C's llround), the law at
    # the bucket's median length itself (a half-integer when the bucket has an even count).
    m, _ = policy_mult(name, np.floor(lens + 0.5), params)
    pred = np.array([predict(ref["best"], ref["params"], v) for v in lens])
    slope = ref_line(np.log(lens), np.log(beta * m / pred))["slope"]
    big = ref["largest"]
    mb, _ = policy_mult(name, math.floor(big + 0.5), params)
    return dict(slope=slope, ratio_at_max=beta * mb[0] / predict(ref["best"], ref["params"], big))


# ---------------------------------------------------------------------------------------------
# Comparison helpers

ROW_FLOATS = ("beta_hat", "beta_hat_k10", "beta_half", "w1", "ratio", "beta_applied")


def close(got, want, rel, abs_=0.0):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    fin = np.isfinite(got) & np.isfinite(want)
    near = fin & (np.abs(got - want) <= rel * np.abs(want) + abs_)
    return same | near


def assert_close(name, got, want, rel, abs_=0.0):
    ok = close(got, want, rel, abs_)
    if not ok.all():
        i = np.flatnonzero(~ok)
        g, w = np.asarray(got, dtype=float)[i], np.asarray(want, dtype=float)[i]
        raise AssertionError(f"{name}: {len(i)} of {ok.size} differ; first at {i[:5]}: got "
                             f"{g[:5].tolist()} want {w[:5].tolist()}")


def assert_rows_match(got, want, rel=REL, rel_h=None, label=""):
    """Library row records (dict of arrays, one head) against ref_rows."""
    assert list(got["row"]) == list(want["row"]), f"{label} rows"
    assert list(got["n"]) == list(want["n"]), f"{label} n"
    for key in ROW_FLOATS:
        if key == "beta_half" and np.isnan(want[key]).all() and not np.isnan(got[key]).all():
            continue  # the reference skipped beta_half (half=False)
        r = rel if np.isscalar(rel) else rel[key]
        assert_close(f"{label} {key}", got[key], want[key], r)
    rh = rel if rel_h is None else rel_h
    assert_close(f"{label} entropy", got["entropy"], want["entropy"], rh, 1e-14)
    # The regime, except where the reference's ratio is within REL of a window edge (there
    # the library's own ratio decides: test_regime_window_edges checks the edges exactly).
    for i, (g, w) in enumerate(zip(got["regime"], want["regime"])):
        r, win = want["ratio"][i], want["window"][i]
        edge = any(abs(r - e) <= 10 * REL * e for e in (1 / win, win))
        assert g == w or edge, f"{label} row {want['row'][i]}: regime {g}, reference {w}"


def assert_fits_match(summary, ref, label="", rel=FIT_REL):
    """A summary record's fits against ref_fits."""
    names = dict(log=("log_slope", "log_intercept", "log_r2", "log_resid_sd", "log_rmse"),
                 polylog=("polylog_xi", "polylog_c", "polylog_r2", "polylog_resid_sd",
                          "polylog_rmse"),
                 power=("power_e", "power_c", "power_r2", "power_resid_sd", "power_rmse"))
    assert summary["buckets"] == len(ref["bn"]), f"{label} buckets"
    assert summary["n_min"] == ref["bn"][0] and summary["n_max"] == ref["bn"][-1], label
    for law, keys in names.items():
        f, sc = ref["fits"][law], ref["scale"][law]
        assert_close(f"{label} {keys[0]}", summary[keys[0]], f["slope"], rel)
        assert_close(f"{label} {keys[1]}", summary[keys[1]], f["intercept"], 0, rel * sc)
        assert_close(f"{label} {keys[2]}", summary[keys[2]], f["r2"], 0, rel * 10)
        assert_close(f"{label} {keys[3]}", summary[keys[3]], f["resid_sd"], rel, rel * sc)
        assert_close(f"{label} {keys[4]}", summary[keys[4]], f["log_rmse"], rel, rel * sc)
    # best: the smallest log_rmse (NaN when a law predicts beta_hat <= 0 at some bucket). Two
    # laws within rounding of each other are a tie (the simplex's a log n is both the log law
    # and the polylog law with xi = 1): either may be named.
    rm = {law: ref["fits"][law]["log_rmse"] for law in names
          if not math.isnan(ref["fits"][law]["log_rmse"])}
    low = min(rm.values())
    ties = {law for law, v in rm.items() if v <= low * (1 + 1e-8) + 1e-12}
    assert summary["best"] in ties, f"{label} best: {summary['best']}, reference {sorted(ties)}"
    assert summary["power_alpha"] == pytest.approx(2 / summary["power_e"], rel=1e-15)


def select(res, key, value):
    """The part of a result (rows, summary, policies) whose records carry key == value."""
    rows = res["rows"]
    i = np.flatnonzero(np.asarray(rows[key]) == value)
    prow = res["policies"]
    j = np.flatnonzero(np.asarray(prow[key]) == value) if key in prow else np.array([], int)
    return ({k: np.asarray(v)[i] for k, v in rows.items()},
            [s for s in res["summary"] if s.get(key) == value],
            {k: np.asarray(v)[j] for k, v in prow.items()})


def assert_equal_columns(a, b, skip=("head", "layer"), label=""):
    ka, kb = set(a) - set(skip), set(b) - set(skip)
    assert ka == kb, f"{label} keys differ: {sorted(ka ^ kb)}"
    for k in ka:
        x, y = np.asarray(a[k]), np.asarray(b[k])
        assert x.shape == y.shape, f"{label} {k}: {x.shape} vs {y.shape}"
        if x.dtype.kind == "f":
            assert np.array_equal(x, y, equal_nan=True), f"{label} {k}: {x} vs {y}"
        else:
            assert list(x) == list(y), f"{label} {k}"


def assert_equal_summary(a, b, skip=("head", "layer"), label=""):
    ka, kb = set(a) - set(skip), set(b) - set(skip)
    assert ka == kb, f"{label} summary keys differ: {sorted(ka ^ kb)}"
    for k in ka:
        x, y = a[k], b[k]
        if isinstance(x, float) and isinstance(y, float) and math.isnan(x):
            assert math.isnan(y), f"{label} {k}"
        else:
            assert x == y, f"{label} summary {k}: {x!r} vs {y!r}"


def gaussian(shape, seed, sd=3.0, dtype=np.float64):
    return (sd * np.random.default_rng(seed).standard_normal(shape)).astype(dtype)


def finite_median(x):
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    return float(np.median(x)) if len(x) else math.nan


def is_null(v):
    return v is None or (isinstance(v, float) and math.isnan(v))


def causal_seen(rows, n):
    return np.arange(n)[None, :] <= np.arange(rows)[:, None]


# Summary keys written only when the input has heads (a 2-D input's summary is unchanged).
HEAD_ONLY = ("ratio_median", "share_subcritical", "share_critical", "share_supercritical",
             "share_undetermined")


def check_shares(summ, regimes, label=""):
    """share_<regime>: the fraction of the head's rows in each regime (first beta, window)."""
    regimes = list(regimes)
    for name in ("subcritical", "critical", "supercritical", "undetermined"):
        assert summ[f"share_{name}"] == regimes.count(name) / len(regimes), f"{label} {name}"


POLICY_ARGS = dict(policy="all", train_len=16, d=64)
POLICY_PARAMS = dict(train_len=16, d=64)


def check_head_against_reference(rows, summ, pols, scores2d, seen, beta=1.0, window=2.0,
                                 sel=None, params=POLICY_PARAMS, label="", row_rel=REL,
                                 fit_rel=FIT_REL, mult=None):
    """One head's records against the reference computed from its (rows, n) logits."""
    ref = ref_rows(scores2d, seen, beta, window, rows=sel, mult=mult)
    rh = row_rel if np.isscalar(row_rel) else row_rel["entropy"]
    assert_rows_match(rows, ref, rel=row_rel, rel_h=rh, label=label)
    rf = ref_fits(ref["n"], ref["beta_hat_k10"])
    assert_fits_match(summ, rf, label=label, rel=fit_rel)
    assert summ["rows"] == len(ref["row"])
    # ratio_median: the median of the rows' finite ratios (the library's own column, exactly;
    # and the reference's at the row tolerance); the regime shares. The library writes them
    # with heads only (2-D input: the output of before heads).
    rr = row_rel if np.isscalar(row_rel) else float(np.max(row_rel["ratio"]))
    if "head" in summ or "ratio_median" in summ:
        assert summ["ratio_median"] == finite_median(rows["ratio"]), label
        assert summ["ratio_median"] == pytest.approx(finite_median(ref["ratio"]), rel=rr)
        check_shares(summ, ref["regime"], label)
    if pols and len(pols.get("policy", [])):
        for i, name in enumerate(pols["policy"]):
            rp = ref_policy(name, rf, beta, params)
            assert_close(f"{label} {name} slope", pols["slope"][i], rp["slope"], fit_rel,
                         fit_rel)
            assert_close(f"{label} {name} ratio_at_max", pols["ratio_at_max"][i],
                         rp["ratio_at_max"], fit_rel)
        # The ranked policies are exactly those whose multiplier scales whole logits.
        big = int(math.floor(rf["largest"] + 0.5))
        allp = attnscale.policies(n=big, **params)
        whole = {p for p, sc, m in zip(allp["policy"], allp["scope"], allp["multiplier"])
                 if sc == "all" and not math.isnan(m)}
        assert set(pols["policy"]) == whole, f"{label} ranked {sorted(pols['policy'])}"
        # rank: by |slope| (equal ranks for slopes equal to rounding)
        order = np.argsort(np.asarray(pols["rank"]), kind="stable")
        a = np.abs(np.asarray(pols["slope"], dtype=float))[order]
        assert np.all(np.diff(a) >= -1e-9 * a[1:]), f"{label} ranking not by |slope|"
    return ref, rf


# ---------------------------------------------------------------------------------------------
# Heads


def test_heads_scores_4d():
    """(2, 3, rows, n) scores: 6 heads in C order, each with its rows, summary and policy
    records; each head equals diagnose on its 2-D slice (exactly) and the reference."""
    R = 90
    s = gaussian((2, 3, R, R), seed=3, dtype=np.float32)
    res = attnscale.diagnose(scores=s, causal=True, **POLICY_ARGS)
    rows = res["rows"]
    assert list(rows["head"]) == [h for h in range(6) for _ in range(R)]
    assert [sm["head"] for sm in res["summary"]] == list(range(6))
    ph = list(res["policies"]["head"])
    assert ph == sorted(ph) and set(ph) == set(range(6)), "policy records grouped by head"
    seen = causal_seen(R, R)
    flat = s.reshape(6, R, R)
    for h in range(6):
        assert np.array_equal(flat[h], s[h // 3, h % 3])
        hr, hs, hp = select(res, "head", h)
        assert len(hs) == 1
        one = attnscale.diagnose(scores=flat[h], causal=True, **POLICY_ARGS)
        assert "head" not in one["rows"] and "head" not in one["summary"][0]
        assert "head" not in one["policies"]
        assert_equal_columns(hr, one["rows"], label=f"head {h} rows")
        # ratio_median and the shares: written with heads only (2-D: the output of before)
        assert_equal_summary(hs[0], one["summary"][0], label=f"head {h}",
                             skip=("head",) + HEAD_ONLY)
        assert_equal_columns(hp, one["policies"], label=f"head {h} policies")
        check_head_against_reference(hr, hs[0], hp, flat[h], seen, label=f"head {h}")


def test_heads_ratio_median_null_and_3d():
    """A (2, 5, 8) array: 2 heads of rows with n = 8 < 10, so no beta_hat_k10, no finite
    ratio: ratio_median is null; the fit fails and says so; rows still match the reference."""
    s = gaussian((2, 5, 8), seed=4)
    res = attnscale.diagnose(scores=s)
    assert list(res["rows"]["head"]) == [0] * 5 + [1] * 5
    for h in range(2):
        hr, hs, _ = select(res, "head", h)
        assert is_null(hs[0]["ratio_median"])
        assert hs[0]["share_undetermined"] == 1
        assert hs[0].get("fit_error"), "a summary without fits says why"
        assert_rows_match(hr, ref_rows(s[h], None), label=f"head {h}")


def test_heads_policy_multiplier_and_betas():
    """A row-dependent policy (qwen-logn, L = 16: row p's beta times log(p+1)/log 16 beyond
    p = 15) with two betas and two windows: one record per row and (beta, window), beta then
    window; each matches the reference at beta x multiplier(p); ratio_median is over the
    rows at the first beta and window; one policy record per beta (4.5's slope at that beta)."""
    R, betas, windows = 120, [0.7, 2.0], [2.0, 3.0]
    s = gaussian((2, R, R), seed=5, dtype=np.float32)
    params = dict(train_len=16)
    res = attnscale.diagnose(scores=s, causal=True, policy="qwen-logn", beta=betas,
                             window=windows, **params)
    mult = np.asarray(attnscale.policies(policy="qwen-logn", pos=list(range(R)), **params)
                      ["multiplier"], dtype=np.float64)
    assert mult[-1] > 1.5 and mult[0] == 1
    seen = causal_seen(R, R)
    for h in range(2):
        hr, hs, hp = select(res, "head", h)
        combos = [(b, w) for b in betas for w in windows]
        assert list(zip(hr["beta"], hr["window"])) == combos * R
        assert list(hr["row"]) == [p for p in range(R) for _ in combos]
        for c, (b, w) in enumerate(combos):
            part = {k: np.asarray(v)[c::len(combos)] for k, v in hr.items()}
            assert np.array_equal(part["multiplier"], mult)
            ref = ref_rows(s[h], seen, b, w, mult=mult)
            assert_rows_match(part, ref, label=f"head {h} beta {b} window {w}")
            if c == 0:
                assert hs[0]["ratio_median"] == finite_median(part["ratio"])
                assert hs[0]["ratio_median"] == pytest.approx(finite_median(ref["ratio"]),
                                                              rel=REL)
                check_shares(hs[0], ref["regime"], f"head {h}")
        rf = ref_fits(np.arange(1, R + 1), ref["beta_hat_k10"])
        assert_fits_match(hs[0], rf, label=f"head {h}")
        assert list(hp["policy"]) == ["qwen-logn"] * 2 and list(hp["beta"]) == betas
        for i, b in enumerate(betas):
            rp = ref_policy("qwen-logn", rf, b, params)
            assert_close(f"head {h} slope", hp["slope"][i], rp["slope"], FIT_REL, FIT_REL)
            assert_close(f"head {h} ratio_at_max", hp["ratio_at_max"][i], rp["ratio_at_max"],
                         FIT_REL)


def test_regime_window_edges():
    """THEORY.md 4.2: critical is 1/W <= beta/beta_hat_k10 <= W, both edges included. Row 0's
    beta_hat_k10 b (read from a first run: an input here, not an expectation) at beta = b/2
    and 2b gives ratios of exactly 1/2 and 2 (scaling by 2 is exact)."""
    s = gaussian((2, 20, 50), seed=6)
    b = float(select(attnscale.diagnose(scores=s), "head", 0)[0]["beta_hat_k10"][0])
    res = attnscale.diagnose(scores=s, beta=[b / 2, 2 * b])
    hr, hs, _ = select(res, "head", 0)
    assert list(hr["ratio"][:2]) == [0.5, 2.0]
    assert list(hr["regime"][:2]) == ["critical", "critical"]
    for h in range(2):
        hr = select(res, "head", h)[0]
        for c, beta in enumerate((b / 2, 2 * b)):
            part = {k: np.asarray(v)[c::2] for k, v in hr.items()}
            assert_rows_match(part, ref_rows(s[h], None, beta), label=f"head {h} beta {beta}")


# ---------------------------------------------------------------------------------------------
# q, k and grouped-query attention


def dgemm_bounds(q, k, scale, seen, logits, beta):
    """Per-row relative tolerances for statistics of logits formed by two different float64
    matrix products (NumPy's and the library's dgemm) of the same q, k.

    Each computed logit is within gamma_{d+1} |scale| sum_l |q_l k_l| of the exact one
    (d products and d - 1 additions, plus the scale: the standard bound, for any summation
    order, with or without FMA), so the two sides differ by at most E = 2 gamma_{d+1} x that.
    Sorted gaps are 1-Lipschitz in the sup norm of the logits twice over (max and order
    statistic), so each D_(k) moves by <= 2E and log k / D_(k) by a relative
    2E/(D_(k) - 2E): beta_hat is bounded through D_(2), beta_hat_k10 (and ratio) through
    D_(10), beta_half too through D_(2) (scaling every gap by c scales the root by 1/c, and the
    root is monotone in each gap). Z = sum exp(-beta D_j) moves by a factor exp(+-2 beta E),
    so w1 by 2 beta E relative; |dH/ds_j| sums to at most 2 beta H, so H moves by 2 beta E H
    (doubled for second order). REL is added for the arithmetic after the logits."""
    d = q.shape[-1]
    u = EPS / 2
    gamma = (d + 1) * u / (1 - (d + 1) * u)
    absprod = np.abs(scale) * (np.abs(q) @ np.abs(k).T)
    out = {key: [] for key in ROW_FLOATS}
    out["entropy"] = []
    for i in range(logits.shape[0]):
        row, a = logits[i][seen[i]], absprod[i][seen[i]]
        E = 2 * gamma * a.max()
        g = np.sort(row.max() - row)
        d2 = g[1] if len(g) > 1 else math.inf
        d10 = g[9] if len(g) > 9 else math.inf
        b2 = 2 * E / (d2 - 2 * E) if d2 > 2 * E else math.inf
        b10 = 2 * E / (d10 - 2 * E) if d10 > 2 * E else math.inf
        out["beta_hat"].append(b2 + REL)
        out["beta_hat_k10"].append(b10 + REL)
        out["ratio"].append(b10 + REL)
        out["beta_half"].append(b2 + REL)
        out["w1"].append(math.expm1(2 * beta * E) + REL)
        out["entropy"].append(4 * beta * E + REL)
        out["beta_applied"].append(0.0)
    return {key: np.array(v) for key, v in out.items()}


@pytest.mark.parametrize("scale", [None, 0.37])
def test_q_k_gqa(scale):
    """q (8, rows, d), k (2, n, d): query head h uses key head h // 4; logits scale q.k
    (default 1/sqrt(d)) formed in NumPy give the same statistics within the dgemm bound, and
    scores given directly match the reference at REL."""
    H, KV, R, d = 8, 2, 80, 16
    rng = np.random.default_rng(7)
    q = rng.standard_normal((H, R, d)).astype(np.float32)
    k = rng.standard_normal((KV, R, d)).astype(np.float32)
    sc = 1 / math.sqrt(d) if scale is None else scale
    q64, k64 = q.astype(np.float64), k.astype(np.float64)
    logits = np.stack([sc * (q64[h] @ k64[h // (H // KV)].T) for h in range(H)])
    args = dict(causal=True, **POLICY_ARGS)
    res = attnscale.diagnose(q=q, k=k, scale=scale, **args)
    direct = attnscale.diagnose(scores=logits, **args)
    assert list(res["rows"]["head"]) == [h for h in range(H) for _ in range(R)]
    seen = causal_seen(R, R)
    for h in range(H):
        hr, hs, hp = select(res, "head", h)
        dr, ds, dp = select(direct, "head", h)
        tol = dgemm_bounds(q64[h], k64[h // 4], sc, seen, logits[h], 1.0)
        worst = max(float(np.max(v)) for v in tol.values())
        assert worst < 1e-9, f"the data make the dgemm bound loose ({worst})"
        # Fits and policies from q/k: the bucket medians agree to the rows' bound, which the
        # least-squares lines amplify by at most a few hundred (see the module docstring).
        check_head_against_reference(hr, hs[0], hp, logits[h], seen, label=f"q/k head {h}",
                                     row_rel=tol, fit_rel=max(FIT_REL, 1e3 * worst))
        check_head_against_reference(dr, ds[0], dp, logits[h], seen, label=f"direct {h}")
    # A wrong head mapping would show: head 3 and head 4 use different key heads.
    assert not np.array_equal(select(res, "head", 3)[0]["beta_hat"],
                              select(res, "head", 4)[0]["beta_hat"])


def test_q_k_with_mask():
    """q/k heads with a float mask broadcast over heads (1, rows, n): the logits of the seen
    keys, within the dgemm bound of the NumPy reference."""
    H, KV, R, n, d = 4, 2, 60, 150, 8
    rng = np.random.default_rng(10)
    q = rng.standard_normal((H, R, d))
    k = rng.standard_normal((KV, n, d))
    seen = random_seen(R, n, seed=11)
    mask = float_mask(seen, np.float32, np.finfo(np.float32).min)[None]
    res = attnscale.diagnose(q=q, k=k, mask=mask, scale=0.5)
    for h in range(H):
        logits = 0.5 * (q[h] @ k[h // 2].T)
        tol = dgemm_bounds(q[h], k[h // 2], 0.5, seen, logits, 1.0)
        worst = max(float(np.max(v)) for v in tol.values())
        assert worst < 1e-9
        hr, hs, _ = select(res, "head", h)
        check_head_against_reference(hr, hs[0], {}, logits, seen, row_rel=tol,
                                     fit_rel=max(FIT_REL, 1e3 * worst), label=f"q/k mask {h}")


def test_q_k_leading_axes_flatten():
    """q (2, 4, rows, d) with k (2, 1, n, d): 8 query heads and 2 key heads after flattening
    in C order, the same records as q (8, rows, d) with k (2, n, d) (the same engine)."""
    rng = np.random.default_rng(9)
    q = rng.standard_normal((8, 40, 8))
    k = rng.standard_normal((2, 40, 8))
    a = attnscale.diagnose(q=q, k=k, causal=True)
    b = attnscale.diagnose(q=q.reshape(2, 4, 40, 8), k=k.reshape(2, 1, 40, 8), causal=True)
    assert_equal_columns(a["rows"], b["rows"], skip=())
    for x, y in zip(a["summary"], b["summary"]):
        assert_equal_summary(x, y, skip=())


def test_q_k_heads_must_divide():
    rng = np.random.default_rng(8)
    q = rng.standard_normal((6, 20, 8))
    k = rng.standard_normal((4, 20, 8))
    # The library's message, and nothing before it (no layers: no "layer NAME: " prefix).
    with pytest.raises(ValueError, match=r"^--q has 6 heads and --k 4: the key heads must "
                                         r"divide"):
        attnscale.diagnose(q=q, k=k)


# ---------------------------------------------------------------------------------------------
# Masks


def random_seen(R, n, seed, lo=12):
    """Each row sees a random subset of the keys, of a random size in [lo, n]."""
    rng = np.random.default_rng(seed)
    seen = np.zeros((R, n), dtype=bool)
    for i in range(R):
        seen[i, rng.choice(n, size=rng.integers(lo, n + 1), replace=False)] = True
    return seen


MR, MN = 50, 160


def float_mask(seen, dtype, low):
    m = np.zeros(seen.shape, dtype=dtype)
    m[~seen] = low
    return m


MASKS = {
    "bool": lambda seen: seen,
    "float32_min": lambda seen: float_mask(seen, np.float32, np.finfo(np.float32).min),
    "float64_-inf": lambda seen: float_mask(seen, np.float64, -np.inf),
    "float64_-1e30": lambda seen: float_mask(seen, np.float64, -1e30),
    "float16_min": lambda seen: float_mask(seen, np.float16, np.finfo(np.float16).min),
    "float16_-32752": lambda seen: float_mask(seen, np.float16, -32752.0),
    "float32_half_min": lambda seen: float_mask(seen, np.float32,
                                                np.float32(np.finfo(np.float32).min) / 2),
}


@pytest.mark.parametrize("kind", sorted(MASKS))
def test_mask_kinds(kind):
    """Every kind of mask marks the same unseen keys: each row's n counts its seen keys and
    its statistics are those of its seen logits (reference); all kinds give the same records."""
    s = gaussian((MR, MN), seed=11, dtype=np.float32)
    seen = random_seen(MR, MN, seed=12)
    mask = MASKS[kind](seen)
    res = attnscale.diagnose(scores=s, mask=mask, **POLICY_ARGS)
    assert list(res["rows"]["n"]) == list(seen.sum(axis=1))
    check_head_against_reference(res["rows"], res["summary"][0], res["policies"], s, seen,
                                 label=kind)
    if kind != "bool":
        base = attnscale.diagnose(scores=s, mask=seen, **POLICY_ARGS)
        assert_equal_columns(res["rows"], base["rows"], label=kind)
        assert_equal_summary(res["summary"][0], base["summary"][0], label=kind)


def test_mask_threshold_is_half_the_lowest():
    """float16: -32752 marks an unseen key, the next float16 above it (-32736) is a finite
    additive bias on a seen key (DESIGN: <= half the dtype's lowest value)."""
    s = gaussian((30, 40), seed=13)
    m = np.zeros((30, 40), dtype=np.float16)
    m[:, 0] = -32736.0
    m[:, 1] = -32752.0
    res = attnscale.diagnose(scores=s, mask=m)
    assert list(res["rows"]["n"]) == [39] * 30
    seen = np.ones((30, 40), dtype=bool)
    seen[:, 1] = False
    shifted = s.copy()
    shifted[:, 0] += -32736.0
    assert_rows_match(res["rows"], ref_rows(shifted, seen))


@pytest.mark.parametrize("shape", [(1, 1, MR, MN), (MR, MN), (3, MR, MN), (1, MN)])
def test_mask_broadcast_over_heads(shape):
    """A mask broadcast (NumPy rules, right-aligned) to (2, 3, rows, n): head h = (a, b) uses
    np.broadcast_to(mask, scores.shape)[a, b]."""
    s = gaussian((2, 3, MR, MN), seed=14, dtype=np.float32)
    seen_full = np.empty(shape, dtype=bool)
    flatseen = random_seen(int(np.prod(shape[:-1])), MN, seed=15)
    seen_full[...] = flatseen.reshape(shape)
    mask = float_mask(seen_full, np.float32, np.finfo(np.float32).min)
    res = attnscale.diagnose(scores=s, mask=mask, **POLICY_ARGS)
    b = np.broadcast_to(seen_full, s.shape).reshape(6, MR, MN)
    flat = s.reshape(6, MR, MN)
    for h in range(6):
        hr, hs, hp = select(res, "head", h)
        if shape == (1, MN):  # every row the same length: no fit; rows only
            assert_rows_match(hr, ref_rows(flat[h], b[h]), label=f"head {h}")
            continue
        check_head_against_reference(hr, hs[0], hp, flat[h], b[h], label=f"{shape} head {h}")


def test_mask_additive_bias():
    """A finite float mask adds to the seen keys' logits (an ALiBi-like bias; float64 and
    float32 masks, the sum formed in float64), -inf entries hide keys."""
    s = gaussian((MR, MN), seed=16, dtype=np.float32)
    seen = random_seen(MR, MN, seed=17)
    rng = np.random.default_rng(18)
    for dtype in (np.float64, np.float32):
        bias = rng.uniform(-2, 2, size=(MR, MN)).astype(dtype)
        bias[~seen] = -np.inf
        res = attnscale.diagnose(scores=s, mask=bias, **POLICY_ARGS)
        total = s.astype(np.float64) + bias.astype(np.float64)
        check_head_against_reference(res["rows"], res["summary"][0], res["policies"], total,
                                     seen, label=f"bias {np.dtype(dtype).name}")


def test_mask_hides_nan_and_inf_logits():
    """Logits at unseen keys may be anything (NaN, +-inf): no error, the same records; a NaN or
    infinite logit at a seen key is still an error."""
    s = gaussian((MR, MN), seed=19, dtype=np.float32)
    seen = random_seen(MR, MN, seed=20)
    base = attnscale.diagnose(scores=s, mask=seen, **POLICY_ARGS)
    dirty = s.copy()
    hidden = np.argwhere(~seen)
    vals = np.array([np.nan, np.inf, -np.inf], dtype=np.float32)
    dirty[hidden[:, 0], hidden[:, 1]] = vals[np.arange(len(hidden)) % 3]
    res = attnscale.diagnose(scores=dirty, mask=seen, **POLICY_ARGS)
    assert_equal_columns(res["rows"], base["rows"])
    assert_equal_summary(res["summary"][0], base["summary"][0])
    assert_equal_columns(res["policies"], base["policies"])
    i, j = np.argwhere(seen)[7]
    for bad in (np.nan, np.inf, -np.inf):
        d2 = dirty.copy()
        d2[i, j] = bad
        with pytest.raises(ValueError):
            attnscale.diagnose(scores=d2, mask=seen)


def test_infinite_logit_without_masked_logits_is_an_error():
    s = gaussian((MR, MN), seed=27)
    s[2, 3] = -np.inf
    with pytest.raises(ValueError, match=r"row 2, column 3: the logit is infinite"):
        attnscale.diagnose(scores=s)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
def test_masked_logits(dtype):
    """masked_logits=True: logits dumped after an additive mask (logit + finfo(dtype).min,
    formed in dtype, or -inf) mark unseen keys; the same records as the separate mask."""
    s = gaussian((MR, MN), seed=21, sd=1.0, dtype=dtype)
    seen = random_seen(MR, MN, seed=22)
    base = attnscale.diagnose(scores=s, mask=seen, **POLICY_ARGS)
    for low in (np.finfo(dtype).min, -np.inf):
        dumped = (s + float_mask(seen, dtype, low)).astype(dtype)
        assert np.array_equal(dumped[seen], s[seen])
        res = attnscale.diagnose(scores=dumped, masked_logits=True, **POLICY_ARGS)
        assert_equal_columns(res["rows"], base["rows"], label=f"{low}")
        assert_equal_summary(res["summary"][0], base["summary"][0], label=f"{low}")
        assert_equal_columns(res["policies"], base["policies"], label=f"{low}")


def test_mask_with_causal():
    """causal and a (padding) mask together: row p sees columns j <= p that the mask allows."""
    R = 120
    s = gaussian((R, R), seed=23)
    pad = np.ones((R, R), dtype=bool)
    pad[:, :5] = False  # left padding: the first 5 keys are never seen
    res = attnscale.diagnose(scores=s, mask=pad, causal=True, rows=list(range(5, R)))
    seen = causal_seen(R, R) & pad
    ref = ref_rows(s, seen, rows=range(5, R))
    assert_rows_match(res["rows"], ref)
    assert_fits_match(res["summary"][0], ref_fits(ref["n"], ref["beta_hat_k10"]))


def test_mask_errors():
    s = gaussian((MR, MN), seed=24, dtype=np.float32)
    seen = random_seen(MR, MN, seed=25)
    m = float_mask(seen, np.float32, -np.inf)
    m[3, 4] = np.nan
    with pytest.raises(ValueError, match=r"^--mask: row 3, column 4 is NaN"):
        attnscale.diagnose(scores=s, mask=m)
    for shape in [(MR, MN + 1), (MR + 1, MN), (2, MR, MN), (MN, MR), (MR, 2)]:
        with pytest.raises(ValueError, match=r"^--mask of shape .* does not broadcast"):
            attnscale.diagnose(scores=s, mask=np.ones(shape, dtype=bool))
    s4 = gaussian((2, 3, MR, MN), seed=26, dtype=np.float32)
    for shape in [(2, 1, 1, MR, MN), (2, MR, MN), (4, 1, MR, MN)]:
        with pytest.raises(ValueError, match=r"^--mask of shape .* does not broadcast"):
            attnscale.diagnose(scores=s4, mask=np.ones(shape, dtype=bool))


# ---------------------------------------------------------------------------------------------
# Row selection


def log_range_rows(lo, hi, k):
    """lo:hi:k:log for an integer option (DESIGN's values grammar): k values evenly spaced in
    log, both ends exact, the nearest integers (ties to even), repeats dropped."""
    out = []
    for i in range(k):
        v = lo if i == 0 else hi if i == k - 1 else float(np.rint(lo * (hi / lo) ** (i / (k - 1))))
        if not out or v != out[-1]:
            out.append(v)
    return [int(v) for v in out]


@pytest.mark.parametrize("spec,want", [
    ([57, 3, 88, 0, 12, 40, 99, 64], [57, 3, 88, 0, 12, 40, 99, 64]),
    (range(9, 100, 7), list(range(9, 100, 7))),
    ("10:90:9", list(range(10, 91, 10))),
    ("1:99:25:log", log_range_rows(1, 99, 25)),
])
def test_rows_select(spec, want):
    """rows= selects exactly those rows of every head, in the order given; their records equal
    the same rows of the full run (same engine) and the reference, and the fit uses them."""
    R = 100
    s = gaussian((2, 3, R, R), seed=31, dtype=np.float32)
    full = attnscale.diagnose(scores=s, causal=True)
    res = attnscale.diagnose(scores=s, causal=True, rows=spec, **POLICY_ARGS)
    flat = s.reshape(6, R, R)
    seen = causal_seen(R, R)
    assert list(res["rows"]["head"]) == [h for h in range(6) for _ in want]
    for h in range(6):
        hr, hs, hp = select(res, "head", h)
        fr, _, _ = select(full, "head", h)
        assert list(hr["row"]) == want
        pick = {r: i for i, r in enumerate(fr["row"])}
        idx = [pick[r] for r in want]
        assert_equal_columns(hr, {k: np.asarray(v)[idx] for k, v in fr.items()},
                             label=f"rows {spec} head {h}")
        check_head_against_reference(hr, hs[0], hp, flat[h], seen, sel=want,
                                     label=f"rows {spec} head {h}")


@pytest.mark.parametrize("spec", [[100], [-1], [3, 5, 3], [0, 0], "50:150:3", "0:120:7",
                                  [1.5]])
def test_rows_errors(spec):
    s = gaussian((2, 100, 100), seed=32, dtype=np.float32)
    with pytest.raises(ValueError):
        attnscale.diagnose(scores=s, causal=True, rows=spec)


# ---------------------------------------------------------------------------------------------
# Extrapolation to a target length (THEORY.md 4.6)

LAWS = ("log", "polylog", "power")


def summary_params(sm):
    return {"log": (sm["log_slope"], sm["log_intercept"]),
            "polylog": (sm["polylog_xi"], sm["polylog_c"]),
            "power": (sm["power_e"], sm["power_c"])}


def check_target(sm, pols, N, beta, W, params, ref=None, label=""):
    """The summary's and the policy records' 4.6 fields: formulas from the summary's own fitted
    parameters (REL), and, when ref is given, the reference fits' predictions (FIT_REL: an
    extrapolation to N amplifies parameter differences by |log N| / |log n| at most ~10)."""
    assert sm["target_len"] == N
    p = summary_params(sm)
    pred = {law: predict(law, p, N) for law in LAWS}
    for law in LAWS:
        assert_close(f"{label} beta_hat_target_{law}", sm[f"beta_hat_target_{law}"], pred[law],
                     REL)
        if ref is not None:
            assert_close(f"{label} ref beta_hat_target_{law}", sm[f"beta_hat_target_{law}"],
                         predict(law, ref["params"], N), 10 * FIT_REL)
    best = sm["best"]
    # The band: best prediction x exp(-+ 2 sd), sd its residual sd in log beta_hat (for the
    # log law, whose resid_sd is in beta_hat units, the sd of its log residuals over k
    # buckets with 2 parameters fitted: log_rmse sqrt(k / (k - 2))).
    k = sm["buckets"]
    sd = sm["log_rmse"] * math.sqrt(k / (k - 2)) if best == "log" else sm[f"{best}_resid_sd"]
    assert_close(f"{label} lo", sm["beta_hat_target_lo"], pred[best] * math.exp(-2 * sd), REL)
    assert_close(f"{label} hi", sm["beta_hat_target_hi"], pred[best] * math.exp(2 * sd), REL)
    names = list(pols["policy"])
    assert len(names) > 0
    ratio, robust, slope = {}, {}, {}
    for i, name in enumerate(names):
        assert pols["beta"][i] == beta
        m = policy_mult(name, N, params)[0][0]
        r = beta * m / pred[best]
        assert_close(f"{label} {name} ratio_at_target", pols["ratio_at_target"][i], r, REL)
        assert_close(f"{label} {name} factor_to_critical", pols["factor_to_critical"][i], 1 / r,
                     REL)
        rl = [beta * m / pred[law] for law in LAWS]
        want_robust = all(1 / W <= x <= W for x in rl)
        margin = min((min(abs(math.log(x * W)), abs(math.log(x / W))) for x in rl if x > 0),
                     default=math.inf)
        if margin > 1e-9:  # not at a window edge to rounding
            assert int(pols["robust"][i]) == int(want_robust), f"{label} {name} robust {rl}"
        ratio[name], robust[name], slope[name] = r, want_robust, abs(float(pols["slope"][i]))
    # Recommended: among robust policies the smallest |slope|; else the smallest |log r| under
    # the best law. Policies whose slopes agree to rounding (log-n, su, critical and ssmax
    # are all proportional to log n) are equally recommended.
    cand = [x for x in names if robust[x]]
    if cand:
        lo = min(slope[x] for x in cand)
        ok = {x for x in cand if slope[x] <= lo * (1 + 1e-9) + 1e-15}
    else:
        dist = {x: abs(math.log(ratio[x])) if ratio[x] > 0 else math.inf for x in names}
        lo = min(dist.values())
        ok = {x for x in names if dist[x] <= lo * (1 + 1e-9) + 1e-15}
    assert sm["recommended_policy"] in ok, f"{label} recommended {sm['recommended_policy']}, " \
        f"rule gives {sorted(ok)} (robust: {sorted(cand)})"
    assert_close(f"{label} recommended_factor", sm["recommended_factor"],
                 1 / ratio[sm["recommended_policy"]], REL)
    return bool(cand)


@pytest.mark.parametrize("beta,window,N", [(1.0, 2.0, 32768), (0.05, 2.0, 32768),
                                           (1.0, [3.0, 1.5], 10 ** 6)])
def test_target_len(beta, window, N):
    """target_len: each head's summary carries the three laws' predictions at N, the band
    and the recommendation; each policy record its ratio at N, the factor to critical and
    robustness (W = the first window value). beta = 0.05 leaves no policy robust (the other
    branch of the rule)."""
    R = 300
    s = gaussian((2, R, R), seed=41, dtype=np.float32)
    params = dict(train_len=64, d=64)
    res = attnscale.diagnose(scores=s, causal=True, policy="all", beta=beta, window=window,
                             target_len=N, **params)
    W = window[0] if isinstance(window, list) else window
    seen = causal_seen(R, R)
    branches = []
    for h in range(2):
        hr, hs, hp = select(res, "head", h)
        ref = ref_rows(s[h], seen, beta, W, half=False)
        rf = ref_fits(ref["n"], ref["beta_hat_k10"])
        assert_fits_match(hs[0], rf, label=f"head {h}")
        branches.append(check_target(hs[0], hp, N, beta, W, params, ref=rf, label=f"head {h}"))
    if beta == 1.0 and W == 2.0:
        assert all(branches), "beta = 1 was meant to leave some policy robustly critical"
    if beta == 0.05:
        assert not any(branches), "beta = 0.05 was meant to leave every policy subcritical"


@pytest.mark.parametrize("N", [1, 0, 2.5, -10])
def test_target_len_errors(N):
    s = gaussian((50, 50), seed=42)
    with pytest.raises(ValueError):
        attnscale.diagnose(scores=s, causal=True, policy="all", target_len=N)


# ---------------------------------------------------------------------------------------------
# THEORY.md 4.3 families, with every row and with a subsample of rows (4.6's last point)


def simplex_scores(R, rho):
    s = np.full((R, R), rho, dtype=np.float32)
    np.fill_diagonal(s, 1)
    return s


@pytest.mark.parametrize("rho", [0.5, 0.25])
def test_simplex_log_law_exact(rho):
    """Causal simplex rows (self 1, others rho): row p has gaps 0 and p times 1 - rho, so
    beta_hat = beta_hat_k10 = log n / (1 - rho) and beta_half = log(n - 1)/(1 - rho) exactly,
    and the log law beta_hat = a log n + b holds with a = 1/(1 - rho), b = 0. With exact-length
    buckets (at most 64 distinct lengths) the fit recovers a to rounding: every row of 73
    (lengths 10..73 fitted) and the log-spaced subset 9:2047:40:log of 2048 rows."""
    a = 1 / (1 - rho)  # rho and 1 are exact in float32
    for R, rows in ((73, None), (2048, "9:2047:40:log")):
        s = simplex_scores(R, rho)
        res = attnscale.diagnose(scores=s, causal=True, rows=rows, **POLICY_ARGS)
        r, sm = res["rows"], res["summary"][0]
        n = np.asarray(r["n"], dtype=float)
        want_rows = list(range(R)) if rows is None else log_range_rows(9, 2047, 40)
        assert list(r["row"]) == want_rows and list(n) == [p + 1 for p in want_rows]
        big = n >= 10
        assert_close("beta_hat_k10", np.asarray(r["beta_hat_k10"])[big], a * np.log(n[big]),
                     4 * EPS)
        two = n >= 2
        assert_close("beta_hat", np.asarray(r["beta_hat"])[two], a * np.log(n[two]), 4 * EPS)
        three = n >= 3
        assert_close("beta_half", np.asarray(r["beta_half"])[three],
                     a * np.log(n[three] - 1), 1e-14)
        assert sm["buckets"] == np.sum(big) and sm["n_min"] == n[big].min()
        assert sm["log_slope"] == pytest.approx(a, rel=1e-13), (R, rows)
        assert abs(sm["log_intercept"]) < 1e-12 * a * math.log(R)
        assert sm["log_r2"] == pytest.approx(1, abs=1e-13)
        # a log n is also the polylog law with xi = 1, c = log a: both fit to rounding
        assert sm["polylog_xi"] == pytest.approx(1, rel=1e-12)
        assert sm["polylog_c"] == pytest.approx(math.log(a), abs=1e-12)
        assert sm["best"] in ("log", "polylog")
        assert max(sm["log_rmse"], sm["polylog_rmse"]) < 1e-14
        check_head_against_reference(r, sm, res["policies"], s, causal_seen(R, R),
                                     sel=want_rows if rows else None, label=f"simplex {R}")


def test_simplex_log_law_bucketed():
    """Every row of 2048 causal simplex rows: 2039 distinct lengths, so buckets of a factor
    2^(1/4). A bucket with an odd count has an integer median length and median beta_hat
    exactly a log(median n) (beta_hat is increasing in n); with an even count the median of
    beta_hat is a (log m + log(m + 1))/2 = a (log(m + 1/2) - delta), 0 <= delta <=
    1/(8 (m + 1/2)^2) (1 + 1/m), so the fitted slope is a up to a sum_i |x_i - x_bar| delta_i /
    sum_i (x_i - x_bar)^2 (x = log median n), which the test evaluates. And equal to the
    reference fit at FIT_REL."""
    rho, R = 0.5, 2048
    a = 1 / (1 - rho)
    s = simplex_scores(R, rho)
    res = attnscale.diagnose(scores=s, causal=True)
    r, sm = res["rows"], res["summary"][0]
    n = np.asarray(r["n"], dtype=float)
    assert list(n) == list(range(1, R + 1))
    ref = ref_fits(n, np.where(n >= 10, a * np.log(n), np.nan))  # exact rows (test above)
    assert_fits_match(sm, ref)
    bn = ref["bn"]
    x = np.log(bn)
    half = bn != np.floor(bn)
    delta = np.where(half, 1 / (8 * bn ** 2) * (1 + 1 / np.floor(bn)), 0)
    bound = a * np.sum(np.abs(x - x.mean()) * delta) / np.sum((x - x.mean()) ** 2)
    assert 0 < bound < 1e-3
    assert abs(sm["log_slope"] - a) <= bound + 1e-12, (sm["log_slope"], a, bound)


# Sphere rows: keys uniform on S^{d-1}, one query per row, s_j = <q, k_j>; beta_hat grows like
# n^{2/(d-1)} (THEORY.md 4.3), so the power law's exponent e is near 2/(d-1).
# Design: lengths np.rint(np.geomspace(100, 1e4, 9)), 101 rows per length (one bucket each);
# "sub": every other row of the whole array (rows 0, 2, 4, ...: 51 or 50 per length).
# Tolerance, measured offline with this file's reference: measure_sphere_e(d, 400, seed) below
# (400 independent replicates of the design per d, seeds 11 for d = 3 and 12 for d = 4; run
# `cd tests/python && PYTHONPATH=../../build/python /usr/bin/python3 -c "import
# test_diagnose_heads as t; print(t.measure_sphere_e(3, 400, 11))"`, a few minutes):
#   d = 3: e mean 0.99860 (all rows), 0.99814 (sub); sd 0.0091, 0.0133; largest |e - mean|
#          over the 400: 0.0385, 0.0461
#   d = 4: e mean 0.67392, 0.67328; sd 0.0067, 0.0099; largest 0.0254, 0.0323
# (the sd matches THEORY.md's ~3% per bucket median: 0.03 / sqrt(sum (x - x_bar)^2) = 0.0067).
# The mean's offset from 2/(d-1) is the finite-n bias (curvature of 1 - cos at d = 4; the
# normalisation of uniform spacings at d = 3). Allowed: |e - 2/(d-1)| <= |bias| + 3 se(mean)
# + 5 sd, wider than every replicate's deviation (the tails are a little heavier than
# Gaussian: 4.2 sd seen once in 400).
SPHERE_TOL = {(3, "all"): 0.0014 + 0.0014 + 5 * 0.0091, (3, "sub"): 0.0019 + 0.0020 + 5 * 0.0133,
              (4, "all"): 0.0073 + 0.0010 + 5 * 0.0067, (4, "sub"): 0.0066 + 0.0015 + 5 * 0.0099}
SPHERE_LENS = np.rint(np.geomspace(100, 1e4, 9)).astype(int)
SPHERE_M = 101


def sphere_rows(d, seed):
    rng = np.random.default_rng(seed)
    M, nmax = len(SPHERE_LENS) * SPHERE_M, int(SPHERE_LENS[-1])
    s = np.zeros((M, nmax))
    seen = np.zeros((M, nmax), dtype=bool)
    i = 0
    for n in SPHERE_LENS:
        for _ in range(SPHERE_M):
            k = rng.standard_normal((n, d))
            k /= np.linalg.norm(k, axis=1, keepdims=True)
            q = rng.standard_normal(d)
            q /= np.linalg.norm(q)
            s[i, :n] = k @ q
            seen[i, :n] = True
            i += 1
    return s, seen


def measure_sphere_e(d, reps, seed):
    """Mean and sd over replicates of the design of the fitted power-law exponent (the
    reference's buckets and line), with all rows and with every other row (not a test)."""
    rng = np.random.default_rng(seed)
    es = {"all": [], "sub": []}
    for _ in range(reps):
        n_all, b_all = [], []
        for n in SPHERE_LENS:
            k = rng.standard_normal((SPHERE_M, n, d))
            k /= np.linalg.norm(k, axis=2, keepdims=True)
            q = rng.standard_normal((SPHERE_M, d))
            q /= np.linalg.norm(q, axis=1, keepdims=True)
            for row in np.einsum("mnd,md->mn", k, q):
                n_all.append(n)
                b_all.append(ref_row(row, 1.0, half=False)["beta_hat_k10"])
        n_all, b_all = np.array(n_all), np.array(b_all)
        for which, sl in (("all", slice(None)), ("sub", slice(None, None, 2))):
            bn, bb, _ = ref_buckets(n_all[sl], b_all[sl])
            es[which].append(ref_line(np.log(bn), np.log(bb))["slope"])
    return {w: (float(np.mean(v)), float(np.std(v, ddof=1)), float(np.max(np.abs(
        np.array(v) - np.mean(v))))) for w, v in es.items()}


@pytest.mark.parametrize("d", [3, 4])
def test_sphere_power_law(d):
    s, seen = sphere_rows(d, seed=100 + d)
    e_true = 2 / (d - 1)
    M = s.shape[0]
    for which, rows in (("all", None), ("sub", list(range(0, M, 2)))):
        res = attnscale.diagnose(scores=s, mask=seen, rows=rows)
        r, sm = res["rows"], res["summary"][0]
        ref = ref_rows(s, seen, rows=rows, half=False)
        assert_rows_match(r, ref, label=f"sphere d={d} {which}")
        rf = ref_fits(ref["n"], ref["beta_hat_k10"])
        assert_fits_match(sm, rf, label=f"sphere d={d} {which}")
        assert sm["buckets"] == len(SPHERE_LENS)
        tol = SPHERE_TOL[(d, which)]
        assert abs(sm["power_e"] - e_true) <= tol, \
            f"d = {d} ({which}): e = {sm['power_e']}, 2/(d-1) = {e_true}, allowed {tol}"


def test_recommendation_and_best_policy_use_the_first_beta():
    """With several betas the summary's best_policy and recommended_policy are those of the
    first beta given (as ratio_median and the shares), whatever the order of the list: the
    same as a run with that beta alone; policy records come in --beta's order."""
    rng = np.random.default_rng(11)
    s = rng.standard_normal((1, 300, 300))
    one = attnscale.diagnose(scores=s, causal=True, policy="all", target_len=100000, beta=1)
    two = attnscale.diagnose(scores=s, causal=True, policy="all", target_len=100000,
                             beta=[1, 0.5])
    for key in ("best_policy", "recommended_policy", "recommended_factor", "ratio_median"):
        assert two["summary"][0].get(key) == one["summary"][0].get(key), key
    betas = list(two["policies"]["beta"])
    assert betas == sorted(betas, reverse=True) and betas[0] == 1 and betas[-1] == 0.5


def test_layers_causal_flag_many_layers_and_key_axes():
    """A layer's "causal" is the run's causal for that layer alone (no mask tensor built); 400
    layers of q, k and mask go through in one call; keys whose leading axes do not line up
    with the queries' (beyond the divided head axis) are refused."""
    rng = np.random.default_rng(5)
    q, k = rng.standard_normal((2, 4, 30, 8)), rng.standard_normal((2, 2, 30, 8))
    flag = attnscale.diagnose(layers=[dict(name="a", q=q, k=k, causal=True)])
    whole = attnscale.diagnose(q=q, k=k, causal=True)
    for key in ("n", "beta_hat", "entropy", "w1"):
        assert np.array_equal(flag["rows"][key], whole["rows"][key], equal_nan=True), key
    tril = np.tril(np.ones((30, 30), bool))
    many = attnscale.diagnose(layers=[dict(name=f"l{i}", q=q, k=k, mask=tril)
                                      for i in range(400)])
    assert len(many["summary"]) == 400 * 8
    assert np.array_equal(many["rows"]["n"][:30], whole["rows"]["n"][:30])
    with pytest.raises(ValueError, match=r"the leading axes must agree but for the last"):
        attnscale.diagnose(q=rng.standard_normal((4, 30, 8)), k=rng.standard_normal((2, 2, 30, 8)))
