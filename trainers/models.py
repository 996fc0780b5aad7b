"""The models: a decoder-only transformer and an MLP on one-hot operand pairs.

Both return answer logits ``(B, n_out)`` from ``forward``, the only thing training needs.  The transformer does
only the work those logits need: in its last block only the answer position queries attention and runs the
MLP, and only that position is unembedded (the other positions still provide keys and values).
``param_dims`` names every parameter's dimensions for the run store.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from grokscope.config import RunConfig

_ACTS = {
    "gelu": lambda x: F.gelu(x),
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
}


def _rows(x: torch.Tensor, positions: list[int]) -> torch.Tensor:
    """``x[:, positions]`` for ``x (B, T, d)``; a plain slice (no copy) for the usual single position."""
    if len(positions) == 1:
        return x[:, positions[0]:positions[0] + 1]
    return x[:, positions]


SMALL_T = 16  # sequences up to this long use broadcast attention instead of SDPA


class Attention(nn.Module):
    """Causal multi-head self-attention; queries may come from a subset of positions."""

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)  # rows: q, k, v
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor, q_pos: list[int] | None) -> torch.Tensor:
        B, T, d = x.shape
        h = self.n_heads
        mask = None
        if q_pos is None:  # every position queries
            q, k, v = self.qkv(x).split(d, dim=-1)  # 3 × (B, T, d)
        else:
            w, b = self.qkv.weight, self.qkv.bias
            q = F.linear(_rows(x, q_pos), w[:d], b[:d])  # (B, Q, d)
            k, v = F.linear(x, w[d:], b[d:]).split(d, dim=-1)  # 2 × (B, T, d)
            if min(q_pos) < T - 1:  # some query must not see later positions
                mask = torch.arange(T, device=x.device)[None, :] <= torch.tensor(q_pos, device=x.device)[:, None]
        Q = q.shape[1]
        q, k, v = q.view(B, Q, h, d // h), k.view(B, T, h, d // h), v.view(B, T, h, d // h)  # (B, ·, h, hd)
        if T <= SMALL_T:  # broadcast products beat batched tiny matmuls (≈3× on CPU for T = 3)
            scores = (q[:, :, None] * k[:, None]).sum(-1) / math.sqrt(d // h)  # (B, Q, T, h)
            if q_pos is None:
                mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
            if mask is not None:
                scores = scores.masked_fill(~mask[None, :, :, None], float("-inf"))
            y = (scores.softmax(dim=2)[..., None] * v[:, None]).sum(2)  # (B, Q, h, hd)
        else:
            y = F.scaled_dot_product_attention(
                q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask,
                is_causal=q_pos is None).transpose(1, 2)  # (B, Q, h, hd)
        y = y.reshape(B, Q, d)
        return self.out(y)


class MLP(nn.Module):
    def __init__(self, d_model: int, d_mlp: int, act: str) -> None:
        super().__init__()
        self.fc_in = nn.Linear(d_model, d_mlp)
        self.fc_out = nn.Linear(d_mlp, d_model)
        self.act = _ACTS[act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc_out(self.act(self.fc_in(x)))


class Block(nn.Module):
    """One transformer block with LayerNorm after (GPT-1), before (GPT-2) or nowhere (Nanda)."""

    def __init__(self, cfg: RunConfig) -> None:
        super().__init__()
        self.norm = cfg.norm
        self.attn = Attention(cfg.d_model, cfg.n_heads)
        self.mlp = MLP(cfg.d_model, cfg.d_mlp, cfg.act)
        if cfg.norm != "none":
            self.ln1 = nn.LayerNorm(cfg.d_model, eps=1e-5)
            self.ln2 = nn.LayerNorm(cfg.d_model, eps=1e-5)

    def forward(self, x: torch.Tensor, q_pos: list[int] | None = None) -> torch.Tensor:
        # x: (B, T, d) -> (B, Q, d), Q = T when q_pos is None
        resid = x if q_pos is None else _rows(x, q_pos)
        if self.norm == "pre":
            x = resid + self.attn(self.ln1(x), q_pos)
            return x + self.mlp(self.ln2(x))
        x = resid + self.attn(x, q_pos)
        if self.norm == "post":
            x = self.ln1(x)
            return self.ln2(x + self.mlp(x))
        return x + self.mlp(x)


class Transformer(nn.Module):
    """Decoder-only transformer with learned positions; tied or untied unembedding."""

    def __init__(self, cfg: RunConfig, vocab_size: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(vocab_size, cfg.d_model)
        self.pos_embed = nn.Embedding(cfg.n_ctx, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        if cfg.norm == "pre":
            self.ln_final = nn.LayerNorm(cfg.d_model, eps=1e-5)
        if not cfg.tied:
            self.unembed = nn.Linear(cfg.d_model, vocab_size, bias=False)

    def logits_at(self, tokens: torch.Tensor, positions: Sequence[int]) -> torch.Tensor:
        """Logits ``(B, len(positions), vocab)`` at the given positions of ``tokens (B, T)``."""
        T = tokens.shape[1]
        x = self.embed(tokens) + self.pos_embed.weight[:T]  # (B, T, d)
        for block in self.blocks[:-1]:
            x = block(x)
        x = self.blocks[-1](x, [p % T for p in positions])  # (B, Q, d)
        if self.cfg.norm == "pre":
            x = self.ln_final(x)
        w_u = self.embed.weight if self.cfg.tied else self.unembed.weight  # (vocab, d)
        return x @ w_u.T  # (B, Q, vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Answer logits ``(B, vocab)`` at the last position of ``tokens (B, T)``."""
        return self.logits_at(tokens, (-1,))[:, 0]

    def param_dims(self) -> dict[str, tuple[str, ...]]:
        dims = {"embed.weight": ("vocab", "d_model"), "pos_embed.weight": ("n_ctx", "d_model"),
                "ln_final.weight": ("d_model",), "ln_final.bias": ("d_model",),
                "unembed.weight": ("vocab", "d_model")}
        for i in range(len(self.blocks)):
            b = f"blocks.{i}."
            dims.update({
                b + "attn.qkv.weight": ("qkv", "d_model"), b + "attn.qkv.bias": ("qkv",),
                b + "attn.out.weight": ("d_model", "d_attn"), b + "attn.out.bias": ("d_model",),
                b + "mlp.fc_in.weight": ("d_mlp", "d_model"), b + "mlp.fc_in.bias": ("d_mlp",),
                b + "mlp.fc_out.weight": ("d_model", "d_mlp"), b + "mlp.fc_out.bias": ("d_model",),
                b + "ln1.weight": ("d_model",), b + "ln1.bias": ("d_model",),
                b + "ln2.weight": ("d_model",), b + "ln2.bias": ("d_model",),
            })
        return {name: dims[name] for name, _ in self.named_parameters()}

    def param_roles(self) -> dict[str, str]:
        """Which stored parameter plays which part (read by the Fourier analysis)."""
        return {"embedding": "embed.weight", "embedding_orientation": "vocab_first",
                "unembedding": "embed.weight" if self.cfg.tied else "unembed.weight"}


class OperandMLP(nn.Module):
    """MLP on the concatenated one-hot operands ``[onehot(a), onehot(b)]`` → logits over the p answers."""

    def __init__(self, cfg: RunConfig) -> None:
        super().__init__()
        self.p = cfg.p
        widths = [2 * cfg.p] + [cfg.d_model] * cfg.n_layers + [cfg.p]
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in zip(widths[:-1], widths[1:]))
        self.act = _ACTS[cfg.act]

    def forward(self, operands: torch.Tensor) -> torch.Tensor:
        """Answer logits ``(B, p)`` for ``operands (B, 2)``."""
        x = F.one_hot(operands, self.p).flatten(1).to(self.layers[0].weight.dtype)  # (B, 2p)
        for layer in self.layers[:-1]:
            x = self.act(layer(x))
        return self.layers[-1](x)

    def param_dims(self) -> dict[str, tuple[str, ...]]:
        n = len(self.layers)
        names = ["operands"] + [f"hidden{i}" for i in range(1, n)] + ["answer"]
        dims = {}
        for i in range(n):
            dims[f"layers.{i}.weight"] = (names[i + 1], names[i])
            dims[f"layers.{i}.bias"] = (names[i + 1],)
        return dims

    def param_roles(self) -> dict[str, str]:
        return {"embedding": "layers.0.weight", "embedding_orientation": "vocab_last",
                "unembedding": f"layers.{len(self.layers) - 1}.weight"}


def build_model(cfg: RunConfig, vocab_size: int) -> nn.Module:
    """The model ``cfg`` describes, initialised as seed 002 does and then scaled by ``alpha`` (eq. 2).

    Weights ~ N(0, init_std²), biases 0, LayerNorm gains 1; then every parameter is multiplied by α.
    The caller seeds torch first.
    """
    model: nn.Module = Transformer(cfg, vocab_size) if cfg.model == "transformer" else OperandMLP(cfg)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                module.weight.normal_(0.0, cfg.init_std)
                if getattr(module, "bias", None) is not None:
                    module.bias.zero_()
            elif isinstance(module, nn.LayerNorm):
                module.weight.fill_(1.0)
                module.bias.zero_()
        if cfg.alpha != 1.0:
            for param in model.parameters():
                param.mul_(cfg.alpha)
    return model


def count_params(model: nn.Module) -> int:
    return sum(math.prod(p.shape) for p in model.parameters())
