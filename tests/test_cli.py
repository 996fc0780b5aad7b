"""The documented commands through Typer's CliRunner: results on stdout, one-line errors with exit 2."""

import json

import pytest
from typer.testing import CliRunner

from grokscope.cli.main import app

runner = CliRunner()
TINY = ["--preset", "demo", "--steps", "30", "--quiet"]


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny.zarr"
    result = run("train", *TINY, "--out", out)
    assert result.exit_code == 0, result.stderr
    return out


def test_train_then_analyze_json_is_one_document(trained):
    result = run("analyze", trained, "--json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)  # exactly one JSON document
    assert len(rows) == 1
    row = rows[0]
    for key in ("run", "memorization_step", "generalization_step", "grokking_delay", "final_train_acc",
                "final_test_acc"):
        assert key in row
    assert row["run"] == "tiny" and row["last_step"] == 30 and row["generalization_step"] is None


def test_analyze_table_and_csv(trained):
    table = run("analyze", trained.parent)
    assert table.exit_code == 0 and "tiny" in table.stdout
    csv = run("analyze", trained, "--csv")
    assert csv.stdout.splitlines()[0].startswith("run,")


def test_analyze_on_losses_only(trained):
    result = run("analyze", trained, "--json", "--test-loss-below", "100")
    assert json.loads(result.stdout)[0]["generalization_step"] == 0




@pytest.mark.parametrize("args, fragment", [
    (["--op", "^"], "unknown op"),
    (["--preset", "nope"], "unknown preset"),
    (["--op", "/", "--p", "9"], "composite"),
    (["--frac", "1.5"], "frac must be in (0, 1]"),
    (["--frac", "0"], "frac must be in (0, 1]"),
    (["--n-train", "100000"], "exceeds the train pool"),
    (["--steps", "ten"], "--steps"),
    (["--no-such-flag"], "no-such-flag"),
])
def test_bad_train_input_writes_nothing(tmp_path, args, fragment, assert_one_line_error):
    out = tmp_path / "x.zarr"
    assert_one_line_error(run("train", *TINY, "--out", out, *args), fragment)
    assert not out.exists()


def test_existing_out_needs_overwrite(trained, tmp_path, assert_one_line_error):
    assert_one_line_error(run("train", *TINY, "--out", trained), "already exists", "--overwrite")
    other = tmp_path / "not_a_store"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    assert_one_line_error(run("train", *TINY, "--out", other, "--overwrite"), "not a grokscope run store")
    assert (other / "keep.txt").exists()


def test_analyze_refuses_what_is_not_a_store(tmp_path, assert_one_line_error):
    (tmp_path / "file.txt").write_text("x")
    assert_one_line_error(run("analyze", tmp_path / "file.txt"), "not a grokscope run store")
    assert_one_line_error(run("analyze", tmp_path / "missing"), "does not exist")
    assert_one_line_error(run("analyze", tmp_path), "holds no grokscope run store")
