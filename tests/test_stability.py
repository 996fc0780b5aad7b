"""Known-answer tests for the stability measures: runs that grok and then collapse, dip, or stay grokked."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from grokscope.analysis.measures.onset import Criteria
from grokscope.analysis.measures.stability import StabilityRule, spike_episodes, stability, sustained_step
from grokscope.analysis.runners.summary import summarize_run
from grokscope.cli.main import app
from grokscope.errors import ConfigError
from grokscope.store.reader import RunStore
from grokscope.store.writer import RunWriter

NAN = np.nan
STEPS = np.arange(20) * 100  # 20 evaluations, 100 steps apart
TRAIN = np.ones(20)


def measures(test_acc, train_acc=TRAIN, steps=STEPS, criteria=Criteria(), **rule):
    curves = {"train_acc": np.asarray(train_acc, float), "test_acc": np.asarray(test_acc, float)}
    return stability(steps, curves, criteria, StabilityRule(**rule))


def test_reaches_the_threshold_once_then_sits_at_chance():
    test = np.r_[np.full(5, 0.01), 0.95, np.full(14, 0.01)]  # 0.95 at step 500 only
    s = measures(test)
    assert s.sustained_generalization_step is None
    assert s.min_test_acc_after_generalization == 0.01
    assert (s.dips_after_generalization, s.stable) == (14, False)
    assert s.collapse_step is None and s.loss_spikes is None  # train accuracy stays 1; no train loss logged


def test_dip_below_one_half_for_three_evaluations():
    test = np.r_[np.full(5, 0.1), np.full(5, 0.99), np.full(3, 0.4), np.full(7, 0.99)]
    s = measures(test)
    assert s.sustained_generalization_step == 500  # evaluations 5…9 all pass (K = 5)
    assert (s.dips_after_generalization, s.stable, s.min_test_acc_after_generalization) == (3, False, 0.4)
    assert measures(test, sustain_evals=6).sustained_generalization_step == 1300  # 5…10 hits the dip


def test_a_stable_run():
    test = np.r_[np.full(5, 0.1), np.full(15, 0.99)]
    s = measures(test)
    assert (s.sustained_generalization_step, s.dips_after_generalization, s.stable) == (500, 0, True)
    assert s.min_test_acc_after_generalization == 0.99 and s.collapse_step is None


def test_never_generalized_is_none_not_unstable():
    s = measures(np.full(20, 0.5))
    assert (s.sustained_generalization_step, s.dips_after_generalization, s.stable,
            s.min_test_acc_after_generalization) == (None, None, None, None)


def test_train_accuracy_collapse():
    train = np.r_[np.linspace(0.2, 0.9, 3), np.full(9, 1.0), np.full(8, 0.02)]  # memorized at 300, falls at 1200
    assert measures(np.full(20, 0.1), train_acc=train).collapse_step == 1200
    assert measures(np.full(20, 0.1), train_acc=train, collapse_train_acc=0.01).collapse_step is None
    dropped = train.copy()
    dropped[12] = NAN  # not evaluated at 1200: the next evaluation is the collapse
    assert measures(np.full(20, 0.1), train_acc=dropped).collapse_step == 1300


def test_two_loss_spikes_on_a_sparse_curve():
    loss = np.full(40, NAN)
    loss[::2] = np.r_[1.0, 0.5, 0.1, 0.05, 3.0, 2.0, 0.04, 0.02, 0.01, 0.5, 0.01, 0.005, 0.004, 0.003, 0.002,
                      0.002, 0.001, 0.001, 0.001, 0.001]  # spikes at evaluations 4–5 (×60) and 9 (×50)
    assert spike_episodes(loss) == 2
    assert spike_episodes(loss, factor=55) == 1  # the second (×50) no longer counts
    curves = {"train_acc": np.ones(40), "test_acc": np.ones(40), "train_loss": loss}
    assert stability(np.arange(40), curves).loss_spikes == 2


def test_sustain_steps_on_irregular_evaluations():
    steps = np.array([0, 10, 30, 70, 150, 310, 320, 330, 1000])
    passed = np.array([0, 1, 1, 1, 0, 1, 1, 1, 1], bool)
    assert sustained_step(steps, passed, window=50) == 10  # 10, 30 (and the run reaches 70 ≥ 60)
    assert sustained_step(steps, passed, window=140) == 310  # from 10, 30 or 70 the window holds 150 (fails)
    assert sustained_step(steps, passed, window=690) == 310  # 1000 ≥ 310 + 690: observed just long enough
    assert sustained_step(steps, passed, window=691) is None  # not observed 691 steps after 310
    assert sustained_step(steps, passed, evals=4) == 310 and sustained_step(steps, passed, evals=5) is None


def test_loss_criteria_replace_the_accuracy_ones():
    test_loss = np.r_[np.full(5, 3.0), np.full(5, 0.005), 0.5, np.full(9, 0.005)]
    train_loss = np.r_[np.full(2, 2.0), np.full(10, 1e-3), np.full(8, 0.5)]  # memorized at 200, > 0.01 at 1200
    criteria = Criteria(train_loss_below=1e-3, test_loss_below=0.01)
    s = stability(STEPS, {"train_loss": train_loss, "test_loss": test_loss}, criteria)
    assert (s.sustained_generalization_step, s.dips_after_generalization, s.stable) == (500, 1, False)
    assert s.max_test_loss_after_generalization == 0.5 and s.min_test_acc_after_generalization is None
    assert s.collapse_step == 1200  # 0.5 > 10 × 1e-3
    assert stability(STEPS, {"train_loss": train_loss, "test_loss": test_loss}, criteria,
                     StabilityRule(collapse_train_loss=1.0)).collapse_step is None
    assert s.loss_spikes == 1  # 1e-3 → 0.5


@pytest.mark.parametrize("rule, fragment", [
    ({"sustain_evals": 0}, "sustain-evals"), ({"sustain_steps": -1.0}, "sustain-steps"),
    ({"collapse_train_acc": 0.0}, "collapse-train-acc"), ({"spike_factor": 1.0}, "spike-factor"),
])
def test_bad_rules_are_config_errors(rule, fragment):
    with pytest.raises(ConfigError, match=fragment):
        StabilityRule(**rule)


def write_run(path, train_acc, test_acc, train_loss):
    n = len(train_acc)
    writer = RunWriter(path, attrs={"config": {"n_train": 100}}, n_steps=n,
                       metrics={"train_acc": (), "test_acc": (), "train_loss": ()}, params=[],
                       ckpt_steps=np.array([], np.int64), step_values=np.arange(n) * 10)
    writer.write_metrics(0, {"train_acc": train_acc, "test_acc": test_acc, "train_loss": train_loss})
    writer.finalize()
    return path


def test_rows_table_and_cli_flags(tmp_path, assert_one_line_error):
    """Collapsing AdamW-like run: groks at evaluation 5, sits at chance from 8, train accuracy collapses."""
    train = np.r_[np.full(3, 0.5), np.full(7, 1.0), np.full(10, 0.1)]
    test = np.r_[np.full(5, 0.1), np.full(3, 0.97), np.full(12, 0.01)]
    loss = np.r_[np.full(10, 0.01), np.full(10, 2.0)]
    path = write_run(tmp_path / "adamw.zarr", train, test, loss)
    row = summarize_run(RunStore(path))
    assert row["generalization_step"] == 50 and row["sustained_generalization_step"] is None
    assert (row["dips_after_generalization"], row["stable"], row["collapse_step"], row["loss_spikes"]) == (
        12, False, 100, 1)
    runner = CliRunner()
    out = runner.invoke(app, ["analyze", str(path), "--json", "--sustain-evals", "3"])
    assert out.exit_code == 0, out.stderr
    assert json.loads(out.stdout)[0]["sustained_generalization_step"] == 50
    table = runner.invoke(app, ["analyze", str(path)])
    assert all(h in table.stdout for h in ("sustained@", "stable", "dips", "collapse@", "spikes"))
    csv = runner.invoke(app, ["analyze", str(path), "--csv"]).stdout.splitlines()[0].split(",")
    assert {"min_test_acc_after_generalization", "collapse_step", "loss_spikes"} <= set(csv)
    assert_one_line_error(runner.invoke(app, ["analyze", str(path), "--sustain-evals", "3",
                                              "--sustain-steps", "10"]), "not both")
    assert_one_line_error(runner.invoke(app, ["analyze", str(path), "--spike-factor", "0.5"]), "spike-factor")


def test_a_loss_logged_as_zero_is_no_baseline_for_spikes():
    """An import that rounds (``0.0000``) or a float32 log: after the loss reaches 0, tiny values are not
    spikes; a real slingshot from 1e-7 to 1e-2 still is."""
    rounded = np.array([2.0, 0.5, 0.0, 1e-9, 0.0, 1e-9, 0.0, 1e-9])
    assert spike_episodes(rounded, 10.0, floor=1e-6) == 0
    assert spike_episodes(rounded, 10.0) == 3  # without a floor every 1e-9 after a 0 counts
    slingshot = np.array([1.0, 1e-3, 1e-7, 1e-2, 1e-7, 1.2e-7, 0.9e-7])
    assert spike_episodes(slingshot, 10.0, floor=1e-6) == 1
    assert StabilityRule().spike_floor == 1e-6
