#!/usr/bin/python3
"""Dump attention queries, keys or logits from a PyTorch model to .npy for `attnscale diagnose`.

Library use, on your own model: hook the modules that produce the queries and keys, run the
model once, and save one head:

    import dump_scores
    cap = dump_scores.Capture(model.layers[3].self_attn.q_proj,
                              model.layers[3].self_attn.k_proj)
    model(input_ids)
    cap.save("out/", heads=32, kv_heads=8, head=0, causal=True)   # q.npy, k.npy, logits.npy
    cap.close()

then:  attnscale diagnose --q out/q.npy --k out/k.npy --causal --policy all
   or: attnscale diagnose --scores out/logits.npy --causal

Rotary embeddings are applied inside most attention modules after q_proj/k_proj; to diagnose
the logits the model really uses, hook the tensors after rotation (for example by wrapping the
model's apply_rotary_pos_emb) or pass already-rotated q and k to save_qk().

Command-line use builds a small randomly initialised attention layer (no download needed) and
dumps one head of it:

    /usr/bin/python3 scripts/dump_scores.py --out DIR [--n 256] [--d-model 64] [--heads 4]
                                            [--head 0] [--seed 0]

It writes DIR/q.npy (n, d_head), DIR/k.npy (n, d_head), DIR/logits.npy (n, n; q.k/sqrt(d_head),
-inf above the diagonal) and DIR/weights.npy (n, n; the causal softmax computed by PyTorch).
"""
import argparse
import os
import sys

import numpy as np
import torch


def save_qk(out_dir, q, k, causal=True):
    """Save q, k: (n, d_head) tensors as q.npy, k.npy and their logits as logits.npy."""
    os.makedirs(out_dir, exist_ok=True)
    q = q.detach().to(torch.float64).cpu()
    k = k.detach().to(torch.float64).cpu()
    if q.ndim != 2 or k.ndim != 2 or q.shape[1] != k.shape[1]:
        raise ValueError(f"q and k must be (n, d) with the same d, got {tuple(q.shape)}, "
                         f"{tuple(k.shape)}")
    logits = q @ k.T / q.shape[1] ** 0.5
    if causal:
        mask = torch.ones_like(logits, dtype=torch.bool).triu(1)
        logits = logits.masked_fill(mask, float("-inf"))
    np.save(os.path.join(out_dir, "q.npy"), q.numpy())
    np.save(os.path.join(out_dir, "k.npy"), k.numpy())
    np.save(os.path.join(out_dir, "logits.npy"), logits.to(torch.float32).numpy())
    return logits


class Capture:
    """Forward hooks on the query and key projections of one attention layer."""

    def __init__(self, q_module, k_module):
        self.q = self.k = None
        self.handles = [q_module.register_forward_hook(self._hook("q")),
                        k_module.register_forward_hook(self._hook("k"))]

    def _hook(self, name):
        def hook(module, inputs, output):
            setattr(self, name, output.detach())
        return hook

    def save(self, out_dir, heads, head=0, batch=0, causal=True, kv_heads=None):
        """Split the captured (batch, n, heads * d_head) query and (batch, n, kv_heads * d_head)
        key projections and save query head `head` with the key head it attends with
        (grouped-query attention: kv_heads divides heads; default kv_heads = heads)."""
        if self.q is None or self.k is None:
            raise RuntimeError("run the model once after creating the Capture")
        kv_heads = heads if kv_heads is None else kv_heads
        if heads % kv_heads or not 0 <= head < heads:
            raise ValueError(f"need kv_heads dividing heads and 0 <= head < heads, got "
                             f"heads={heads}, kv_heads={kv_heads}, head={head}")
        q = self.q[batch].reshape(self.q.shape[1], heads, -1)[:, head]
        k = self.k[batch].reshape(self.k.shape[1], kv_heads, -1)[:, head // (heads // kv_heads)]
        return save_qk(out_dir, q, k, causal)

    def close(self):
        for h in self.handles:
            h.remove()


class TinyAttention(torch.nn.Module):
    """One multi-head self-attention layer with separate q/k/v projections."""

    def __init__(self, d_model, heads):
        super().__init__()
        self.heads = heads
        self.q_proj = torch.nn.Linear(d_model, d_model, bias=False)
        self.k_proj = torch.nn.Linear(d_model, d_model, bias=False)
        self.v_proj = torch.nn.Linear(d_model, d_model, bias=False)

    def forward(self, x):
        b, n, dm = x.shape
        split = lambda t: t.reshape(b, n, self.heads, dm // self.heads).transpose(1, 2)
        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        logits = q @ k.transpose(-1, -2) / (dm // self.heads) ** 0.5
        mask = torch.ones(n, n, dtype=torch.bool).triu(1)
        weights = torch.softmax(logits.masked_fill(mask, float("-inf")), dim=-1)
        self.last_weights = weights.detach()
        return (weights @ v).transpose(1, 2).reshape(b, n, dm)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--n", type=int, default=256, help="sequence length (default 256)")
    ap.add_argument("--d-model", type=int, default=64, help="model width (default 64)")
    ap.add_argument("--heads", type=int, default=4, help="attention heads (default 4)")
    ap.add_argument("--head", type=int, default=0, help="head to dump (default 0)")
    ap.add_argument("--seed", type=int, default=0, help="torch seed (default 0)")
    a = ap.parse_args(argv)
    if a.n < 1 or a.heads < 1 or a.d_model % a.heads or not 0 <= a.head < a.heads:
        ap.error("need n >= 1, heads dividing d-model and 0 <= head < heads")
    torch.manual_seed(a.seed)
    layer = TinyAttention(a.d_model, a.heads).double()
    cap = Capture(layer.q_proj, layer.k_proj)
    x = torch.randn(1, a.n, a.d_model, dtype=torch.float64)
    with torch.no_grad():
        layer(x)
    cap.save(a.out, a.heads, a.head)
    cap.close()
    np.save(os.path.join(a.out, "weights.npy"), layer.last_weights[0, a.head].numpy())
    print(f"wrote {a.out}/q.npy, k.npy, logits.npy, weights.npy (head {a.head} of {a.heads})\n"
          f"next: attnscale diagnose --q {a.out}/q.npy --k {a.out}/k.npy --causal")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
