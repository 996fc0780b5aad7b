"""Known-answer tests for the charts and the downsampling behind them: every spec validates against the
Vega-Lite schema, and the data inside it is what the constructed inputs imply."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import pytest

from grokscope.analysis.measures.norms import DecayFit
from grokscope.charts import (
    accuracy_chart,
    cds_scaling_chart,
    curves_frame,
    generalization_steps_chart,
    key_frequency_chart,
    l2_chart,
    landscape_chart,
    loss_chart,
    norm_chart,
    spectrum_chart,
    stepwise_chart,
)
from grokscope.charts.subclasses import subclass_chart, subclass_frame
from grokscope.charts.thinning import (
    CHART_ROWS,
    MAX_POINTS,
    bucket_edges,
    decimate,
    downsample_frame,
    extreme_indices,
    pick_indices,
    points_per_curve,
)
from grokscope.errors import GrokscopeError
from grokscope.store.layout import ParamSpec
from grokscope.store.reader import RunStore
from grokscope.store.writer import RunWriter

CURVES = ("train_loss", "train_acc", "test_loss", "test_acc", "l2_norm")


def make_run(path, *, n_steps=2001, mem=400, gen=1500, test_low=0.1, n_train=2000, seed=0):
    """Train accuracy reaches 0.99 first at ``mem``, test accuracy 1.0 from ``gen`` (``test_low`` before)."""
    t = np.arange(n_steps, dtype=np.float64)
    train_acc = np.where(t >= mem, 1.0, 0.98 * t / mem)
    test_acc = np.where(t >= gen, 1.0, test_low)
    writer = RunWriter(path, attrs={"config": {"task": "modular", "p": 7, "n_train": n_train, "seed": seed}},
                       n_steps=n_steps, metrics={name: () for name in CURVES},
                       params=[ParamSpec("embed.weight", (10, 4), ("vocab", "d_model"))],
                       ckpt_steps=np.array([0]))
    writer.write_metrics(0, {"train_acc": train_acc, "test_acc": test_acc, "train_loss": np.exp(-t / 300),
                             "test_loss": np.where(t >= gen, 0.01, 3.0), "l2_norm": 40 * np.exp(-1e-3 * t)})
    writer.finalize()
    return path


def datasets(chart) -> list[dict]:
    """All inline rows of a chart's spec, validated against the Vega-Lite schema on the way."""
    spec = chart.to_dict(validate=True)  # raises on a schema violation and on > 5,000 rows
    return [row for rows in spec.get("datasets", {}).values() for row in rows]


def kind(rows, name):
    return [r for r in rows if r.get("kind") == name]


# --- downsampling ---------------------------------------------------------------------------------------


def test_each_bucket_keeps_its_last_min_and_max_as_real_points():
    steps = np.arange(10.0)
    values = np.array([3.0, 1, 4, 1, 5, 9, 2, 6, 5, 3])
    idx = extreme_indices(steps, values, bucket_edges(0, 10, 2))  # buckets [0, 5) and [5, 10]
    assert idx.tolist() == [0, 1, 4, 5, 6, 9]  # first; min 1 (first of two), max 5, last; max 9, min 2, last
    band = extreme_indices(steps, values, bucket_edges(0, 10, 2), lo=values - np.r_[0, 0, 9, 0, 0, 0, 0, 0, 0, 0])
    assert 2 in band.tolist()  # the band's own minimum (4 − 9 at step 2) is a kept row too


def test_decimate_skips_nan_and_keeps_short_curves_whole():
    values = np.array([np.nan, 2.0, np.nan, np.nan, np.nan, 7.0])
    s, v = decimate(np.arange(6.0), values, 5)
    assert s.tolist() == [1, 5] and v.tolist() == [2, 7]


def test_log_edges_keep_early_steps_apart():
    s, _ = decimate(np.arange(100_000.0), np.ones(100_000), MAX_POINTS, log=True)
    assert s[:3].tolist() == [0, 1, 2]  # early buckets narrower than one step: every early step kept
    assert len(s) <= MAX_POINTS and s[-1] == 99_999


def test_points_per_curve_and_pick_indices():
    assert points_per_curve(1) == MAX_POINTS and points_per_curve(CHART_ROWS // 50) == 50
    assert pick_indices(np.arange(10), 3).tolist() == [0, 4, 9]
    assert pick_indices(np.arange(3), 10).tolist() == [0, 1, 2]


def test_downsample_frame_keeps_extremes_and_short_curves():
    values = np.arange(10_000.0)
    values[7_777] = -5.0  # a one-step dip inside a rising curve
    long = pd.DataFrame({"run": "a", "step": np.arange(10_000), "value": values})
    short = pd.DataFrame({"run": "b", "step": [0, 5000, 9999], "value": [1.0, 2.0, 3.0]})
    out = downsample_frame(pd.concat([long, short]), ["run"], 100)
    a, b = out[out.run == "a"], out[out.run == "b"]
    assert 95 <= len(a) <= 100 and a.step.iloc[-1] == 9999 and a.value.iloc[-1] == 9999
    assert (a["lo"] == a["value"]).all() and a.set_index("step").value[7777] == -5.0  # a real row, in the line
    assert b.step.tolist() == [0, 5000, 9999] and b.value.tolist() == [1, 2, 3]
    again = downsample_frame(a, ["run"], 40)  # decimating decimated rows keeps the dip
    assert len(again) <= 40 and again.value.min() == -5.0


# --- run curves -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    make_run(root / "a.zarr", gen=1500, test_low=0.2)
    make_run(root / "b.zarr", gen=1200, test_low=0.6, seed=1)
    make_run(root / "c.zarr", gen=800, n_train=3000)
    return root


def test_single_run_marks_and_intervals(runs):
    rows = datasets(accuracy_chart(runs / "a.zarr", intervals={"alpha0": 1000.0, "alpha1": 1500.0,
                                                                 "support": 500.0}))
    marks = {r["event"]: r["step"] for r in kind(rows, "mark")}
    assert marks == {"memorization": 400, "generalization": 1500}
    spans = {r["event"]: (r["start"], r["end"]) for r in kind(rows, "interval")}
    assert spans == {"transition": (1000, 1500), "support": (1500, 2000)}
    curve = kind(rows, "curve")
    assert {r["split"] for r in curve} == {"train", "test"} and max(r["step"] for r in curve) == 2000


def test_overlay_log_x_drops_step_zero(runs):
    rows = datasets(loss_chart(runs, log_x=True))
    curve = kind(rows, "curve")
    assert {r["series"] for r in curve} == {"a", "b", "c"} and min(r["step"] for r in curve) == 1
    assert {(r["series"], r["step"]) for r in kind(rows, "mark") if r["event"] == "generalization"} == {
        ("a", 1500), ("b", 1200), ("c", 800)}


def test_grouped_mean_and_band_over_seeds(runs):
    rows = kind(datasets(accuracy_chart(runs, group_by="n_train")), "curve")
    test = {(r["series"], r["step"]): r for r in rows if r["split"] == "test"}
    for (group, step), r in test.items():
        if group == "3000":  # one run: c generalizes at 800
            assert (r["value"], r["runs"]) == (0.1 if step < 800 else 1.0, 1)
        elif step < 1200:  # a: 0.2 and b: 0.6 before either generalized
            assert (r["value"], r["lo"], r["hi"], r["runs"]) == (pytest.approx(0.4), 0.2, 0.6, 2)
        elif step < 1500:  # b generalized at 1200, a not yet
            assert (r["value"], r["lo"], r["hi"]) == (pytest.approx(0.6), 0.2, 1.0)
        else:
            assert r["value"] == 1.0
    assert {group for group, _ in test} == {"2000", "3000"}
    assert not kind(datasets(accuracy_chart(runs, group_by="n_train")), "mark")  # no per-run rules in groups


def test_facets_validate_and_partition_marks(runs):
    chart = accuracy_chart(runs, facet="run")
    assert isinstance(chart, alt.FacetChart)
    rows = datasets(chart)
    assert {r["series"] for r in kind(rows, "mark")} == {"a", "b", "c"}
    datasets(norm_chart(runs, facet="n_train", log_x=True))


def test_runs_with_one_name_stay_apart(tmp_path):
    make_run(tmp_path / "seed0" / "run.zarr", gen=900)
    make_run(tmp_path / "seed1" / "run.zarr", gen=1100)
    rows = datasets(accuracy_chart(tmp_path))
    assert {r["series"] for r in kind(rows, "curve")} == {"seed0/run", "seed1/run"}
    assert {(r["series"], r["step"]) for r in kind(rows, "mark") if r["event"] == "generalization"} == {
        ("seed0/run", 900), ("seed1/run", 1100)}


def test_long_run_stays_under_altairs_row_limit(tmp_path):
    make_run(tmp_path / "long.zarr", n_steps=100_001, mem=500, gen=60_000)
    chart = accuracy_chart(tmp_path / "long.zarr")
    rows = datasets(chart)  # to_dict() raises MaxRowsError past 5,000 rows
    assert len(kind(rows, "curve")) <= 2 * MAX_POINTS
    assert {r["step"] for r in kind(rows, "mark")} == {500, 60_000}
    df = curves_frame(tmp_path / "long.zarr")
    assert df.groupby("split").step.max().tolist() == [100_000, 100_000]


def test_tidy_table_input_and_bad_columns():
    df = pd.DataFrame({"step": np.arange(20_000), "split": "test", "value": np.linspace(0, 1, 20_000)})
    rows = kind(datasets(accuracy_chart(df, marks=[{"memorization_step": 3, "generalization_step": None}])),
                "curve")
    assert 0.95 * MAX_POINTS <= len(rows) <= MAX_POINTS and rows[-1]["value"] == 1.0
    with pytest.raises(GrokscopeError, match="needs columns value"):
        accuracy_chart(df.drop(columns="value"))
    with pytest.raises(GrokscopeError, match="no such column"):
        accuracy_chart(df, group_by="n_train")


# --- weight dynamics ------------------------------------------------------------------------------------


def test_l2_chart_draws_the_fit_over_its_window():
    t = np.arange(5001.0)
    fit = DecayFit(w0=30.0, gamma=1e-3, start=1000.0, stop=4000.0, r2=1.0)
    rows = datasets(l2_chart(t, 40 * np.exp(-1e-3 * t), fit,
                             marks={"run": "x", "memorization_step": 1000, "generalization_step": None}))
    fitted = kind(rows, "fit")
    assert fitted[0]["step"] == 1000 and fitted[0]["value"] == 30.0
    assert fitted[-1]["step"] == 4000 and fitted[-1]["value"] == pytest.approx(30 * np.exp(-3), rel=1e-5)
    assert [(r["event"], r["step"]) for r in kind(rows, "mark")] == [("memorization", 1000)]


def test_spectrum_heatmap_cells_and_key_frequency_bars():
    steps = np.arange(0, 1001, 10)  # 101 checkpoints
    spectrum = np.zeros((101, 57))
    spectrum[:, 14] = np.linspace(0, 5, 101)
    rows = datasets(spectrum_chart(steps, spectrum))
    assert len(rows) <= CHART_ROWS and {r["k"] for r in rows} == set(range(1, 57))  # constant left out
    kept = sorted({r["step"] for r in rows})  # at most CHART_ROWS // 56 = 71 checkpoints, first and last
    assert len(kept) <= 71 and kept[0] == 0 and kept[-1] == 1000
    last = [r for r in rows if r["step"] == 1000]
    assert {r["k"]: r["norm"] for r in last if r["norm"] > 0} == {14: 5.0}
    assert last[0]["end"] == 1000 + (1000 - kept[-2])  # the last cell as wide as the one before
    bars = datasets(key_frequency_chart(np.arange(1, 57), spectrum[-1, 1:], key=[14]))
    assert [r["k"] for r in bars if r["frequency"] == "key frequency"] == [14]
    with pytest.raises(GrokscopeError, match="spectrum_chart needs"):
        spectrum_chart(steps, spectrum[:-1])


# --- sweeps ---------------------------------------------------------------------------------------------


def test_stepwise_and_generalization_steps():
    df = pd.DataFrame({"n_train": [1000, 2000, 1000, 2000], "threshold": [0.5, 0.5, 0.9, 0.9],
                       "step": [np.nan, 900.0, np.nan, 3500.0]})
    assert len(datasets(stepwise_chart(df))) == 4
    assert isinstance(stepwise_chart(df.assign(model_size=[1, 1, 2, 2])), alt.FacetChart)
    rows = datasets(generalization_steps_chart(df[df.threshold == 0.9].drop(columns="threshold"), cds=2000))
    assert [(r["cds"], r["label"]) for r in kind(rows, "cds")] == [(2000, "CDS 2000")]
    assert [r["n_train"] for r in kind(rows, "run") if "step" not in r or r["step"] is None] == [1000]
    per_size = generalization_steps_chart(df.assign(model_size=[1, 1, 2, 2]), cds={1: 2000, 2: 1500})
    assert {(r["model_size"], r["cds"]) for r in kind(datasets(per_size), "cds")} == {(1, 2000), (2, 1500)}


def test_cds_scaling_fit_and_ci_pivot():
    df = pd.DataFrame({"model_size": [1e4, 1e6], "cds": [1e3, 1e4], "cds_lo": [9e2, 9e3],
                       "cds_hi": [1.1e3, 1.1e4]})
    chart = cds_scaling_chart(df, {"c": 10.0, "exponent": 0.5, "exponent_ci": [0.4, 0.6]})
    fit = kind(datasets(chart), "fit")
    assert fit[0]["cds"] == pytest.approx(10 * 1e4**0.5) and fit[-1]["cds"] == pytest.approx(10 * 1e6**0.5)
    mid = min(fit, key=lambda r: abs(np.log(r["model_size"]) - np.log(1e5)))  # the pivot, 10^5: CI lines meet
    assert mid["cds_hi"] / mid["cds_lo"] == pytest.approx(1, abs=0.05)
    assert fit[-1]["cds_hi"] == pytest.approx(10 * 1e5**0.5 * 10**0.6)
    assert chart.title == "CDS = 10·N^0.5 [0.4, 0.6]"
    from grokscope.analysis.runners.cds import PowerLawFit  # the CDS module's fit plugs in as it is
    same = cds_scaling_chart(df, PowerLawFit(10.0, 0.5, 0.05, 0.4, 0.6, 1.0, 2))
    assert kind(datasets(same), "fit") == fit and same.title == chart.title


def test_landscape_boundary_is_the_first_size_reaching_epsilon():
    df = pd.DataFrame({"model_size": [16] * 6 + [32] * 6, "n_train": [1, 2, 3] * 4,
                       "accuracy": [0.1, 0.5, 0.9, 0.3, 1.0, 1.0,   # 16: means 0.2, 0.75, 0.95
                                    0.9, 1.0, 1.0, 1.0, 1.0, 1.0]})  # 32: means 0.95, 1, 1
    rows = datasets(landscape_chart(df, 0.95))
    assert {(r["model_size"], r["n_train"]) for r in kind(rows, "cds")} == {(16, 3), (32, 1)}
    assert sum(r["reached"] for r in kind(rows, "cell")) == 4
    with pytest.raises(GrokscopeError, match="epsilon"):
        landscape_chart(df, 1.5)


# --- decimation over step values: sparse runs and one-step spikes ---------------------------------------


def sparse_run(path, n_points=1000, every=100):
    """An imported-like run: ``n_points`` rows logged every ``every`` steps, noisy accuracies."""
    rng = np.random.default_rng(0)
    writer = RunWriter(path, attrs={"config": {"n_train": 100}}, n_steps=n_points,
                       metrics={"train_acc": (), "test_acc": ()}, params=[], ckpt_steps=np.array([], np.int64),
                       step_values=np.arange(n_points) * every)
    writer.write_metrics(0, {"train_acc": rng.uniform(0.9, 1.0, n_points), "test_acc": rng.uniform(0, 1, n_points)})
    writer.finalize()
    return path


def test_sparse_run_keeps_its_budget_of_points(tmp_path):
    df = curves_frame(sparse_run(tmp_path / "sparse.zarr"))  # steps 0 … 99,900 in 1,000 rows
    counts = df.groupby("split").size()
    assert (counts >= 0.9 * MAX_POINTS).all() and (counts <= MAX_POINTS).all(), counts  # was 11 each
    assert df.step.max() == 99_900
    rows = kind(datasets(accuracy_chart(tmp_path / "sparse.zarr")), "curve")
    assert 2 * 0.9 * MAX_POINTS <= len(rows) <= 2 * MAX_POINTS


SPIKE = 54_321  # the one step where every curve jumps


def spike_run(path, *, height=1.0, seed=0):
    """100,001 steps; at step SPIKE alone: test accuracy 0.2 → ``height``, train loss ×1000, L2 +10, and
    the down-sampled subclass's test accuracy 0.3 → 0.9."""
    t = np.arange(100_001, dtype=np.float64)
    spike = t == SPIKE
    sub = np.stack([np.where(spike, 0.9, 0.3), np.full(t.size, 0.8)], axis=1)  # (steps, 2 subclasses)
    writer = RunWriter(path, attrs={"config": {"n_train": 100, "seed": seed},
                                    "task": {"downsampled": [True, False]}}, n_steps=t.size,
                       metrics={**{name: () for name in CURVES}, "test_acc_subclass": (("subclass", 2),)},
                       params=[], ckpt_steps=np.array([], np.int64))
    writer.write_metrics(0, {"train_acc": np.ones(t.size), "test_acc": np.where(spike, height, 0.2),
                             "train_loss": np.where(spike, 1.0, 1e-3), "test_loss": np.ones(t.size),
                             "l2_norm": np.where(spike, 50.0, 40.0), "test_acc_subclass": sub})
    writer.finalize()
    return path


def at_spike(rows, **match):
    """Values of the drawn curve rows at SPIKE matching ``match``."""
    return [r["value"] for r in kind(rows, "curve") if r["step"] == SPIKE
            and all(r.get(k) == v for k, v in match.items())]


def test_a_one_step_spike_survives_in_every_chart_line(tmp_path):
    a, b = spike_run(tmp_path / "a.zarr"), spike_run(tmp_path / "b.zarr", height=0.6, seed=1)
    assert at_spike(datasets(accuracy_chart(a)), split="test") == [1.0]
    assert at_spike(datasets(accuracy_chart(a, log_x=True)), split="test") == [1.0]
    assert at_spike(datasets(loss_chart(a)), split="train") == [1.0]
    assert at_spike(datasets(norm_chart([a, b])), series="a") == [50.0]
    assert at_spike(datasets(accuracy_chart([a, b])), series="b", split="test") == [0.6]  # overlaid
    grouped = [r for r in kind(datasets(accuracy_chart([a, b], group_by="n_train")), "curve")
               if r["step"] == SPIKE and r["split"] == "test"]
    assert [(r["value"], r["hi"], r["runs"]) for r in grouped] == [(pytest.approx(0.8), 1.0, 2)]  # mean line
    store = RunStore(a)
    rows = datasets(l2_chart(store.read("step"), store.read("l2_norm")))
    assert [r["value"] for r in kind(rows, "curve") if r["step"] == SPIKE] == [50.0]
    sub = subclass_frame([store], ["a"])
    assert sub[(sub.step == SPIKE) & (sub.subset == "test: down-sampled")].value.tolist() == [0.9]
    frame = curves_frame([a, b])  # a chart with many curves decimates again, to fewer points each
    again = downsample_frame(frame, ["run", "split"], 50)
    assert again[(again.run == "a") & (again.split == "test")].value.max() == 1.0


def test_eight_subclass_runs_fit_altairs_row_limit(tmp_path):
    paths = [spike_run(tmp_path / f"r{i}.zarr", seed=i) for i in range(8)]
    df = subclass_frame([RunStore(p) for p in paths], [f"r{i}" for i in range(8)])
    assert len(df) <= CHART_ROWS  # 8 runs × 3 subsets × 400 points was 9,600 rows: MaxRowsError
    datasets(subclass_chart(df))


def collapse_run(path):
    """Memorized at 400; test accuracy 1 at 1000–1002 only, then again from 1200; train (and test)
    accuracy collapse to 0.1 at 1800."""
    t = np.arange(2001, dtype=np.float64)
    train = np.where(t >= 1800, 0.1, np.where(t >= 400, 1.0, 0.98 * t / 400))
    test = np.where(t >= 1800, 0.1, np.where((t >= 1200) | ((t >= 1000) & (t <= 1002)), 1.0, 0.1))
    writer = RunWriter(path, attrs={"config": {"n_train": 100}}, n_steps=t.size,
                       metrics={"train_acc": (), "test_acc": ()}, params=[], ckpt_steps=np.array([], np.int64))
    writer.write_metrics(0, {"train_acc": train, "test_acc": test})
    writer.finalize()
    return path


def test_sustained_generalization_and_collapse_are_marked(tmp_path, runs):
    rows = datasets(accuracy_chart(collapse_run(tmp_path / "c.zarr")))
    marks = {r["event"]: (r["step"], r["label"]) for r in kind(rows, "mark")}
    assert marks == {"memorization": (400, "memorized 400"), "generalization": (1000, "generalized 1000"),
                     "sustained": (1200, "sustained 1200"), "collapse": (1800, "collapsed 1800")}
    layers = accuracy_chart(tmp_path / "c.zarr").to_dict()["layer"]
    assert sum(layer["mark"].get("type") == "text" for layer in layers) == 4  # one label per event
    stable = {r["event"] for r in kind(datasets(accuracy_chart(runs / "a.zarr")), "mark")}
    assert stable == {"memorization", "generalization"}  # sustained at the first crossing: no extra rule
