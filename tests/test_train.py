"""Real training runs on CPU: the store they write, determinism, and a tiny run that really groks."""

import numpy as np
import pytest
import xarray as xr

from grokscope import RunStore, analyze, from_preset, open_checkpoints
from grokscope.config.resolve import checkpoint_steps
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
    assert ck["step"].values.tolist() == checkpoint_steps(cfg).tolist() == [0, 1, 2, 4, 10, 20, 30, 40]
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


def test_mini_batched_train_metrics_are_over_the_whole_training_set(tmp_path):
    """Known answer: at an evaluation step that is also a checkpoint, train_acc equals the accuracy of that
    checkpoint's weights recomputed on every training example (not one batch's), and train_loss the mean
    training loss; each step's batch values are batch_loss/batch_acc."""
    import torch

    from grokscope.config.run import RunConfig
    from grokscope.trainers.data import load_task
    from grokscope.trainers.losses import loss_fn
    from grokscope.trainers.probe import load_model

    cfg = from_preset("demo", p=17, d_model=32, d_mlp=64, steps=40, batch_size=32, eval_every=10, ckpt_every=10,
                      ckpt_early=0, lr=3e-3)
    store = RunStore(train(cfg, tmp_path / "mb.zarr"))
    acc, loss = store.read("train_acc"), store.read("train_loss")
    evaluated = [s % 10 == 0 for s in range(41)]
    assert np.isfinite(acc).tolist() == evaluated and np.isfinite(loss).tolist() == evaluated
    batch_acc, batch_loss = store.read("batch_acc"), store.read("batch_loss")
    assert np.isfinite(batch_acc).all() and np.isfinite(batch_loss).all()
    assert np.allclose(batch_acc * 32, np.round(batch_acc * 32))  # a share of one 32-example batch
    store_cfg = RunConfig.from_dict(store.config)
    _, data = load_task(store_cfg, torch.device("cpu"))
    n_train = len(data.train_y)
    assert n_train > 32
    steps = store.checkpoint_steps().tolist()
    assert steps == [0, 10, 20, 30, 40]
    differs = 0
    for i, step in enumerate(steps):
        model, _ = load_model(store, i)
        with torch.no_grad():
            logits = model(data.train_x)
        hits = int((logits.argmax(-1) == data.train_y).sum())
        assert acc[step] == hits / n_train, step  # exact: a count over all n_train examples
        assert np.isclose(loss[step], float(loss_fn(store_cfg)(logits, data.train_y)), rtol=1e-9), step
        differs += batch_acc[step] != acc[step]
    assert differs >= 3  # the batch's accuracy is not the training set's


def test_full_batch_stores_keep_dense_train_metrics_and_no_batch_arrays(short_run):
    _, path = short_run
    store = RunStore(path)
    assert not store.has("batch_loss") and not store.has("batch_acc")
    assert np.isfinite(store.read("train_acc")).all() and np.isfinite(store.read("train_loss")).all()


@pytest.mark.parametrize("device, fragment", [("cuda:abc", "not a device"), ("cuda", "no CUDA GPU"),
                                              ("cuda:7", "CUDA"), ("mps", "MPS")])
def test_a_device_this_machine_lacks_is_one_line_and_writes_nothing(tmp_path, assert_one_line_error, device,
                                                                   fragment):
    import torch
    from typer.testing import CliRunner

    from grokscope.cli.main import app

    if device.startswith("cuda") and device != "cuda:abc" and torch.cuda.device_count() > 7 * (device == "cuda:7"):
        pytest.skip("this machine has the GPU")
    if device == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    out = tmp_path / "dev.zarr"
    result = CliRunner().invoke(app, ["train", "--preset", "demo", "--steps", "3", "--device", device, "--quiet",
                                      "--out", str(out)])
    assert_one_line_error(result, fragment)
    assert list(tmp_path.iterdir()) == []
    kept = tmp_path / "kept.zarr"  # --overwrite keeps the old store when the new run cannot start
    assert CliRunner().invoke(app, ["train", "--preset", "demo", "--steps", "2", "--quiet", "--out",
                                    str(kept)]).exit_code == 0
    result = CliRunner().invoke(app, ["train", "--preset", "demo", "--steps", "3", "--device", device, "--quiet",
                                      "--overwrite", "--out", str(kept)])
    assert_one_line_error(result, fragment)
    assert RunStore(kept).status == "complete" and RunStore(kept).n_steps == 3
    result = CliRunner().invoke(app, ["sweep", "--preset", "demo", "--steps", "3", "--seeds", "2", "--device",
                                      device, "--quiet", "--out", str(tmp_path / "sw")])
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "sw").exists()
