"""Tables from other loggers (CSV/TSV/JSONL/Parquet, W&B, Lightning) → run stores: known answers."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grokscope.errors import ConfigError, GrokscopeError
from grokscope.importers import read_source, write_source
from grokscope.importers.base import Source
from grokscope.importers.mapping import classify, map_fields
from grokscope.importers.tables import decode, parse_delimited, parse_jsonl, runs_from_table
from grokscope.importers.write import prepare_source
from grokscope.store.reader import RunStore

NAN = float("nan")


def imported(tmp_path, name, text, **kw):
    src = tmp_path / name
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_bytes(text.encode() if isinstance(text, str) else text)
    written = write_source(read_source(src), tmp_path / "out", **kw)
    return written


def curves(path):
    store = RunStore(path)
    return store, {k: store.read(k).tolist() for k in ("step", "train_loss", "train_acc", "test_loss",
                                                        "test_acc")}


@pytest.mark.parametrize("field, expected", [
    ("train_loss", ("train_loss", 0)),
    ("train/loss", ("train_loss", 0)),
    ("Loss/train", ("train_loss", 0)),        # PyTorch's tutorial tags
    ("training/accuracy", ("train_acc", 0)),
    ("trainAcc", ("train_acc", 0)),           # camelCase
    ("val_acc", ("test_acc", 1)),
    ("val/loss", ("test_loss", 1)),
    ("eval_accuracy", ("test_acc", 2)),
    ("test_loss", ("test_loss", 0)),
    ("train_losses", ("train_loss", 0)),      # Nanda et al.'s histories
    ("train_loss_step", ("train_loss", 10)),  # Lightning on_step/on_epoch suffixes
    ("val_loss_epoch", ("test_loss", 12)),
    ("loss", ("train_loss", 20)),             # Keras: bare names are training metrics
    ("val_accuracy", ("test_acc", 1)),
    ("weight_norm", ("l2_norm", 0)),
    ("lr", None), ("grad_norm", None), ("train_test_loss", None), ("loss_acc", None), ("_step", None),
])
def test_field_names_map_to_metrics(field, expected):
    assert classify(field) == expected


def test_best_ranked_field_wins_and_ties_ask_for_map():
    assert map_fields(["val_acc", "test_acc", "loss", "train_loss"]) == {"train_loss": "train_loss",
                                                                          "test_acc": "test_acc"}
    with pytest.raises(ConfigError, match="--map train_loss=FIELD"):
        map_fields(["train_loss", "train/loss"])
    chosen = map_fields(["train_loss", "train/loss"], {"train_loss": "train/loss"})
    assert chosen == {"train_loss": "train/loss"}


def test_wide_csv_keeps_uneven_sparse_steps_and_nan_gaps(tmp_path):
    text = "step,train_loss,test_acc,lr\n0,2.5,,0.1\n3,1.5,0.25,0.1\n10,,0.5,0.1\n11,0.5,,0.1\n"
    written = imported(tmp_path, "m.csv", text)
    store, c = curves(tmp_path / "out")
    assert c["step"] == [0, 3, 10, 11]
    np.testing.assert_array_equal(c["train_loss"], [2.5, 1.5, NAN, 0.5])
    np.testing.assert_array_equal(c["test_acc"], [NAN, 0.25, 0.5, NAN])
    assert np.isnan(c["test_loss"]).all() and np.isnan(c["train_acc"]).all()  # native schema: all five
    info = store.attrs["import"]
    assert info["step_field"] == "step" and info["dropped"] == ["lr"] and info["layout"] == "wide"
    assert info["mapped"] == {"train_loss": "train_loss", "test_acc": "test_acc"} and not info["sampled"]
    assert written["runs"][0]["n_steps"] == 4


def test_lightning_metrics_csv_sparse_rows_percent_and_hparams(tmp_path):
    # CSVLogger's file: keys sorted, one row per log call, train and val rows at one step; Power et al. log %
    text = ("epoch,step,train_accuracy,train_loss,val_accuracy,val_loss\n"
            "0,9,12.5,4.1,,\n0,9,,,3.0,4.5\n1,19,100.0,0.01,,\n1,19,,,97.5,0.2\n")
    (tmp_path / "version_0").mkdir()
    (tmp_path / "version_0" / "hparams.yaml").write_text("frac_train: 0.5\nmath_operator: +\n")
    imported(tmp_path, "version_0/metrics.csv", text)
    store, c = curves(tmp_path / "out")
    assert c["step"] == [9, 19]
    assert c["train_acc"] == [0.125, 1.0] and c["test_acc"] == pytest.approx([0.03, 0.975])
    assert c["train_loss"] == [4.1, 0.01] and c["test_loss"] == [4.5, 0.2]
    info = store.attrs["import"]
    assert info["layout"] == "lightning" and info["percent_rescaled"] == ["train_accuracy", "val_accuracy"]
    assert info["dropped"] == ["epoch"]
    assert store.config["frac"] == 0.5 and store.config["frac_train"] == 0.5  # alias for analyze / CDS fits
    assert info["config_aliases"] == {"frac": "frac_train"}


def test_wandb_history_csv_and_parquet_give_the_same_store(tmp_path):
    frame = pd.DataFrame({"_step": [0, 5, 7], "_runtime": [1.0, 2.0, 3.0],
                          "_timestamp": [1e9, 1e9 + 1, 1e9 + 2],
                          "train/loss": [1.0, 0.5, np.nan], "val/acc": [np.nan, 0.5, 0.96]})
    frame.to_csv(tmp_path / "history.csv", index=False)
    frame.to_parquet(tmp_path / "history.parquet")
    out = {}
    for name in ("history.csv", "history.parquet"):
        write_source(read_source(tmp_path / name), tmp_path / f"{name}.zarr")
        store, out[name] = curves(tmp_path / f"{name}.zarr")
        assert store.attrs["import"]["layout"] == "wandb-history"
        assert store.attrs["import"]["step_field"] == "_step"
        assert store.attrs["import"]["dropped"] == ["_runtime", "_timestamp"]
    np.testing.assert_array_equal(out["history.csv"]["test_acc"], [NAN, 0.5, 0.96])
    assert json.dumps(out["history.csv"]) == json.dumps(out["history.parquet"])


def test_wandb_panel_export_splits_runs_drops_bands_and_marks_sampled(tmp_path):
    text = ('"Step","run-a - test_acc","run-a - test_acc__MIN","run-a - test_acc__MAX",'
            '"run-b - test_acc","run-b - test_acc__MIN","run-b - test_acc__MAX"\n'
            "0,0.1,0.05,0.15,,,\n100,0.9,0.85,0.95,0.5,0.4,0.6\n")
    written = imported(tmp_path, "panel.csv", text)
    assert written["multi"] and written["layout"] == "wandb-panel"
    assert sorted(Path(r["path"]).name for r in written["runs"]) == ["run-a.zarr", "run-b.zarr"]
    store, c = curves(tmp_path / "out" / "run-b.zarr")
    assert c["step"] == [100] and c["test_acc"] == [0.5]
    assert store.attrs["import"]["sampled"] is True
    assert store.attrs["import"]["dropped"] == ["run-b - test_acc__MIN", "run-b - test_acc__MAX"]


def test_wandb_run_folder_with_history_jsonl_and_value_wrapped_config(tmp_path):
    run = tmp_path / "wandb" / "run-20240101_120000-abc123" / "files"
    run.mkdir(parents=True)
    lines = [{"_step": 0, "_runtime": 1.5, "train": {"loss": 2.0}, "test": {"acc": 0.1}},
             {"_step": 50, "_runtime": 3.0, "train": {"loss": 0.1}, "test": {"acc": 0.99},
              "samples": {"_type": "table-file", "path": "media/t.json"}}]
    (run / "wandb-history.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    (run / "config.yaml").write_text("wandb_version: 1\n\n_wandb:\n  desc: null\n  value:\n"
                                     "    cli_version: 0.16.0\nfrac:\n  desc: null\n  value: 0.3\n"
                                     "p:\n  desc: null\n  value: 97\n")
    written = write_source(read_source(tmp_path / "wandb"), tmp_path / "out")
    (entry,) = written["runs"]
    assert entry["path"].endswith("abc123.zarr") and entry["mapped"] == {"train_loss": "train.loss",
                                                                         "test_acc": "test.acc"}
    store, c = curves(entry["path"])
    assert c["step"] == [0, 50] and c["test_acc"] == [0.1, 0.99]
    assert store.config == {"frac": 0.3, "p": 97}
    assert "samples._type" in store.attrs["import"]["dropped"]  # media entries are not metrics


def test_long_table_tsv_and_jsonl(tmp_path):
    tsv = "metric\tstep\tvalue\ntest_acc\t0\t0.5\ntrain_loss\t0\t1.0\ntest_acc\t4\t1.0\n"
    imported(tmp_path, "long.tsv", tsv)
    store, c = curves(tmp_path / "out")
    assert c["step"] == [0, 4] and c["test_acc"] == [0.5, 1.0] and store.attrs["import"]["layout"] == "long"
    jsonl = '{"iteration": 2, "loss": 3.0}\n\n{"iteration": 1, "loss": 4.0, "note": "warmup"}\n'
    write_source(read_source(tmp_path / "x.jsonl" if False else _write(tmp_path / "x.jsonl", jsonl)),
                 tmp_path / "j.zarr")
    store, c = curves(tmp_path / "j.zarr")
    assert c["step"] == [1, 2] and c["train_loss"] == [4.0, 3.0]
    assert store.attrs["import"]["step_field"] == "iteration" and store.attrs["import"]["dropped"] == ["note"]


def _write(path, text):
    path.write_text(text)
    return path


def test_no_step_column_uses_row_order_and_map_names_fields(tmp_path):
    written = imported(tmp_path, "m.csv", "top1_val,objective\n0.5,2.0\n0.75,1.0\n",
                       maps={"test_acc": "top1_val", "train_loss": "objective"})
    store, c = curves(tmp_path / "out")
    assert c["step"] == [0, 1] and c["test_acc"] == [0.5, 0.75] and c["train_loss"] == [2.0, 1.0]
    assert written["runs"][0]["step_field"] == "row order"


@pytest.mark.parametrize("text, fragment", [
    ("step,test_acc\n0,0.5\n1,250\n", "holds 250"),                      # neither fraction nor percent
    ("step,test_acc\n0,0.5\n1.5,0.7\n", "line 3: step field 'step'"),    # fractional step
    ("step,test_acc\n0,0.5\n,0.7\n", "line 3: step field 'step' has no value"),
    ("step,test_acc\n0,0.5,9\n", "line 2: 3 fields, the header has 2"),
    ("step,step\n0,1\n", "appears twice"),
    ("step,lr\n0,0.1\n", "no field looks like a loss or accuracy"),
])
def test_bad_tables_name_the_line_or_field(tmp_path, text, fragment):
    (tmp_path / "m.csv").write_text(text)
    with pytest.raises(GrokscopeError, match=fragment.replace("(", r"\(")):
        write_source(read_source(tmp_path / "m.csv"), tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --- property tests: any input gives a result or one GrokscopeError ------------------------------------

NAMES = st.sampled_from(["step", "_step", "Step", "epoch", "train_loss", "val/acc", "test_acc", "loss", "run",
                         "metric", "value", "lr", "a - test_acc", "b - test_acc__MIN", ""])
CELLS = st.one_of(st.sampled_from(["", "0", "1", "-1", "1.5", "nan", "inf", "1e999", "abc", "100", "55",
                                   " 2 ", '"x,y"', "../x"]), st.text(max_size=5))


def _pipeline(table, path):
    source = runs_from_table(table, path)
    prepare_source(Source(path, "csv", source.runs, source.multi, source.layout))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=200),
                 st.lists(st.lists(CELLS, min_size=1, max_size=4), min_size=1, max_size=5).map(
                     lambda rows: "\n".join(",".join(r) for r in rows)),
                 st.tuples(st.lists(NAMES, min_size=1, max_size=4, unique=True),
                           st.lists(st.lists(CELLS, min_size=4, max_size=4), max_size=5)).map(
                     lambda t: "\n".join([",".join(t[0])] + [",".join(r[:len(t[0])]) for r in t[1]])),
                 st.binary(max_size=200)))
def test_any_delimited_text_or_bytes_parses_or_raises_grokscope_error(data):
    path = Path("m.csv")
    try:
        text = decode(data, path) if isinstance(data, bytes) else data
        _pipeline(parse_delimited(text, path), path)
    except GrokscopeError:
        pass


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=4),
                           lambda kids: st.lists(kids, max_size=2) | st.dictionaries(NAMES, kids, max_size=2),
                           max_leaves=6)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=200),
                 st.lists(st.dictionaries(NAMES, JSON_VALUES, max_size=4), min_size=1, max_size=4).map(
                     lambda rows: "\n".join(json.dumps(r) for r in rows)),
                 st.binary(max_size=100).map(lambda b: b.decode("latin-1"))))
def test_any_jsonl_text_parses_or_raises_grokscope_error(text):
    path = Path("m.jsonl")
    try:
        _pipeline(parse_jsonl(text, path), path)
    except GrokscopeError:
        pass


def test_imported_sparse_csv_reports_stability(tmp_path):
    """A run that groks at 250, dips once (410), collapses in training (800) and has one loss spike (500),
    train logged every 10 steps and test at eight irregular steps: `import`, then `analyze --json`."""
    from typer.testing import CliRunner

    from grokscope.cli.main import app

    test = {0: 0.1, 100: 0.2, 250: 0.96, 400: 0.97, 410: 0.3, 420: 0.98, 700: 0.99, 990: 0.99}
    lines = ["step,train_loss,train_acc,test_acc"]
    for step in range(0, 1000, 10):
        loss = 5.0 if step == 500 else 1.0 / (1 + step)
        acc = 0.5 if step < 200 else (1.0 if step < 800 else 0.2)
        lines.append(f"{step},{loss},{acc},{test.get(step, '')}")
    (tmp_path / "x.csv").write_text("\n".join(lines) + "\n")
    runner = CliRunner()
    result = runner.invoke(app, ["import", str(tmp_path / "x.csv"), "--out", str(tmp_path / "s.zarr")])
    assert result.exit_code == 0, result.stderr
    result = runner.invoke(app, ["analyze", str(tmp_path / "s.zarr"), "--json"])
    assert result.exit_code == 0, result.stderr
    row = json.loads(result.stdout)[0]
    assert (row["memorization_step"], row["generalization_step"]) == (200, 250)
    assert row["sustained_generalization_step"] is None  # 420, 700, 990: only three evaluations after the dip
    assert (row["dips_after_generalization"], row["stable"], row["min_test_acc_after_generalization"]) == (
        1, False, 0.3)
    assert (row["collapse_step"], row["loss_spikes"]) == (800, 1)
    result = runner.invoke(app, ["analyze", str(tmp_path / "s.zarr"), "--json", "--sustain-evals", "3"])
    assert json.loads(result.stdout)[0]["sustained_generalization_step"] == 420
    result = runner.invoke(app, ["analyze", str(tmp_path / "s.zarr"), "--json", "--sustain-steps", "500"])
    assert json.loads(result.stdout)[0]["sustained_generalization_step"] == 420  # 990 ≥ 420 + 500
