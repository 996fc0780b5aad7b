"""``grokscope cds`` on synthetic run stores (RunWriter, no training) whose right answers are known."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from grokscope.analysis.runners.stepwise import load_runs
from grokscope.cli.main import app
from grokscope.store.writer import RunWriter

runner = CliRunner()
SIZES = (100, 200, 400, 800)
# n_params, d_model, and the first data size from which each seed generalizes
MODELS = ((1000, 16, (200, 400)), (4000, 32, (400, 800)))


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def write_run(path, *, test_acc, test_loss=None, n_params=1000, test_idx=None, **config):
    """One finished run store holding only per-step test curves (no checkpoints)."""
    cfg = dict(task="modular", op="+", p=97, input_format="nanda", n_train=100, frac=0.1, d_model=16,
               n_layers=1, seed=0)
    cfg.update(config)
    n = len(test_acc)
    data = None if test_idx is None else {"test_idx": ("test_example", np.asarray(test_idx))}
    writer = RunWriter(path, attrs={"config": cfg, "model": {"n_params": n_params}}, n_steps=n,
                       metrics={"train_acc": (), "test_acc": (), "train_loss": (), "test_loss": ()},
                       params=[], ckpt_steps=np.array([], dtype=int), data=data)
    block = {"train_acc": np.ones(n), "test_acc": np.asarray(test_acc, dtype=float)}
    if test_loss is not None:
        block["test_loss"] = np.asarray(test_loss, dtype=float)
    writer.write_metrics(0, block)
    writer.finalize()


def time_of(n):
    return int(10 * (800 / n) ** 2 + 20)  # t = a·r^(−2) + b, r = n/800: 660, 180, 60, 30


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cds")
    for n_params, d_model, firsts in MODELS:
        for n in SIZES:
            for seed, first in enumerate(firsts):
                acc = np.zeros(700)
                if n >= first:
                    acc[time_of(n):] = 1.0
                write_run(root / f"d{d_model}_n{n}_s{seed}.zarr", test_acc=acc, n_params=n_params,
                          d_model=d_model, n_train=n, frac=n / 800, seed=seed)
    return root


def test_json_document_has_the_known_answers(sweep_dir):
    result = invoke("cds", sweep_dir, "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    small, large = doc["models"]  # sorted by model size
    assert (small["n_params"], large["n_params"]) == (1000, 4000)
    # seed 0 generalizes one size before seed 1: mean 0.5 at the first, 1 at the next (ε = 0.95, log n)
    assert small["cds"] == pytest.approx(200 * 2**0.9, rel=1e-12)
    assert small["cds_ci"] == pytest.approx([100 * 2**0.95, 200 * 2**0.95], rel=1e-12)
    assert large["cds"] == pytest.approx(400 * 2**0.9, rel=1e-12)
    assert small["time_fit"]["gamma"] == pytest.approx(2.0, abs=1e-6)  # sizes 200, 400, 800
    assert small["time_fit"]["a"] == pytest.approx(10 * 800**2, rel=1e-6)
    assert large["time_fit"]["gamma"] is None and "got 2" in large["time_fit"]["reason"]
    fits = {f["x"]: f for f in doc["scaling"]}
    assert fits["n_params"]["exponent"] == pytest.approx(0.5, abs=1e-9)  # CDS ×2 for n_params ×4
    assert fits["d_model"]["exponent"] == pytest.approx(1.0, abs=1e-9)
    assert fits["n_params"]["exponent_ci"] == [None, None]  # two model sizes: no t-interval
    assert small["stepwise_peak"] == 200 and doc["n_runs"] == 16
    never = [r for r in doc["stepwise"] if r["n_train"] == 100]
    assert never and all(r["step"] is None for r in never)  # never reached: null, never 0


def test_table_and_csv(sweep_dir):
    table = invoke("cds", sweep_dir, "--bootstrap", "100")
    assert table.exit_code == 0, table.stderr
    for fragment in ("critical data size", "d_model=16", "d_model=32", "CDS = c·N^exponent", "373.2"):
        assert fragment in table.stdout
    csv = invoke("cds", sweep_dir, "--csv", "--bootstrap", "0")
    assert csv.exit_code == 0 and csv.stdout.splitlines()[0].startswith("model,setting,model_size,n_params")
    assert len(csv.stdout.splitlines()) == 3


def test_options_reach_the_analysis(sweep_dir):
    doc = json.loads(invoke("cds", sweep_dir, "--json", "--epsilon", "0.5", "--interp", "linear",
                            "--bootstrap", "0", "--model-size", "d_model", "--thresholds", "0.5").stdout)
    small = doc["models"][0]
    assert small["cds"] == pytest.approx(200) and small["cds_ci"] == [None, None]  # mean 0.5 at 200 meets ε
    assert doc["model_size_axis"] == "d_model" and small["model_size"] == 16
    assert {r["threshold"] for r in doc["stepwise"]} == {0.5}


def test_loss_only_runs(tmp_path, assert_one_line_error):
    for n, done in ((100, False), (200, True), (400, True)):
        loss = np.full(20, 4.0)
        if done:
            loss[10:] = 0.001
        write_run(tmp_path / f"n{n}.zarr", test_acc=np.full(20, np.nan), test_loss=loss, n_train=n)
    assert_one_line_error(invoke("cds", tmp_path), "logs no test_acc", "--test-loss-below")
    doc = json.loads(invoke("cds", tmp_path, "--json", "--test-loss-below", "0.01").stdout)
    assert doc["models"][0]["cds"] == pytest.approx(100 * 2**0.95) and "test_loss" in doc["criterion"]


def test_loader_reads_config_size_and_test_set(sweep_dir, tmp_path):
    write_run(tmp_path / "a.zarr", test_acc=np.zeros(3), test_idx=[3, 1, 2])
    (run,) = load_runs([tmp_path / "a.zarr", tmp_path])  # named twice: loaded once
    assert run.n_params == 1000 and run.config["n_train"] == 100 and len(run.test_set) == 12
    assert run.steps.tolist() == [0, 1, 2] and run.status == "complete"




def test_mismatched_tasks_are_refused(sweep_dir, tmp_path, assert_one_line_error):
    write_run(tmp_path / "other.zarr", test_acc=np.zeros(5), p=113)
    assert_one_line_error(invoke("cds", sweep_dir, tmp_path / "other.zarr"), "different tasks", "p is 97",
                          "but 113", "other.zarr")


def test_different_test_sets_are_refused(tmp_path, assert_one_line_error):
    write_run(tmp_path / "a.zarr", test_acc=np.zeros(5), test_idx=[1, 2, 3])
    write_run(tmp_path / "b.zarr", test_acc=np.zeros(5), test_idx=[1, 2, 4], seed=1)
    assert_one_line_error(invoke("cds", tmp_path), "test set is")


@pytest.mark.parametrize("args, fragment", [
    (["--thresholds", "a,b"], "--thresholds must be a comma list"),
    (["--interp", "cubic"], "interpolation must be 'log' or 'linear'"),
    (["--epsilon", "2"], "epsilon must be in (0, 1]"),
    (["--model-size", "width"], "has no 'width'"),
])
def test_bad_options(sweep_dir, args, fragment, assert_one_line_error):
    assert_one_line_error(invoke("cds", sweep_dir, *args), fragment)


def test_paths_without_runs_are_refused(tmp_path, assert_one_line_error):
    (tmp_path / "empty").mkdir()
    assert_one_line_error(invoke("cds", tmp_path / "empty"), "holds no grokscope run store")
    assert_one_line_error(invoke("cds", tmp_path / "missing"), "does not exist")
