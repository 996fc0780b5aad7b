"""Critical data size: Definition 1, the bootstrap CI, the grokking-time and power-law fits, the estimator.

Every expected number follows from how the curves were built: step curves whose final accuracy is 0 or 1
per seed, generalization steps drawn from t = a·r^(−γ) + b, CDS values drawn from c·N^β.
"""

import json

import numpy as np
import pytest
from scipy import stats

from grokscope.analysis.measures.onset import Criteria
from grokscope.analysis.runners.cds import (
    CDSAnalysis,
    bootstrap_cds,
    critical_data_size,
    fit_grokking_time,
    fit_power_law,
    percentile_interval,
)
from grokscope.analysis.runners.stepwise import RunCurves
from grokscope.cli.output import print_json
from grokscope.errors import ConfigError, GrokscopeError

LOG2 = np.log(2.0)


@pytest.mark.parametrize("sizes, scores, epsilon, interpolation, expected", [
    ([100, 200, 400], [0, .5, 1], .75, "log", 200 * 2**0.5),  # halfway in log n between 200 and 400
    ([100, 200, 400], [0, .5, 1], .75, "linear", 300),  # halfway in n
    ([100, 200, 400], [0, .95, 1], .95, "log", 200),  # ε met exactly at a grid point
    ([100, 200, 400], [0, np.nan, 1], .5, "linear", 250),  # a size without runs is skipped
    ([100, 200, 300, 400], [0, .96, .5, 1], .95, "linear", 100 + 100 * .95 / .96),  # the first crossing
    ([100, 200, 400], [.96, 1, 1], .95, "log", 100),  # reached at the smallest size: that size
    ([100, 200, 400], [0, .5, .9], .95, "log", np.nan),  # never reached
])
def test_definition_1(sizes, scores, epsilon, interpolation, expected):
    got = critical_data_size(sizes, scores, epsilon, interpolation=interpolation)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_columns_are_independent_curves():
    cols = np.array([[0, .5, 1], [0, .96, 1], [.2, .3, .4]]).T  # (K=3, B=3)
    got = critical_data_size([100, 200, 400], cols, 0.95)
    expected = [critical_data_size([100, 200, 400], cols[:, b], 0.95) for b in range(3)]
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_identical_seeds_collapse_the_interval():
    scores = np.repeat(np.array([[0.0], [0.5], [1.0]]), 4, axis=1)  # (K=3, S=4), every seed alike
    reps = bootstrap_cds([100, 200, 400], scores, 0.95, n_bootstrap=200)
    point = 200 * 2**0.9
    np.testing.assert_allclose(reps, point, rtol=1e-12)
    lo, hi = percentile_interval(reps)
    assert lo == pytest.approx(point, rel=1e-12) and hi == pytest.approx(point, rel=1e-12)


def test_two_seeds_that_straddle_epsilon_give_known_ends():
    # Seed A generalizes from n=200, seed B from n=400.  Resampling gives AA (CDS 100·2^0.95), AB/BA (the
    # point, 200·2^0.9) or BB (200·2^0.95), each end with probability 1/4 ≫ 2.5%: the 95% interval is exactly
    # the two ends.
    scores = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])  # (K=3, S=2)
    mean = scores.mean(axis=1)
    assert float(critical_data_size([100, 200, 400], mean, .95)) == pytest.approx(200 * 2**0.9, rel=1e-12)
    reps = bootstrap_cds([100, 200, 400], scores, 0.95, n_bootstrap=1000, seed=0)
    values = np.unique(np.round(reps, 6))
    np.testing.assert_allclose(values, [100 * 2**0.95, 200 * 2**0.9, 200 * 2**0.95], rtol=1e-8)
    lo, hi = percentile_interval(reps, 0.95)
    assert lo == pytest.approx(100 * 2**0.95, rel=1e-12) and hi == pytest.approx(200 * 2**0.95, rel=1e-12)
    assert np.array_equal(reps, bootstrap_cds([100, 200, 400], scores, 0.95, seed=0))  # fixed rng seed


def test_replicates_that_never_reach_leave_the_upper_end_open():
    scores = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 0.9]])  # seed B never generalizes: BB never reaches ε
    lo, hi = percentile_interval(bootstrap_cds([100, 200, 400], scores, 0.95))
    assert lo == pytest.approx(100 * 2**0.95, rel=1e-12) and hi is None
    assert percentile_interval(np.array([np.nan, np.nan])) == (None, None)


def test_grokking_time_fit_recovers_gamma():
    r = np.array([0.2, 0.3, 0.5, 0.8, 1.0])
    fit = fit_grokking_time(r, 40 * r**-1.5 + 100)
    assert (fit.a, fit.gamma, fit.b) == pytest.approx((40, 1.5, 100), abs=1e-6)
    assert fit.gamma_hi - fit.gamma_lo < 1e-6 and fit.n_points == 5  # exact data: no uncertainty
    n = 5000 * r  # the same runs on an n axis: γ and b unchanged, a = 40·5000^1.5
    fit_n = fit_grokking_time(n, 40 * r**-1.5 + 100)
    assert (fit_n.gamma, fit_n.b) == pytest.approx((1.5, 100), abs=1e-6)
    assert fit_n.a == pytest.approx(40 * 5000**1.5, rel=1e-6)
    with pytest.raises(GrokscopeError, match="3 or more data sizes, got 2"):
        fit_grokking_time([0.5, 0.5, 1.0], [3.0, 3.0, 2.0])


def test_power_law_fit_and_its_t_interval():
    n = np.array([1e3, 4e3, 1.6e4])
    fit = fit_power_law(n, 10 * n**0.5)
    assert (fit.coefficient, fit.exponent) == pytest.approx((10, 0.5), abs=1e-9)
    assert fit.exponent_lo == pytest.approx(0.5, abs=1e-9) and fit.exponent_hi == pytest.approx(0.5, abs=1e-9)
    # Residuals ±d·(1, −2, 1) in log y are orthogonal to the line: the slope stays 0.5, SSE = 6d²,
    # Sxx = 2·(ln 4)², so SE = √(6d² / 1 / (2 (ln 4)²)) = √3·d / ln 4 and the 95% half-width is t_{1}·SE.
    d = 0.01
    noisy = fit_power_law(n, 10 * n**0.5 * np.exp(d * np.array([1, -2, 1])))
    se = np.sqrt(3) * d / np.log(4)
    assert noisy.exponent == pytest.approx(0.5, abs=1e-12)
    assert noisy.exponent_se == pytest.approx(se, rel=1e-9)
    assert noisy.exponent_hi - 0.5 == pytest.approx(stats.t.ppf(0.975, 1) * se, rel=1e-9)
    two = fit_power_law(n[:2], 10 * n[:2] ** 0.5)
    assert two.exponent == pytest.approx(0.5) and np.isnan(two.exponent_lo)


# --- the estimator on constructed runs -------------------------------------------------------------------

SIZES = (100, 200, 400, 800, 1600)


def step_acc(n_steps, at):
    acc = np.zeros(n_steps)
    if at is not None:
        acc[at:] = 1.0
    return acc


def time_of(n):
    return int(10 * (1600 / n) ** 2 + 20)  # t = a·r^(−2) + b with r = n/1600, a = 10, b = 20: all integers


def sweep(first_sizes=((200, 400), (400, 800), (800, 1600)), n_steps=2600):
    """Three models (n_params 1000, 4000, 16000; d_model 16, 32, 64), two seeds; seed s of model m generalizes
    (test acc 0 → 1 at step time_of(n)) from size first_sizes[m][s] on, else stays at 0."""
    runs = []
    for (n_params, d_model), firsts in zip(((1000, 16), (4000, 32), (16000, 64)), first_sizes):
        for n in SIZES:
            for seed, first in enumerate(firsts):
                at = time_of(n) if n >= first else None
                config = dict(task="modular", op="+", p=97, input_format="nanda", n_train=n, frac=n / 1600,
                              d_model=d_model, n_layers=1, seed=seed)
                runs.append(RunCurves(f"d{d_model}_n{n}_s{seed}", config, np.arange(n_steps),
                                      step_acc(n_steps, at), None, n_params))
    return runs


@pytest.fixture(scope="module")
def fitted():
    return CDSAnalysis().fit(sweep())


def test_cds_and_ci_per_model(fitted):
    cds = fitted.cds_.set_index("n_params")
    for n_params, base in ((1000, 100), (4000, 200), (16000, 400)):  # the straddle, one size up per model
        row = cds.loc[n_params]
        assert row["cds"] == pytest.approx(2 * base * 2**0.9, rel=1e-12)
        ci = (base * 2**0.95, 2 * base * 2**0.95)
        assert (row["cds_lo"], row["cds_hi"]) == pytest.approx(ci, rel=1e-12)
        assert not row["censored"] and row["reason"] is None
    assert fitted.size_axis_ == "n_train" and fitted.model_size_axis_ == "n_params"


def test_scaling_exponent_vs_n_params_and_d_model(fitted):
    fits = fitted.scaling_fit_.set_index("x")
    # CDS doubles as n_params quadruples (β = 1/2) and as d_model doubles (β = 1)
    assert fits.loc["n_params", "exponent"] == pytest.approx(0.5, abs=1e-6)
    assert fits.loc["n_params", "coefficient"] == pytest.approx(200 * 2**0.9 / 1000**0.5, rel=1e-6)
    assert fits.loc["d_model", "exponent"] == pytest.approx(1.0, abs=1e-6)
    assert fits.loc["n_params", "exponent_hi"] - fits.loc["n_params", "exponent_lo"] < 1e-6


def test_grokking_time_gamma_from_runs(fitted):
    fits = fitted.time_fit_.set_index("model")
    # d_model=16 generalizes at 4 sizes, d_model=32 at 3: both recover γ = 2, b = 20, a = 10·1600²
    for model in ("d_model=16", "d_model=32"):
        assert fits.loc[model, "gamma"] == pytest.approx(2.0, abs=1e-6)
        assert fits.loc[model, "b"] == pytest.approx(20, abs=1e-4)
        assert fits.loc[model, "a"] == pytest.approx(10 * 1600**2, rel=1e-6)
    assert fits.loc["d_model=16", "n_points"] == 7  # seed 0 at 200…1600, seed 1 at 400…1600
    assert np.isnan(fits.loc["d_model=64", "gamma"]) and "got 2" in fits.loc["d_model=64", "reason"]


def test_stepwise_table_and_landscape(fitted):
    sw = fitted.stepwise_
    assert list(sw.columns) == ["model", "model_size", "n_train", "seed", "threshold", "step"]
    m16 = sw[sw["model"] == "d_model=16"].set_index(["n_train", "seed", "threshold"])["step"]
    assert m16.loc[(200, 0, 0.5)] == time_of(200) and np.isnan(m16.loc[(200, 1, 0.5)])  # missing, never 0
    assert sw["step"].isna().sum() == 9 * (3 + 5 + 7)  # runs that never generalize: every threshold
    assert (sw["step"] != 0).all()
    gen = fitted.generalization_.set_index(["model", "n_train"])["step"]
    assert np.isnan(gen.loc[("d_model=16", 100)]) and gen.loc[("d_model=16", 200)] == time_of(200)
    assert fitted.cds_.set_index("n_params").loc[1000, "stepwise_peak"] == 200
    land = fitted.landscape_.set_index(["model", "n_train"])["accuracy"]
    assert list(fitted.landscape_.columns[:4]) == ["model", "model_size", "n_train", "accuracy"]
    assert land.loc[("d_model=32", 200)] == 0 and land.loc[("d_model=32", 400)] == 0.5


def test_never_reached_is_none_with_reason_and_censored_is_flagged():
    est = CDSAnalysis(n_bootstrap=50).fit(sweep(first_sizes=((100, 100), (400, 800), (1e9, 1e9))))
    cds = est.cds_.set_index("n_params")
    assert cds.loc[1000, "cds"] == 100 and cds.loc[1000, "censored"] and "at most" in cds.loc[1000, "reason"]
    assert np.isnan(cds.loc[16000, "cds"])
    assert "never reaches epsilon=0.95 (best 0 at" in cds.loc[16000, "reason"]
    assert np.isnan(cds.loc[16000, "cds_lo"]) and np.isnan(cds.loc[16000, "cds_hi"])
    never = est.to_dict()["models"][2]
    assert never["n_params"] == 16000 and never["cds"] is None and never["cds_ci"] == [None, None]
    fit = est.scaling_fit_.set_index("x").loc["n_params"]  # one usable model: no fit, and why
    assert np.isnan(fit["exponent"]) and "2 or more distinct model sizes" in fit["reason"]


def test_loss_criterion_uses_the_fraction_of_seeds_generalized():
    runs = []
    for n, generalized in ((100, 0), (200, 2), (400, 3)):
        for seed in range(3):
            loss = np.full(50, 3.0)
            if seed < generalized:
                loss[40:] = 0.01
            runs.append(RunCurves(f"n{n}s{seed}", dict(p=97, n_train=n, d_model=8, seed=seed), np.arange(50),
                                  None, loss, 500))
    est = CDSAnalysis(criteria=Criteria(test_loss_below=0.1), n_bootstrap=0).fit(runs)
    f = (0.95 - 2 / 3) / (1 / 3)  # fractions 0, 2/3, 1: ε is crossed between 200 and 400
    assert est.cds_["cds"].iloc[0] == pytest.approx(200 * 2**f, rel=1e-12)
    assert est.landscape_["accuracy"].tolist() == pytest.approx([0, 2 / 3, 1])
    assert est.stepwise_["threshold"].iloc[0] == pytest.approx(25.6)  # loss thresholds, first at or below
    assert est.runs_["generalization_step"].dropna().unique().tolist() == [40]
    with pytest.raises(ConfigError, match="logs no test_acc; use --test-loss-below"):
        CDSAnalysis().fit(runs)


def test_score_max_and_clip():
    curves = {100: np.zeros(10), 200: np.array([0, 0, 0, 0, 1.0, 1, 1, 1, 0.5, 0.5]), 400: np.ones(10)}
    runs = [RunCurves(f"n{n}", dict(p=97, n_train=n, d_model=8, seed=0), np.arange(10), acc, None, 500)
            for n, acc in curves.items()]
    final = CDSAnalysis(n_bootstrap=0).fit(runs).cds_["cds"].iloc[0]
    best = CDSAnalysis(n_bootstrap=0, score="max").fit(runs).cds_["cds"].iloc[0]
    clipped = CDSAnalysis(n_bootstrap=0, clip=6).fit(runs).cds_["cds"].iloc[0]
    assert final == pytest.approx(200 * 2 ** (0.45 / 0.5), rel=1e-12)  # final scores 0, 0.5, 1
    assert best == pytest.approx(100 * 2 ** 0.95, rel=1e-12) and clipped == best  # scores 0, 1, 1


@pytest.mark.parametrize("kwargs, message", [
    (dict(epsilon=0), "epsilon"), (dict(interpolation="cubic"), "interpolation"),
    (dict(score="mean"), "score"), (dict(n_bootstrap=-1), "bootstrap"), (dict(smoothing_sigma=-1.0), "sigma"),
    (dict(level=1.0), "level"),
])
def test_bad_parameters(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        CDSAnalysis(**kwargs).fit(sweep())


def test_to_dict_is_one_json_document(fitted, capsys):
    print_json(fitted.to_dict())
    doc = json.loads(capsys.readouterr().out)
    model = doc["models"][0]
    assert model["cds"] == pytest.approx(200 * 2**0.9) and model["cds_ci"] == pytest.approx(
        [100 * 2**0.95, 200 * 2**0.95])
    assert model["time_fit"]["gamma"] == pytest.approx(2.0, abs=1e-6)
    assert len(model["time_fit"]["gamma_ci"]) == 2
    scaling = {f["x"]: f for f in doc["scaling"]}
    assert scaling["n_params"]["exponent"] == pytest.approx(0.5, abs=1e-6)
    assert len(scaling["n_params"]["exponent_ci"]) == 2
    assert doc["models"][2]["time_fit"]["gamma"] is None  # NaN → null
    assert any(row["step"] is None for row in doc["stepwise"]) and doc["size_axis"] == "n_train"
