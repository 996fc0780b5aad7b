"""Distillation (seed 000): the KD loss formula, the shared singh vocabulary, the three setups' stores, and
the refusals, on tiny teachers trained for a few steps."""

import dataclasses
import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from grokscope import RunStore
from grokscope.cli.main import app
from grokscope.config.presets import from_preset
from grokscope.config.run import RunConfig
from grokscope.data.modular import build_task, encode, vocabulary
from grokscope.errors import ConfigError, GrokscopeError
from grokscope.report.builders import load_runs
from grokscope.report.page import build_chart
from grokscope.trainers import train
from grokscope.trainers.distill import distill, distill_config, forgetting_summary, load_teacher
from grokscope.trainers.losses import kd_loss, kl_divergence, loss_fn
from grokscope.trainers.probe import load_model
from grokscope.trainers.recording import BATCH_METRICS, SCALARS

runner = CliRunner()
TINY = dict(moduli="11,13", d_model=16, d_mlp=64, steps=4, batch_size=None)  # singh2025, shrunk


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def teachers(tmp_path_factory):
    """Two teachers sharing one vocabulary: p = 13 and p = 11."""
    root = tmp_path_factory.mktemp("teachers")
    return {p: train(from_preset("singh2025", p=p, **TINY), root / f"t{p}.zarr") for p in (13, 11)}


# --- the loss ----------------------------------------------------------------------------------------------


def test_kd_loss_equals_its_formula_on_hand_made_logits():
    teacher = torch.tensor([[0.0, math.log(3.0)], [0.0, 0.0]], dtype=torch.float64)  # q_T = (1/4, 3/4), (1/2, 1/2)
    student = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]], dtype=torch.float64)  # q_S = (1/2, 1/2), (3/4, 1/4)
    kl_rows = [0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5),
               0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)]
    loss, kl = kd_loss(torch.tensor(2.0, dtype=torch.float64), teacher, student, alpha=0.25)
    assert math.isclose(float(kl), sum(kl_rows) / 2, rel_tol=1e-12)
    assert math.isclose(float(loss), 0.75 * 2.0 + 0.25 * sum(kl_rows) / 2, rel_tol=1e-12)
    # temperature divides the logits before the softmax: doubled logits at t = 2 give the same q
    assert math.isclose(float(kl_divergence(2 * teacher, 2 * student, temperature=2.0)), float(kl), rel_tol=1e-12)
    assert float(kl_divergence(teacher, teacher)) == 0.0


def test_forgetting_summary_known_curve():
    acc = np.array([1.0, np.nan, 0.4, 0.7, np.nan, 0.9])
    assert forgetting_summary(np.arange(6), acc) == {"initial_acc": 1.0, "min_acc": 0.4, "min_step": 2,
                                                     "max_drop": 0.6, "final_acc": 0.9}


# --- the singh format ----------------------------------------------------------------------------------------


def test_singh_format_shares_one_vocabulary_across_moduli():
    vocab = vocabulary("+", 11, "singh", (13, 11))
    assert vocab == tuple(map(str, range(13))) + ("@", "mod11", "mod13")  # 0 … 12, @, one token per modulus
    assert vocab == vocabulary("-", 13, "singh", (11, 13))
    assert encode(np.array([[3, 4]]), 11, "+", "singh", (11, 13)).tolist() == [[3, 4, 13, 14]]
    assert encode(np.array([[3, 4]]), 13, "+", "singh", (11, 13)).tolist() == [[3, 4, 13, 15]]
    task = build_task(RunConfig(input_format="singh", p=11, moduli="13, 11"))
    assert task.seq_len == 4 and task.vocab_size == 16 and task.targets.max() == 10


@pytest.mark.parametrize("kwargs, message", [
    (dict(input_format="singh", p=11, moduli="13"), "not among moduli"),
    (dict(input_format="zhu", p=11, moduli="11"), "applies to input_format singh"),
    (dict(input_format="singh", p=11, moduli="11,x"), "integers"),
    (dict(kd_alpha=0.3), "applies to distillation runs only"),
    (dict(kd_setup="single"), "needs a teacher"),
    (dict(kd_setup="single", teacher="t", input_format="singh", kd_alpha=1.0), "never trains the answer"),
    (dict(kd_setup="single", teacher="t", teacher2="u"), "two teachers"),
])
def test_bad_distillation_configs_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig(**kwargs)
    assert RunConfig(input_format="singh", p=11, moduli="13 11").moduli == "11,13"  # canonical: ascending


# --- the setups ----------------------------------------------------------------------------------------------


def test_distill_with_alpha_zero_is_plain_training(teachers, tmp_path):
    t13 = load_teacher(teachers[13])
    student = distill_config(t13.cfg, p=11, kd_setup="single", teacher=str(teachers[13]), kd_alpha=0.0,
                             steps=6, batch_size=16, eval_every=2)
    assert student.n_train == round(student.frac * 60) and student.d_model == 16  # 60 = pool of p = 11
    plain = dataclasses.replace(student, kd_setup="none", teacher=None, kd_alpha=RunConfig.kd_alpha)
    kd, ref = RunStore(distill(student, tmp_path / "kd.zarr")), RunStore(train(plain, tmp_path / "plain.zarr"))
    for name in (*SCALARS, *BATCH_METRICS):  # mini-batched: train_* on the whole set at eval steps
        assert np.allclose(kd.read(name), ref.read(name), rtol=1e-5, atol=1e-8, equal_nan=True), name
    assert np.array_equal(kd.read("train_ce"), kd.read("batch_loss"))  # L = CE when α = 0 (batch terms)
    assert np.isnan(kd.read("train_loss")[1::2]).all() and np.isfinite(kd.read("train_loss")[::2]).all()
    assert kd.config["teacher"] == str(teachers[13]) and kd.config["teacher_ckpt"] == -1
    assert kd.attrs["distill"]["teachers"][0]["ckpt"] == RunStore(teachers[13]).n_ckpts - 1


def test_continual_starts_from_the_teacher_and_logs_the_previous_task_every_eval(teachers, tmp_path):
    out = tmp_path / "continual.zarr"
    result = run("distill", "--teacher", teachers[13], "--continual", "--p", 11, "--steps", 6, "--eval-every", 3,
                 "--quiet", "-o", out)
    assert result.exit_code == 0, result.stderr
    assert "forgetting of p=13" in result.stderr
    store = RunStore(out)
    p1, test = store.read("p1_test_acc"), store.read("test_acc")
    assert np.isfinite(p1).tolist() == np.isfinite(test).tolist() == [s % 3 == 0 for s in range(7)]
    # step 0 is the teacher itself: its own final test accuracy, and nothing to distil yet
    assert p1[0] == RunStore(teachers[13]).read("test_acc")[-1]
    assert abs(store.read("train_kl")[0]) < 1e-9
    f = store.attrs["forgetting"]
    assert f["initial_acc"] == p1[0] and math.isclose(f["max_drop"], max(0.0, p1[0] - np.nanmin(p1)))
    assert store.config["kd_setup"] == "continual" and store.config["p"] == 11
    # the report's forgetting chart: the previous task's accuracy next to the own task's
    values = next(iter(build_chart("forgetting", load_runs([out])).to_dict()["datasets"].values()))
    assert {v["split"] for v in values} == {"test", "previous task (p1)"}
    shown = sorted((v["step"], v["value"]) for v in values if v["split"] == "previous task (p1)")
    assert shown == [(s, pytest.approx(p1[s], rel=1e-5)) for s in (0, 3, 6)]
    with pytest.raises(GrokscopeError, match="does not apply"):
        build_chart("forgetting", load_runs([teachers[13]]))


def test_joint_trains_on_both_tasks_training_sets(teachers, tmp_path):
    out = tmp_path / "joint.zarr"
    result = run("distill", "--teacher", teachers[13], "--teacher", teachers[11], "--joint", "--d-model", 32,
                 "--kd-alpha", 0, "--steps", 2, "--quiet", "-o", out)
    assert result.exit_code == 0, result.stderr
    store = RunStore(out)
    assert store.config["d_model"] == 32 and store.config["d_mlp"] == 128  # resolved again for the student
    model, cfg = load_model(store, 0)
    x, y = [], []
    for path in (teachers[13], teachers[11]):  # the union: each teacher's own training set
        task, idx = build_task(RunConfig.from_dict(RunStore(path).config)), RunStore(path).read("train_idx")
        x.append(task.tokens[idx])
        y.append(task.targets[idx])
    with torch.no_grad():
        logits = model(torch.as_tensor(np.concatenate(x)))
    expected = loss_fn(cfg)(logits, torch.as_tensor(np.concatenate(y)))  # the teachers' StableMax CE
    assert math.isclose(store.read("train_loss")[0], float(expected), rel_tol=1e-6)
    assert np.isfinite(store.read("p1_test_acc")).all()


class _Stop(Exception):
    pass


@pytest.mark.parametrize("setup, values", [
    ("single", dict(batch_size=16, eval_every=3)),  # mini-batches: the batch order must survive the resume
    ("joint", dict(kd_position="answer", kd_alpha=0.7, d_model=32)),  # two teachers, the union of both sets
    ("continual", dict(batch_size=16, eval_every=4)),  # the teacher's weights, p1 evaluated, forgetting
])
def test_a_stopped_distilled_run_resumes_bit_for_bit(teachers, tmp_path, monkeypatch, setup, values):
    """Stopped after its first flush, then resumed with ``grokscope train --resume`` (the teachers reloaded
    from the config's paths, their targets recomputed): the store equals the uninterrupted run's, every
    per-step array, checkpoint and distillation attribute, bit for bit."""
    monkeypatch.setattr("grokscope.trainers.recording.FLUSH_ROWS", 16)
    cfg = distill_config(load_teacher(teachers[11 if setup == "joint" else 13]).cfg, p=11, kd_setup=setup,
                         teacher=str(teachers[13]), teacher2=str(teachers[11]) if setup == "joint" else None,
                         steps=50, **values)

    def stop(step, latest):
        raise _Stop

    cut = tmp_path / "cut.zarr"
    with pytest.raises(_Stop):
        distill(cfg, cut, on_flush=stop)
    stopped = RunStore(cut)
    assert stopped.status == "running" and 0 < stopped.n_steps < 50
    assert stopped.attrs["committed"]["resume"]["step"] == stopped.n_steps - 1  # it continues, not restarts
    result = run("train", "--resume", cut, "--quiet")
    assert result.exit_code == 0, result.stderr
    resumed, whole = RunStore(cut), RunStore(distill(cfg, tmp_path / "whole.zarr"))
    assert resumed.status == whole.status == "complete" and resumed.n_steps == whole.n_steps == 51
    names = [*SCALARS, "param_norm", "train_ce", "train_kl", *(BATCH_METRICS if "batch_size" in values else ()),
             *(("p1_test_loss", "p1_test_acc") if setup != "single" else ())]
    for name in names:
        assert np.array_equal(resumed.read(name), whole.read(name), equal_nan=True), name
    assert resumed.n_ckpts == whole.n_ckpts
    for name in whole.param_names():
        assert np.array_equal(resumed.read_param(name), whole.read_param(name)), name
    for key in ("distill", "forgetting"):
        assert resumed.attrs.get(key) == whole.attrs.get(key), key


# --- refusals: one line, exit 2, nothing written ----------------------------------------------------------


@pytest.mark.parametrize("args, fragment", [
    (["--p", 17, "--moduli", "13,17"], "does not cover the student's task"),
    (["--p", 17], "not among moduli"),
    (["--joint"], "two --teacher stores"),
    (["--p", 11, "--kd-alpha", 1], "never trains the answer"),
    (["--continual", "--p", 11, "--d-model", 32], "starts from the teacher's weights"),
    (["--teacher-ckpt", 99, "--p", 11], "out of range"),
])
def test_distill_refusals_are_one_line_errors(teachers, tmp_path, assert_one_line_error, args, fragment):
    out = tmp_path / "student.zarr"
    result = run("distill", "--teacher", teachers[13], *args, "--quiet", "-o", out)
    assert_one_line_error(result, fragment)
    assert not out.exists()


def test_a_path_that_is_no_store_is_refused(tmp_path, assert_one_line_error):
    assert_one_line_error(run("distill", "--teacher", tmp_path, "-o", tmp_path / "s.zarr"), "not a grokscope")
