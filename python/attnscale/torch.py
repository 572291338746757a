"""attnscale.torch: diagnose the attention a PyTorch model really computes, every layer and head.

From a model to the layer x head heat map in five lines::

    import attnscale.torch as at
    with at.capture(model) as cap:                              # records every attention call
        model(input_ids)
    result = cap.diagnose(policy="all", target_len=131072)      # every layer and head
    at.plot_heads(result, "heads.png")                          # heat map of beta/beta_hat_k10

``result`` is attnscale.diagnose's dict (``rows``, ``summary``, ``policies``) whose records all
carry ``layer`` (the attention module's qualified name) and ``head``; :func:`heads_table`
lists per head its regime shares, best-fitting law and recommended policy.

What is recorded (DESIGN.md, PyTorch capture contract)
    The logits the model really uses: after rotary embeddings, after every scale (1/sqrt(d),
    YaRN's mscale folded into cos/sin, DeepSeek's mscale^2 in ``scaling``, Llama 4's query
    temperature) and with its mask; never the outputs of q_proj/k_proj. One record
    (:class:`Call`) per attention call, in call order, through whichever path the model takes:

    1. ``"softmax"``: torch.softmax, torch.nn.functional.softmax or Tensor.softmax (nn.Softmax
       goes through the second) called while a module of the model is running, on a 4-D
       (batch, heads, queries, keys) tensor over its last dimension. The softmax input is
       recorded: the logits with the model's additive mask already added, so they are
       diagnosed with ``masked_logits`` (values at -inf, <= -1e30 or <= half the dtype's
       lowest value, i.e. ``torch.finfo(dtype).min`` masks, are keys the row does not see).
       The layer is the innermost running module (when that is an nn.Softmax, its parent in
       the module tree). Eager attention in Hugging Face transformers, TransformerLens-style
       code and hand-written models all take this path.
    2. ``"sdpa"``: torch.nn.functional.scaled_dot_product_attention, where torch has it
       (looked up when the capture is entered): query, key (not repeated with
       ``enable_gqa``), ``scale`` (default 1/sqrt(E)), ``attn_mask`` (bool: True takes part,
       or an additive float mask) and ``is_causal`` (torch's top-left alignment: query i
       sees keys 0..i, recorded as a flag the library applies: no mask tensor is built).
    3. ``"attention_function"``: :func:`attention_function`, a function with the Hugging Face
       AttentionInterface signature that records query, key, ``scaling`` and the mask and
       delegates to the eager math written here, to torch's SDPA or to a callable. With
       transformers >= 4.51 (4.53 and later also need the mask registration)::

           from transformers import AttentionInterface
           from transformers.masking_utils import AttentionMaskInterface, eager_mask
           AttentionInterface.register("attnscale", at.attention_function("eager"))
           AttentionMaskInterface.register("attnscale", eager_mask)
           model = AutoModelForCausalLM.from_pretrained(name, attn_implementation="attnscale")

    Softmax and SDPA calls made inside a recorded SDPA or attention_function call are not
    recorded again. Capture one forward pass (a prompt's prefill): every step of a generation
    loop is another call of each layer (named ``layer#i`` for diagnose). Key heads are kept
    as the model has them (grouped-query attention: query head h uses key head
    h / (heads / kv_heads)); batches are kept whole (diagnose's heads are then batch-major:
    head = b * heads + h; ``cap.diagnose(batch=0)`` takes one element).

Memory
    Paths 2 and 3 keep q and k (detached, on the CPU) and the mask the model passed (axes it
    broadcast with expand() kept at length 1; ``is_causal`` as a flag): the library forms
    the logits block by block, so no n x n tensor is created beyond what the model itself
    creates. Path 1 has no q and k: it keeps the model's own
    logits tensor alive (one (batch, heads, n, n) tensor per call, moved to the CPU when the
    model runs elsewhere) until the capture is dropped. Restrict what is kept with
    ``layers=``, or have the model take path 2 or 3 at long context.
    The recorded tensors share storage with the model's: a model that later modifies one in
    place (a static KV cache) makes :meth:`capture.diagnose` raise RuntimeError instead of
    diagnosing changed values.

Errors
    ValueError naming the layer (and head, row, column): a NaN in a recorded tensor (looked
    for in torch, block by block, before the library is called), a mask that does not
    broadcast to (batch, heads, queries, keys), an unknown name in ``layers=``.

Not seen
    Code that bound the functions before the capture was entered (``from torch.nn.functional
    import softmax``), fused kernels called by other names (flash-attn, xformers, torch's
    native fused nn.MultiheadAttention path; its unfused path softmaxes a 3-D tensor, not
    recorded), TorchScript and torch.compile graphs, ``module.forward(...)`` called without
    the module's __call__ (no hooks run).
"""

import functools
import math
import re
import threading
import warnings

import torch

__all__ = ["capture", "Call", "attention_function", "eager_attention_forward",
           "sdpa_attention_forward", "repeat_kv", "plot_heads", "heads_table"]

# ----------------------------------------------------------------------------
# Global state: the captures entered, the patched torch functions, a per-thread count of
# recorded calls running (softmax / SDPA calls inside them are not recorded again).

_LOCK = threading.RLock()
_ACTIVE = []          # captures entered, outermost first
_PATCHES = []         # (owner, attribute, original, owner had its own attribute, wrapper)
_THREAD = threading.local()


def _suppressed():
    return getattr(_THREAD, "depth", 0) > 0


class _Inside:
    """While a recorded call runs: softmax / SDPA calls inside it are not recorded."""

    def __enter__(self):
        _THREAD.depth = getattr(_THREAD, "depth", 0) + 1

    def __exit__(self, *exc):
        _THREAD.depth -= 1
        return False


def _active():
    with _LOCK:
        return list(_ACTIVE)


def _keep(t):
    """A recorded tensor: detached, on the CPU (a copy only when it was elsewhere)."""
    t = t.detach()
    return t if t.device.type == "cpu" else t.cpu()


def _version(t):
    try:
        return t._version
    except (RuntimeError, AttributeError):  # inference-mode tensors track no version
        return None


# ----------------------------------------------------------------------------
# The patched entry points

def _softmax_args(args, kwargs, method):
    x = args[0] if args else kwargs.get("self" if method else "input")
    dim = args[1] if len(args) > 1 else kwargs.get("dim")
    return x, dim


def _wrap_softmax(orig, method=False):
    @functools.wraps(orig)
    def softmax(*args, **kwargs):
        if not _ACTIVE or _suppressed():
            return orig(*args, **kwargs)
        with _Inside():
            out = orig(*args, **kwargs)
        x, dim = _softmax_args(args, kwargs, method)
        _offer_softmax(x, dim)
        return out

    softmax.__attnscale_wrapper__ = True
    return softmax


def _offer_softmax(x, dim):
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
        return
    try:
        dim = int(dim)
    except (TypeError, ValueError):  # None (implicit dim 1 on 4-D tensors) or a name
        return
    if dim not in (-1, 3):
        return
    kept = None
    for cap in _active():
        layer = cap._running_layer()
        if layer is not None and cap._wanted(layer):
            kept = _keep(x) if kept is None else kept
            cap._add("softmax", layer, scores=kept)


_SDPA_POSITIONAL = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale",
                    "enable_gqa")


def _wrap_sdpa(orig):
    @functools.wraps(orig)
    def scaled_dot_product_attention(*args, **kwargs):
        if not _ACTIVE or _suppressed():
            return orig(*args, **kwargs)
        with _Inside():
            out = orig(*args, **kwargs)
        a = dict(zip(_SDPA_POSITIONAL, args))
        a.update(kwargs)
        q, k = a.get("query"), a.get("key")
        if not (isinstance(q, torch.Tensor) and isinstance(k, torch.Tensor)) or q.ndim < 2:
            return out
        scale = a.get("scale")
        scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
        _offer_qk("sdpa", None, q, k, a.get("attn_mask"), scale, bool(a.get("is_causal")))
        return out

    scaled_dot_product_attention.__attnscale_wrapper__ = True
    return scaled_dot_product_attention


def _keep_mask(mask):
    """A recorded mask: axes broadcast by expand() (stride 0) kept at length 1, so neither the
    copy to the CPU nor the library's input densifies them; the library broadcasts them."""
    if mask.ndim and any(st == 0 and n > 1 for n, st in zip(mask.shape, mask.stride())):
        mask = mask[tuple(slice(0, 1) if st == 0 and n > 1 else slice(None)
                          for n, st in zip(mask.shape, mask.stride()))]
    return _keep(mask)


def _offer_qk(path, module, q, k, mask, scale, causal):
    kept = None
    for cap in _active():
        layer = cap._layer_of(module)
        if layer is not None and cap._wanted(layer):
            if kept is None:
                kept = (_keep(q), _keep(k), None if mask is None else _keep_mask(mask))
            cap._add(path, layer, q=kept[0], k=kept[1], mask=kept[2], scale=scale,
                     causal=causal)


def _patch(owner, name, make):
    if name in owner.__dict__:
        orig, own = owner.__dict__[name], True
    else:
        orig, own = getattr(owner, name), False
    if getattr(orig, "__attnscale_wrapper__", False):
        return
    wrapper = make(getattr(owner, name))
    setattr(owner, name, wrapper)
    _PATCHES.append((owner, name, orig, own, wrapper))


def _install():
    F = torch.nn.functional
    _patch(torch, "softmax", _wrap_softmax)
    _patch(F, "softmax", _wrap_softmax)
    _patch(torch.Tensor, "softmax", lambda f: _wrap_softmax(f, method=True))
    if hasattr(F, "scaled_dot_product_attention"):
        _patch(F, "scaled_dot_product_attention", _wrap_sdpa)


def _uninstall():
    while _PATCHES:
        owner, name, orig, own, wrapper = _PATCHES.pop()
        if owner.__dict__.get(name) is not wrapper:
            continue  # someone patched over ours: leave theirs in place
        if own:
            setattr(owner, name, orig)
        else:
            delattr(owner, name)


# ----------------------------------------------------------------------------
# Hugging Face attention functions

def repeat_kv(hidden_states, n_rep):
    """(batch, kv_heads, n, d) -> (batch, kv_heads * n_rep, n, d), each key head repeated
    n_rep times in place (transformers' repeat_kv, = repeat_interleave on dim 1)."""
    batch, kv_heads, n, d = hidden_states.shape
    if n_rep == 1:
        return hidden_states
    hidden_states = hidden_states[:, :, None, :, :].expand(batch, kv_heads, n_rep, n, d)
    return hidden_states.reshape(batch, kv_heads * n_rep, n, d)


def _groups(query, key):
    if query.shape[1] % key.shape[1]:
        raise ValueError(f"attention: {query.shape[1]} query heads are not a multiple of "
                         f"{key.shape[1]} key heads")
    return query.shape[1] // key.shape[1]


def eager_attention_forward(module, query, key, value, attention_mask, scaling=None,
                            dropout=0.0, softcap=None, **kwargs):
    """transformers' eager_attention_forward: the attention math written out in torch.

    query (batch, heads, q, d), key and value (batch, kv_heads, k, d), attention_mask
    additive, broadcastable to (batch, heads, q, >= k) (sliced to the key length). Computes
    repeat_kv, ``query @ key^T * scaling`` (default 1/sqrt(d)), Gemma 2's tanh soft cap when
    ``softcap`` is given, ``+ mask``, softmax in float32 cast back to query's dtype, dropout
    when ``module.training``, ``@ value``, then transpose(1, 2).contiguous().
    Returns (attn_output (batch, q, heads, d), attn_weights (batch, heads, q, k)).
    Attention sinks (``s_aux``) are not implemented: NotImplementedError.
    """
    return _eager(module, query, key, value, attention_mask, scaling, dropout, softcap,
                  kwargs)[:2]


def _eager(module, query, key, value, attention_mask, scaling, dropout, softcap, kwargs):
    if kwargs.get("s_aux") is not None:
        raise NotImplementedError("attnscale's eager attention has no attention sinks (s_aux):"
                                  " pass the model's own eager function as base")
    if scaling is None:
        scaling = 1.0 / math.sqrt(query.shape[-1])
    groups = _groups(query, key)
    key_states = repeat_kv(key, groups)
    value_states = repeat_kv(value, groups)
    attn_weights = torch.matmul(query, key_states.transpose(2, 3)) * scaling
    if softcap is not None:
        attn_weights = torch.tanh(attn_weights / softcap) * softcap
    if attention_mask is not None:
        attn_weights = attn_weights + _slice_mask(attention_mask, key_states.shape[-2])
    logits = attn_weights
    attn_weights = torch.nn.functional.softmax(attn_weights, dim=-1,
                                               dtype=torch.float32).to(query.dtype)
    attn_weights = torch.nn.functional.dropout(attn_weights, p=dropout,
                                               training=getattr(module, "training", False))
    attn_output = torch.matmul(attn_weights, value_states)
    attn_output = attn_output.transpose(1, 2).contiguous()
    return attn_output, attn_weights, logits


def _slice_mask(mask, keys):
    return mask[:, :, :, :keys] if mask.ndim == 4 else mask[..., :keys]


def _hf_is_causal(module, query, attention_mask, is_causal):
    """transformers' sdpa_attention_forward: causal only for more than one query and no mask,
    an explicit is_causal (else module.is_causal, default True) deciding the rest."""
    if is_causal is None:
        is_causal = getattr(module, "is_causal", True)
    return bool(query.shape[2] > 1 and attention_mask is None and is_causal)


def sdpa_attention_forward(module, query, key, value, attention_mask, scaling=None,
                           dropout=0.0, is_causal=None, **kwargs):
    """transformers' sdpa_attention_forward over torch's scaled_dot_product_attention
    (looked up at each call): key/value heads repeated, the mask sliced to the key length,
    ``is_causal`` (more than one query, no mask, and ``is_causal`` or else
    ``module.is_causal`` not False),
    ``scale=scaling``, ``dropout_p=dropout``. Returns (attn_output (batch, q, heads, d), None).
    """
    sdpa = getattr(torch.nn.functional, "scaled_dot_product_attention", None)
    if sdpa is None:
        raise ValueError(f"torch {torch.__version__} has no "
                         "torch.nn.functional.scaled_dot_product_attention")
    groups = _groups(query, key)
    key = repeat_kv(key, groups)
    value = repeat_kv(value, groups)
    if attention_mask is not None and attention_mask.ndim == 4:
        attention_mask = attention_mask[:, :, :, :key.shape[-2]]
    is_causal = _hf_is_causal(module, query, attention_mask, is_causal)
    extra = {} if scaling is None else {"scale": scaling}
    attn_output = sdpa(query, key, value, attn_mask=attention_mask, dropout_p=dropout,
                       is_causal=is_causal, **extra)
    return attn_output.transpose(1, 2).contiguous(), None


def attention_function(base="eager"):
    """An attention function with the Hugging Face AttentionInterface signature that records.

    ``f(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs)``,
    called as transformers' attention modules call theirs: query (batch, heads, q, d)
    already rotated, key and value (batch, kv_heads, k, d) not yet repeated. While a
    :class:`capture` is active it records query, key (as given: grouped-query key heads
    stay), ``scaling`` (None: 1/sqrt(d)) and the mask sliced to the key length as
    transformers does (``mask[:, :, :, :k]``), under the layer name of ``module`` (or the
    innermost running module), then delegates to ``base``:

    - ``"eager"``: :func:`eager_attention_forward` (transformers' eager math; returns the
      weights). With Gemma 2's ``softcap`` the logits are no longer q.k: the softcapped,
      masked logits are recorded instead (as path 1 records them).
    - ``"sdpa"``: :func:`sdpa_attention_forward` over torch's SDPA (ValueError here when
      torch has none); when it applies ``is_causal`` the record is causal (query i sees keys
      0..i, no mask tensor built). softcap and attention sinks (s_aux) raise
      NotImplementedError.
    - a callable with the same signature (e.g. a model's own eager function), called as
      ``base(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout,
      **kwargs)``; ``is_causal=True`` in kwargs is taken as torch's causal mask; softcap
      raises NotImplementedError (the logits would not be q.k).

    Returns what base returns: (attn_output (batch, q, heads, d), attn_weights or None).
    Without an active capture the call is base's alone. Softmax and SDPA calls inside a
    recorded call are not recorded again.
    """
    if isinstance(base, str):
        if base == "sdpa" and not hasattr(torch.nn.functional, "scaled_dot_product_attention"):
            raise ValueError(f"attention_function: base 'sdpa' needs torch's "
                             f"scaled_dot_product_attention, which torch {torch.__version__} "
                             "does not have (use 'eager')")
        if base not in ("eager", "sdpa"):
            raise ValueError(f"attention_function: base must be 'eager', 'sdpa' or a callable, "
                             f"got {base!r}")
    elif not callable(base):
        raise ValueError(f"attention_function: base must be 'eager', 'sdpa' or a callable, "
                         f"got {type(base).__name__}")

    def call(module, query, key, value, attention_mask, scaling, dropout, kwargs):
        if base == "eager":
            return _eager(module, query, key, value, attention_mask, scaling, dropout,
                          kwargs.pop("softcap", None), kwargs)
        if base == "sdpa":
            return sdpa_attention_forward(module, query, key, value, attention_mask,
                                          scaling=scaling, dropout=dropout, **kwargs)
        return base(module, query, key, value, attention_mask, scaling=scaling,
                    dropout=dropout, **kwargs)

    def attnscale_attention(module, query, key, value, attention_mask, scaling=None,
                            dropout=0.0, **kwargs):
        if not _ACTIVE or _suppressed():
            out = call(module, query, key, value, attention_mask, scaling, dropout, kwargs)
            return out[:2] if base == "eager" else out
        if base != "eager" and kwargs.get("softcap") is not None:
            raise NotImplementedError("attention_function: with softcap the logits are not "
                                      "q.k; record them with base 'eager'")
        if base == "sdpa" and kwargs.get("s_aux") is not None:
            raise NotImplementedError("attention_function: torch's SDPA has no attention "
                                      "sinks (s_aux): pass the model's own function as base")
        softcapped = base == "eager" and kwargs.get("softcap") is not None
        is_causal = kwargs.get("is_causal")
        with _Inside():
            out = call(module, query, key, value, attention_mask, scaling, dropout,
                       dict(kwargs))
        if base == "eager":
            out, logits = out[:2], out[2]
            if softcapped:
                for cap in _active():
                    layer = cap._layer_of(module)
                    if layer is not None and cap._wanted(layer):
                        cap._add("attention_function", layer, scores=_keep(logits))
                return out
        mask = attention_mask
        if mask is not None:
            mask = _slice_mask(mask, key.shape[-2])
        if base == "sdpa":
            causal = _hf_is_causal(module, query, mask, is_causal)
        else:
            causal = base != "eager" and is_causal is True
        scale = 1.0 / math.sqrt(query.shape[-1]) if scaling is None else float(scaling)
        _offer_qk("attention_function", module, query, key, mask, scale, causal)
        return out

    attnscale_attention.base = base
    attnscale_attention.__qualname__ = attnscale_attention.__name__ = (
        f"attnscale_attention_{base if isinstance(base, str) else 'custom'}")
    return attnscale_attention


# ----------------------------------------------------------------------------
# The capture

class Call:
    """One recorded attention call.

    Attributes
    ----------
    index : int
        Position among the capture's calls.
    layer : str
        Qualified name of the attention module (model.named_modules(); "" is the model).
    call : int
        How many calls of the same layer came before this one (0 for the first).
    path : str
        "softmax", "sdpa" or "attention_function".
    q, k : torch.Tensor or None
        Query (batch, heads, q, d) and key (batch, kv_heads, k, d) as the model had them
        (post-rotary, key heads not repeated); None on the softmax path.
    scores : torch.Tensor or None
        The logits (batch, heads, q, k), mask included (softmax path, softcapped eager).
    mask : torch.Tensor or None
        Bool (True: seen) or additive float, broadcastable to (batch, heads, q, k).
    scale : float or None
        Logits = scale q.k (None when scores are recorded).
    causal : bool
        torch's is_causal applied (query i sees keys 0..i, on top of any mask).
    """

    __slots__ = ("index", "layer", "call", "path", "q", "k", "scores", "mask", "scale",
                 "causal", "_versions")

    def __init__(self, index, layer, call, path, q=None, k=None, scores=None, mask=None,
                 scale=None, causal=False):
        self.index, self.layer, self.call, self.path = index, layer, call, path
        self.q, self.k, self.scores, self.mask, self.scale = q, k, scores, mask, scale
        self.causal = causal
        self._versions = {n: _version(t) for n, t in self._tensors()}

    def _tensors(self):
        return [(n, getattr(self, n)) for n in ("q", "k", "scores", "mask")
                if getattr(self, n) is not None]

    @property
    def masked_logits(self):
        """True when the scores carry the mask themselves (diagnose's masked_logits)."""
        return self.scores is not None

    def __repr__(self):
        parts = [f"{n}={tuple(t.shape)} {str(t.dtype).replace('torch.', '')}"
                 for n, t in self._tensors()]
        if self.scale is not None:
            parts.append(f"scale={self.scale!r}")
        if self.causal:
            parts.append("causal=True")
        return (f"Call({self.index}, layer={self.layer!r}, call={self.call}, "
                f"path={self.path!r}, " + ", ".join(parts) + ")")


_ATTENTION_CLASS = re.compile(r"attn|attention", re.IGNORECASE)

_WHAT = {"q": "query", "k": "key", "scores": "logits", "mask": "mask"}


class capture:
    """Context manager recording every attention call of ``model`` (see the module docstring).

    Parameters
    ----------
    model : torch.nn.Module
        Layer names are qualified names from ``model.named_modules()``.
    layers : sequence of str, optional
        Record only these modules (and modules inside them: a decoder layer's name selects
        its attention). An unknown name raises ValueError listing the attention modules
        (those whose class name contains "Attention" or "Attn").

    Inside the ``with`` block every module of ``model`` carries a forward pre-hook and hook
    (to know which module is running) and torch's softmax and SDPA entry points are wrapped;
    all are removed on exit. The model's outputs are unchanged (the wrapped calls compute
    exactly what they did). Captures may nest; each records the calls of its own model.

    Attributes
    ----------
    calls : list of Call
        The recorded calls, in call order; also iterable as ``for call in cap``.
    """

    def __init__(self, model, layers=None):
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"capture: model must be a torch.nn.Module, got "
                            f"{type(model).__name__}")
        self.model = model
        self._modules = list(model.named_modules())
        self._names = {}
        for name, m in self._modules:
            self._names.setdefault(id(m), name)
        if isinstance(layers, str):
            layers = [layers]
        self.layers = None if layers is None else list(layers)
        if self.layers is not None:
            known = set(self._names.values())
            for name in self.layers:
                if not isinstance(name, str) or name not in known:
                    raise ValueError(f"capture: unknown layer {name!r}: the model's attention "
                                     f"modules are {self.attention_modules()}")
        self.calls = []
        self._counts = {}
        self._hooks = []
        self._thread = threading.local()
        self._entered = False

    def attention_modules(self):
        """Qualified names of the modules whose class name contains "Attention" or "Attn"
        (what ``layers=`` usually names; any module name is accepted)."""
        return [n for n, m in self._modules if _ATTENTION_CLASS.search(type(m).__name__)]

    # -- context manager

    def __enter__(self):
        if self._entered:
            raise RuntimeError("capture: already entered")
        for _, m in self._modules:
            self._hooks.append(m.register_forward_pre_hook(self._pre))
            try:
                self._hooks.append(m.register_forward_hook(self._post, always_call=True))
            except TypeError:  # torch < 2.0: no always_call (see _pre for the recovery)
                self._hooks.append(m.register_forward_hook(self._post))
        with _LOCK:
            if not _ACTIVE:
                _install()
            _ACTIVE.append(self)
        self._entered = True
        return self

    def __exit__(self, *exc):
        with _LOCK:
            if self in _ACTIVE:
                _ACTIVE.remove(self)
            if not _ACTIVE:
                _uninstall()
        for h in self._hooks:
            h.remove()
        self._hooks = []
        self._thread = threading.local()
        self._entered = False
        return False

    def __iter__(self):
        return iter(self.calls)

    def __len__(self):
        return len(self.calls)

    def __getitem__(self, i):
        return self.calls[i]

    # -- which module is running

    def _stack(self):
        s = getattr(self._thread, "stack", None)
        if s is None:
            s = self._thread.stack = []
        return s

    def _pre(self, module, inputs):
        s = self._stack()
        if module is self.model:
            s.clear()  # a new top-level call: drop what an exception may have left behind
        s.append(module)

    def _post(self, module, inputs, output):
        s = self._stack()
        while s:
            if s.pop() is module:
                break

    def _running_layer(self):
        s = self._stack()
        if not s:
            return None
        m = s[-1]
        name = self._names.get(id(m))
        if name is None:
            return None
        if isinstance(m, torch.nn.Softmax) and name:
            name = name.rpartition(".")[0]
        return name

    def _layer_of(self, module):
        name = self._names.get(id(module)) if module is not None else None
        return name if name is not None else self._running_layer()

    def _wanted(self, layer):
        if self.layers is None:
            return True
        return any(w == "" or layer == w or layer.startswith(w + ".") for w in self.layers)

    def _add(self, path, layer, **tensors):
        c = self._counts.get(layer, 0)
        self._counts[layer] = c + 1
        self.calls.append(Call(len(self.calls), layer, c, path, **tensors))

    # -- results

    def logits(self, i, dtype=None):
        """Call i's logits (batch, heads, q, k) formed in torch, for dumping and inspection.

        Softmax path: the recorded tensor itself (converted when ``dtype`` is given).
        q/k paths: ``scale q . repeat_kv(k)^T`` in ``dtype`` (default float64), then the mask:
        a bool mask puts -inf where False, a float mask is added. This builds the n x n
        tensor that :meth:`diagnose` never builds.
        """
        c = self.calls[i]
        if c.scores is not None:
            return c.scores if dtype is None else c.scores.to(dtype)
        dtype = torch.float64 if dtype is None else dtype
        q, k = c.q.to(dtype), c.k.to(dtype)
        if q.ndim >= 3 and k.shape[-3] != q.shape[-3]:
            k = k.repeat_interleave(q.shape[-3] // k.shape[-3], dim=-3)
        out = torch.matmul(q, k.transpose(-1, -2)) * c.scale
        if c.mask is not None:
            if c.mask.dtype == torch.bool:
                out = out.masked_fill(~c.mask, float("-inf"))
            else:
                out = out + c.mask.to(dtype)
        if c.causal:
            seen = torch.ones(out.shape[-2:], dtype=torch.bool).tril()
            out = out.masked_fill(~seen, float("-inf"))
        return out

    def layer_inputs(self, batch=None):
        """The ``layers`` argument of attnscale.diagnose for the recorded calls: one dict per
        call ({"name", "q", "k", "scale", "mask"} or {"name", "scores", "masked_logits"};
        "dtype": "bfloat16" with bfloat16 tensors passed as their int16 bits), after the
        checks (NaN, shapes, in-place changes). A layer called more than once is named
        "layer#i" for its i-th call (0-based). ``batch``: None keeps the batch (diagnose's
        heads are batch-major), an int takes that batch element.
        """
        if not self.calls:
            raise ValueError("capture: no attention call was recorded (was the model run "
                             "inside the with block? layers=%r)" % (self.layers,))
        many = {}
        for c in self.calls:
            many[c.layer] = many.get(c.layer, 0) + 1
        return [self._layer_input(c, batch, many[c.layer] > 1) for c in self.calls]

    def _layer_input(self, c, batch, numbered):
        name = c.layer if c.layer else "(model)"
        if numbered:
            name = f"{name}#{c.call}"
        for n, t in c._tensors():
            if c._versions[n] is not None and _version(t) != c._versions[n]:
                raise RuntimeError(f"{name}: the recorded {_WHAT[n]} was modified in place "
                                   "after the attention call (a static KV cache?): diagnose "
                                   "it inside the with block, before the next step")
        t = {n: tt for n, tt in c._tensors()}
        if batch is not None:
            for n in ("q", "k", "scores"):
                if n in t:
                    x = t[n]
                    if x.ndim != 4 or not -x.shape[0] <= batch < x.shape[0]:
                        raise ValueError(f"{name}: batch {batch} is not an element of the "
                                         f"recorded {_WHAT[n]} of shape {tuple(x.shape)}")
                    t[n] = x[batch]
            if "mask" in t and t["mask"].ndim == 4:
                t["mask"] = t["mask"][batch if t["mask"].shape[0] > 1 else 0]
        if "scores" in t:
            target = tuple(t["scores"].shape)
        else:
            q, k = t["q"], t["k"]
            if (q.ndim < 2 or k.ndim != q.ndim or q.shape[-1] != k.shape[-1]
                    or (q.ndim >= 3 and (q.shape[:-3] != k.shape[:-3]
                                         or q.shape[-3] % k.shape[-3]))):
                raise ValueError(f"{name}: query {tuple(q.shape)} and key {tuple(k.shape)} "
                                 "do not match (same batch and head_dim, key heads dividing "
                                 "query heads)")
            target = tuple(q.shape[:-1]) + (k.shape[-2],)
        if "mask" in t and not _broadcasts(tuple(t["mask"].shape), target):
            raise ValueError(f"{name}: the mask of shape {tuple(t['mask'].shape)} does not "
                             f"broadcast to the logits' (batch, heads, rows, keys) {target}")
        for n, x in t.items():
            _check_nan(name, n, x, batch)
        out = {"name": name}
        bf16 = False
        for n, x in t.items():
            out[n], b = _for_c(name, n, x)
            bf16 = bf16 or b
        if "scores" in t:
            out["masked_logits"] = True
        else:
            out["scale"] = float(c.scale)
            if c.causal:
                out["causal"] = True
        if bf16:
            out["dtype"] = "bfloat16"
        return out

    def diagnose(self, rows=None, policy=None, target_len=None, beta=1, window=2, plot=None,
                 threads=None, *, batch=None, **params):
        """attnscale.diagnose on every recorded call: every layer and head.

        Parameters are attnscale.diagnose's: ``rows`` (0-based row indices within each
        head: list, "lo:hi:k" or "lo:hi:k:log"), ``policy`` (a name or "all"), ``target_len``
        (THEORY.md 4.6), ``beta``, ``window``, ``plot`` (the layer x head heat map when there
        are several heads), ``threads`` and the policy parameters (``train_len`` ...).
        ``batch``: None (every batch element; diagnose's head = b * heads + h) or one
        element. Masks are the recorded ones (``causal`` is never set: the model's own mask
        decides which keys each row sees). A row that sees no key at all (a left-padded
        sequence's pad positions) has n = 0, no statistics and regime "undetermined"; pass
        ``batch`` and ``rows`` to leave such rows out.

        Returns attnscale.diagnose's dict {"rows", "summary", "policies"}; every record has
        "layer" and "head". Raises ValueError for a NaN in a recorded tensor or a mask that
        does not broadcast (naming layer, head, row and column), NotImplementedError when
        this build of attnscale has no diagnose(layers=...).
        """
        import inspect

        import attnscale

        if "layers" not in inspect.signature(attnscale.diagnose).parameters:
            raise NotImplementedError("this build of attnscale has no diagnose(layers=...)")
        layers = self.layer_inputs(batch)
        # The library's notes (attnscale.Note) re-issued at the caller's line, not this one.
        with warnings.catch_warnings(record=True) as notes:
            warnings.simplefilter("always", attnscale.Note)
            result = attnscale.diagnose(layers=layers, causal=False, rows=rows, policy=policy,
                                        target_len=target_len, beta=beta, window=window,
                                        plot=plot, threads=threads, **params)
        for n in notes:
            warnings.warn(n.message, n.category, stacklevel=2)
        return result


def _broadcasts(shape, target):
    if len(shape) > len(target):
        return False
    return all(s in (1, t) for s, t in zip(shape[::-1], target[::-1]))


def _for_c(layer, name, t):
    """(array for the library, is bfloat16 bits)."""
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy(), True
    if t.dtype in (torch.float16, torch.float32, torch.float64):
        return t.numpy(), False
    if t.dtype == torch.bool and name == "mask":
        return t.numpy(), False
    if t.is_floating_point():
        return t.to(torch.float32).numpy(), False
    raise ValueError(f"{layer}: the recorded {_WHAT[name]} has dtype {t.dtype} (a mask must be "
                     "bool or float, logits, q and k float)")


_BLOCK = 1 << 22  # elements per isnan block: no full-size temporary for n x n logits


def _check_nan(layer, name, t, batch):
    """ValueError naming layer, (batch,) head, row and column of t's first NaN."""
    if not t.is_floating_point():
        return
    where = _first_nan(t)
    if where is None:
        return
    lead, row, col = where[:-2], where[-2], where[-1]
    if t.ndim == 4:
        b, h = lead
        at = f"batch {b}, head {h}"
    elif t.ndim == 3:
        h = lead[0]
        at = (f"batch {batch}, " if batch is not None else "") + f"head {h}"
    else:
        at = ", ".join(f"index {i}" for i in lead) or "head 0"
    kind = {"q": "row (query position) {r}, column (feature) {c}",
            "k": "row (key position) {r}, column (feature) {c}",
            "scores": "row (query) {r}, column (key) {c}",
            "mask": "row (query) {r}, column (key) {c}"}[name]
    raise ValueError(f"{layer}: NaN in the recorded {_WHAT[name]} {tuple(t.shape)} at {at}, "
                     + kind.format(r=row, c=col))


def _first_nan(t):
    if t.ndim == 0:
        return (0, 0) if bool(torch.isnan(t)) else None
    if t.ndim == 1:
        t = t.unsqueeze(0)
    if t.numel() <= _BLOCK:
        if not bool(torch.isnan(t).any()):
            return None
        return tuple(int(i) for i in torch.nonzero(torch.isnan(t))[0])
    rows, cols = t.shape[-2], t.shape[-1]
    step = max(1, _BLOCK // max(cols, 1))
    import itertools
    for lead in itertools.product(*(range(s) for s in t.shape[:-2])):
        m = t[lead]
        for r0 in range(0, rows, step):
            blk = m[r0:r0 + step]
            nan = torch.isnan(blk)
            if bool(nan.any()):
                r, c = (int(i) for i in torch.nonzero(nan)[0])
                return tuple(lead) + (r0 + r, c)
    return None


# ----------------------------------------------------------------------------
# The figure

def plot_heads(result, path, window=2):
    """The layer x head heat map of summary["ratio_median"] (median over a head's rows of
    beta/beta_hat_k10) from a diagnose result whose summaries carry "layer" and "head"
    (:meth:`capture.diagnose`), drawn by the library (attnscale.plot_heads: diverging colour
    map centred on 1, the critical window [1/window, window] marked; a CSV beside it).

    Layers are the rows in the order of the summaries; heads the columns (NaN where a layer
    has fewer heads or a head no finite ratio). Returns (layers, ratio (nlayers, nheads)).
    """
    import numpy as np

    import attnscale

    summary = result["summary"] if isinstance(result, dict) else result
    layers, index, cells = [], {}, []
    for s in summary:
        if "layer" not in s or "head" not in s:
            raise ValueError("plot_heads: the summaries need 'layer' and 'head' (a result of "
                             "capture.diagnose or attnscale.diagnose(layers=...))")
        if s["layer"] not in index:
            index[s["layer"]] = len(layers)
            layers.append(s["layer"])
        r = s.get("ratio_median")
        cells.append((index[s["layer"]], int(s["head"]),
                      np.nan if r is None else float(r)))
    if not cells:
        raise ValueError("plot_heads: the result has no summary records")
    ratio = np.full((len(layers), max(h for _, h, _ in cells) + 1), np.nan)
    for i, h, r in cells:
        ratio[i, h] = r
    if not hasattr(attnscale, "plot_heads"):
        raise NotImplementedError("this build of attnscale has no plot_heads")
    attnscale.plot_heads(path, layers, ratio, window)
    return layers, ratio


_REGIMES = ("subcritical", "critical", "supercritical", "undetermined")


def heads_table(result):
    """One dict per (layer, head) of a diagnose result, in the summaries' order: layer, head,
    rows, the share of the head's rows in each regime at the first beta and window
    (``subcritical``, ``critical``, ``supercritical``, ``undetermined``: no finite
    beta_hat_k10, e.g. rows with fewer than 10 keys; the library's share_* summary keys),
    ratio_median, best (the best-fitting law, or None with fit_error), best_policy and, with
    target_len, recommended_policy and recommended_factor.
    """
    table = []
    for s in result["summary"]:
        entry = {"layer": s.get("layer"), "head": s.get("head"), "rows": s.get("rows")}
        for r in _REGIMES:
            entry[r] = s.get("share_" + r, float("nan"))
        for k in ("ratio_median", "best", "best_policy", "recommended_policy",
                  "recommended_factor"):
            entry[k] = s.get(k)
        table.append(entry)
    return table
