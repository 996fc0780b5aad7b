"""Sweeps: grid parsing, batched training equal to training alone, resume, refusals, a Dask LocalCluster."""

import importlib
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from grokscope import RunStore, from_preset
from grokscope.cli.main import app
from grokscope.config.run import RunConfig
from grokscope.errors import ConfigError, GrokscopeError
from grokscope.sweeps.grid import group_key, parse_values, plan_sweep, run_id
from grokscope.trainers import train
from grokscope.trainers.batched import train_batched

TINY = dict(p=17, d_model=16, d_mlp=32, steps=30, ckpt_every=10, ckpt_early=2)


@pytest.mark.parametrize("text, kind, expected", [
    ("0.2,0.3", float, [0.2, 0.3]),
    ("32:128:32", int, [32, 64, 96, 128]),  # stop included
    ("0.1:0.3:0.1", float, [0.1, 0.2, 0.3]),  # no float drift past stop
    ("1e3", int, [1000]),
    ("true,false", bool, [True, False]),
    ("relu", str, ["relu"]),
])
def test_parse_values(text, kind, expected):
    values = parse_values(text, kind)
    assert values == pytest.approx(expected) if kind is float else values == expected


@pytest.mark.parametrize("text, kind", [("1.5", int), ("a,b", float), ("1:2", int), ("3:1:1", int), ("1,,2", int)])
def test_parse_values_refuses(text, kind):
    with pytest.raises(ConfigError):
        parse_values(text, kind)


def test_run_ids_are_file_name_safe_and_groups_ignore_member_fields():
    cfg = from_preset("demo", frac=0.25, seed=3)
    assert run_id(cfg, ["frac", "seed"]) == "frac=0.25_seed=3"
    assert "/" not in run_id(from_preset("demo", device="cuda:0"), ["device", "act"])
    assert group_key(cfg) == group_key(from_preset("demo", frac=0.5, seed=1, lr=3e-3, weight_decay=0.1))
    assert group_key(cfg) != group_key(from_preset("demo", d_model=32))


def test_groups_keep_full_batch_members_apart_from_mini_batched_ones(tmp_path):
    """omnigrok's batch 200: 100 examples train full-batch alone, 300 and 1,000 draw mini-batches; a member
    must train in its group as it would alone, so the first never shares a group with the others."""
    small, mid, big = (from_preset(task="digits", n_train=n) for n in (100, 300, 1000))
    assert group_key(mid) == group_key(big) != group_key(small)
    # the hierarchies count eq. 1's actual size: n_train 201 at f = 0 gives 4 × 50 = 200 examples
    eqd = lambda n: from_preset(task="equidistant", n_train=n, downsample_frac=0.0, batch_size=200)  # noqa: E731
    assert group_key(eqd(201)) == group_key(eqd(150)) != group_key(eqd(1000))
    with pytest.raises(ConfigError, match="others train full-batch"):
        train_batched([small, big], [tmp_path / "a.zarr", tmp_path / "b.zarr"])


@pytest.mark.parametrize("optimizer, batch_size", [("adamw", None), ("adam", 32)])
def test_a_batched_group_equals_its_runs_trained_alone(tmp_path, optimizer, batch_size):
    cfgs = [from_preset("demo", **TINY, optimizer=optimizer, batch_size=batch_size, frac=f, seed=s, lr=lr,
                        weight_decay=wd)
            for f, s, lr, wd in [(0.5, 0, 1e-3, 1.0), (1.0, 1, 3e-3, 0.5), (0.7, 2, 1e-3, 0.0)]]
    batched = train_batched(cfgs, [tmp_path / f"b{i}.zarr" for i in range(3)])
    for i, (cfg, path) in enumerate(zip(cfgs, batched)):
        b, a = RunStore(path), RunStore(train(cfg, tmp_path / f"a{i}.zarr"))
        assert b.config == a.config
        for name in ("train_loss", "train_acc", "test_loss", "test_acc", "l2_norm"):
            np.testing.assert_allclose(b.read(name), a.read(name), rtol=1e-5, atol=1e-7, err_msg=name)
        # Adam divides by √v: where a gradient is ~0 (a ReLU neuron at the edge of dying), rounding-level
        # differences between a batched matmul and a plain one become O(lr) steps. So: the typical weight
        # equal to rounding, and no weight further apart than the learning rate (measured after 30 steps:
        # median 0, 99th percentile 1.5e-8, max 4.5e-8), while every logged metric agrees to 1e-5.
        # The key bias is left out of the max: its exact gradient is 0 (softmax ignores a constant added to
        # every score), so Adam moves it by ~lr a step in the sign of rounding noise, which differs between
        # the two computations (measured: up to 1.07 lr apart after 30 steps).
        np.testing.assert_allclose(b.read("param_norm"), a.read("param_norm"), rtol=1e-3, atol=1e-4)
        d = cfg.d_model
        diffs = {n: np.abs(b.read_param(n) - a.read_param(n)) for n in a.param_names()}
        diffs["blocks.0.attn.qkv.bias"] = np.delete(diffs["blocks.0.attn.qkv.bias"], np.s_[d:2 * d], axis=-1)
        diff = np.concatenate([v.ravel() for v in diffs.values()])
        assert np.median(diff) < 1e-6 and np.quantile(diff, 0.99) < 1e-4 and diff.max() < cfg.lr


def test_mixed_shapes_are_refused_as_one_group(tmp_path):
    with pytest.raises(ConfigError, match="separate groups"):
        train_batched([from_preset("demo", **TINY), from_preset("demo", **{**TINY, "d_model": 8})],
                      [tmp_path / "a.zarr", tmp_path / "b.zarr"])


def sweep(*args):
    return CliRunner().invoke(app, ["sweep", "--preset", "demo", "--p", "17", "--d-mlp", "32", "--steps", "20",
                                    "--quiet", *map(str, args)])


def test_sweep_trains_the_grid_resumes_and_refuses_other_sweeps(tmp_path):
    out = tmp_path / "sw"
    first = sweep("--frac", "0.5,1.0", "--seeds", "2", "--d-model", "8,16", "--out", out, "--json")
    assert first.exit_code == 0, first.stderr
    index = json.loads(first.stdout)
    assert len(index["runs"]) == 8 and index["trained"] == 8
    assert all(run["status"] == "complete" for run in index["runs"].values())
    assert json.loads((out / "sweep.json").read_text())["grid"]["d_model"] == [8, 16]
    # a stopped sweep: one store half-written, one missing -> only those two train again
    stopped = out / "runs" / "frac=0.5_d_model=8_seed=0.zarr"
    meta = json.loads((stopped / "zarr.json").read_text())
    meta["attributes"]["status"] = "running"
    (stopped / "zarr.json").write_text(json.dumps(meta))
    kept = RunStore(out / "runs" / "frac=1.0_d_model=16_seed=1.zarr").attrs["created"]
    import shutil
    shutil.rmtree(out / "runs" / "frac=1.0_d_model=8_seed=1.zarr")
    again = sweep("--frac", "0.5,1.0", "--seeds", "2", "--d-model", "8,16", "--out", out, "--json")
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["trained"] == 2
    assert RunStore(stopped).status == "complete"
    assert RunStore(out / "runs" / "frac=1.0_d_model=16_seed=1.zarr").attrs["created"] == kept
    other = sweep("--frac", "0.3,0.6", "--seeds", "2", "--out", out)
    assert other.exit_code == 2 and "holds another sweep" in other.stderr


@pytest.mark.parametrize("args, message", [
    ([], "grid is empty"),
    (["--frac", "0.5,2.0"], "frac must be in"),
    (["--seeds", "2", "--seed", "1,2"], "--seeds N or --seed"),
    (["--seeds", "2", "--executor", "slurm"], "unknown executor"),
    (["--frac", "a,b"], "cannot read"),
])
def test_bad_sweeps_write_nothing(tmp_path, args, message):
    result = sweep(*args, "--out", tmp_path / "sw")
    assert result.exit_code == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "sw").exists()


def test_a_directory_that_is_not_a_sweep_is_refused(tmp_path):
    (tmp_path / "mine.txt").write_text("keep")
    with pytest.raises(GrokscopeError, match="not a sweep directory"):
        plan_sweep(tmp_path, "demo", {}, {"seed": [0, 1]})


@pytest.mark.slow
def test_sweep_on_a_dask_local_cluster(tmp_path):
    pytest.importorskip("distributed")
    result = sweep("--frac", "0.5,1.0", "--d-model", "8,16", "--out", tmp_path / "sw", "--executor", "dask",
                   "--workers", "2", "--no-batch", "--json")
    assert result.exit_code == 0, result.stderr
    index = json.loads(result.stdout)
    assert index["trained"] == 4 and all(r["status"] == "complete" for r in index["runs"].values())
    for run in index["runs"].values():
        store = RunStore(tmp_path / "sw" / run["store"])
        assert store.n_steps == 21 and store.n_ckpts == len(store.checkpoint_steps())


@pytest.mark.parametrize("batch_size", [None, 32])
def test_a_diverged_member_ends_in_its_group_as_it_ends_alone(tmp_path, monkeypatch, batch_size):
    """lr 1e6 diverges within a few steps, lr 1e-3 does not: trained as one group or one by one, the same
    status, diverged_at and committed rows/checkpoints (the rows end at the first non-finite step), and the
    normal member's metrics are unchanged by its diverged neighbour (flushes every 4 steps, so the stopping
    point cannot hide behind one flush at the end)."""
    monkeypatch.setattr("grokscope.trainers.recording.FLUSH_ROWS", 4)
    cfgs = [from_preset("demo", **TINY, lr=lr, batch_size=batch_size, eval_every=3) for lr in (1e6, 1e-3)]
    grouped = [RunStore(p) for p in train_batched(cfgs, [tmp_path / f"g{i}.zarr" for i in range(2)])]
    alone = [RunStore(train(c, tmp_path / f"a{i}.zarr")) for i, c in enumerate(cfgs)]
    ends = [[(s.status, s.attrs.get("diverged_at"), s.n_steps, s.n_ckpts) for s in runs] for runs in (grouped, alone)]
    assert ends[0] == ends[1], ends
    (status, diverged_at, n_steps, _), normal = ends[0]
    assert status == "diverged" and n_steps == diverged_at + 1 and normal[:3] == ("complete", None, 31)
    for name in ("train_loss", "train_acc", "test_loss", "test_acc", "l2_norm"):
        np.testing.assert_allclose(grouped[1].read(name), alone[1].read(name), rtol=1e-5, atol=1e-7, err_msg=name)
        np.testing.assert_allclose(grouped[0].read(name), alone[0].read(name), rtol=1e-5, atol=1e-7, err_msg=name)


def test_a_sweep_rerun_keeps_diverged_runs(tmp_path):
    out = tmp_path / "sw"
    first = sweep("--lr", "1e-3,1e6", "--out", out, "--json")
    assert first.exit_code == 0, first.stderr
    statuses = {rid: run["status"] for rid, run in json.loads(first.stdout)["runs"].items()}
    assert statuses == {"lr=0.001": "complete", "lr=1000000.0": "diverged"}
    diverged = out / "runs" / "lr=1000000.0.zarr"
    stamp = (diverged / "zarr.json").stat().st_mtime_ns, RunStore(diverged).attrs["created"]
    again = sweep("--lr", "1e-3,1e6", "--out", out, "--json")
    assert again.exit_code == 0, again.stderr
    index = json.loads(again.stdout)
    assert index["trained"] == 0 and index["already_complete"] == 2
    assert {rid: run["status"] for rid, run in index["runs"].items()} == statuses
    assert ((diverged / "zarr.json").stat().st_mtime_ns, RunStore(diverged).attrs["created"]) == stamp


def test_a_failing_group_reports_each_run_from_its_own_store(tmp_path, monkeypatch):
    """One by one (SGD): the second run fails after the first completed; stacked: the group fails with one
    member already complete from an earlier sweep.  Runs whose stores are complete stay complete."""
    from grokscope.trainers import sweep as sweep_mod

    real_train = train

    def second_fails(cfg, out, **kw):
        if cfg.seed == 1:
            raise RuntimeError("out of memory")
        return real_train(cfg, out, **kw)

    monkeypatch.setattr(importlib.import_module("grokscope.trainers.train"), "train", second_fails)
    sgd = [from_preset("demo", **TINY, optimizer="sgd", seed=s).to_dict() for s in (0, 1)]
    outs = [str(tmp_path / f"sgd{s}.zarr") for s in (0, 1)]
    results = sweep_mod.run_group(sgd, outs)
    assert [r["status"] for r in results] == ["complete", "failed"]
    assert "out of memory" in results[1]["error"]

    def group_fails(cfgs, outs, **kw):
        raise RuntimeError("CUDA error")

    monkeypatch.setattr(importlib.import_module("grokscope.trainers.batched"), "train_batched", group_fails)
    adam = [from_preset("demo", **TINY, seed=s).to_dict() for s in (0, 1, 2)]
    outs = [str(tmp_path / f"adam{s}.zarr") for s in (0, 1, 2)]
    real_train(RunConfig.from_dict(adam[0]), outs[0])  # finished by an earlier sweep
    results = sweep_mod.run_group(adam, outs)
    assert [r["status"] for r in results] == ["complete", "failed", "failed"]
    assert RunStore(outs[0]).status == "complete"
