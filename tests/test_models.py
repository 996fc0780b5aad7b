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
