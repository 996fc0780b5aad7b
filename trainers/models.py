"""The models of one run: a decoder-only transformer and an MLP on one-hot operand pairs.

The modules only hold and name the parameters (and initialise them); the computation is
:mod:`grokscope.trainers.functional`, shared with the batched trainer.  Both models return answer logits
``(B, n_out)`` from ``forward``; ``param_dims`` names every parameter's dimensions for the run store and
``param_roles`` tells the analysis which parameter is the embedding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from grokscope.config import RunConfig
from grokscope.trainers.functional import answer_logits, transformer_logits


class _Attention(nn.Module):
    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.qkv = nn.Linear(d_model, 3 * d_model)  # rows: q, k, v
        self.out = nn.Linear(d_model, d_model)


class _MLP(nn.Module):
    def __init__(self, d_model: int, d_mlp: int) -> None:
        super().__init__()
        self.fc_in = nn.Linear(d_model, d_mlp)
        self.fc_out = nn.Linear(d_mlp, d_model)


class _Block(nn.Module):
    def __init__(self, cfg: RunConfig) -> None:
        super().__init__()
        self.attn = _Attention(cfg.d_model)
        self.mlp = _MLP(cfg.d_model, cfg.d_mlp)
        if cfg.norm != "none":
            self.ln1 = nn.LayerNorm(cfg.d_model, eps=1e-5)
            self.ln2 = nn.LayerNorm(cfg.d_model, eps=1e-5)


class Transformer(nn.Module):
    """Decoder-only transformer with learned positions; tied or untied unembedding."""

    def __init__(self, cfg: RunConfig, vocab_size: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(vocab_size, cfg.d_model)
        self.pos_embed = nn.Embedding(cfg.n_ctx, cfg.d_model)
        self.blocks = nn.ModuleList(_Block(cfg) for _ in range(cfg.n_layers))
        if cfg.norm == "pre":
            self.ln_final = nn.LayerNorm(cfg.d_model, eps=1e-5)
        if not cfg.tied:
            self.unembed = nn.Linear(cfg.d_model, vocab_size, bias=False)

    def logits_at(self, tokens: torch.Tensor, positions: Sequence[int]) -> torch.Tensor:
        """Logits ``(B, len(positions), vocab)`` at the given positions of ``tokens (B, T)``."""
        return transformer_logits(dict(self.named_parameters()), self.cfg, tokens, positions)

    def forward(self, tokens: torch.Tensor, hidden: list | None = None) -> torch.Tensor:
        """Answer logits ``(B, vocab)`` at the last position of ``tokens (B, T)``."""
        return answer_logits(dict(self.named_parameters()), self.cfg, tokens, hidden)

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
        self.cfg = cfg
        widths = [2 * cfg.p] + [cfg.d_model] * cfg.n_layers + [cfg.p]
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in zip(widths[:-1], widths[1:]))

    def forward(self, operands: torch.Tensor, hidden: list | None = None) -> torch.Tensor:
        """Answer logits ``(B, p)`` for ``operands (B, 2)``."""
        return answer_logits(dict(self.named_parameters()), self.cfg, operands, hidden)

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
