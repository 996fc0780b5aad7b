"""Real training runs on CPU: the store they write, determinism, and a tiny run that really groks."""

import numpy as np
import pytest
import xarray as xr

from grokscope import RunStore, analyze, from_preset, open_checkpoints
from grokscope.trainers import train

# p = 31 with 60% of the pairs to train on, lr 3e-3: memorizes in ~60 steps, generalizes by ~900 (measured).
GROKS = dict(p=31, train_ratio=0.6, d_model=64, lr=3e-3, steps=1000, ckpt_every=100)


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("t") / "short.zarr"
    cfg = from_preset("demo", steps=40, eval_every=4, ckpt_every=10, ckpt_early=3)
    return cfg, train(cfg, out)


def test_store_holds_every_step_and_the_scheduled_checkpoints(short_run):
    cfg, path = short_run
    ds = xr.open_zarr(path)
    assert ds.sizes["step"] == 41 and ds.attrs["status"] == "complete"
    assert ds.attrs["config"]["n_train"] == 1392 and ds.attrs["config"]["device"] == "cpu"
    assert np.isfinite(ds.train_loss.values).all()
    evaluated = np.isfinite(ds.test_acc.values)
    assert evaluated.tolist() == [s % 4 == 0 for s in range(41)]  # --eval-every 4 (and the last step)
    norms = ds.param_norm.values
    assert np.allclose(np.sqrt((norms ** 2).sum(axis=1)), ds.l2_norm.values)
    ck = open_checkpoints(path)
    assert ck["step"].values.tolist() == cfg.checkpoint_steps().tolist() == [0, 1, 2, 4, 10, 20, 30, 40]
    assert ck["embed.weight"].dims == ("ckpt", "vocab", "d_model")
    assert set(ds.param.values) == {k for k in ck.data_vars}
    store = RunStore(path)
    assert np.array_equal(store.read("train_idx"), np.sort(store.read("train_idx")))
    # the stored weights are the model's: parameter norms at checkpoint steps match the logged ones
    w = ck["embed.weight"].isel(ckpt=-1).values
    i = list(ds.param.values).index("embed.weight")
    assert np.isclose(np.linalg.norm(w), norms[40, i], rtol=1e-5)


def test_same_seed_same_run_other_seed_other_run(short_run, tmp_path):
    cfg, path = short_run
    again = RunStore(train(cfg, tmp_path / "again.zarr"))
    assert np.array_equal(again.read("train_loss"), RunStore(path).read("train_loss"))
    other = RunStore(train(from_preset("demo", steps=40, seed=1), tmp_path / "other.zarr"))
    assert not np.array_equal(other.read("train_loss"), again.read("train_loss"))


def test_mini_batch_and_mlp_runs(tmp_path):
    path = train(from_preset("demo", model="mlp", d_model=32, steps=20, batch_size=64, optimizer="sgd",
                             momentum=0.9), tmp_path / "mlp.zarr")
    store = RunStore(path)
    assert store.n_steps == 21 and store.attrs["model"]["param_roles"]["embedding"] == "layers.0.weight"


@pytest.mark.slow
def test_a_tiny_cpu_run_really_groks(tmp_path):
    row = analyze([train(from_preset("demo", **GROKS), tmp_path / "groks.zarr")])[0]
    assert row["memorization_step"] is not None and row["memorization_step"] < 200
    assert row["generalization_step"] is not None
    assert row["generalization_step"] > 2 * row["memorization_step"]  # generalization comes clearly later
    assert row["final_test_acc"] >= 0.9 and row["final_train_acc"] == 1.0
