"""The models of one run: a decoder-only transformer (modular tasks), an encoder classifier (text and
feature vectors) and an MLP (one-hot operand pairs or feature vectors).

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

from grokscope.config.run import RunConfig
from grokscope.trainers.functional import answer_logits, transformer_logits

_BLOCK_DIMS = {
    "attn.qkv.weight": ("qkv", "d_model"), "attn.qkv.bias": ("qkv",),
    "attn.out.weight": ("d_model", "d_attn"), "attn.out.bias": ("d_model",),
    "mlp.fc_in.weight": ("d_mlp", "d_model"), "mlp.fc_in.bias": ("d_mlp",),
    "mlp.fc_out.weight": ("d_model", "d_mlp"), "mlp.fc_out.bias": ("d_model",),
    "ln1.weight": ("d_model",), "ln1.bias": ("d_model",), "ln2.weight": ("d_model",), "ln2.bias": ("d_model",),
}


def _block_dims(n_layers: int) -> dict[str, tuple[str, ...]]:
    return {f"blocks.{i}.{name}": dims for i in range(n_layers) for name, dims in _BLOCK_DIMS.items()}


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
                "unembed.weight": ("vocab", "d_model"), **_block_dims(len(self.blocks))}
        return {name: dims[name] for name, _ in self.named_parameters()}

    def param_roles(self) -> dict[str, str]:
        """Which stored parameter plays which part (read by the Fourier analysis)."""
        return {"embedding": "embed.weight", "embedding_orientation": "vocab_first",
                "unembedding": "embed.weight" if self.cfg.tied else "unembed.weight"}


class Encoder(nn.Module):
    """Bidirectional transformer classifier read at [CLS]: token ids (text) or feature vectors split into
    ``n_tokens`` tokens (seed 001, digits).  ``n_inputs`` is the vocabulary size or the feature width."""

    def __init__(self, cfg: RunConfig, n_inputs: int, n_classes: int) -> None:
        super().__init__()
        self.cfg = cfg
        if cfg.task == "text":
            self.embed = nn.Embedding(n_inputs, cfg.d_model)
        else:
            self.input_proj = nn.Linear(n_inputs // cfg.n_tokens, cfg.d_model)
            self.cls = nn.Parameter(torch.zeros(cfg.d_model))
        self.pos_embed = nn.Embedding(cfg.n_ctx, cfg.d_model)
        if cfg.norm == "post":
            self.ln_embed = nn.LayerNorm(cfg.d_model, eps=1e-5)
        self.blocks = nn.ModuleList(_Block(cfg) for _ in range(cfg.n_layers))
        if cfg.norm == "pre":
            self.ln_final = nn.LayerNorm(cfg.d_model, eps=1e-5)
        self.classifier = nn.Linear(cfg.d_model, n_classes)

    def forward(self, inputs: torch.Tensor, hidden: list | None = None) -> torch.Tensor:
        """Class logits ``(B, n_classes)``."""
        return answer_logits(dict(self.named_parameters()), self.cfg, inputs, hidden)

    def param_dims(self) -> dict[str, tuple[str, ...]]:
        dims = {"embed.weight": ("vocab", "d_model"), "input_proj.weight": ("d_model", "token_features"),
                "input_proj.bias": ("d_model",), "cls": ("d_model",), "pos_embed.weight": ("n_ctx", "d_model"),
                "ln_embed.weight": ("d_model",), "ln_embed.bias": ("d_model",), "ln_final.weight": ("d_model",),
                "ln_final.bias": ("d_model",), "classifier.weight": ("class", "d_model"),
                "classifier.bias": ("class",), **_block_dims(len(self.blocks))}
        return {name: dims[name] for name, _ in self.named_parameters()}

    def param_roles(self) -> dict[str, str]:
        roles = {"unembedding": "classifier.weight"}
        if self.cfg.task == "text":
            roles.update(embedding="embed.weight", embedding_orientation="vocab_first")
        return roles


class MLP(nn.Module):
    """MLP on the concatenated one-hot operands ``[onehot(a), onehot(b)]`` (modular: logits over the p
    answers) or on feature vectors of width ``n_inputs`` (logits over ``n_classes``)."""

    def __init__(self, cfg: RunConfig, n_inputs: int | None = None, n_classes: int | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        modular = cfg.task == "modular"
        widths = ([2 * cfg.p if modular else n_inputs] + [cfg.d_model] * cfg.n_layers
                  + [cfg.p if modular else n_classes])
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in zip(widths[:-1], widths[1:]))

    def forward(self, inputs: torch.Tensor, hidden: list | None = None) -> torch.Tensor:
        """Logits ``(B, n_out)`` for ``inputs`` ``(B, 2)`` operands or ``(B, D)`` features."""
        return answer_logits(dict(self.named_parameters()), self.cfg, inputs, hidden)

    def param_dims(self) -> dict[str, tuple[str, ...]]:
        n = len(self.layers)
        modular = self.cfg.task == "modular"
        names = (["operands" if modular else "features"] + [f"hidden{i}" for i in range(1, n)]
                 + ["answer" if modular else "class"])
        dims = {}
        for i in range(n):
            dims[f"layers.{i}.weight"] = (names[i + 1], names[i])
            dims[f"layers.{i}.bias"] = (names[i + 1],)
        return dims

    def param_roles(self) -> dict[str, str]:
        roles = {"unembedding": f"layers.{len(self.layers) - 1}.weight"}
        if self.cfg.task == "modular":
            roles.update(embedding="layers.0.weight", embedding_orientation="vocab_last")
        return roles


def build_model(cfg: RunConfig, n_inputs: int, n_classes: int | None = None) -> nn.Module:
    """The model ``cfg`` describes, initialised and then scaled by ``alpha`` (seed 002 eq. 2).

    ``n_inputs``: the vocabulary size (token inputs) or the feature width; ``n_classes``: the output width of
    non-modular tasks.  ``init normal`` (seed 002): weights ~ N(0, init_std²), biases 0, LayerNorm gains 1;
    ``init default``: torch's layer defaults (seed 001 and Omnigrok scale those).  Then every parameter is
    multiplied by α.  The caller seeds torch first.
    """
    if cfg.model == "mlp":
        model: nn.Module = MLP(cfg, n_inputs, n_classes)
    elif cfg.task == "modular":
        model = Transformer(cfg, n_inputs)
    else:
        model = Encoder(cfg, n_inputs, n_classes)
    with torch.no_grad():
        if cfg.init == "normal":
            for module in model.modules():
                if isinstance(module, (nn.Linear, nn.Embedding)):
                    module.weight.normal_(0.0, cfg.init_std)
                    if getattr(module, "bias", None) is not None:
                        module.bias.zero_()
                elif isinstance(module, nn.LayerNorm):
                    module.weight.fill_(1.0)
                    module.bias.zero_()
        if isinstance(model, Encoder) and hasattr(model, "cls"):  # drawn like a token embedding row
            model.cls.normal_(0.0, cfg.init_std if cfg.init == "normal" else 1.0)
        if cfg.alpha != 1.0:
            for param in model.parameters():
                param.mul_(cfg.alpha)
    return model


def count_params(model: nn.Module) -> int:
    return sum(math.prod(p.shape) for p in model.parameters())
