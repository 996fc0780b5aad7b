"""The report page and chart export: exact PNG sizes, a self-contained page that headless Chromium renders
offline with no console errors, and the ``grokscope report`` command's outputs and one-line errors."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from grokscope.charts import accuracy_chart, landscape_chart
from grokscope.cli.main import app
from grokscope.errors import GrokscopeError
from grokscope.report.builders import CHARTS, load_runs
from grokscope.report.export import save_chart
from grokscope.report.page import html_page, report_html
from grokscope.store.writer import RunWriter

runner = CliRunner()


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def summary_of(page: str) -> str:
    """The summary table of a report page (the inlined JavaScript holds table snippets of its own)."""
    start = page.index("<h2>summary</h2>")
    return page[start:page.index("</table>", start)]


# --- export ---------------------------------------------------------------------------------------------


def test_png_svg_json_exports(report_runs, tmp_path):
    chart = accuracy_chart(report_runs / "a.zarr", width=400, height=250)
    assert png_size(save_chart(chart, tmp_path / "a.png").read_bytes()) == (400, 250)
    assert png_size(save_chart(chart, tmp_path / "a2.png", scale=2).read_bytes()) == (800, 500)
    svg = save_chart(chart, tmp_path / "a.svg").read_text()
    assert re.search(r'<svg[^>]* width="400" height="250"', svg)
    spec = json.loads(save_chart(chart, tmp_path / "a.json").read_text())
    assert spec["width"] == 400 and spec["autosize"] == {"type": "fit", "contains": "padding"}
    landscape = landscape_chart(pd.DataFrame({"model_size": [1], "n_train": [1], "accuracy": [1.0]}))
    html = save_chart(landscape, tmp_path / "l.html").read_text()  # a chart of a sweep, as a page of its own
    assert "<script src" not in html and "vegaEmbed" in html


def test_unknown_suffix_writes_nothing(report_runs, tmp_path):
    with pytest.raises(GrokscopeError, match=r"cannot write \.gif; use \.png"):
        save_chart(accuracy_chart(report_runs / "a.zarr"), tmp_path / "a.gif")
    assert list(tmp_path.iterdir()) == []


def test_report_page_is_self_contained(report_runs):
    page, names = report_html(load_runs([report_runs]))
    assert names == ["accuracy", "loss", "l2", "spectrum", "forecast"]  # two runs: the sweep charts do not apply
    assert list(CHARTS) == ["accuracy", "loss", "l2", "subclasses", "forgetting", "spectrum", "forecast",
                            "stepwise", "generalization", "cds", "landscape"]
    assert not re.search(r"<script[^>]*\bsrc\s*=", page)  # no external script at all
    assert not re.search(r"(?i)src\s*=\s*[\"']?https?://", page)
    assert page.count("<script") == 2  # the inlined Vega bundle, then the embedding code
    table = summary_of(page)
    assert "<td>a</td><td>2000</td><td>0</td><td>400</td><td>1500</td><td>1100</td>" in table
    assert "<td>b</td><td>2000</td><td>1</td><td>400</td><td>1200</td><td>800</td>" in table
    assert len(page) < 2_000_000  # the size budget: ~0.9 MB of JavaScript + at most 4,000 rows a chart


def test_text_in_specs_cannot_end_the_script_element():
    spec = accuracy_chart(pd.DataFrame({"step": [0, 1], "split": "test", "value": [0.0, 1.0]}),
                          title="</script><script>alert(1)</script>").to_dict()
    page = html_page("a <b>", "", [spec])
    assert page.count("</script>") == 2 and "\\u003c/script>\\u003cscript>alert(1)" in page
    assert "<title>a &lt;b&gt;</title>" in page


# --- the command ----------------------------------------------------------------------------------------


def test_report_command_json_and_single_chart(report_runs, tmp_path):
    result = runner.invoke(app, ["report", str(report_runs / "a.zarr"), "-o", str(tmp_path / "r.html"), "--json",
                                 "--log-x"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["charts"] == ["accuracy", "loss", "l2", "spectrum", "forecast"] and doc["runs"] == 1
    assert doc["bytes"] == (tmp_path / "r.html").stat().st_size
    result = runner.invoke(app, ["report", str(report_runs), "-o", str(tmp_path / "l2.png"), "--chart", "l2"])
    assert result.exit_code == 0, result.stderr
    assert png_size((tmp_path / "l2.png").read_bytes()) == (560, 300)  # the default size, fitted on export
    result = runner.invoke(app, ["report", str(report_runs / "b.zarr"), "-o", str(tmp_path / "s.json"), "--chart",
                                 "spectrum"])
    assert result.exit_code == 0, result.stderr
    spec = json.loads((tmp_path / "s.json").read_text())
    heatmap = [r for rows in spec["datasets"].values() for r in rows if "k" in r and "end" in r]
    assert {r["k"]: r["norm"] for r in heatmap if r["step"] == 2000 and r["norm"] > 1e-3} == {
        2: pytest.approx(5 * np.sqrt(7), rel=1e-5)}  # ‖cos‖² + ‖sin‖² = 7 at scale 5, frequency 2 only


def test_sweep_report_groups_by_the_varying_hyperparameter(tmp_path, make_report_run):
    for i in range(9):  # more than OVERLAY_MAX runs: grouped by n_train, the band spanning the seeds
        make_report_run(tmp_path / "sweep" / f"r{i}.zarr", n_train=1000 * (1 + i % 3), seed=i // 3, gen=300 + 50 * i,
                 mem=100, n_steps=501)
    inp = load_runs([tmp_path / "sweep"])
    assert inp.group_by == "n_train"
    page, names = report_html(inp)
    # three data sizes of one model: a CDS study, so the step-wise and steps-to-generalize charts join
    # (CDS vs model size and the landscape need two model sizes)
    assert names == ["accuracy", "loss", "l2", "spectrum", "stepwise", "generalization"]
    assert "grouped by n_train" in page
    assert summary_of(page).count("<tr>") == 1 + 9


@pytest.mark.parametrize("args, fragment", [
    (["--chart", "cdx"], "unknown chart 'cdx'; choose from accuracy, loss, l2, subclasses, forgetting, spectrum"),
    (["--chart", "cds"], "the cds chart does not apply to these runs"),
    (["--chart", "accuracy", "-o", "{tmp}/x.gif"], "cannot write .gif"),
    (["-o", "{tmp}/x.png"], "the report is an HTML page"),
    (["-o", "{tmp}/missing/x.html"], "does not exist"),
])
def test_bad_report_input_is_one_line_and_writes_nothing(report_runs, tmp_path, args, fragment, assert_one_line_error):
    args = [a.format(tmp=tmp_path) for a in args]
    out = [] if "-o" in args else ["-o", str(tmp_path / "x.png")]
    assert_one_line_error(runner.invoke(app, ["report", str(report_runs), *out, *args]), fragment)
    assert list(tmp_path.iterdir()) == []


def test_only_the_charts_that_apply(tmp_path, assert_one_line_error):
    """A run logging accuracies only, test every 10 steps, no norms, no checkpoints (as imported runs can)."""
    t = np.arange(1001.0)
    writer = RunWriter(tmp_path / "acc.zarr", attrs={"config": {"n_train": 100}}, n_steps=1001,
                       metrics={"train_acc": (), "test_acc": ()}, params=[],
                       ckpt_steps=np.array([], np.int64))
    writer.write_metrics(0, {"train_acc": np.minimum(1.0, t / 200),
                             "test_acc": np.where(t % 10 == 0, np.where(t >= 600, 1.0, 0.0), np.nan)})
    writer.finalize()
    page, names = report_html(load_runs([tmp_path / "acc.zarr"]))
    assert names == ["accuracy"]
    assert "<td>acc</td><td>100</td><td>198</td><td>600</td><td>402</td>" in summary_of(page)  # 0.99 at 198
    result = runner.invoke(app, ["report", str(tmp_path / "acc.zarr"), "-o", str(tmp_path / "x.png"),
                                 "--chart", "l2"])
    assert_one_line_error(result, "the l2 chart does not apply to these runs (acc)")
    assert not (tmp_path / "x.png").exists()


def test_no_runs_is_one_line(tmp_path, assert_one_line_error):
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["report", str(tmp_path / "empty"), "-o", str(tmp_path / "r.html")])
    assert_one_line_error(result, "holds no grokscope run store")
    assert not (tmp_path / "r.html").exists()


@pytest.mark.slow
def test_report_of_a_trained_run(tmp_path):
    pytest.importorskip("torch")
    from grokscope import from_preset
    from grokscope.trainers import train

    path = train(from_preset("demo", steps=30), tmp_path / "demo.zarr")
    page, names = report_html(load_runs([path]))
    assert names == ["accuracy", "loss", "l2", "spectrum", "forecast"]  # a modular run with checkpoints
    assert "<td>demo</td>" in page


def dipping_run(path, *, n_train, seed, dip):
    """Test accuracy 1 from step 100 on; with ``dip``, back to 0.1 at steps 300–302 (three evaluations)."""
    t = np.arange(501, dtype=np.float64)
    test = np.where(t >= 100, 1.0, 0.1)
    if dip:
        test[300:303] = 0.1
    writer = RunWriter(path, attrs={"config": {"task": "modular", "p": 7, "n_train": n_train, "seed": seed}},
                       n_steps=t.size, metrics={"train_acc": (), "test_acc": ()}, params=[],
                       ckpt_steps=np.array([], np.int64))
    writer.write_metrics(0, {"train_acc": np.where(t >= 50, 1.0, 0.5), "test_acc": test})
    writer.finalize()
    return path


def test_stability_in_the_summary_and_the_sweep_charts(tmp_path):
    for n_train in (1000, 2000, 3000):
        for seed in (0, 1):
            dipping_run(tmp_path / f"n{n_train}s{seed}.zarr", n_train=n_train, seed=seed,
                        dip=(n_train, seed) == (2000, 1))
    inp = load_runs([tmp_path])
    page, names = report_html(inp)
    assert "stable" in summary_of(page) and "dips after generalization" in summary_of(page)
    assert "sustained: 5 evaluations in a row generalized" in page
    unstable = {(r["n_train"], r["seed"]) for r in inp.rows if r["stable"] is False}
    assert unstable == {(2000, 1)}
    spec = _spec_rows(CHARTS["generalization"](inp))
    assert sorted((r["n_train"], r["stability"]) for r in spec if r.get("kind") == "run") == [
        (1000, "stable"), (1000, "stable"), (2000, "stable"), (2000, "unstable"), (3000, "stable"),
        (3000, "stable")]
    stepwise = _spec_rows(CHARTS["stepwise"](inp))
    assert {r["stability"] for r in stepwise if r["n_train"] == 2000} == {"stable", "unstable"}
    assert "triangle-down" in json.dumps(CHARTS["stepwise"](inp).to_dict())


def _spec_rows(chart):
    return [row for rows in chart.to_dict(validate=True).get("datasets", {}).values() for row in rows]


def test_the_report_marks_a_collapse(tmp_path):
    t = np.arange(1001, dtype=np.float64)
    writer = RunWriter(tmp_path / "c.zarr", attrs={"config": {"n_train": 100}}, n_steps=t.size,
                       metrics={"train_acc": (), "test_acc": ()}, params=[], ckpt_steps=np.array([], np.int64))
    writer.write_metrics(0, {"train_acc": np.where(t >= 700, 0.05, np.where(t >= 100, 1.0, 0.5)),
                             "test_acc": np.where((t >= 300) & (t < 700), 1.0, 0.05)})
    writer.finalize()
    inp = load_runs([tmp_path / "c.zarr"])
    marks = {r["event"]: r["step"] for r in _spec_rows(CHARTS["accuracy"](inp)) if r.get("kind") == "mark"}
    assert marks == {"memorization": 100, "generalization": 300, "collapse": 700}
    # sustained@300, not stable: 301 dips (700 … 1000), min 0.05, collapsed at 700, no train loss: no spikes
    assert "<td>300</td><td>False</td><td>301</td><td>0.05</td><td>700</td><td></td><td>complete</td>" in (
        summary_of(report_html(inp)[0]))
