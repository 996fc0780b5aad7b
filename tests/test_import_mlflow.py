"""MLflow file stores (mlruns/) and SQLite stores (mlflow.db), byte-exact samples, read without mlflow."""

import json
import sqlite3

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from grokscope.cli.main import app
from grokscope.importers import SourceError, read_source, write_source
from grokscope.importers.mlflow import parse_metric_lines
from grokscope.store.reader import RunStore

RUN = "0123456789abcdef0123456789abcdef"
GONE = "fedcba9876543210fedcba9876543210"
EXPERIMENT_META = """artifact_location: file:///tmp/mlruns/0
creation_time: 1700000000000
experiment_id: '0'
last_update_time: 1700000000000
lifecycle_stage: active
name: Default
"""


def run_meta(run_id, stage="active"):
    return f"""artifact_uri: file:///tmp/mlruns/0/{run_id}/artifacts
end_time: 1700000100000
entry_point_name: ''
experiment_id: '0'
lifecycle_stage: {stage}
run_id: {run_id}
run_name: bright-fox-42
run_uuid: {run_id}
source_name: ''
source_type: 4
source_version: ''
start_time: 1700000000000
status: 3
tags: []
user_id: me
"""


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def mlruns(tmp_path):
    root = tmp_path / "mlruns"
    write(root / "0" / "meta.yaml", EXPERIMENT_META)
    run = root / "0" / RUN
    write(run / "meta.yaml", run_meta(RUN))
    write(run / "metrics" / "train" / "loss",
          "1700000000000 2.5 0\n1700000000100 1.25 10\n1700000000200 0.5 20\n")
    write(run / "metrics" / "val_acc",  # step 10 logged twice: the later line wins
          "1700000000000 0.1 0\n1700000000100 0.3 10\n1700000000120 0.4 10\n1700000000150 0.97 15\n")
    write(run / "metrics" / "lr", "1700000000000 0.001\n")  # no step: step 0
    write(run / "params" / "frac", "0.3")
    write(run / "params" / "p", "97")
    write(run / "params" / "optimizer", "adamw")
    write(run / "tags" / "mlflow.runName", "bright-fox-42")
    write(root / "0" / GONE / "meta.yaml", run_meta(GONE, stage="deleted"))
    write(root / "0" / GONE / "metrics" / "val_acc", "1700000000000 0.5 0\n")
    return root


def check_store(path):
    store = RunStore(path)
    assert store.read("step").tolist() == [0, 10, 15, 20]
    np.testing.assert_array_equal(store.read("train_loss"), [2.5, 1.25, np.nan, 0.5])
    np.testing.assert_array_equal(store.read("test_acc"), [0.1, 0.4, 0.97, np.nan])
    assert store.config["frac"] == 0.3 and store.config["p"] == 97 and store.config["optimizer"] == "adamw"
    info = store.attrs["import"]
    assert info["run_id"] == RUN and info["run_name"] == "bright-fox-42" and info["dropped"] == ["lr"]
    assert info["mapped"] == {"train_loss": "train/loss", "test_acc": "val_acc"}
    return store


def test_file_store_runs_params_and_names(mlruns, tmp_path):
    result = CliRunner().invoke(app, ["import", str(mlruns), "--out", str(tmp_path / "out"), "--json"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["format"] == "mlflow" and doc["skipped"] == [{"run": GONE, "reason": "deleted in MLflow"}]
    (entry,) = doc["runs"]
    assert entry["path"].endswith("bright-fox-42-01234567.zarr")
    store = check_store(entry["path"])
    assert store.attrs["import"]["status"] == "FINISHED" and store.attrs["import"]["experiment"] == "Default"
    rows = json.loads(CliRunner().invoke(app, ["analyze", entry["path"], "--json"]).stdout)
    assert rows[0]["generalization_step"] == 15 and rows[0]["frac"] == 0.3 and rows[0]["p"] == 97


def test_one_run_folder_is_one_store(mlruns, tmp_path):
    written = write_source(read_source(mlruns / "0" / RUN), tmp_path / "one.zarr")
    assert not written["multi"]
    check_store(tmp_path / "one.zarr")


def make_db(path):
    db = sqlite3.connect(path)
    db.executescript("""
    CREATE TABLE experiments (experiment_id INTEGER PRIMARY KEY, name VARCHAR(256) NOT NULL,
        artifact_location VARCHAR(256), lifecycle_stage VARCHAR(32), creation_time BIGINT,
        last_update_time BIGINT);
    CREATE TABLE runs (run_uuid VARCHAR(32) PRIMARY KEY, name VARCHAR(250), source_type VARCHAR(20),
        source_name VARCHAR(500), entry_point_name VARCHAR(50), user_id VARCHAR(256), status VARCHAR(9),
        start_time BIGINT, end_time BIGINT, deleted_time BIGINT, source_version VARCHAR(50),
        lifecycle_stage VARCHAR(20), artifact_uri VARCHAR(200), experiment_id INTEGER);
    CREATE TABLE metrics (key VARCHAR(250) NOT NULL, value FLOAT NOT NULL, timestamp BIGINT NOT NULL,
        run_uuid VARCHAR(32) NOT NULL, step BIGINT DEFAULT '0' NOT NULL, is_nan BOOLEAN DEFAULT '0' NOT NULL,
        PRIMARY KEY (key, timestamp, step, run_uuid, value, is_nan));
    CREATE TABLE params (key VARCHAR(250) NOT NULL, value VARCHAR(8000) NOT NULL,
        run_uuid VARCHAR(32) NOT NULL,
        PRIMARY KEY (key, run_uuid));
    INSERT INTO experiments VALUES (0, 'Default', 'mlflow-artifacts:/0', 'active', 1700000000000,
        1700000000000);
    """)
    for uuid, stage in ((RUN, "active"), (GONE, "deleted")):
        db.execute("INSERT INTO runs VALUES (?, 'bright-fox-42', 'UNKNOWN', '', '', 'me', 'FINISHED', 0, 1, "
                   "NULL, '', ?, '', 0)", (uuid, stage))
    rows = [("train/loss", 2.5, 0, 0), ("train/loss", 1.25, 100, 10), ("train/loss", 0.5, 200, 20),
            ("val_acc", 0.1, 0, 0), ("val_acc", 0.4, 120, 10), ("val_acc", 0.3, 100, 10),  # later time wins
            ("val_acc", 0.97, 150, 15), ("lr", 0.001, 0, 0)]
    db.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?, 0)",
                   [(k, v, 1700000000000 + t, RUN, s) for k, v, t, s in rows]
                   + [("val_acc", 0.5, 0, GONE, 0)])
    db.executemany("INSERT INTO params VALUES (?, ?, ?)",
                   [("frac", "0.3", RUN), ("p", "97", RUN), ("optimizer", "adamw", RUN)])
    db.commit()
    db.close()


def test_sqlite_store_reads_like_the_file_store(tmp_path):
    make_db(tmp_path / "mlflow.db")
    written = write_source(read_source(tmp_path / "mlflow.db"), tmp_path / "out")
    assert written["format"] == "mlflow-db"
    assert written["skipped"] == [{"run": GONE, "reason": "deleted in MLflow"}]
    store = check_store(written["runs"][0]["path"])
    assert store.attrs["import"]["status"] == "FINISHED"


def test_damaged_stores_name_the_file_and_line(mlruns, tmp_path):
    (tmp_path / "mlflow.db").write_bytes(b"not a database at all" * 10)
    with pytest.raises(SourceError, match="mlflow.db: not a readable MLflow SQLite store"):
        read_source(tmp_path / "mlflow.db", "mlflow-db")
    write(mlruns / "0" / RUN / "metrics" / "val_acc", "1700000000000 0.1 0\n1700000000100 0.3 ten\n")
    with pytest.raises(SourceError, match=r"val_acc: line 2: expected '<timestamp_ms> <value> <step>'"):
        read_source(mlruns)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=120),
                 st.lists(st.tuples(st.integers(-5, 2**64), st.floats(), st.integers(-2**64, 2**64))).map(
                     lambda rows: "\n".join(f"{t} {v} {s}" for t, v, s in rows))))
def test_any_metric_file_text_parses_or_raises_source_error(text):
    try:
        steps, values = parse_metric_lines(text, "m")
    except SourceError:
        return
    assert steps.dtype == np.int64 and len(steps) == len(values)
