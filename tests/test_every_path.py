"""Every analysis command over every kind of store users meet (the ``store_kinds`` fixture in conftest.py).

The promise checked here: a command either succeeds — and then ``--json`` prints exactly one JSON document on
stdout — or fails the way users are promised (exit 2, one ``grokscope: error:`` line, no traceback, nothing on
stdout, no half-written output file).  Never a traceback, whatever the store or the flags.  Where a
command must succeed on a kind (the paths of issue "Trust on every path"), the tests say so.
"""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from grokscope.cli.main import app

runner = CliRunner()

KINDS = ["dense", "sparse_eval", "mini_batched", "diverged", "stopped", "resumed", "sweep", "sweep_member",
         "imported_sparse", "imported_losses", "imported_ckpts", "root"]

# command → argument lists after the path (the report's output file is added per call)
COMMANDS = {
    "analyze": [["--json"], ["--csv"], [], ["--intervals", "--json"], ["--test-loss-below", "0.01", "--json"]],
    "dynamics": [["--json"], ["--test-loss-below", "0.01", "--json"]],
    "fourier": [["--json", "--weights-only"], ["--json"]],
    "cds": [["--json"]],
    "report": [["--json"]],
    "forecast": [["--json"], ["--at-frac", "0.5", "--json"], []],
}
CASES = [(kind, command, args) for kind in KINDS for command, arg_lists in COMMANDS.items() for args in arg_lists]


def invoke(command, path, args, tmp_path):
    out = tmp_path / f"{command}.html"
    extra = ["-o", str(out)] if command == "report" else []
    result = runner.invoke(app, [command, str(path), *extra, *args])
    return result, out


def check_outcome(result, args, out):
    """Exit 0 with one JSON document (under --json), or exit 2 with one line and nothing written."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.stderr, result.stderr
    if result.exit_code == 0:
        if "--json" in args:
            json.loads(result.stdout)  # exactly one document: trailing text would fail to parse
        return "ok"
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("grokscope: error:"), result.stderr
    assert result.stdout == ""
    assert not out.exists(), "a failed report left its output file"
    return "error"


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "command", "args"), CASES, ids=[f"{k}-{c}-{'_'.join(a)}" for k, c, a in CASES])
def test_every_command_on_every_store_kind_succeeds_or_fails_in_one_line(store_kinds, kind, command, args,
                                                                        tmp_path):
    result, out = invoke(command, store_kinds[kind], args, tmp_path)
    check_outcome(result, args, out)


# (kind, command, args) that must succeed: the paths real work takes
MUST_WORK = [
    ("root", "analyze", ["--json"]),  # a folder holding a killed writer's build folder
    ("sweep", "cds", ["--json"]),  # its runs/ holds a killed worker's build folder
    ("stopped", "analyze", ["--json"]),
    ("stopped", "report", ["--json"]),
    ("diverged", "analyze", ["--json"]),
    ("mini_batched", "dynamics", ["--json"]),
    ("imported_sparse", "analyze", ["--intervals", "--json"]),
    ("imported_sparse", "report", ["--json"]),
    ("imported_losses", "analyze", ["--test-loss-below", "0.01", "--json"]),
    ("imported_ckpts", "analyze", ["--test-loss-below", "0.01", "--json"]),
    ("imported_ckpts", "dynamics", ["--test-loss-below", "0.01", "--json"]),  # L2 only at checkpoints
    ("dense", "fourier", ["--json"]),
    ("resumed", "report", ["--json"]),
    ("root", "report", ["--json"]),  # runs with and without n_train, grouped
    ("imported_losses", "report", ["--json"]),  # no accuracy at all: the loss chart alone
    ("root", "fourier", ["--json"]),  # some runs have no checkpoints: their rows say so
    ("root", "dynamics", ["--json"]),
    ("root", "analyze", ["--intervals", "--json"]),
    ("root", "forecast", ["--json"]),  # every kind at once: unusable runs get error rows or abstain
    ("stopped", "forecast", ["--json"]),  # a killed run: forecast from its committed prefix
    ("imported_sparse", "forecast", ["--json"]),  # eval every 250 steps, no L2: the no_l2 signals
    ("imported_losses", "forecast", ["--json"]),  # losses only: the losses signals
]


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "command", "args"), MUST_WORK,
                         ids=[f"{k}-{c}-{'_'.join(a)}" for k, c, a in MUST_WORK])
def test_the_paths_real_work_takes_succeed(store_kinds, kind, command, args, tmp_path):
    result, out = invoke(command, store_kinds[kind], args, tmp_path)
    assert check_outcome(result, args, out) == "ok", result.stderr


def test_a_folder_of_every_kind_lists_each_store_once_and_no_build_folder(store_kinds):
    result = runner.invoke(app, ["analyze", str(store_kinds["root"]), "--json"])
    assert result.exit_code == 0, result.stderr
    paths = sorted(row["path"] for row in json.loads(result.stdout))
    expected = sorted(str(store_kinds[k]) for k in KINDS if k not in ("root", "sweep", "sweep_member"))
    expected += [str(p) for p in sorted((store_kinds["sweep"] / "runs").glob("*.zarr"))]
    assert paths == sorted(expected)


def test_a_run_that_cannot_be_measured_fails_alone_and_gets_an_error_row_among_others(store_kinds,
                                                                                    assert_one_line_error):
    alone = runner.invoke(app, ["fourier", str(store_kinds["imported_losses"]), "--json", "--no-save"])
    assert_one_line_error(alone, "no committed checkpoints")
    among = runner.invoke(app, ["fourier", str(store_kinds["root"]), "--json", "--no-save", "--weights-only"])
    assert among.exit_code == 0, among.stderr
    rows = {row["run"]: row for row in json.loads(among.stdout)}
    assert "no committed checkpoints" in rows["imported_losses"]["error"]
    assert "error" not in rows["dense"] and rows["dense"]["key_frequencies"]
    assert "could not be measured" in among.stderr


def test_analysis_is_saved_into_a_diverged_store(store_kinds, tmp_path):
    import shutil

    from grokscope.store.reader import RunStore

    store = shutil.copytree(store_kinds["diverged"], tmp_path / "diverged.zarr")
    result = runner.invoke(app, ["fourier", str(store), "--json", "--weights-only"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)[0]["saved"] is True  # a diverged run is finished: nothing writes it again
    assert RunStore(store)._group["analysis"]["fourier"] is not None


# Flags drawn at random, valid and not: thresholds, smoothing, windows, fits, bins.
FLAG_VALUES = {
    "analyze": [("--train-acc", st.floats(-1, 2)), ("--test-acc", st.floats(-1, 2)),
                ("--test-loss-below", st.floats(-1, 3)), ("--smooth", st.sampled_from(["ema", "gaussian", "x"])),
                ("--smooth-amount", st.floats(-1, 5)), ("--band", st.floats(-1, 2)), ("--tail", st.floats(-1, 2)),
                ("--low-frac", st.floats(-1, 2)), ("--min-support-ratio", st.floats(-1, 5))],
    "dynamics": [("--fit-start", st.integers(-100, 2000)), ("--fit-stop", st.integers(-100, 2000)),
                 ("--w-star", st.floats(-5, 50)), ("--bins", st.integers(-2, 100)),
                 ("--test-acc", st.floats(-1, 2)), ("--test-loss-below", st.floats(-1, 3))],
    "fourier": [("--top-k", st.integers(-2, 40)), ("--every", st.integers(-2, 5)), ("--p", st.integers(-3, 40))],
    "cds": [("--test-acc", st.floats(-1, 2)), ("--epsilon", st.floats(-1, 2)), ("--smooth", st.floats(-2, 50)),
            ("--clip", st.integers(-10, 400)), ("--bootstrap", st.integers(-2, 20)), ("--level", st.floats(-1, 2)),
            ("--thresholds", st.sampled_from(["0.5,0.9", "2", "x", "0.9"]))],
    "forecast": [("--at", st.integers(-5, 6000)), ("--at-frac", st.floats(-1, 2)), ("--test-acc", st.floats(-1, 2)),
                 ("--test-loss-below", st.floats(-1, 3))],
}


@st.composite
def invocations(draw):
    kind = draw(st.sampled_from(KINDS))
    command = draw(st.sampled_from(sorted(FLAG_VALUES)))
    args = ["--json"]
    if command == "analyze" and draw(st.booleans()):
        args.append("--intervals")
    for flag, values in FLAG_VALUES[command]:
        if draw(st.booleans()):
            value = draw(values)
            args += [flag, f"{value:.3g}" if isinstance(value, float) else str(value)]
    return kind, command, args


@pytest.mark.slow
@settings(max_examples=80, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(invocations())
def test_any_flags_on_any_store_succeed_or_fail_in_one_line(store_kinds, tmp_path, invocation):
    kind, command, args = invocation
    result, out = invoke(command, store_kinds[kind], [*args, "--no-save"] if command in ("dynamics", "fourier")
                         else args, tmp_path)
    check_outcome(result, args, out)


def test_report_marks_follow_the_criteria_flags_on_a_loss_only_import(store_kinds, tmp_path):
    """``--test-loss-below`` on the report, as on analyze: the losses-only log's test loss first falls
    below 0.01 at step 1,500 (train loss below 0.01 at step 100), and the marks sit there."""
    out = tmp_path / "loss.json"
    result = runner.invoke(app, ["report", str(store_kinds["imported_losses"]), "--chart", "loss", "-o", str(out),
                                 "--train-loss-below", "0.01", "--test-loss-below", "0.01"])
    assert result.exit_code == 0, result.stderr
    spec = json.loads(out.read_text())
    marks = {r["event"]: r["step"] for rows in spec["datasets"].values() for r in rows if r.get("kind") == "mark"}
    assert marks["generalization"] == 1500 and marks["memorization"] == 100
    plain = runner.invoke(app, ["report", str(store_kinds["imported_losses"]), "--chart", "loss", "-o", str(out)])
    spec = json.loads(out.read_text())
    assert plain.exit_code == 0 and not [r for rows in spec["datasets"].values() for r in rows
                                         if r.get("kind") == "mark"]  # no accuracy: nothing to mark by default


def test_an_unreadable_store_among_others_gets_an_error_row_and_a_note_in_the_report(store_kinds, tmp_path):
    import shutil

    folder = tmp_path / "two"
    shutil.copytree(store_kinds["sparse_eval"], folder / "good.zarr")
    newer = shutil.copytree(store_kinds["sparse_eval"], folder / "newer.zarr")
    meta = json.loads((newer / "zarr.json").read_text())
    meta["attributes"]["grokscope"]["schema_version"] = 99  # written by a future grokscope
    (newer / "zarr.json").write_text(json.dumps(meta))
    result = runner.invoke(app, ["analyze", str(folder), "--json"])
    assert result.exit_code == 0, result.stderr
    rows = {row["run"]: row for row in json.loads(result.stdout)}
    assert rows["newer"]["status"] == "unreadable" and "schema 99" in rows["newer"]["error"]
    assert rows["good"]["last_step"] == 300 and "error" not in rows["good"]
    report = runner.invoke(app, ["report", str(folder), "-o", str(tmp_path / "r.html"), "--json"])
    assert report.exit_code == 0 and json.loads(report.stdout)["runs"] == 1, report.stderr
    assert "not shown: newer: " in (tmp_path / "r.html").read_text()
    alone = runner.invoke(app, ["analyze", str(newer), "--json"])
    assert alone.exit_code == 2 and "schema 99" in alone.stderr


@pytest.mark.parametrize("p, fragment", [("7", "contradicts"), ("0", "at least 2"), ("-3", "at least 2")])
def test_fourier_refuses_a_modulus_the_run_does_not_have(store_kinds, assert_one_line_error, p, fragment):
    """--p is for runs that record no modulus; on a p = 31 run, --p 7 would compute a confident wrong
    spectrum, and --p 0 was silently taken as the run's own p."""
    result = runner.invoke(app, ["fourier", str(store_kinds["dense"]), "--p", p, "--json", "--no-save",
                                 "--weights-only"])
    assert_one_line_error(result, fragment)
