"""Every analysis command on bad input: one `grokscope: error:` line and exit 2; imported L2 only at checkpoints
works; hidden build folders of killed writers are never listed."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from grokscope.cli.main import app
from grokscope.store.layout import ParamSpec
from grokscope.store.writer import RunWriter

runner = CliRunner()
P = 7
METRICS = ("train_loss", "train_acc", "test_loss", "test_acc", "l2_norm")


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def imported_like(path, l2_every=50, n=1000, mem=100, gen=333, weights=None):
    """An imported-run layout: metrics every step, L2 only at checkpoint steps (NaN between), L2 exactly
    40·exp(−0.001·t); memorized at ``mem``, generalized at ``gen`` (not a checkpoint step)."""
    t = np.arange(n)
    l2 = np.full(n, np.nan)
    ckpt = np.arange(0, n, l2_every)
    l2[ckpt] = 40 * np.exp(-1e-3 * ckpt)
    params = [] if weights is None else [ParamSpec("unembed.weight", weights.shape[1:], ("vocab", "d_model"))]
    attrs = {"config": {"p": P, "n_train": 100}, "task": {},
             "model": {"param_roles": {"embedding": "unembed.weight", "embedding_orientation": "vocab_first",
                                       "unembedding": "unembed.weight"}}}
    writer = RunWriter(path, attrs=attrs, n_steps=n, metrics={m: () for m in METRICS}, params=params,
                       ckpt_steps=np.arange(len(weights)) if weights is not None else np.array([], dtype=int))
    writer.write_metrics(0, {"train_acc": (t >= mem).astype(float), "test_acc": (t >= gen).astype(float),
                             "train_loss": np.exp(-t / 100), "test_loss": np.exp(-t / 300), "l2_norm": l2})
    if weights is not None:
        writer.write_checkpoints(0, {"unembed.weight": weights})
    writer.finalize()
    return path


def losses_only(path):
    """An imported loss-only run: accuracy arrays exist but hold only NaN."""
    writer = RunWriter(path, attrs={"config": {}, "task": {}}, n_steps=3, metrics={m: () for m in METRICS},
                       params=[], ckpt_steps=np.array([], dtype=int), step_values=np.array([0, 10, 20]))
    writer.write_metrics(0, {"train_loss": np.array([5.0, 1.0, 0.1]), "test_loss": np.array([5.0, 3.0, 0.5])})
    writer.finalize()
    return path


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("errors")
    x = np.arange(P)
    w = np.stack([np.cos(2 * np.pi * 2 * x / P), np.sin(2 * np.pi * 2 * x / P)], axis=1)  # (P, 2)
    weights = np.stack([w, 2 * w, 3 * w]).astype(np.float32)
    nan_weights = weights.copy()
    nan_weights[2, 0, 0] = np.nan  # the last checkpoint diverged
    return {"ckpt_l2": imported_like(root / "ckpt_l2.zarr"), "losses": losses_only(root / "losses.zarr"),
            "weights": imported_like(root / "weights.zarr", weights=weights),
            "nan_weights": imported_like(root / "nan.zarr", weights=nan_weights)}


def test_dynamics_uses_the_last_l2_logged_by_the_generalization_step(stores):
    result = run("dynamics", stores["ckpt_l2"], "--json", "--no-save")
    assert result.exit_code == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert row["generalization_step"] == 333 and row["w_star_step"] == 300  # checkpoints every 50 steps
    assert row["w_star"] == pytest.approx(40 * np.exp(-0.3), rel=1e-12)
    assert row["decay_rate"] == pytest.approx(1e-3, rel=1e-9) and row["fit_r2"] == pytest.approx(1.0)
    # an exact exponential crosses w* = L2(300) at step 300 exactly
    assert row["predicted_generalization_step"] == pytest.approx(300.0, abs=0.05)


def test_dynamics_on_diverged_classifier_weights_skips_only_the_histogram(stores):
    result = run("dynamics", stores["nan_weights"], "--json", "--no-save")
    assert result.exit_code == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert row["classifier_hist"] == "unavailable: non-finite weights at checkpoint step 2"
    assert row["decay_rate"] == pytest.approx(1e-3, rel=1e-9)


@pytest.mark.parametrize("kind, args, fragments", [
    ("losses", ["analyze", "--intervals"], ["grokking intervals need train and test accuracy"]),
    ("ckpt_l2", ["analyze", "--intervals", "--smooth", "ema", "--smooth-amount", "1.5"], ["[0, 1)", "1.5"]),
    ("ckpt_l2", ["dynamics", "--w-star", "-1"], ["w_star must be finite and > 0", "-1"]),
    ("ckpt_l2", ["dynamics", "--w-star", "0"], ["w_star must be finite and > 0"]),
    ("ckpt_l2", ["dynamics", "--w-star", "nan"], ["w_star must be finite"]),
    ("ckpt_l2", ["dynamics", "--bins", "0"], ["bins must be a positive integer"]),
    ("ckpt_l2", ["dynamics", "--fit-start", "500", "--fit-stop", "100"], ["fit_start must be < fit_stop"]),
    ("losses", ["dynamics"], ["fewer than two finite L2 norms"]),
    ("nan_weights", ["fourier"], ["non-finite values at checkpoint step 2", "'unembed.weight'"]),
    ("weights", ["fourier", "--top-k", "0"], ["k must be in [1, 3]"]),
    ("weights", ["fourier", "--every", "0"], ["--every must be positive"]),
])
def test_bad_input_is_one_line(stores, kind, args, fragments, assert_one_line_error):
    assert_one_line_error(run(args[0], stores[kind], *args[1:]), *fragments)


def test_fourier_on_finite_imported_weights_finds_the_planted_frequency(stores):
    result = run("fourier", stores["weights"], "--json", "--no-save")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)[0]["key_frequencies"] == [2]


@pytest.mark.parametrize("args, fragment", [
    (["--thresholds", "nan"], "--thresholds must be finite"),
    (["--clip", "-5"], "--clip must be a step >= 0"),
])
def test_bad_cds_options(tmp_path, args, fragment, assert_one_line_error):
    imported_like(tmp_path / "a.zarr")
    assert_one_line_error(run("cds", tmp_path, *args), fragment)


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: the pid names no process now
    return child.pid


def test_analyze_and_cds_skip_a_killed_writers_build_folder(tmp_path):
    complete = imported_like(tmp_path / "done.zarr")
    shutil.copytree(complete, tmp_path / f".killed.zarr.creating-{dead_pid()}")  # a store, hidden mid-rename
    half = tmp_path / f".half.zarr.creating-{dead_pid()}"  # killed right after the root group was written
    half.mkdir()
    (half / "zarr.json").write_text(json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {
        "grokscope": {"schema_version": 1, "kind": "run"}, "committed": {"steps": 0, "ckpts": 0}}}))
    rows = run("analyze", tmp_path, "--json")
    assert rows.exit_code == 0, rows.stderr
    assert [r["path"] for r in json.loads(rows.stdout)] == [str(complete)]
    cds = run("cds", tmp_path, "--json", "--bootstrap", "0")
    assert cds.exit_code == 0, cds.stderr
    assert json.loads(cds.stdout)["n_runs"] == 1
