"""Stopping runs early (the trainer's seam for ``sweep --stop-early``): a stopped store ends at the decision
step with status ``stopped_early`` and the decision's reason; every run the decision keeps trains exactly as
it would have without it (stacked members too); a stopped run is finished for sweeps and analysis."""

import concurrent.futures as cf

import numpy as np
import pytest

from grokscope import RunStore, from_preset
from grokscope.store.layout import FINISHED
from grokscope.sweeps.grid import plan_sweep
from grokscope.trainers import train
from grokscope.trainers.batched import train_batched
from grokscope.trainers.loop import EarlyStop
from grokscope.trainers.sweep import execute_sweep

TINY = dict(p=17, d_model=16, d_mlp=32, steps=40, ckpt_every=10, ckpt_early=2)
AT = 0.25  # decide after step 10 of 40


def _stop_if(names):
    """A decision that stops the stores whose file names are in ``names`` (and records what it saw)."""
    seen = []

    def decide(paths, step):
        seen.append((step, [p.name for p in paths], [RunStore(p).n_steps for p in paths]))
        return [{"reason": "test", "step": step} if p.name in names else None for p in paths]

    decide.seen = seen
    return decide


def _metrics(path):
    store = RunStore(path)
    return {name: np.asarray(store.read(name)) for name in ("train_loss", "test_acc", "l2_norm")}


def test_a_stopped_run_ends_at_the_decision_step_with_its_reason(tmp_path):
    cfg = from_preset("demo", **TINY)
    full = train(cfg, tmp_path / "full.zarr")
    decide = _stop_if({"stopped.zarr"})
    path = train(cfg, tmp_path / "stopped.zarr", early_stop=EarlyStop(AT, decide))
    store = RunStore(path)
    assert decide.seen == [(10, ["stopped.zarr"], [11])]  # the decision reads the committed rows 0 … 10
    assert store.status == "stopped_early" and store.status in FINISHED
    assert store.n_steps == 11 and store.attrs["stopped_early_at"] == 10
    assert store.attrs["stopped_early"] == {"reason": "test", "step": 10}
    assert list(store.checkpoint_steps()) == [s for s in RunStore(full).checkpoint_steps() if s <= 10]
    for name, values in _metrics(path).items():
        np.testing.assert_array_equal(values, _metrics(full)[name][:11], err_msg=name)


def test_a_run_the_decision_keeps_is_the_run_without_it(tmp_path):
    cfg = from_preset("demo", **TINY)
    full = train(cfg, tmp_path / "full.zarr")
    kept = train(cfg, tmp_path / "kept.zarr", early_stop=EarlyStop(AT, _stop_if(set())))
    assert RunStore(kept).status == "complete" and RunStore(kept).n_steps == 41
    for name, values in _metrics(kept).items():
        np.testing.assert_array_equal(values, _metrics(full)[name], err_msg=name)


@pytest.mark.parametrize("batch_size", [None, 16])
def test_stacked_members_stop_alone_and_the_others_train_on_unchanged(tmp_path, batch_size):
    """After the decision the group trains only the members left (stopped ones leave every stacked tensor,
    their batch generators and optimizer state with them); those end bit for bit where they would have."""
    cfgs = [from_preset("demo", **TINY, seed=s, frac=f, batch_size=batch_size) for s, f in enumerate([0.5, 0.7, 0.6])]
    plain = train_batched(cfgs, [tmp_path / f"plain{s}.zarr" for s in range(3)])
    early = train_batched(cfgs, [tmp_path / f"early{s}.zarr" for s in range(3)],
                          early_stop=EarlyStop(AT, _stop_if({"early1.zarr"})))
    assert [RunStore(p).status for p in early] == ["complete", "stopped_early", "complete"]
    assert RunStore(early[1]).n_steps == 11
    for p, q in zip(plain, early):
        n = RunStore(q).n_steps
        for name, values in _metrics(q).items():
            np.testing.assert_array_equal(values, _metrics(p)[name][:n], err_msg=f"{q.name} {name}")


def test_all_members_stopped_ends_the_group(tmp_path):
    cfgs = [from_preset("demo", **TINY, seed=s) for s in range(2)]
    outs = train_batched(cfgs, [tmp_path / f"m{s}.zarr" for s in range(2)],
                         early_stop=EarlyStop(AT, _stop_if({"m0.zarr", "m1.zarr"})))
    assert [RunStore(p).status for p in outs] == ["stopped_early"] * 2


@pytest.mark.parametrize("at_frac, steps, expected", [(0.1, 2000, 200), (0.25, 40, 10), (0.0, 40, None),
                                                      (1.0, 40, None), (0.001, 40, None)])
def test_the_decision_step_lies_strictly_inside_the_run(at_frac, steps, expected):
    assert EarlyStop(at_frac, _stop_if(set())).step(steps) == expected


def test_a_sweep_keeps_stopped_runs_and_does_not_train_them_again(tmp_path):
    sweep = plan_sweep(tmp_path / "sw", "demo", TINY, {"seed": [0, 1]})
    first = {rid: sweep.store_path(rid).name for rid in sweep.runs}
    stop_seed1 = _stop_if({name for rid, name in first.items() if rid.endswith("seed=1")})
    with cf.ThreadPoolExecutor(1) as pool:  # the decision need not pickle in a thread pool
        index = execute_sweep(sweep, pool, early_stop=EarlyStop(AT, stop_seed1))
    statuses = {rid: run["status"] for rid, run in index["runs"].items()}
    assert sorted(statuses.values()) == ["complete", "stopped_early"]
    with cf.ThreadPoolExecutor(1) as pool:
        again = execute_sweep(sweep, pool)
    assert again["trained"] == 0 and again["already_complete"] == 2


# --- grokscope sweep --stop-early: the forecast's advice in real sweep workers (spawned processes) ----------

def _model_file(path, threshold):
    """The packaged forecast model with every stop threshold set to ``threshold`` (1: stop every run it can
    forecast, 0: stop none)."""
    import dataclasses

    from grokscope.analysis.runners.forecast import load_model

    model = load_model()
    model = dataclasses.replace(model, submodels=tuple(dataclasses.replace(s, stop_threshold=threshold)
                                                       for s in model.submodels))
    path.write_text(model.to_json())
    return path


SWEEP = ["sweep", "--preset", "demo", "--p", "17", "--d-model", "16", "--d-mlp", "32", "--steps", "40",
         "--seeds", "2", "--quiet", "--json"]


@pytest.mark.parametrize("threshold, status", [(1.0, "stopped_early"), (0.0, "complete")])
def test_sweep_stop_early_follows_the_forecast(tmp_path, threshold, status):
    import json

    from typer.testing import CliRunner

    from grokscope.cli.main import app

    model = _model_file(tmp_path / "model.json", threshold)
    result = CliRunner().invoke(app, [*SWEEP, "--out", str(tmp_path / "sw"), "--stop-early",
                                      "--forecast-model", str(model)])
    assert result.exit_code == 0, result.output
    index = json.loads(result.stdout)
    assert [run["status"] for run in index["runs"].values()] == [status] * 2
    for run in index["runs"].values():
        store = RunStore(tmp_path / "sw" / run["store"])
        if status == "stopped_early":  # the packaged model decides at 10 % of the steps
            assert store.n_steps == 5 and store.attrs["stopped_early_at"] == 4
            assert store.attrs["stopped_early"]["p_generalize"] < 1.0
            assert store.attrs["stopped_early"]["compute_saved_steps"] == 36
        else:
            assert store.n_steps == 41


@pytest.mark.parametrize("extra, fragment", [
    (["--forecast-model", "{tmp}/model.json"], "--forecast-model goes with --stop-early"),
    (["--stop-early", "--forecast-model", "{tmp}/missing.json"], "missing.json"),
    (["--stop-early", "--forecast-model", "{tmp}/not_a_model.json"], "not a forecast model"),
])
def test_sweep_stop_early_refuses_bad_models_before_training(tmp_path, extra, fragment, assert_one_line_error):
    from typer.testing import CliRunner

    from grokscope.cli.main import app

    _model_file(tmp_path / "model.json", 0.5)
    (tmp_path / "not_a_model.json").write_text('{"grid": [1, 2]}')
    result = CliRunner().invoke(app, [*SWEEP, "--out", str(tmp_path / "sw"),
                                      *[e.format(tmp=tmp_path) for e in extra]])
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "sw").exists()


def test_a_member_that_diverged_before_the_decision_still_ends_diverged(tmp_path):
    """Members that diverged (and were masked) leave the group at the decision too; their stores are
    finalized as diverged then, not left running."""
    cfgs = [from_preset("demo", **TINY, seed=0, lr=1e3), from_preset("demo", **TINY, seed=1),
            from_preset("demo", **TINY, seed=2)]
    outs = train_batched(cfgs, [tmp_path / f"d{s}.zarr" for s in range(3)],
                         early_stop=EarlyStop(AT, _stop_if({"d1.zarr"})))
    stores = [RunStore(p) for p in outs]
    assert [s.status for s in stores] == ["diverged", "stopped_early", "complete"]
    assert stores[0].attrs["diverged_at"] < 10 and stores[2].n_steps == 41
