"""The run store: block writes, the commit marker, plain-xarray reading, discovery and refusals."""

import json

import numpy as np
import pytest
import xarray as xr
import zarr

from grokscope.errors import StoreError
from grokscope.store.layout import ParamSpec
from grokscope.store.reader import RunStore, open_checkpoints, open_run
from grokscope.store.runs import find_runs, run_labels
from grokscope.store.writer import RunWriter


def make_writer(path, n_steps=10, ckpt_steps=(0, 5, 9)):
    return RunWriter(
        path, attrs={"config": {"p": 7, "n_train": 3}}, n_steps=n_steps,
        metrics={"train_acc": (), "param_norm": [("param", 2)]},
        coords={"param": np.array(["w", "b"])},
        params=[ParamSpec("w", (3, 2), ("vocab", "d_model")), ParamSpec("b", (2,), ("d_model",))],
        ckpt_steps=np.array(ckpt_steps),
        data={"train_idx": ("train_example", np.array([1, 4, 6]))},
    )


def test_readers_see_only_the_committed_prefix(tmp_path):
    w = make_writer(tmp_path / "r.zarr")
    w.write_metrics(0, {"train_acc": np.linspace(0, 0.4, 5), "param_norm": np.ones((5, 2))})
    w.write_checkpoints(0, {"w": np.zeros((1, 3, 2)), "b": np.zeros((1, 2))})
    w.commit()
    w.write_metrics(5, {"train_acc": np.ones(3), "param_norm": np.ones((3, 2))})  # written, not committed
    store = RunStore(tmp_path / "r.zarr")
    assert store.n_steps == 5 and store.read("train_acc").tolist() == pytest.approx([0, .1, .2, .3, .4])
    assert open_run(tmp_path / "r.zarr").sizes["step"] == 5
    assert open_checkpoints(tmp_path / "r.zarr").sizes["ckpt"] == 1
    assert store.status == "running"


def test_finalized_store_opens_with_plain_xarray_and_names_dims(tmp_path):
    w = make_writer(tmp_path / "r.zarr")
    w.write_metrics(0, {"train_acc": np.arange(10) / 10, "param_norm": np.ones((10, 2))})
    w.write_checkpoints(0, {"w": np.arange(18.0).reshape(3, 3, 2), "b": np.ones((3, 2))})
    w.finalize()
    ds = xr.open_zarr(tmp_path / "r.zarr")  # no grokscope involved
    assert ds.train_acc.dims == ("step",) and ds.param_norm.dims == ("step", "param")
    assert ds.attrs["config"] == {"p": 7, "n_train": 3} and ds.attrs["committed"]["steps"] == 10
    ck = xr.open_zarr(tmp_path / "r.zarr", group="checkpoints")
    assert ck["w"].dims == ("ckpt", "vocab", "d_model") and ck["step"].values.tolist() == [0, 5, 9]
    assert float(ck["w"].isel(ckpt=2)[1, 1]) == 15.0
    store = RunStore(tmp_path / "r.zarr")
    assert store.read_param("w", 1).shape == (3, 2) and store.read_param("w").shape == (3, 3, 2)
    assert store.read_param("w", slice(1, None))[0, 0, 0] == 6.0
    assert store.status == "complete"


def test_an_existing_path_is_never_overwritten(tmp_path):
    (tmp_path / "r.zarr").mkdir()
    with pytest.raises(StoreError, match="already exists"):
        make_writer(tmp_path / "r.zarr")


def test_foreign_and_newer_stores_are_refused(tmp_path):
    zarr.open_group(tmp_path / "other.zarr", mode="w", attributes={"made_by": "someone"})
    with pytest.raises(StoreError, match="not a grokscope run store"):
        RunStore(tmp_path / "other.zarr")
    make_writer(tmp_path / "new.zarr").finalize()
    meta = tmp_path / "new.zarr" / "zarr.json"
    doc = json.loads(meta.read_text())
    doc["attributes"]["grokscope"]["schema_version"] = 99
    meta.write_text(json.dumps(doc))
    with pytest.raises(StoreError, match="schema 99"):
        RunStore(tmp_path / "new.zarr")
    (tmp_path / "junk").write_text("hello")
    with pytest.raises(StoreError):
        find_runs([tmp_path / "junk"])


def test_find_runs_walks_directories_but_not_into_stores(tmp_path):
    for name in ("a.zarr", "sub/b.zarr"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        make_writer(tmp_path / name).finalize()
    assert [p.name for p in find_runs([tmp_path])] == ["a.zarr", "b.zarr"]
    with pytest.raises(StoreError, match="not a grokscope run store"):
        find_runs([tmp_path / "sub" / "b.zarr" / "checkpoints"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(StoreError, match="holds no grokscope run store"):
        find_runs([tmp_path / "empty"])


def test_run_labels_add_folders_only_where_names_repeat(tmp_path):
    for sweep in ("equidistant", "equivariant"):  # two sweeps with the same run ids
        (tmp_path / sweep / "runs").mkdir(parents=True)
        (tmp_path / sweep / "sweep.json").write_text("{}")
    paths = [tmp_path / "equidistant/runs/f=0.zarr", tmp_path / "equivariant/runs/f=0.zarr",
             tmp_path / "equidistant/runs/f=0.2.zarr", tmp_path / "demo.zarr",
             tmp_path / "a/seed0/run.zarr", tmp_path / "b/seed0/run.zarr", tmp_path / "runs/seed0/run.zarr"]
    assert run_labels(paths) == ["equidistant/f=0", "equivariant/f=0", "f=0.2", "demo", "a/seed0/run",
                                 "b/seed0/run", "runs/seed0/run"]  # a runs/ folder of no sweep is kept
    assert run_labels([tmp_path / "r.zarr", tmp_path / "r.zarr"]) == [str(tmp_path / "r.zarr")] * 2


def _dead_pid() -> int:
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: its pid names no process now
    return child.pid


def test_a_new_writer_removes_killed_writers_build_folders_but_not_a_live_ones(tmp_path):
    import os

    dead = tmp_path / f".r.zarr.creating-{_dead_pid()}"
    live = tmp_path / f".r.zarr.creating-{os.getppid()}"  # our parent: alive for the whole test
    other = tmp_path / f".q.zarr.creating-{_dead_pid()}"  # another store's: not this writer's business
    for folder in (dead, live, other):
        make_writer(tmp_path / "done.zarr" if folder is dead else tmp_path / "tmp.zarr").finalize()
        os.rename(tmp_path / ("done.zarr" if folder is dead else "tmp.zarr"), folder)
    make_writer(tmp_path / "r.zarr").finalize()
    assert not dead.exists() and live.exists() and other.exists()
    assert RunStore(tmp_path / "r.zarr").status == "complete"


def test_find_runs_skips_hidden_folders(tmp_path):
    import os

    make_writer(tmp_path / "a.zarr").finalize()
    make_writer(tmp_path / "b.zarr").commit()  # a live writer's store is listed
    make_writer(tmp_path / "x.zarr")
    os.rename(tmp_path / "x.zarr", tmp_path / f".x.zarr.creating-{_dead_pid()}")
    (tmp_path / ".git").mkdir()
    make_writer(tmp_path / ".git" / "c.zarr").finalize()
    assert [p.name for p in find_runs([tmp_path])] == ["a.zarr", "b.zarr"]
    hidden = tmp_path / ".git" / "c.zarr"
    assert find_runs([hidden]) == [hidden]  # a hidden store named directly is still read
