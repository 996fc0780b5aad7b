"""TensorBoard event files from the real writers (PyTorch's SummaryWriter, tensorboard.summary.Writer)."""

import json
import os

import numpy as np
import pytest
from typer.testing import CliRunner

from grokscope.cli.main import app
from grokscope.importers import SourceError, read_source, write_source
from grokscope.importers.tensorboard import read_event_file
from grokscope.store.reader import RunStore

pytest.importorskip("tensorboard")
SummaryWriter = pytest.importorskip("torch.utils.tensorboard").SummaryWriter


def torch_run(logdir, steps, value, acc=None, stamp=None):
    """One SummaryWriter session (simple_value encoding); ``stamp`` renames its file to that timestamp."""
    before = set(logdir.glob("*tfevents*")) if logdir.exists() else set()
    writer = SummaryWriter(str(logdir))
    for step in steps:
        writer.add_scalar("Loss/train", value(step), step)
        if acc is not None:
            writer.add_scalar("Accuracy/test", acc(step), step)
    writer.add_histogram("weights", np.arange(10.0), 0)  # not a scalar: ignored
    writer.close()
    (new,) = set(logdir.glob("*tfevents*")) - before
    if stamp is not None:
        new.rename(logdir / f"events.out.tfevents.{stamp}.host.{stamp}.0")


def test_every_point_is_kept_beyond_the_default_reservoir(tmp_path):
    torch_run(tmp_path / "run", range(0, 1300), lambda s: 1.0 / (1 + s))
    written = write_source(read_source(tmp_path / "run"), tmp_path / "out")
    store = RunStore(written["runs"][0]["path"])
    assert store.read("step").tolist() == list(range(1300))  # the accumulator's default keeps 500
    np.testing.assert_allclose(store.read("train_loss"), 1.0 / (1 + np.arange(1300)), rtol=1e-7)


def test_resumed_run_keeps_the_latest_files_values(tmp_path):
    logdir = tmp_path / "logs" / "seed0"
    torch_run(logdir, range(0, 60), lambda s: 1.0, lambda s: 0.1, stamp=1_700_000_000)
    torch_run(logdir, range(40, 100), lambda s: 2.0, lambda s: 0.97, stamp=1_700_000_500)  # resumed at 40
    write_source(read_source(tmp_path / "logs"), tmp_path / "out")
    store = RunStore(tmp_path / "out" / "seed0.zarr")
    loss = store.read("train_loss")
    assert store.read("step").tolist() == list(range(100))
    assert (loss[:40] == 1.0).all() and (loss[40:] == 2.0).all()
    assert store.attrs["import"]["event_files"] == ["events.out.tfevents.1700000000.host.1700000000.0",
                                                    "events.out.tfevents.1700000500.host.1700000500.0"]


def test_tf2_tensor_encoding_reads_like_simple_value(tmp_path):
    from tensorboard.summary import Writer

    writer = Writer(str(tmp_path / "tf2"))
    for step in range(0, 100, 10):
        writer.add_scalar("val_acc", step / 100, step)
        writer.add_scalar("train/loss", 5.0 - step / 50, step)
    writer.close()
    torch_run(tmp_path / "pt", range(0, 100, 10), lambda s: 5.0 - s / 50)
    (series,) = [read_event_file(f) for f in (tmp_path / "tf2").glob("*tfevents*")]
    assert series["val_acc"][0].tolist() == list(range(0, 100, 10))
    np.testing.assert_allclose(series["val_acc"][1], np.arange(0, 100, 10) / 100, rtol=1e-7)
    (pt,) = [read_event_file(f) for f in (tmp_path / "pt").glob("*tfevents*")]
    np.testing.assert_array_equal(pt["Loss/train"][1], series["train/loss"][1])


def test_logdir_imports_every_run_and_analyze_finds_each_onset(tmp_path):
    for name, onset in (("lr0.1/seed0", 30), ("lr0.1/seed1", 70)):
        torch_run(tmp_path / "logs" / name, range(0, 100, 5), lambda s: 1.0,
                  lambda s, onset=onset: 0.99 if s >= onset else 0.2)
    writer = SummaryWriter(str(tmp_path / "logs" / "sched"))
    writer.add_scalar("lr", 0.1, 0)  # a run with no loss or accuracy: skipped, and said so
    writer.close()
    result = CliRunner().invoke(app, ["import", str(tmp_path / "logs"), "--out", str(tmp_path / "tb"),
                                      "--hparam", "frac=0.4", "--json"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["skipped"] == [{"run": "sched", "reason": "no field looks like a loss or accuracy"}]
    assert doc["format"] == "tensorboard" and sorted(os.listdir(tmp_path / "tb")) == ["lr0.1_seed0.zarr",
                                                                                     "lr0.1_seed1.zarr"]
    rows = json.loads(CliRunner().invoke(app, ["analyze", str(tmp_path / "tb"), "--json"]).stdout)
    assert {r["run"]: r["generalization_step"] for r in rows} == {"lr0.1_seed0": 30, "lr0.1_seed1": 70}
    assert all(r["frac"] == 0.4 for r in rows)


def test_random_bytes_and_scalar_free_files_are_refused(tmp_path):
    bad = tmp_path / "events.out.tfevents.1.host"
    bad.write_bytes(np.random.default_rng(0).bytes(2000))
    with pytest.raises(SourceError, match="events.out.tfevents.1.host: no readable TensorBoard events"):
        read_source(bad)
    writer = SummaryWriter(str(tmp_path / "hist"))
    writer.add_histogram("w", np.arange(5.0), 0)
    writer.close()
    with pytest.raises(SourceError, match="no scalar summaries"):
        read_source(tmp_path / "hist")
