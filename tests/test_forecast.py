"""The forecast (issue #16): signals on curves with known answers, the fit, the JSON model, backtest scores,
and the store runner on finished, running, known and imported runs.  No torch: every store is constructed."""

import json
import math

import numpy as np
import pytest

from grokscope.analysis.measures import forecast as fc
from grokscope.analysis.measures.onset import Criteria
from grokscope.analysis.runners import forecast as runner
from grokscope.errors import ConfigError
from grokscope.store.writer import RunWriter

CURVES = ("train_loss", "train_acc", "test_loss", "test_acc", "l2_norm")
LN2 = math.log(2)


def synthetic_curves(gamma: float, budget: int = 1000) -> tuple[np.ndarray, dict[str, np.ndarray], int | None]:
    """A run whose L2 norm decays as 40·e^(−γt) and whose test accuracy jumps to 1 when the norm has halved
    (step ⌈ln 2/γ⌉): it generalizes within the budget iff ln 2/γ ≤ budget.  Test loss falls in step."""
    t = np.arange(budget + 1)
    gen = math.ceil(LN2 / gamma)
    curves = {"train_loss": np.exp(-t / 50), "train_acc": np.minimum(1.0, t / 50),
              "test_loss": 3 * np.exp(-2 * t / gen), "test_acc": np.where(t >= gen, 1.0, 0.1),
              "l2_norm": 40 * np.exp(-gamma * t)}
    return t, curves, gen if gen <= budget else None


def write_run(path, gamma, *, budget=1000, committed=None, drop=(), every=1):
    """A store of :func:`synthetic_curves`; ``committed`` rows only (a live run: status running), ``drop``
    curves left out (stored as NaN), evaluated every ``every`` steps."""
    t, curves, _ = synthetic_curves(gamma, budget)
    writer = RunWriter(path, n_steps=len(t), metrics={name: () for name in CURVES}, params=[],
                       ckpt_steps=np.zeros(0), attrs={"config": {"task": "modular", "steps": budget, "seed": 0}})
    block = {name: np.where(t % every == 0, v, np.nan) if name.startswith("test") else v
             for name, v in curves.items() if name not in drop}
    if committed is None:
        writer.write_metrics(0, block)
        writer.finalize()
    else:
        writer.write_metrics(0, {k: v[:committed] for k, v in block.items()})
        writer.commit()
        writer.write_metrics(committed, {k: v[committed:] for k, v in block.items()})  # written, not committed
    return path


# γ such that ln 2/γ lands in 150…900 steps (groks) or beyond the budget of 1,000 (never)
GROK_GAMMAS = LN2 / np.linspace(150, 900, 12)
NEVER_GAMMAS = LN2 / np.linspace(1300, 6000, 12)


def signal_rows(gammas, at=100, budget=1000):
    rows = []
    for gamma in gammas:
        t, curves, gen = synthetic_curves(gamma, budget)
        rows.append({"signals": fc.signals(t, curves, at, budget), "generalization_step": gen, "budget": budget})
    return rows


# --- signals ---------------------------------------------------------------------------------------------

def test_config_signals_are_log10_of_the_settings_and_nan_where_absent():
    assert fc.config_signals({"lr": 1e-2, "weight_decay": 0.1, "n_train": 1000}) == pytest.approx(
        {"lr_log": -2.0, "weight_decay_log": -1.0, "n_train_log": 3.0})
    empty = fc.config_signals({"lr": 1e-3, "weight_decay": 0.0, "n_train": None})  # no decay; unresolved size
    assert empty["lr_log"] == pytest.approx(-3.0)
    assert math.isnan(empty["weight_decay_log"]) and math.isnan(empty["n_train_log"])
    assert all(math.isnan(v) for v in fc.config_signals({}).values())  # an import: no config


def test_a_store_with_its_settings_is_forecast_by_the_config_set_one_without_by_full(tmp_path):
    """The runner adds the config's signals: a native-like store (lr, weight decay, n_train in its config)
    takes the richest sub-model, the same curves without them the next one."""
    model = runner.load_model()
    bare = write_run(tmp_path / "bare.zarr", LN2 / 400)
    rich = write_run(tmp_path / "rich.zarr", LN2 / 400)
    import zarr

    group = zarr.open_group(str(rich), mode="r+")
    group.attrs["config"] = {**group.attrs["config"], "lr": 1e-3, "weight_decay": 1.0, "n_train": 500}
    from grokscope.store.layout import consolidate

    consolidate(rich)
    assert runner.forecast_store(rich, model=model)["feature_set"] == "config"
    assert runner.forecast_store(bare, model=model)["feature_set"] == "full"

def test_signals_recover_an_exact_decay_rate_trend_and_contraction():
    t = np.arange(0, 2001)
    curves = {"test_loss": 10.0 ** (-t / 1000), "train_loss": np.full(t.shape, 1e-3),
              "l2_norm": 40 * np.exp(-2e-3 * t), "test_acc": np.minimum(1, t / 1000), "train_acc": np.ones(t.shape)}
    s = fc.signals(t, curves, at=500, budget=2000)
    assert s["test_loss_trend"] == pytest.approx(-2.0)  # one decade per 1,000 steps = two per budget
    assert s["l2_decay_log"] == pytest.approx(math.log10(2e-3 * 2000))  # γ·budget = 4
    assert s["l2_contraction"] == pytest.approx(-1.0)  # ln(‖θ_500‖/‖θ_0‖) = −2e-3·500
    assert s["train_loss_log"] == pytest.approx(-3.0)
    assert s["test_loss_log"] == pytest.approx(-0.5)
    assert s["test_acc"] == pytest.approx(0.5) and s["test_acc_max"] == pytest.approx(0.5)


def test_signals_never_look_past_at():
    t, curves, _ = synthetic_curves(LN2 / 400)
    later = {k: np.where(t > 100, np.random.default_rng(0).random(t.shape), v) for k, v in curves.items()}
    assert fc.signals(t, curves, 100, 1000) == fc.signals(t, later, 100, 1000)


def test_missing_or_too_sparse_curves_give_nan_signals():
    t = np.arange(0, 1001)
    s = fc.signals(t, {"test_loss": np.where(t == 100, 1.0, np.nan), "train_loss": np.ones(t.shape)}, 100, 1000)
    assert math.isnan(s["test_loss_trend"])  # one evaluation in [50, 100]: no trend
    assert math.isnan(s["l2_decay_log"]) and math.isnan(s["test_acc"]) and s["test_loss_log"] == 0.0


# --- fit, JSON, predict ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def model():
    rows = signal_rows(np.concatenate([GROK_GAMMAS, NEVER_GAMMAS]))
    return fc.fit(rows, criteria=Criteria(), at_frac=0.1, provenance={"fitted_on": ["synthetic"]})


def test_a_fit_on_separable_runs_separates_them_out_of_fold(model):
    assert [s.name for s in model.submodels] == ["full", "no_l2", "losses"]
    for sub in model.submodels:
        assert sub.oof_auroc == 1.0 and sub.n_fit == 24 and sub.n_groks == 12
        assert sub.residual_q10 <= 0 <= sub.residual_q90


def test_held_out_separable_runs_score_auroc_one_and_steps_within_a_few_percent(model):
    rows = []
    for gamma in np.concatenate([LN2 / np.linspace(170, 880, 9), LN2 / np.linspace(1400, 5000, 9)]):
        t, curves, gen = synthetic_curves(gamma)
        pred = fc.predict(model, fc.signals(t, curves, 100, 1000), at=100, budget=1000)
        rows.append({**pred, "at": 100, "budget": 1000, "known": False, "true_generalization_step": gen})
    score = fc.scores(rows)
    assert score["auroc"] == 1.0 and score["n_groks"] == 9 and score["groks_missed"] == 0
    assert score["median_abs_log_ratio"] < 0.15


def test_the_stop_threshold_stops_at_most_the_miss_rate_of_groks_out_of_fold(model):
    for sub in model.submodels:
        assert 0 < sub.stop_threshold < 1
    # with 12 groks and a 5 % miss rate, floor(0.6) = 0 groks may be stopped: the threshold is the least
    # out-of-fold P of a grok, so every grok of the fit set would have continued


def test_json_round_trip_is_exact(model, tmp_path):
    text = model.to_json()
    again = fc.ForecastModel.from_json(text)
    assert again == model and again.to_json() == text
    path = runner.save_model(model, tmp_path / "m.json")
    assert runner.load_model(path) == model and not list(tmp_path.glob(".*"))  # no temporary left behind


@pytest.mark.parametrize("text, fragment", [
    ("not json", "not JSON"),
    ('{"submodels": []}', "no grokscope_forecast_model key"),
    ('{"grokscope_forecast_model": 2}', "schema 2"),
    ('{"grokscope_forecast_model": 1, "submodels": [{"name": "x"}]}', "malformed"),
])
def test_json_that_is_not_a_model_is_refused(text, fragment):
    with pytest.raises(ConfigError, match=fragment):
        fc.ForecastModel.from_json(text)


def test_losses_only_signals_use_the_losses_model_and_no_losses_abstain(model):
    t, curves, _ = synthetic_curves(LN2 / 300)
    losses = fc.signals(t, {k: curves[k] for k in ("train_loss", "test_loss")}, 100, 1000)
    assert fc.predict(model, losses, at=100, budget=1000)["feature_set"] == "losses"
    nothing = fc.predict(model, fc.signals(t, {"train_acc": curves["train_acc"]}, 100, 1000), at=100, budget=1000)
    assert nothing["p_generalize"] is None and nothing["advice"] is None
    assert nothing["reason"].startswith("abstained") and "test_loss_log" in nothing["reason"]


def test_fit_refuses_a_set_with_a_single_outcome():
    with pytest.raises(ConfigError, match="need at least 3 runs that generalize"):
        fc.fit(signal_rows(GROK_GAMMAS), criteria=Criteria(), at_frac=0.1)


def test_scores_on_hand_made_rows():
    """Four scored runs (two groks) and one known: AUROC 1, one interval of two covers, one non-grok stopped."""
    base = {"at": 100, "budget": 1000, "known": False}
    rows = [{**base, "p_generalize": 0.9, "advice": "continue", "predicted_generalization_step": 200,
             "interval_80": [150, 300], "true_generalization_step": 200},
            {**base, "p_generalize": 0.8, "advice": "continue", "predicted_generalization_step": 400,
             "interval_80": [300, 500], "true_generalization_step": 400 * math.e},
            {**base, "p_generalize": 0.1, "advice": "stop", "predicted_generalization_step": 900,
             "interval_80": [800, 999], "true_generalization_step": None},
            {**base, "p_generalize": 0.3, "advice": "continue", "predicted_generalization_step": 900,
             "interval_80": [800, 999], "true_generalization_step": None},
            {**base, "known": True, "p_generalize": 1.0, "advice": "continue", "true_generalization_step": 50}]
    s = fc.scores(rows)
    assert s["auroc"] == 1.0 and s["auroc_with_known"] == 1.0 and s["n_known"] == 1 and s["n_scored"] == 4
    assert s["median_abs_log_ratio"] == pytest.approx(0.5)  # |ln 1| and |ln e|
    assert s["interval_coverage"] == 0.5
    assert s["compute_saved"] == pytest.approx(900 / 5000) and s["waste_saved"] == pytest.approx(0.5)
    assert s["groks_missed"] == 0 and fc.targets_met(s)["interval_coverage"] is False


# --- stores ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    """A fit set and a held-out set of constructed runs, and one model fitted on the first."""
    root = tmp_path_factory.mktemp("forecast")
    for name, gammas in (("fit", np.concatenate([GROK_GAMMAS, NEVER_GAMMAS])),
                         ("heldout", np.concatenate([LN2 / np.linspace(170, 880, 6), LN2 / np.linspace(1400, 5000, 6),
                                                     [LN2 / 60]]))):  # the last one is known by step 100
        (root / name).mkdir()
        for i, gamma in enumerate(gammas):
            write_run(root / name / f"r{i:02d}.zarr", gamma)
    return root, runner.fit_model([root / "fit"], at_frac=0.1)


def test_fit_and_backtest_on_stores(sweeps):
    root, model = sweeps
    assert model.provenance["n_runs"] == 24 and model.provenance["budgets"] == [1000]
    result = runner.backtest([root / "heldout"], model=model)
    assert result["n_runs"] == 13 and result["n_known"] == 1 and result["n_scored"] == 12
    assert result["auroc"] == 1.0 and result["groks_missed"] == 0 and result["waste_saved"] > 0.5
    assert result["targets_met"]["auroc"] is True and set(result["by_feature_set"]) == {"full", "no_l2", "losses"}


def test_backtest_rows_pool_into_the_same_scores(sweeps):
    """Backtests of parts (e.g. one per held-out seed) pool by re-scoring their ``runs`` rows together."""
    root, model = sweeps
    whole = runner.backtest([root / "heldout"], model=model)
    parts = [runner.backtest(sorted((root / "heldout").glob(pattern)), model=model) for pattern in ("r0*", "r1*")]
    pooled = fc.scores([row for part in parts for row in part["runs"]])
    for key in ("auroc", "median_abs_log_ratio", "interval_coverage", "compute_saved", "waste_saved",
                "groks_missed", "n_known"):
        assert pooled[key] == pytest.approx(whole[key]), key


def test_forecast_cuts_reads_once_and_equals_a_forecast_per_cut(sweeps, tmp_path):
    root, model = sweeps
    run = root / "heldout" / "r03.zarr"
    rows = runner.forecast_cuts(run, [0.05, 0.1, 0.3], model=model)
    assert [r["at"] for r in rows] == [50, 100, 300]
    for row in rows:
        assert row == runner.forecast_store(run, at=row["at"], model=model)
    live = write_run(tmp_path / "live.zarr", LN2 / 300, committed=150)  # rows 0 … 149 committed
    assert [r["at"] for r in runner.forecast_cuts(live, [0.1, 0.2], model=model)] == [100]


def test_a_known_run_is_reported_not_predicted(sweeps):
    root, model = sweeps
    row = runner.forecast_store(root / "heldout" / "r12.zarr", at=100, model=model)
    assert row["known"] is True and row["generalized_at"] == 60 and row["advice"] == "continue"
    assert "known, not predicted" in row["reason"] and row["feature_set"] is None


def test_a_running_store_is_forecast_from_its_committed_rows_only(sweeps, tmp_path):
    _, model = sweeps
    live = write_run(tmp_path / "live.zarr", LN2 / 300, committed=150)
    row = runner.forecast_store(live, at=100, model=model)
    assert row["status"] == "running" and row["budget"] == 1000 and row["advice"] == "continue"
    assert row["p_generalize"] > 0.5 and row["compute_saved_steps"] == 0
    with pytest.raises(ConfigError, match="beyond the run"):
        runner.forecast_store(live, at=200, model=model)  # rows 150… are written but not committed
    never = runner.forecast_store(write_run(tmp_path / "never.zarr", LN2 / 5000, committed=150), model=model)
    assert never["at"] == 100 and never["advice"] == "stop" and never["compute_saved_steps"] == 900


def test_a_store_without_l2_or_accuracy_falls_back_and_one_without_test_loss_abstains(sweeps, tmp_path):
    _, model = sweeps
    no_l2 = runner.forecast_store(write_run(tmp_path / "a.zarr", LN2 / 300, drop=("l2_norm",)), model=model)
    assert no_l2["feature_set"] == "no_l2"
    losses = runner.forecast_store(write_run(tmp_path / "b.zarr", LN2 / 300, drop=("l2_norm", "test_acc",
                                                                                    "train_acc")), model=model)
    assert losses["feature_set"] == "losses" and losses["known"] is None and "unknown" in losses["reason"]
    blind = runner.forecast_store(write_run(tmp_path / "c.zarr", LN2 / 300, drop=("test_loss",)), model=model)
    assert blind["advice"] is None and blind["p_generalize"] is None and "test_loss" in blind["reason"]


def test_an_imported_losses_only_csv_is_forecast_from_its_losses(tmp_path):
    from grokscope.importers import read_source, write_source

    csv = tmp_path / "log.csv"
    csv.write_text("iteration,loss,val_loss\n" + "".join(
        f"{s},{1 / (1 + s):.6g},{max(0.001, 1 - s / 1500 * 0.995):.6g}\n" for s in range(0, 3001, 100)))
    write_source(read_source(csv), tmp_path / "log.zarr")
    (row,) = runner.forecast_runs([tmp_path / "log.zarr"])  # the packaged default model
    assert row["budget_source"] == "last logged step" and row["at"] == 300
    assert row["feature_set"] == "losses" and row["known"] is None and row["advice"] in ("stop", "continue")


def test_criteria_other_than_the_models_are_refused(sweeps):
    root, model = sweeps
    with pytest.raises(ConfigError, match="forecasts test accuracy ≥ 0.95, not test accuracy ≥ 0.5"):
        runner.forecast_runs([root / "fit"], model=model, criteria=Criteria(test_acc=0.5))
    assert runner.forecast_runs([root / "fit"], model=model, criteria=Criteria(train_acc=0.5))  # not its business
    with pytest.raises(ConfigError, match="not both"):
        runner.forecast_runs([root / "fit"], model=model, at=10, at_frac=0.1)


def test_the_packaged_default_model_loads_and_says_where_it_came_from():
    model = runner.load_model()
    assert model.criteria == Criteria() and model.at_frac == 0.1
    assert [s.name for s in model.submodels] == list(fc.FEATURE_SETS) and model.provenance["fitted_on"]
    from importlib import resources

    doc = json.loads(resources.files("grokscope.analysis").joinpath("forecast_model.json").read_text())
    assert doc["grokscope_forecast_model"] == 1


# --- the command line ------------------------------------------------------------------------------------

def cli(*args):
    from typer.testing import CliRunner

    from grokscope.cli.main import app

    return CliRunner().invoke(app, ["forecast", *map(str, args)])


def test_cli_forecast_fit_and_backtest_print_one_json_document_each(sweeps, tmp_path):
    root, _ = sweeps
    out = tmp_path / "m.json"
    fitted = cli("fit", root / "fit", "--out", out, "--json")
    assert fitted.exit_code == 0, fitted.stderr
    assert json.loads(fitted.stdout)["provenance"]["n_runs"] == 24 and "wrote" in fitted.stderr
    rows = json.loads(cli(root / "heldout", "--model", out, "--json").stdout)
    assert len(rows) == 13 and {r["advice"] for r in rows} == {"stop", "continue"}
    result = cli("backtest", root / "heldout", "--model", out, "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["auroc"] == 1.0
    table = cli("backtest", root / "heldout", "--model", out)
    assert table.exit_code == 0 and "AUROC" in table.stdout and "targets" in table.stderr


def test_cli_at_beyond_one_run_among_several_is_an_error_row(sweeps, tmp_path):
    root, model = sweeps
    runner.save_model(model, tmp_path / "m.json")
    write_run(tmp_path / "runs" / "short.zarr", LN2 / 300, committed=150)
    write_run(tmp_path / "runs" / "long.zarr", LN2 / 300)
    result = cli(tmp_path / "runs", "--at", 500, "--model", tmp_path / "m.json", "--json")
    rows = {r["run"]: r for r in json.loads(result.stdout)}
    assert "beyond the run" in rows["short"]["error"] and rows["long"]["at"] == 500


def _not_a_model(tmp_path):
    (tmp_path / "x.json").write_text('{"a": 1}')
    return tmp_path / "x.json"


def _newer_model(tmp_path):
    doc = json.loads(runner.load_model().to_json())
    doc["grokscope_forecast_model"] = 7
    (tmp_path / "new.json").write_text(json.dumps(doc))
    return tmp_path / "new.json"


@pytest.mark.parametrize("args, fragment", [
    (lambda root, tmp: [tmp / "missing.zarr"], "missing.zarr"),
    (lambda root, tmp: [tmp], "no grokscope run store"),
    (lambda root, tmp: [root / "fit" / "r00.zarr", "--at", 5000], "beyond the run"),
    (lambda root, tmp: [root / "fit", "--at", 100, "--at-frac", 0.1], "not both"),
    (lambda root, tmp: [root / "fit", "--at-frac", 1.5], "--at-frac"),
    (lambda root, tmp: [root / "fit", "--model", _not_a_model(tmp)], "not a forecast model"),
    (lambda root, tmp: [root / "fit", "--model", _newer_model(tmp)], "schema 7"),
    (lambda root, tmp: [root / "fit", "--test-acc", 0.5], "fit a model with those criteria"),
    (lambda root, tmp: ["fit", root / "fit"], "--out"),
    (lambda root, tmp: ["fit", root / "heldout" / "r00.zarr", "--out", tmp / "m.json"], "cannot fit"),
    (lambda root, tmp: ["backtest", root / "fit", "--at", 100], "--at"),
    (lambda root, tmp: ["backtest"], "name the run stores"),
], ids=["missing", "not-a-store", "at-beyond", "at-and-frac", "frac-range", "not-a-model", "newer-schema",
        "other-criteria", "fit-no-out", "fit-one-outcome", "backtest-at", "no-paths"])
def test_cli_bad_input_fails_in_one_line_writing_nothing(sweeps, tmp_path, assert_one_line_error, args, fragment):
    root, _ = sweeps
    result = cli(*args(root, tmp_path), "--json")
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "m.json").exists() and not list(tmp_path.glob(".m.json*"))


def test_the_default_model_is_declared_as_package_data():
    """The wheel carries the model only if pyproject says so (tests/test_packaging.py builds the wheel)."""
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")
    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert "forecast_model.json" in pyproject["tool"]["setuptools"]["package-data"]["grokscope.analysis"]
    assert any(dep.startswith("scikit-learn") for dep in pyproject["project"]["dependencies"])
