"""Training the tasks beyond modular arithmetic: models, losses, per-subclass metrics, real runs, CLI errors."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from grokscope.analysis.runners.summary import analyze
from grokscope.cli.main import app
from grokscope.config.presets import from_preset
from grokscope.config.resolve import resolve
from grokscope.errors import GrokscopeError
from grokscope.report.builders import load_runs
from grokscope.report.page import build_chart, report_html
from grokscope.store.reader import RunStore
from grokscope.trainers import train
from grokscope.trainers.batched import train_batched
from grokscope.trainers.data import load_task
from grokscope.trainers.functional import answer_logits
from grokscope.trainers.losses import loss_fn
from grokscope.trainers.models import build_model

CPU = torch.device("cpu")
runner = CliRunner()


def _reviews(path, n=400, labels=("negative", "positive")):
    """A corpus a 1-layer encoder learns from a few words: sentiment words among shared filler."""
    rng = np.random.default_rng(0)
    filler = "the movie film plot actor scene story was really quite and a it this".split()
    cue = {"positive": "great wonderful superb lovely".split(), "negative": "awful boring terrible dull".split()}
    rows = []
    for i in range(n):
        label = labels[i % len(labels)]
        words = list(rng.choice(filler, 10)) + list(rng.choice(cue.get(label, filler), 2))
        rng.shuffle(words)
        rows.append((" ".join(words), label))
    pd.DataFrame(rows, columns=["review", "sentiment"]).to_csv(path, index=False)
    return str(path)


def test_stacked_encoder_equals_each_member_alone():
    cfgs = [resolve(from_preset(task="equivariant", model="transformer", d_model=16, d_mlp=32, n_train=80,
                                n_test=40, seed=s)) for s in (0, 1)]
    _, data = load_task(cfgs[0], CPU)
    models = []
    for c in cfgs:
        torch.manual_seed(c.seed)
        models.append(build_model(c, data.n_inputs, data.n_classes))
    P = {n: torch.stack([dict(m.named_parameters())[n].detach() for m in models]) for n, _ in
         models[0].named_parameters()}
    stacked = answer_logits(P, cfgs[0], data.test_x.expand(2, *data.test_x.shape))  # (2, n_test, 4)
    for m, model in enumerate(models):
        torch.testing.assert_close(stacked[m], model(data.test_x).detach(), rtol=1e-5, atol=1e-4)


def test_text_encoder_ignores_padding(tmp_path):
    path = _reviews(tmp_path / "r.csv", n=40)
    cfg = resolve(from_preset(task="text", data=path, max_len=16, vocab_size=40, d_model=16, d_mlp=32, alpha=1))
    _, data = load_task(cfg, CPU)
    torch.manual_seed(0)
    model = build_model(resolve(from_preset(task="text", data=path, max_len=40, vocab_size=40, d_model=16,
                                            d_mlp=32, alpha=1)), data.n_inputs, data.n_classes)
    x = data.test_x  # (n, 16): 12 words + [CLS] + 3 pads
    padded = torch.cat([x, torch.zeros(len(x), 24, dtype=x.dtype)], dim=1)  # 27 more pads
    torch.testing.assert_close(model(x), model(padded), rtol=1e-5, atol=1e-5)


def test_mse_loss_and_default_init_known_values():
    cfg = from_preset(task="digits")
    logits, targets = torch.zeros(3, 10), torch.tensor([0, 4, 9])
    assert float(loss_fn(cfg)(logits, targets)) == pytest.approx(0.1)  # (0 − 1)² once in 10 classes
    torch.manual_seed(0)
    model = build_model(resolve(cfg), 64, 10)
    w = model.layers[0].weight.detach()  # torch's default: U(±1/√fan_in), then × α = 8
    assert float(w.abs().max()) <= 8 / math.sqrt(64) and float(w.abs().max()) > 0.9 * 8 / math.sqrt(64)


def test_hierarchy_run_logs_per_subclass_accuracy(tmp_path):
    cfg = from_preset(task="equidistant", n_train=200, downsample_frac=0.2, n_test=400, steps=20, eval_every=5)
    store = RunStore(train(cfg, tmp_path / "eqd.zarr"))
    acc = store.read("test_acc_subclass")  # (21, 8)
    assert acc.shape == (21, 8) and np.isnan(acc[1]).all() and not np.isnan(acc[5]).any()
    # The test set is balanced (50 per subclass): overall accuracy is the mean of the subclass accuracies.
    np.testing.assert_allclose(store.read("test_acc")[::5], acc[::5].mean(1), rtol=1e-12)
    row = analyze([store.path])[0]
    assert {"final_test_acc_downsampled", "final_test_acc_rest", "generalization_step_downsampled"} <= set(row)
    down = np.array(store.attrs["task"]["downsampled"])
    assert row["final_test_acc_downsampled"] == pytest.approx(acc[-1][down].mean())
    spec = build_chart("subclasses", load_runs([store.path])).to_dict()  # the report's shift chart
    values = next(iter(spec["datasets"].values()))
    assert {v["subset"] for v in values} == {"train (all)", "test: other subclasses", "test: down-sampled"}
    assert row["p"] is None  # modular fields mean nothing here: neither the row nor the report claims p = 113
    page, _ = report_html(load_runs([store.path]))
    assert "task = equidistant" in page and "p = " not in page and "op = " not in page


@pytest.mark.slow
def test_seed001_equidistant_shift_needs_some_downsampled_samples(tmp_path):
    """Seed 001's finding at CPU scale: with f = 0 the down-sampled subclasses are never learned; with f = 0.2
    they are (slowly, after memorization).  wd 0.1 instead of 1e-4 compresses the time scale (examples/)."""
    final = {}
    for f in (0.0, 0.2):
        cfg = from_preset(task="equidistant", n_train=2000, downsample_frac=f, weight_decay=0.1, steps=1500,
                          eval_every=50, n_test=2000)
        row = analyze([train(cfg, tmp_path / f"f{f}.zarr")])[0]
        assert row["memorization_step"] is not None and row["memorization_step"] < 300
        final[f] = row["final_test_acc_downsampled"]
    assert final[0.0] < 0.4 and final[0.2] > 0.65, final


@pytest.mark.slow
def test_text_run_generalizes(tmp_path):
    cfg = from_preset(task="text", data=_reviews(tmp_path / "r.csv"), max_len=16, vocab_size=80, d_model=32,
                      d_mlp=64, alpha=1, batch_size=64, steps=150, eval_every=10)
    row = analyze([train(cfg, tmp_path / "text.zarr")])[0]
    assert row["final_train_acc"] == 1.0 and row["final_test_acc"] > 0.95
    assert row["task"] == "text" and row["p"] is row["op"] is row["input_format"] is None  # no modular fields


def test_batched_hierarchy_members_match_single_runs(tmp_path):
    cfgs = [from_preset(task="equidistant", n_train=100, downsample_frac=f, n_test=200, steps=30, eval_every=3,
                        d_model=32) for f in (0.0, 0.5)]
    batched = train_batched(cfgs, [tmp_path / "b0.zarr", tmp_path / "b1.zarr"])
    for cfg, path in zip(cfgs, batched):
        alone = RunStore(train(cfg, tmp_path / f"alone{cfg.downsample_frac}.zarr"))
        for name in ("train_loss", "test_acc", "test_acc_subclass"):
            np.testing.assert_allclose(RunStore(path).read(name), alone.read(name), rtol=1e-6, atol=1e-9)


def test_cli_trains_and_refuses_fourier_for_digits(tmp_path, assert_one_line_error):
    out = tmp_path / "dig.zarr"
    result = runner.invoke(app, ["train", "--task", "digits", "--steps", "20", "--n-train", "200", "--quiet",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    assert RunStore(out).config["loss"] == "mse" and RunStore(out).attrs["task"]["kind"] == "digits"
    assert_one_line_error(runner.invoke(app, ["fourier", str(out)]), "modular-arithmetic runs", "'digits'")
    with pytest.raises(GrokscopeError, match="does not apply"):  # no subclasses, no shift chart
        build_chart("subclasses", load_runs([out]))


@pytest.mark.parametrize("setup, fragment", [
    (lambda p: p.write_text("review,sentiment\n"), "empty"),
    (lambda p: p.write_text(""), "empty"),
    (lambda p: pd.DataFrame({"review": ["a b", "c d"], "sentiment": ["pos", "pos"]}).to_csv(p, index=False),
     "one-class"),
    (lambda p: pd.DataFrame({"body": ["a b", "c d"], "y": ["pos", "neg"]}).to_csv(p, index=False), "body"),
])
def test_cli_bad_text_input_is_one_line(tmp_path, assert_one_line_error, setup, fragment):
    data = tmp_path / "bad.csv"
    setup(data)
    out = tmp_path / "run.zarr"
    result = runner.invoke(app, ["train", "--task", "text", "--data", str(data), "--out", str(out)])
    assert_one_line_error(result, fragment)
    assert not out.exists()


def test_cli_missing_column_and_unknown_task(tmp_path, assert_one_line_error):
    data = _reviews(tmp_path / "r.csv", n=20)
    result = runner.invoke(app, ["train", "--task", "text", "--data", data, "--text-col", "body",
                                 "--out", str(tmp_path / "a.zarr")])
    assert_one_line_error(result, "body")
    result = runner.invoke(app, ["train", "--task", "images", "--out", str(tmp_path / "b.zarr")])
    assert_one_line_error(result, "unknown task 'images'")


def test_text_run_resumes_only_on_the_same_data(tmp_path, monkeypatch):
    import grokscope.trainers.recording as recording
    from grokscope.errors import StoreError

    monkeypatch.setattr(recording, "FLUSH_ROWS", 8)
    data = _reviews(tmp_path / "r.csv", n=60)
    cfg = from_preset(task="text", data=data, max_len=16, vocab_size=60, d_model=16, d_mlp=32, alpha=1,
                      batch_size=16, steps=30)

    def stop(step, latest):
        raise KeyboardInterrupt

    for name in ("a.zarr", "b.zarr"):
        with pytest.raises(KeyboardInterrupt):
            train(cfg, tmp_path / name, on_flush=stop)
    assert RunStore(tmp_path / "a.zarr").status == "running"
    full = RunStore(train(cfg, tmp_path / "full.zarr"))
    resumed = RunStore(train(None, tmp_path / "a.zarr", resume=True))
    np.testing.assert_array_equal(resumed.read("train_loss"), full.read("train_loss"))  # same data, same run
    with open(data, "a") as fh:  # the file changes under a stopped run
        fh.write("an extra review,positive\n")
    with pytest.raises(StoreError, match="changed since the run started"):
        train(None, tmp_path / "b.zarr", resume=True)
