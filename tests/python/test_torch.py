"""attnscale.torch (DESIGN.md, PyTorch capture contract; issue 11 items 2 and 4) on models written
here with seeded random weights (no download, no transformers package):

- ``Decoder(mode="softmax")``: a Llama-style decoder as transformers writes LlamaModel: RMSNorm,
  rotary embeddings computed as LlamaRotaryEmbedding does (float32 angles, cat(freqs, freqs))
  and applied with rotate_half, 8 query / 2 key heads (grouped-query attention through
  repeat_kv), an additive causal (and padding) mask filled with torch.finfo(dtype).min, eager
  attention ending in torch.softmax(..., dtype=torch.float32); float32 and bfloat16.
- ``Decoder(mode="interface")``: the same model whose attention calls an attention function
  exactly as transformers' attention modules do: ``attention_interface(self, query_states,
  key_states, value_states, attention_mask, dropout=0.0, scaling=self.scaling, **kwargs)``.
- ``Decoder(mode="sdpa")``: attention through torch.nn.functional.scaled_dot_product_attention.
  torch 1.13 (Debian's) has none: those tests inject a reference SDPA (the math torch's
  documentation gives for it) and say so (test id ``injected-reference-sdpa`` and a
  UserWarning); with a torch that has SDPA they also run on torch's own.

Expected values come from the test's own recomputation: the same torch operations on the
attention modules' hooked inputs (exact equality), and an independent float64 computation (its
own rotation formula and key-head indexing) with the model's cos/sin, whose float32 rounding
gives the tolerance (1e-6 relative to the largest logit in float32; bfloat16's 8-bit
significand gives 3e-2). The integration tests compare cap.diagnose with the CLI
(build/attnscale diagnose) on the files scripts/dump_scores.py writes, bit for bit; they need
the library's diagnose(layers=...) and are skipped with a reason when this build lacks it.
"""

import csv
import importlib.util
import inspect
import io
import math
import os
import shlex
import subprocess
import time
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import attnscale  # noqa: E402
import attnscale.torch as at  # noqa: E402
from conftest import CLI, assert_same_records, cli_args  # noqa: E402

F = torch.nn.functional
HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", ".."))

HEADS, KV_HEADS, HEAD_DIM, LAYERS, VOCAB = 8, 2, 8, 2, 97
HIDDEN = HEADS * HEAD_DIM
N, PAD = 40, 5  # sequence length; the second batch element's last PAD tokens are padding
HAS_SDPA = hasattr(F, "scaled_dot_product_attention")
HAS_LAYERS = "layers" in inspect.signature(attnscale.diagnose).parameters
needs_c = pytest.mark.skipif(not HAS_LAYERS, reason="this build's attnscale.diagnose has no "
                             "layers= yet (the lead's C side of issue 11): capture-only tests ran")


# ---------------------------------------------------------------------------------------------
# The models


class RMSNorm(torch.nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.weight = torch.nn.Parameter(1 + 0.1 * torch.randn(dim))
        self.eps = eps

    def forward(self, x):
        dtype = x.dtype
        h = x.to(torch.float32)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(dtype)


class Rotary(torch.nn.Module):
    def __init__(self, dim, theta=10000.0):
        super().__init__()
        inv = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
        self.register_buffer("inv_freq", inv, persistent=False)

    @torch.no_grad()
    def forward(self, x, position_ids):
        inv = self.inv_freq[None, :, None].float().expand(position_ids.shape[0], -1, 1)
        freqs = (inv @ position_ids[:, None, :].float()).transpose(1, 2)
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(x.dtype), emb.sin().to(x.dtype)


def rotate_half(x):
    x1, x2 = x[..., :x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin):
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    return (q * cos) + (rotate_half(q) * sin), (k * cos) + (rotate_half(k) * sin)


def repeat_kv(x, n_rep):
    b, kvh, n, d = x.shape
    if n_rep == 1:
        return x
    return x[:, :, None, :, :].expand(b, kvh, n_rep, n, d).reshape(b, kvh * n_rep, n, d)


def hf_eager_attention_forward(module, query, key, value, attention_mask, scaling, dropout=0.0,
                               **kwargs):
    """transformers' eager_attention_forward (Llama), the reference for ours."""
    key_states = repeat_kv(key, module.num_key_value_groups)
    value_states = repeat_kv(value, module.num_key_value_groups)
    attn_weights = torch.matmul(query, key_states.transpose(2, 3)) * scaling
    if attention_mask is not None:
        causal_mask = attention_mask[:, :, :, : key_states.shape[-2]]
        attn_weights = attn_weights + causal_mask
    attn_weights = F.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query.dtype)
    attn_weights = F.dropout(attn_weights, p=dropout, training=module.training)
    attn_output = torch.matmul(attn_weights, value_states)
    attn_output = attn_output.transpose(1, 2).contiguous()
    return attn_output, attn_weights


def reference_sdpa(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False,
                   scale=None, enable_gqa=False):
    """torch.nn.functional.scaled_dot_product_attention as torch's documentation writes it."""
    L, S = query.size(-2), key.size(-2)
    scale_factor = 1 / math.sqrt(query.size(-1)) if scale is None else scale
    attn_bias = torch.zeros(L, S, dtype=query.dtype)
    if is_causal:
        assert attn_mask is None
        temp_mask = torch.ones(L, S, dtype=torch.bool).tril(diagonal=0)
        attn_bias = attn_bias.masked_fill(temp_mask.logical_not(), float("-inf"))
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            attn_bias = attn_bias.masked_fill(attn_mask.logical_not(), float("-inf"))
        else:
            attn_bias = attn_mask + attn_bias
    if enable_gqa:
        key = key.repeat_interleave(query.size(-3) // key.size(-3), -3)
        value = value.repeat_interleave(query.size(-3) // value.size(-3), -3)
    attn_weight = query @ key.transpose(-2, -1) * scale_factor
    attn_weight = attn_weight + attn_bias
    attn_weight = torch.softmax(attn_weight, dim=-1)
    attn_weight = torch.dropout(attn_weight, dropout_p, train=True)
    return attn_weight @ value


class Attention(torch.nn.Module):
    def __init__(self, mode, sdpa_mask="float"):
        super().__init__()
        self.mode, self.sdpa_mask = mode, sdpa_mask
        self.head_dim = HEAD_DIM
        self.num_key_value_groups = HEADS // KV_HEADS
        self.scaling = HEAD_DIM ** -0.5
        self.is_causal = True
        self.training = False
        self.q_proj = torch.nn.Linear(HIDDEN, HEADS * HEAD_DIM, bias=False)
        self.k_proj = torch.nn.Linear(HIDDEN, KV_HEADS * HEAD_DIM, bias=False)
        self.v_proj = torch.nn.Linear(HIDDEN, KV_HEADS * HEAD_DIM, bias=False)
        self.o_proj = torch.nn.Linear(HEADS * HEAD_DIM, HIDDEN, bias=False)
        for p in (self.q_proj.weight, self.k_proj.weight):
            torch.nn.init.normal_(p, std=2.0 / math.sqrt(HIDDEN))
        self.attention_interface = at.attention_function("eager")

    def forward(self, hidden_states, cos, sin, attention_mask, bool_mask=None, **kwargs):
        input_shape = hidden_states.shape[:-1]
        hidden_shape = (*input_shape, -1, self.head_dim)
        query_states = self.q_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        key_states = self.k_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        value_states = self.v_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        query_states, key_states = apply_rotary_pos_emb(query_states, key_states, cos, sin)
        if self.mode == "interface":
            attn_output, _ = self.attention_interface(
                self, query_states, key_states, value_states, attention_mask, dropout=0.0,
                scaling=self.scaling, **kwargs)
        elif self.mode == "softmax":
            k = repeat_kv(key_states, self.num_key_value_groups)
            v = repeat_kv(value_states, self.num_key_value_groups)
            attn_weights = torch.matmul(query_states, k.transpose(2, 3)) * self.scaling
            attn_weights = attn_weights + attention_mask[:, :, :, : k.shape[-2]]
            attn_weights = torch.softmax(attn_weights, dim=-1, dtype=torch.float32)
            attn_output = torch.matmul(attn_weights.to(query_states.dtype), v)
            attn_output = attn_output.transpose(1, 2).contiguous()
        else:  # sdpa: three ways of passing the mask
            sdpa = F.scaled_dot_product_attention
            k = repeat_kv(key_states, self.num_key_value_groups)
            v = repeat_kv(value_states, self.num_key_value_groups)
            if self.sdpa_mask == "causal":  # grouped-query keys, is_causal, default scale
                # (inside a capture F's SDPA is the capture's wrapper of the injected one)
                if getattr(sdpa, "__wrapped__", sdpa) is reference_sdpa or torch_at_least(2, 5):
                    out = sdpa(query_states, key_states, value_states, is_causal=True,
                               enable_gqa=True)
                else:
                    out = sdpa(query_states, k, v, is_causal=True)
            elif self.sdpa_mask == "bool":
                out = sdpa(query_states, k, v, attn_mask=bool_mask, scale=self.scaling)
            else:
                out = sdpa(query_states, k, v, attention_mask, 0.0, False, scale=0.3)
            attn_output = out.transpose(1, 2).contiguous()
        return self.o_proj(attn_output.reshape(*input_shape, -1).contiguous())


def torch_at_least(major, minor):
    v = tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2])
    return v >= (major, minor)


class DecoderLayer(torch.nn.Module):
    def __init__(self, mode, sdpa_mask):
        super().__init__()
        self.input_layernorm = RMSNorm(HIDDEN)
        self.self_attn = Attention(mode, sdpa_mask)
        self.post_attention_layernorm = RMSNorm(HIDDEN)
        self.gate_proj = torch.nn.Linear(HIDDEN, 2 * HIDDEN, bias=False)
        self.up_proj = torch.nn.Linear(HIDDEN, 2 * HIDDEN, bias=False)
        self.down_proj = torch.nn.Linear(2 * HIDDEN, HIDDEN, bias=False)

    def forward(self, x, cos, sin, mask, bool_mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, bool_mask=bool_mask)
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class Decoder(torch.nn.Module):
    """Llama-style: layers.<i>.self_attn are the attention modules."""

    def __init__(self, mode="softmax", dtype=torch.float32, sdpa_mask="float", seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.embed_tokens = torch.nn.Embedding(VOCAB, HIDDEN)
        self.layers = torch.nn.ModuleList(DecoderLayer(mode, sdpa_mask) for _ in range(LAYERS))
        self.norm = RMSNorm(HIDDEN)
        self.rotary_emb = Rotary(HEAD_DIM)
        self.to(dtype).eval()

    def forward(self, input_ids, attention_mask=None):
        x = self.embed_tokens(input_ids)
        b, n = input_ids.shape
        position_ids = torch.arange(n)[None].expand(b, n)
        cos, sin = self.rotary_emb(x, position_ids)
        seen = masks_seen(attention_mask, b, n)  # (b, 1, n, n) bool
        mask = torch.zeros(b, 1, n, n, dtype=x.dtype).masked_fill(~seen,
                                                                  torch.finfo(x.dtype).min)
        for layer in self.layers:
            x = layer(x, cos, sin, mask, seen)
        return self.norm(x)


def masks_seen(attention_mask, b, n):
    """Which keys each query sees: causal, and not padding (attention_mask 0)."""
    seen = torch.ones(n, n, dtype=torch.bool).tril()[None, None].expand(b, 1, n, n)
    if attention_mask is not None:
        seen = seen & attention_mask[:, None, None, :].bool()
    return seen


def inputs(b=2, n=N, seed=1, pad="right"):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, VOCAB, (b, n), generator=g)
    am = torch.ones(b, n, dtype=torch.long)
    if b > 1 and pad == "right":
        am[1, n - PAD:] = 0
    elif b > 1 and pad == "left":
        am[1, :PAD] = 0
    return ids, am


def hooked_inputs(model):
    """Forward pre-hooks on every self_attn: the (hidden_states, cos, sin, mask) it gets."""
    got, handles = {}, []
    for name, m in model.named_modules():
        if isinstance(m, Attention):
            handles.append(m.register_forward_pre_hook(
                lambda mod, args, name=name: got.setdefault(name, []).append(args)))
    return got, handles


def same_ops_logits(attn, x, cos, sin, mask):
    """The model's own operations, repeated: post-rotary q.k^T * scaling + mask."""
    shape = (*x.shape[:-1], -1, HEAD_DIM)
    q = attn.q_proj(x).view(shape).transpose(1, 2)
    k = attn.k_proj(x).view(shape).transpose(1, 2)
    q, k = apply_rotary_pos_emb(q, k, cos, sin)
    kr = repeat_kv(k, attn.num_key_value_groups)
    return q, k, torch.matmul(q, kr.transpose(2, 3)) * attn.scaling + mask


def f64_logits(attn, x, cos, sin, scale=None):
    """Independent float64: projections, the rotation written pairwise (i, i + d/2) with the
    model's cos/sin, query head h against key head h // (heads / kv_heads). No mask."""
    x = x.double()
    b, n, _ = x.shape
    q = (x @ attn.q_proj.weight.double().T).view(b, n, HEADS, HEAD_DIM).permute(0, 2, 1, 3)
    k = (x @ attn.k_proj.weight.double().T).view(b, n, KV_HEADS, HEAD_DIM).permute(0, 2, 1, 3)
    c, s = cos.double()[:, None], sin.double()[:, None]
    h = HEAD_DIM // 2

    def rot(t):
        a, bb = t[..., :h], t[..., h:]
        return torch.cat([a * c[..., :h] - bb * s[..., :h], bb * c[..., h:] + a * s[..., h:]],
                         dim=-1)

    q, k = rot(q), rot(k)
    k = k[:, [hh // (HEADS // KV_HEADS) for hh in range(HEADS)]]
    return torch.einsum("bhqd,bhkd->bhqk", q, k) * (attn.scaling if scale is None else scale)


def rel_err(got, want, seen):
    """max |got - want| over seen entries, relative to the largest |want| there."""
    g, w = got.double()[seen.expand_as(got)], want.double()[seen.expand_as(want)]
    return float((g - w).abs().max() / w.abs().max())


TOL = {torch.float32: 1e-6, torch.bfloat16: 3e-2}


def run(model, *args):
    with torch.no_grad():
        return model(*args)


@pytest.fixture
def sdpa(request, monkeypatch):
    """The SDPA the model calls: the injected reference, or torch's own."""
    if request.param == "injected-reference-sdpa":
        if not HAS_SDPA:
            warnings.warn(f"torch {torch.__version__} has no scaled_dot_product_attention: the "
                          "SDPA path is tested through an injected reference implementation",
                          UserWarning)
        monkeypatch.setattr(F, "scaled_dot_product_attention", reference_sdpa, raising=False)
        return reference_sdpa
    if not HAS_SDPA:
        pytest.skip(f"torch {torch.__version__} has no scaled_dot_product_attention (the path is "
                    "tested through the injected reference instead)")
    return F.scaled_dot_product_attention


SDPA_KINDS = ["injected-reference-sdpa", "torch-sdpa"]


# ---------------------------------------------------------------------------------------------
# Path 1: softmax inside the attention module


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["f32", "bf16"])
def test_softmax_path_logits(dtype):
    model = Decoder("softmax", dtype)
    ids, am = inputs()
    ref = run(model, ids, am)
    got, handles = hooked_inputs(model)
    with at.capture(model) as cap:
        out = run(model, ids, am)
    for h in handles:
        h.remove()
    assert torch.equal(out, ref), "the capture changed the model's output"
    assert [c.layer for c in cap.calls] == [f"layers.{i}.self_attn" for i in range(LAYERS)]
    assert [c.path for c in cap.calls] == ["softmax"] * LAYERS
    seen = masks_seen(am, 2, N)
    positions = torch.arange(N, dtype=torch.float64)
    for c in cap.calls:
        attn = model.get_submodule(c.layer)
        x, cos, sin, mask = got[c.layer][0][:4]
        assert c.q is None and c.k is None and c.mask is None and c.masked_logits
        assert c.scores.shape == (2, HEADS, N, N) and c.scores.dtype == dtype
        # Exact: the same torch operations on the module's inputs.
        with torch.no_grad():
            _, _, same = same_ops_logits(attn, x, cos, sin, mask)
        assert torch.equal(c.scores, same)
        assert torch.equal(cap.logits(c.index), c.scores)
        # Independent float64 with the model's cos/sin; cos/sin themselves against the formula
        # (float32 angles p * inv_freq carry an absolute error up to ~N ulp(1) = 5e-6).
        want = f64_logits(attn, x, cos, sin)
        assert rel_err(c.scores, want, seen) < TOL[dtype]
        inv = 10000.0 ** (-torch.arange(0, HEAD_DIM, 2, dtype=torch.float64) / HEAD_DIM)
        angle = positions[:, None] * torch.cat([inv, inv])[None]
        tol = 1e-5 if dtype == torch.float32 else 2.0 ** -8
        assert float((cos[0].double() - angle.cos()).abs().max()) < tol
        assert float((sin[0].double() - angle.sin()).abs().max()) < tol
        # Masked keys carry finfo.min (+ a logit that rounds away): diagnose's masked_logits.
        lowest = torch.finfo(dtype).min
        assert bool((c.scores[~seen.expand_as(c.scores)] <= lowest / 2).all())
        assert bool((c.scores[seen.expand_as(c.scores)] > -1e30).all())


def test_nn_softmax_and_ignored_softmaxes():
    """nn.Softmax's layer is its parent; softmaxes over another dim, on 3-D tensors or outside
    the model are not recorded; the patched functions are restored on exit."""

    class Attn(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.softmax = torch.nn.Softmax(dim=-1)

        def forward(self, s):
            a = self.softmax(s)  # recorded (nn.Softmax -> F.softmax)
            b = s.softmax(-1)  # Tensor.softmax: recorded
            c = F.softmax(s, dim=1)  # another dim: not recorded
            d = torch.softmax(s[0], -1)  # 3-D: not recorded
            return a + b + c + d

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = Attn()

        def forward(self, s):
            return self.attn(s)

    originals = (torch.softmax, F.softmax, torch.Tensor.softmax,
                 getattr(F, "scaled_dot_product_attention", None))
    net = Net()
    s = torch.randn(1, 2, 5, 5)
    with at.capture(net) as cap:
        net(s)
        torch.softmax(s, -1)  # no module running: not recorded
    assert [(c.layer, c.path) for c in cap.calls] == [("attn", "softmax")] * 2
    assert all(c.scores is not None and torch.equal(c.scores, s) for c in cap.calls)
    assert (torch.softmax, F.softmax, torch.Tensor.softmax,
            getattr(F, "scaled_dot_product_attention", None)) == originals
    assert "softmax" not in torch.Tensor.__dict__
    # The two calls of one layer are distinct entries: named layer#i for diagnose.
    assert [c.call for c in cap.calls] == [0, 1]
    assert [d["name"] for d in cap.layer_inputs()] == ["attn#0", "attn#1"]


def test_in_place_change_and_exception():
    """A recorded tensor changed in place afterwards is refused; an exception inside the block
    still removes the patches and hooks."""
    model = Decoder("softmax")
    ids, am = inputs()
    with at.capture(model) as cap:
        run(model, ids, am)
    cap.calls[0].scores[0, 0, 0, 0] = 0.0
    with pytest.raises(RuntimeError, match="layers.0.self_attn.*modified in place"):
        cap.layer_inputs()
    originals = (torch.softmax, F.softmax, torch.Tensor.softmax)
    with pytest.raises(KeyError):
        with at.capture(model):
            raise KeyError("inside")
    assert (torch.softmax, F.softmax, torch.Tensor.softmax) == originals
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_module_called_twice():
    """A module run twice per forward (shared weights) gives one entry per call."""
    model = Decoder("softmax")

    class Twice(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, ids, am):
            self.inner(ids, am)
            return self.inner(ids, am)

    twice = Twice(model)
    ids, am = inputs()
    with at.capture(twice) as cap:
        run(twice, ids, am)
    names = [f"inner.layers.{i}.self_attn" for i in range(LAYERS)]
    assert [c.layer for c in cap.calls] == names * 2
    assert [c.call for c in cap.calls] == [0] * LAYERS + [1] * LAYERS
    assert [d["name"] for d in cap.layer_inputs()] == \
        [f"{n}#0" for n in names] + [f"{n}#1" for n in names]


def test_layers_filter_and_unknown_layer():
    model = Decoder("softmax")
    ids, am = inputs()
    with at.capture(model, layers=["layers.1.self_attn"]) as cap:
        run(model, ids, am)
    assert [c.layer for c in cap.calls] == ["layers.1.self_attn"]
    with at.capture(model, layers="layers.0") as cap:  # a decoder layer selects its attention
        run(model, ids, am)
    assert [c.layer for c in cap.calls] == ["layers.0.self_attn"]
    with pytest.raises(ValueError) as e:
        at.capture(model, layers=["layers.7.self_attn"])
    msg = str(e.value)
    assert "layers.7.self_attn" in msg
    assert all(f"layers.{i}.self_attn" in msg for i in range(LAYERS)), msg


# ---------------------------------------------------------------------------------------------
# Path 3: the Hugging Face attention function


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["f32", "bf16"])
def test_attention_function_path(dtype):
    model = Decoder("interface", dtype)
    ids, am = inputs()
    ref = run(model, ids, am)
    # Our eager math is transformers': the same model through the reference gives the same bits.
    for m in model.modules():
        if isinstance(m, Attention):
            m.attention_interface = hf_eager_attention_forward
    assert torch.equal(run(model, ids, am), ref)
    for m in model.modules():
        if isinstance(m, Attention):
            m.attention_interface = at.attention_function("eager")
    got, handles = hooked_inputs(model)
    with at.capture(model) as cap:
        out = run(model, ids, am)
    for h in handles:
        h.remove()
    assert torch.equal(out, ref), "the capture changed the model's output"
    assert [(c.layer, c.path) for c in cap.calls] == \
        [(f"layers.{i}.self_attn", "attention_function") for i in range(LAYERS)]
    seen = masks_seen(am, 2, N)
    for c in cap.calls:
        attn = model.get_submodule(c.layer)
        x, cos, sin, mask = got[c.layer][0][:4]
        with torch.no_grad():
            q, k, same = same_ops_logits(attn, x, cos, sin, mask)
        # Post-rotary q and k as the model had them, key heads not repeated, no n x n copy.
        assert c.scores is None
        assert c.q.shape == (2, HEADS, N, HEAD_DIM) and c.k.shape == (2, KV_HEADS, N, HEAD_DIM)
        assert torch.equal(c.q, q) and torch.equal(c.k, k)
        assert c.scale == attn.scaling
        assert c.mask.data_ptr() == mask.data_ptr() and torch.equal(c.mask, mask)
        # Formed logits against the model's own float32 operations and the float64 recomputation.
        formed = cap.logits(c.index)
        assert formed.dtype == torch.float64
        if dtype == torch.float32:
            assert rel_err(formed, same, seen) < 1e-6
        assert rel_err(formed, f64_logits(attn, x, cos, sin), seen) < TOL[dtype]
        assert bool((formed[~seen.expand_as(formed)] <= torch.finfo(dtype).min / 2).all())
        # What the library gets: the recorded buffers themselves (bfloat16 as int16 bits).
        d = cap.layer_inputs()[c.index]
        assert d["name"] == c.layer and d["scale"] == attn.scaling
        assert d["q"].__array_interface__["data"][0] == c.q.data_ptr()
        assert d["k"].__array_interface__["data"][0] == c.k.data_ptr()
        if dtype == torch.bfloat16:
            assert d["dtype"] == "bfloat16" and d["q"].dtype == np.int16
        else:
            assert "dtype" not in d and d["q"].dtype == np.float32


def test_attention_function_bases(monkeypatch):
    """The three bases; without a capture the call is base's alone; softmaxes inside a recorded
    call are not recorded again."""
    g = torch.Generator().manual_seed(3)
    q = torch.randn(1, HEADS, 6, HEAD_DIM, generator=g)
    k = torch.randn(1, KV_HEADS, 9, HEAD_DIM, generator=g)
    v = torch.randn(1, KV_HEADS, 9, HEAD_DIM, generator=g)
    mask = torch.zeros(1, 1, 6, 12)
    mask[..., 3] = torch.finfo(torch.float32).min
    model = Decoder("interface")
    attn = model.layers[0].self_attn
    seen = []

    def custom(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kw):
        seen.append((module, scaling, dropout, kw))
        return hf_eager_attention_forward(module, query, key, value, attention_mask, scaling)

    f = at.attention_function(custom)
    ref = hf_eager_attention_forward(attn, q, k, v, mask, 0.4)
    out = f(attn, q, k, v, mask, scaling=0.4, position_ids=None)
    assert torch.equal(out[0], ref[0]) and seen[-1] == (attn, 0.4, 0.0, {"position_ids": None})
    with at.capture(model) as cap:
        out = f(attn, q, k, v, mask, scaling=0.4, is_causal=True)
        eager = at.attention_function("eager")(attn, q, k, v, mask)  # scaling None: 1/sqrt(d)
    assert torch.equal(out[0], ref[0])
    assert torch.equal(eager[0], hf_eager_attention_forward(attn, q, k, v, mask,
                                                            1 / math.sqrt(HEAD_DIM))[0])
    assert [(c.layer, c.path) for c in cap.calls] == [("layers.0.self_attn",
                                                        "attention_function")] * 2
    c0, c1 = cap.calls
    assert c0.scale == 0.4 and c1.scale == 1 / math.sqrt(HEAD_DIM)
    # is_causal=True for a callable: the sliced mask, and torch's causal rule as a flag (no
    # (q, k) triangle built); cap.logits applies both.
    tril = torch.ones(6, 9, dtype=torch.bool).tril()
    assert torch.equal(c0.mask, mask[..., :9]) and c0.causal and not c1.causal
    assert torch.equal(c1.mask, mask[..., :9])  # sliced as transformers does
    want = (torch.matmul(q.double(), repeat_kv(k, 4).double().transpose(2, 3)) * 0.4
            + mask[..., :9].double()).masked_fill(~tril, float("-inf"))
    assert torch.equal(cap.logits(c0.index), want)
    if not HAS_SDPA:
        with pytest.raises(ValueError, match="scaled_dot_product_attention"):
            at.attention_function("sdpa")
    with pytest.raises(ValueError):
        at.attention_function("flash")
    # "sdpa" over the injected reference: HF's is_causal rule (no mask, several queries).
    monkeypatch.setattr(F, "scaled_dot_product_attention", reference_sdpa, raising=False)
    fs = at.attention_function("sdpa")
    with at.capture(model) as cap:
        out = fs(attn, q, k, v, None, scaling=0.4)
    want = reference_sdpa(q, repeat_kv(k, 4), repeat_kv(v, 4), is_causal=True, scale=0.4)
    assert torch.equal(out[0], want.transpose(1, 2).contiguous()) and out[1] is None
    assert [c.path for c in cap.calls] == ["attention_function"]  # not also "sdpa"/"softmax"
    assert cap.calls[0].mask is None and cap.calls[0].causal
    assert cap.calls[0].k.shape[1] == KV_HEADS


# ---------------------------------------------------------------------------------------------
# Path 2: scaled_dot_product_attention


@pytest.mark.parametrize("sdpa", SDPA_KINDS, indirect=True)
@pytest.mark.parametrize("kind", ["causal", "bool", "float"])
def test_sdpa_path(sdpa, kind):
    model = Decoder("sdpa", sdpa_mask=kind)
    ids, am = inputs(b=1 if kind == "causal" else 2)
    b = ids.shape[0]
    ref = run(model, ids, None if kind == "causal" else am)
    got, handles = hooked_inputs(model)
    with at.capture(model) as cap:
        out = run(model, ids, None if kind == "causal" else am)
    for h in handles:
        h.remove()
    assert torch.equal(out, ref)
    # One record per call: the softmax inside the reference SDPA is not recorded again.
    assert [(c.layer, c.path) for c in cap.calls] == \
        [(f"layers.{i}.self_attn", "sdpa") for i in range(LAYERS)]
    seen = masks_seen(None if kind == "causal" else am, b, N)
    for c in cap.calls:
        attn = model.get_submodule(c.layer)
        x, cos, sin, mask = got[c.layer][0][:4]
        scale = {"causal": 1 / math.sqrt(HEAD_DIM), "bool": attn.scaling, "float": 0.3}[kind]
        assert c.scale == scale
        if kind == "causal":  # a flag: no (q, k) triangle is built
            assert c.mask is None and c.causal
        elif kind == "bool":
            assert torch.equal(c.mask, seen)
        else:
            assert torch.equal(c.mask, mask)
        # The key heads the model passed: grouped (enable_gqa) or repeated by the model.
        gqa = kind == "causal" and (sdpa is reference_sdpa or torch_at_least(2, 5))
        assert c.k.shape == (b, KV_HEADS if gqa else HEADS, N, HEAD_DIM)
        formed = cap.logits(c.index)
        assert rel_err(formed, f64_logits(attn, x, cos, sin, scale), seen) < 1e-6
        masked = formed[~seen.expand_as(formed)]
        assert bool((masked <= torch.finfo(torch.float32).min / 2).all())


# ---------------------------------------------------------------------------------------------
# Errors


def nan_at(model, layer, head, row, col):
    """A forward hook putting a NaN into layer's q_proj output at (batch 0, head, row, col):
    rotate_half mixes col with col +- d/2, so the first NaN of the post-rotary q is at col."""
    def hook(mod, args, out):
        out = out.clone()
        out[0, row, head * HEAD_DIM + col] = float("nan")
        return out
    return model.get_submodule(layer).q_proj.register_forward_hook(hook)


@pytest.mark.parametrize("mode", ["softmax", "interface"])
def test_nan_names_layer_head_row_column(mode):
    model = Decoder(mode)
    ids, am = inputs()
    h = nan_at(model, "layers.1.self_attn", head=3, row=5, col=2)
    with at.capture(model, layers=["layers.1.self_attn"]) as cap:
        run(model, ids, am)  # the capture itself does not raise inside the model
    h.remove()
    with pytest.raises(ValueError) as e:
        cap.layer_inputs()
    # softmax path: the logits of row 5 are NaN from key 0 on; q/k path: q[0, 3, 5, 2].
    want = ("NaN in the recorded logits (2, 8, 40, 40) at batch 0, head 3, row (query) 5, "
            "column (key) 0" if mode == "softmax" else
            "NaN in the recorded query (2, 8, 40, 8) at batch 0, head 3, row (query position) 5, "
            "column (feature) 2")
    assert str(e.value) == "layers.1.self_attn: " + want
    if HAS_LAYERS:
        with pytest.raises(ValueError, match=r"layers\.1\.self_attn.*head 3"):
            cap.diagnose()


def test_mask_of_wrong_shape():
    model = Decoder("interface")
    attn = model.layers[0].self_attn
    g = torch.Generator().manual_seed(4)
    q = torch.randn(1, HEADS, 6, HEAD_DIM, generator=g)
    k = torch.randn(1, KV_HEADS, 6, HEAD_DIM, generator=g)
    ignore_mask = at.attention_function(
        lambda m, q_, k_, v_, mask, scaling=None, dropout=0.0, **kw: (q_, None))
    with at.capture(model) as cap:
        ignore_mask(attn, q, k, k, torch.zeros(1, 1, 5, 6))  # 5 rows for 6 queries
    with pytest.raises(ValueError) as e:
        cap.layer_inputs()
    msg = str(e.value)
    assert "layers.0.self_attn" in msg and "(1, 1, 5, 6)" in msg and "(1, 8, 6, 6)" in msg


def test_unknown_layer_lists_attention_modules():
    model = Decoder("softmax")
    with pytest.raises(ValueError, match=r"unknown layer 'nope'.*layers\.0\.self_attn"):
        at.capture(model, layers=["nope"])


# ---------------------------------------------------------------------------------------------
# The library: cap.diagnose against the CLI on the dumped files


def load_dump_scores():
    spec = importlib.util.spec_from_file_location("dump_scores",
                                                  os.path.join(SRC, "scripts", "dump_scores.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def cli_csv(command, options):
    """The CLI's records for one of dump_scores' command lines plus options."""
    words = shlex.split(command)
    assert words[0] == "attnscale"
    p = subprocess.run([CLI] + words[1:] + ["--format", "csv", "-q"] + cli_args(options),
                       capture_output=True, text=True)
    assert p.returncode == 0, f"{command}: {p.stderr}"
    return [{k: v for k, v in r.items() if v != ""} for r in csv.DictReader(io.StringIO(p.stdout))]


def subset(columns, keep):
    return {k: np.asarray(v)[keep] for k, v in columns.items()}


def assert_layer_equals_cli(result, name, records):
    parts = {"row": [], "summary": [], "policy": []}
    for r in records:
        r = dict(r)
        parts[r.pop("record")].append(r)
    rows = result["rows"]
    assert_same_records(subset(rows, np.asarray(rows["layer"]) == name), parts["row"],
                        skip=("layer",))
    pols = result["policies"]
    if parts["policy"]:
        assert_same_records(subset(pols, np.asarray(pols["layer"]) == name), parts["policy"],
                            skip=("layer",))
    summ = [s for s in result["summary"] if s["layer"] == name]
    assert len(summ) == len(parts["summary"]) > 0
    for got, rec in zip(summ, parts["summary"]):
        assert_same_records({k: [v] for k, v in got.items()}, [rec], skip=("layer",))


CASES = [("softmax", torch.float32, "float"), ("softmax", torch.bfloat16, "float"),
         ("interface", torch.float32, "float"), ("interface", torch.bfloat16, "float"),
         ("sdpa", torch.float32, "causal"), ("sdpa", torch.float32, "bool")]


@needs_c
@pytest.mark.parametrize("mode,dtype,sdpa_mask", CASES,
                         ids=["softmax-f32", "softmax-bf16", "interface-f32", "interface-bf16",
                              "sdpa-causal-injected-reference-sdpa",
                              "sdpa-bool-injected-reference-sdpa"])
def test_diagnose_equals_cli_on_dumped_files(cli, tmp_path, monkeypatch, mode, dtype, sdpa_mask):
    if mode == "sdpa":
        if not HAS_SDPA:
            warnings.warn(f"torch {torch.__version__} has no scaled_dot_product_attention: the "
                          "SDPA path is tested through an injected reference implementation",
                          UserWarning)
        monkeypatch.setattr(F, "scaled_dot_product_attention", reference_sdpa, raising=False)
    model = Decoder(mode, dtype, sdpa_mask=sdpa_mask)
    ids, am = inputs()
    if sdpa_mask == "causal":
        am = None
    with at.capture(model) as cap:
        run(model, ids, am)
    ds = load_dump_scores()
    opts = dict(policy="all", target_len=131072, rows="1:39:24:log", beta=[1.0, 2.0])
    for batch in (0, 1):
        result = cap.diagnose(batch=batch, **opts)
        index = ds.dump_capture(cap, str(tmp_path / f"b{batch}"), batch=batch)
        assert [c["layer"] for c in index] == [f"layers.{i}.self_attn" for i in range(LAYERS)]
        for call, c in zip(cap.calls, index):
            assert_layer_equals_cli(result, c["layer"], cli_csv(c["command"], opts))
            # The files hold the recorded values (bfloat16 widened to float32 exactly).
            for key, t in (("q", call.q), ("k", call.k), ("logits", call.scores)):
                if t is not None:
                    f = np.load(c["files"][key])
                    assert f.dtype == (np.float32 if dtype == torch.bfloat16 else np.float32)
                    assert np.array_equal(f, t[batch].float().numpy())
        # Masked keys are excluded: each row's n is the number of keys it sees.
        seen = masks_seen(am, 2, N)[batch, 0].sum(-1)
        rows = result["rows"]
        assert np.array_equal(rows["n"], seen.numpy()[rows["row"]])
    # The whole batch at once: heads are batch-major (head = b * heads + h).
    whole = cap.diagnose(**opts)
    one = cap.diagnose(batch=1, **opts)
    keep = np.asarray(whole["rows"]["head"]) >= HEADS
    for key, col in one["rows"].items():
        w = np.asarray(whole["rows"][key])[keep]
        if key == "head":
            w = w - HEADS
        assert np.array_equal(w, np.asarray(col)) or np.allclose(w, col, rtol=0, atol=0,
                                                                 equal_nan=True), key
    tail = [s for s in whole["summary"] if s["head"] >= HEADS]
    assert len(tail) == len(one["summary"])
    for a, b in zip(tail, one["summary"]):
        assert {**a, "head": a["head"] - HEADS} == b


@needs_c
def test_left_padding_rows_that_see_nothing(cli):
    """Left padding: the pad positions' rows see no key: n = 0, no statistics, regime
    undetermined; the other rows' n counts the keys after the padding, and --rows leaving the
    pad rows out gives those rows' records unchanged."""
    model = Decoder("interface")
    ids, am = inputs(pad="left")
    with at.capture(model) as cap:
        run(model, ids, am)
    whole = cap.diagnose(batch=1)
    rows = whole["rows"]
    pad = np.asarray(rows["row"]) < PAD
    assert np.all(rows["n"][pad] == 0) and np.all(np.isnan(rows["w1"][pad]))
    assert set(rows["regime"][pad]) == {"undetermined"}
    assert np.array_equal(rows["n"][~pad], np.asarray(rows["row"])[~pad] + 1 - PAD)
    r = cap.diagnose(batch=1, rows=list(range(PAD, N)))
    for key in ("n", "beta_hat", "beta_hat_k10", "entropy", "w1"):
        assert np.array_equal(r["rows"][key], rows[key][~pad], equal_nan=True), key


@needs_c
def test_done_criterion(tmp_path):
    """issue 11's Done: one capture, one diagnose(policy="all", target_len=131072): every layer
    and head's regime shares, fitted law and recommended policy, and the figure."""
    model = Decoder("softmax")
    ids = torch.randint(0, VOCAB, (1, 64), generator=torch.Generator().manual_seed(5))
    t0 = time.perf_counter()
    with at.capture(model) as cap:
        run(model, ids)
    result = cap.diagnose(policy="all", target_len=131072)
    layers, ratio = at.plot_heads(result, str(tmp_path / "heads.png"))
    elapsed = time.perf_counter() - t0
    table = at.heads_table(result)
    assert [(t["layer"], t["head"]) for t in table] == \
        [(f"layers.{i}.self_attn", h) for i in range(LAYERS) for h in range(HEADS)]
    for t in table:
        assert t["rows"] == 64
        shares = [t[k] for k in ("subcritical", "critical", "supercritical", "undetermined")]
        assert abs(sum(shares) - 1) < 1e-12
        assert t["undetermined"] == pytest.approx(9 / 64)  # rows with n < 10: no beta_hat_k10
        assert t["best"] in ("log", "polylog", "power")
        assert isinstance(t["recommended_policy"], str) and t["recommended_factor"] > 0
    for part in ("rows", "policies"):
        assert len(result[part]["layer"]) == len(result[part]["head"]) > 0
    assert all("layer" in s and "head" in s for s in result["summary"])
    assert layers == [f"layers.{i}.self_attn" for i in range(LAYERS)]
    assert ratio.shape == (LAYERS, HEADS)
    want = np.array([[s["ratio_median"] for s in result["summary"][i * HEADS:(i + 1) * HEADS]]
                     for i in range(LAYERS)])
    assert np.array_equal(ratio, want)
    assert (tmp_path / "heads.png").stat().st_size > 0
    with open(tmp_path / "heads.csv") as f:
        assert len(list(csv.reader(f))) >= LAYERS * HEADS
    print(f"\ndone criterion: {len(table)} heads in {elapsed:.3f} s")
    for t in table:
        print(f"{t['layer']} head {t['head']}: sub {t['subcritical']:.2f} crit "
              f"{t['critical']:.2f} super {t['supercritical']:.2f}, best law {t['best']}, "
              f"recommended {t['recommended_policy']} x{t['recommended_factor']:.3g}")


def test_recorded_masks_stay_small_and_unsupported_bases_refuse():
    """An expand()ed mask is kept with its broadcast axes at length 1 (no dense copy);
    is_causal follows transformers' rule (never with a mask or a single query); softcap with
    a non-eager base and attention sinks with "sdpa" raise NotImplementedError."""
    model = torch.nn.Module()
    model.attn = torch.nn.Module()
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(2, 4, 6, 8, generator=g) for _ in range(3))
    base = torch.full((6, 6), torch.finfo(torch.float32).min).triu(1)
    mask = base[None, None].expand(2, 4, 6, 6)
    calls = []

    def custom(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kw):
        calls.append(kw)
        return query.transpose(1, 2), None

    f = at.attention_function(custom)
    with at.capture(model) as cap:
        f(model.attn, q, k, v, mask, scaling=0.5)
        f(model.attn, q, k, v, mask, scaling=0.5, is_causal=True)
    c0 = cap.calls[0]
    assert c0.mask.shape == (1, 1, 6, 6) and torch.equal(c0.mask[0, 0], base)
    assert not c0.causal and cap.calls[1].causal
    r = cap.diagnose()  # the mask already hides what is_causal hides: the same rows
    rows = r["rows"]
    first = np.asarray(rows["layer"]) == "attn#0"
    for key in ("n", "beta_hat", "entropy"):
        assert np.array_equal(rows[key][first], rows[key][~first], equal_nan=True), key
    assert list(rows["n"][first][:6]) == [1, 2, 3, 4, 5, 6]
    one = q[:, :, :1]
    assert at.sdpa_attention_forward is not None
    assert not at._hf_is_causal(model.attn, one, None, None)
    assert not at._hf_is_causal(model.attn, q, mask, True)
    assert at._hf_is_causal(model.attn, q, None, None)
    with at.capture(model):
        with pytest.raises(NotImplementedError, match="softcap"):
            f(model.attn, q, k, v, mask, scaling=0.5, softcap=30.0)
        if HAS_SDPA:
            with pytest.raises(NotImplementedError, match="s_aux"):
                at.attention_function("sdpa")(model.attn, q, k, v, None, s_aux=torch.zeros(4))
