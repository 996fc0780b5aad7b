"""Interop with Hugging Face ``transformers``: the same weights as an ``OpenAIGPTLMHeadModel``.

Seed 002 trains HF's OpenAI-GPT; this is how tests and benchmarks show grokscope's transformer computes the
same function (and how a user hands a trained model to HF tooling).  ``transformers`` is imported lazily.
"""

from __future__ import annotations

import torch

from grokscope.trainers.models import Transformer


def to_openai_gpt(model: Transformer):
    """An ``OpenAIGPTLMHeadModel`` holding ``model``'s weights (post-LN, tied, GPT-1 gelu config only)."""
    from transformers import OpenAIGPTConfig, OpenAIGPTLMHeadModel

    cfg = model.cfg
    if cfg.norm != "post" or not cfg.tied or cfg.act != "gelu_tanh" or cfg.d_mlp != 4 * cfg.d_model:
        raise ValueError("only the GPT-1 layout (post-LN, tied, gelu_tanh, d_mlp = 4·d_model) maps to OpenAI-GPT")
    hf_cfg = OpenAIGPTConfig(
        vocab_size=model.embed.num_embeddings, n_positions=cfg.n_ctx, n_embd=cfg.d_model, n_layer=cfg.n_layers,
        n_head=cfg.n_heads, afn="gelu", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        layer_norm_epsilon=1e-5, initializer_range=cfg.init_std,
    )
    hf = OpenAIGPTLMHeadModel(hf_cfg)
    ours = {k: v.detach() for k, v in model.state_dict().items()}
    state = {"transformer.tokens_embed.weight": ours["embed.weight"],
             "transformer.positions_embed.weight": ours["pos_embed.weight"]}
    for i in range(cfg.n_layers):
        src, dst = f"blocks.{i}.", f"transformer.h.{i}."
        for ours_name, hf_name in (("attn.qkv", "attn.c_attn"), ("attn.out", "attn.c_proj"),
                                   ("mlp.fc_in", "mlp.c_fc"), ("mlp.fc_out", "mlp.c_proj")):
            state[dst + hf_name + ".weight"] = ours[src + ours_name + ".weight"].T  # Conv1D is (in, out)
            state[dst + hf_name + ".bias"] = ours[src + ours_name + ".bias"]
        for ln_ours, ln_hf in (("ln1", "ln_1"), ("ln2", "ln_2")):
            state[dst + ln_hf + ".weight"] = ours[src + ln_ours + ".weight"]
            state[dst + ln_hf + ".bias"] = ours[src + ln_ours + ".bias"]
    with torch.no_grad():
        for name, param in hf.named_parameters():
            if name != "lm_head.weight":  # tied to the token embedding
                param.copy_(state[name])
    return hf.eval()
