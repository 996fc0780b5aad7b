"""Fourier measures of run stores: planted frequencies come back; a rebuilt model reproduces its logged loss."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from grokscope.analysis.runners.spectra import FourierOptions, weight_measures
from grokscope.cli.main import app
from grokscope.config.run import RunConfig
from grokscope.errors import GrokscopeError
from grokscope.store.layout import ParamSpec
from grokscope.store.reader import RunStore
from grokscope.store.writer import RunWriter
from grokscope.trainers import train

P, D = 31, 12


def planted_embedding(freqs_amps, orientation, n_ckpt=3):
    """(ckpt, vocab, d) or (ckpt, d, vocab): numbers embedded as cos/sin of the planted frequencies, plus
    4 non-number tokens with large values that must be ignored; checkpoints scale the signal up."""
    x = np.arange(P)
    W = np.zeros((P + 4, D))
    for j, (k, amp) in enumerate(freqs_amps):
        W[:P, 2 * j] = amp * np.cos(2 * np.pi * k * x / P)
        W[:P, 2 * j + 1] = amp * np.sin(2 * np.pi * k * x / P)
    W[P:] = 100.0
    stack = np.stack([W * (i + 1) for i in range(n_ckpt)])
    return stack if orientation == "vocab_first" else np.swapaxes(stack, 1, 2)


def fourier_store(path, orientation="vocab_first", roles=True, p=P):
    W = planted_embedding([(5, 3.0), (11, 2.5), (2, 2.0)], orientation)
    dims = ("vocab", "d_model") if orientation == "vocab_first" else ("d_model", "vocab")
    model = {"param_roles": {"embedding": "embed.W_E", "embedding_orientation": orientation}} if roles else {}
    writer = RunWriter(path, attrs={"config": {"p": p} if p else {}, "model": model}, n_steps=3,
                       metrics={"train_acc": ()}, params=[ParamSpec("embed.W_E", W.shape[1:], dims)],
                       ckpt_steps=np.array([0, 1, 2]))
    writer.write_metrics(0, {"train_acc": np.ones(3)})
    writer.write_checkpoints(0, {"embed.W_E": W.astype(np.float32)})
    writer.finalize()
    return path


@pytest.mark.parametrize("orientation", ["vocab_first", "vocab_last"])
def test_planted_frequencies_come_back_strongest_first(tmp_path, orientation):
    summary, arrays = weight_measures(RunStore(fourier_store(tmp_path / "f.zarr", orientation)))
    assert summary["key_frequencies"] == [5, 11, 2]
    assert arrays["embedding_spectrum"][1].shape == (3, P // 2 + 1)
    assert summary["gini"] == pytest.approx(summary["gini_initial"])  # scaling changes no sparsity
    assert summary["gini"] > 0.8


def test_imported_store_needs_param_and_p_from_the_user(tmp_path):
    path = fourier_store(tmp_path / "f.zarr", "vocab_last", roles=False, p=None)
    with pytest.raises(GrokscopeError, match="names no embedding"):
        weight_measures(RunStore(path))
    with pytest.raises(GrokscopeError, match="no modulus p"):
        weight_measures(RunStore(path), FourierOptions(param="embed.W_E"))
    summary, _ = weight_measures(RunStore(path), FourierOptions(param="embed.W_E", p=P, top_k=2))
    assert summary["key_frequencies"] == [5, 11]
    result = CliRunner().invoke(app, ["fourier", str(path), "--param", "embed.W_E", "--p", str(P), "--json"])
    assert result.exit_code == 0, result.stderr
    row = json.loads(result.stdout)[0]
    assert row["key_frequencies"] == [5, 11, 2] and row["model_measures"].startswith("unavailable")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from grokscope import from_preset
    return train(from_preset("demo", p=23, steps=60, ckpt_every=20, ckpt_early=2),
                 tmp_path_factory.mktemp("f") / "t.zarr")


def test_a_rebuilt_checkpoint_reproduces_the_logged_train_loss(trained):
    from grokscope.data.modular import build_task
    from grokscope.trainers.losses import cross_entropy
    from grokscope.trainers.probe import load_model

    store = RunStore(trained)
    task = build_task(RunConfig.from_dict(store.config))
    for i, step in enumerate(store.checkpoint_steps()):
        model, _ = load_model(store, i)
        with torch.no_grad():
            loss = cross_entropy(model(torch.as_tensor(task.tokens[task.train_idx])),
                                 torch.as_tensor(task.targets[task.train_idx]))
        assert loss.item() == pytest.approx(store.read("train_loss")[step], rel=1e-5)


def test_fourier_cli_on_a_native_run_adds_model_measures(trained):
    result = CliRunner().invoke(app, ["fourier", str(trained), "--json"])
    assert result.exit_code == 0, result.stderr
    row = json.loads(result.stdout)[0]
    for key in ("key_frequencies", "gini", "neuron_key_frequencies", "restricted_loss", "excluded_loss"):
        assert key in row
    assert row["saved"] and row["n_checkpoints"] == len(RunStore(trained).checkpoint_steps())
