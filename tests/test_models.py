"""The models compute what they claim: HF OpenAI-GPT's function, the same logits on the fast path, α scaling."""

import dataclasses

import pytest
import torch

from grokscope.config.presets import from_preset
from grokscope.config.resolve import resolve
from grokscope.data.modular import build_task
from grokscope.trainers.models import build_model, count_params


def zhu_model(**overrides):
    cfg = resolve(from_preset("zhu2024", **overrides))
    torch.manual_seed(0)
    return cfg, build_task(cfg), build_model(cfg, build_task(cfg).vocab_size)


def test_zhu2024_has_seed_002s_parameter_count():
    _, _, model = zhu_model()
    assert count_params(model) == 229_632  # ≈229.6k (NOTES.md)


def test_zhu2024_equals_hf_openai_gpt_on_the_same_weights():
    pytest.importorskip("transformers")
    from grokscope.trainers.hf import to_openai_gpt

    _, task, model = zhu_model(alpha=3.0)  # larger weights make a mismatch visible
    hf = to_openai_gpt(model)
    tokens = torch.as_tensor(task.tokens[:512])
    with torch.no_grad():
        ours, theirs = model(tokens), hf(input_ids=tokens).logits[:, -1]  # answer logits at `=`
    assert (ours - theirs).abs().max().item() <= 1e-5


@pytest.mark.parametrize("norm, layers", [("post", 1), ("pre", 2), ("none", 2)])
def test_answer_only_fast_path_equals_the_full_computation(norm, layers):
    cfg = resolve(from_preset("demo", norm=norm, n_layers=layers, tied=norm == "post"))
    torch.manual_seed(1)
    model = build_model(cfg, 60)
    tokens = torch.randint(0, 59, (64, 3))
    with torch.no_grad():
        full = model.logits_at(tokens, [0, 1, 2])  # every position queries
        assert torch.allclose(model(tokens), full[:, -1], atol=1e-5)
        assert torch.allclose(model.logits_at(tokens, [1]), full[:, 1:2], atol=1e-5)  # causal mask honoured


def test_alpha_multiplies_every_initial_parameter():
    cfg = resolve(from_preset("demo"))
    torch.manual_seed(0)
    base = build_model(cfg, 60)
    torch.manual_seed(0)
    scaled = build_model(dataclasses.replace(cfg, alpha=8.0), 60)
    for (name, a), (_, b) in zip(base.named_parameters(), scaled.named_parameters()):
        assert torch.allclose(b, 8.0 * a), name


def test_mlp_reads_one_hot_operand_pairs():
    cfg = resolve(from_preset("demo", model="mlp", n_layers=2, d_model=32))
    model = build_model(cfg, 60)
    out = model(torch.tensor([[1, 2], [3, 4]]))
    assert out.shape == (2, 59)
    assert set(model.param_dims()) == {name for name, _ in model.named_parameters()}


@pytest.mark.parametrize("stacked", [False, True])
@pytest.mark.parametrize("norm, layers, fmt", [("post", 1, "zhu"), ("pre", 1, "nanda"), ("none", 1, "nanda"),
                                              ("pre", 2, "zhu"), ("post", 2, "nanda")])
def test_first_block_lookup_equals_the_per_example_computation(norm, layers, fmt, stacked):
    """Batches larger than the vocabulary take the first block's q/k/v from (position, token) tables; in
    float64 the logits and every gradient equal the per-example computation (batches smaller than the
    vocabulary) to rounding."""
    from grokscope.trainers.functional import answer_logits, transformer_logits

    cfg = resolve(from_preset("demo", p=11, d_model=16, d_mlp=32, norm=norm, n_layers=layers, input_format=fmt))
    task = build_task(cfg)
    vocab = task.vocab_size
    tokens = torch.as_tensor(task.tokens[:60])  # 60 examples > vocab (≤ 16 tokens)
    params = []
    for seed in (0, 1) if stacked else (0,):
        torch.manual_seed(seed)
        params.append(dict(build_model(cfg, vocab).double().named_parameters()))
    P = ({k: torch.stack([p[k].detach() for p in params]).requires_grad_() for k in params[0]} if stacked
         else params[0])
    x = torch.stack([tokens, tokens.flip(0)]) if stacked else tokens  # (M, B, T) or (B, T)

    def value_and_grads(logits_of):
        for p in P.values():
            p.grad = None
        logits = logits_of(x)
        logits.square().sum().backward()
        return logits.detach(), {k: p.grad.clone() for k, p in P.items()}

    chunk = vocab - 1  # per-example path: fewer examples than vocabulary rows in each call
    looked_up = value_and_grads(lambda t: answer_logits(P, cfg, t))
    direct = value_and_grads(lambda t: torch.cat([answer_logits(P, cfg, t[..., i:i + chunk, :])
                                                  for i in range(0, t.shape[-2], chunk)], dim=-2))
    torch.testing.assert_close(looked_up[0], direct[0], rtol=1e-12, atol=1e-12)
    for name in P:
        torch.testing.assert_close(looked_up[1][name], direct[1][name], rtol=1e-10, atol=1e-10, msg=name)
    every = transformer_logits(P, cfg, x, list(range(tokens.shape[-1])))  # every position queries (causal)
    torch.testing.assert_close(every[..., -1, :].detach(), looked_up[0], rtol=1e-12, atol=1e-12)
