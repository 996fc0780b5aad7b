"""``grokscope import`` end to end: known onsets through ``analyze``, one-line errors, nothing left behind."""

import json
import os

import numpy as np
import pytest
from typer.testing import CliRunner

from grokscope.cli.main import app
from grokscope.store.reader import RunStore

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])




def grokking_csv(path, onset, percent=False):
    """Uneven steps; test accuracy first reaches 0.95 at ``onset``; train accuracy 0.99 at step 40."""
    steps = [0, 1, 2, 5, 10, 40, 100, onset - 7, onset, onset + 1, 3 * onset]
    test = [0.01, 0.02, 0.02, 0.03, 0.05, 0.1, 0.5, 0.9499, 0.95, 0.97, 1.0]
    train = [0.1, 0.2, 0.3, 0.5, 0.8, 0.99, 1.0, 1.0, 1.0, 1.0, 1.0]
    scale = 100 if percent else 1
    rows = [f"{s},{2 / (1 + s):.6f},{a * scale:g},{t * scale:g}" for s, a, t in zip(steps, train, test)]
    path.write_text("Step,train/loss,train/accuracy,val/accuracy\n" + "\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("percent", [False, True])
def test_imported_csv_reports_the_known_generalization_step(tmp_path, percent):
    src = grokking_csv(tmp_path / "metrics.csv", onset=1234, percent=percent)
    result = run("import", src, "--out", tmp_path / "theirs.zarr", "--hparam", "frac=0.3",
                 "--hparam", "n_train=2000", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)  # exactly one document
    (entry,) = doc["runs"]
    assert entry["step_field"] == "Step" and entry["n_steps"] == 11 and entry["last_step"] == 3 * 1234
    assert entry["percent_rescaled"] == (["train/accuracy", "val/accuracy"] if percent else [])
    rows = json.loads(run("analyze", tmp_path / "theirs.zarr", "--json").stdout)
    assert rows[0]["generalization_step"] == 1234 and rows[0]["memorization_step"] == 40
    assert rows[0]["final_test_acc"] == 1.0 and rows[0]["n_train"] == 2000 and rows[0]["frac"] == 0.3
    assert RunStore(tmp_path / "theirs.zarr").attrs["import"]["source"] == str(src.resolve())


def test_loss_only_import_works_with_test_loss_below(tmp_path):
    src = tmp_path / "losses.csv"
    src.write_text("global_step,loss,val_loss\n0,5.0,5.0\n10,0.5,3.0\n30,0.001,0.02\n31,0.001,0.009\n"
                   "60,0.001,0.001\n")
    assert run("import", src, "--out", tmp_path / "l.zarr").exit_code == 0
    rows = json.loads(run("analyze", tmp_path / "l.zarr", "--json", "--test-loss-below", "0.01").stdout)
    assert rows[0]["generalization_step"] == 31 and rows[0]["memorization_step"] is None  # no train acc
    assert rows[0]["final_test_acc"] is None and rows[0]["final_test_loss"] == 0.001


def test_table_summary_line_without_json(tmp_path):
    src = grokking_csv(tmp_path / "m.csv", onset=50)
    result = run("import", src, "--out", tmp_path / "m.zarr")
    assert result.exit_code == 0
    assert result.stdout.startswith(f"{tmp_path / 'm.zarr'}: 11 steps (0…150), train_loss←train/loss")


def test_crafted_run_ids_never_escape_out(tmp_path):
    src = tmp_path / "long.csv"
    ids = ["../../evil", "/etc/passwd", "a/../../b", "..", "C:\\x", "ok", "OK"]
    src.write_text("run,metric,step,value\n" + "".join(f'"{r}",test_acc,0,0.5\n' for r in ids))
    result = run("import", src, "--out", tmp_path / "runs" / "out", "--json")
    assert result.exit_code == 0, result.stderr
    names = sorted(os.listdir(tmp_path / "runs" / "out"))
    assert names == sorted(["evil.zarr", "etc_passwd.zarr", "a_._._b.zarr", "run.zarr", "C_x.zarr", "ok.zarr",
                            "OK-2.zarr"])  # "OK" and "ok" collide on case-insensitive disks
    assert sorted(os.listdir(tmp_path)) == ["long.csv", "runs"]  # nothing written beside or above OUT
    assert sorted(os.listdir(tmp_path / "runs")) == ["out"]
    for entry in json.loads(result.stdout)["runs"]:
        path = os.path.realpath(entry["path"])
        assert os.path.dirname(path) == os.path.realpath(tmp_path / "runs" / "out")
        assert ".." not in os.path.basename(path)


TRUNCATED_PTH = "truncated"


@pytest.mark.parametrize("name, content, fragments", [
    ("empty.csv", b"", ["empty.csv", "empty file"]),
    ("header.csv", b"step,train_loss,test_acc\n", ["header.csv", "a header but no data rows"]),
    ("words.csv", b"step,train_loss,test_acc\n0,1.0,0.5\n1,0.5,abc\n", ["words.csv", "line 3", "'abc'",
                                                                       "test_acc"]),
    ("cut.jsonl", b'{"step": 0, "loss": 1.0}\n{"step": 1, "lo', ["cut.jsonl", "line 2"]),
    ("events.out.tfevents.123.host", os.urandom(512), ["events.out.tfevents.123.host",
                                                        "no readable TensorBoard events"]),
    ("latin1.csv", "step,loss\n0,1\n1,\xe9\n".encode("latin-1"), ["latin1.csv", "not UTF-8"]),
    ("final.pth", TRUNCATED_PTH, ["final.pth", "not a readable PyTorch checkpoint"]),
])
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(tmp_path, name, content, fragments,
                                                         assert_one_line_error):
    src = tmp_path / "in" / name
    src.parent.mkdir()
    if content is TRUNCATED_PTH:
        import torch

        torch.save({"model": {"w": torch.arange(1000.0)}}, src)
        src.write_bytes(src.read_bytes()[:700])
    else:
        src.write_bytes(content)
    assert_one_line_error(run("import", src, "--out", tmp_path / "out" / "x.zarr"), *fragments)
    assert not (tmp_path / "out").exists() or os.listdir(tmp_path / "out") == []


def test_write_failure_leaves_no_partial_store(tmp_path, monkeypatch, assert_one_line_error):
    from grokscope.importers import write as write_module

    def broken(run, path):
        path.mkdir()
        (path / "zarr.json").write_text("{}")
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(write_module, "write_store", broken)
    src = grokking_csv(tmp_path / "m.csv", onset=50)
    assert_one_line_error(run("import", src, "--out", tmp_path / "o" / "m.zarr"), "No space left on device")
    assert os.listdir(tmp_path / "o") == []


def test_usage_errors(tmp_path, assert_one_line_error):
    src = grokking_csv(tmp_path / "m.csv", onset=50)
    (tmp_path / "exists.zarr").mkdir()
    (tmp_path / "exists.zarr" / "keep").write_text("mine")
    assert_one_line_error(run("import", src, "--out", tmp_path / "exists.zarr"), "already exists")
    assert_one_line_error(run("import", src, "--out", tmp_path / "x", "--format", "xls"), "unknown --format")
    assert_one_line_error(run("import", src, "--out", tmp_path / "x", "--map", "accuracy=val/accuracy"),
                          "NAME must be one of")
    assert_one_line_error(run("import", src, "--out", tmp_path / "x", "--map", "test_acc=nope"),
                          "no field 'nope'")
    assert_one_line_error(run("import", src, "--out", tmp_path / "x", "--hparam", "frac"), "KEY=VALUE")
    assert_one_line_error(run("import", tmp_path / "missing.csv", "--out", tmp_path / "x"), "does not exist")
    assert not (tmp_path / "x").exists()


def test_format_can_be_forced_and_step_mapped(tmp_path):
    src = tmp_path / "log.txt"
    src.write_text("it,acc_test\n0,0.5\n7,0.96\n")
    result = run("import", src, "--out", tmp_path / "f.zarr", "--format", "csv", "--map", "step=it",
                 "--map", "test_acc=acc_test")
    assert result.exit_code == 0, result.stderr
    store = RunStore(tmp_path / "f.zarr")
    assert store.read("step").tolist() == [0, 7] and store.attrs["import"]["step_field"] == "it"
    np.testing.assert_array_equal(store.read("test_acc"), [0.5, 0.96])


def test_a_killed_imports_hidden_folder_is_removed_by_the_next_import(tmp_path):
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: its pid names no process
    stale = tmp_path / f".theirs.zarr.importing-{child.pid}"
    stale.mkdir()
    live = tmp_path / f".theirs.zarr.importing-{os.getppid()}"  # a live process's import is left alone
    live.mkdir()
    src = grokking_csv(tmp_path / "m.csv", onset=50)
    assert run("import", src, "--out", tmp_path / "theirs.zarr").exit_code == 0
    assert not stale.exists() and live.exists() and RunStore(tmp_path / "theirs.zarr").status == "complete"


def test_an_empty_hparam_value_is_kept_as_an_empty_string():
    from grokscope.importers.sidecar import parse_hparams

    assert parse_hparams(["note=", "frac=0.3"]) == {"note": "", "frac": 0.3}
