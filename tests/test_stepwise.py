"""Step-wise analysis (seed 002 App. F) and the grouping of sweep runs, on curves with known crossings."""

import numpy as np
import pandas as pd
import pytest

from grokscope.analysis.runners.stepwise import (
    ACC_THRESHOLDS,
    RunCurves,
    first_crossings,
    generalization_steps,
    loss_thresholds,
    peak_size,
    prepare_curve,
    summarize_stepwise,
    tabulate_runs,
)
from grokscope.errors import GrokscopeError


def ramp(n_steps, start, final=1.0):
    """0 until ``start``, then +0.01 per step up to ``final``: k/10 is first reached at start + 10k."""
    s = np.arange(n_steps)
    return np.clip(np.minimum(final, (s - start) / 100), 0, None)


def step(n_steps, at):
    acc = np.zeros(n_steps)
    acc[at:] = 1.0
    return acc


def test_default_thresholds_are_exact_tenths():
    assert ACC_THRESHOLDS == (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    assert loss_thresholds(0.1) == pytest.approx((25.6, 12.8, 6.4, 3.2, 1.6, 0.8, 0.4, 0.2, 0.1))


@pytest.mark.parametrize("final, expected", [
    (1.0, [1010, 1020, 1030, 1040, 1050, 1060, 1070, 1080, 1090]),  # every tenth 10 steps apart
    (0.55, [1010, 1020, 1030, 1040, 1050] + [np.nan] * 4),  # never reached: missing, never 0
    (0.05, [np.nan] * 9),  # nothing reached
])
def test_first_crossings_of_a_ramp(final, expected):
    got = first_crossings(np.arange(2000), ramp(2000, 1000, final), ACC_THRESHOLDS)
    np.testing.assert_array_equal(got, expected)


def test_loss_crossings_are_at_or_below_and_skip_unevaluated_steps():
    steps = np.arange(6) * 10
    loss = np.array([4.0, np.nan, 2.0, 0.5, 0.1, 0.05])
    got = first_crossings(steps, loss, [3.0, 0.5, 0.01], below=True)
    np.testing.assert_array_equal(got, [20, 30, np.nan])


def test_clip_drops_later_steps():
    acc = ramp(2000, 1000)
    got = first_crossings(np.arange(2000), acc, [0.5, 0.9], clip=1060)
    np.testing.assert_array_equal(got, [1050, np.nan])


def test_gaussian_smoothing_of_a_step_is_symmetric_about_it():
    # A 0→1 step at T smoothed with a symmetric kernel: s(T−1−k) = 1 − s(T+k), so the 0.5 crossing stays at
    # T and the 0.1 and 0.9 crossings are mirror images, T ∓ k*, with k* ≈ 1.28 σ.
    steps, T, sigma = np.arange(1000), 500, 50
    c = first_crossings(steps, step(1000, T), [0.1, 0.5, 0.9], sigma=sigma)
    assert c[1] == T and c[0] + c[2] == 2 * T
    assert abs((c[2] - T) - 1.2816 * sigma) <= 2
    np.testing.assert_array_equal(first_crossings(steps, step(1000, T), [0.5, 0.9]), [T, T])  # σ = 0: raw


def test_sigma_is_in_steps_when_evaluated_every_k_steps():
    every_step = first_crossings(np.arange(1000), step(1000, 500), [0.5, 0.9], sigma=50)
    sparse = np.full(1000, np.nan)
    sparse[::10] = step(1000, 500)[::10]  # evaluated every 10 steps (eval_every = 10): σ = 5 samples
    got = first_crossings(np.arange(1000), sparse, [0.5, 0.9], sigma=50)
    assert got[0] == 500 and abs(got[1] - every_step[1]) < 10  # 0.9: within one evaluation interval
    kept_steps, _ = prepare_curve(np.arange(1000), sparse, sigma=50)
    assert kept_steps.tolist() == list(range(0, 1000, 10))


def tidy_stepwise():
    """Two seeds per size: 100 never reaches 0.1; 200 tops out at 0.55; 400 and 800 reach 1 (seed 1 of 400
    only 0.85); seed 1 starts 200 steps after seed 0."""
    rows = []
    for n, start, finals in ((100, 0, (0.05, 0.05)), (200, 3000, (0.55, 0.55)), (400, 2000, (1.0, 0.85)),
                             (800, 500, (1.0, 1.0))):
        for seed in (0, 1):
            acc = ramp(4001, start + 200 * seed, finals[seed])
            got = first_crossings(np.arange(4001), acc, ACC_THRESHOLDS)
            rows += [{"model": "m", "model_size": 1000.0, "n_train": n, "seed": seed, "threshold": th,
                      "step": s} for th, s in zip(ACC_THRESHOLDS, got)]
    return pd.DataFrame(rows)


def test_mean_over_seeds_that_reached_and_generalization_steps():
    summary = summarize_stepwise(tidy_stepwise())
    at = summary.set_index(["n_train", "threshold"])
    assert at.loc[(400, 0.5), "step"] == 2150  # (2050 + 2250) / 2
    assert at.loc[(400, 0.9), "step"] == 2090 and at.loc[(400, 0.9), "n_reached"] == 1  # seed 1 missed it
    assert np.isnan(at.loc[(100, 0.1), "step"]) and at.loc[(100, 0.1), "n_runs"] == 2
    gen = generalization_steps(summary).set_index("n_train")
    assert np.isnan(gen.loc[100, "step"])
    assert (gen.loc[200, "step"], gen.loc[200, "threshold"]) == (3150, 0.5)  # the highest reached: 0.5
    # 400: the largest mean is at 0.8, (2080 + 2280) / 2, above 0.9's 2090 that only seed 0 reached
    assert (gen.loc[400, "step"], gen.loc[400, "threshold"], gen.loc[800, "step"]) == (2180, 0.8, 690)
    assert peak_size(gen.index.to_numpy(), gen["step"].to_numpy()) == 200  # the peak marks the CDS
    assert peak_size(np.array([1, 2]), np.array([np.nan, np.nan])) is None


# --- grouping runs ----------------------------------------------------------------------------------------


def curves(name, *, n_params=1000, **config):
    base = dict(task="modular", op="+", p=97, input_format="nanda", n_train=100, frac=0.1, d_model=16,
                n_layers=1, seed=0)
    return RunCurves(name, {**base, **config}, np.arange(3), np.zeros(3), None, n_params)


def test_groups_share_everything_but_data_size_and_seed():
    grid = [(16, 100, 0, "cpu"), (16, 200, 1, "cuda"), (32, 100, 0, "cpu")]
    runs = [curves(f"r{i}", d_model=d, n_train=n, seed=s, device=dev)
            for i, (d, n, s, dev) in enumerate(grid)]
    table, axis, model_axis = tabulate_runs(runs)
    assert (axis, model_axis) == ("n_train", "n_params")
    assert table["model"].tolist() == ["d_model=16", "d_model=16", "d_model=32"]  # device is ignored
    assert table["setting"].tolist() == ["", "", ""]
    table, _, _ = tabulate_runs([curves("a", weight_decay=1.0), curves("b", weight_decay=0.1)])
    assert table["model"].tolist() == ["weight_decay=1.0", "weight_decay=0.1"]
    assert table["setting"].tolist() == ["weight_decay=1.0", "weight_decay=0.1"]


def test_size_and_model_axes_fall_back():
    runs = [curves(name, n_train=None, frac=frac, n_params=None) for name, frac in (("a", 0.2), ("b", 0.4))]
    table, axis, model_axis = tabulate_runs(runs)
    assert (axis, model_axis) == ("frac", "d_model") and table["frac"].tolist() == [0.2, 0.4]
    table, _, model_axis = tabulate_runs([curves("a", width=7)], model_size="width")
    assert model_axis == "width" and table["model_size"].tolist() == [7.0]


def test_runs_without_seeds_are_numbered_as_replicates():
    runs = [curves("a", seed=None), curves("b", seed=None), curves("c", seed=None, n_train=9)]
    table, _, _ = tabulate_runs(runs)
    assert table["seed"].tolist() == [0, 1, 0]


@pytest.mark.parametrize("runs, fragments", [
    ([curves("a.zarr", p=97), curves("b.zarr", p=113)], ["p is 97 in a.zarr but 113 in b.zarr"]),
    ([curves("a", op="+"), curves("b", op="-")], ["op is '+'", "'-'"]),
    ([curves("a", input_format="zhu"), curves("b")], ["input_format"]),
    ([RunCurves("a", {"n_train": 1}, np.arange(2), np.zeros(2), test_set="abc"),
      RunCurves("b", {"n_train": 2}, np.arange(2), np.zeros(2), test_set="def")], ["test set is 'abc'"]),
    ([curves("a", frac=None), curves("b", n_train=None)],
     ["mix data sizes", "a has only n_train", "b only frac"]),
    ([curves("a", frac=None, n_train=None)], ["a: config has neither n_train nor frac"]),
    ([curves("a"), curves("b")], ["two runs of one model, data size and seed: a and b"]),
    ([curves("a")], ["config has no 'width'"]),
    ([], ["no runs"]),
])
def test_refusals_name_the_problem(runs, fragments):
    with pytest.raises(GrokscopeError) as info:
        tabulate_runs(runs, model_size="width" if "width" in fragments[0] else None)
    for fragment in fragments:
        assert fragment in str(info.value)
