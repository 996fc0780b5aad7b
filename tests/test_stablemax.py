"""StableMax (Prieto et al.) known values, its cross-entropy, the loss dispatcher, and a run trained with it."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from grokscope import RunStore
from grokscope.config.presets import from_preset
from grokscope.config.run import RunConfig
from grokscope.data.modular import build_task
from grokscope.errors import ConfigError
from grokscope.trainers import train
from grokscope.trainers.losses import loss_fn, stablemax, stablemax_cross_entropy, stablemax_log_scale
from grokscope.trainers.probe import load_model


@pytest.mark.parametrize("logits, expected", [
    ([0.0, 0.0], [0.5, 0.5]),  # s = (1, 1)
    ([1.0, -1.0], [2 / 2.5, 0.5 / 2.5]),  # s = (2, 1/2)
    ([3.0, 0.0, -3.0], [4 / 5.25, 1 / 5.25, 0.25 / 5.25]),  # s = (4, 1, 1/4)
    ([1e6, 1e6 - 1], [(1e6 + 1) / (2e6 + 1), 1e6 / (2e6 + 1)]),  # linear growth: never saturates to 1
])
def test_stablemax_known_values(logits, expected):
    got = stablemax(torch.tensor(logits, dtype=torch.float64))
    assert np.allclose(got.numpy(), expected, rtol=1e-12, atol=0)


def test_stablemax_cross_entropy_is_minus_log_of_the_probability_in_float64():
    logits = torch.tensor([[1.0, -1.0], [3.0, 0.0]], dtype=torch.float32)
    targets = torch.tensor([1, 0])
    # −log(0.5/2.5) and −log(4/5)
    per_row = stablemax_cross_entropy(logits, targets, reduction="none")
    assert per_row.dtype == torch.float64
    assert np.allclose(per_row.numpy(), [math.log(5), math.log(5 / 4)], rtol=1e-12)
    assert math.isclose(float(stablemax_cross_entropy(logits, targets)), (math.log(5) + math.log(1.25)) / 2)


def test_log_scale_has_the_right_gradient_everywhere_including_zero_and_one():
    x = torch.tensor([0.0, -2.0, 3.0, 1.0, -1.0], dtype=torch.float64, requires_grad=True)
    stablemax_log_scale(x).sum().backward()
    # g'(x) = 1/(1 + |x|) on both branches; no NaN from the branch `where` discards
    assert np.allclose(x.grad.numpy(), [1.0, 1 / 3, 1 / 4, 1 / 2, 1 / 2])
    huge = torch.tensor([[1e30, -1e30, 0.0]])
    assert torch.isfinite(stablemax_cross_entropy(huge, torch.tensor([1])))


def test_loss_fn_dispatches_on_the_config():
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 1.0, -3.0]])
    targets = torch.tensor([2, 1])
    ce = loss_fn(RunConfig())(logits, targets)
    assert torch.equal(ce, F.cross_entropy(logits.double(), targets))
    sm = loss_fn(RunConfig(loss="stablemax"))(logits, targets)
    assert torch.equal(sm, stablemax_cross_entropy(logits, targets))
    stacked = loss_fn(RunConfig(loss="stablemax"), reduction="none")(logits.expand(3, 2, 3), targets.expand(3, 2))
    assert stacked.shape == (3, 2) and torch.allclose(stacked.mean(1), sm.expand(3))
    with pytest.raises(ConfigError, match="unknown loss"):
        RunConfig(loss="hinge")


def test_a_stablemax_run_logs_stablemax_train_loss_and_softmax_test_loss(tmp_path):
    cfg = from_preset("singh2025", p=11, moduli="11", d_model=16, d_mlp=32, steps=3, batch_size=None)
    store = RunStore(train(cfg, tmp_path / "sm.zarr"))
    model, cfg = load_model(store, 0)  # the initial weights (checkpoint 0)
    task = build_task(cfg)
    x, y = torch.as_tensor(task.tokens), torch.as_tensor(task.targets)
    with torch.no_grad():
        logits = model(x)  # (p², vocab)
    train_idx, test_idx = (torch.as_tensor(store.read(n)) for n in ("train_idx", "test_idx"))
    expected_train = stablemax_cross_entropy(logits[train_idx], y[train_idx])
    expected_test = F.cross_entropy(logits[test_idx].double(), y[test_idx])
    assert math.isclose(store.read("train_loss")[0], float(expected_train), rel_tol=1e-6)
    assert math.isclose(store.read("test_loss")[0], float(expected_test), rel_tol=1e-6)
