"""L2 dynamics on constructed runs: an exact exponential decay returns its γ, eq. 7 its crossing step."""

import json

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from grokscope.analysis.runners.dynamics import DynamicsOptions, layer_norms, layer_of, run_dynamics
from grokscope.cli.main import app
from grokscope.store.layout import ParamSpec
from grokscope.store.reader import RunStore
from grokscope.store.writer import RunWriter

GAMMA, W0, MEM, GEN, STEPS = 2e-3, 50.0, 100, 600, 1000


def decaying_run(path, finalize=True):
    t = np.arange(STEPS)
    l2 = np.where(t < MEM, W0, W0 * np.exp(-GAMMA * (t - MEM)))  # flat, then exactly exponential
    per_param = np.stack([l2 * 0.6, l2 * 0.8], axis=1)  # two parameters of one layer: √(.36+.64) = 1
    writer = RunWriter(
        path, attrs={"config": {"p": 7}, "model": {"param_roles": {"unembedding": "unembed.weight"}}},
        n_steps=STEPS,
        metrics={"train_acc": (), "test_acc": (), "train_loss": (), "l2_norm": (), "param_norm": [("param", 2)]},
        coords={"param": np.array(["blocks.0.mlp.fc_in.weight", "blocks.0.attn.out.weight"])},
        params=[ParamSpec("unembed.weight", (7, 4), ("vocab", "d_model"))], ckpt_steps=np.array([0, 500, 999]),
    )
    writer.write_metrics(0, {
        "train_acc": (t >= MEM).astype(float), "test_acc": (t >= GEN).astype(float),
        "train_loss": np.exp(-t / 50) * (1 + 0.1 * np.sin(2 * np.pi * t / 10)), "l2_norm": l2,
        "param_norm": per_param})
    writer.write_checkpoints(0, {"unembed.weight": np.stack([np.full((7, 4), v) for v in (0.1, 0.2, 0.3)])})
    writer.finalize() if finalize else writer.commit()
    return path


def test_exact_exponential_returns_gamma_and_the_crossing_step(tmp_path):
    summary, arrays = run_dynamics(RunStore(decaying_run(tmp_path / "r.zarr")))
    assert summary["memorization_step"] == MEM and summary["generalization_step"] == GEN
    assert summary["fit_start"] == MEM and summary["fit_stop"] == GEN
    assert summary["decay_rate"] == pytest.approx(GAMMA, rel=1e-9)
    assert summary["w0"] == pytest.approx(W0, rel=1e-9)
    assert summary["predicted_generalization_step"] == pytest.approx(GEN, abs=0.1)  # w* observed at GEN
    assert summary["layers"]["blocks.0"]["initial"] == pytest.approx(W0)
    assert arrays["classifier_hist"][1][1].sum() == 28 and summary["loss_spectrum_peak_period"] == 10.0


def test_given_w_star_moves_the_prediction(tmp_path):
    store = RunStore(decaying_run(tmp_path / "r.zarr"))
    summary, _ = run_dynamics(store, DynamicsOptions(w_star=W0 / np.e))  # one e-folding: 1/γ = 500 steps
    assert summary["predicted_generalization_step"] == pytest.approx(MEM + 500, abs=0.1)
    assert summary["w_star_source"] == "given"


def test_layer_grouping():
    assert layer_of("blocks.3.attn.qkv.weight") == "blocks.3" and layer_of("embed.weight") == "embed"
    layers, norms = layer_norms(["a.weight", "a.bias", "b.weight"], np.array([[3.0, 4.0, 1.0]]))
    assert layers == ["a", "b"] and norms.tolist() == [[5.0, 1.0]]


def test_cli_json_and_the_saved_analysis_group(tmp_path):
    path = decaying_run(tmp_path / "r.zarr")
    result = CliRunner().invoke(app, ["dynamics", str(path), "--json"])
    assert result.exit_code == 0, result.stderr
    row = json.loads(result.stdout)[0]
    for key in ("decay_rate", "predicted_generalization_step", "generalization_step"):
        assert row[key] is not None
    assert row["saved"] is True
    saved = xr.open_zarr(path, group="analysis/dynamics")
    assert saved["layer_norm"].dims == ("step", "layer") and saved.sizes["step"] == STEPS
    assert RunStore(path).n_steps == STEPS  # the run itself is untouched


def test_a_live_run_is_read_but_not_written(tmp_path):
    path = decaying_run(tmp_path / "live.zarr", finalize=False)
    result = CliRunner().invoke(app, ["dynamics", str(path), "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)[0]["saved"] is False
    assert "run not finished (status running)" in result.stderr
    assert not (path / "analysis").exists()


def test_a_mini_batched_run_s_loss_spectrum_runs_over_steps_not_evaluations(store_kinds):
    """train_loss of a mini-batched run is logged at evaluations (every 10 steps here); the spectrum uses the
    per-step batch loss, so its window counts steps; a sparse import gets none."""
    from grokscope.analysis.runners.dynamics import DynamicsOptions, run_dynamics

    store = RunStore(store_kinds["mini_batched"])
    summary, _ = run_dynamics(store, DynamicsOptions())
    window = max(32, summary["memorization_step"] or 0)
    assert summary["loss_spectrum_n_early"] == min(window, store.n_steps)
    sparse, _ = run_dynamics(RunStore(store_kinds["imported_ckpts"]), DynamicsOptions())
    assert "loss_spectrum_n_early" in sparse  # Nanda's histories: one loss per epoch, consecutive
    summary, _ = run_dynamics(RunStore(store_kinds["sparse_eval"]), DynamicsOptions())
    assert summary["loss_spectrum_n_early"] == min(max(32, summary["memorization_step"] or 0), 301)
