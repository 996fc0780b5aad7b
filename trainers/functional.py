"""The models' mathematics as functions of a parameter dict, for one run or M stacked runs.

The decoder (modular tasks) reads logits at the answer position; the encoder (text, feature vectors) at
[CLS].  Every function takes weights either plain (one run: ``w (out, in)``, activations ``(B, …)``) or stacked
(M runs: ``w (M, out, in)``, activations ``(M, B, …)``), and computes the same thing; a stacked call is
one batched matmul per layer instead of M small ones, which is how a sweep trains many same-shaped runs
at once.  :mod:`grokscope.trainers.models` holds the parameters of one run and calls these; the batched
trainer calls them with stacked parameters.

The transformer does only the work the answer logits need: in its last block only the query positions
asked for attend and run the MLP, and only they are unembedded (other positions still give keys/values).  Its
first block takes q/k/v from tables over (position, vocabulary entry) when the batch outnumbers the vocabulary
(:func:`first_block_lookup`): the same numbers, computed ~B/V times less often.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

from grokscope.config.run import RunConfig

Params = Mapping[str, torch.Tensor]
PAD_ID = 0  # padding token of text inputs (grokscope.data.text's vocabulary convention)
SMALL_T = 16  # causal sequences up to this long use broadcast attention (≈3× faster than SDPA on CPU at T = 3)

ACTIVATIONS = {
    "gelu": lambda x: F.gelu(x),
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
}


def linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """``x @ wᵀ + b``; stacked: ``x (M, …, in)``, ``w (M, out, in)``, ``b (M, out)`` in one bmm."""
    if w.dim() == 2:
        return F.linear(x, w, b)
    M, shape = w.shape[0], x.shape
    y = torch.bmm(x.reshape(M, -1, shape[-1]), w.transpose(1, 2))  # (M, n, out)
    if b is not None:
        y = y + b[:, None]
    return y.reshape(*shape[:-1], w.shape[1])


def layer_norm(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """LayerNorm over the last dim (eps 1e-5) with gain ``w`` and bias ``b`` (stacked: ``(M, d)``)."""
    d = x.shape[-1]
    if w.dim() == 1:
        return F.layer_norm(x, (d,), w, b, eps=1e-5)
    view = (w.shape[0],) + (1,) * (x.dim() - 2) + (d,)
    return F.layer_norm(x, (d,), eps=1e-5) * w.view(view) + b.view(view)


def embedding(tokens: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Rows of ``w (vocab, d)`` for ``tokens (B, T)``; stacked ``w (M, vocab, d)`` with tokens ``(B, T)``
    shared by all runs or ``(M, B, T)`` per run → ``(M, B, T, d)``."""
    if w.dim() == 2:
        return F.embedding(tokens, w)
    if tokens.dim() == 2:
        return w[:, tokens]
    return w[torch.arange(w.shape[0], device=w.device).view(-1, 1, 1), tokens]


def rows(x: torch.Tensor, positions: Sequence[int]) -> torch.Tensor:
    """``x[…, positions, :]`` of ``x (…, T, d)``; a slice (no copy) for a single position."""
    if len(positions) == 1:
        return x[..., positions[0]:positions[0] + 1, :]
    return x[..., list(positions), :]


def attention(P: Params, prefix: str, x: torch.Tensor | None, n_heads: int, q_pos: Sequence[int] | None,
              causal: bool = True, key_mask: torch.Tensor | None = None,
              qkv: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Multi-head self-attention ``(…, T, d) → (…, Q, d)``; queries from ``q_pos`` (None: all).

    ``causal``: a query sees only positions up to its own (decoders); ``key_mask (…, T)`` bool: keys that may
    be attended (False: padding), for encoders on padded text.  ``qkv``: the projections already computed,
    ``q (…, Q, d)``, ``k``, ``v (…, T, d)`` (:func:`first_block_lookup`); ``x`` is then unused.
    """
    if qkv is not None:
        q, k, v = qkv
        *lead, T, d = k.shape
    else:
        *lead, T, d = x.shape
        w, b = P[prefix + "qkv.weight"], P[prefix + "qkv.bias"]  # rows: q, k, v
        if q_pos is None:
            q, k, v = linear(x, w, b).split(d, dim=-1)  # 3 × (…, T, d)
        else:
            q = linear(rows(x, q_pos), w[..., :d, :], b[..., :d])  # (…, Q, d)
            k, v = linear(x, w[..., d:, :], b[..., d:]).split(d, dim=-1)  # 2 × (…, T, d)
    mask = None  # (Q, T) or (…, 1, 1, T) broadcast over heads and queries
    if q_pos is None:
        if causal and T <= SMALL_T:
            mask = torch.ones(T, T, dtype=torch.bool, device=k.device).tril()
    elif causal and min(q_pos) < T - 1:  # some query must not see later positions
        mask = torch.arange(T, device=k.device) <= torch.tensor(q_pos, device=k.device)[:, None]  # (Q, T)
    Q, hd = q.shape[-2], d // n_heads
    q, k, v = (t.reshape(*t.shape[:-1], n_heads, hd) for t in (q, k, v))  # (…, ·, h, hd)
    if T <= SMALL_T and causal:  # (encoders: SDPA measured 1.4× faster at T = 10)
        scores = (q.unsqueeze(-3) * k.unsqueeze(-4)).sum(-1) / math.sqrt(hd)  # (…, Q, T, h)
        if mask is not None:
            scores = scores.masked_fill(~mask[:, :, None], float("-inf"))
        if key_mask is not None:
            scores = scores.masked_fill(~key_mask[..., None, :, None], float("-inf"))
        y = (scores.softmax(dim=-2).unsqueeze(-1) * v.unsqueeze(-4)).sum(-3)  # (…, Q, h, hd)
    else:
        flat = lambda t: t.reshape(-1, *t.shape[-3:]).transpose(1, 2)  # noqa: E731  (n, h, ·, hd)
        if key_mask is not None:  # (n, 1, 1, T), and the causal mask with it
            keys = key_mask.reshape(-1, 1, 1, T)
            mask = keys if mask is None else keys & mask
        y = F.scaled_dot_product_attention(flat(q), flat(k), flat(v), attn_mask=mask,
                                           is_causal=causal and q_pos is None and key_mask is None).transpose(1, 2)
    y = y.reshape(*lead, Q, d)
    return linear(y, P[prefix + "out.weight"], P[prefix + "out.bias"])


def block(P: Params, i: int, cfg: RunConfig, x: torch.Tensor, q_pos: Sequence[int] | None,
          hidden: list | None = None, causal: bool = True, key_mask: torch.Tensor | None = None,
          qkv: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Transformer block ``i`` with LayerNorm after (GPT-1), before (GPT-2) or nowhere (Nanda).
    ``(…, T, d) → (…, Q, d)``; appends the MLP's hidden activations to ``hidden`` if given.  With ``qkv``
    (the attention's projections, :func:`first_block_lookup`) ``x`` is the residual at the query rows only."""
    pre = f"blocks.{i}."
    resid = x if q_pos is None or qkv is not None else rows(x, q_pos)

    def mlp(h: torch.Tensor) -> torch.Tensor:
        a = ACTIVATIONS[cfg.act](linear(h, P[pre + "mlp.fc_in.weight"], P[pre + "mlp.fc_in.bias"]))
        if hidden is not None:
            hidden.append(a)
        return linear(a, P[pre + "mlp.fc_out.weight"], P[pre + "mlp.fc_out.bias"])

    def ln(h: torch.Tensor, n: int) -> torch.Tensor:
        return layer_norm(h, P[pre + f"ln{n}.weight"], P[pre + f"ln{n}.bias"])

    if cfg.norm == "pre":
        a = None if qkv is not None else ln(x, 1)
        h = resid + attention(P, pre + "attn.", a, cfg.n_heads, q_pos, causal, key_mask, qkv)
        return h + mlp(ln(h, 2))
    h = resid + attention(P, pre + "attn.", x, cfg.n_heads, q_pos, causal, key_mask, qkv)
    if cfg.norm == "post":
        h = ln(h, 1)
        return ln(h + mlp(h), 2)
    return h + mlp(h)


def lookup(table: torch.Tensor, tokens: torch.Tensor, positions: Sequence[int]) -> torch.Tensor:
    """Rows ``table[…, t, token]`` for the ``tokens (…, B, Q)`` at ``positions`` (one ``t`` per column):
    ``table (T, V, n)`` or stacked ``(M, T, V, n)`` → ``(…, B, Q, n)``; an embedding lookup, so the backward
    pass scatter-adds into the table."""
    T, V, n = table.shape[-3:]
    index = tokens + torch.tensor(positions, device=tokens.device) * V  # (…, B, Q) rows of (T·V, n)
    if table.dim() == 3:
        return F.embedding(index, table.reshape(T * V, n))
    M = table.shape[0]  # stacked: member m's rows follow member m − 1's
    index = index + torch.arange(M, device=tokens.device).view(M, 1, 1) * (T * V)  # (M, B, Q)
    return F.embedding(index, table.reshape(M * T * V, n))


def first_block_lookup(P: Params, cfg: RunConfig, tokens: torch.Tensor, q_pos: Sequence[int]
                       ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """The first block's inputs for ``tokens (…, B, T)`` looked up instead of computed per example.

    Its input at position ``t`` is ``embed[token] + pos[t]``: a function of (position, token) alone, and so is
    its attention projection (LayerNorm, where it comes first, is per row too).  Both are computed once per
    (position, vocabulary entry), ``(…, T, V, ·)``, and gathered: ``B·T·3d²`` multiply-adds become ``T·V·3d²``,
    the saving when the vocabulary (modular tasks: ~p) is smaller than the batch.  Returns the residual at
    ``q_pos`` ``(…, B, Q, d)`` and ``(q (…, B, Q, d), k, v (…, B, T, d))`` for :func:`block`.
    """
    embed, T = P["embed.weight"], tokens.shape[-1]
    d = embed.shape[-1]
    pos = P["pos_embed.weight"][..., :T, :]  # (…, T, d)
    x = embed[..., None, :, :] + pos[..., :, None, :]  # (…, T, V, d)
    a = layer_norm(x, P["blocks.0.ln1.weight"], P["blocks.0.ln1.bias"]) if cfg.norm == "pre" else x
    table = linear(a, P["blocks.0.attn.qkv.weight"], P["blocks.0.attn.qkv.bias"])  # (…, T, V, 3d)
    q_tokens = tokens[..., list(q_pos)]  # (…, B, Q)
    q = lookup(table[..., :d], q_tokens, q_pos)  # (…, B, Q, d)
    k, v = (lookup(table[..., j * d:(j + 1) * d], tokens, range(T)) for j in (1, 2))  # 2 × (…, B, T, d)
    return lookup(x, q_tokens, q_pos), (q, k, v)


def transformer_logits(P: Params, cfg: RunConfig, tokens: torch.Tensor, positions: Sequence[int],
                       hidden: list | None = None) -> torch.Tensor:
    """Logits ``(…, B, Q, vocab)`` at ``positions`` of ``tokens (…, B, T)``; ``hidden`` collects the last
    block's MLP activations at those positions."""
    T = tokens.shape[-1]
    positions = [p % T for p in positions]
    last = cfg.n_layers - 1
    if P["embed.weight"].shape[-2] < tokens.shape[-2]:  # fewer vocabulary rows than examples
        first_q = positions if last == 0 else list(range(T))
        resid, qkv = first_block_lookup(P, cfg, tokens, first_q)
        x = block(P, 0, cfg, resid, first_q, hidden if last == 0 else None, qkv=qkv)
    else:
        pos = P["pos_embed.weight"][..., :T, :]  # (…, T, d)
        x = embedding(tokens, P["embed.weight"]) + (pos if pos.dim() == 2 else pos[:, None])  # (…, B, T, d)
        x = block(P, 0, cfg, x, positions if last == 0 else None, hidden if last == 0 else None)
    for i in range(1, last):
        x = block(P, i, cfg, x, None)
    if last > 0:
        x = block(P, last, cfg, x, positions, hidden)  # (…, B, Q, d)
    if cfg.norm == "pre":
        x = layer_norm(x, P["ln_final.weight"], P["ln_final.bias"])
    return linear(x, P["embed.weight"] if cfg.tied else P["unembed.weight"])  # (…, B, Q, vocab)


def encoder_logits(P: Params, cfg: RunConfig, inputs: torch.Tensor, hidden: list | None = None) -> torch.Tensor:
    """Class logits ``(…, B, n_classes)`` of the encoder, read at position 0 ([CLS]).

    ``inputs`` are token ids ``(…, B, T)`` (text: [CLS] first, padding id 0 masked out of the keys) or feature
    vectors ``(…, B, D)``, split into ``cfg.n_tokens`` tokens of ``D / n_tokens`` features, projected to
    ``d_model`` and preceded by a learned [CLS] vector.  Attention is bidirectional; BERT's embedding LayerNorm
    is applied with post-LN blocks.  ``hidden`` collects the last block's MLP activations at [CLS].
    """
    key_mask = None
    if inputs.dtype in (torch.int64, torch.int32):
        key_mask = inputs != PAD_ID  # (…, B, T)
        x = embedding(inputs, P["embed.weight"])  # (…, B, T, d)
    else:
        feats = inputs.reshape(*inputs.shape[:-1], cfg.n_tokens, -1)  # (…, B, n_tokens, D / n_tokens)
        x = linear(feats, P["input_proj.weight"], P["input_proj.bias"])  # (…, B, n_tokens, d)
        cls = P["cls"]  # (d,) or stacked (M, d)
        cls = cls.view(*cls.shape[:-1], *([1] * (x.dim() - cls.dim() - 1)), 1, cls.shape[-1])
        x = torch.cat([cls.expand(*x.shape[:-2], 1, x.shape[-1]), x], dim=-2)  # (…, B, T, d)
    T = x.shape[-2]
    pos = P["pos_embed.weight"][..., :T, :]  # (…, T, d)
    x = x + (pos if pos.dim() == 2 else pos[:, None])
    if cfg.norm == "post":
        x = layer_norm(x, P["ln_embed.weight"], P["ln_embed.bias"])
    for i in range(cfg.n_layers - 1):
        x = block(P, i, cfg, x, None, causal=False, key_mask=key_mask)
    x = block(P, cfg.n_layers - 1, cfg, x, [0], hidden, causal=False, key_mask=key_mask)[..., 0, :]  # (…, B, d)
    if cfg.norm == "pre":
        x = layer_norm(x, P["ln_final.weight"], P["ln_final.bias"])
    return linear(x, P["classifier.weight"], P["classifier.bias"])


def mlp_logits(P: Params, cfg: RunConfig, inputs: torch.Tensor, hidden: list | None = None) -> torch.Tensor:
    """Logits ``(…, B, n_out)`` of the MLP on one-hot operand pairs ``(…, B, 2)`` (modular) or feature
    vectors ``(…, B, D)``; ``hidden`` collects the first layer's activations."""
    w0 = P["layers.0.weight"]
    x = F.one_hot(inputs, cfg.p).flatten(-2).to(w0.dtype) if cfg.task == "modular" else inputs  # (…, B, D)
    for i in range(cfg.n_layers + 1):
        x = linear(x, P[f"layers.{i}.weight"], P[f"layers.{i}.bias"])
        if i < cfg.n_layers:
            x = ACTIVATIONS[cfg.act](x)
            if i == 0 and hidden is not None:
                hidden.append(x)
    return x


def answer_logits(P: Params, cfg: RunConfig, inputs: torch.Tensor, hidden: list | None = None) -> torch.Tensor:
    """The logits training needs, ``(…, B, n_out)``: at the answer (last) position of a modular decoder, at
    [CLS] of an encoder, or the MLP's output."""
    if cfg.model == "mlp":
        return mlp_logits(P, cfg, inputs, hidden)
    if cfg.task != "modular":
        return encoder_logits(P, cfg, inputs, hidden)
    return transformer_logits(P, cfg, inputs, (-1,), hidden)[..., 0, :]
