"""attnscale: the physics of softmax attention at long context, from Python.

One function per command of the ``attnscale`` CLI (DESIGN.md, Python contract): the same
options as keyword arguments (dashes become underscores: ``tau_prime``, ``eta_method``,
``train_len``), the same library code underneath, and results equal bit for bit to the CLI's
records for the same arguments and seed.

    >>> import attnscale
    >>> r = attnscale.simplex(n=1024, rho=0.5, gamma=[1, 2, 3])
    >>> r["lambda"]                      # one entry per record
    Column([0.001723655512827873, 0.39945318607093994, 0.9692080094179527])
    >>> r["regime"]
    array(['subcritical', 'critical', 'supercritical'], dtype='<U13')

Arguments
    Numeric options take a number, a sequence or a 0-d / 1-D array (any integer or float
    dtype, converted exactly to float64), or the CLI's own text ``"1,2,3"``, ``"lo:hi:k"``
    or ``"lo:hi:k:log"`` (parsed by the library, so the values are the CLI's exactly). Several
    values make a grid: one record per combination, in the CLI's order. ``None`` means
    absent: the command's documented default. Choices are str, flags bool, list options (phase
    ``metric``, ``policies`` ``policy``) a str ``"a,b"`` or a sequence of str.
    Arrays (phase ``tokens``, diagnose ``scores``, ``q``, ``k``): anything with the buffer
    protocol or ``__array__`` (numpy arrays, torch CPU tensors), float16, float32 or float64 in
    native byte order. A C-contiguous array is read in place, without a copy; any other
    layout (a transposed or sliced view) is copied once into a C-contiguous buffer. Integer,
    bool and complex arrays raise ValueError naming the argument and the dtype. A str (or
    os.PathLike) there is a .npy file name, as on the CLI.

Results
    A dict of numpy arrays keyed by the CLI's record keys, one entry per record: float64
    (NaN where the CLI's JSON writes null, inf/-inf as the CSV writes them), int64 for
    integer keys, str arrays for names. Float arrays are ``Column``, a numpy array that prints
    every value with the digits that read back to the same double (as the CLI does).
    Without NumPy installed the functions return lists instead.

Errors
    ValueError (a bad argument or value: the CLI's usage errors, exit status 2), OSError (I/O),
    MemoryError, RuntimeError (a numerical failure), each with the library's message.
    Remarks the CLI prints on stderr are issued as warnings of class ``attnscale.Note``.
    The GIL is released while the library computes, and Ctrl-C (KeyboardInterrupt) stops a
    long call promptly.
"""

import os as _os
import warnings as _warnings

from . import _ext

try:
    import numpy as _np
except ImportError:  # pragma: no cover - exercised only where NumPy is absent
    _np = None

__all__ = [
    "simplex",
    "phase",
    "query",
    "policies",
    "policy_list",
    "diagnose",
    "plot_heads",
    "build_info",
    "commands",
    "Note",
    "Column",
    "__version__",
]

#: The library's version (ATS_VERSION), the package's version too.
__version__ = _ext.VERSION


def build_info():
    """The library's build description: version, git hash, compiler flags, BLAS, threads."""
    return _ext.build_info()


def commands():
    """The library's command names and their options, as the CLI's --help lists them.

    Returns a dict {command: [option dict, ...]}; each option dict has name (the CLI's),
    python (the keyword), kind (values, number, choice, flag, text, array), help, choices
    and domain (lo, hi, lo_open, hi_open, integer).
    """
    return {c: _ext.command(c)["options"] for c in _ext.commands()}


class Note(UserWarning):
    """A remark of the library (what the CLI prints on stderr), never an error."""


# ----------------------------------------------------------------------------
# Columns

if _np is not None:
    # Python's repr of a float: the fewest digits that read back to the same double.
    _FULL = {"float_kind": lambda x: repr(float(x))}

    class Column(_np.ndarray):
        """A float64 result column: a numpy array printed with full precision.

        ``str`` and ``repr`` show each value with the fewest digits that read back to the same
        double (Python's float repr), so printed values match the CLI's. Arithmetic
        on a Column gives plain numpy arrays.
        """

        def __repr__(self):
            with _np.printoptions(formatter=_FULL):
                text = repr(self.view(_np.ndarray))
            return "Column" + text[len("array"):] if text.startswith("array") else text

        def __str__(self):
            with _np.printoptions(formatter=_FULL):
                return str(self.view(_np.ndarray))

        def __array_wrap__(self, obj, context=None):
            obj = _np.asarray(obj)
            return obj[()] if obj.ndim == 0 else obj

        def __reduce__(self):  # pickles as a plain array
            return self.view(_np.ndarray).__reduce__()

else:  # pragma: no cover
    Column = list


_ABSENT, _DOUBLE, _INT, _STRING = 0, 1, 2, 3


def _column_numpy(types, slots, strings, idx):
    t = _np.frombuffer(types, _np.uint8)
    s = _np.frombuffer(slots, _np.int64)
    if idx is not None:
        t = t[idx]
        s = s[idx]
        if strings is not None:
            strings = [strings[i] for i in idx]
    present = t != _ABSENT
    kinds = set(_np.unique(t[present]).tolist())
    if kinds <= {_INT} and present.all():
        return s.copy()
    if kinds <= {_DOUBLE, _INT}:
        out = s.view(_np.float64).copy()
        ints = t == _INT
        out[ints] = s[ints].astype(_np.float64)
        out[~present] = _np.nan
        return out.view(Column)
    if kinds == {_STRING} and present.all():
        return _np.array(strings, dtype=str)
    values = _np.empty(len(t), dtype=object)
    d = s.view(_np.float64)
    for i in range(len(t)):
        k = t[i]
        values[i] = (None if k == _ABSENT else float(d[i]) if k == _DOUBLE else
                     int(s[i]) if k == _INT else strings[i])
    return values


def _column_list(types, slots, strings, idx):  # pragma: no cover - without NumPy
    import array

    d = array.array("d")
    d.frombytes(slots)
    q = array.array("q")
    q.frombytes(slots)
    out = []
    for i in range(len(types)) if idx is None else idx:
        k = types[i]
        if k == _DOUBLE:
            out.append(d[i])
        elif k == _INT:
            out.append(q[i])
        elif k == _STRING:
            out.append(strings[i])
        else:
            out.append(None if strings is not None else float("nan"))
    return out


def _columns(raw, idx=None, drop=()):
    """{key: column} for the records idx (None: all) of a raw run result, keys in the
    records' own order."""
    cols = raw["columns"]
    if idx is None:
        sig_ids = range(len(raw["signatures"]))
    else:
        sig_of = memoryview(raw["signature_of"]).cast("i")
        seen = {}
        for i in idx:
            seen.setdefault(sig_of[i], None)
        sig_ids = list(seen)
    order = {}
    for sid in sig_ids:
        if sid < 0:  # signatures not tracked (very many kinds of record): the first-seen order
            order = dict.fromkeys(range(len(cols)))
            break
        for c in raw["signatures"][sid]:
            order.setdefault(c, None)
    make = _column_numpy if _np is not None else _column_list
    out = {}
    for c in order:
        key, types, slots, strings = cols[c]
        if key in drop:
            continue
        out[key] = make(types, slots, strings, idx)
    return out


def _run(command, kwargs):
    raw = _ext.run(command, {k: v for k, v in kwargs.items() if v is not None})
    for note in raw["notes"]:
        _warnings.warn(note[len("note: "):] if note.startswith("note: ") else note, Note,
                       stacklevel=3)
    return raw


def _options(command):
    return {o["python"] for o in _ext.command(command)["options"]}


# ----------------------------------------------------------------------------
# The commands


def simplex(n, rho, gamma=None, beta=None, alpha=0, q=1, d=None, *, plot=None, metric=None):
    """Exact closed forms of the simplex layer (THEORY.md 2.2-2.6; arXiv 2510.05554).

    Pre-LN self-attention on n simplex tokens (|x_i|^2 = q, pairwise cosine rho) at inverse
    temperature beta = gamma log n with residual weight alpha. One record per combination of
    (n, d, rho, alpha, q, gamma | beta), gamma (or beta) varying fastest.

    Parameters
    ----------
    n : int or sequence
        Tokens, integers >= 2 (up to 2^53). Required.
    rho : float or sequence
        Pairwise cosine, 0 <= rho < 1. Required.
    gamma, beta : float or sequence
        Exactly one: beta = gamma log n (gamma >= 0), or beta >= 0 itself.
    alpha : float or sequence, default 0
        Residual weight, >= 0.
    q : float or sequence, default 1
        Squared token norm, > 0.
    d : int or sequence, optional
        Dimension, integers >= 2 (default n); enters eta only.
    plot : str, optional
        Draw ``metric`` to this file (png, svg or pdf by extension), as the CLI's --plot.
    metric : {'lambda', 'rho_out', 'a_self', 'eta'}, optional
        What ``plot`` draws (default lambda); needs ``plot``.

    Returns
    -------
    dict of arrays with keys n, d, rho, alpha, q, gamma, beta, gamma_c (= 1/(1-rho)), kappa
    (= gamma (1-rho)), regime (subcritical | critical | supercritical), a_self (A_ii),
    rho_out (rho'), lambda (= (1-rho')/(1-rho)), eta (= ||J||_F^2/(n d)), rho_out_limit and
    eta_limit (the n -> infinity limits at the same gamma, alpha, q).
    """
    return _columns(_run("simplex", dict(n=n, rho=rho, gamma=gamma, beta=beta, alpha=alpha,
                                         q=q, d=d, plot=plot, metric=metric)))


def phase(metric=None, config=None, n=None, d=None, rho=None, gamma=None, beta=None,
          alpha=None, trials=None, probes=None, eta_method=None, precision=None, tokens=None,
          seed=1, threads=None, *, block=None, plot=None):
    """Monte Carlo / exact phase diagram of the self-attention layer (THEORY.md 2.1, 2.4-2.8).

    One record per metric and combination of (n, d, rho, alpha, trials, probes, gamma | beta),
    gamma (or beta) fastest; metrics outermost in the order given.

    Parameters
    ----------
    metric : str or sequence of str, default 'lambda'
        lambda, lambda_angle, eta, rho_out, a_self, entropy, support; several as a list or
        "a,b" (one record per metric).
    config : {'almost-simplex', 'simplex', 'sphere', 'file'}, default 'almost-simplex'
        Token configuration; 'file' with ``tokens`` (implied by ``tokens``).
    n : int or sequence
        Tokens, integers >= 2 (required unless ``tokens``).
    d : int or sequence, default 512 (simplex: n + 1)
        Dimension, integers >= 1.
    rho : float or sequence, default 0.5
        Generating cosine, 0 <= rho < 1 (simplex and almost-simplex).
    gamma, beta : float or sequence
        Exactly one: beta = gamma log n, or beta; >= 0.
    alpha : float or sequence, default 0
        Residual weight, >= 0.
    trials : int or sequence, default 1
        Token draws per point (with fixed tokens: probe sets).
    probes : int or sequence, default 16
        Rademacher probes per trial (metric eta, Hutchinson only).
    eta_method : {'hutchinson', 'exact'}, default 'hutchinson'
        For metric eta: the analytic JVP estimator or the exact Jacobian blocks.
    precision : {'f64', 'f32'}, default 'f64'
        Precision of the GEMMs (sums stay double).
    tokens : array (n, d) or str, optional
        The tokens themselves: a float32 or float64 array (read in place when C-contiguous;
        float16 raises ValueError) or a .npy file name. n and d then come from the tokens.
    seed : int, default 1
        Random seed; results do not depend on ``threads``.
    threads : int, optional
        Threads (default: OMP_NUM_THREADS or all cores).
    block : int, optional
        Rows per block (default: from n, d and probes).
    plot : str, optional
        Draw the metric (one metric) to this file, as the CLI's --plot.

    Returns
    -------
    dict of arrays with keys config, n, d, rho (NaN for sphere and file), alpha, gamma, beta,
    trials, probes (NaN without Hutchinson eta), eta_method ('none' without eta), precision,
    metric, value (mean over trials), stderr (standard error; 0 where exact, NaN where it
    cannot be estimated) and median (over trials).
    """
    return _columns(_run("phase", dict(metric=metric, config=config, n=n, d=d, rho=rho,
                                       gamma=gamma, beta=beta, alpha=alpha, trials=trials,
                                       probes=probes, eta_method=eta_method,
                                       precision=precision, tokens=tokens, seed=seed,
                                       threads=threads, block=block, plot=plot)))


def query(d, n=None, beta=None, tau_prime=None, trials=None, sampler=None, theory=False,
          seed=1, threads=None):
    """One query against n keys uniform on the sphere S^(d-1) (THEORY.md 3; arXiv 2605.08505).

    One record per combination of (d, n, beta | tau_prime, trials).

    Parameters
    ----------
    d : int or sequence
        Dimension, integers >= 2. Required.
    n : int or sequence
        Keys, integers >= 1 (the ppp sampler needs it only with ``beta``).
    beta, tau_prime : float or sequence
        Exactly one: the inverse temperature (>= 0) or tau' = beta/beta* (> 0).
    trials : int or sequence, default 100
        Independent trials.
    sampler : {'exact', 'ppp'}, default 'exact'
        exact, or ppp: the n -> infinity critical limit (Poisson point process).
    theory : bool, default False
        Add the predictions: the *_theory keys and w1_super.
    seed : int, default 1
    threads : int, optional

    Returns
    -------
    dict of arrays with keys d, n, beta, tau_prime, beta_star, trials, sampler, then the means
    over trials w1 (largest weight), sum_w2, entropy, cos_yq (<y, q>), radial and n_var_perp,
    each with its standard error *_se (NaN when trials < 2); with ``theory``: w1_theory,
    sum_w2_theory, entropy_theory, cos_yq_theory, n_var_perp_theory, w1_super.
    """
    return _columns(_run("query", dict(d=d, n=n, beta=beta, tau_prime=tau_prime,
                                       trials=trials, sampler=sampler, theory=theory,
                                       seed=seed, threads=threads)))


def policies(policy=None, n=None, pos=None, *, combine=False, plot=None, train_len=None,
             factor=None, max_len=None, mscale=None, mscale_all_dim=None,
             attention_factor=None, finetuned=False, floor_scale=None, attn_scale=None,
             beta_slope=None, temperature_len=None, slope=None, d=None):
    """Multipliers of the production attention-scaling policies (THEORY.md 5).

    Parameters
    ----------
    policy : str or sequence of str, default 'all'
        Policy names (see policy_list()), or 'all'.
    n : int or sequence
        Total length; alone it means the last row, pos = n - 1.
    pos : int or sequence
        0-based query position; alone it means n = pos + 1.
    combine : bool, default False
        One record per point: the product of the chosen policies per scope.
    plot : str, optional
        Draw the multiplier against n (or pos + 1) to this file.
    train_len, factor, max_len, mscale, mscale_all_dim, attention_factor, finetuned,
    floor_scale, attn_scale, beta_slope, temperature_len, slope, d
        Policy parameters (one value each), absent: each policy's shipped default
        (attnscale policies --help describes each).

    Returns
    -------
    dict of arrays with keys policy, n, pos, multiplier (NaN when no single factor applies),
    scope (all | rotary | nonrotary | mixed), dependence (static | row | length), m_rot,
    m_pass, extrapolated, and any parameter given.
    """
    return _columns(_run("policies", dict(
        policy=policy, n=n, pos=pos, combine=combine, plot=plot, train_len=train_len,
        factor=factor, max_len=max_len, mscale=mscale, mscale_all_dim=mscale_all_dim,
        attention_factor=attention_factor, finetuned=finetuned, floor_scale=floor_scale,
        attn_scale=attn_scale, beta_slope=beta_slope, temperature_len=temperature_len,
        slope=slope, d=d)))


def policy_list():
    """Every policy the library implements: dict of arrays with keys policy, family, source,
    formula, scope, dependence (the CLI's ``attnscale policies --list``)."""
    return _columns(_run("policies", dict(list=True)))


def diagnose(scores=None, q=None, k=None, mask=None, causal=False, beta=1, window=2,
             policy=None, rows=None, target_len=None, threads=None, *, scale=None,
             masked_logits=False, layers=None, plot=None, safetensors=None, tensor=None,
             train_len=None, factor=None, max_len=None, mscale=None, mscale_all_dim=None,
             attention_factor=None, finetuned=False, floor_scale=None, attn_scale=None,
             beta_slope=None, temperature_len=None, slope=None, d=None):
    """The gap-counting diagnostic on rows of attention logits (THEORY.md 4; arXiv 2605.12697).

    Give exactly one input: ``scores``, ``q`` with ``k``, ``safetensors`` with ``tensor``, or
    ``layers``. Every leading axis of an input beyond (rows, n) is a head (flattened in C
    order), each with its own rows, summary and ranking.

    Parameters
    ----------
    scores : array (..., rows, n) or str
        Logits: a float16, float32 or float64 array, read in place when C-contiguous, or a
        .npy file name.
    q, k : arrays (..., rows, d) and (..., n, d), or str
        Queries and keys: the logits are ``scale`` q.k. Fewer key heads than query heads is
        grouped-query attention: query head h uses key head h // (heads // kv_heads).
    mask : array or str, optional
        Keys each row sees, broadcastable (NumPy's rules) to (..., rows, n): bool (False: not
        seen) or additive float (-inf, <= -1e30 or <= half the dtype's lowest value: not seen;
        other values are added to the logits). Each row's n counts the keys it sees.
    masked_logits : bool, default False
        Logits at those mask values are keys not seen (logits taken after a model's additive
        mask).
    scale : float, optional
        The q.k multiplier (default 1/sqrt(d)).
    causal : bool, default False
        Row i sees columns 0..i only (its n is i + 1).
    rows : int, sequence or str, optional
        Only these 0-based rows of every head: a list, or the CLI's "lo:hi:k" or
        "lo:hi:k:log" (log-spaced rows fit the laws at a fraction of the cost).
    beta : float or sequence, default 1
        Inverse temperature applied on top of the logits as given.
    window : float or sequence, default 2
        Regime window (> 1): subcritical below beta/beta_hat_k10 = 1/window, supercritical
        above window.
    policy : str, optional
        A policy multiplying row i's beta by its multiplier at position i, or 'all' to rank
        every policy in the summary.
    target_len : int, optional
        THEORY.md 4.6: each law's beta_hat at this length and, with ``policy``, which policy
        keeps row N critical and by what factor.
    layers : list of dict, optional
        One input per layer: {"name": str, "scores": array} or {"name", "q", "k"}, with
        optional "mask", "scale", "masked_logits" and "dtype": "bfloat16" (int16 views of
        bfloat16 tensors). Records then carry ``layer`` (attnscale.torch builds these).
    plot : str, optional
        A figure (.png, .svg, .pdf): beta_hat_k10 against n with the laws for one head, or
        the heads' median ratio as a heat map (its CSV beside it).
    threads : int, optional
    safetensors, tensor : str
        Logits from the tensor ``tensor`` of a safetensors file.
    train_len, factor, ... d
        Policy parameters, as for policies().

    Returns
    -------
    {"rows": {key: array}, "summary": [dict per head], "policies": {key: array}}
        rows: (layer, head,) row, n, causal, beta, window, multiplier, beta_applied, beta_hat
        (k0 = 2), beta_hat_k10, beta_half, entropy, w1, ratio (beta/beta_hat_k10), regime (inf
        where ties at the maximum make beta_hat infinite); summary: the fits of THEORY.md 4.4
        (or fit_error), ratio_median with heads, 4.6's keys with target_len, as Python scalars;
        policies (with ``policy``): policy, scope, slope, ratio_at_max, rank (and
        ratio_at_target, factor_to_critical, robust). The CLI's "record" key splits the three.
    """
    raw = _run("diagnose", dict(
        scores=scores, q=q, k=k, mask=mask, causal=causal, beta=beta, window=window,
        policy=policy, rows=rows, target_len=target_len, threads=threads, scale=scale,
        masked_logits=masked_logits, layers=layers, plot=plot, safetensors=safetensors,
        tensor=tensor, train_len=train_len, factor=factor, max_len=max_len, mscale=mscale,
        mscale_all_dim=mscale_all_dim, attention_factor=attention_factor, finetuned=finetuned,
        floor_scale=floor_scale, attn_scale=attn_scale, beta_slope=beta_slope,
        temperature_len=temperature_len, slope=slope, d=d))
    kinds = {}
    for key, _types, _slots, strings in raw["columns"]:
        if key == "record":
            for i, kind in enumerate(strings):
                kinds.setdefault(kind, []).append(i)
            break
    rows_ = _columns(raw, kinds.get("row", []), drop=("record",))
    pols = _columns(raw, kinds.get("policy", []), drop=("record",))
    summary = []
    for i in kinds.get("summary", []):
        one = _columns(raw, [i], drop=("record",))
        summary.append({key: _scalar(v[0]) for key, v in one.items()})
    return {"rows": rows_, "summary": summary, "policies": pols}


def plot_heads(path, layers, ratio, window=2):
    """Draw the layer x head heat map of median ratios beta/beta_hat_k10 into ``path``.

    ``ratio``: an (nlayers, nheads) array (NaN where a head has none); ``layers``: the row
    labels (a list of names, or None for indices). A diverging colour map centred on 1, the
    critical window [1/window, window] marked; the table is written beside the figure as CSV
    (``path`` with its extension replaced by .csv). attnscale.torch.plot_heads draws it from a
    diagnose result.
    """
    if _np is None:
        raise ImportError("plot_heads needs numpy")
    r = _np.ascontiguousarray(_np.asarray(ratio, dtype=_np.float64))
    if r.ndim != 2:
        raise ValueError(f"ratio: an (nlayers, nheads) array is needed, not shape {r.shape}")
    names = None if layers is None else [str(x) for x in layers]
    _ext.plot_heads(_os.fspath(path), names, r, float(window))


def _scalar(v):
    """A Python float, int or str from one array element."""
    if _np is not None and isinstance(v, _np.generic):
        return v.item()
    return v
